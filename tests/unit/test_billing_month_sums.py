"""Invoices of many consumers take their monthly sums from one pass over all consumers; they
must be exactly the invoices built one consumer at a time."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lastgang.allocation import allocate
from lastgang.billing.invoice import invoice_number
from lastgang.billing.run import _invoice, _month_sums, compute_period
from lastgang.concept.model import Site
from lastgang.profiles.types import LoadProfile
from lastgang.quality import Quality
from lastgang.timegrid import period_slots

TZ = "Europe/Vienna"
UNITS = 12


def _site() -> Site:
    locations: list[dict[str, Any]] = [
        {"id": "hak", "role": "grid"},
        {"id": "pv", "role": "production"},
    ]
    units: list[dict[str, Any]] = [{"id": "owner", "kind": "commercial", "meters": ["pv"]}]
    contracts: list[dict[str, Any]] = [{"unit": "owner", "customer": "O", "start": "2020-01-01"}]
    for i in range(UNITS):
        locations.append({"id": f"c{i}", "role": "consumer"})
        units.append({"id": f"u{i}", "meters": [f"c{i}"]})
        if i == 3:  # a tenant change: two shorter periods beside the shared one
            contracts += [
                {"unit": "u3", "customer": "A", "start": "2020-01-01", "end": "2024-02-10"},
                {"unit": "u3", "customer": "B", "start": "2024-02-11"},
            ]
        else:
            contracts.append({"unit": f"u{i}", "customer": f"T{i}", "start": "2020-01-01"})
    return Site.model_validate(
        {
            "site": {"id": "sums", "timezone": TZ},
            "locations": locations,
            "units": units,
            "tariffs": [
                {"id": "grid", "kind": "grid", "price": "0.25"},
                {"id": "solar", "kind": "local", "meter": "pv", "price": "0.12"},
                {"id": "feed", "kind": "feed-in", "meter": "pv", "price": "0.07", "vat": "0"},
            ],
            "contracts": contracts,
            "billing": {"owner": "O", "balance_meter": "hak"},
        }
    )


def test_month_sums_of_all_consumers_give_the_same_invoices() -> None:
    site = _site()
    first, last = date(2024, 1, 20), date(2024, 4, 10)  # four months, the spring clock change
    start, stop = period_slots(first, last, TZ)
    rng = np.random.default_rng(7)
    profiles = {}
    for loc in site.locations:
        imp = rng.random(stop - start) * 0.7
        exp = rng.random(stop - start) * 2.0 if loc.id == "pv" else np.zeros(stop - start)
        quality = np.full(stop - start, Quality.L1, dtype=np.int8)
        quality[100:104] = Quality.L2
        profiles[loc.id] = LoadProfile(start, imp, exp, quality)
    result = compute_period(site, profiles, first, last)
    sums = _month_sums(result)
    assert list(sums) == [(0, stop - start)]  # the consumers' shared period, summed once
    block = sums[(0, stop - start)]
    months = [
        period_slots(a, b, TZ)
        for a, b in (
            (date(2024, 1, 20), date(2024, 1, 31)),
            (date(2024, 2, 1), date(2024, 2, 29)),
            (date(2024, 3, 1), date(2024, 3, 31)),
            (date(2024, 4, 1), date(2024, 4, 10)),
        )
    ]
    a = result.allocation
    for i in range(len(a.consumers)):
        for k, (m0, m1) in enumerate(months):
            cols = slice(m0 - start, m1 - start)
            # bit for bit the sums an invoice takes of its own row
            assert block.consumption[i, k] == a.consumption[i, cols].sum()
            assert block.local[i, k] == a.local[i, cols].sum()
            assert block.grid[i, k] == a.grid[i, cols].sum()
    for k, bill in enumerate(result.bills):
        number = invoice_number(site.site.id, 1, 1, k + 1)
        alone = _invoice(result, bill, number, "draft", None, None)
        shared = _invoice(result, bill, number, "draft", None, sums)
        assert shared == alone


def test_profiles_as_rows_of_one_array_give_the_same_invoices_and_stay_unchanged() -> None:
    """The store reads the profiles as rows of one array per column; the concept then uses
    them without a copy (read only). The invoices are those of separate copies, and the
    caller's arrays are not changed (not even -0.0 into 0.0, which a sum from 0 gives)."""
    from lastgang.billing.run import make_run

    site = _site()
    first, last = date(2024, 1, 20), date(2024, 4, 10)
    start, stop = period_slots(first, last, TZ)
    ids = [loc.id for loc in site.locations]
    rng = np.random.default_rng(11)
    imp = rng.random((len(ids), stop - start)) * 0.7
    exp = np.zeros_like(imp)
    exp[ids.index("pv")] = rng.random(stop - start) * 2.0
    imp[2:, :50] = -0.0  # consumers' zeros as some meters report them
    quality = np.full(imp.shape, Quality.L1, dtype=np.int8)
    quality[:, 100:104] = Quality.L2
    before = imp.tobytes()
    rows = {k: LoadProfile(start, imp[m], exp[m], quality[m]) for m, k in enumerate(ids)}
    copies = {
        k: LoadProfile(start, imp[m].copy(), exp[m].copy(), quality[m].copy())
        for m, k in enumerate(ids)
    }
    shared = compute_period(site, rows, first, last)
    alone = compute_period(site, copies, first, last)
    assert np.shares_memory(shared.concept.import_kwh, imp)
    assert not np.signbit(shared.allocation.consumption).any()
    np.testing.assert_array_equal(shared.allocation.local, alone.allocation.local)
    when = datetime(2024, 5, 1, tzinfo=UTC)
    assert make_run(shared, created_at=when) == make_run(alone, created_at=when)
    assert imp.tobytes() == before


@settings(max_examples=40)
@given(
    rows=st.integers(1, 20),
    cols=st.integers(1, 3000),
    seed=st.integers(0, 2**32 - 1),
    cuts=st.lists(st.integers(0, 3000), min_size=2, max_size=6),
    key=st.sampled_from(["smart-me", "static"]),
    order=st.sampled_from(["C", "F"]),
)
def test_range_sums_of_all_rows_at_once_are_each_rows_sum(
    rows: int, cols: int, seed: int, cuts: list[int], key: str, order: str
) -> None:
    """Period totals and month sums come from one pass over the rows, for several column ranges
    at once: bit for bit each row's own sum of its slice of consumption, local and grid
    energy, whether the range was summed in this call or kept from an earlier one, and
    whatever the memory order of the consumption given (a column-ordered array is taken in
    rows)."""
    rng = np.random.default_rng(seed)
    cons = np.asarray(rng.random((rows, cols)) * 10.0 ** rng.integers(-3, 4), order=order)
    prod = rng.random((1, cols)) * rows
    a = allocate(cons, prod, key=key, static_shares=np.full(rows, 1 / rows))
    bounds = sorted({min(c, cols) for c in cuts} | {0, cols})
    ranges = list(itertools.pairwise(bounds))
    local, grid = a.local, a.grid
    first = a.range_sums(ranges[:1])
    got = a.range_sums(ranges)
    assert first[1].tolist() == got[1][:, :1].tolist()
    for k, (lo, hi) in enumerate(ranges):
        for matrix, sums in zip((cons, local, grid), got, strict=True):
            assert sums[:, k].tolist() == [float(matrix[i, lo:hi].sum()) for i in range(rows)]


@settings(max_examples=40)
@given(
    rows=st.integers(1, 20),
    cols=st.integers(1, 500),
    seed=st.integers(0, 2**32 - 1),
    passes=st.lists(st.lists(st.integers(0, 19), unique=True), max_size=3),
    early=st.booleans(),
    key=st.sampled_from(["smart-me", "static"]),
)
def test_range_sums_taken_by_passes_over_some_rows_are_each_rows_sum(
    rows: int,
    cols: int,
    seed: int,
    passes: list[list[int]],
    early: bool,
    key: str,
) -> None:
    """Pricing takes the sums of the consumers it multiplies block by block (``blocks(...,
    sums=...)``); ``range_sums`` then sums only the rows no pass took, and every sum is still
    bit for bit the row's own. A pass stopped before its last block keeps nothing."""
    rng = np.random.default_rng(seed)
    cons = rng.random((rows, cols)) * 10.0 ** rng.integers(-3, 4)
    prod = rng.random((1, cols)) * rows
    a = allocate(cons, prod, key=key, static_shares=np.full(rows, 1 / rows))
    lo, hi = cols // 5, cols - cols // 7
    mid = (lo + hi) // 2
    ranges = [(lo, hi), (lo, mid), (mid, hi)]
    taken: set[int] = set()
    for picked in passes:
        picked = [r for r in picked if r < rows]
        for _ in a.blocks(picked, lo, hi, size=3, sums=ranges):
            pass
        taken.update(picked)
    if early and len(taken) < rows:  # a pass given up after its first block
        rest = [r for r in range(rows) if r not in taken]
        next(a.blocks(rest, lo, hi, size=1, sums=ranges))
    made: list[int] = []
    local_rows = type(a).local_rows

    def counted(self: Any, which: Any, *args: Any) -> Any:
        made.extend(np.arange(rows)[which].reshape(-1).tolist())
        return local_rows(self, which, *args)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(type(a), "local_rows", counted)
        got = a.range_sums(ranges)
    assert sorted(made) == sorted(set(range(rows)) - taken)
    local, grid = a.local, a.grid
    for k, (x, y) in enumerate(ranges):
        for matrix, sums in zip((cons, local, grid), got, strict=True):
            assert sums[:, k].tolist() == [float(matrix[i, x:y].sum()) for i in range(rows)]
    with pytest.raises(ValueError, match="not all inside"):
        next(a.blocks(None, lo, hi, sums=[(0, cols + 1)]))


def test_a_consumer_s_local_energy_of_the_whole_period_is_made_once() -> None:
    """The consumers billed for the whole period get their lines and their period and month
    sums from one pass; the unit with a tenant change gets the lines and sums of each of its
    two contract periods from one pass, and its whole period's and months' sums (which its
    invoices do not show, but range_sums gives for every consumer) from one more."""
    site = _site()
    first, last = date(2024, 1, 20), date(2024, 4, 10)
    start, stop = period_slots(first, last, TZ)
    rng = np.random.default_rng(3)
    profiles = {
        loc.id: LoadProfile(
            start,
            rng.random(stop - start),
            rng.random(stop - start) * 3.0 if loc.id == "pv" else np.zeros(stop - start),
            np.full(stop - start, Quality.L1, dtype=np.int8),
        )
        for loc in site.locations
    }
    from lastgang.allocation import Allocation

    made: list[tuple[int, int, int | None]] = []
    local_rows = Allocation.local_rows

    def counted(self: Allocation, which: Any, lo: int = 0, hi: int | None = None) -> Any:
        rows = np.arange(len(self.consumers))[which].reshape(-1).tolist()
        made.extend((r, lo, hi) for r in rows)
        return local_rows(self, which, lo, hi)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Allocation, "local_rows", counted)
        result = compute_period(site, profiles, first, last)
    whole = sorted(r for r, lo, hi in made if (lo, hi) == (0, stop - start))
    assert whole == list(range(UNITS))  # every consumer once, u3 with the ranges wanted later
    u3 = result.allocation.consumer_index("u3")
    parts = sorted((lo, hi) for r, lo, hi in made if r == u3 and (lo, hi) != (0, stop - start))
    change = period_slots(date(2024, 2, 11), last, TZ)[0] - start
    assert parts == [(0, change), (change, stop - start)]  # each contract period once


def test_a_site_without_consumers_has_empty_sums_and_its_bills() -> None:
    """A site whose one unit owns the PV system: no consumer row to sum, the ranges' sums are
    empty (the owner is billed its feed-in)."""
    a = allocate(np.zeros((0, 96)), np.ones((1, 96)))
    cons, local, grid = a.range_sums([(0, 96), (0, 48)])
    assert cons.shape == local.shape == grid.shape == (0, 2)
    site = Site.model_validate(
        {
            "site": {"id": "alone", "timezone": TZ},
            "locations": [{"id": "hak", "role": "grid"}, {"id": "pv", "role": "production"}],
            "units": [{"id": "owner", "kind": "commercial", "meters": ["pv"]}],
            "tariffs": [
                {"id": "solar", "kind": "local", "meter": "pv", "price": "0.12"},
                {"id": "feed", "kind": "feed-in", "meter": "pv", "price": "0.07", "vat": "0"},
            ],
            "contracts": [{"unit": "owner", "customer": "O", "start": "2020-01-01"}],
            "billing": {"owner": "O"},
        }
    )
    first, last = date(2024, 1, 1), date(2024, 1, 31)
    start, stop = period_slots(first, last, TZ)
    n = stop - start
    profiles = {
        loc.id: LoadProfile(start, np.zeros(n), np.full(n, 0.25), np.full(n, Quality.L1, np.int8))
        for loc in site.locations
    }
    result = compute_period(site, profiles, first, last)
    (bill,) = result.bills
    (line,) = [x for x in bill.lines if x.kind == "feed-in"]
    assert line.quantity == Decimal(n) / 4  # every quarter hour's 0.25 kWh fed in
