"""The embedded store: profiles column-wise, history, site versions, the metering point ID
registry (TOR-4.1) and the lock held by another process."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pytest
from old_stores import as_version

from lastgang.concept.load import load_site, parse_site
from lastgang.errors import StoreError
from lastgang.profiles.types import LoadProfile
from lastgang.quality import Quality
from lastgang.services import apply_site, apply_site_text
from lastgang.store import (
    IntervalRows,
    ReadingSet,
    Store,
    duckdb_store,
    open_store,
    resolve_db_path,
)
from lastgang.store.duckdb_store import DuckDBStore

DATA = Path(__file__).resolve().parent.parent / "data"
SITE = DATA / "site-basic.toml"
WHEN = datetime(2024, 7, 1, 12, 0, tzinfo=UTC)
LATER = datetime(2024, 7, 2, 12, 0, tzinfo=UTC)
L1, L2, L3, MISSING = (int(q) for q in Quality)


@pytest.fixture
def store() -> DuckDBStore:
    s = DuckDBStore(":memory:")
    apply_site(s, SITE, now=WHEN)
    return s


def _profile(start: int, values: list[float], quality: list[int], batch: int) -> LoadProfile:
    imp = np.array(values, dtype=np.float64)
    exp = np.zeros(len(values))
    exp[np.isnan(imp)] = np.nan
    q = np.array(quality, dtype=np.int8)
    meter = np.where(q == MISSING, -1, 0).astype(np.int32)
    b = np.where(q == MISSING, 0, batch).astype(np.int64)
    return LoadProfile(start, imp, exp, q, b, meter, ("SME:22000123",))


def test_open_store_is_a_store_and_resolves_its_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LASTGANG_DB", raising=False)
    assert resolve_db_path(None) == Path("lastgang.duckdb")
    monkeypatch.setenv("LASTGANG_DB", str(tmp_path / "env.duckdb"))
    assert resolve_db_path(None) == tmp_path / "env.duckdb"
    assert resolve_db_path(tmp_path / "x.duckdb") == tmp_path / "x.duckdb"
    s = open_store()
    try:
        assert isinstance(s, Store)
        assert (tmp_path / "env.duckdb").exists()
    finally:
        s.close()


def test_profiles_round_trip_with_missing_slots_and_meter_keys(store: DuckDBStore) -> None:
    p = _profile(1000, [0.25, np.nan, 0.5], [L1, MISSING, L2], batch=7)
    moved = store.save_profiles("graz-lend-12", {"top2": p}, WHEN)
    assert moved == 0
    got = store.load_profiles("graz-lend-12", ["top2", "top1"], 999, 1004)
    top2 = got["top2"]
    assert top2.start == 999 and len(top2) == 5
    np.testing.assert_array_equal(top2.quality, [MISSING, L1, MISSING, L2, MISSING])
    np.testing.assert_array_equal(top2.import_kwh[[1, 3]], [0.25, 0.5])
    assert np.isnan(top2.import_kwh[[0, 2, 4]]).all()
    np.testing.assert_array_equal(top2.batch, [0, 7, 0, 7, 0])
    assert [top2.meters[m] if m >= 0 else None for m in top2.meter] == [
        None,
        "SME:22000123",
        None,
        "SME:22000123",
        None,
    ]
    assert (got["top1"].quality == MISSING).all()
    assert store.profile_extent("graz-lend-12", ["top2", "top1"]) == {"top2": (1000, 1003)}


def test_q_2_replaced_values_are_kept_in_the_history(store: DuckDBStore) -> None:
    substitutes = _profile(2000, [0.3, 0.3, 0.3], [L3, L3, L2], batch=1)
    store.save_profiles("graz-lend-12", {"top2": substitutes}, WHEN)
    measured = _profile(2000, [0.3, 0.4, 0.3], [L3, L1, L2], batch=1)
    moved = store.save_profiles("graz-lend-12", {"top2": measured}, LATER)
    # only the slot whose value changed goes to the history
    assert moved == 1
    history = store.profile_history("graz-lend-12", "top2", 0, 10_000)
    np.testing.assert_array_equal(history.slot, [2001])
    np.testing.assert_array_equal(history.import_kwh, [0.3])
    np.testing.assert_array_equal(history.quality, [L3])
    assert history.replaced_at == (LATER,)
    now = store.load_profiles("graz-lend-12", ["top2"], 2000, 2003)["top2"]
    np.testing.assert_array_equal(now.import_kwh, [0.3, 0.4, 0.3])


def test_tor_7_1_large_inputs_are_archived_in_chunks_and_come_back_unchanged(
    store: DuckDBStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(duckdb_store, "CHUNK_BYTES", 7)
    content = bytes(range(256)) * 3 + b"\r\n\x00tail"
    info = store.add_batch("graz-lend-12", content, "f" * 64, "x.bin", "csv/test", WHEN, 1, {})
    assert store.counts("graz-lend-12")["raw_chunks"] == -(-len(content) // 7)
    assert store.batch_content(info.batch) == content
    assert info.size == len(content)


def test_site_versions_are_kept(store: DuckDBStore) -> None:
    text = SITE.read_text(encoding="utf-8").replace('name = "Lendplatz 12, Graz"', 'name = "L12"')
    apply_site_text(store, text, "edited.toml", now=LATER)
    versions = store.site_versions("graz-lend-12")
    assert [v.version for v in versions] == [1, 2]
    assert versions[0].site.site.name == "Lendplatz 12, Graz"
    assert versions[1].site.site.name == "L12"
    assert versions[1].text == text
    assert versions[1].applied_at == LATER
    # no meter fact changed: the new version changes nothing from any instant
    assert versions[1].effective_from is None
    assert store.site_version("graz-lend-12").version == 2


def test_meter_change_takes_effect_from_its_date(store: DuckDBStore) -> None:
    text = SITE.read_text(encoding="utf-8").replace(
        'serial = "PV0001"\nregisters = ["1-0:1.8.0", "1-0:2.8.0"]\ninstalled = 2023-01-01',
        'serial = "PV0001"\nregisters = ["1-0:1.8.0", "1-0:2.8.0"]\ninstalled = 2023-01-01\n'
        "removed = 2024-09-01\n\n[[locations.meters]]\n"
        'manufacturer = "FRO"\nserial = "PV0002"\ninstalled = 2024-09-01',
    )
    result = apply_site_text(store, text, "exchange.toml", now=LATER)
    assert result.changed_locations == ("pv",)
    # 2024-09-01 00:00 in Vienna (summer time, UTC+2) is 2024-08-31 22:00 UTC
    assert result.version.effective_from == datetime(2024, 8, 31, 22, 0, tzinfo=UTC)


def test_tor_4_1_metering_point_id_is_never_moved_to_another_location(
    store: DuckDBStore,
) -> None:
    before = store.fingerprint("graz-lend-12")
    text = SITE.read_text(encoding="utf-8")
    top2_id = "AT0081000801000000000000000100021"
    # Top 2 gets a new ID and its old ID is given to the common areas
    moved = text.replace(top2_id, "AT0081000801000000000000000100099").replace(
        "AT0081000801000000000000000100031", top2_id
    )
    with pytest.raises(StoreError) as caught:
        apply_site_text(store, moved, "moved.toml", now=LATER)
    assert caught.value.exit_code == 2
    assert any(top2_id in p.reason and "'top2'" in p.reason for p in caught.value.problems)
    assert store.fingerprint("graz-lend-12") == before


def test_tor_4_1_metering_point_id_is_never_reused_by_another_site(
    store: DuckDBStore,
) -> None:
    text = (
        '[site]\nid = "other"\n[[locations]]\nid = "flat"\nrole = "consumer"\n'
        'metering_points = { import = "AT.008100.08010.00000000000000100001" }\n'
    )
    assert parse_site(text, "other.toml").locations[0].id == "flat"
    with pytest.raises(StoreError) as caught:
        apply_site_text(store, text, "other.toml", now=LATER)
    # the dotted form is the same ID as the canonical one of the grid connection
    assert "AT0081000801000000000000000100001" in str(caught.value)
    assert "other" not in store.site_ids()


def test_a_removed_id_stays_with_its_location(store: DuckDBStore) -> None:
    text = SITE.read_text(encoding="utf-8")
    without = text.replace('metering_points = { import = "AT0081000801000000000000000100031" }', "")
    apply_site_text(store, without, "no-id.toml", now=LATER)
    registry = store.metering_point_registry()
    assert registry["AT0081000801000000000000000100031"] == ("graz-lend-12", "general", "import")
    # giving it back to the same location is fine
    apply_site_text(store, text, "again.toml", now=LATER)
    assert len(store.site_versions("graz-lend-12")) == 3


def test_unknown_site_is_a_store_error(store: DuckDBStore) -> None:
    with pytest.raises(StoreError, match="lastgang site apply"):
        store.site_version("nowhere")


_HOLDER = """
import sys, time
from lastgang.store import open_store
store = open_store(sys.argv[1])
print("ready", flush=True)
sys.stdin.readline()
store.close()
"""


def test_second_process_gets_a_clear_lock_message(tmp_path: Path) -> None:
    path = tmp_path / "locked.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        with pytest.raises(StoreError) as caught:
            open_store(path)
        message = str(caught.value)
        assert "in use by another lastgang process" in message
        assert str(holder.pid) in message
        assert caught.value.exit_code == 2
    finally:
        assert holder.stdin is not None
        holder.stdin.write("\n")
        holder.stdin.flush()
        holder.wait(timeout=20)
    # once the other process is done the store opens
    open_store(path).close()


def test_store_in_a_missing_folder_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="does not exist"):
        open_store(tmp_path / "no" / "such" / "store.duckdb")


def test_a_file_that_is_not_a_store_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.duckdb"
    path.write_text("these are not the tables you are looking for\n", encoding="utf-8")
    with pytest.raises(StoreError):
        open_store(path)


def test_site_model_survives_the_store(store: DuckDBStore) -> None:
    assert store.site_version("graz-lend-12").site == load_site(SITE)


def test_profiles_of_two_meters_in_short_runs_come_back_slot_by_slot(
    store: DuckDBStore,
) -> None:
    """Rows that change meter every slot are not read as runs but one by one; every slot comes
    back with its own meter, and the slots without a row are missing."""
    n = 400
    imp = np.arange(n, dtype=np.float64) / 8
    exp = np.full(n, 0.125)
    q = np.full(n, L1, dtype=np.int8)
    meter = (np.arange(n) % 2).astype(np.int32)  # A, B, A, B, ...
    batch = np.full(n, 3, dtype=np.int64)
    imp[10], exp[10], q[10], meter[10], batch[10] = np.nan, np.nan, MISSING, -1, 0
    keys = ("SME:A", "SME:B")
    store.save_profiles(
        "graz-lend-12", {"top1": LoadProfile(5000, imp, exp, q, batch, meter, keys)}, WHEN
    )
    got = store.load_profiles("graz-lend-12", ["top1"], 4990, 5000 + n + 5)["top1"]
    inner = slice(10, 10 + n)
    assert got.meters == keys
    np.testing.assert_array_equal(got.meter[inner], meter)
    np.testing.assert_array_equal(got.import_kwh[inner], imp)
    np.testing.assert_array_equal(got.quality[inner], q)
    np.testing.assert_array_equal(got.batch[inner], batch)
    for outside in (slice(0, 10), slice(10 + n, None)):
        assert np.isnan(got.import_kwh[outside]).all() and np.isnan(got.export_kwh[outside]).all()
        assert (got.quality[outside] == MISSING).all()
        assert (got.batch[outside] == 0).all() and (got.meter[outside] == -1).all()


def _pairs(store: DuckDBStore) -> set[tuple[str, str | None]]:
    rows = store.connection.execute(
        "SELECT location_id, meter FROM profile_pairs WHERE site_id = 'graz-lend-12'"
    ).fetchall()
    return {(r[0], r[1]) for r in rows}


def test_profile_pairs_are_recorded_once_per_location_and_meter(store: DuckDBStore) -> None:
    p = _profile(1000, [0.25, np.nan, 0.5], [L1, MISSING, L2], batch=7)
    store.save_profiles("graz-lend-12", {"top2": p}, WHEN)
    store.save_profiles("graz-lend-12", {"top2": p, "top1": p}, LATER)
    # every meter of a profile and the slots without one (None), each pair once
    assert _pairs(store) == {
        ("top2", "SME:22000123"),
        ("top2", None),
        ("top1", "SME:22000123"),
        ("top1", None),
    }
    count = store.connection.execute("SELECT count(*) FROM profile_pairs").fetchall()
    assert count == [(4,)]


def test_pairs_are_numbered_in_the_store_and_each_site_reads_its_own(store: DuckDBStore) -> None:
    """Schema 7: a pair's number stands for its site too, so two sites with the same location
    and meter names have pairs of their own, and each reads only its own rows."""
    ours = _profile(1000, [0.25, 0.5], [L1, L2], batch=7)
    theirs = _profile(1001, [4.0, 8.0], [L2, L1], batch=9)
    store.save_profiles("graz-lend-12", {"top1": ours}, WHEN)
    store.save_profiles("elsewhere", {"top1": theirs, "top2": theirs}, WHEN)
    rows = store.connection.execute(
        "SELECT pair, site_id, location_id, meter FROM profile_pairs ORDER BY pair"
    ).fetchall()
    assert rows == [
        (1, "graz-lend-12", "top1", None),
        (2, "graz-lend-12", "top1", "SME:22000123"),
        (3, "elsewhere", "top1", None),
        (4, "elsewhere", "top1", "SME:22000123"),
        (5, "elsewhere", "top2", None),
        (6, "elsewhere", "top2", "SME:22000123"),
    ]
    got = store.load_profiles("graz-lend-12", ["top1", "top2"], 1000, 1003)
    assert got["top1"].import_kwh[:2].tolist() == [0.25, 0.5] and np.isnan(
        got["top1"].import_kwh[2]
    )
    assert got["top1"].batch.tolist() == [7, 7, 0]
    assert got["top2"].quality.tolist() == [MISSING] * 3  # elsewhere's top2 is not ours
    other = store.load_profiles("elsewhere", ["top1"], 1000, 1003)["top1"]
    assert np.isnan(other.import_kwh[0]) and other.import_kwh[1:].tolist() == [4.0, 8.0]
    assert store.counts("graz-lend-12")["profile_values"] == 2
    assert store.counts("elsewhere")["profile_values"] == 4
    # a location of ours stored later has numbers beyond theirs (7, 8): ours are read by a
    # range of numbers that holds theirs, and by the list of our own
    store.save_profiles("graz-lend-12", {"top2": ours}, LATER)
    both = store.load_profiles("graz-lend-12", ["top1", "top2"], 1000, 1003)
    for loc in ("top1", "top2"):
        assert both[loc].batch.tolist() == [7, 7, 0] and both[loc].meters == ("SME:22000123",)
    assert store.load_profiles("graz-lend-12", ["top2"], 1000, 1003)["top2"].batch.tolist() == [
        7,
        7,
        0,
    ]
    assert store.counts("graz-lend-12")["profile_values"] == 4
    # a rebuild of one site leaves the other's rows
    store.begin_rebuild("elsewhere")
    store.finish_rebuild("elsewhere", LATER)
    assert store.counts("elsewhere")["profile_values"] == 0
    assert store.load_profiles("graz-lend-12", ["top1"], 1000, 1002)["top1"].batch.tolist() == [
        7,
        7,
    ]


def test_a_version_6_store_of_two_sites_is_read_as_it_is_and_its_profile_rows_numbered_for_writing(
    tmp_path: Path,
) -> None:
    """Version 6 kept the site, location and meter of every profile value row as strings and
    numbered the pairs per site (both sites below had 1, 2, ...). Opened read-only it is read
    as it is; opened for writing every pair of the store gets a number of its own, by site,
    location and meter, and every row its pair's number, with the same content, history and
    profiles; a later save numbers on from the highest."""
    path = tmp_path / "v6.duckdb"
    ours = {"top1": _exchanged(1000, 20, 10), "top2": _profile(1005, [0.25, 0.5], [L1, L2], 7)}
    theirs = {"top2": _profile(1002, [4.0, np.nan, 8.0], [L2, MISSING, L1], batch=9)}
    sites = {"graz-lend-12": ours, "elsewhere": theirs}
    with DuckDBStore(path) as store:
        apply_site(store, SITE, now=WHEN)
        for site, profiles in sites.items():
            store.save_profiles(site, profiles, WHEN)
        top1 = ours["top1"]
        imp, batch = top1.import_kwh.copy(), top1.batch.copy()
        imp[:2], batch[:2] = [1.0, 2.0], 8  # two values changed: the old ones to the history
        changed = LoadProfile(
            1000, imp, top1.export_kwh, top1.quality, batch, top1.meter, top1.meters
        )
        store.save_profiles("graz-lend-12", {"top1": changed}, LATER)
        expected = {site: store.load_profiles(site, ["top1", "top2"], 995, 1025) for site in sites}
        fingerprints = {site: store.fingerprint(site) for site in sites}
        counts = {site: store.counts(site) for site in sites}
        as_version(store.connection, 6)
        per_site = "SELECT site_id, location_id, meter, pair FROM profile_pairs ORDER BY ALL"
        assert store.connection.execute(per_site).fetchall() == [
            ("elsewhere", "top2", "SME:22000123", 2),
            ("elsewhere", "top2", None, 1),
            ("graz-lend-12", "top1", "SME:A", 2),
            ("graz-lend-12", "top1", "SME:B", 3),
            ("graz-lend-12", "top1", None, 1),
            ("graz-lend-12", "top2", "SME:22000123", 5),
            ("graz-lend-12", "top2", None, 4),
        ]
    assert counts["graz-lend-12"]["profile_history"] == 2

    def same(store: DuckDBStore) -> None:
        for site in sites:
            got = store.load_profiles(site, ["top1", "top2"], 995, 1025)
            for loc in ("top1", "top2"):
                _same_profiles(got[loc], expected[site][loc])
            assert store.fingerprint(site) == fingerprints[site]
            assert store.counts(site) == counts[site]

    with DuckDBStore(path, read_only=True) as old:
        same(old)
    said: list[str] = []
    with DuckDBStore(path, notice=said.append) as store:
        assert len(said) == 1
        assert "from schema version 6 to 7, once: its profile values are numbered" in said[0]
        assert store.connection.execute(
            "SELECT pair, site_id, location_id, meter FROM profile_pairs ORDER BY pair"
        ).fetchall() == [
            (1, "elsewhere", "top2", None),
            (2, "elsewhere", "top2", "SME:22000123"),
            (3, "graz-lend-12", "top1", None),
            (4, "graz-lend-12", "top1", "SME:A"),
            (5, "graz-lend-12", "top1", "SME:B"),
            (6, "graz-lend-12", "top2", None),
            (7, "graz-lend-12", "top2", "SME:22000123"),
        ]
        same(store)
        store.save_profiles("elsewhere", {"top3": theirs["top2"]}, LATER)
        new = "SELECT pair FROM profile_pairs WHERE site_id = 'elsewhere' AND location_id = 'top3'"
        assert sorted(store.connection.execute(new).fetchall()) == [(8,), (9,)]
    with DuckDBStore(path, read_only=True) as again:
        got = again.load_profiles("elsewhere", ["top3"], 1002, 1005)["top3"]
        assert got.batch.tolist() == [9, 0, 9]


def test_a_version_2_store_gets_its_profile_pairs_when_opened_for_writing(tmp_path: Path) -> None:
    path = tmp_path / "v2.duckdb"
    with DuckDBStore(path) as store:
        apply_site(store, DATA / "site-basic.toml", now=WHEN)
        p = _profile(1000, [0.25, np.nan], [L1, MISSING], batch=7)
        store.save_profiles("graz-lend-12", {"top2": p}, WHEN)
        as_version(store.connection, 2)  # no profile_pairs, no numbers
    with DuckDBStore(path, read_only=True) as old:  # read as it is
        assert old.load_profiles("graz-lend-12", ["top2"], 1000, 1002)["top2"].import_kwh[0] == 0.25
    with DuckDBStore(path) as store:
        assert _numbers(store) == {("top2", None): 1, ("top2", "SME:22000123"): 2}
        got = store.load_profiles("graz-lend-12", ["top2"], 1000, 1002)["top2"]
        assert got.import_kwh[0] == 0.25 and got.quality.tolist() == [L1, MISSING]


def _numbers(store: DuckDBStore) -> dict[tuple[str, str | None], int | None]:
    rows = store.connection.execute(
        "SELECT location_id, meter, pair FROM profile_pairs WHERE site_id = 'graz-lend-12'"
    ).fetchall()
    return {(r[0], r[1]): r[2] for r in rows}


def test_pairs_are_numbered_in_the_site_and_every_value_row_carries_its_number(
    store: DuckDBStore,
) -> None:
    """Each (location, meter) pair gets the next number, once; the value rows carry the number
    of their own pair (schema 7: instead of their site, location and meter)."""
    store.save_profiles("graz-lend-12", {"top2": _exchanged(1000, 20, 10)}, WHEN)
    first = _numbers(store)
    # sorted by location, then meter with the slots without one first
    assert first == {("top2", None): 1, ("top2", "SME:A"): 2, ("top2", "SME:B"): 3}
    p = _profile(1000, [0.25, np.nan, 0.5], [L1, MISSING, L2], batch=7)
    store.save_profiles("graz-lend-12", {"top2": _exchanged(1000, 20, 10), "top1": p}, LATER)
    second = _numbers(store)
    assert {k: second[k] for k in first} == first  # kept
    assert sorted(v for k, v in second.items() if k not in first) == [4, 5]
    assert {second[("top1", None)], second[("top1", "SME:22000123")]} == {4, 5}
    columns = store.connection.execute(
        "SELECT column_name FROM duckdb_columns() WHERE table_name = 'profile_values'"
    ).fetchall()
    assert [c for (c,) in columns] == [
        "pair", "slot", "import_kwh", "export_kwh", "quality", "batch"
    ]  # fmt: skip
    # top2: SME:A before slot 1010 but its hole at 1003, SME:B from 1010; top1: its meter
    # but the missing slot 1001
    rows = store.connection.execute(
        f"SELECT location_id, meter, count(*) FROM {duckdb_store._PROFILE_ROWS} "
        "GROUP BY ALL ORDER BY ALL"
    ).fetchall()
    assert rows == [
        ("top1", "SME:22000123", 2),
        ("top1", None, 1),
        ("top2", "SME:A", 9),
        ("top2", "SME:B", 10),
        ("top2", None, 1),
    ]


def _keys_read_by(store: DuckDBStore, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The key each read of value rows names them by, recorded from now on."""
    keys: list[str] = []
    read = DuckDBStore._read_values

    def spy(self: DuckDBStore, *args: Any, **kwargs: Any) -> Any:
        keys.append(kwargs.get("key", "hash(location_id, meter)"))
        return read(self, *args, **kwargs)

    monkeypatch.setattr(DuckDBStore, "_read_values", spy)
    return keys


def test_rows_written_by_this_version_are_read_by_their_number_in_one_pass(
    store: DuckDBStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.save_profiles("graz-lend-12", {"top2": _exchanged(1000, 20, 10)}, WHEN)
    keys = _keys_read_by(store, monkeypatch)
    got = store.load_profiles("graz-lend-12", ["top2", "top1"], 1000, 1020)
    assert keys == ["pair"]
    assert got["top2"].meters == ("SME:A", "SME:B") and got["top1"].meters == ()
    # the rows as versions 4 to 6 wrote them (strings and numbers of the site): by number
    as_version(store.connection, 4)
    store._version = 4
    again = store.load_profiles("graz-lend-12", ["top2", "top1"], 1000, 1020)
    assert keys == ["pair", "pair"]
    _same_profiles(again["top2"], got["top2"])
    # a row without a number (as written before version 4): the period is read by hash
    store.connection.execute("UPDATE profile_values SET pair = NULL WHERE slot = 1015")
    again = store.load_profiles("graz-lend-12", ["top2", "top1"], 1000, 1020)
    assert keys == ["pair", "pair", "hash(location_id, meter)"]
    _same_profiles(again["top2"], got["top2"])


def _same_profiles(got: LoadProfile, expected: LoadProfile) -> None:
    assert got.meters == expected.meters
    for name in ("import_kwh", "export_kwh", "quality", "batch", "meter"):
        np.testing.assert_array_equal(getattr(got, name), getattr(expected, name))


def test_the_read_by_pair_number_and_by_hash_give_the_same_profiles(store: DuckDBStore) -> None:
    """The rows read by their pair number (schema 7, and schemas 4 to 6 with their strings) and
    by the hash of location and meter (as rows written before schema 4 are): the same arrays,
    for periods before, across and after a meter exchange, with holes and locations not asked
    for."""
    exp = np.zeros(30)
    exp[5:9] = [0.5, -0.0, np.nan, 2.0]
    exchanged = _exchanged(1000, 30, 12)
    one_meter = np.minimum(exchanged.meter, 0)  # -1 in the hole, else SME:A
    source = LoadProfile(
        1000, np.zeros(30), exp, exchanged.quality, exchanged.batch, one_meter, ("SME:A",)
    )
    store.save_profiles(
        "graz-lend-12",
        {"top1": exchanged, "pv": source, "top2": _profile(1005, [0.25, 0.5], [L1, L2], 7)},
        WHEN,
    )
    periods = ((995, 1010), (1005, 1020), (1013, 1040), (990, 1040))
    asked = (["top1", "pv", "top2"], ["top2"], ["pv", "top1"])
    by_number = {
        (p, tuple(ids)): store.load_profiles("graz-lend-12", ids, *p)
        for p in periods
        for ids in asked
    }
    back = store.load_profiles("graz-lend-12", ["pv"], 1000, 1030)["pv"]
    assert back.export_kwh.view(np.int64).tolist() == exp.view(np.int64).tolist()
    as_version(store.connection, 6)
    for version in (6, 3):  # by the site's numbers, then as rows without a number by hash
        store._version = version
        for (period, ids), expected in by_number.items():
            got = store.load_profiles("graz-lend-12", list(ids), *period)
            for loc in ids:
                _same_profiles(got[loc], expected[loc])


def test_a_version_3_store_is_read_as_it_is_and_numbered_when_opened_for_writing(
    tmp_path: Path,
) -> None:
    """Version 3 had no pair numbers. Opened read-only it is read by hash; opened for writing
    its pairs are numbered and every value row gets the number of its pair."""
    path = tmp_path / "v3.duckdb"
    p = _profile(1000, [0.25, np.nan, 0.5], [L1, MISSING, L2], batch=7)
    with DuckDBStore(path) as store:
        apply_site(store, DATA / "site-basic.toml", now=WHEN)
        store.save_profiles("graz-lend-12", {"top1": p, "top2": _exchanged(1000, 20, 10)}, WHEN)
        expected = store.load_profiles("graz-lend-12", ["top1", "top2"], 995, 1025)
        fingerprint = store.fingerprint("graz-lend-12")
        as_version(store.connection, 3)
    with DuckDBStore(path, read_only=True) as old:
        got = old.load_profiles("graz-lend-12", ["top1", "top2"], 995, 1025)
        for loc in ("top1", "top2"):
            _same_profiles(got[loc], expected[loc])
        assert old.fingerprint("graz-lend-12") == fingerprint
    with DuckDBStore(path) as store:
        # numbered by location, then meter (the slots without one first)
        assert _numbers(store) == {
            ("top1", None): 1,
            ("top1", "SME:22000123"): 2,
            ("top2", None): 3,
            ("top2", "SME:A"): 4,
            ("top2", "SME:B"): 5,
        }
        numbered = "SELECT count(*) FROM profile_values JOIN profile_pairs USING (pair)"
        assert store.connection.execute(numbered).fetchall() == [(23,)]
        assert store.fingerprint("graz-lend-12") == fingerprint
        got = store.load_profiles("graz-lend-12", ["top1", "top2"], 995, 1025)
        for loc in ("top1", "top2"):
            _same_profiles(got[loc], expected[loc])
        assert store.save_profiles("graz-lend-12", {"top1": p}, LATER) == 0  # nothing changed
        got = store.load_profiles("graz-lend-12", ["top1", "top2"], 995, 1025)
        for loc in ("top1", "top2"):
            _same_profiles(got[loc], expected[loc])


def _exchanged(start: int, n: int, swap: int) -> LoadProfile:
    """A profile whose meter SME:A is exchanged for SME:B at slot ``swap``, with a gap."""
    imp = np.arange(n, dtype=np.float64) / 4
    q = np.full(n, L1, dtype=np.int8)
    meter = np.where(np.arange(n) < swap, 0, 1).astype(np.int32)
    batch = np.where(np.arange(n) < swap, 4, 5).astype(np.int64)
    imp[3], q[3], meter[3], batch[3] = np.nan, MISSING, -1, 0
    exp = np.where(np.isnan(imp), np.nan, 0.0)
    return LoadProfile(start, imp, exp, q, batch, meter, ("SME:A", "SME:B"))


def test_a_period_lists_only_the_meters_with_values_in_it(store: DuckDBStore) -> None:
    """top1's meter is exchanged at slot 1010; top2 has one meter. A period before or after the
    exchange names only the meter that produced its values (numbered 0), one across it both."""
    store.save_profiles(
        "graz-lend-12",
        {"top1": _exchanged(1000, 20, 10), "top2": _profile(1000, [0.25, 0.5], [L1, L2], 7)},
        WHEN,
    )
    before = store.load_profiles("graz-lend-12", ["top1", "top2"], 1000, 1010)
    assert before["top1"].meters == ("SME:A",)
    assert before["top1"].meter.tolist() == [0, 0, 0, -1, 0, 0, 0, 0, 0, 0]
    assert before["top2"].meters == ("SME:22000123",)
    assert before["top2"].meter.tolist() == [0, 0] + [-1] * 8
    after = store.load_profiles("graz-lend-12", ["top1"], 1012, 1025)["top1"]
    assert after.meters == ("SME:B",)
    assert after.meter.tolist() == [0] * 8 + [-1] * 5
    assert after.batch.tolist() == [5] * 8 + [0] * 5
    across = store.load_profiles("graz-lend-12", ["top1"], 1008, 1012)["top1"]
    assert across.meters == ("SME:A", "SME:B")
    assert across.meter.tolist() == [0, 0, 1, 1]
    nothing = store.load_profiles("graz-lend-12", ["top1"], 2000, 2002)["top1"]
    assert nothing.meters == () and nothing.meter.tolist() == [-1, -1]


def test_value_rows_of_pairs_profile_pairs_does_not_name_are_read_by_grouping(
    store: DuckDBStore,
) -> None:
    """Without their pairs in profile_pairs (a store written before it), or with two pairs
    that share a hash there, the rows are named by a grouping of the rows: the same profiles."""
    store.save_profiles("graz-lend-12", {"top1": _exchanged(1000, 20, 10)}, WHEN)
    expected = store.load_profiles("graz-lend-12", ["top1"], 1005, 1015)["top1"]
    assert expected.meters == ("SME:A", "SME:B")
    as_version(store.connection, 3)  # rows without numbers, read by hash
    store._version = 3
    (h,) = store.connection.execute("SELECT hash('top1', 'SME:B')").fetchall()[0]
    store.connection.execute(
        "INSERT INTO profile_pairs (site_id, location_id, meter, h) "
        "VALUES ('graz-lend-12', 'x', 'X', ?)",
        [h],
    )
    shared = store.load_profiles("graz-lend-12", ["top1"], 1005, 1015)["top1"]
    store.connection.execute("DELETE FROM profile_pairs")
    unnamed = store.load_profiles("graz-lend-12", ["top1"], 1005, 1015)["top1"]
    for got in (shared, unnamed):
        assert got.meters == expected.meters
        for name in ("import_kwh", "export_kwh", "quality", "batch", "meter"):
            np.testing.assert_array_equal(getattr(got, name), getattr(expected, name))


def test_long_runs_of_an_exchanged_meter_name_only_the_meters_of_the_period(
    store: DuckDBStore,
) -> None:
    """The same with runs long enough to be copied as slices (the usual read)."""
    store.save_profiles("graz-lend-12", {"top1": _exchanged(1000, 3000, 1500)}, WHEN)
    before = store.load_profiles("graz-lend-12", ["top1"], 900, 2400)["top1"]
    assert before.meters == ("SME:A",)
    assert before.meter.tolist() == [-1] * 100 + [0] * 3 + [-1] + [0] * 1396
    assert before.batch.tolist() == [0] * 100 + [4] * 3 + [0] + [4] * 1396
    after = store.load_profiles("graz-lend-12", ["top1"], 2500, 4500)["top1"]
    assert after.meters == ("SME:B",)
    assert after.meter.tolist() == [0] * 1500 + [-1] * 500
    assert after.import_kwh[0] == 1500 / 4 and np.isnan(after.import_kwh[1500:]).all()
    across = store.load_profiles("graz-lend-12", ["top1"], 1000, 4000)["top1"]
    assert across.meters == ("SME:A", "SME:B")
    assert across.meter.tolist() == [0, 0, 0, -1] + [0] * 1496 + [1] * 1500


def test_batches_beyond_32_bits_and_periods_beyond_65535_slots_come_back_whole(
    store: DuckDBStore,
) -> None:
    """The rows are read in narrower types where they fit; where they do not, as stored."""
    n = 70_000
    imp = np.full(n, 0.25)
    q = np.full(n, L1, dtype=np.int8)
    batch = np.full(n, 2**40 + 3, dtype=np.int64)
    batch[:10] = 5
    meter = np.zeros(n, dtype=np.int32)
    p = LoadProfile(1000, imp, np.zeros(n), q, batch, meter, ("SME:A",))
    store.save_profiles("graz-lend-12", {"top1": p}, WHEN)
    got = store.load_profiles("graz-lend-12", ["top1"], 1000, 1000 + n)["top1"]
    assert got.batch.dtype == np.int64 and got.batch.tolist() == batch.tolist()
    assert got.import_kwh.tolist() == imp.tolist() and got.meters == ("SME:A",)
    short = store.load_profiles("graz-lend-12", ["top1"], 990, 1010)["top1"]
    assert short.batch.tolist() == [0] * 10 + [5] * 10
    late = store.load_profiles("graz-lend-12", ["top1"], 1000 + n - 5, 1000 + n + 5)["top1"]
    assert late.batch.tolist() == [2**40 + 3] * 5 + [0] * 5


def test_exports_of_zero_minus_zero_and_nan_come_back_bit_for_bit_in_narrow_types(
    store: DuckDBStore,
) -> None:
    """The export is written only where it is not +0.0 (the array starts as zeros): every
    value comes back with its bits, -0.0 and NaN included, in long runs and in rows that
    change meter every slot; batches come back in 4 bytes and meter numbers in 2."""
    n = 3000
    exp = np.zeros(n)
    exp[100:110] = 0.5  # a run with an export
    exp[200] = -0.0
    exp[300] = np.nan
    exp[2990:] = 1.25
    imp = np.full(n, 0.75)
    q = np.full(n, L1, dtype=np.int8)
    batch = np.full(n, 7, dtype=np.int64)
    long_runs = LoadProfile(8000, imp, exp, q, batch, np.zeros(n, dtype=np.int32), ("SME:A",))
    meter = (np.arange(n) % 2).astype(np.int32)  # A, B, A, B, ...: read row by row
    short_runs = LoadProfile(8000, imp, exp, q, batch, meter, ("SME:A", "SME:B"))
    for location, profile in (("top1", long_runs), ("top2", short_runs)):
        store.save_profiles("graz-lend-12", {location: profile}, WHEN)
    got = store.load_profiles("graz-lend-12", ["top1", "top2"], 8000, 8000 + n)
    for location, profile in (("top1", long_runs), ("top2", short_runs)):
        back = got[location]
        assert back.export_kwh.view(np.int64).tolist() == exp.view(np.int64).tolist()
        assert back.import_kwh.tolist() == imp.tolist()
        assert back.batch.dtype == np.int32 and back.batch.tolist() == batch.tolist()
        assert back.meter.dtype == np.int16 and back.meter.tolist() == profile.meter.tolist()


def test_a_few_of_many_locations_read_only_their_rows_and_the_same_values(
    store: DuckDBStore,
) -> None:
    """Reading one location of four that hold values takes only its rows out of DuckDB (a
    filter on the location); the profile is the same as when all four are read at once, and a
    location without values in the store comes back missing."""
    n = 200
    saved = {}
    for k, location in enumerate(("top1", "top2", "general", "pv")):
        imp = np.arange(n, dtype=np.float64) / 4 + k
        q = np.full(n, L1, dtype=np.int8)
        batch = np.full(n, 10 + k, dtype=np.int64)
        saved[location] = LoadProfile(
            6000, imp, np.zeros(n), q, batch, np.zeros(n, dtype=np.int32), (f"SME:{k}",)
        )
    store.save_profiles("graz-lend-12", saved, WHEN)
    every = store.load_profiles("graz-lend-12", list(saved), 6000, 6000 + n)
    one = store.load_profiles("graz-lend-12", ["top2", "hak"], 6000, 6000 + n)
    for field in ("import_kwh", "export_kwh", "quality", "batch", "meter"):
        assert getattr(one["top2"], field).tolist() == getattr(every["top2"], field).tolist()
        assert getattr(one["top2"], field).tolist() == getattr(saved["top2"], field).tolist()
    assert one["top2"].meters == ("SME:1",)
    assert np.isnan(one["hak"].import_kwh).all() and (one["hak"].quality == MISSING).all()


def test_a_site_version_is_parsed_once_per_process_and_never_mixed_up(
    store: DuckDBStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every page of a site reads its configuration; one of 10,000 units takes half a second
    to parse. A version is parsed once and shared (it is frozen); another version or another
    store's site of the same name is its own."""
    from lastgang.cache import SizedCache
    from lastgang.concept.model import Site

    monkeypatch.setattr(duckdb_store, "_SITES", SizedCache(32 * 2**20))
    parsed: list[str] = []
    real = Site.model_validate_json

    def counting(text: str) -> Site:
        parsed.append(text)
        return real(text)

    monkeypatch.setattr(Site, "model_validate_json", staticmethod(counting))
    first = store.site_version("graz-lend-12")
    again = store.site_version("graz-lend-12")
    assert again.site is first.site and len(parsed) == 1
    assert first.site == load_site(SITE)
    text = SITE.read_text(encoding="utf-8").replace('name = "Lendplatz 12, Graz"', 'name = "L12"')
    apply_site_text(store, text, "edited.toml", now=LATER)
    assert store.site_version("graz-lend-12").site.site.name == "L12"
    assert store.site_version("graz-lend-12", 1).site is first.site
    other = DuckDBStore(":memory:")
    apply_site_text(other, text.replace('name = "L12"', 'name = "Elsewhere"'), "o.toml", now=WHEN)
    assert other.site_version("graz-lend-12").site.site.name == "Elsewhere"
    assert len(parsed) == 3


def test_the_raw_archive_is_listed_a_part_at_a_time(store: DuckDBStore) -> None:
    """A listener archives a batch a minute (half a million a year): the archive is listed a
    part at a time, the newest first if asked, and counted without reading it."""
    for k in range(5):
        store.add_batch(
            "graz-lend-12", b"x%d" % k, f"{k:064x}", f"b{k}.bin", "csv/test", WHEN, 1, {}
        )
    every = [b.batch for b in store.batches("graz-lend-12")]
    assert len(every) == store.batch_count("graz-lend-12") == 5 and every == sorted(every)
    assert [b.batch for b in store.batches("graz-lend-12", offset=1, limit=2)] == every[1:3]
    newest = store.batches("graz-lend-12", newest_first=True, limit=2)
    assert [b.batch for b in newest] == every[::-1][:2]
    assert [b.source for b in newest] == ["b4.bin", "b3.bin"]
    assert store.batches("graz-lend-12", offset=5) == [] and store.batch_count("elsewhere") == 0
    # a run's provenance asks for the batches it read, by number
    picked = store.batches_numbered("graz-lend-12", [every[3], every[0], every[3], 10**9])
    assert [b.batch for b in picked] == [every[0], every[3]]
    assert store.batches_numbered("elsewhere", every) == []
    assert store.batches_numbered("graz-lend-12", []) == []


@pytest.mark.parametrize("padding", [0, 100])  # a few names compared in the scan, many joined
def test_other_readings_of_meters_and_locations_are_found(store: DuckDBStore, padding: int) -> None:
    from lastgang.services import import_files

    (top1,) = import_files(store, "graz-lend-12", [DATA / "intervals-top1-2024-03-31.csv"])
    (hak,) = import_files(store, "graz-lend-12", [DATA / "registers-hak-2024-03-31.csv"])
    extra = [f"X:{k}" for k in range(padding)]

    def other(batch: int, meters: list[str], locations: list[str]) -> bool:
        return store.has_other_readings("graz-lend-12", batch, meters + extra, locations + extra)

    # Top 1's interval values are all in its own batch; another batch finds them
    assert other(top1.batch, [], ["top1"]) is False
    assert other(hak.batch, [], ["top1"]) is True
    assert other(hak.batch, ["ISK:1ISK0070001234"], []) is True  # by the meter of the rows
    # register readings count whatever their batch
    assert other(hak.batch, ["LGZ:81234567"], []) is True
    assert other(top1.batch, ["SME:22000123"], ["top2"]) is False


def _intervals_read(store: DuckDBStore, batches: list[int]) -> list[Any]:
    """Everything the interval value rows give: per meter and per location without a meter,
    the spans of each batch, and whether other batches hold a meter's or location's rows."""
    meters = store.readings("graz-lend-12", ["ISK:1ISK0070001234", "ISK:1ISK0070005678"], 0, 2**40)
    locations = store.interval_readings("graz-lend-12", ["top1", "top2", "hak"], 0, 2**32)
    out: list[Any] = []
    for found in (meters, locations):
        for key in sorted(found):
            series = found[key].intervals
            assert series is not None
            out.append(
                (key, *(getattr(series, c).tolist() for c in ("slot", "import_kwh", "quality")))
            )
            out.append(series.batch.tolist())
    for batch in batches:
        out.append(store.reading_spans("graz-lend-12", batch))
        out.append(
            store.has_other_readings("graz-lend-12", batch, ["ISK:1ISK0070001234"], ["top1"])
        )
    return out


def test_a_version_5_store_is_read_as_it_is_and_its_interval_rows_numbered_for_writing(
    tmp_path: Path,
) -> None:
    """Version 5 kept the site, location and meter of every interval value row as strings.
    Opened read-only it is read as it is; opened for writing every row gets the number of its
    site, location and meter (``interval_keys``) in place of the three strings, with the same
    content and readings; the rows of a later import take the same numbers."""
    from lastgang.services import import_files

    path = tmp_path / "v5.duckdb"
    with DuckDBStore(path) as store:
        apply_site(store, SITE, now=WHEN)
        (spring,) = import_files(store, "graz-lend-12", [DATA / "intervals-top1-2024-03-31.csv"])
        rows = ReadingSet(  # a location's own values without a meter (as an EDA message gives)
            intervals=IntervalRows(
                locations=("top2",),
                location=np.zeros(3, dtype=np.int32),
                meter=np.full(3, -1, dtype=np.int32),
                slot=np.array([100, 101, 102]),
                import_kwh=np.array([0.5, 0.25, 0.125]),
                export_kwh=np.zeros(3),
                quality=np.full(3, L2, dtype=np.int8),
            )
        )
        store.add_readings("graz-lend-12", spring.batch, rows)
        expected = _intervals_read(store, [spring.batch])
        fingerprint = store.fingerprint("graz-lend-12")
        counts = store.counts("graz-lend-12")
    assert counts["interval_values"] == 96 * 1 - 4 + 3  # a spring day of Top 1, and Top 2's 3
    con = duckdb.connect(str(path))  # what version 5 had: the strings in every row
    as_version(con, 5)
    con.close()
    with DuckDBStore(path, read_only=True) as old:
        assert _intervals_read(old, [spring.batch]) == expected
        assert old.fingerprint("graz-lend-12") == fingerprint
        assert old.counts("graz-lend-12") == counts
    said: list[str] = []
    with DuckDBStore(path, notice=said.append) as store:
        assert len(said) == 1
        assert (
            "from schema version 5 to 7, once: its interval and profile values are numbered"
            in said[0]
        )
        con = store.connection
        columns = con.execute(
            "SELECT column_name FROM duckdb_columns() WHERE table_name = 'interval_values'"
        ).fetchall()
        assert [c for (c,) in columns] == [
            "key", "slot", "import_kwh", "export_kwh", "quality", "is_primary", "batch"
        ]  # fmt: skip
        keys = "SELECT key, location_id, meter FROM interval_keys ORDER BY key"
        assert con.execute(keys).fetchall() == [
            (1, "top1", "ISK:1ISK0070001234"),
            (2, "top2", None),
        ]
        assert _intervals_read(store, [spring.batch]) == expected
        assert store.fingerprint("graz-lend-12") == fingerprint
        assert store.counts("graz-lend-12") == counts
        (autumn,) = import_files(store, "graz-lend-12", [DATA / "intervals-top1-2024-10-27.csv"])
        assert con.execute(keys).fetchall() == [  # Top 1's meter was exchanged in the summer
            (1, "top1", "ISK:1ISK0070001234"),
            (2, "top2", None),
            (3, "top1", "ISK:1ISK0070005678"),
        ]
        assert store.counts("graz-lend-12")["interval_values"] == counts["interval_values"] + 100
        both = _intervals_read(store, [spring.batch, autumn.batch])
    with DuckDBStore(path, read_only=True) as again:
        assert _intervals_read(again, [spring.batch, autumn.batch]) == both


@pytest.mark.parametrize("block", [1, 2, 3, 1 << 22])  # rows inserted at a time
def test_interval_rows_take_the_number_of_their_location_and_meter(
    store: DuckDBStore, block: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each run of rows of one location and meter gets the number of the pair, the same for the
    same pair in any batch, whatever blocks the rows are inserted in; a meter index out of
    range is no meter, and a row of a location index out of range is not stored."""
    monkeypatch.setattr(duckdb_store, "_INSERT_ROWS", block)
    rows = ReadingSet(
        intervals=IntervalRows(
            locations=("top1", "top2"),
            meters=("SME:A", "SME:B"),
            location=np.array([0, 0, 1, 1, 0, 0, 1, 2, -1], dtype=np.int32),
            meter=np.array([0, 0, -1, 7, 1, 0, -1, 0, 0], dtype=np.int32),
            slot=np.arange(10, 19),
            import_kwh=np.arange(9) / 4,
            export_kwh=np.zeros(9),
            quality=np.full(9, L1, dtype=np.int8),
        )
    )
    store.add_readings("graz-lend-12", 5, rows)
    store.add_readings("graz-lend-12", 6, rows)
    con = store.connection
    keys = dict(
        ((loc, m), k)
        for k, loc, m in con.execute("SELECT key, location_id, meter FROM interval_keys").fetchall()
    )
    assert sorted(keys.values()) == [1, 2, 3]
    got = con.execute(
        "SELECT batch, key, slot, import_kwh FROM interval_values ORDER BY batch, slot"
    ).fetchall()
    want = [
        keys[("top1", "SME:A")],
        keys[("top1", "SME:A")],
        keys[("top2", None)],
        keys[("top2", None)],
        keys[("top1", "SME:B")],
        keys[("top1", "SME:A")],
        keys[("top2", None)],
    ]
    for batch in (5, 6):
        assert [r[1:] for r in got if r[0] == batch] == [
            (k, 10 + i, i / 4) for i, k in enumerate(want)
        ]


def test_a_store_opened_read_only_answers_a_read_that_registers_names_first(
    tmp_path: Path,
) -> None:
    """Opening reads the schema version; its result is drained, else DuckDB refuses the arrays
    of names the next read registers (``interval_readings`` as the first call)."""
    from lastgang.services import import_files

    path = tmp_path / "ro.duckdb"
    with DuckDBStore(path) as store:
        apply_site(store, SITE, now=WHEN)
        import_files(store, "graz-lend-12", [DATA / "intervals-top1-2024-03-31.csv"])
        want = store.readings("graz-lend-12", ["ISK:1ISK0070001234"], 0, 2**40)
    with DuckDBStore(path, read_only=True) as store:
        # Top 1's rows are its meter's: none without a meter
        assert store.interval_readings("graz-lend-12", ["top1"], 0, 2**32) == {}
        got = store.readings("graz-lend-12", ["ISK:1ISK0070001234"], 0, 2**40)
        series, expected = got["ISK:1ISK0070001234"].intervals, want["ISK:1ISK0070001234"]
        assert series is not None and expected.intervals is not None
        assert series.import_kwh.tolist() == expected.intervals.import_kwh.tolist()
        assert len(series.slot) == 92  # the spring day's quarter hours


def test_an_interval_key_is_given_once(store: DuckDBStore) -> None:
    """Two pairs can never share a number (a second writer numbering the same key fails)."""
    store.connection.execute("INSERT INTO interval_keys VALUES (1, 'graz-lend-12', 'top1', NULL)")
    with pytest.raises(duckdb.ConstraintException):
        store.connection.execute(
            "INSERT INTO interval_keys VALUES (1, 'graz-lend-12', 'top2', NULL)"
        )


@pytest.mark.parametrize("via", ["one transaction", "a stand-in"])
@pytest.mark.parametrize("rows", [1, 2, 5, 1 << 22])  # rebuilt rows compared at a time
def test_q_2_a_rebuild_keeps_each_rebuilt_value_that_came_out_different(
    store: DuckDBStore, rows: int, via: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rebuild compares every rebuilt row with the new row of its location and slot, a few
    at a time by their slots: the history gets the rows that changed (a value, a meter) or
    have no new row, once each, whatever the number at a time. The same whether the rows
    were set aside and rebuilt in one transaction (``begin_rebuild``, ``finish_rebuild``) or
    rebuilt under a stand-in that then replaces the site's (the whole rebuild), which leaves
    nothing of the stand-in."""
    monkeypatch.setattr(duckdb_store, "_HISTORY_ROWS", rows)
    top1 = _exchanged(1000, 20, 10)  # SME:A before slot 1010, SME:B from it, 1003 missing
    top2 = _profile(1005, [0.25, 0.5], [L1, L2], 7)
    store.save_profiles("graz-lend-12", {"top1": top1, "top2": top2}, WHEN)
    store.save_profiles("elsewhere", {"top1": top1}, WHEN)  # another site's rows stay
    if via == "one transaction":
        into = "graz-lend-12"
        store.begin_rebuild(into)
    else:
        into = store.begin_stand_in("graz-lend-12")
        assert into.startswith("~rebuild:graz-lend-12:")
    imp, meter, batch = top1.import_kwh[:18].copy(), top1.meter[:18].copy(), top1.batch[:18].copy()
    imp[12], batch[12] = 99.0, 6  # slot 1012: another value of another batch
    meter[15] = 0  # slot 1015: the same value from SME:A
    again = LoadProfile(
        1000, imp, top1.export_kwh[:18], top1.quality[:18], batch, meter, top1.meters
    )
    store.save_profiles(into, {"top1": again, "top2": top2}, LATER, history=False)
    if via == "one transaction":
        assert store.finish_rebuild("graz-lend-12", LATER) == 4
    else:  # until the swap the site reads as it was
        site = store.load_profiles("graz-lend-12", ["top1"], 1000, 1020)["top1"]
        assert site.import_kwh[12] == 3.0
        assert store.replace_by_stand_in("graz-lend-12", into, LATER) == 4
        assert store.counts(into)["profile_values"] == 0
    got = store.profile_history("graz-lend-12", "top1", 0, 2000)
    # slots 1018 and 1019 are no longer given (replaced by no batch: 0)
    assert got.slot.tolist() == [1012, 1015, 1018, 1019]
    assert got.import_kwh.tolist() == [3.0, 3.75, 4.5, 4.75]
    assert got.batch.tolist() == [5, 5, 5, 5]
    assert got.meter == ("SME:B",) * 4
    assert got.replaced_by_batch.tolist() == [6, 5, 0, 0]
    assert len(store.profile_history("graz-lend-12", "top2", 0, 2000)) == 0
    assert store.counts("graz-lend-12")["profile_history"] == 4
    assert store.counts("graz-lend-12")["profile_values"] == 18 + 2
    assert store.counts("elsewhere")["profile_values"] == 20
    assert store.counts("elsewhere")["profile_history"] == 0
    back = store.load_profiles("graz-lend-12", ["top1"], 1000, 1020)["top1"]
    assert back.import_kwh[12] == 99.0 and back.meter.tolist()[14:16] == [1, 0]
    assert back.quality.tolist()[18:] == [Quality.MISSING] * 2


def test_only_a_stand_in_is_replaced_or_dropped_as_one(store: DuckDBStore) -> None:
    with pytest.raises(ValueError, match="not the id of a stand-in"):
        store.replace_by_stand_in("graz-lend-12", "elsewhere", LATER)
    with pytest.raises(ValueError, match="not the id of a stand-in"):
        store.drop_stand_in("elsewhere")
