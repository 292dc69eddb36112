"""``lastgang import --format eda``: ConsumptionRecord messages into a site (EC-2, TOR-4.1,
TOR-4.2 92/100-slot days, TOR-7.1 raw archive, Q-2 history)."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

import lastgang.cli.commands  # noqa: F401  (registers the commands)
from lastgang.cli import app
from lastgang.errors import InvalidInput
from lastgang.ingest.eda_import import eda_series, eda_series_key
from lastgang.quality import Quality
from lastgang.services import apply_site_text, export_profile, import_files, rebuild_profiles
from lastgang.store.duckdb_store import DuckDBStore
from lastgang.timegrid import day_slots

DATA = Path(__file__).resolve().parent.parent / "data" / "eda"
SPRING = DATA / "spring_2024-03-31_92qh_01p41.xml"  # member: G.01 92 x 0.25 kWh, G.02, G.03
AUTUMN = DATA / "autumn_2024-10-27_100qh_01p40.xml"  # producer: G.01 100 x 0.5, P.01 100 x 0.2
DAILY = DATA / "daily_over_spring_change_01p41.xml"  # member: three daily values
WHEN = datetime(2024, 11, 5, 8, 0, tzinfo=UTC)
SITE_ID = "eeg-test"
MEMBER_ID = "AT0099990000000000000000000100001"
PRODUCER_ID = "AT0099990000000000000000000200002"
PROSUMER_IMPORT = "AT0099990000000000000000000300003"
PROSUMER_EXPORT = "AT0099990000000000000000000300004"

SITE = f"""
[site]
id = "{SITE_ID}"
name = "EEG test"
timezone = "Europe/Vienna"

[[locations]]
id = "member"
role = "consumer"
metering_points = {{ import = "{MEMBER_ID}" }}

[[locations.meters]]
manufacturer = "LGZ"
serial = "10000001"
installed = 2024-01-01

[[locations]]
id = "producer"
role = "production"
metering_points = {{ export = "{PRODUCER_ID}" }}

[[locations.meters]]
manufacturer = "LGZ"
serial = "20000002"
installed = 2024-01-01

[[locations]]
id = "prosumer"
role = "consumer"
metering_points = {{ import = "{PROSUMER_IMPORT}", export = "{PROSUMER_EXPORT}" }}

[[locations.meters]]
manufacturer = "LGZ"
serial = "30000003"
installed = 2024-01-01

[[units]]
id = "member"
meters = ["member"]
"""


@pytest.fixture
def store() -> DuckDBStore:
    s = DuckDBStore(":memory:")
    apply_site_text(s, SITE, "site.toml", now=WHEN)
    return s


def _day(store: DuckDBStore, target: str, day: date) -> tuple[float, float, str]:
    table = export_profile(store, SITE_ID, target, day, day, "day")
    return float(table.import_kwh[0]), float(table.export_kwh[0]), table.quality[0]


def _variant(tmp_path: Path, name: str, *, mm: str, bq: str, message: str) -> Path:
    """The spring message with every MM and G.01 quantity replaced (a corrected delivery)."""
    text = SPRING.read_text(encoding="utf-8")
    text = text.replace("<ns0:MM>L1</ns0:MM>", f"<ns0:MM>{mm}</ns0:MM>")
    text = text.replace("<ns0:MM>L3</ns0:MM>", f"<ns0:MM>{mm}</ns0:MM>")
    text = text.replace("<ns0:MM>L2</ns0:MM>", f"<ns0:MM>{mm}</ns0:MM>")
    text = text.replace("<ns0:BQ>0.250000</ns0:BQ>", f"<ns0:BQ>{bq}</ns0:BQ>")
    text = text.replace("AT999999202404010600000000000000001", message)
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_ec_2_consumption_becomes_the_interval_values_of_the_location(
    store: DuckDBStore,
) -> None:
    (result,) = import_files(store, SITE_ID, [SPRING], format="eda", now=WHEN)
    assert (result.kind, result.locations, result.status) == ("eda", ("member",), "imported")
    # TOR-4.2: the spring change day has 92 quarter hours; 92 x 0.25 kWh = 23 kWh, no export
    # (the member has no export metering point); two positions of the message are L2, one is L3
    imp, exp, quality = _day(store, "member", date(2024, 3, 31))
    assert imp == pytest.approx(23.0, abs=1e-9)
    assert exp == 0.0
    assert quality == "L3"
    quarter = export_profile(store, SITE_ID, MEMBER_ID, date(2024, 3, 31), date(2024, 3, 31))
    assert len(quarter.end) == 92
    assert (
        quarter.end[0] == "2024-03-31 00:15+01:00" and quarter.end[-1] == "2024-03-31 24:00+02:00"
    )
    assert set(quarter.import_kwh.tolist()) == {0.25}


def test_ec_2_community_codes_are_stored_as_eda_series_not_as_flows(store: DuckDBStore) -> None:
    import_files(store, SITE_ID, [SPRING], format="eda", now=WHEN)
    start, stop = day_slots(date(2024, 3, 31))
    share = eda_series(store, SITE_ID, MEMBER_ID, "1-1:2.9.0 G.02", start, stop)
    received = eda_series(store, SITE_ID, MEMBER_ID, "1-1:2.9.0 G.03", start, stop)
    assert share is not None and received is not None
    # docs/format-eda.md: G.02 13.8 kWh and G.03 9.2 kWh over the 92 quarter hours; the OBIS
    # part 1-1:2.9.0 puts them in the export column of the series
    assert len(share.slot) == 92 and len(received.slot) == 92
    assert share.export_kwh.sum() == pytest.approx(13.8, abs=1e-9)
    assert received.export_kwh.sum() == pytest.approx(9.2, abs=1e-9)
    assert received.import_kwh.sum() == 0.0
    # the member's own profile still shows only its measured consumption, no export
    assert _day(store, "member", date(2024, 3, 31))[:2] == (pytest.approx(23.0), 0.0)
    assert eda_series_key(MEMBER_ID, "1-1:2.9.0  G.03") == f"eda QH {MEMBER_ID} 1-1:2.9.0 G.03"


def test_ec_2_production_and_surplus_on_the_autumn_change_day(store: DuckDBStore) -> None:
    import_files(store, SITE_ID, [AUTUMN], now=WHEN)  # recognised as EDA by its content
    imp, exp, quality = _day(store, "producer", date(2024, 10, 27))
    # 100 quarter hours x 0.5 kWh production (TOR-4.2: 100 on the autumn change day)
    assert (imp, exp) == (0.0, pytest.approx(50.0, abs=1e-9))
    assert quality == "L1"
    start, stop = day_slots(date(2024, 10, 27))
    surplus = eda_series(store, SITE_ID, PRODUCER_ID, "1-1:2.9.0 P.01", start, stop)
    assert surplus is not None and len(surplus.slot) == 100
    assert surplus.export_kwh.sum() == pytest.approx(20.0, abs=1e-9)
    # the surplus keeps its own quality flags: one position (11:30-11:45) is L2
    assert np.bincount(surplus.quality, minlength=4)[1:3].tolist() == [99, 1]


def test_daily_values_are_kept_as_an_eda_series_outside_the_profile(store: DuckDBStore) -> None:
    (result,) = import_files(store, SITE_ID, [DAILY], format="eda", now=WHEN)
    assert result.rows == 3
    start, _ = day_slots(date(2024, 3, 30))
    _, stop = day_slots(date(2024, 4, 1))
    daily = eda_series(store, SITE_ID, MEMBER_ID, "1-1:1.9.0 G.01", start, stop, interval="D")
    assert daily is not None and len(daily.slot) == 3
    # each value starts at local midnight (a slot of its own: the day's first quarter hour)
    assert daily.slot.tolist() == [
        day_slots(date(2024, 3, 30))[0],
        day_slots(date(2024, 3, 31))[0],
        day_slots(date(2024, 4, 1))[0],
    ]
    assert store.counts(SITE_ID)["profile_values"] == 0


def test_q_2_an_l3_day_replaced_by_an_l1_day_keeps_the_l3_values_in_the_history(
    store: DuckDBStore, tmp_path: Path
) -> None:
    provisional = _variant(
        tmp_path, "l3.xml", mm="L3", bq="0.300000", message="AT999999202404010600000000000000002"
    )
    final = _variant(
        tmp_path, "l1.xml", mm="L1", bq="0.250000", message="AT999999202404010600000000000000003"
    )
    import_files(store, SITE_ID, [provisional], format="eda", now=WHEN)
    imp, _, quality = _day(store, "member", date(2024, 3, 31))
    assert (imp, quality) == (pytest.approx(92 * 0.3, abs=1e-9), "L3")
    later = datetime(2024, 11, 20, 8, 0, tzinfo=UTC)
    (result,) = import_files(store, SITE_ID, [final], format="eda", now=later)
    imp, _, quality = _day(store, "member", date(2024, 3, 31))
    assert (imp, quality) == (pytest.approx(23.0, abs=1e-9), "L1")
    start, stop = day_slots(date(2024, 3, 31))
    history = store.profile_history(SITE_ID, "member", start, stop)
    assert len(history) == 92
    assert set(history.quality.tolist()) == {int(Quality.L3)}
    assert history.import_kwh == pytest.approx(np.full(92, 0.3))
    assert set(history.replaced_by_batch.tolist()) == {result.batch}


def test_q_2_a_worse_later_message_does_not_replace_measured_values(
    store: DuckDBStore, tmp_path: Path
) -> None:
    final = _variant(
        tmp_path, "l1.xml", mm="L1", bq="0.250000", message="AT999999202404010600000000000000003"
    )
    provisional = _variant(
        tmp_path, "l3.xml", mm="L3", bq="0.300000", message="AT999999202404010600000000000000002"
    )
    import_files(store, SITE_ID, [final], format="eda", now=WHEN)
    import_files(store, SITE_ID, [provisional], format="eda", now=WHEN)
    assert _day(store, "member", date(2024, 3, 31)) == (pytest.approx(23.0), 0.0, "L1")
    start, stop = day_slots(date(2024, 3, 31))
    assert len(store.profile_history(SITE_ID, "member", start, stop)) == 0


def test_tor_7_1_reimport_changes_nothing_and_bytes_are_archived(store: DuckDBStore) -> None:
    import_files(store, SITE_ID, [SPRING, AUTUMN], format="eda", now=WHEN)
    before = store.fingerprint(SITE_ID)
    results = import_files(store, SITE_ID, [SPRING, AUTUMN], format="eda", now=WHEN)
    assert [r.status for r in results] == ["already imported, batch 1", "already imported, batch 2"]
    assert store.fingerprint(SITE_ID) == before
    assert store.batch_content(1) == SPRING.read_bytes()
    assert [b.format for b in store.batches(SITE_ID)] == ["eda", "eda"]


def test_zip_archive_and_folder_members_are_batches_of_their_own(
    store: DuckDBStore, tmp_path: Path
) -> None:
    archive = tmp_path / "delivery.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.write(SPRING, "2024-03/spring.xml")
        z.write(AUTUMN, "2024-10/autumn.xml")
    results = import_files(store, SITE_ID, [archive], format="eda", now=WHEN)
    assert [r.file for r in results] == [
        f"{archive}!2024-03/spring.xml",
        f"{archive}!2024-10/autumn.xml",
    ]
    batches = store.batches(SITE_ID)
    assert [b.source for b in batches] == [r.file for r in results]
    assert store.batch_content(batches[1].batch) == AUTUMN.read_bytes()
    folder = tmp_path / "inbox"
    folder.mkdir()
    (folder / "a.xml").write_bytes(SPRING.read_bytes())
    (folder / ".hidden.xml").write_text("not read")
    (result,) = import_files(store, SITE_ID, [folder], now=WHEN)
    assert result.status == f"already imported, batch {batches[0].batch}"


def test_rejected_messages_list_every_problem_and_change_nothing(
    store: DuckDBStore, tmp_path: Path
) -> None:
    unknown = tmp_path / "unknown.xml"
    unknown.write_text(
        SPRING.read_text(encoding="utf-8").replace(MEMBER_ID, "AT0099990000000000000000000999999"),
        encoding="utf-8",
    )
    wrong_direction = tmp_path / "wrong-direction.xml"  # consumption for an export point
    wrong_direction.write_text(
        SPRING.read_text(encoding="utf-8").replace(MEMBER_ID, PRODUCER_ID), encoding="utf-8"
    )
    before = store.fingerprint(SITE_ID)
    with pytest.raises(InvalidInput) as caught:
        import_files(store, SITE_ID, [SPRING, unknown, wrong_direction], format="eda", now=WHEN)
    text = str(caught.value)
    assert "AT0099990000000000000000000999999 of the message is not a metering point" in text
    assert "1-1:1.9.0 G.01 (consumption, import)" in text
    assert "export metering point of location 'producer'" in text
    assert {p.file for p in caught.value.problems} == {str(unknown), str(wrong_direction)}
    assert store.fingerprint(SITE_ID) == before
    with pytest.raises(InvalidInput, match="schema"):
        import_files(store, SITE_ID, [DATA / "schema_violation_01p41.xml"], format="eda")
    assert store.fingerprint(SITE_ID) == before


def _prosumer_messages(tmp_path: Path) -> tuple[Path, Path]:
    """Consumption (0.25 kWh per quarter hour) and feed-in (0.05 kWh) of the prosumer on the
    spring change day, one message per metering point as EDA sends them."""
    text = SPRING.read_text(encoding="utf-8")
    consumption = tmp_path / "prosumer-consumption.xml"
    consumption.write_text(text.replace(MEMBER_ID, PROSUMER_IMPORT), encoding="utf-8")
    feed_in = tmp_path / "prosumer-feed-in.xml"
    feed_in.write_text(
        text.replace(MEMBER_ID, PROSUMER_EXPORT)
        .replace('MeterCode="1-1:1.9.0 G.01"', 'MeterCode="1-1:2.9.0 G.01"')
        .replace("<ns0:BQ>0.250000</ns0:BQ>", "<ns0:BQ>0.050000</ns0:BQ>")
        .replace("AT999999202404010600000000000000001", "AT999999202404010600000000000000009"),
        encoding="utf-8",
    )
    return consumption, feed_in


def test_the_two_messages_of_a_prosumer_are_joined_per_quarter_hour(
    store: DuckDBStore, tmp_path: Path
) -> None:
    consumption, feed_in = _prosumer_messages(tmp_path)
    import_files(store, SITE_ID, [consumption], format="eda", now=WHEN)
    # one direction alone is no load profile value yet (the feed-in is unknown) ...
    assert store.counts(SITE_ID)["profile_values"] == 0
    start, stop = day_slots(date(2024, 3, 31))
    kept = eda_series(store, SITE_ID, PROSUMER_IMPORT, "1-1:1.9.0 G.01", start, stop)
    assert kept is not None and kept.import_kwh.sum() == pytest.approx(23.0)
    # ... the feed-in message completes every quarter hour: 92 x 0.25 and 92 x 0.05 kWh
    import_files(store, SITE_ID, [feed_in], format="eda", now=WHEN)
    imp, exp, quality = _day(store, "prosumer", date(2024, 3, 31))
    assert imp == pytest.approx(23.0, abs=1e-9)
    assert exp == pytest.approx(4.6, abs=1e-9)
    assert quality == "L3"  # the worse quality of the two directions per quarter hour
    # both messages in one import give the same, whatever their order
    other = DuckDBStore(":memory:")
    apply_site_text(other, SITE, "site.toml", now=WHEN)
    import_files(other, SITE_ID, [feed_in, consumption], now=WHEN)
    assert _day(other, "prosumer", date(2024, 3, 31)) == (imp, exp, quality)
    before = other.fingerprint(SITE_ID)
    rebuild_profiles(other, SITE_ID, now=WHEN)
    assert other.fingerprint(SITE_ID)["profile_values"] == before["profile_values"]


def test_rebuild_reads_archived_eda_batches_again(store: DuckDBStore) -> None:
    import_files(store, SITE_ID, [SPRING, AUTUMN], format="eda", now=WHEN)
    before = store.fingerprint(SITE_ID)
    result = rebuild_profiles(store, SITE_ID, now=WHEN)
    assert (result.batches, result.changed) == (2, 0)
    after = store.fingerprint(SITE_ID)
    assert after["profile_values"] == before["profile_values"]
    assert after["interval_values"] == before["interval_values"]


def _eda_store(files: list[Path]) -> DuckDBStore:
    store = DuckDBStore(":memory:")
    apply_site_text(store, SITE, "site.toml", now=WHEN)
    for n, path in enumerate(files):
        import_files(store, SITE_ID, [path], format="eda", now=WHEN + timedelta(minutes=n))
    return store


@pytest.mark.parametrize(
    ("serial", "rebuilt", "read"),
    [
        ("20000002", ("producer",), ["autumn"]),
        ("10000001", ("member",), ["spring", "daily"]),  # its flows and its daily series
        ("30000003", ("prosumer",), ["prosumer-consumption", "prosumer-feed-in"]),
    ],
)
def test_tor_7_1_a_new_version_reads_again_only_the_messages_of_what_it_changes(
    tmp_path: Path,
    parsed: list[str],
    against_whole: Callable[..., Any],
    serial: str,
    rebuilt: tuple[str],
    read: list[str],
) -> None:
    """A meter installed earlier: only its location's messages are read again (one metering
    point per message), with the same result as a whole rebuild."""
    names = {"spring": SPRING, "autumn": AUTUMN, "daily": DAILY}
    names["prosumer-consumption"], names["prosumer-feed-in"] = _prosumer_messages(tmp_path)
    files = list(names.values())
    changed = SITE.replace(
        f'serial = "{serial}"\ninstalled = 2024-01-01',
        f'serial = "{serial}"\ninstalled = 2023-06-01',
    )
    assert changed != SITE
    later = datetime(2024, 11, 20, tzinfo=UTC)
    _, result, built = against_whole(lambda: _eda_store(files), SITE_ID, changed, later)
    assert (result.locations, built) == (rebuilt, set(rebuilt))
    assert parsed == [p.name for p in files if p in [names[r] for r in read]]


def test_cli_import_format_eda(tmp_path: Path) -> None:
    runner = CliRunner()
    site = tmp_path / "site.toml"
    site.write_text(SITE, encoding="utf-8")
    db = tmp_path / "store.duckdb"
    env = {"COLUMNS": "250", "NO_COLOR": "1"}
    done = runner.invoke(app, ["site", "apply", str(site), "--db", str(db)], env=env)
    assert done.exit_code == 0, done.output
    args = ["import", "--site", SITE_ID, "--format", "eda", str(SPRING), "--db", str(db), "--json"]
    done = runner.invoke(app, args, env=env)
    assert done.exit_code == 0, done.output
    (row,) = json.loads(done.output)
    assert (row["kind"], row["rows"], row["slots"], row["status"]) == ("eda", 276, 92, "imported")
    bad = runner.invoke(
        app,
        [
            "import",
            "--site",
            SITE_ID,
            "--format",
            "eda",
            str(DATA / "not_xml.csv"),
            "--db",
            str(db),
        ],
        env=env,
    )
    assert bad.exit_code == 1
    assert "not_xml.csv" in bad.output
