"""Allocation of local production per quarter hour (SM-5, EC-1), numbers worked by hand."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from lastgang.allocation import allocate, allocate_site, billing_sources, consumer_units
from lastgang.concept.model import Site
from lastgang.errors import InvalidInput


def _col(values: list[float]) -> np.ndarray:
    """One slot: a column of values per row."""
    return np.array(values, dtype=np.float64)[:, None]


def test_sm_5_two_consumers_share_six_kwh() -> None:
    """SM-5: consumers 6 and 4 kWh, production 6 kWh. Share = min(1, 6 / 10) = 60 %.
    Consumer 1: 0.6 x 6 = 3.6 local, 6 - 3.6 = 2.4 grid; consumer 2: 0.6 x 4 = 2.4 local,
    1.6 grid. All 6 kWh are used: surplus 0."""
    result = allocate(_col([6, 4]), _col([6]))
    assert result.local[:, 0] == pytest.approx([3.6, 2.4])
    assert result.grid[:, 0] == pytest.approx([2.4, 1.6])
    assert result.surplus[0, 0] == pytest.approx(0.0)
    assert result.self_consumed[0, 0] == pytest.approx(6.0)


def test_sm_5_share_is_capped_at_one() -> None:
    """Production 12 kWh for 6 + 4 kWh: share min(1, 1.2) = 1, everything local, 2 kWh
    surplus."""
    result = allocate(_col([6, 4]), _col([12]))
    assert result.local[:, 0] == pytest.approx([6, 4])
    assert result.grid[:, 0] == pytest.approx([0, 0])
    assert result.surplus[0, 0] == pytest.approx(2.0)


def test_ec_1_dynamic_key_worked_numbers() -> None:
    """EC-1 dynamic key, one quarter hour: 4,241 Wh production, 4,917 Wh consumption in total
    (572 + 395 + 632 + 3,318 for the rest). a_i = 4241 x c_i / 4917:
    572 -> 493.36 -> 493 Wh; 395 -> 340.70 -> 341 Wh; 632 -> 545.11 -> 545 Wh."""
    consumption = _col([572, 395, 632, 4917 - 572 - 395 - 632])
    for key in ("dynamic", "smart-me"):
        result = allocate(consumption, _col([4241]), key=key)
        assert np.rint(result.local[:3, 0]).tolist() == [493, 341, 545]
        assert result.local[:, 0].sum() == pytest.approx(4241)


def test_ec_1_static_key_unused_share_is_surplus() -> None:
    """Static key 50/30/20 % of 10 kWh = 5/3/2 kWh offered to consumers of 3/5/1 kWh:
    a = min(5, 3) = 3, min(3, 5) = 3, min(2, 1) = 1. Local 7 kWh, surplus 10 - 7 = 3 kWh (the
    2 kWh and 1 kWh the first and third could not use are not handed to the second).
    Grid: 0, 5 - 3 = 2, 0."""
    result = allocate(_col([3, 5, 1]), _col([10]), key="static", static_shares=[0.5, 0.3, 0.2])
    assert result.local[:, 0] == pytest.approx([3, 3, 1])
    assert result.grid[:, 0] == pytest.approx([0, 2, 0])
    assert result.surplus[0, 0] == pytest.approx(3)


def test_sm_5_balance_meter_mode() -> None:
    """Production 6 kWh, 1 kWh exported at the HAK: available 6 - 1 = 5 kWh. Consumers 6 and 4:
    share 5 / 10 = 50 %: local 3 and 2, grid 3 and 2; surplus 6 - 5 = 1 kWh.
    Second slot: export 2 kWh exceeds production 1 kWh (another export): available
    max(0, 1 - 2) = 0, all grid."""
    consumption = np.array([[6.0, 1.0], [4.0, 1.0]])
    production = np.array([[6.0, 1.0]])
    result = allocate(consumption, production, balance_export=[1.0, 2.0])
    assert result.available.tolist() == pytest.approx([5.0, 0.0])
    assert result.local[:, 0] == pytest.approx([3, 2])
    assert result.grid[:, 0] == pytest.approx([3, 2])
    assert result.surplus[0] == pytest.approx([1, 1])
    assert result.local[:, 1] == pytest.approx([0, 0])
    assert result.grid[:, 1] == pytest.approx([1, 1])


def test_sm_5_two_sources_proportional() -> None:
    """Solar 3 kWh and battery 2 kWh for consumers 3 and 1 kWh: share min(1, 5/4) = 1, local
    4 kWh. Taken in proportion to the offer, 3/5 solar and 2/5 battery: consumer 1 gets
    3 x 0.6 = 1.8 solar + 1.2 battery, consumer 2 0.6 + 0.4. Surplus: solar 3 - 2.4 = 0.6,
    battery 2 - 1.6 = 0.4."""
    result = allocate(_col([3, 1]), _col([3, 2]), sources=["solar", "battery"])
    by_source = result.local_by_source()[:, :, 0]
    assert by_source[0] == pytest.approx([1.8, 1.2])
    assert by_source[1] == pytest.approx([0.6, 0.4])
    assert result.surplus[:, 0] == pytest.approx([0.6, 0.4])
    assert result.local_from("battery")[:, 0] == pytest.approx([1.2, 0.4])


def test_sm_5_two_sources_by_priority() -> None:
    """Same slot, solar first: the 4 kWh local come from solar up to its 3 kWh, then 1 kWh from
    the battery; every consumer gets the mix 3/4 solar, 1/4 battery: consumer 1 2.25 + 0.75,
    consumer 2 0.75 + 0.25. Surplus: solar 0, battery 1."""
    result = allocate(_col([3, 1]), _col([3, 2]), source_order="priority")
    by_source = result.local_by_source()[:, :, 0]
    assert by_source[0] == pytest.approx([2.25, 0.75])
    assert by_source[1] == pytest.approx([0.75, 0.25])
    assert result.surplus[:, 0] == pytest.approx([0.0, 1.0])
    assert result.self_consumed[:, 0] == pytest.approx([3.0, 1.0])


def test_zero_consumption_and_zero_production_do_not_divide_by_zero() -> None:
    """Slot 0: nobody consumes, 2 kWh produced -> all surplus. Slot 1: nothing produced ->
    all grid. Slot 2: nothing at all."""
    consumption = np.array([[0.0, 1.0, 0.0], [0.0, 3.0, 0.0]])
    production = np.array([[2.0, 0.0, 0.0]])
    with np.errstate(all="raise"):
        result = allocate(consumption, production)
    assert result.local.tolist() == [[0, 0, 0], [0, 0, 0]]
    assert result.grid.tolist() == [[0, 1, 0], [0, 3, 0]]
    assert result.surplus.tolist() == [[2, 0, 0]]
    assert result.source_share.tolist() == [[0, 0, 0]]


def test_without_sources_everything_is_grid() -> None:
    result = allocate(np.array([[1.0, 2.0]]), np.zeros((0, 2)))
    assert result.grid.tolist() == [[1.0, 2.0]]
    assert result.surplus.shape == (0, 2)


def test_nan_is_an_error_naming_meter_and_slot() -> None:
    consumption = np.array([[1.0, np.nan, np.nan], [1.0, 1.0, 1.0]])
    with pytest.raises(InvalidInput) as caught:
        allocate(consumption, np.ones((1, 3)), consumers=["top1", "top2"], start=4)
    (problem,) = caught.value.problems
    assert problem.meter == "top1"
    assert "2 missing value(s)" in problem.reason
    assert problem.time == "1970-01-01T01:15:00Z"  # slot 4 + 1 = 5 x 15 min


def test_negative_values_and_bad_shapes_are_errors() -> None:
    with pytest.raises(InvalidInput, match="negative"):
        allocate(np.array([[1.0, -1.0]]), np.ones((1, 2)))
    with pytest.raises(InvalidInput, match="slots"):
        allocate(np.ones((2, 3)), np.ones((1, 4)))
    with pytest.raises(InvalidInput, match="static"):
        allocate(np.ones((2, 3)), np.ones((1, 3)), key="static")
    with pytest.raises(InvalidInput, match="at most 1"):
        allocate(np.ones((2, 3)), np.ones((1, 3)), key="static", static_shares=[0.7, 0.7])


SITE = {
    "site": {"id": "house"},
    "locations": [
        {"id": "hak", "role": "grid"},
        {"id": "top1", "role": "consumer"},
        {"id": "top2", "role": "consumer"},
        {"id": "pv", "role": "production"},
        {"id": "ep_incl", "role": "production"},
        {"id": "ep_excl", "role": "production"},
    ],
    "virtual_meters": [{"id": "emergency", "formula": "ep_incl - ep_excl", "parent": "hak"}],
    "units": [
        {"id": "u1", "meters": ["top1"]},
        {"id": "u2", "meters": ["top2"]},
        {"id": "owner", "meters": ["pv"]},
    ],
    "tariffs": [
        {"id": "solar", "kind": "solar", "price": "0.12", "meter": "pv"},
        {"id": "battery", "kind": "battery", "price": "0.18", "meter": "emergency"},
        {"id": "grid", "kind": "grid", "price": "0.25"},
    ],
}


def test_site_settings_choose_static_key_and_priority() -> None:
    """[billing] static 0.5/0.5 with the emergency unit first: 4 kWh offered (1 solar +
    3 battery), each unit may take 2: u1 takes min(2, 3) = 2, u2 min(2, 1) = 1; local 3 kWh
    taken from the battery first (3 kWh), solar untouched."""
    site = Site.model_validate(
        SITE
        | {
            "billing": {
                "allocation": "static",
                "static_shares": {"u1": 0.5, "u2": 0.5},
                "source_order": "priority",
                "sources": ["emergency"],
            }
        }
    )
    assert billing_sources(site) == ("emergency", "pv")
    assert consumer_units(site) == ("u1", "u2")
    result = allocate_site(site, {"u1": [3.0], "u2": [1.0]}, {"pv": [1.0], "emergency": [3.0]})
    assert result.sources == ("emergency", "pv")
    assert result.local[:, 0] == pytest.approx([2, 1])
    assert result.self_consumed[:, 0] == pytest.approx([3, 0])
    assert result.surplus[:, 0] == pytest.approx([0, 1])


def test_site_balance_meter_needs_the_export() -> None:
    site = Site.model_validate(SITE | {"billing": {"balance_meter": "hak"}})
    with pytest.raises(InvalidInput, match="export measured at the grid connection"):
        allocate_site(site, {"u1": [1.0]}, {"pv": [1.0], "emergency": [0.0]})
    result = allocate_site(
        site, {"u1": [4.0]}, {"pv": [2.0], "emergency": [1.0]}, balance_export=[1.0]
    )
    assert result.local[0, 0] == pytest.approx(2.0)  # 3 produced - 1 exported
    assert result.surplus[:, 0].sum() == pytest.approx(1.0)


# ------------------------------------------------------------------------------------------
# invariants

_energy = st.floats(min_value=0, max_value=50, allow_nan=False, allow_subnormal=False)


@st.composite
def _inputs(draw: st.DrawFn) -> dict[str, object]:
    m = draw(st.integers(1, 5))
    s = draw(st.integers(0, 3))
    t = draw(st.integers(1, 12))
    consumption = draw(hnp.arrays(np.float64, (m, t), elements=_energy))
    # zeros are common in real data (nights, vacancies): make them likely
    consumption[draw(hnp.arrays(np.bool_, (m, t)))] = 0.0
    production = draw(hnp.arrays(np.float64, (s, t), elements=_energy))
    key = draw(st.sampled_from(["smart-me", "dynamic", "static"]))
    raw = draw(st.lists(st.integers(0, 10), min_size=m, max_size=m))
    shares = [r / max(sum(raw), 10) for r in raw]
    export = draw(hnp.arrays(np.float64, (t,), elements=_energy)) if draw(st.booleans()) else None
    order = draw(st.sampled_from(["proportional", "priority"]))
    return {
        "consumption": consumption,
        "production": production,
        "key": key,
        "static_shares": shares,
        "balance_export": export,
        "source_order": order,
    }


def _tol(x: np.ndarray) -> float:
    return 1e-9 * (1 + float(np.max(np.abs(x), initial=0)))


@given(_inputs())
def test_sm_5_allocation_conserves_energy_in_every_slot(args: dict[str, object]) -> None:
    """Per slot: consumption = local + grid; production = self-consumed + surplus; local handed
    out = taken from the sources <= available; nobody gets more than they consumed."""
    r = allocate(**args)  # type: ignore[arg-type]
    tol = _tol(r.consumption) + _tol(r.production)
    assert np.all(np.abs(r.consumption - r.local - r.grid) <= tol)
    assert np.all(np.abs(r.production - r.self_consumed - r.surplus) <= tol)
    assert np.all(np.abs(r.local.sum(axis=0) - r.self_consumed.sum(axis=0)) <= tol)
    assert np.all(r.local.sum(axis=0) <= r.available + tol)
    assert np.all(r.local <= r.consumption)
    assert np.all(r.local >= 0) and np.all(r.grid >= 0) and np.all(r.surplus >= 0)
    assert np.all(r.self_consumed <= r.production + tol)
    assert r.imbalance() <= tol
    per_source = r.local_by_source()
    assert np.all(np.abs(per_source.sum(axis=1) - r.local) <= tol)
    assert np.all(np.abs(per_source.sum(axis=0) - r.self_consumed) <= tol)


@given(_inputs(), st.integers(0, 12))
def test_sm_5_allocating_two_halves_equals_the_whole(args: dict[str, object], cut: int) -> None:
    """Allocation is per slot: two halves of a period give exactly the slots of the whole."""
    whole = allocate(**args)  # type: ignore[arg-type]
    cut = min(cut, whole.slots)
    consumption = np.asarray(args["consumption"])
    production = np.asarray(args["production"])
    export = args["balance_export"]
    halves = []
    for lo, hi in ((0, cut), (cut, whole.slots)):
        part = dict(args)
        part["consumption"] = consumption[:, lo:hi]
        part["production"] = production[:, lo:hi]
        part["balance_export"] = None if export is None else np.asarray(export)[lo:hi]
        halves.append(allocate(**part))  # type: ignore[arg-type]
    for name in ("local", "grid", "surplus", "self_consumed"):
        joined = np.concatenate([getattr(h, name) for h in halves], axis=1)
        assert np.array_equal(joined, getattr(whole, name))


def test_local_and_grid_made_by_rows_are_the_whole_array_formulas() -> None:
    """Local and grid energy are made where they are used, a few rows and columns at a time:
    bit for bit the formulas over the whole array (smart-me: local = consumption x share; static:
    local = min(share_i x available, consumption); grid = max(consumption - local, 0)), for
    row counts that are not a multiple of the block, single rows, lists of rows and slices."""
    rng = np.random.default_rng(5)
    for rows in (1, 3, 8, 9, 17):
        cons = rng.random((rows, 97)) * rng.choice([1e-9, 1.0, 1e3], size=(rows, 97))
        cons[0, :5] = 0.0
        prod = rng.random((2, 97)) * rows * 300
        static = np.full(rows, 1 / rows)
        for key in ("smart-me", "static"):
            a = allocate(cons, prod, key=key, static_shares=static if key == "static" else None)
            available = prod.sum(axis=0)
            if key == "static":
                want_local = np.minimum(static[:, None] * available[None, :], cons)
            else:
                total = cons.sum(axis=0)
                share = np.minimum(np.divide(available, total, where=total > 0, out=0 * total), 1)
                want_local = cons * share[None, :]
            want_grid = np.maximum(cons - want_local, 0.0)
            assert a.local.tobytes() == want_local.tobytes()
            assert a.grid.tobytes() == want_grid.tobytes()
            assert a.handed_out.tobytes() == want_local.sum(axis=0).tobytes()
            last = rows - 1
            assert a.local_rows(last, 10, 50).tobytes() == want_local[last, 10:50].tobytes()
            assert a.grid_rows(last, 10, 50).tobytes() == want_grid[last, 10:50].tobytes()
            picked = [r for r in range(rows) if r % 3 != 1]
            for size in (1, 2, 8, 64):
                seen: list[int] = []
                for at, local, grid in a.blocks(picked, 7, 90, size=size):
                    block = picked[at]
                    assert len(block) <= size
                    seen += block
                    assert local.tobytes() == want_local[block, 7:90].tobytes()
                    assert grid.tobytes() == want_grid[block, 7:90].tobytes()
                assert seen == picked
            assert all(a.has_consumer(name) for name in a.consumers)
            assert not a.has_consumer("nobody")
    with pytest.raises(ValueError, match="at least one row"):
        next(a.blocks(size=0))


def test_the_whole_local_array_is_made_anew_on_every_access() -> None:
    """``local`` and ``grid`` are new arrays each time: changing one changes nothing else."""
    a = allocate([[1.0, 2.0]], [[1.0, 1.0]])
    local = a.local
    local[:] = 99.0
    assert a.local.tolist() == [[1.0, 1.0]] and a.grid.tolist() == [[0.0, 1.0]]
