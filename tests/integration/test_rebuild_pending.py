"""A new configuration rebuilds only the locations it reads otherwise (TOR-7.1 replay).

Every case is checked against the whole rebuild: the same imports, the same configurations
applied without a rebuild, then :func:`rebuild_profiles` of the whole site. Both stores must
hold the same rows in every table (:meth:`DuckDBStore.fingerprint`)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lastgang import services
from lastgang.errors import InvalidInput, StoreError
from lastgang.ingest import csv_readings
from lastgang.services import apply_site_text, import_bytes, rebuild_profiles
from lastgang.store import IntervalRows, ReadingSet, RegisterRows, duckdb_store
from lastgang.store.duckdb_store import DuckDBStore
from lastgang.timegrid import day_slots, end_labels

DATA = Path(__file__).resolve().parent.parent / "data"
SITE_TEXT = (DATA / "site-basic.toml").read_text(encoding="utf-8")
SITE_ID = "graz-lend-12"
WHEN = datetime(2024, 11, 5, 8, 0, tzinfo=UTC)
LATER = datetime(2024, 11, 20, 8, 0, tzinfo=UTC)
LAST = datetime(2024, 11, 27, 8, 0, tzinfo=UTC)
TZ = "Europe/Vienna"

TOP3 = """
[[locations]]
id = "top3"
name = "Top 3"
role = "consumer"
upstream = "hak"
metering_points = { import = "AT0081000801000000000000000100051" }

[[locations.meters]]
manufacturer = "SME"
serial = "22000999"
installed = 2024-03-31

"""


def _with_top3(text: str) -> str:
    """``text`` with a fourth consumer (a new location, meter and metering point ID)."""
    return text.replace("[[units]]", TOP3 + "[[units]]", 1)


def _ratio(text: str) -> str:
    """The grid connection's transformer ratio corrected (TOR-4.4): its meter changed."""
    return text.replace('ratio = "200/5"', 'ratio = "100/5"')


def _top2_as_g0(text: str) -> str:
    """Top 2 gets other substitute values (Q-2): not a meter change, no rebuild by itself."""
    return text.replace(
        'upstream = "hak"\nmetering_points = { import = "AT0081000801000000000000000100021" }',
        'upstream = "hak"\nstandard_load_profile = "G0"\n'
        'metering_points = { import = "AT0081000801000000000000000100021" }',
    )


def _later_exchange(text: str) -> str:
    """Top 1's meter exchanged half an hour later."""
    return text.replace("2024-06-15T10:30:00+02:00", "2024-06-15T11:00:00+02:00")


def _registers() -> bytes:
    """One file with the registers of two locations: the grid connection and the PV."""
    lines = (DATA / "registers-hak-2024-03-31.csv").read_text(encoding="utf-8").splitlines()
    start, _ = day_slots(date(2024, 3, 31), TZ)
    pv = [
        f"{label},PV0001,1-0:2.8.0,{1000 + 7 * i},Wh"
        for i, label in enumerate(end_labels(start - 1, start + 40, TZ))
    ]
    return ("\n".join([*lines, *pv]) + "\n").encode()


def _intervals() -> bytes:
    """One file with interval values of three consumers on 31 March 2024 (92 quarter hours):
    Top 1 the whole day, Top 2 the morning only (the rest substitutes), the common areas
    every other quarter hour."""
    start, stop = day_slots(date(2024, 3, 31), TZ)
    labels = end_labels(start, stop, TZ)
    rows = ["end,metering_point,import_kwh,export_kwh"]
    for i, label in enumerate(labels):
        rows.append(f"{label},AT0081000801000000000000000100011,{0.1 + 0.01 * i:.2f},0")
        if i < 40:
            rows.append(f"{label},AT0081000801000000000000000100021,0.3,0")
        if i % 2 == 0:
            rows.append(f"{label},AT0081000801000000000000000100031,0.05,0")
    return ("\n".join(rows) + "\n").encode()


def _top2_evening() -> bytes:
    """Top 2's evening of the same day, imported later: its substitutes are replaced."""
    start, stop = day_slots(date(2024, 3, 31), TZ)
    labels = end_labels(start, stop, TZ)[70:]
    rows = ["end,metering_point,import_kwh,export_kwh"]
    rows += [f"{label},AT0081000801000000000000000100021,0.4,0" for label in labels]
    return ("\n".join(rows) + "\n").encode()


def _store_with_data() -> DuckDBStore:
    store = DuckDBStore(":memory:")
    apply_site_text(store, SITE_TEXT, "site.toml", now=WHEN)
    for n, (name, content) in enumerate(
        [
            ("registers.csv", _registers()),
            ("intervals.csv", _intervals()),
            ("phases.csv", (DATA / "phases-top2-tor-a2.csv").read_bytes()),
            ("evening.csv", _top2_evening()),
        ]
    ):
        import_bytes(store, SITE_ID, content, name, now=WHEN + timedelta(minutes=n))
    return store


Change = Callable[[str], str]


def _applied(store: DuckDBStore, changes: list[tuple[Change, bool]]) -> None:
    """Apply each change on top of the previous ones (with or without its rebuild)."""
    text = SITE_TEXT
    for n, (change, rebuild) in enumerate(changes):
        text = change(text)
        apply_site_text(
            store, text, f"v{n + 2}.toml", now=LATER + timedelta(hours=n), rebuild=rebuild
        )


def _whole(changes: list[tuple[Change, bool]]) -> DuckDBStore:
    """The oracle: the same versions applied without a rebuild, then the whole site rebuilt."""
    store = _store_with_data()
    _applied(store, [(change, False) for change, _ in changes])
    when = LATER + timedelta(hours=len(changes) - 1)
    rebuild_profiles(store, SITE_ID, now=when)
    return store


#: per case: the versions applied (with or without their rebuild), the locations the last
#: rebuild covers, and the archived files it reads again (those with readings of them)
CASES: dict[str, tuple[list[tuple[Change, bool]], tuple[str, ...], list[str]]] = {
    "transformer ratio": ([(_ratio, True)], ("hak",), ["registers.csv"]),
    "a new location": ([(_with_top3, True)], ("top3",), []),
    "a meter exchange moved": ([(_later_exchange, True)], ("top1",), ["intervals.csv"]),
    # not a meter change: no rebuild of its own, but the next rebuild takes Top 2 along
    "substitutes, then a ratio": (
        [(_top2_as_g0, True), (_ratio, True)],
        ("hak", "top2"),
        ["registers.csv", "intervals.csv", "phases.csv", "evening.csv"],
    ),
    "a ratio applied without rebuild, then a new location": (
        [(_ratio, False), (_with_top3, True)],
        ("hak", "top3"),
        ["registers.csv"],
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_tor_7_1_a_new_version_rebuilds_only_what_it_reads_otherwise_as_a_whole_rebuild(
    case: str,
    monkeypatch: pytest.MonkeyPatch,
    parsed: list[str],
    profiles_saved: Callable[[DuckDBStore], set[str]],
) -> None:
    changes, rebuilt, read = CASES[case]
    store = _store_with_data()
    built = profiles_saved(store)
    parsed.clear()
    stored: list[tuple[str, ...]] = []
    add_readings = store.add_readings

    def recording(site_id: str, batch: int, rows: ReadingSet) -> None:
        used = {
            *(rows.intervals.locations[i] for i in np.unique(rows.intervals.location)),
            *(rows.registers.meters[i] for i in np.unique(rows.registers.meter)),
            *(rows.phases.meters[i] for i in np.unique(rows.phases.meter)),
        }
        stored.append(tuple(sorted(used)))
        add_readings(site_id, batch, rows)

    monkeypatch.setattr(store, "add_readings", recording)
    text = SITE_TEXT
    result = None
    for n, (change, rebuild) in enumerate(changes):
        text = change(text)
        result = apply_site_text(
            store, text, f"v{n + 2}.toml", now=LATER + timedelta(hours=n), rebuild=rebuild
        )
    assert result is not None and result.rebuilt is not None
    assert result.rebuilt.locations == rebuilt
    assert parsed == read
    assert (result.rebuilt.read, result.rebuilt.batches) == (len(read), 4)
    assert store.rebuild_pending(SITE_ID) == frozenset()
    # only the readings of the locations rebuilt were stored again
    keys = {"hak": "LGZ:81234567", "top2": "SME:22000123", "top3": "SME:22000999"}
    allowed = {*rebuilt, *(keys[r] for r in rebuilt if r in keys)}
    assert all(set(names) <= allowed for names in stored), stored
    # and only their profiles were built
    assert built <= set(rebuilt)
    assert store.fingerprint(SITE_ID) == _whole(changes).fingerprint(SITE_ID)


@pytest.mark.parametrize(
    ("case", "rows"),
    [("a meter exchange moved", 92), ("substitutes, then a ratio", 40 + 22)],
)
def test_a_large_interval_file_is_read_for_the_rows_of_the_locations_rebuilt(
    case: str, rows: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Files read in pieces (as one of more than 128 MB is): a rebuild of Top 1 reads its 92
    rows of the intervals file, one of Top 2 (and the grid connection) its 40 morning rows
    there and its 22 evening rows; the store ends as after a whole rebuild (which reads every
    row). The archived file is read part by part as its chunks are inflated (cut anywhere in
    a line), never whole."""
    monkeypatch.setattr(csv_readings, "CHUNK_BYTES", 256)
    monkeypatch.setattr(duckdb_store, "CHUNK_BYTES", 100)
    changes, _, _ = CASES[case]
    whole = _whole(changes)
    store = _store_with_data()
    intervals = {b.batch for b in store.batches(SITE_ID) if b.format == "csv/intervals"}
    seen: list[int] = []
    parse = csv_readings._parse_intervals

    def counting(df: Any, *args: Any) -> Any:
        seen.append(len(df))
        return parse(df, *args)

    held_whole: list[int] = []
    content = DuckDBStore.batch_content

    def whole_content(self: DuckDBStore, batch: int) -> bytes:
        held_whole.append(batch)
        return content(self, batch)

    monkeypatch.setattr(csv_readings, "_parse_intervals", counting)
    monkeypatch.setattr(DuckDBStore, "batch_content", whole_content)
    _applied(store, changes)
    assert sum(seen) == rows
    assert len(intervals) == 2
    assert not intervals & set(held_whole)
    assert store.fingerprint(SITE_ID) == whole.fingerprint(SITE_ID)


def test_the_cases_change_what_they_rebuild() -> None:
    """The oracle is not trivial: each change gives other profile values or provenance than
    the data had, or none where none is expected (a location without data)."""
    before = _store_with_data().fingerprint(SITE_ID)["profile_values"]
    for case, (changes, _, _) in CASES.items():
        after = _whole(changes).fingerprint(SITE_ID)
        if case in ("a new location", "a meter exchange moved"):
            assert after["profile_values"] == before, case
        else:
            assert after["profile_values"] != before, case
            assert int(after["profile_history"].split(":")[0]) > 0, case


def test_pending_locations_add_up_until_a_rebuild() -> None:
    store = _store_with_data()
    assert store.rebuild_pending(SITE_ID) == frozenset()
    # names and wiring are not how readings are read
    shown = SITE_TEXT.replace('name = "Top 1"', 'name = "Top One"', 1)
    shown = shown.replace('upstream = "hak"', 'upstream = "top2"', 1)
    assert shown != SITE_TEXT
    result = apply_site_text(store, shown, "shown.toml", now=WHEN)
    assert result.pending == frozenset()
    result = apply_site_text(store, _top2_as_g0(SITE_TEXT), "v2.toml", now=LATER)
    assert (result.rebuilt, result.pending) == (None, {"top2"})
    assert store.rebuild_pending(SITE_ID) == {"top2"}
    apply_site_text(store, _ratio(_top2_as_g0(SITE_TEXT)), "v3.toml", now=LATER, rebuild=False)
    assert store.rebuild_pending(SITE_ID) == {"top2", "hak"}
    other_zone = _ratio(_top2_as_g0(SITE_TEXT)).replace(
        'timezone = "Europe/Vienna"', 'timezone = "Europe/Berlin"'
    )
    apply_site_text(store, other_zone, "v4.toml", now=LATER, rebuild=False)
    assert store.rebuild_pending(SITE_ID) is None  # every location
    result = rebuild_profiles(store, SITE_ID, now=LAST, pending=True)
    assert result.locations is None
    assert store.rebuild_pending(SITE_ID) == frozenset()


def test_an_explicit_rebuild_is_whole_and_clears_what_was_pending() -> None:
    store = _store_with_data()
    apply_site_text(store, _ratio(SITE_TEXT), "v2.toml", now=LATER, rebuild=False)
    result = rebuild_profiles(store, SITE_ID, now=LAST)
    assert (result.locations, result.batches) == (None, 4)
    assert store.rebuild_pending(SITE_ID) == frozenset()


def test_a_site_without_data_has_nothing_pending() -> None:
    store = DuckDBStore(":memory:")
    apply_site_text(store, SITE_TEXT, "site.toml", now=WHEN)
    result = apply_site_text(store, _ratio(SITE_TEXT), "v2.toml", now=LATER)
    assert result.rebuilt is None
    assert store.rebuild_pending(SITE_ID) == frozenset()


def test_a_batch_the_new_version_refuses_still_refuses_a_partial_rebuild() -> None:
    """Every archived batch is read again, not only those of the locations rebuilt: a
    configuration that drops the PV's meter refuses the registers file (which also holds the
    grid connection's readings), and nothing changes."""
    store = _store_with_data()
    before = store.fingerprint(SITE_ID)
    no_pv_meter = _with_top3(SITE_TEXT).replace('serial = "PV0001"', 'serial = "PV0002"')
    with pytest.raises(InvalidInput) as caught:
        apply_site_text(store, no_pv_meter, "v2.toml", now=LATER)
    assert any("PV0001" in p.reason for p in caught.value.problems)
    assert store.fingerprint(SITE_ID) == before
    assert store.rebuild_pending(SITE_ID) == frozenset()


def test_a_serial_shared_with_another_location_rebuilds_that_one_too(
    parsed: list[str],
) -> None:
    """A new meter with the PV meter's serial number (another manufacturer): the registers
    file names the PV meter by serial alone, which is now ambiguous. The PV is rebuilt along
    with the new location, so the file (which holds no reading of the new location) is read
    again and refuses the version, as a whole rebuild would."""
    store = _store_with_data()
    before = store.fingerprint(SITE_ID)
    parsed.clear()
    shared = _with_top3(SITE_TEXT).replace('serial = "22000999"', 'serial = "PV0001"')
    with pytest.raises(InvalidInput) as caught:
        apply_site_text(store, shared, "v2.toml", now=LATER)
    assert any("ambiguous" in p.reason for p in caught.value.problems)
    assert "registers.csv" in parsed
    assert store.fingerprint(SITE_ID) == before
    with pytest.raises(InvalidInput):
        _whole([(lambda text: shared, True)])


def test_a_store_written_before_pending_rebuilds_rebuilds_a_changed_site_whole(
    tmp_path: Path,
) -> None:
    once, twice, empty = (tmp_path / f"{n}.duckdb" for n in ("once", "twice", "empty"))
    for path in (once, twice, empty):
        with DuckDBStore(path) as store:
            apply_site_text(store, SITE_TEXT, "site.toml", now=WHEN)
            if path != empty:
                import_bytes(store, SITE_ID, _intervals(), "intervals.csv", now=WHEN)
            if path != once:
                renamed = SITE_TEXT.replace('"Top 1"', '"Top One"')
                apply_site_text(store, renamed, "v2.toml", now=LATER, rebuild=False)
            store.connection.execute("DROP TABLE rebuild_pending")
    with DuckDBStore(once) as store:  # all its data was read by its only version
        assert store.rebuild_pending(SITE_ID) == frozenset()
    with DuckDBStore(empty) as store:  # no data to have been read otherwise
        assert store.rebuild_pending(SITE_ID) == frozenset()
    with DuckDBStore(twice) as store:  # its second version may have skipped a rebuild
        assert store.rebuild_pending(SITE_ID) is None
        result = apply_site_text(store, _ratio(SITE_TEXT), "v3.toml", now=LAST)
        assert result.rebuilt is not None and result.rebuilt.locations is None
        assert store.rebuild_pending(SITE_ID) == frozenset()


def test_a_reading_set_without_some_meters_and_locations() -> None:
    readings = ReadingSet(
        registers=RegisterRows(
            meters=("A:1", "B:2", "C:3"),
            registers=("1-0:1.8.0",),
            meter=np.array([0, 1, 2, 1, 0], dtype=np.int32),
            register=np.zeros(5, dtype=np.int32),
            time=np.array([10, 20, 30, 40, 50], dtype=np.int64),
            value=np.array([1.0, 2.0, 3.0, 4.0, 5.0]),
        ),
        intervals=IntervalRows(
            locations=("x", "y"),
            meters=("A:1",),
            location=np.array([0, 1, 1, 0], dtype=np.int32),
            meter=np.array([0, -1, -1, 0], dtype=np.int32),
            slot=np.array([1, 1, 2, 2], dtype=np.int64),
            import_kwh=np.array([0.1, 0.2, 0.3, 0.4]),
            export_kwh=np.zeros(4),
            quality=np.array([1, 1, 2, 1], dtype=np.int8),
        ),
    )
    rest = readings.without({"B:2", "Z:9"}, {"x"})
    assert rest.registers.meters == ("A:1", "B:2", "C:3")
    assert rest.registers.meter.tolist() == [0, 2, 0]
    assert rest.registers.time.tolist() == [10, 30, 50]
    assert rest.registers.value.tolist() == [1.0, 3.0, 5.0]
    assert rest.intervals.location.tolist() == [1, 1]
    assert rest.intervals.slot.tolist() == [1, 2]
    assert rest.intervals.import_kwh.tolist() == [0.2, 0.3]
    assert rest.intervals.quality.tolist() == [1, 2]
    assert len(rest) == 5
    assert readings.without(set(), set()).registers is readings.registers


def test_a_rebuild_says_how_far_it_has_read_a_large_archived_file(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Read part by part, a large interval file's batch reports the bytes read after each of
    the archive's chunks (in MB; here in bytes, for a file of a few kB)."""
    monkeypatch.setattr(csv_readings, "CHUNK_BYTES", 256)
    monkeypatch.setattr(duckdb_store, "CHUNK_BYTES", 100)
    monkeypatch.setattr(services, "_mb", str)
    store = _store_with_data()
    (info,) = [b for b in store.batches(SITE_ID) if b.source == "intervals.csv"]
    said: list[str] = []
    rebuild_profiles(store, SITE_ID, now=LATER, progress=lambda what, *_: said.append(what))
    head = f"batch {info.batch} (intervals.csv, "
    reading = [what for what in said if what.startswith(head)]
    ends = [*range(100, info.size, 100), info.size]
    assert f"batch {info.batch} (intervals.csv)" in said  # the batch's turn, then its bytes
    assert reading == [f"{head}{end} of {info.size})" for end in ends]


def test_tor_7_1_a_rebuild_reads_only_the_pieces_of_a_large_file_holding_rows_rebuilt(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A large interval file read in pieces keeps them with its batch (their bytes and names):
    a later rebuild of a few locations reads the header line and the pieces holding their rows,
    only the archive chunks under them. The interval file's lines alternate between the
    consumers, so its import read it whole and kept no pieces; the first rebuild of Top 2 reads
    it part by part and keeps them; the second reads the pieces of Top 2's 40 morning quarter
    hours alone. A file of Top 2 alone keeps none (every piece holds its one name) and is read
    whole. The store ends as after a whole rebuild."""
    monkeypatch.setattr(csv_readings, "CHUNK_BYTES", 256)
    monkeypatch.setattr(duckdb_store, "CHUNK_BYTES", 100)
    # the oracle: the same versions, each followed by a whole rebuild
    whole = _store_with_data()
    for n, text in enumerate([_top2_as_g0(SITE_TEXT), SITE_TEXT]):
        when = LATER + timedelta(hours=n)
        apply_site_text(whole, text, f"v{n + 2}.toml", now=when, rebuild=False)
        rebuild_profiles(whole, SITE_ID, now=when)
    store = _store_with_data()
    (info,) = [b for b in store.batches(SITE_ID) if b.source == "intervals.csv"]
    (evening,) = [b for b in store.batches(SITE_ID) if b.source == "evening.csv"]
    assert store.batch_pieces(info.batch) is None
    assert store.batch_pieces(evening.batch) is None  # one consumer's: every piece its name
    read: dict[int, int] = {}
    whole_reads: list[int] = []
    batch_range, batch_parts = DuckDBStore.batch_range, DuckDBStore.batch_parts

    def ranged(self: DuckDBStore, batch: int, start: int, stop: int) -> Any:
        for part in batch_range(self, batch, start, stop):
            read[batch] = read.get(batch, 0) + len(part)
            yield part

    def parts(self: DuckDBStore, batch: int) -> Any:
        whole_reads.append(batch)
        return batch_parts(self, batch)

    monkeypatch.setattr(DuckDBStore, "batch_range", ranged)
    monkeypatch.setattr(DuckDBStore, "batch_parts", parts)
    # another standard load profile for Top 2: pending
    apply_site_text(store, _top2_as_g0(SITE_TEXT), "v2.toml", now=LATER, rebuild=False)
    result = rebuild_profiles(store, SITE_ID, now=LATER, pending=True)
    assert result.locations == ("top2",)
    assert info.batch in whole_reads and info.batch not in read
    pieces = store.batch_pieces(info.batch)
    assert pieces is not None and pieces[-1].stop == info.size
    content = store.batch_content(info.batch)
    header = content.index(b"\n") + 1
    assert b"".join(content[p.start : p.stop] for p in pieces) == content[header:]
    top2 = "AT0081000801000000000000000100021"
    morning = [p for p in pieces if top2 in p.names]
    assert 0 < len(morning) < len(pieces)
    assert read == {} and evening.batch in whole_reads
    assert store.batch_pieces(evening.batch) is None
    whole_reads.clear()
    read.clear()
    apply_site_text(store, SITE_TEXT, "v3.toml", now=LATER + timedelta(hours=1), rebuild=False)
    monkeypatch.setattr(services, "_mb", str)
    said: list[str] = []
    result = rebuild_profiles(
        store,
        SITE_ID,
        now=LATER + timedelta(hours=1),
        pending=True,
        progress=lambda what, *_: said.append(what),
    )
    assert result.locations == ("top2",)
    assert info.batch not in whole_reads and evening.batch in whole_reads
    wanted = header + sum(p.stop - p.start for p in morning)
    assert read == {info.batch: wanted}
    # how far it has read, of the bytes it reads
    head = f"batch {info.batch} (intervals.csv, "
    reading = [what for what in said if what.startswith(head)]
    assert reading[-1] == f"{head}{wanted} of {wanted})"
    assert len(reading) > 2 and all(what.endswith(f" of {wanted})") for what in reading)
    assert morning[-1].stop < info.size - 3000  # Top 2's last line, then 52 quarter hours
    assert store.fingerprint(SITE_ID) == whole.fingerprint(SITE_ID)


# --- the whole rebuild: batch by batch into a stand-in, then one swap ----------------------------


def _stand_in_rows(store: DuckDBStore) -> dict[str, int]:
    """Rows stored under any stand-in id, by table (none: nothing is left of a rebuild)."""
    con = store.connection
    counts = {
        table: con.execute(
            f"SELECT count(*) FROM {table} WHERE site_id LIKE '~rebuild:%'"
        ).fetchall()[0][0]
        for table in (
            "profile_pairs",
            "interval_keys",
            "register_readings",
            "phase_samples",
            "status_events",
            "site_changes",
        )
    }
    for values, keys, key in (
        ("profile_values", "profile_pairs", "pair"),
        ("interval_values", "interval_keys", "key"),
    ):
        counts[values] = con.execute(
            f"SELECT count(*) FROM {values} WHERE {key} IN "
            f"(SELECT {key} FROM {keys} WHERE site_id LIKE '~rebuild:%')"
        ).fetchall()[0][0]
    return counts


def _values(reader: Any, site: str) -> int:
    """The profile value rows stored under ``site`` (a site id, or ``STAND_IN`` for those of
    any stand-in of the site), as a reader on its own connection sees."""
    where = "starts_with(site_id, ?)" if site == STAND_IN else "site_id = ?"
    rows = reader.execute(
        "SELECT count(*) FROM profile_values WHERE pair IN "
        f"(SELECT pair FROM profile_pairs WHERE {where})",
        [site],
    ).fetchall()
    return int(rows[0][0])


#: the start of the ids of the site's stand-ins
STAND_IN = f"~rebuild:{SITE_ID}:"


@pytest.mark.parametrize("readings", [1, services.COMMIT_READINGS])
def test_tor_7_1_a_whole_rebuild_commits_its_batches_while_readers_see_the_site_as_it_was(
    readings: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The replayed batches are committed under the stand-in (DuckDB holds a transaction's rows
    in memory until it ends) once they hold ``COMMIT_READINGS`` readings (each of these
    batches holds fewer than the default: all in one transaction), while a reader on another
    connection still sees the site's own rows; the swap then gives the site the rows of the
    new configuration, every table as a rebuild of it gives them, and leaves nothing of the
    stand-in."""
    monkeypatch.setattr(services, "COMMIT_READINGS", readings)
    store = _store_with_data()
    reader = store.connection.cursor()
    stored = _values(reader, SITE_ID)
    seen: list[tuple[int, int]] = []

    def progress(what: str, done: int, total: int) -> None:
        if done == len(seen) < total:  # the first word of each batch
            seen.append((_values(reader, SITE_ID), _values(reader, STAND_IN)))

    apply_site_text(store, _ratio(SITE_TEXT), "v2.toml", now=LATER, rebuild=False)
    result = rebuild_profiles(store, SITE_ID, now=LATER, progress=progress)
    assert (result.locations, result.batches, result.read) == (None, 4, 4)
    # before each batch: the site's rows as they were, and those of the batches before it
    # committed under the stand-in
    assert [site for site, _ in seen] == [stored] * 4
    committed = [stand_in for _, stand_in in seen]
    if readings == 1:  # each batch committed when stored
        assert committed[0] == 0 and committed[1] > 0
    else:
        assert committed == [0, 0, 0, 0]
    assert all(a <= b for a, b in itertools.pairwise(committed))
    assert _values(reader, SITE_ID) == stored and _values(reader, STAND_IN) == 0
    assert set(_stand_in_rows(store).values()) == {0}
    # the grid connection's 92 quarter hours of the spring day at half the energy
    assert result.changed == 92
    # every table as the rebuild of the grid connection alone gives it, in one transaction
    # (begin_rebuild and finish_rebuild): the change applied with its rebuild
    want = _store_with_data()
    applied = apply_site_text(want, _ratio(SITE_TEXT), "v2.toml", now=LATER)
    assert applied.rebuilt is not None and applied.rebuilt.locations == ("hak",)
    assert applied.rebuilt.changed == 92
    assert store.fingerprint(SITE_ID) == want.fingerprint(SITE_ID)
    assert store.counts() == want.counts()


def test_a_refused_whole_rebuild_leaves_the_site_as_it_was_and_nothing_of_the_stand_in() -> None:
    store = _store_with_data()
    no_pv_meter = SITE_TEXT.replace('serial = "PV0001"', 'serial = "PV0002"')
    apply_site_text(store, no_pv_meter, "v2.toml", now=LATER, rebuild=False)
    before, counts = store.fingerprint(SITE_ID), store.counts()
    with pytest.raises(InvalidInput) as caught:
        rebuild_profiles(store, SITE_ID, now=LAST)
    assert any("PV0001" in p.reason for p in caught.value.problems)
    assert "nothing was rebuilt" in str(caught.value)
    assert store.fingerprint(SITE_ID) == before
    assert store.counts() == counts
    assert set(_stand_in_rows(store).values()) == {0}


def _stopping_at_the_third_batch(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Interrupt the third batch a rebuild stores (as Ctrl-C would); the list counts the
    batches begun (clear it to begin again)."""
    real = services._store_batch
    calls: list[int] = []

    def stopping(*args: Any, **kwargs: Any) -> int:
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(services, "_store_batch", stopping)
    return calls


def test_a_whole_rebuild_stopped_midway_changes_nothing_and_the_next_clears_what_was_left(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Stopped at its third batch, a rebuild rolls back the batches not committed yet and drops
    its stand-in; where even that could not happen (the process ended), the next rebuild of
    the site drops what was left first."""
    store = _store_with_data()
    apply_site_text(store, _ratio(SITE_TEXT), "v2.toml", now=LATER, rebuild=False)
    before, counts = store.fingerprint(SITE_ID), store.counts()
    calls = _stopping_at_the_third_batch(monkeypatch)
    dropped: list[str] = []
    real_drop = DuckDBStore.drop_stand_in

    def not_dropping(self: DuckDBStore, stand_in: str) -> None:
        dropped.append(stand_in)  # as if the process ended before it could

    monkeypatch.setattr(DuckDBStore, "drop_stand_in", not_dropping)
    # the two batches stored are in the transaction still open (fewer readings than
    # COMMIT_READINGS): rolled back, nothing is left even without the drop
    with pytest.raises(KeyboardInterrupt):
        rebuild_profiles(store, SITE_ID, now=LAST)
    assert len(dropped) == 1 and dropped[0].startswith(STAND_IN)  # its own, once stopped
    assert set(_stand_in_rows(store).values()) == {0}
    assert store.fingerprint(SITE_ID) == before and store.counts() == counts
    # each batch committed when stored: the drop removes them
    monkeypatch.setattr(services, "COMMIT_READINGS", 1)
    monkeypatch.setattr(DuckDBStore, "drop_stand_in", real_drop)
    calls.clear()
    with pytest.raises(KeyboardInterrupt):
        rebuild_profiles(store, SITE_ID, now=LAST)
    assert store.fingerprint(SITE_ID) == before and store.counts() == counts
    assert set(_stand_in_rows(store).values()) == {0}
    # as if the process had ended: the stand-in's two batches stay
    calls.clear()
    monkeypatch.setattr(DuckDBStore, "drop_stand_in", not_dropping)
    with pytest.raises(KeyboardInterrupt):
        rebuild_profiles(store, SITE_ID, now=LAST)
    left = _stand_in_rows(store)
    assert left["profile_values"] > 0 and left["interval_values"] > 0
    assert store.fingerprint(SITE_ID) == before
    monkeypatch.undo()
    result = rebuild_profiles(store, SITE_ID, now=LATER)
    assert (result.batches, result.changed) == (4, 92)
    assert set(_stand_in_rows(store).values()) == {0}
    want = _store_with_data()
    apply_site_text(want, _ratio(SITE_TEXT), "v2.toml", now=LATER)
    assert store.fingerprint(SITE_ID) == want.fingerprint(SITE_ID)


def _berlin(text: str) -> str:
    """Another time zone (the same offsets as Vienna's): every location is read otherwise."""
    return text.replace('timezone = "Europe/Vienna"', 'timezone = "Europe/Berlin"')


def test_a_version_whose_rebuild_is_whole_is_saved_with_the_swap_after_a_batchwise_replay(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``site apply`` of a version whose rebuild covers every location replays the archive
    into the stand-in batch by batch, as ``lastgang rebuild`` does, and saves the version in
    the transaction of the swap: until then readers see the versions and rows as they were."""
    monkeypatch.setattr(services, "COMMIT_READINGS", 1)  # each batch committed when stored
    store = _store_with_data()
    apply_site_text(store, _berlin(SITE_TEXT), "v2.toml", now=LATER, rebuild=False)
    assert store.rebuild_pending(SITE_ID) is None  # every location awaits a rebuild
    reader = store.connection.cursor()
    stored = _values(reader, SITE_ID)
    seen: list[tuple[int, int, int]] = []

    def progress(what: str, done: int, total: int) -> None:
        if done == len(seen) < total:  # the first word of each batch
            versions = reader.execute(
                "SELECT count(*) FROM site_versions WHERE site_id = ?", [SITE_ID]
            ).fetchall()[0][0]
            seen.append((versions, _values(reader, SITE_ID), _values(reader, STAND_IN)))

    result = apply_site_text(
        store, _ratio(_berlin(SITE_TEXT)), "v3.toml", now=LAST, progress=progress
    )
    assert result.changed_locations == ("hak",)
    assert result.rebuilt is not None
    assert (result.rebuilt.locations, result.rebuilt.batches, result.rebuilt.read) == (None, 4, 4)
    assert result.rebuilt.changed == 92  # the grid connection's spring day at half the energy
    assert result.version.version == 3 and result.pending == frozenset()
    assert [(versions, site) for versions, site, _ in seen] == [(2, stored)] * 4
    committed = [stand_in for _, _, stand_in in seen]
    assert committed[0] == 0 and committed[1] > 0
    assert len(store.site_versions(SITE_ID)) == 3
    assert store.rebuild_pending(SITE_ID) == frozenset()
    assert set(_stand_in_rows(store).values()) == {0}
    # the same as the version applied without its rebuild, then the whole site rebuilt
    want = _store_with_data()
    apply_site_text(want, _berlin(SITE_TEXT), "v2.toml", now=LATER, rebuild=False)
    apply_site_text(want, _ratio(_berlin(SITE_TEXT)), "v3.toml", now=LAST, rebuild=False)
    assert rebuild_profiles(want, SITE_ID, now=LAST).changed == 92
    assert store.fingerprint(SITE_ID) == want.fingerprint(SITE_ID)


def test_a_version_whose_whole_rebuild_is_refused_is_not_applied() -> None:
    store = _store_with_data()
    apply_site_text(store, _berlin(SITE_TEXT), "v2.toml", now=LATER, rebuild=False)
    before, counts = store.fingerprint(SITE_ID), store.counts()
    no_pv_meter = _berlin(SITE_TEXT).replace('serial = "PV0001"', 'serial = "PV0002"')
    with pytest.raises(InvalidInput) as caught:
        apply_site_text(store, no_pv_meter, "v3.toml", now=LAST)
    assert any("PV0001" in p.reason for p in caught.value.problems)
    assert store.fingerprint(SITE_ID) == before and store.counts() == counts
    assert len(store.site_versions(SITE_ID)) == 2
    assert store.rebuild_pending(SITE_ID) is None
    assert set(_stand_in_rows(store).values()) == {0}


def test_a_version_the_store_refuses_is_refused_before_its_whole_rebuild_replays_anything() -> None:
    """A metering point ID moved to another location (TOR-4.1) refuses the version at once,
    not after a replay of the whole archive."""
    store = _store_with_data()
    apply_site_text(store, _berlin(SITE_TEXT), "v2.toml", now=LATER, rebuild=False)
    before = store.fingerprint(SITE_ID)
    top2, top3 = "AT0081000801000000000000000100021", "AT0081000801000000000000000100051"
    moved = (  # Top 2's ID given to the new Top 3, Top 2 a new one
        _with_top3(_ratio(_berlin(SITE_TEXT)))
        .replace(top2, "SWAPPED")
        .replace(top3, top2)
        .replace("SWAPPED", top3)
    )
    said: list[str] = []
    with pytest.raises(StoreError) as caught:
        apply_site_text(
            store, moved, "v3.toml", now=LAST, progress=lambda what, *_: said.append(what)
        )
    assert [p.column for p in caught.value.problems] == ["location 'top3'"]
    assert f"metering point ID {top2} belongs to location 'top2'" in caught.value.problems[0].reason
    assert said == []  # no batch replayed
    assert store.fingerprint(SITE_ID) == before
    assert len(store.site_versions(SITE_ID)) == 2


def _file_store(path: Path) -> DuckDBStore:
    """A store file with the registers and the intervals imported (two batches)."""
    store = DuckDBStore(path)
    apply_site_text(store, SITE_TEXT, "site.toml", now=WHEN)
    import_bytes(store, SITE_ID, _registers(), "registers.csv", now=WHEN)
    import_bytes(store, SITE_ID, _intervals(), "intervals.csv", now=WHEN)
    return store


def _importing_phases(
    other: DuckDBStore,
) -> tuple[Callable[[str, int, int], None], list[dict[str, str]]]:
    """A progress callback that imports the phases file through the connection ``other`` as
    the second batch of a rebuild begins, and the list that then holds the site's fingerprint
    just after that import."""
    phases = (DATA / "phases-top2-tor-a2.csv").read_bytes()
    expected: list[dict[str, str]] = []

    def progress(what: str, at: int, total: int) -> None:
        if at == 1 and not expected:
            import_bytes(other, SITE_ID, phases, "phases.csv", now=LATER)
            expected.append(other.fingerprint(SITE_ID))

    return progress, expected


def test_a_whole_rebuild_of_a_site_written_meanwhile_is_refused_and_loses_nothing(
    tmp_path: Path,
) -> None:
    """Another connection of the process (as the web application has) imports a file while the
    batches are replayed: the swap would drop that file's rows, so it refuses; the site keeps
    them, nothing of the stand-in is left, and the next rebuild replays the new file too."""
    path = tmp_path / "store.duckdb"
    store = _file_store(path)
    other = DuckDBStore(path)
    progress, expected = _importing_phases(other)
    with pytest.raises(StoreError, match="changed while it was rebuilt"):
        rebuild_profiles(store, SITE_ID, now=LAST, progress=progress)
    assert store.counts(SITE_ID)["phase_samples"] > 0
    assert store.fingerprint(SITE_ID) == expected[0]
    assert set(_stand_in_rows(store).values()) == {0}
    result = rebuild_profiles(store, SITE_ID, now=LAST)
    assert (result.batches, result.changed) == (3, 0)
    assert store.fingerprint(SITE_ID) == expected[0]
    other.close()
    store.close()


def test_a_version_applied_through_another_connection_meanwhile_refuses_the_rebuild(
    tmp_path: Path,
) -> None:
    """The replay would rebuild with the version before it, and clear what it left pending."""
    path = tmp_path / "store.duckdb"
    store = _file_store(path)
    other = DuckDBStore(path)
    done: list[bool] = []

    def progress(what: str, at: int, total: int) -> None:
        if at == 1 and not done:
            apply_site_text(other, _ratio(SITE_TEXT), "v2.toml", now=LATER, rebuild=False)
            done.append(True)

    with pytest.raises(StoreError, match="nothing was rebuilt: rebuild it again"):
        rebuild_profiles(store, SITE_ID, now=LAST, progress=progress)
    assert len(store.site_versions(SITE_ID)) == 2
    assert store.rebuild_pending(SITE_ID) == frozenset({"hak"})
    assert set(_stand_in_rows(store).values()) == {0}
    other.close()
    store.close()


def test_data_imported_meanwhile_refuses_a_version_with_a_whole_rebuild_which_says_so(
    tmp_path: Path,
) -> None:
    path = tmp_path / "store.duckdb"
    store = _file_store(path)
    apply_site_text(store, _berlin(SITE_TEXT), "v2.toml", now=LATER, rebuild=False)
    before = store.fingerprint(SITE_ID)
    other = DuckDBStore(path)
    progress, expected = _importing_phases(other)
    with pytest.raises(StoreError, match="nothing was applied: apply the version again"):
        apply_site_text(store, _ratio(_berlin(SITE_TEXT)), "v3.toml", now=LAST, progress=progress)
    assert store.fingerprint(SITE_ID) == expected[0] != before
    assert len(store.site_versions(SITE_ID)) == 2
    assert set(_stand_in_rows(store).values()) == {0}
    other.close()
    store.close()


def test_a_whole_rebuild_begun_meanwhile_on_another_connection_wins_and_the_first_refuses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each rebuild has a stand-in of its own: the second drops the first's, whose swap then
    refuses instead of giving the site what is left of its stand-in."""
    path = tmp_path / "store.duckdb"
    store = _file_store(path)
    apply_site_text(store, _ratio(SITE_TEXT), "v2.toml", now=LATER, rebuild=False)
    other = DuckDBStore(path)
    second: list[services.RebuildResult] = []

    def progress(what: str, at: int, total: int) -> None:
        if at == 1 and not second:
            second.append(rebuild_profiles(other, SITE_ID, now=LATER))

    # the first batch committed before the second rebuild begins
    monkeypatch.setattr(services, "COMMIT_READINGS", 1)
    with pytest.raises(StoreError, match="dropped by another rebuild of the site"):
        rebuild_profiles(store, SITE_ID, now=LAST, progress=progress)
    assert (second[0].batches, second[0].changed) == (2, 92)
    assert set(_stand_in_rows(store).values()) == {0}
    want = _file_store(tmp_path / "want.duckdb")
    apply_site_text(want, _ratio(SITE_TEXT), "v2.toml", now=LATER)
    assert store.fingerprint(SITE_ID) == want.fingerprint(SITE_ID)
    for s in (want, other, store):
        s.close()


def test_a_partial_rebuild_drops_what_a_stopped_whole_rebuild_left(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = _store_with_data()
    monkeypatch.setattr(services, "COMMIT_READINGS", 1)
    monkeypatch.setattr(DuckDBStore, "drop_stand_in", lambda self, stand_in: None)
    _stopping_at_the_third_batch(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        rebuild_profiles(store, SITE_ID, now=LATER)
    assert _stand_in_rows(store)["profile_values"] > 0
    monkeypatch.undo()
    result = apply_site_text(store, _ratio(SITE_TEXT), "v2.toml", now=LATER)
    assert result.rebuilt is not None and result.rebuilt.locations == ("hak",)
    assert set(_stand_in_rows(store).values()) == {0}


def test_a_version_with_a_whole_rebuild_applied_inside_a_transaction_is_kept_whole() -> None:
    """Nothing commits before the transaction ends; the outcome is the same as outside it."""
    store = _store_with_data()
    apply_site_text(store, _berlin(SITE_TEXT), "v2.toml", now=LATER, rebuild=False)
    with store.transaction():
        result = apply_site_text(store, _ratio(_berlin(SITE_TEXT)), "v3.toml", now=LAST)
    assert result.version.version == 3 and result.rebuilt is not None
    assert [v.version for v in store.site_versions(SITE_ID)] == [1, 2, 3]
    want = _store_with_data()
    apply_site_text(want, _berlin(SITE_TEXT), "v2.toml", now=LATER, rebuild=False)
    apply_site_text(want, _ratio(_berlin(SITE_TEXT)), "v3.toml", now=LAST)
    assert store.fingerprint(SITE_ID) == want.fingerprint(SITE_ID)
    assert set(_stand_in_rows(store).values()) == {0}
