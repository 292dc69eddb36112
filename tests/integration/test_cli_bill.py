"""``lastgang bill`` and ``lastgang runs``: files, summary, JSON and exit codes (0 ok, 1 bad
input or a refused final run, 2 the store refused)."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pytest
from test_billing_run import (  # the small site of the billing run tests, same folder
    FIRST,
    LAST,
    PV,
    SITE,
    TOP1,
    TOP2,
    csv_file,
    hak_file,
    l3_on_saturday_morning,
    pv_kwh,
)
from typer.testing import CliRunner

import lastgang.cli.commands  # noqa: F401  (registers the commands)
from lastgang.cli import app

WIDE = {"COLUMNS": "250", "NO_COLOR": "1"}
PERIOD = ("--from", FIRST.isoformat(), "--to", LAST.isoformat())

runner = CliRunner()


def run(*args: str | Path) -> tuple[int, str]:
    result = runner.invoke(app, [str(a) for a in args], env=WIDE)
    return result.exit_code, result.output


def bill(db: Path, *args: str | Path, days: tuple[date, date] = (FIRST, LAST)) -> tuple[int, str]:
    """``lastgang bill`` of the site lindengasse-5 in the store ``db`` (default: the whole test
    period), with further options ``args``."""
    first, last = (d.isoformat() for d in days)
    return run("bill", "--site", "lindengasse-5", "--from", first, "--to", last, "--db", db, *args)


def store_with(tmp_path: Path, *, good: bool) -> Path:
    db = tmp_path / "store.duckdb"
    site = tmp_path / "site.toml"
    site.write_text(SITE, encoding="utf-8")
    code, out = run("site", "apply", site, "--db", db)
    assert code == 0, out
    quality = None if good else l3_on_saturday_morning
    pv_last = LAST if good else LAST - timedelta(days=1)
    files = {
        "hak.csv": hak_file(FIRST, LAST),
        "pv.csv": csv_file(PV, FIRST, pv_last, pv_kwh, export=True),
        "top-1.csv": csv_file(TOP1, FIRST, LAST, lambda _: 0.6),
        "top-2.csv": csv_file(TOP2, FIRST, LAST, lambda _: 0.4, quality=quality),
    }
    paths = []
    for name, content in files.items():
        path = tmp_path / name
        path.write_bytes(content)
        paths.append(path)
    code, out = run("import", "--site", "lindengasse-5", "--db", db, *paths)
    assert code == 0, out
    return db


@pytest.fixture(scope="module")
def good_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return store_with(tmp_path_factory.mktemp("good"), good=True)


def test_bill_writes_invoices_and_prints_the_summary(tmp_path: Path) -> None:
    db = store_with(tmp_path, good=True)
    out_dir = tmp_path / "bills"
    code, out = bill(db, "--out", out_dir)
    assert code == 0, out
    assert "DRAFT run 1, version 1" in out
    for text in (
        "lindengasse-5-R1-V1-01",
        "Anna Berger",
        "30.90",
        "Ben Huber",
        "29.81",
        "Clara Gruber",
        "40.64",
        "-1.28",
        "100.07 EUR",
    ):
        assert text in out
    assert "Reconciliation" in out and "2024-06" in out and "ok" in out
    names = sorted(p.name for p in out_dir.iterdir())
    assert "lindengasse-5-R1-V1-01.pdf" in names and "lindengasse-5-R1-V1-04.html" in names
    assert "lindengasse-5-R1-V1-lines.csv" in names
    assert "lindengasse-5-R1-V1-lines.json" in names
    assert "lindengasse-5-R1-V1-reconciliation.csv" in names
    assert "lindengasse-5-R1-V1-summary.json" in names
    assert "lindengasse-5-R1-V1-run.json" in names


def test_bill_json_then_final_then_runs(tmp_path: Path) -> None:
    db = store_with(tmp_path, good=True)
    code, out = bill(db, "--out", tmp_path / "a", "--json", "--threshold", "0.5", "--no-pdf")
    assert code == 0, out
    summary = json.loads(out)
    assert (summary["run"], summary["version"], summary["status"]) == (1, 1, "draft")
    assert summary["total"] == "100.07"
    assert summary["reconciliation"]["threshold_percent"] == "0.5"
    assert [i["total"] for i in summary["invoices"]] == ["30.90", "29.81", "40.64", "-1.28"]
    assert summary["out_dir"] == str(tmp_path / "a")
    code, out = bill(db, "--out", tmp_path / "b", "--final", "--json", "--no-pdf")
    assert code == 0, out
    assert json.loads(out)["status"] == "final" and json.loads(out)["version"] == 2
    code, out = run("runs", "--db", db, "--json")
    assert code == 0, out
    rows = json.loads(out)
    assert [(r["run"], r["version"], r["status"], r["total"]) for r in rows] == [
        (1, 1, "draft", "100.07"),
        (2, 2, "final", "100.07"),
    ]
    assert rows[0]["first_day"] == "2024-06-14" and rows[0]["last_day"] == "2024-06-17"
    code, out = run("runs", "--db", db, "--site", "lindengasse-5")
    assert code == 0, out
    assert "draft" in out and "final" in out and "2024-06-14 – 2024-06-17" in out


def test_bill_final_refused_lists_metering_points_with_exit_1(tmp_path: Path) -> None:
    db = store_with(tmp_path, good=False)
    code, out = bill(db, "--out", tmp_path / "f", "--final")
    assert code == 1
    assert "cannot be billed final" in out
    assert "AT.008100.08010.00000000000000700041" in out and "96 quarter hour(s)" in out
    assert "AT.008100.08010.00000000000000700021" in out and "4 quarter hour(s) with L3" in out
    assert "2024-06-15 10:15+02:00" in out
    assert not (tmp_path / "f").exists()
    code, out = bill(db, "--out", tmp_path / "f", "--final", "--json")
    assert code == 1
    payload = json.loads(out)
    assert payload["exit_code"] == 1 and len(payload["problems"]) == 2
    code, out = run("runs", "--db", db, "--json")
    assert code == 0 and json.loads(out) == []


def test_bill_exit_codes_for_bad_input_and_the_store(tmp_path: Path, good_db: Path) -> None:
    code, out = run("bill", "--site", "nope", *PERIOD, "--db", good_db, "--out", tmp_path)
    assert code == 2 and "not in the store" in out
    code, out = run(
        "bill",
        "--site",
        "lindengasse-5",
        "--from",
        "2024-06-31",
        "--to",
        "2024-07-01",
        "--db",
        good_db,
    )
    assert code == 2 or code == 1  # click reports a bad parameter with its own code
    assert "ISO date" in out
    code, out = bill(good_db, "--threshold", "lots")
    assert code == 1 and "threshold" in out
    code, out = bill(good_db, "--out", tmp_path, days=(LAST, FIRST))
    assert code == 1 and "ends before it starts" in out
    code, out = run("runs", "--site", "nope", "--db", good_db)
    assert code == 2


def test_bill_default_folder_is_named_after_the_run(
    tmp_path: Path, good_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    day = date(2024, 6, 16)
    code, out = bill(good_db, "--json", "--no-pdf", days=(day, day))
    assert code == 0, out
    summary = json.loads(out)
    key = f"lindengasse-5-R{summary['run']}-V{summary['version']}"
    assert summary["out_dir"] == str(Path("bills") / key)
    assert (tmp_path / "bills" / key / f"{key}-run.json").exists()
    assert not list((tmp_path / "bills" / key).glob("*.pdf"))


def test_bill_of_many_invoices_lists_the_first_and_says_where_all_are(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A community's thousands of invoices are not laid out in the terminal: the first ones, a
    count of the rest, the totals of all, and the files that list every invoice."""
    import lastgang.cli.billing as cli_billing

    monkeypatch.setattr(cli_billing, "TABLE_ROWS", 2)
    db = store_with(tmp_path, good=True)
    code, out = bill(db, "--out", tmp_path / "bills", "--no-pdf")
    assert code == 0, out
    assert "lindengasse-5-R1-V1-01" in out and "lindengasse-5-R1-V1-02" in out
    assert "lindengasse-5-R1-V1-03" not in out and "lindengasse-5-R1-V1-04" not in out
    assert "… 2 more" in out and "total of 4" in out
    assert "100.07 EUR" in out  # the total of all four invoices, as when all are listed
    assert "first 2 of 4 invoices" in out
    assert "lindengasse-5-R1-V1-summary.json" in out and "lindengasse-5-R1-V1-lines.csv" in out
