"""The fast billing engine equals the naive slot-by-slot reference on random sites."""

import random
from datetime import date, timedelta
from decimal import Decimal
from typing import Any
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lastgang import pricing
from lastgang.allocation import allocate_site
from lastgang.concept.model import Site
from lastgang.pricing import Bill, price_site
from lastgang.reference import (
    ReferenceBill,
    reference_allocate,
    reference_bills,
    reference_period_slots,
)
from lastgang.timegrid import period_slots

TZ = "Europe/Vienna"


def test_sm_5_reference_reproduces_the_worked_example() -> None:
    """SM-5 by the reference: 6 and 4 kWh, 6 kWh produced -> 3.6/2.4 local, 2.4/1.6 grid."""
    result = reference_allocate([[6.0], [4.0]], [[6.0]])
    assert [row[0] for row in result.local[0]] == pytest.approx([3.6, 2.4])
    assert result.grid[0] == pytest.approx([2.4, 1.6])


def test_ec_1_reference_dynamic_key_worked_numbers() -> None:
    """EC-1: 4,241 Wh for 4,917 Wh: 572 -> 493, 395 -> 341, 632 -> 545 Wh."""
    result = reference_allocate([[572.0], [395.0], [632.0], [3318.0]], [[4241.0]], key="dynamic")
    assert [round(result.local[0][i][0]) for i in range(3)] == [493, 341, 545]


@pytest.mark.parametrize(
    ("day", "slots"), [(date(2024, 3, 31), 92), (date(2024, 6, 1), 96), (date(2024, 10, 27), 100)]
)
def test_tor_4_2_reference_days_have_92_96_100_slots(day: date, slots: int) -> None:
    start, stop = reference_period_slots(day, day, TZ)
    assert stop - start == slots
    assert (start, stop) == period_slots(day, day, TZ)


# ------------------------------------------------------------------------------------------
# random sites


def _price(rng: random.Random) -> str:
    return str(Decimal(rng.randint(1, 40000)).scaleb(-rng.choice([2, 3, 4])))


def _windows(rng: random.Random, days: list[str]) -> list[dict[str, str]]:
    lo = rng.randint(0, 94)
    hi = rng.randint(lo + 1, 96)
    return [
        {
            "days": ",".join(days),
            "from": f"{lo // 4:02d}:{lo % 4 * 15:02d}",
            "to": f"{hi // 4:02d}:{hi % 4 * 15:02d}",
        }
    ]


def _tariff_family(
    rng: random.Random, prefix: str, kind: str, meter: str | None, split: date, windowed: bool
) -> list[dict[str, Any]]:
    """A plain tariff plus up to two windowed ones on disjoint weekdays, possibly in two price
    versions split at ``split``."""
    versions: list[tuple[str | None, str | None]] = [(None, None)]
    if rng.random() < 0.5:
        versions = [(None, str(split - timedelta(days=1))), (str(split), None)]
    out: list[dict[str, Any]] = []
    extra = {"meter": meter} if meter is not None else {}
    for v, (valid_from, valid_to) in enumerate(versions):
        validity = {
            k: val for k, val in (("valid_from", valid_from), ("valid_to", valid_to)) if val
        }
        out.append(
            {
                "id": f"{prefix}{v}-plain",
                "kind": kind,
                "price": _price(rng),
                "vat": rng.choice(["0.2", "0.1"]),
                **validity,
                **extra,
            }
        )
        if windowed:
            weekdays = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
            rng.shuffle(weekdays)
            groups = [weekdays[:3], weekdays[3:5]][: rng.randint(1, 2)]
            for g, days in enumerate(groups):
                out.append(
                    {
                        "id": f"{prefix}{v}-w{g}",
                        "kind": kind,
                        "price": _price(rng),
                        "vat": "0.2",
                        "windows": _windows(rng, days),
                        **validity,
                        **extra,
                    }
                )
    return out


def _random_case(
    seed: int,
    consumers: tuple[int, int] = (1, 4),
    pv_systems: tuple[int, int] = (0, 2),
    days: int = 6,
) -> dict[str, Any]:
    """A random site and its data: ``consumers`` and ``pv_systems`` the range of their numbers,
    ``days`` the longest period after the first day."""
    rng = random.Random(seed)
    first = rng.choice([date(2024, 3, 27), date(2024, 10, 23), date(2024, 1, 28)])
    first += timedelta(days=rng.randint(0, 3))
    last = first + timedelta(days=rng.randint(1, days))
    split = first + timedelta(days=rng.randint(0, (last - first).days))
    n_units = rng.randint(*consumers)
    n_sources = rng.randint(*pv_systems)
    locations: list[dict[str, Any]] = [{"id": "hak", "role": "grid"}]
    units: list[dict[str, Any]] = []
    for i in range(n_units):
        locations.append({"id": f"top{i}", "role": "consumer"})
        units.append({"id": f"u{i}", "meters": [f"top{i}"]})
    tariffs = _tariff_family(rng, "grid", "grid", None, split, windowed=rng.random() < 0.8)
    for s in range(n_sources):
        locations.append({"id": f"pv{s}", "role": "production"})
        kind = rng.choice(["local", "battery"])
        tariffs += _tariff_family(rng, f"src{s}", kind, f"pv{s}", split, rng.random() < 0.3)
        if rng.random() < 0.6:
            feed_in = {
                "id": f"feed{s}",
                "kind": "feed-in",
                "price": _price(rng),
                "meter": f"pv{s}",
                "vat": "0",
            }
            if rng.random() < 0.4:
                feed_in["valid_from"] = str(split)  # no credit before: a hole that is allowed
            tariffs.append(feed_in)
        if rng.random() < 0.7:
            units.append({"id": f"p{s}", "kind": "commercial", "meters": [f"pv{s}"]})
    contracts: list[dict[str, Any]] = []
    for i in range(n_units):
        change = first + timedelta(days=rng.randint(0, (last - first).days))
        choice = rng.random()
        if choice < 0.3:
            contracts.append({"unit": f"u{i}", "customer": f"T{i}", "start": "2020-01-01"})
        elif choice < 0.7:
            contracts.append(
                {
                    "unit": f"u{i}",
                    "customer": f"T{i}a",
                    "start": "2020-01-01",
                    "end": str(change - timedelta(days=1)),
                }
            )
            gap = rng.randint(0, 1)
            contracts.append(
                {"unit": f"u{i}", "customer": f"T{i}b", "start": str(change + timedelta(days=gap))}
            )
        elif choice < 0.85:
            contracts.append({"unit": f"u{i}", "customer": f"T{i}", "start": str(change)})
    fees = [
        {
            "id": f"fee{f}",
            "amount": _price(rng),
            "vat": rng.choice(["0.2", "0.1"]),
            **({"valid_from": str(split)} if rng.random() < 0.3 else {}),
            **({"units": ["u0"]} if rng.random() < 0.3 else {}),
        }
        for f in range(rng.randint(0, 2))
    ]
    allocation = rng.choice(["smart-me", "dynamic", "static"])
    billing: dict[str, Any] = {
        "owner": "Owner",
        "allocation": allocation,
        "source_order": rng.choice(["proportional", "priority"]),
        "credit_local_sales": rng.random() < 0.5,
    }
    if allocation == "static":
        raw = [rng.randint(0, 5) for _ in range(n_units)]
        billing["static_shares"] = {
            f"u{i}": str(Decimal(r) / max(sum(raw), 5)) for i, r in enumerate(raw)
        }
    if n_sources == 2 and rng.random() < 0.5:
        billing["sources"] = ["pv1", "pv0"]
    balance = rng.random() < 0.3
    if balance:
        billing["balance_meter"] = "hak"
    site = Site.model_validate(
        {
            "site": {"id": "random", "timezone": TZ},
            "locations": locations,
            "units": units,
            "tariffs": tariffs,
            "contracts": contracts,
            "fees": fees,
            "billing": billing,
        }
    )
    start, stop = period_slots(first, last, TZ)
    n = stop - start
    nprng = np.random.default_rng(seed)
    consumption = {
        f"u{i}": nprng.random(n) * (nprng.random(n) < 0.8) * nprng.choice([0.3, 1, 3])
        for i in range(n_units)
    }
    production = {f"pv{s}": nprng.random(n) * (nprng.random(n) < 0.6) * 2 for s in range(n_sources)}
    export = nprng.random(n) if balance else None
    return {
        "site": site,
        "first": first,
        "last": last,
        "start": start,
        "consumption": consumption,
        "production": production,
        "export": export,
    }


def _fast_lines(b: Bill) -> list[tuple[Any, ...]]:
    return [
        (
            line.kind.value,
            line.item,
            line.first_day,
            line.last_day,
            line.quantity,
            line.amount,
            line.vat_rate,
        )
        for line in b.lines
    ]


def _reference_lines(b: ReferenceBill) -> list[tuple[Any, ...]]:
    return [
        (
            line.kind,
            line.item,
            line.first_day,
            line.last_day,
            line.quantity,
            line.amount,
            line.vat_rate,
        )
        for line in b.lines
    ]


@settings(max_examples=40)
@given(st.integers(0, 2**32 - 1), st.integers(1, 9))
def test_sm_6_fast_engine_equals_reference_on_random_sites(seed: int, block_rows: int) -> None:
    """Random sites: several consumers and sources, random tariffs with windows and price
    changes, contracts changing mid-period with vacancy, fees, every allocation option, periods
    across the clock changes. Every bill, line, VAT amount and total must be identical, however
    many consumer rows the engine multiplies at a time."""
    with mock.patch.object(pricing, "_product_rows", lambda columns: block_rows):
        _assert_engine_equals_reference(_random_case(seed))


@settings(max_examples=3, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_sm_6_fast_engine_equals_reference_with_many_sources(seed: int) -> None:
    """Communities with 20 to 24 PV systems and 17 to 20 consumers: the consumers' line
    energies come from 20 and more weight columns, which the engine multiplies 16 or more
    consumer rows at a time; the bills are the same as the slot-by-slot reference's."""
    _assert_engine_equals_reference(
        _random_case(seed, consumers=(17, 20), pv_systems=(20, 24), days=1)
    )


def _assert_engine_equals_reference(case: dict[str, Any]) -> None:
    site: Site = case["site"]
    allocation = allocate_site(
        site,
        case["consumption"],
        case["production"],
        balance_export=case["export"],
        start=case["start"],
    )
    fast = price_site(site, allocation, case["first"], case["last"])
    reference = reference_bills(
        site,
        {k: v.tolist() for k, v in case["consumption"].items()},
        {k: v.tolist() for k, v in case["production"].items()},
        case["first"],
        case["last"],
        balance_export=None if case["export"] is None else case["export"].tolist(),
    )
    assert len(fast) == len(reference)
    for f, r in zip(fast, reference, strict=True):
        assert (f.unit, f.customer, f.first_day, f.last_day, f.vacancy) == (
            r.unit,
            r.customer,
            r.first_day,
            r.last_day,
            r.vacancy,
        )
        assert _fast_lines(f) == _reference_lines(r)
        assert {v.rate: v.vat for v in f.vat} == r.vat
        assert f.total == r.total
        assert (f.consumption_kwh, f.local_kwh, f.grid_kwh) == pytest.approx(
            (r.consumption_kwh, r.local_kwh, r.grid_kwh), rel=1e-9, abs=1e-9
        )
        for fl, rl in zip(f.lines, r.lines, strict=True):
            if fl.energy_kwh is not None:
                assert fl.energy_kwh == pytest.approx(rl.energy_kwh, rel=1e-9, abs=1e-9)


@settings(max_examples=40)
@given(st.integers(0, 2**32 - 1))
def test_sm_5_fast_allocation_equals_reference_slot_by_slot(seed: int) -> None:
    case = _random_case(seed)
    site: Site = case["site"]
    fast = allocate_site(
        site, case["consumption"], case["production"], balance_export=case["export"]
    )
    ref = reference_allocate(
        [v.tolist() for v in case["consumption"].values()],
        [case["production"][s].tolist() for s in fast.sources],
        key=site.billing.allocation.value,
        static_shares=[float(site.billing.static_shares.get(u, 0)) for u in fast.consumers],
        balance_export=None if case["export"] is None else case["export"].tolist(),
        source_order=site.billing.source_order.value,
    )
    local = np.array(ref.local).transpose(1, 2, 0)  # [M, S, T]
    if fast.sources:
        assert np.allclose(fast.local_by_source(), local, rtol=1e-12, atol=1e-12)
    assert np.allclose(fast.grid, np.array(ref.grid).T, rtol=1e-12, atol=1e-12)
    if fast.sources:
        assert np.allclose(fast.surplus, np.array(ref.surplus).T, rtol=1e-12, atol=1e-12)
