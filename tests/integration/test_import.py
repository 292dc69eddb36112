"""CSV import into the store and the guarantees around it (TOR-7.1 raw archive, TOR-4.4, TOR-4.2
92/100-slot days, TOR-5.0b/A2, TOR-7.2.1, Q-2), and the profile export."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lastgang.concept.load import load_site
from lastgang.errors import InvalidInput
from lastgang.ingest.csv_readings import parse_csv_readings
from lastgang.quality import Quality
from lastgang.services import (
    apply_site,
    apply_site_text,
    export_profile,
    import_bytes,
    import_files,
    rebuild_profiles,
)
from lastgang.store.duckdb_store import DuckDBStore
from lastgang.timegrid import parse_timestamps

DATA = Path(__file__).resolve().parent.parent / "data"
SITE = DATA / "site-basic.toml"
SITE_ID = "graz-lend-12"
HAK = DATA / "registers-hak-2024-03-31.csv"
TOP1_SPRING = DATA / "intervals-top1-2024-03-31.csv"
TOP1_AUTUMN = DATA / "intervals-top1-2024-10-27.csv"
PHASES = DATA / "phases-top2-tor-a2.csv"
BAD = DATA / "registers-bad.csv"
WHEN = datetime(2024, 11, 5, 8, 0, tzinfo=UTC)
TOP1_ID = "AT0081000801000000000000000100011"
TOP2_ID = "AT0081000801000000000000000100021"


def new_store() -> DuckDBStore:
    store = DuckDBStore(":memory:")
    apply_site(store, SITE, now=WHEN)
    return store


@pytest.fixture
def store() -> DuckDBStore:
    return new_store()


def _instants(labels: list[str]) -> list[int]:
    epochs, problems = parse_timestamps(labels)
    assert problems == []
    return [int(e) for e in epochs]


def _csv_rows(path: Path) -> list[list[str]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line.split(",") for line in lines[1:] if line]


# --- registers, transformer constant, archive ---------------------------------------------


def test_tor_4_4_register_import_applies_the_transformer_constant(store: DuckDBStore) -> None:
    (result,) = import_files(store, SITE_ID, [HAK], now=WHEN)
    assert (result.kind, result.rows, result.batch, result.metering_points) == (
        "registers",
        186,
        1,
        1,
    )
    assert result.slots == 92
    # secondary +25 Wh per quarter hour x CT 200/5 (constant 40) = 1 kWh primary, 92 quarter
    # hours on the spring change day; export +5 Wh in the first 40 quarter hours = 0.2 kWh each
    day = export_profile(store, SITE_ID, "hak", date(2024, 3, 31), date(2024, 3, 31), "day")
    assert day.end == ["2024-03-31 24:00+02:00"]
    assert day.import_kwh[0] == pytest.approx(92.0, abs=1e-9)
    assert day.export_kwh[0] == pytest.approx(8.0, abs=1e-9)
    assert day.quality == ["L1"]
    quarter = export_profile(store, SITE_ID, "hak", date(2024, 3, 31), date(2024, 3, 31))
    assert len(quarter.end) == 92
    np.testing.assert_allclose(quarter.import_kwh, np.ones(92), atol=1e-9)
    np.testing.assert_allclose(quarter.export_kwh[:40], np.full(40, 0.2), atol=1e-9)
    np.testing.assert_allclose(quarter.export_kwh[40:], np.zeros(52), atol=1e-9)
    # the clocks jump from 02:00 winter time to 03:00 summer time: 01:45-02:00 ends at 03:00+02:00
    assert quarter.end[6:9] == [
        "2024-03-31 01:45+01:00",
        "2024-03-31 03:00+02:00",
        "2024-03-31 03:15+02:00",
    ]
    profile = store.load_profiles(SITE_ID, ["hak"], *_day_slots(store, date(2024, 3, 31)))["hak"]
    assert (profile.batch == 1).all()
    assert {profile.meters[m] for m in profile.meter} == {"LGZ:81234567"}


def _day_slots(store: DuckDBStore, day: date) -> tuple[int, int]:
    from lastgang.timegrid import day_slots

    return day_slots(day, store.site_version(SITE_ID).site.site.timezone)


def test_tor_7_1_raw_bytes_archived_unchanged_with_conversion_factors(
    store: DuckDBStore,
) -> None:
    content = HAK.read_bytes()
    import_files(store, SITE_ID, [HAK], now=WHEN)
    (batch,) = store.batches(SITE_ID)
    assert store.batch_content(batch.batch) == content
    assert batch.sha256 == hashlib.sha256(content).hexdigest()
    assert batch.size == len(content)
    assert batch.format == "csv/registers"
    assert batch.imported_at == WHEN
    assert batch.site_version == 1
    assert batch.factors == {"LGZ:81234567": {"ct": "200/5", "vt": None, "constant": "40"}}


def test_tor_7_1_same_bytes_twice_is_a_no_op(store: DuckDBStore) -> None:
    import_files(store, SITE_ID, [HAK, TOP1_AUTUMN], now=WHEN)
    before = store.fingerprint(SITE_ID)
    results = import_files(store, SITE_ID, [TOP1_AUTUMN, HAK], now=WHEN)
    assert [r.status for r in results] == ["already imported, batch 2", "already imported, batch 1"]
    assert all(r.already_imported for r in results)
    assert store.fingerprint(SITE_ID) == before
    # the same bytes under another name are the same batch
    again = import_bytes(store, SITE_ID, HAK.read_bytes(), "copy-of-hak.csv", now=WHEN)
    assert again.status == "already imported, batch 1"
    assert store.fingerprint(SITE_ID) == before


@pytest.mark.parametrize("step", ["add_readings", "save_profiles", "reading_spans"])
def test_failed_import_leaves_the_store_exactly_as_it_was(
    store: DuckDBStore, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    import_files(store, SITE_ID, [TOP1_AUTUMN], now=WHEN)
    before = store.fingerprint(SITE_ID)

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(DuckDBStore, step, broken)
    with pytest.raises(RuntimeError, match="disk full"):
        import_files(store, SITE_ID, [HAK, TOP1_SPRING], now=WHEN)
    assert store.fingerprint(SITE_ID) == before
    monkeypatch.undo()
    results = import_files(store, SITE_ID, [HAK], now=WHEN)
    assert results[0].status == "imported"


def test_rebuild_from_the_archive_gives_identical_results(store: DuckDBStore) -> None:
    # out of time order on purpose: the spring day comes after the autumn day
    import_files(store, SITE_ID, [TOP1_AUTUMN, HAK], now=WHEN)
    import_files(store, SITE_ID, [PHASES], now=WHEN)
    import_files(store, SITE_ID, [TOP1_SPRING], now=WHEN)
    before = store.fingerprint(SITE_ID)
    assert store.counts(SITE_ID)["profile_values"] > 0
    result = rebuild_profiles(store, SITE_ID, now=WHEN)
    assert (result.batches, result.changed) == (4, 0)
    assert store.fingerprint(SITE_ID) == before


# --- rejected files -----------------------------------------------------------------------


def test_csv_with_bad_rows_is_rejected_whole_listing_every_problem(store: DuckDBStore) -> None:
    before = store.fingerprint(SITE_ID)
    with pytest.raises(InvalidInput) as caught:
        import_files(store, SITE_ID, [BAD], now=WHEN)
    problems = caught.value.problems
    assert {p.file for p in problems} == {str(BAD)}
    assert [(p.line, p.column) for p in problems] == [
        (3, "time"),  # no UTC offset
        (4, "meter"),  # unknown meter
        (5, "obis"),  # not an OBIS code
        (6, "value"),  # not a number
        (7, "time"),  # duplicate of line 2
        (8, "time"),  # earlier than line 6
        (9, "unit"),  # MWh
        (10, "status"),  # unknown status code
        (11, "obis"),  # reactive register not configured for this meter
        (12, "time"),  # after the meter was removed
    ]
    reasons = {p.line: p.reason for p in problems}
    assert "no UTC offset" in reasons[3]
    assert "line 2" in reasons[7]
    assert "line 6" in reasons[8]
    assert "installed period" in reasons[12]
    assert store.fingerprint(SITE_ID) == before


def test_one_bad_file_rejects_the_whole_import(store: DuckDBStore) -> None:
    with pytest.raises(InvalidInput) as caught:
        import_files(store, SITE_ID, [HAK, BAD, TOP1_SPRING], now=WHEN)
    assert {p.file for p in caught.value.problems} == {str(BAD)}
    assert store.batches(SITE_ID) == []


def test_interval_csv_problems_are_listed_with_line_and_column(store: DuckDBStore) -> None:
    content = (
        "end,metering_point,import_kwh,export_kwh,quality\n"
        f"2024-05-06T00:15+02:00,{TOP2_ID},0.1,0,L1\n"
        f"2024-05-06T00:20+02:00,{TOP2_ID},0.1,0,L1\n"
        "2024-05-06T00:45+02:00,AT0081000801000000000000000999999,0.1,0,L1\n"
        f"2024-05-06T01:00+02:00,{TOP2_ID},-0.1,0,L1\n"
        f"2024-05-06T01:15+02:00,{TOP2_ID},0.1,0,L9\n"
        f"2024-05-06T00:15+02:00,{TOP2_ID},0.1,0,L1\n"
        f"2024-05-06T01:30+02:00,{TOP2_ID},0.1,,L1\n"
        f"2024-05-06T01:45+02:00,top2,0.1,zero,L1\n"
    ).encode()
    with pytest.raises(InvalidInput) as caught:
        import_bytes(store, SITE_ID, content, "market.csv", now=WHEN)
    assert [(p.line, p.column) for p in caught.value.problems] == [
        (3, "end"),  # not the end of a quarter hour
        (4, "metering_point"),  # unknown ID
        (5, "import_kwh"),  # negative
        (6, "quality"),  # L9
        (7, "end"),  # duplicate of line 2
        (8, "export_kwh"),  # empty
        (9, "export_kwh"),  # not a number
    ]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"time,meter,obis,valeu\n", "unknown column 'valeu'"),
        (b"when,who\n2024-01-01T00:00Z,x\n", "not one of the known formats"),
        (b"", "empty"),
        (b"time,meter,l1_kw,l2_kw,l3_kw\n2024-01-01T00:00Z,\xff\xfe,1,1,1\n", "not UTF-8"),
        (
            b"end,from,to,metering_point,import_kwh,export_kwh\n",
            "either an 'end' column",
        ),
    ],
)
def test_bad_headers_and_encodings_are_rejected(content: bytes, reason: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_csv_readings(content, load_site(SITE), "odd.csv")
    assert any(reason in p.reason for p in caught.value.problems), caught.value


def test_lines_with_too_many_fields_are_named(store: DuckDBStore) -> None:
    content = (
        "end,metering_point,import_kwh,export_kwh\n"
        f"2024-05-06T00:15+02:00,{TOP2_ID},0.1,0\n"
        f"2024-05-06T00:30+02:00,{TOP2_ID},0.1,0,L1,extra\n"
    ).encode()
    with pytest.raises(InvalidInput) as caught:
        import_bytes(store, SITE_ID, content, "ragged.csv", now=WHEN)
    assert [p.line for p in caught.value.problems] == [3]


def test_blanks_around_cells_and_crlf_line_ends_are_read_like_clean_cells() -> None:
    clean, messy = new_store(), new_store()
    import_files(clean, SITE_ID, [HAK], now=WHEN)
    text = HAK.read_text(encoding="utf-8").replace(",", " , ").replace("\n", "\r\n")
    result = import_bytes(messy, SITE_ID, text.encode(), "messy.csv", now=WHEN)
    assert result.rows == 186
    assert (
        clean.fingerprint(SITE_ID)["profile_values"] == messy.fingerprint(SITE_ID)["profile_values"]
    )


# --- round trips ----------------------------------------------------------------------------


def test_tor_4_2_round_trip_on_a_92_and_a_100_slot_day(store: DuckDBStore) -> None:
    import_files(store, SITE_ID, [TOP1_SPRING, TOP1_AUTUMN], now=WHEN)
    spring = export_profile(store, SITE_ID, TOP1_ID, date(2024, 3, 31), date(2024, 3, 31))
    rows = _csv_rows(TOP1_SPRING)
    assert len(spring.end) == len(rows) == 92
    assert _instants(spring.end) == _instants([r[1] for r in rows])  # the "to" column
    assert spring.import_kwh.tolist() == [0.5] * 92
    assert spring.export_kwh.tolist() == [0.0] * 92
    assert spring.quality == ["L1"] * 92
    autumn = export_profile(
        store,
        SITE_ID,
        "AT.008100.08010.00000000000000100011",
        date(2024, 10, 27),
        date(2024, 10, 27),
    )
    rows = _csv_rows(TOP1_AUTUMN)
    assert len(autumn.end) == len(rows) == 100
    assert _instants(autumn.end) == _instants([r[0] for r in rows])
    assert autumn.import_kwh.tolist() == [float(r[2]) for r in rows]
    assert autumn.quality == [r[4] for r in rows]
    # the repeated hour keeps its labels apart by the offset
    assert autumn.end[7:12] == [
        "2024-10-27 02:00+02:00",
        "2024-10-27 02:15+02:00",
        "2024-10-27 02:30+02:00",
        "2024-10-27 02:45+02:00",
        "2024-10-27 02:00+01:00",
    ]
    assert autumn.end[-1] == "2024-10-27 24:00+01:00"
    # by hand: each of the 25 hours holds 0.25 + 3 x 0.125 = 0.625 kWh
    hourly = export_profile(store, SITE_ID, "top1", date(2024, 10, 27), date(2024, 10, 27), "1h")
    assert len(hourly.end) == 25
    assert hourly.import_kwh.tolist() == [0.625] * 25
    assert hourly.quality.count("L2") == 1  # the hour holding the two L2 values
    days = export_profile(store, SITE_ID, "top1", date(2024, 3, 30), date(2024, 3, 31), "day")
    assert days.end == ["2024-03-30 24:00+01:00", "2024-03-31 24:00+02:00"]
    assert days.quality == ["missing", "L1"]
    assert np.isnan(days.import_kwh[0])
    assert days.import_kwh[1] == 46.0  # 92 x 0.5
    autumn_day = export_profile(
        store, SITE_ID, "top1", date(2024, 10, 27), date(2024, 10, 27), "day"
    )
    assert autumn_day.import_kwh.tolist() == [15.625]  # 25 x 0.25 + 75 x 0.125
    assert autumn_day.quality == ["L2"]


def test_profile_csv_is_unrounded_and_labelled_by_period_end(store: DuckDBStore) -> None:
    import_files(store, SITE_ID, [HAK], now=WHEN)
    text = export_profile(
        store, SITE_ID, "hak", date(2024, 3, 31), date(2024, 3, 31), "1h"
    ).to_csv()
    lines = text.splitlines()
    assert lines[0] == "end,import_kwh,export_kwh,quality"
    assert len(lines) == 1 + 23  # the spring change day has 23 hours
    first = lines[1].split(",")
    assert first[0] == "2024-03-31 01:00+01:00"
    assert float(first[1]) == pytest.approx(4.0, abs=1e-9)
    assert first[3] == "L1"


def test_tor_a2_phase_balancing_through_the_import(store: DuckDBStore) -> None:
    import_files(store, SITE_ID, [PHASES], now=WHEN)
    table = export_profile(store, SITE_ID, TOP2_ID, date(2024, 5, 6), date(2024, 5, 6))
    i = table.end.index("2024-05-06 12:15+02:00")
    # 10 min at -0.6 kW = 0.1 kWh export, 5 min at +1.2 kW = 0.1 kWh import (not 0 net)
    assert table.import_kwh[i] == pytest.approx(0.1, abs=1e-12)
    assert table.export_kwh[i] == pytest.approx(0.1, abs=1e-12)
    assert table.quality[i] == "L1"


def test_tor_7_2_1_metering_point_resolves_the_meter_installed_at_that_time(
    store: DuckDBStore,
) -> None:
    content = (
        "time,meter,obis,value\n"
        f"2024-06-15T09:00+02:00,{TOP1_ID},1-0:1.8.0,4711.5\n"
        f"2024-06-15T10:00+02:00,{TOP1_ID},1-0:1.8.0,4712.0\n"
        f"2024-06-15T10:45+02:00,{TOP1_ID},1-0:1.8.0,0.5\n"
        f"2024-06-15T11:00+02:00,{TOP1_ID},1-0:1.8.0,0.75\n"
    ).encode()
    import_bytes(store, SITE_ID, content, "exchange.csv", now=WHEN)
    keys = ["ISK:1ISK0070001234", "ISK:1ISK0070005678"]
    t0 = int(datetime(2024, 6, 15, 6, 0, tzinfo=UTC).timestamp())
    readings = store.readings(SITE_ID, keys, t0, t0 + 4 * 3600)
    old = readings[keys[0]].registers["1-0:1.8.0"]
    new = readings[keys[1]].registers["1-0:1.8.0"]
    assert old.value.tolist() == [4711.5, 4712.0]
    assert new.value.tolist() == [0.5, 0.75]


def test_tor_7_2_1_exchange_instant_needs_the_serial(store: DuckDBStore) -> None:
    content = f"time,meter,obis,value\n2024-06-15T10:30+02:00,{TOP1_ID},1-0:1.8.0,4712.2\n"
    with pytest.raises(InvalidInput) as caught:
        import_bytes(store, SITE_ID, content.encode(), "at-exchange.csv", now=WHEN)
    (problem,) = caught.value.problems
    assert (problem.line, problem.column) == (2, "meter")
    assert "serial" in problem.reason


def _autumn_without(skip: set[int]) -> bytes:
    lines = TOP1_AUTUMN.read_text(encoding="utf-8").splitlines()
    kept = [lines[0]] + [line for k, line in enumerate(lines[1:]) if k not in skip]
    return ("\n".join(kept) + "\n").encode()


def _autumn_only(keep: set[int]) -> bytes:
    lines = TOP1_AUTUMN.read_text(encoding="utf-8").splitlines()
    kept = [lines[0]] + [line for k, line in enumerate(lines[1:]) if k in keep]
    return ("\n".join(kept) + "\n").encode()


def test_q_2_later_measurement_replaces_substitutes_and_keeps_the_history(
    store: DuckDBStore,
) -> None:
    gap = {40, 41, 42}
    import_bytes(store, SITE_ID, _autumn_without(gap), "first.csv", now=WHEN)
    first = export_profile(store, SITE_ID, "top1", date(2024, 10, 27), date(2024, 10, 27))
    # a gap of 45 minutes between two 0.125 kWh values: linear interpolation, L2
    assert [first.import_kwh[k] for k in sorted(gap)] == [0.125, 0.125, 0.125]
    assert [first.quality[k] for k in sorted(gap)] == ["L2", "L2", "L2"]
    later = datetime(2024, 11, 6, tzinfo=UTC)
    import_bytes(store, SITE_ID, _autumn_only(gap), "late.csv", now=later)
    second = export_profile(store, SITE_ID, "top1", date(2024, 10, 27), date(2024, 10, 27))
    assert [second.import_kwh[k] for k in sorted(gap)] == [0.25, 0.125, 0.125]
    assert [second.quality[k] for k in sorted(gap)] == ["L1", "L1", "L1"]
    start, _ = _day_slots(store, date(2024, 10, 27))
    history = store.profile_history(SITE_ID, "top1", start, start + 100)
    assert sorted(history.slot.tolist()) == [start + k for k in sorted(gap)]
    assert set(history.quality.tolist()) == {int(Quality.L2)}
    assert set(history.batch.tolist()) == {1}  # the import that computed the substitutes
    assert set(history.replaced_by_batch.tolist()) == {2}
    assert set(history.replaced_at) == {later}


# --- re-import invariant ---------------------------------------------------------------------

_DAYS = [date(2024, 3, 31), date(2024, 5, 6), date(2024, 10, 27), date(2025, 1, 15)]


def _interval_file(
    day: date, imports: list[float], exports: list[float], qualities: list[str], dotted: bool
) -> bytes:
    from lastgang.timegrid import day_slots, end_labels

    start, _ = day_slots(day, "Europe/Vienna")
    labels = end_labels(start, start + len(imports), "Europe/Vienna")
    mp = "AT.008100.08010.00000000000000100021" if dotted else TOP2_ID
    rows = [
        f"{label},{mp},{imp!r},{exp!r},{q}"
        for label, imp, exp, q in zip(labels, imports, exports, qualities, strict=True)
    ]
    return ("end,metering_point,import_kwh,export_kwh,quality\n" + "\n".join(rows) + "\n").encode()


energies = st.floats(min_value=0.0, max_value=25.0, allow_nan=False, allow_infinity=False)


@settings(max_examples=12)
@given(
    day=st.sampled_from(_DAYS),
    values=st.lists(
        st.tuples(energies, energies, st.sampled_from(["L1", "L1", "L2", "L3"])),
        min_size=1,
        max_size=40,
    ),
)
def test_importing_the_same_data_twice_changes_nothing(
    day: date, values: list[tuple[float, float, str]]
) -> None:
    store = new_store()
    imports, exports, qualities = (list(x) for x in zip(*values, strict=True))
    first = _interval_file(day, imports, exports, qualities, dotted=False)
    import_bytes(store, SITE_ID, first, "a.csv", now=WHEN)
    before = store.fingerprint(SITE_ID)
    again = import_bytes(store, SITE_ID, first, "a-again.csv", now=WHEN)
    assert again.already_imported
    assert store.fingerprint(SITE_ID) == before
    # the same values written differently are a new batch, but no profile value changes
    other = _interval_file(day, imports, exports, qualities, dotted=True)
    result = import_bytes(store, SITE_ID, other, "b.csv", now=WHEN)
    assert result.batch == 2
    after = store.fingerprint(SITE_ID)
    assert after["profile_values"] == before["profile_values"]
    assert after["profile_history"] == before["profile_history"]
    store.close()


def test_the_examples_of_the_data_formats_page_import() -> None:
    page = (DATA.parent.parent / "docs" / "data-formats.md").read_text(encoding="utf-8")
    blocks = [b.split("```", 1)[0] for b in page.split("```csv\n")[1:]]
    inputs = [b for b in blocks if not b.startswith("end,import_kwh")]
    assert len(inputs) == 5
    for i, block in enumerate(inputs):
        store = new_store()
        result = import_bytes(store, SITE_ID, block.encode(), f"example-{i}.csv", now=WHEN)
        assert result.status == "imported"
        assert result.rows == len(block.strip().splitlines()) - 1
        store.close()


def test_tor_4_4_a_corrected_transformer_ratio_rebuilds_the_profiles_keeping_the_history(
    store: DuckDBStore,
) -> None:
    import_files(store, SITE_ID, [HAK], now=WHEN)
    corrected = SITE.read_text(encoding="utf-8").replace('ratio = "200/5"', 'ratio = "100/5"')
    later = datetime(2024, 11, 20, tzinfo=UTC)
    result = apply_site_text(store, corrected, "corrected.toml", now=later)
    assert result.changed_locations == ("hak",)
    assert result.rebuilt is not None and result.rebuilt.changed == 92
    # 25 Wh x 20 = 0.5 kWh per quarter hour now, 92 quarter hours
    day = export_profile(store, SITE_ID, "hak", date(2024, 3, 31), date(2024, 3, 31), "day")
    assert day.import_kwh[0] == pytest.approx(46.0, abs=1e-9)
    start, stop = _day_slots(store, date(2024, 3, 31))
    history = store.profile_history(SITE_ID, "hak", start, stop)
    assert len(history) == 92
    assert float(history.import_kwh.sum()) == pytest.approx(92.0, abs=1e-9)
    assert set(history.replaced_at) == {later}
    # the archive still names the factors in force when the file came in
    assert store.batches(SITE_ID)[0].factors["LGZ:81234567"]["ct"] == "200/5"


def test_a_configuration_that_refuses_archived_data_is_not_applied(store: DuckDBStore) -> None:
    import_files(store, SITE_ID, [HAK], now=WHEN)
    before = store.fingerprint(SITE_ID)
    other_meter = SITE.read_text(encoding="utf-8").replace('serial = "81234567"', 'serial = "999"')
    with pytest.raises(InvalidInput) as caught:
        apply_site_text(store, other_meter, "wrong.toml", now=WHEN)
    assert any("81234567" in p.reason for p in caught.value.problems)
    assert store.fingerprint(SITE_ID) == before
    assert len(store.site_versions(SITE_ID)) == 1


# --- a folder of large files ------------------------------------------------------------------


def _counting(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The sources the import parses, in order (every parse goes through services._parse)."""
    from lastgang import services

    parsed: list[str] = []
    real = services._parse

    def counting(content: bytes, source: str, *args: object, **kwargs: object) -> object:
        parsed.append(Path(source).name)
        return real(content, source, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(services, "_parse", counting)
    return parsed


def _counting_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the files the import reads from disk, in order."""
    from lastgang.ingest import dispatch

    reads: list[str] = []
    real_read = dispatch._read_file

    def counting_read(path: Path) -> bytes:
        reads.append(path.name)
        return real_read(path)

    monkeypatch.setattr(dispatch, "_read_file", counting_read)
    return reads


def test_files_beyond_the_kept_bytes_wait_on_disk_with_the_same_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A folder of large files is not held at once: beyond CHECKED_BYTES_KEPT (of readings) a
    file's readings wait in a temporary file after its check, and its bytes are
    read again when it is stored. Each file is parsed once; the store is the same as when
    every file is kept, and nothing is left in the temporary folder."""
    from lastgang import services

    folder = tmp_path / "in"
    folder.mkdir()
    for k, path in enumerate((TOP1_AUTUMN, HAK, PHASES, TOP1_SPRING)):
        (folder / f"{k}-{path.name}").write_bytes(path.read_bytes())
    reads = _counting_reads(monkeypatch)
    kept = new_store()
    import_files(kept, SITE_ID, [folder], now=WHEN)
    names = sorted(p.name for p in folder.iterdir())
    assert reads == names  # all kept: each read once
    reads.clear()
    monkeypatch.setattr(services, "CHECKED_BYTES_KEPT", 1)  # no file fits
    parsed = _counting(monkeypatch)
    spills: list[Path] = []
    real_dir = services.tempfile.TemporaryDirectory

    def noting_dir(*args: object, **kwargs: object) -> object:
        made = real_dir(*args, **kwargs)  # type: ignore[call-overload]
        spills.append(Path(made.name))
        return made

    monkeypatch.setattr(services.tempfile, "TemporaryDirectory", noting_dir)
    again = DuckDBStore(tmp_path / "store.duckdb")  # a store file: the readings wait beside it
    apply_site(again, SITE, now=WHEN)
    results = import_files(again, SITE_ID, [folder], now=WHEN)
    assert [r.status for r in results] == ["imported"] * 4
    assert parsed == names  # once each
    assert reads == names + names  # each read again for its import
    assert again.fingerprint(SITE_ID) == kept.fingerprint(SITE_ID)
    assert [b.sha256 for b in again.batches(SITE_ID)] == [b.sha256 for b in kept.batches(SITE_ID)]
    assert len(spills) == 1 and spills[0].parent == tmp_path and not spills[0].exists()


def test_a_checked_files_bytes_are_let_go_and_its_prepared_archive_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once a file is checked its bytes are not held while its readings are stored: the
    archive prepared from them while it was checked is stored as it is (the bytes are read
    once, and archived exactly)."""

    passed: list[bytes | None] = []
    real_add = DuckDBStore.add_batch

    def noting(self: DuckDBStore, site_id: str, content: bytes | None, *a: Any, **k: Any) -> Any:
        passed.append(content)
        return real_add(self, site_id, content, *a, **k)

    monkeypatch.setattr(DuckDBStore, "add_batch", noting)
    reads = _counting_reads(monkeypatch)
    store = new_store()
    results = import_files(store, SITE_ID, [TOP1_SPRING, HAK], now=WHEN)
    assert passed == [None, None] and reads == [TOP1_SPRING.name, HAK.name]
    for result, path in zip(results, (TOP1_SPRING, HAK), strict=True):
        assert store.batch_content(result.batch) == path.read_bytes()


def test_readings_a_killed_import_put_aside_are_removed_by_the_next_import(
    tmp_path: Path,
) -> None:
    """A folder of readings put aside is left behind when its import is killed outright; the
    next import of the same store removes it, but not a running process's, nor another
    store's."""
    import subprocess
    import sys

    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    dead = int(gone.stdout)  # a process that has ended
    store = DuckDBStore(tmp_path / "store.duckdb")
    apply_site(store, SITE, now=WHEN)
    left = tmp_path / f".lastgang-import-store.duckdb-{dead}-abc"
    mine = tmp_path / f".lastgang-import-store.duckdb-{os.getpid()}-def"
    other = tmp_path / f".lastgang-import-other.duckdb-{dead}-ghi"
    for folder in (left, mine, other):
        folder.mkdir()
        (folder / "0.pickle").write_bytes(b"readings")
    import_files(store, SITE_ID, [HAK], now=WHEN)
    assert not left.exists() and mine.exists() and other.exists()
    assert store.batch_count(SITE_ID) == 1


def test_a_bad_file_beyond_the_kept_bytes_still_rejects_the_whole_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lastgang import services

    monkeypatch.setattr(services, "CHECKED_BYTES_KEPT", 0)
    store = new_store()
    with pytest.raises(InvalidInput) as caught:
        import_files(store, SITE_ID, [HAK, TOP1_SPRING, BAD], now=WHEN)
    assert {p.file for p in caught.value.problems} == {str(BAD)}
    assert store.batches(SITE_ID) == []


def _two_files_then(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, action: Callable[[Path], object]
) -> tuple[Path, Path, Callable[..., int]]:
    """Two files whose readings are put aside after their check (none is kept); ``action``
    is done to the second file while the first is being stored. Gives both files and the
    store step as it was, to put back."""
    from lastgang import services

    monkeypatch.setattr(services, "CHECKED_BYTES_KEPT", 0)
    hak, top1 = tmp_path / "hak.csv", tmp_path / "top1.csv"
    hak.write_bytes(HAK.read_bytes())
    top1.write_bytes(TOP1_SPRING.read_bytes())
    real = services._store_batch

    def then_act(*args: object, **kwargs: object) -> int:
        action(top1)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(services, "_store_batch", then_act)
    return hak, top1, real


def test_a_file_changed_between_its_check_and_its_import_is_not_imported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file read again for its import must be the file checked: its SHA-256 is compared.
    The files before it are imported; importing again imports the rest."""
    from lastgang import services

    def change(path: Path) -> None:
        path.write_bytes(TOP1_SPRING.read_bytes().replace(b"\n", b"\r\n"))

    hak, top1, real = _two_files_then(tmp_path, monkeypatch, change)
    store = new_store()
    with pytest.raises(InvalidInput) as caught:
        import_files(store, SITE_ID, [hak, top1], now=WHEN)
    assert "changed after it was checked" in caught.value.message
    assert "the 1 input(s) before it were" in caught.value.message
    (problem,) = caught.value.problems
    assert problem.file == str(top1) and "SHA-256 differs" in problem.reason
    assert [b.source for b in store.batches(SITE_ID)] == [str(hak)]
    monkeypatch.setattr(services, "_store_batch", real)
    results = import_files(store, SITE_ID, [hak, top1], now=WHEN)
    assert [r.status for r in results] == ["already imported, batch 1", "imported"]


def test_a_file_removed_before_its_import_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hak, top1, _ = _two_files_then(tmp_path, monkeypatch, Path.unlink)
    store = new_store()
    with pytest.raises(InvalidInput) as caught:
        import_files(store, SITE_ID, [hak, top1], now=WHEN)
    assert caught.value.message == f"{top1}: cannot be read any more (no such file)"
    assert [b.source for b in store.batches(SITE_ID)] == [str(hak)]


def test_a_single_file_is_kept_from_its_check_to_its_import_whatever_its_size(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from lastgang import services

    monkeypatch.setattr(services, "CHECKED_BYTES_KEPT", 0)
    parsed = _counting(monkeypatch)
    store = new_store()
    (result,) = import_files(store, SITE_ID, [TOP1_SPRING], now=WHEN)
    assert result.status == "imported" and parsed == [TOP1_SPRING.name]


# --- zip archives ------------------------------------------------------------------------------


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    import zipfile

    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def test_members_of_a_zip_archive_are_read_when_their_turn_comes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A zip archive of monthly files is not unpacked into memory at once: each member is
    read from the archive when it is checked, and again for its import when its readings
    waited on disk. The store is the one of the plain files."""
    from lastgang import services
    from lastgang.ingest import dispatch

    files = sorted((TOP1_AUTUMN, HAK, TOP1_SPRING), key=lambda p: p.name)  # the archive's order
    archive = _zip(
        tmp_path / "delivery.zip",
        {
            **{f"2024/{p.name}": p.read_bytes() for p in files},
            "__MACOSX/._x.csv": b"junk",
            "2024/.hidden.csv": b"junk",
        },
    )
    plain = new_store()
    import_files(plain, SITE_ID, files, now=WHEN)
    reads: list[str] = []
    real = dispatch._read_member

    def counting(opener: object, name: str, member: str) -> bytes:
        reads.append(name)
        return real(opener, name, member)  # type: ignore[arg-type]

    monkeypatch.setattr(dispatch, "_read_member", counting)
    monkeypatch.setattr(services, "CHECKED_BYTES_KEPT", 1)
    store = new_store()
    results = import_files(store, SITE_ID, [archive], now=WHEN)
    names = [f"2024/{p.name}" for p in files]
    assert [r.file for r in results] == [f"{archive}!{n}" for n in names]
    assert reads == names + names  # checked, then read again for the import
    ours, theirs = store.fingerprint(SITE_ID), plain.fingerprint(SITE_ID)
    assert all(ours[t] == theirs[t] for t in ("interval_values", "profile_values", "raw_chunks"))
    stored = [store.batch_content(b.batch) for b in store.batches(SITE_ID)]
    assert stored == [p.read_bytes() for p in files]


def test_nested_zip_archives_are_expanded_up_to_four_levels(tmp_path: Path) -> None:
    inner = _zip(tmp_path / "inner.zip", {"hak.csv": HAK.read_bytes()}).read_bytes()
    outer = _zip(tmp_path / "outer.zip", {"inner.zip": inner})
    store = new_store()
    (result,) = import_files(store, SITE_ID, [outer], now=WHEN)
    assert result.file == f"{outer}!inner.zip!hak.csv" and result.status == "imported"
    deep = HAK.read_bytes()
    for level in range(5):
        deep = _zip(tmp_path / f"d{level}.zip", {f"d{level}": deep}).read_bytes()
    with pytest.raises(InvalidInput) as caught:
        import_files(new_store(), SITE_ID, [tmp_path / "d4.zip"], now=WHEN)
    (problem,) = caught.value.problems
    assert problem.reason == "zip archives nested too deep (at most 4 levels)"


def test_unreadable_empty_and_too_large_archives_are_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lastgang.ingest import dispatch

    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"PK\x03\x04" + b"\x00" * 40)
    empty = _zip(tmp_path / "empty.zip", {"__MACOSX/._a": b"x"})
    large = _zip(tmp_path / "large.zip", {"hak.csv": HAK.read_bytes()})
    monkeypatch.setattr(dispatch, "MAX_MEMBER_BYTES", 100)
    with pytest.raises(InvalidInput) as caught:
        import_files(new_store(), SITE_ID, [broken, empty, large], now=WHEN)
    reasons = {p.file: p.reason for p in caught.value.problems}
    assert reasons[str(broken)].startswith("not a readable zip archive")
    assert reasons[str(empty)] == "the zip archive has no files"
    assert reasons[f"{large}!hak.csv"].startswith(
        f"member is {len(HAK.read_bytes())} bytes uncompressed, more than the 100 bytes"
    )


def test_an_archive_changed_between_the_check_and_the_import_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lastgang import services

    monkeypatch.setattr(services, "CHECKED_BYTES_KEPT", 1)
    members = {"a/hak.csv": HAK.read_bytes(), "b/top1.csv": TOP1_SPRING.read_bytes()}
    archive = _zip(tmp_path / "delivery.zip", members)
    real = services._store_batch

    def then_change(*args: object, **kwargs: object) -> int:
        changed = {**members, "b/top1.csv": members["b/top1.csv"].replace(b"\n", b"\r\n")}
        _zip(archive, changed)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(services, "_store_batch", then_change)
    store = new_store()
    with pytest.raises(InvalidInput) as caught:
        import_files(store, SITE_ID, [archive], now=WHEN)
    assert caught.value.message.startswith(f"{archive}!b/top1.csv changed after it was checked")
    assert [b.source for b in store.batches(SITE_ID)] == [f"{archive}!a/hak.csv"]


def test_the_change_stamp_is_drawn_again_when_profiles_or_configuration_change(
    store: DuckDBStore,
) -> None:
    """What is computed from a site's profiles and configuration (a chart) may be kept while
    its change stamp stays: an import, a rebuild and a new version draw a new one; a file
    imported again, a refused import and reading draw none."""
    seen = [store.change_stamp(SITE_ID)]
    assert seen[0] is not None and store.change_stamp("no-such-site") is None

    def changed() -> bool:
        stamp = store.change_stamp(SITE_ID)
        new = stamp not in seen
        seen.append(stamp)
        return new

    import_files(store, SITE_ID, [HAK], now=WHEN)
    assert changed()
    import_files(store, SITE_ID, [HAK], now=WHEN)  # already archived: nothing stored
    assert not changed()
    with pytest.raises(InvalidInput):
        import_files(store, SITE_ID, [BAD], now=WHEN)
    assert not changed()
    store.load_profiles(SITE_ID, ["hak"], 0, 10**8)
    assert not changed()
    rebuild_profiles(store, SITE_ID, now=WHEN)
    assert changed()
    apply_site_text(store, SITE.read_text(encoding="utf-8"), "again", now=WHEN, rebuild=False)
    assert changed()
    # another store's stamps are drawn for it alone
    assert new_store().change_stamp(SITE_ID) not in seen


def test_sites_of_a_store_without_change_stamps_get_one_when_opened_for_writing(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.duckdb"
    with DuckDBStore(path) as store:
        apply_site(store, SITE, now=WHEN)
        store.connection.execute("DROP TABLE site_changes")  # as a store written before them
    with DuckDBStore(path, read_only=True) as store:
        assert store.change_stamp(SITE_ID) is None  # nothing to keep charts by
    with DuckDBStore(path) as store:
        stamp = store.change_stamp(SITE_ID)
        assert stamp is not None
    with DuckDBStore(path) as store:  # and keep it
        assert store.change_stamp(SITE_ID) == stamp


def test_an_unknown_profile_target_names_a_dozen_locations_and_counts_the_rest() -> None:
    from lastgang.services import resolve_target

    site = load_site(SITE)
    assert resolve_target(site, TOP1_ID) == "top1"
    with pytest.raises(InvalidInput) as small:
        resolve_target(site, "nowhere")
    assert small.value.args[0].endswith(
        "(locations: " + ", ".join(loc.id for loc in site.locations) + ")"
    )
    base = site.locations[-1]
    many = site.model_copy(
        update={"locations": [base.model_copy(update={"id": f"flat-{i}"}) for i in range(30)]}
    )
    with pytest.raises(InvalidInput) as large:
        resolve_target(many, "nowhere")
    named = ", ".join(f"flat-{i}" for i in range(12))
    assert large.value.args[0].endswith(f"(locations: {named} and 18 more)")
