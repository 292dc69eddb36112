"""The profiles of an import built from the rows just read (without reading them back from the
store) equal the profiles built from the stored readings, and that shortcut is only taken when
the store holds nothing else for the meters and locations of the file."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from lastgang import services
from lastgang.services import apply_site_text, import_bytes
from lastgang.store.duckdb_store import DuckDBStore
from lastgang.timegrid import day_slots, end_labels

DATA = Path(__file__).resolve().parent.parent / "data"
SITE_TEXT = (DATA / "site-basic.toml").read_text(encoding="utf-8")
SITE_ID = "graz-lend-12"
WHEN = datetime(2024, 11, 5, 8, 0, tzinfo=UTC)
TZ = "Europe/Vienna"
TOP1 = "AT0081000801000000000000000100011"
TOP2 = "AT0081000801000000000000000100021"
PV_METER = """[[locations.meters]]
manufacturer = "FRO"
serial = "PV0001"
registers = ["1-0:1.8.0", "1-0:2.8.0"]
installed = 2023-01-01
"""


def _file(interleaved: bool, gap: bool = False, pv: bool = False) -> bytes:
    """Top 1 (a meter exchange at 10:30 on 15 June) and Top 2 over two days, line by line
    alternating or one block per metering point; with ``gap`` four quarter hours of Top 2 are
    missing (substitute values), with ``pv`` the PV location has values too."""
    start, _ = day_slots(date(2024, 6, 14), TZ)
    _, stop = day_slots(date(2024, 6, 15), TZ)
    labels = end_labels(start, stop, TZ)
    points = [(TOP1, 0.1), (TOP2, 0.2)] + ([("pv", 0.0)] if pv else [])
    blocks: list[list[str]] = []
    for point, base in points:
        rows = []
        for k, label in enumerate(labels):
            if gap and point == TOP2 and 40 <= k < 44:
                continue
            imp = round(base + (k % 7) * 0.013, 3)
            exp = round((k % 5) * 0.021, 3) if point == "pv" else 0.0
            quality = "L2" if k % 97 == 3 else "L1"
            rows.append(f"{label},{point},{imp!r},{exp!r},{quality}")
        blocks.append(rows)
    if interleaved:
        a, b = blocks[0], blocks[1]
        lines = [row for pair in zip(a, b, strict=False) for row in pair]
        lines += a[len(b) :] + b[len(a) :]
        for block in blocks[2:]:
            lines += block
    else:
        lines = [row for block in blocks for row in block]
    header = "end,metering_point,import_kwh,export_kwh,quality\n"
    return (header + "\n".join(lines) + "\n").encode()


def _store(site_text: str = SITE_TEXT) -> DuckDBStore:
    store = DuckDBStore(":memory:")
    apply_site_text(store, site_text, "site.toml", now=WHEN)
    return store


def _tables(store: DuckDBStore) -> dict[str, str]:
    found = store.fingerprint(SITE_ID)
    return {k: found[k] for k in ("interval_values", "profile_values", "profile_history")}


def _without_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(services._MemoryReadings, "of", classmethod(lambda *a, **k: None))


@contextmanager
def _watch_memory_path(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[bool]]:
    """While inside: for each stored batch, whether its profiles were built from the rows read
    (True) or from the stored readings (False)."""
    taken: list[bool] = []
    of = services._MemoryReadings.of.__func__  # type: ignore[attr-defined]

    def spy(cls: type, *args: object) -> object:
        found = of(cls, *args)
        taken.append(found is not None)
        return found

    with monkeypatch.context() as m:
        m.setattr(services._MemoryReadings, "of", classmethod(spy))
        yield taken


@pytest.mark.parametrize("interleaved", [False, True])
@pytest.mark.parametrize("gap", [False, True])
def test_profiles_from_the_rows_read_equal_the_profiles_from_the_stored_readings(
    monkeypatch: pytest.MonkeyPatch, interleaved: bool, gap: bool
) -> None:
    content = _file(interleaved, gap)
    with _watch_memory_path(monkeypatch) as taken:
        fast = _store()
        import_bytes(fast, SITE_ID, content, "a.csv", now=WHEN)
    assert taken == [True]
    _without_memory(monkeypatch)
    slow = _store()
    import_bytes(slow, SITE_ID, content, "a.csv", now=WHEN)
    assert _tables(fast) == _tables(slow)


def test_a_location_without_meter_is_built_from_the_rows_read_as_from_the_store(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    site = SITE_TEXT.replace(PV_METER, "")
    assert site != SITE_TEXT
    content = _file(interleaved=True, pv=True)
    fast = _store(site)
    import_bytes(fast, SITE_ID, content, "a.csv", now=WHEN)
    _without_memory(monkeypatch)
    slow = _store(site)
    import_bytes(slow, SITE_ID, content, "a.csv", now=WHEN)
    assert _tables(fast) == _tables(slow)
    assert int(_tables(fast)["profile_values"].split(":")[0]) == 3 * 192


def test_stored_readings_of_another_batch_take_the_store_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first, second = _file(interleaved=False, gap=True), _file(interleaved=True)
    with _watch_memory_path(monkeypatch) as taken:
        store = _store()
        import_bytes(store, SITE_ID, first, "a.csv", now=WHEN)
        import_bytes(store, SITE_ID, second, "b.csv", now=WHEN)
    assert taken == [True, False]
    _without_memory(monkeypatch)
    slow = _store()
    import_bytes(slow, SITE_ID, first, "a.csv", now=WHEN)
    import_bytes(slow, SITE_ID, second, "b.csv", now=WHEN)
    assert _tables(store) == _tables(slow)


@pytest.mark.parametrize("memory", [True, False])
def test_profiles_built_a_few_locations_at_a_time_equal_all_at_once(
    monkeypatch: pytest.MonkeyPatch, memory: bool
) -> None:
    content = _file(interleaved=True, gap=True, pv=True)
    site = SITE_TEXT.replace(PV_METER, "")
    if not memory:
        _without_memory(monkeypatch)
    together = _store(site)
    import_bytes(together, SITE_ID, content, "a.csv", now=WHEN)
    monkeypatch.setattr(services, "BUILD_LOCATIONS", 1)
    apart = _store(site)
    import_bytes(apart, SITE_ID, content, "a.csv", now=WHEN)
    assert _tables(apart) == _tables(together)
    assert int(_tables(apart)["profile_values"].split(":")[0]) == 3 * 192
