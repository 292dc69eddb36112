"""``lastgang site apply``, ``import``, ``profile``, ``rebuild``: output, JSON and exit codes
(0 ok, 1 bad input, 2 the store refused)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pytest
from old_stores import as_version
from typer.testing import CliRunner

import lastgang.cli.commands  # noqa: F401  (registers the commands)
from lastgang.cli import app

DATA = Path(__file__).resolve().parent.parent / "data"
SITE = DATA / "site-basic.toml"
HAK = DATA / "registers-hak-2024-03-31.csv"
TOP1_AUTUMN = DATA / "intervals-top1-2024-10-27.csv"
BAD = DATA / "registers-bad.csv"
WIDE = {"COLUMNS": "250", "NO_COLOR": "1"}

runner = CliRunner()


def run(*args: str | Path) -> tuple[int, str]:
    result = runner.invoke(app, [str(a) for a in args], env=WIDE)
    return result.exit_code, result.output


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "store.duckdb"
    code, out = run("site", "apply", SITE, "--db", path)
    assert code == 0, out
    return path


def test_site_apply_prints_version_and_warnings(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    code, out = run("site", "apply", SITE, "--db", path)
    assert code == 0, out
    assert "graz-lend-12" in out and "version 1 applied" in out
    assert "warning" in out  # the site has units without contract
    code, out = run("site", "apply", SITE, "--db", path, "--json")
    assert code == 0, out
    payload = json.loads(out)
    assert payload["version"] == 2
    assert payload["changed_locations"] == []
    code, out = run("site", "versions", "graz-lend-12", "--db", path, "--json")
    assert [v["version"] for v in json.loads(out)] == [1, 2]


def test_site_apply_refuses_a_concept_with_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        SITE.read_text(encoding="utf-8").replace('role = "consumer"', 'role = "tenant"', 1),
        encoding="utf-8",
    )
    code, out = run("site", "apply", bad, "--db", tmp_path / "s.duckdb")
    assert code == 1
    # the problem names the line of the role in the file and its TOML path
    assert "bad.toml:31, column locations[1].role: 'tenant'" in out


def test_site_apply_refuses_a_moved_metering_point_id_with_exit_2(db: Path, tmp_path: Path) -> None:
    moved = tmp_path / "moved.toml"
    text = SITE.read_text(encoding="utf-8")
    moved.write_text(
        text.replace(
            "AT0081000801000000000000000100021", "AT0081000801000000000000000100099"
        ).replace("AT0081000801000000000000000100031", "AT0081000801000000000000000100021"),
        encoding="utf-8",
    )
    code, out = run("site", "apply", moved, "--db", db, "--json")
    assert code == 2
    payload = json.loads(out)
    assert payload["exit_code"] == 2
    assert any("AT0081000801000000000000000100021" in p["message"] for p in payload["problems"])


def test_import_summary_table_and_json(db: Path) -> None:
    code, out = run("import", "--site", "graz-lend-12", HAK, TOP1_AUTUMN, "--db", db)
    assert code == 0, out
    assert "registers" in out and "intervals" in out and "imported" in out
    code, out = run("import", "--site", "graz-lend-12", HAK, "--db", db, "--json")
    assert code == 0, out
    (row,) = json.loads(out)
    assert row["status"] == "already imported, batch 1"
    assert row["batch"] == 1


def test_import_of_a_bad_file_lists_every_problem_and_exits_1(db: Path) -> None:
    code, out = run("import", "--site", "graz-lend-12", BAD, "--db", db)
    assert code == 1
    for line in (3, 4, 5, 6, 7, 8, 9, 10, 11, 12):
        assert f"registers-bad.csv:{line}, column" in out
    code, out = run("import", "--site", "graz-lend-12", BAD, "--db", db, "--json")
    assert code == 1
    payload = json.loads(out)
    assert [p["line"] for p in payload["problems"]] == [3, 4, 5, 6, 7, 8, 9, 10, 11, 12]
    assert payload["problems"][0]["column"] == "time"


def test_import_into_an_unknown_site_exits_2(db: Path) -> None:
    code, out = run("import", "--site", "nowhere", HAK, "--db", db)
    assert code == 2
    assert "lastgang site apply" in out


def test_profile_to_file_and_stdout(db: Path, tmp_path: Path) -> None:
    run("import", "--site", "graz-lend-12", TOP1_AUTUMN, "--db", db)
    out_file = tmp_path / "top1.csv"
    code, out = run(
        "profile",
        "--site",
        "graz-lend-12",
        "AT.008100.08010.00000000000000100011",
        "--from",
        "2024-10-27",
        "--to",
        "2024-10-27",
        "--resolution",
        "day",
        "--out",
        out_file,
        "--db",
        db,
    )
    assert code == 0, out
    assert out_file.read_text(encoding="utf-8") == (
        "end,import_kwh,export_kwh,quality\n2024-10-27 24:00+01:00,15.625,0.0,L2\n"
    )
    code, out = run(
        "profile", "--site", "graz-lend-12", "top1", "--from", "2024-10-27", "--to",
        "2024-10-27", "--db", db,
    )  # fmt: skip
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0] == "end,import_kwh,export_kwh,quality"
    assert len(lines) == 1 + 100  # the autumn change day has 100 quarter hours
    assert lines[1] == "2024-10-27 00:15+02:00,0.25,0.0,L1"


def test_profile_of_an_unknown_metering_point_or_resolution_exits_1(db: Path) -> None:
    code, out = run(
        "profile", "--site", "graz-lend-12", "cellar", "--from", "2024-10-27", "--to",
        "2024-10-27", "--db", db,
    )  # fmt: skip
    assert code == 1
    assert "cellar" in out
    code, out = run(
        "profile", "--site", "graz-lend-12", "top1", "--from", "2024-10-27", "--to",
        "2024-10-27", "--resolution", "7min", "--db", db,
    )  # fmt: skip
    assert code == 1
    assert "resolution" in out


def test_rebuild_command(db: Path) -> None:
    run("import", "--site", "graz-lend-12", HAK, TOP1_AUTUMN, "--db", db)
    code, out = run("rebuild", "--site", "graz-lend-12", "--db", db, "--json")
    assert code == 0, out
    assert json.loads(out) == {
        "site": "graz-lend-12",
        "batches": 2,
        "read": 2,
        "changed_values": 0,
        "locations": "all",
    }


def test_a_version_applied_without_rebuild_waits_for_rebuild_pending(
    db: Path, tmp_path: Path
) -> None:
    run("import", "--site", "graz-lend-12", HAK, TOP1_AUTUMN, "--db", db)
    corrected = tmp_path / "corrected.toml"
    corrected.write_text(
        SITE.read_text(encoding="utf-8").replace('ratio = "200/5"', 'ratio = "100/5"'),
        encoding="utf-8",
    )
    code, out = run("site", "apply", corrected, "--no-rebuild", "--db", db)
    assert code == 0, out
    assert "awaiting a rebuild (lastgang rebuild --pending): hak" in out
    code, out = run("site", "apply", corrected, "--no-rebuild", "--db", db, "--json")
    assert (json.loads(out)["rebuilt"], json.loads(out)["rebuild_pending"]) == (None, ["hak"])
    code, out = run("rebuild", "--site", "graz-lend-12", "--pending", "--db", db)
    assert code == 0, out
    # the 92 quarter hours of the grid connection's day, now at half the ratio
    # the grid connection's registers are read again, not the interval values of Top 1
    assert (
        "profiles of 1 location(s) rebuilt (hak), 1 of 2 archived batch(es) read again, 92" in out
    )
    code, out = run("rebuild", "--site", "graz-lend-12", "--pending", "--db", db)
    assert code == 0, out
    assert "of no location rebuilt (none awaited a rebuild), 0 of 2 archived batch(es) read" in out
    code, out = run("site", "apply", SITE, "--db", db, "--json")
    assert code == 0, out
    rebuilt = json.loads(out)["rebuilt"]
    assert (rebuilt["locations"], rebuilt["changed_values"]) == (["hak"], 92)
    assert json.loads(out)["rebuild_pending"] == []


def test_db_from_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "env.duckdb"
    result = runner.invoke(
        app, ["site", "apply", str(SITE)], env={**WIDE, "LASTGANG_DB": str(path)}
    )
    assert result.exit_code == 0, result.output
    assert path.exists()


_HOLDER = """
import sys
from lastgang.store import open_store
store = open_store(sys.argv[1])
print("ready", flush=True)
sys.stdin.readline()
store.close()
"""


@contextmanager
def _held(db: Path) -> Iterator[None]:
    """The store held open by another process while the block runs."""
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(db)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        yield
    finally:
        assert holder.stdin is not None
        holder.stdin.write("\n")
        holder.stdin.flush()
        holder.wait(timeout=20)


def test_user_add_on_a_locked_store_points_to_the_running_servers_api(db: Path) -> None:
    with _held(db):
        result = runner.invoke(
            app,
            ["user", "add", "maria", "--password-stdin", "--db", str(db)],
            input="a long enough password\n",
            env=WIDE,
        )
    assert result.exit_code == 2
    text = " ".join(result.output.split())
    assert "in use by another lastgang process" in text
    assert "POST /api/v1/users" in text and "POST /api/v1/sites/SITE/tokens" in text


def test_locked_store_exits_2_with_a_clear_message(db: Path) -> None:
    with _held(db):
        code, out = run("import", "--site", "graz-lend-12", HAK, "--db", db)
    assert code == 2
    assert "in use by another lastgang process" in out
    assert "Traceback" not in out


def test_a_store_of_an_older_schema_version_says_it_is_upgraded_once(db: Path) -> None:
    """Opened for writing, a store of schema version 4 copies its raw archive once (which can
    take a while for a large one): the command says so on standard error, its JSON stays on
    standard output, and the next command says nothing."""
    code, out = run("import", "--site", "graz-lend-12", HAK, "--db", db)
    assert code == 0, out
    con = duckdb.connect(str(db))
    as_version(con, 4)
    con.close()
    args = ["import", "--site", "graz-lend-12", str(TOP1_AUTUMN), "--db", str(db), "--json"]
    first = runner.invoke(app, args, env=WIDE)
    assert first.exit_code == 0, first.output
    assert "from schema version 4 to 7, once" in first.stderr
    (row,) = json.loads(first.stdout)
    assert row["status"] == "imported" and row["batch"] == 2
    second = runner.invoke(app, ["site", "versions", "graz-lend-12", "--db", str(db)], env=WIDE)
    assert second.exit_code == 0, second.output
    assert "schema version" not in second.stderr
