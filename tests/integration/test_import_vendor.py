"""``lastgang import --format vendor``: CSV, Excel and Parquet tables with a column mapping
(TOR-4.2 92/100-slot days and period-end labels, TOR-4.4 primary values, TOR-7.1 raw archive)."""

from __future__ import annotations

import io
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import openpyxl
import polars as pl
import pytest
from typer.testing import CliRunner

import lastgang.cli.commands  # noqa: F401  (registers the commands)
from lastgang.cli import app
from lastgang.errors import InvalidInput
from lastgang.ingest.dispatch import ImportOptions
from lastgang.ingest.vendor import load_mapping
from lastgang.services import apply_site, export_profile, import_files, rebuild_profiles
from lastgang.store.duckdb_store import DuckDBStore

DATA = Path(__file__).resolve().parent.parent / "data"
VENDOR = DATA / "vendor"
SITE = DATA / "site-basic.toml"
SITE_ID = "graz-lend-12"
WHEN = datetime(2024, 11, 5, 8, 0, tzinfo=UTC)
SPRING = VENDOR / "wide-de-spring.csv"  # 92 rows: 1,000 kWh import, 0,100 export in 40 rows
AUTUMN = VENDOR / "wide-de-autumn.csv"  # 100 rows, cp1252: 0,250 kWh, the winter 02:15 0,500
MAPPING = VENDOR / "mapping-wide.toml"


@pytest.fixture
def store() -> DuckDBStore:
    s = DuckDBStore(":memory:")
    apply_site(s, SITE, now=WHEN)
    return s


def _profile(store: DuckDBStore, target: str, day: date) -> dict[str, tuple[float, float, str]]:
    table = export_profile(store, SITE_ID, target, day, day)
    rows = zip(table.end, table.import_kwh, table.export_kwh, table.quality, strict=True)
    return {e: (float(i), float(x), q) for e, i, x, q in rows}


def _day(store: DuckDBStore, target: str, day: date) -> tuple[float, float, str]:
    table = export_profile(store, SITE_ID, target, day, day, "day")
    return float(table.import_kwh[0]), float(table.export_kwh[0]), table.quality[0]


def test_tor_4_2_german_wide_file_of_the_spring_change_day(store: DuckDBStore) -> None:
    # no mapping: German headers, ';' and decimal commas are recognised
    (result,) = import_files(store, SITE_ID, [SPRING], now=WHEN)
    assert (result.kind, result.locations, result.status) == ("vendor/csv", ("hak",), "imported")
    profile = _profile(store, "hak", date(2024, 3, 31))
    assert len(profile) == 92
    # "03:00" is the end of 01:45-02:00 CET; its start 02:45 does not exist that day
    assert profile["2024-03-31 03:00+02:00"] == (1.0, 0.1, "L1")
    assert profile["2024-03-31 11:00+02:00"] == (1.0, 0.1, "L1")  # the 40th row
    assert profile["2024-03-31 11:15+02:00"] == (1.0, 0.0, "L1")
    imp, exp, quality = _day(store, "hak", date(2024, 3, 31))
    assert imp == pytest.approx(92.0, abs=1e-9)  # primary values: no transformer constant
    assert exp == pytest.approx(4.0, abs=1e-9)
    assert quality == "L1"


def test_tor_4_2_autumn_day_with_a_mapping_file_and_repeated_hour(store: DuckDBStore) -> None:
    options = ImportOptions(mapping=load_mapping(MAPPING))
    (result,) = import_files(store, SITE_ID, [AUTUMN], format="vendor", options=options, now=WHEN)
    assert result.rows == 100
    profile = _profile(store, "hak", date(2024, 10, 27))
    assert len(profile) == 100
    # the first 02:15 of the file is summer time, the second winter time
    assert profile["2024-10-27 02:15+02:00"] == (0.25, 0.0, "L1")
    assert profile["2024-10-27 02:15+01:00"] == (0.5, 0.0, "L2")
    # the file's first 03:00 (03:00+02:00) is the instant lastgang labels 02:00+01:00
    assert profile["2024-10-27 02:00+01:00"] == (0.25, 0.0, "L1")
    imp, exp, quality = _day(store, "hak", date(2024, 10, 27))
    assert imp == pytest.approx(99 * 0.25 + 0.5, abs=1e-9)
    assert (exp, quality) == (0.0, "L2")


def test_tor_4_4_obis_register_columns_with_a_command_line_mapping(store: DuckDBStore) -> None:
    options = ImportOptions(mapping=load_mapping(None, ["target = LGZ:81234567"]))
    files = [VENDOR / "registers-obis.csv"]
    (result,) = import_files(store, SITE_ID, files, format="vendor", options=options, now=WHEN)
    assert (result.kind, result.rows) == ("vendor/csv", 5)
    profile = _profile(store, "hak", date(2024, 6, 3))
    # +0.025 kWh secondary per quarter hour x CT 200/5 (constant 40) = 1 kWh primary;
    # export +0.005 between 12:15 and 12:30 = 0.2 kWh
    for label, exp in (("12:15", 0.0), ("12:30", 0.2), ("12:45", 0.0), ("13:00", 0.0)):
        imp, x, quality = profile[f"2024-06-03 {label}+02:00"]
        assert imp == pytest.approx(1.0, abs=1e-9)
        assert x == pytest.approx(exp, abs=1e-9)
        assert quality == "L1"


def test_long_layout_with_obis_codes_per_row(store: DuckDBStore) -> None:
    (result,) = import_files(store, SITE_ID, [VENDOR / "long-de.csv"], format="vendor", now=WHEN)
    assert set(result.locations) == {"top1", "pv"}
    top1 = _profile(store, "top1", date(2024, 5, 2))
    assert top1["2024-05-02 00:15+02:00"] == (0.125, 0.0, "L1")
    assert top1["2024-05-02 00:30+02:00"] == (0.375, 0.0, "L1")
    assert top1["2024-05-02 00:45+02:00"] == (0.25, 0.0, "L2")
    assert _profile(store, "pv", date(2024, 5, 2))["2024-05-02 00:30+02:00"] == (0.0, 0.0, "L1")


def test_xlsx_with_a_title_row_and_target_columns(store: DuckDBStore, tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "Lastgang"
    sheet.append(["Lastgang Juli 2024, Lendplatz 12"])
    sheet.append(["Zeitstempel", "Top 2", "Allgemein"])
    start = datetime(2024, 7, 1, 0, 15)
    for i in range(4):
        sheet.append([start + timedelta(minutes=15 * i), 0.1 * (i + 1), 0.05])
    path = tmp_path / "export.xlsx"
    book.save(path)
    mapping = load_mapping(
        None,
        [
            "sheet = Lastgang",
            "skip_rows = 1",
            'columns."Top 2" = "AT0081000801000000000000000100021:import"',
            'columns.Allgemein = "general:import"',
        ],
    )
    (result,) = import_files(store, SITE_ID, [path], options=ImportOptions(mapping=mapping))
    assert (result.kind, set(result.locations)) == ("vendor/xlsx", {"top2", "general"})
    top2 = _profile(store, "top2", date(2024, 7, 1))
    for i, label in enumerate(("00:15", "00:30", "00:45", "01:00")):
        assert top2[f"2024-07-01 {label}+02:00"] == (pytest.approx(0.1 * (i + 1)), 0.0, "L1")
    assert _profile(store, "general", date(2024, 7, 1))["2024-07-01 00:30+02:00"][:2] == (0.05, 0)
    assert store.batch_content(result.batch) == path.read_bytes()


def _autumn_labels() -> list[datetime]:
    """The 100 period ends of 27 October 2024 as a vendor writes them without offset."""
    day = datetime(2024, 10, 27)
    walls = [day + timedelta(minutes=15 * k) for k in range(1, 9)]  # 00:15 .. 02:00
    repeated = [day + timedelta(hours=2, minutes=15 * k) for k in range(1, 5)]  # 02:15..03:00
    rest = [day + timedelta(hours=3, minutes=15 * k) for k in range(1, 85)]  # 03:15 .. 24:00
    return walls + repeated + repeated + rest


def test_parquet_with_naive_local_times_on_the_autumn_day(store: DuckDBStore) -> None:
    ends = _autumn_labels()
    frame = pl.DataFrame(
        {
            "Zeitstempel": ends,
            "Bezug": [0.2] * 100,
            "Lieferung": [0.0] * 12 + [0.4] + [0.0] * 87,  # the winter 02:15
        }
    )
    buffer = io.BytesIO()
    frame.write_parquet(buffer)
    content = buffer.getvalue()
    from lastgang.services import import_bytes

    result = import_bytes(
        store,
        SITE_ID,
        content,
        "autumn.parquet",
        now=WHEN,
        options=ImportOptions(mapping=load_mapping(None, ["target = hak"])),
    )
    assert (result.kind, result.rows) == ("vendor/parquet", 100)
    profile = _profile(store, "hak", date(2024, 10, 27))
    assert len(profile) == 100
    assert profile["2024-10-27 02:15+01:00"] == (0.2, 0.4, "L1")
    assert profile["2024-10-27 24:00+01:00"] == (0.2, 0.0, "L1")
    assert _day(store, "hak", date(2024, 10, 27))[:2] == (pytest.approx(20.0), pytest.approx(0.4))


def test_parquet_long_with_utc_times(store: DuckDBStore) -> None:
    frame = pl.DataFrame(
        {
            "metering_point": ["AT0081000801000000000000000100031"] * 2,
            "obis": ["1-1:1.29.0"] * 2,
            # period ends 2024-07-01 00:15 and 00:30 at +02:00
            "time": [
                datetime(2024, 6, 30, 22, 15, tzinfo=UTC),
                datetime(2024, 6, 30, 22, 30, tzinfo=UTC),
            ],
            "value": [0.3, 0.7],
        }
    )
    buffer = io.BytesIO()
    frame.write_parquet(buffer)
    from lastgang.services import import_bytes

    result = import_bytes(store, SITE_ID, buffer.getvalue(), "general.parquet", now=WHEN)
    assert result.locations == ("general",)
    general = _profile(store, "general", date(2024, 7, 1))
    assert general["2024-07-01 00:15+02:00"] == (0.3, 0.0, "L1")
    assert general["2024-07-01 00:30+02:00"] == (0.7, 0.0, "L1")


def test_malformed_file_lists_every_problem_and_changes_nothing(store: DuckDBStore) -> None:
    bad = VENDOR / "bad-de.csv"
    before = store.fingerprint(SITE_ID)
    with pytest.raises(InvalidInput) as caught:
        import_files(store, SITE_ID, [SPRING, bad], format="vendor", now=WHEN)
    found = {(p.line, p.column): p.reason for p in caught.value.problems}
    assert all(p.file == str(bad) for p in caught.value.problems)
    assert "unknown column 'Bemerkung'" in found[(1, "Bemerkung")]
    assert "'31.13.2024 00:30' is not a time" in found[(3, "Zeitstempel")]
    assert "'eins' is not a number" in found[(4, "Bezug (kWh)")]
    assert (
        "metering point AT0081000801000000000000000999999 is not in site" in found[(5, "Zählpunkt")]
    )
    assert "does not exist in Europe/Vienna" in found[(6, "Zeitstempel")]
    assert "already on line 2" in found[(7, "Bezug (kWh)")]
    assert "energy cannot be negative" in found[(8, "Bezug (kWh)")]
    assert store.fingerprint(SITE_ID) == before


def test_reimport_is_idempotent_and_rebuild_uses_the_archived_mapping(
    store: DuckDBStore,
) -> None:
    options = ImportOptions(mapping=load_mapping(MAPPING))
    import_files(store, SITE_ID, [AUTUMN], format="vendor", options=options, now=WHEN)
    before = store.fingerprint(SITE_ID)
    (again,) = import_files(store, SITE_ID, [AUTUMN], format="vendor", options=options, now=WHEN)
    assert again.status == "already imported, batch 1"
    assert store.fingerprint(SITE_ID) == before
    (batch,) = store.batches(SITE_ID)
    assert batch.format == "vendor/csv"
    assert batch.factors["_import"]["mapping"]["decimal"] == ","
    assert store.batch_content(1) == AUTUMN.read_bytes()
    assert rebuild_profiles(store, SITE_ID, now=WHEN).changed == 0
    assert store.fingerprint(SITE_ID)["profile_values"] == before["profile_values"]


def test_cli_vendor_mapping_file_and_map_lines(tmp_path: Path) -> None:
    runner = CliRunner()
    env = {"COLUMNS": "250", "NO_COLOR": "1"}
    db = tmp_path / "s.duckdb"
    assert runner.invoke(app, ["site", "apply", str(SITE), "--db", str(db)], env=env).exit_code == 0
    args = ["import", "--site", SITE_ID, "--format", "vendor", "--db", str(db), "--json"]
    done = runner.invoke(app, [*args, "--mapping", str(MAPPING), str(AUTUMN)], env=env)
    assert done.exit_code == 0, done.output
    (row,) = json.loads(done.output)
    assert (row["kind"], row["rows"], row["slots"]) == ("vendor/csv", 100, 100)
    done = runner.invoke(
        app, [*args, "--map", "target=LGZ:81234567", str(VENDOR / "registers-obis.csv")], env=env
    )
    assert done.exit_code == 0, done.output
    bad = runner.invoke(app, [*args, "--map", "colour = blue", str(SPRING)], env=env)
    assert bad.exit_code == 1
    assert "unknown mapping key 'colour'" in bad.output
