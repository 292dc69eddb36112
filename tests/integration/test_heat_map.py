"""The data-quality heat map (Q-1, TOR-4.2): worst quality and completeness per metering
location and local day, computed for a block of locations at a time, a part of the rows at a
time, found by name or metering point, or only the rows with a problem. Checked against a
naive day-by-day reading of each location's profile."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pytest

from lastgang.api import views
from lastgang.api.views import quality_heat_map
from lastgang.profiles.types import LoadProfile
from lastgang.quality import Quality
from lastgang.services import apply_site
from lastgang.store.duckdb_store import DuckDBStore
from lastgang.timegrid import day_slots

DATA = Path(__file__).resolve().parent.parent / "data"
SITE_ID = "graz-lend-12"
WHEN = datetime(2024, 11, 5, 8, 0, tzinfo=UTC)
TZ = "Europe/Vienna"
L1, L2, L3, MISSING = (int(q) for q in Quality)
FIRST, LAST = date(2024, 3, 29), date(2024, 4, 1)  # 31 March has 92 quarter hours


@pytest.fixture(scope="module")
def store() -> DuckDBStore:
    return _store()


def _store() -> DuckDBStore:
    """hak and pv measured throughout, top1 with an L2 hour on the 30th, top2 with a missing
    quarter hour on the 31st and L3 on the 1st, general with no value at all."""
    s = DuckDBStore(":memory:")
    apply_site(s, DATA / "site-basic.toml", now=WHEN)
    start, _ = day_slots(FIRST, TZ)
    _, stop = day_slots(LAST, TZ)
    n = stop - start
    spring, _ = day_slots(date(2024, 3, 31), TZ)
    april, _ = day_slots(LAST, TZ)
    profiles = {}
    for loc in ("hak", "pv", "top1", "top2"):
        quality = np.full(n, L1, dtype=np.int8)
        if loc == "top1":
            quality[150:154] = L2
        if loc == "top2":
            quality[spring - start + 10] = MISSING
            quality[april - start + 40 : april - start + 44] = L3
        values = np.where(quality == MISSING, np.nan, 0.25)
        batch = np.where(quality == MISSING, 0, 1).astype(np.int64)
        meter = np.where(quality == MISSING, -1, 0).astype(np.int32)
        profiles[loc] = LoadProfile(start, values, np.zeros(n), quality, batch, meter, ("X:1",))
    s.save_profiles(SITE_ID, profiles, WHEN)
    return s


def _naive(store: DuckDBStore) -> dict[str, list[tuple[date, str, float, int]]]:
    """Each location, day by day: the worst quality of its quarter hours and the share with a
    value, from its own profile of that day."""
    site = store.site_version(SITE_ID).site
    out: dict[str, list[tuple[date, str, float, int]]] = {}
    for loc in site.locations:
        cells = []
        day = FIRST
        while day <= LAST:
            a, b = day_slots(day, TZ)
            q = store.load_profiles(SITE_ID, [loc.id], a, b)[loc.id].quality
            worst = Quality(int(q.max())).label
            cells.append((day, worst, float(np.count_nonzero(q != MISSING)) / len(q), len(q)))
            day = date.fromordinal(day.toordinal() + 1)
        out[loc.id] = cells
    return out


def _cells(heat: views.HeatMap) -> dict[str, list[tuple[date, str, float, int]]]:
    return {
        r.location_id: [(c.day, c.worst, c.complete, c.slots) for c in r.cells] for r in heat.rows
    }


def test_the_heat_map_equals_a_day_by_day_reading_in_blocks_of_any_size(
    store: DuckDBStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = store.site_version(SITE_ID).site
    expected = _naive(store)
    assert expected["top2"][2] == (date(2024, 3, 31), "missing", 91 / 92, 92)
    assert expected["top2"][3][1] == "L3" and expected["top1"][1][1] == "L2"
    assert expected["general"][0] == (FIRST, "missing", 0.0, 96)
    for values in (1, 96 * 4 + 1, 10**9):  # one location per block, two, all at once
        monkeypatch.setattr(views, "HEAT_BLOCK_VALUES", values)
        heat = quality_heat_map(store, site, FIRST, LAST)
        assert _cells(heat) == expected
        assert (heat.matches, heat.offset, heat.locations) == (5, 0, 5)
        assert [r.location_id for r in heat.rows] == [loc.id for loc in site.locations]


def test_a_part_of_the_rows_a_search_and_the_rows_with_a_problem(store: DuckDBStore) -> None:
    site = store.site_version(SITE_ID).site
    expected = _naive(store)
    ids = [loc.id for loc in site.locations]
    part = quality_heat_map(store, site, FIRST, LAST, offset=1, limit=2)
    assert [r.location_id for r in part.rows] == ids[1:3] and part.matches == 5
    assert _cells(part) == {k: expected[k] for k in ids[1:3]}
    # by metering point ID (top 1's import point), by name in any case, every word
    assert [
        r.location_id for r in quality_heat_map(store, site, FIRST, LAST, search="100011").rows
    ] == ["top1"]
    found = quality_heat_map(store, site, FIRST, LAST, search="TOP 2")
    assert [r.location_id for r in found.rows] == ["top2"] and found.locations == 5
    no_row_has_both = quality_heat_map(store, site, FIRST, LAST, search="top1 rooftop")
    assert no_row_has_both.matches == 0
    problems = quality_heat_map(store, site, FIRST, LAST, problems_only=True)
    with_problem = [
        k for k, cells in expected.items() if any(w != "L1" or c < 1 for _, w, c, _ in cells)
    ]
    assert [r.location_id for r in problems.rows] == with_problem == ["top1", "top2", "general"]
    assert _cells(problems) == {k: expected[k] for k in with_problem}
    last_one = quality_heat_map(store, site, FIRST, LAST, problems_only=True, offset=2, limit=5)
    assert [r.location_id for r in last_one.rows] == ["general"] and last_one.matches == 3


def test_the_rows_with_a_problem_are_found_once_until_the_profiles_change(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The filter reads every location's profile; what it found is kept by the site's change
    stamp, so its next page and a search among the points with a problem read nothing, and
    new values are seen at once."""
    store = _store()
    site = store.site_version(SITE_ID).site
    reads: list[list[str]] = []
    read = DuckDBStore.load_profiles

    def counted(self: DuckDBStore, site_id: str, ids: list[str], a: int, b: int) -> object:
        reads.append(list(ids))
        return read(self, site_id, ids, a, b)

    monkeypatch.setattr(DuckDBStore, "load_profiles", counted)
    first = quality_heat_map(store, site, FIRST, LAST, problems_only=True, limit=2)
    assert [r.location_id for r in first.rows] == ["top1", "top2"] and first.matches == 3
    assert sorted(i for ids in reads for i in ids) == sorted(loc.id for loc in site.locations)
    reads.clear()
    page = quality_heat_map(store, site, FIRST, LAST, problems_only=True, offset=2, limit=2)
    searched = quality_heat_map(store, site, FIRST, LAST, problems_only=True, search="top")
    assert [r.location_id for r in page.rows] == ["general"]
    assert [r.location_id for r in searched.rows] == ["top1", "top2"]
    assert _cells(searched) == {k: v for k, v in _cells(first).items() if k.startswith("top")}
    assert reads == []
    # top 1's hour measured after all (L1): a new stamp, read again, top 1 has no problem
    start, _ = day_slots(FIRST, TZ)
    _, stop = day_slots(LAST, TZ)
    n = stop - start
    store.save_profiles(
        SITE_ID,
        {
            "top1": LoadProfile(
                start,
                np.full(n, 0.25),
                np.zeros(n),
                np.full(n, L1, np.int8),
                np.full(n, 2, np.int64),
                np.zeros(n, np.int32),
                ("X:1",),
            )
        },
        WHEN,
    )
    fixed = quality_heat_map(store, site, FIRST, LAST, problems_only=True)
    assert [r.location_id for r in fixed.rows] == ["top2", "general"] and reads
