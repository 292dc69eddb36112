"""The benchmark script runs at its smallest size and writes well-formed results.

Timings are never asserted: this only checks that ``bench/run.py`` works end to end (every case
at M = 10 metering points, a week of data, one run each) and that ``results.json`` and
``results.md`` have the shape the docs rely on.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))
from harness import RESULT_MARKER  # noqa: E402

CASES = {"import-csv", "import-parquet", "registers", "billing", "invoices", "pdf", "reference"}


def _bench(tmp_path: Path, *args: str) -> None:
    """``bench/run.py`` with ``args``, results into ``tmp_path / "out"``; it must succeed."""
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "run.py"),
            *args,
            "--out",
            str(tmp_path / "out"),
            "--workdir",
            str(tmp_path / "work"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.mark.slow
def test_bench_runs_its_smallest_size_and_writes_results(tmp_path: Path) -> None:
    out = tmp_path / "out"
    _bench(
        tmp_path,
        "--sizes",
        "10",
        "--repeats",
        "1",
        "--days",
        "7",
        "--reference-days",
        "7",
        "--pdf-sample",
        "2",
    )
    data = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert data["sizes"] == [10]
    assert {"cpu", "cores", "memory_gib", "python", "libraries"} <= set(data["machine"])
    cases = {c["case"]: c for c in data["cases"]}
    assert CASES | {"prepare"} <= set(cases)
    assert not [c for c in data["cases"] if "error" in c]
    for name in CASES - {"reference", "pdf"}:
        assert cases[name]["seconds"] > 0 and cases[name]["runs"] == 1
        assert cases[name]["peak_increase_bytes"] >= 0
    assert cases["billing"]["values"] == 10 * 7 * 96
    assert cases["billing"]["invoices"] > 0
    assert set(cases["billing"]["parts"]) == {
        "store read",
        "concept, allocation, pricing",
        "invoice data",
    }
    floors = cases["billing"]["floors"]
    assert floors["store_column"] > 0 and floors["records"] > 0
    assert floors["record_count"] > cases["billing"]["invoices"]
    assert cases["pdf"]["pdfs_ok"]
    # the engine's bills equal the naive reference's on the smallest site
    assert cases["reference"]["equal"], cases["reference"]["differences"]
    markdown = (out / "results.md").read_text(encoding="utf-8")
    for heading in ("# Benchmark results", "## Import", "## Billing", "## The reference"):
        assert heading in markdown
    assert "| M |" in markdown


@pytest.mark.slow
def test_a_site_from_monthly_files_is_imported_month_by_month_and_billed(tmp_path: Path) -> None:
    """From ``--monthly-from`` metering points on, the year is written as one CSV file per month
    and imported one after the other into one store, which the billing then reads."""
    out = tmp_path / "out"
    _bench(
        tmp_path,
        "--sizes",
        "10",
        "--monthly-from",
        "10",
        "--only",
        "billing",
        "--repeats",
        "1",
        "--days",
        "40",
        "--keep",
    )
    data = json.loads((out / "results.json").read_text(encoding="utf-8"))
    cases = {c["case"]: c for c in data["cases"]}
    assert set(cases) == {"prepare", "import-months", "billing"}
    months = cases["import-months"]
    # January and the first 9 days of February, no clock change: 96 quarter hours a day
    assert [f["file"] for f in months["files"]] == [
        "intervals-2025-01.csv",
        "intervals-2025-02.csv",
    ]
    assert months["values"] == cases["billing"]["values"] == 10 * 40 * 96
    assert "CSV, 2 monthly files" in (out / "results.md").read_text(encoding="utf-8")
    # the same files as one import of their folder (bench/cases.py import-folder)
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "cases.py"),
            "import-folder",
            "--size",
            "10",
            "--workdir",
            str(tmp_path / "work"),
            "--repeats",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (line,) = [x for x in done.stdout.splitlines() if x.startswith(RESULT_MARKER)]
    folder = json.loads(line.removeprefix(RESULT_MARKER))
    assert (folder["values"], folder["files"], folder["runs"]) == (10 * 40 * 96, 2, 1)
    assert set(folder["parts"]) == {"read and check", "store and build profiles"}


def _reads(store: Path, *args: str, script: str = "run_reads.py") -> tuple[str, list[str]]:
    """``bench/run_reads.py`` (or another script printing a table of timed reads) on
    ``store``: its first line and the rows of its table (it must succeed)."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), str(store), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert lines[1:3] == ["| read | seconds | peak MiB |", "|---|---|---|"]
    return lines[0], [line for line in lines[3:] if line.startswith("| ")]


@pytest.fixture(scope="module")
def small_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The store of the benchmark's smallest site over two days, imported by the bench."""
    work = tmp_path_factory.mktemp("bench") / "work"
    small = ["--size", "10", "--workdir", str(work), "--days", "2", "--repeats", "1"]
    for case in ("prepare", "import-csv"):
        done = subprocess.run(
            [sys.executable, str(ROOT / "bench" / "cases.py"), case, *small],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-3000:]
    return work / "10" / "store.duckdb"


def test_run_reads_times_what_the_pages_read_of_a_stored_run(
    tmp_path: Path, small_store: Path
) -> None:
    """``bench/run_reads.py`` reads a stored run as the routes do, invoice by invoice and (with
    ``--whole``) from its whole JSON; only its table's shape is checked, never a time."""
    from datetime import date

    from lastgang.billing_service import bill
    from lastgang.store import open_store

    path = small_store
    with open_store(path) as store:
        result = bill(
            store, "bench-10", date(2025, 1, 1), date(2025, 1, 2), out_dir=tmp_path / "r", pdf=False
        )
    reads = [
        "the run with every invoice (API)",
        "run page: first 200 invoices",
        "run page: last invoices (from 1)",
        "run page: a search (a customer)",
        "reconciliation",
        "one invoice (first)",
        "one invoice (middle)",
        "one invoice (last)",
        "a unit's invoices (1 runs)",
        "data quality page: 100 metering points",
        "data quality page: those with a problem",
        "data quality page: those with a problem, next page",
    ]
    for args, how in (((), "read invoice by invoice"), (("--whole",), "from its whole run JSON")):
        head, rows = _reads(path, "--repeats", "1", *args)
        assert head.startswith(f"run {result.record.run} of bench-10: 9 invoices") and how in head
        assert [row.split(" | ")[0].removeprefix("| ") for row in rows] == reads
        for row in rows:
            seconds, peak = row.split(" | ")[1:3]
            assert float(seconds) >= 0 and peak.removesuffix(" |").replace(",", "").isdigit()
    assert len(result.run.invoices) == 9


def test_chart_reads_times_the_charts_made_and_taken_again(small_store: Path) -> None:
    """``bench/chart_reads.py`` asks for every view's charts as the routes do; only its table's
    shape is checked, never a time."""
    head, lines = _reads(
        small_store, "--date", "2025-01-01", "--repeats", "1", script="chart_reads.py"
    )
    assert head.startswith("site bench-10: 10 locations, 8 consuming units; views of 2025-01-01")
    assert "change stamp" in head and "no change stamp" not in head
    rows = [line.split(" | ")[0].removeprefix("| ") for line in lines]
    per_view = ["monitoring, made", "monitoring, again", "a unit, made", "a unit, again"]
    per_view.append("another unit")
    assert rows == [f"{v}: {r}" for v in ("day", "week", "month", "year") for r in per_view] + [
        "the last day with data, found",
        "the last day with data, again",
    ]
    for line in lines:
        seconds, peak = line.split(" | ")[1:3]
        assert float(seconds) >= 0 and peak.removesuffix(" |").replace(",", "").isdigit()


def test_site_changes_applies_each_change_to_a_copy_of_the_store(small_store: Path) -> None:
    """``bench/site_changes.py`` applies every change to a fresh copy and leaves the store as
    it was; only its table's shape is checked, never a time."""
    from lastgang.store import open_store

    with open_store(small_store, read_only=True) as store:
        before = (store.fingerprint("bench-10"), len(store.site_versions("bench-10")))
    head, lines = _reads(small_store, "--whole", script="site_changes.py")
    assert head.startswith("site bench-10: 10 locations, 1 archived batch(es)")
    rows = [line.split(" | ")[0].removeprefix("| ") for line in lines]
    assert rows[0] == "a new location (rebuilt alone)"
    assert rows[1].startswith("other substitutes for ") and rows[1].endswith(" (no rebuild)")
    assert rows[2].endswith("'s meter changed (rebuilt alone)")
    assert rows[3] == "a new location, then the whole site rebuilt"
    for line in lines:
        seconds, peak = line.split(" | ")[1:3]
        assert float(seconds) >= 0 and peak.removesuffix(" |").replace(",", "").isdigit()
    with open_store(small_store, read_only=True) as store:
        assert (store.fingerprint("bench-10"), len(store.site_versions("bench-10"))) == before
    assert not [p for p in small_store.parent.iterdir() if "site-changes" in p.name]
