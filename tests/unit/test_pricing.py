"""Tariffs, time windows, contracts, base fees and VAT (SM-6), numbers worked by hand."""

from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lastgang.allocation import allocate, allocate_site
from lastgang.concept.model import Site
from lastgang.concept.tariffs import Tariff, TariffKey, TariffKind
from lastgang.errors import InvalidInput
from lastgang.pricing import (
    NO_TARIFF,
    OVERLAP,
    Bill,
    LineKind,
    billing_problems,
    contract_periods,
    contract_problems,
    price_site,
    tariff_problems,
    tariff_slots,
)
from lastgang.timegrid import period_slots

VIENNA = ZoneInfo("Europe/Vienna")
HIGH_WINDOWS = [
    {"days": "Mon-Fri", "from": "07:00", "to": "22:00"},
    {"days": "Sat", "from": "07:00", "to": "13:00"},
]
GRID_HIGH_LOW = [
    {"id": "high", "kind": "grid", "price": "0.30", "windows": HIGH_WINDOWS},
    {"id": "low", "kind": "grid", "price": "0.20"},
]


def make_site(**sections: Any) -> Site:
    """Two flats (u1, u2) and a PV on the roof owned by unit ``roof``; override any section."""
    data: dict[str, Any] = {
        "site": {"id": "house", "timezone": "Europe/Vienna"},
        "locations": [
            {"id": "hak", "role": "grid"},
            {"id": "top1", "role": "consumer"},
            {"id": "top2", "role": "consumer"},
            {"id": "pv", "role": "production"},
        ],
        "units": [
            {"id": "u1", "meters": ["top1"]},
            {"id": "u2", "meters": ["top2"]},
            {"id": "roof", "kind": "commercial", "meters": ["pv"]},
        ],
        "tariffs": [{"id": "grid", "kind": "grid", "price": "0.25"}],
        "billing": {"owner": "Owner"},
    }
    data.update(sections)
    return Site.model_validate(data)


def series(first: date, last: date, spikes: Mapping[datetime, float], base: float = 0.0) -> Any:
    """kWh per slot of the local days first..last: ``base`` everywhere plus ``spikes`` at the
    slots starting at the given local times."""
    start, stop = period_slots(first, last, VIENNA)
    values = np.full(stop - start, base)
    for when, kwh in spikes.items():
        values[int(when.timestamp()) // 900 - start] += kwh
    return values


def bill(
    site: Site,
    first: date,
    last: date,
    consumption: Mapping[str, Any],
    production: Mapping[str, Any] | None = None,
) -> list[Bill]:
    start, _ = period_slots(first, last, VIENNA)
    allocation = allocate_site(site, consumption, production or {}, start=start)
    return price_site(site, allocation, first, last)


def lines_of(b: Bill) -> dict[str, tuple[Decimal, Decimal]]:
    return {line.item: (line.quantity, line.amount) for line in b.lines}


# ------------------------------------------------------------------------------------------
# time windows across the clock changes


def test_sm_6_high_low_week_across_autumn_clock_change() -> None:
    """Week Mon 2024-10-21 .. Sun 2024-10-27 (clocks go back on Sunday: 25 hours).
    High tariff Mon-Fri 07:00-22:00 = 5 x 15 h = 75 h, Sat 07:00-13:00 = 6 h: 81 h.
    The week has 6 x 24 + 25 = 169 h, so the low tariff has 169 - 81 = 88 h.
    At a constant 1 kW (0.25 kWh per quarter hour): high 81 kWh x 0.30 = 24.30,
    low 88 kWh x 0.20 = 17.60."""
    first, last = date(2024, 10, 21), date(2024, 10, 27)
    site = make_site(tariffs=GRID_HIGH_LOW)
    start, stop = period_slots(first, last, VIENNA)
    assert stop - start == 169 * 4
    index = tariff_slots(site.tariffs, start, stop, "Europe/Vienna")[
        TariffKey(TariffKind.GRID, None)
    ]
    assert np.bincount(index).tolist() == [81 * 4, 88 * 4]
    (b1, *_) = bill(site, first, last, {"u1": series(first, last, {}, base=0.25)})
    assert lines_of(b1) == {
        "high": (Decimal("81.000"), Decimal("24.30")),
        "low": (Decimal("88.000"), Decimal("17.60")),
    }


def test_sm_6_high_low_week_across_spring_clock_change() -> None:
    """Week Mon 2024-03-25 .. Sun 2024-03-31 (clocks go forward on Sunday: 23 hours).
    High 81 h as every week; 6 x 24 + 23 = 167 h, low 167 - 81 = 86 h."""
    first, last = date(2024, 3, 25), date(2024, 3, 31)
    site = make_site(tariffs=GRID_HIGH_LOW)
    (b1, *_) = bill(site, first, last, {"u1": series(first, last, {}, base=0.25)})
    assert lines_of(b1) == {
        "high": (Decimal("81.000"), Decimal("24.30")),
        "low": (Decimal("86.000"), Decimal("17.20")),
    }


def test_sm_6_window_edges_use_the_quarter_hour_start() -> None:
    """Saturday 2024-10-26: the quarter hour 12:45-13:00 starts inside 07:00-13:00 (high), the
    one from 13:00 does not (low); 06:45 is low, 07:00 high. Friday 21:45 high, 22:00 low."""
    site = make_site(tariffs=GRID_HIGH_LOW)
    start, stop = period_slots(date(2024, 10, 25), date(2024, 10, 26), VIENNA)
    index = tariff_slots(site.tariffs, start, stop, VIENNA)[TariffKey(TariffKind.GRID, None)]

    def at(day: int, hour: int, minute: int) -> str:
        slot = int(datetime(2024, 10, day, hour, minute, tzinfo=VIENNA).timestamp()) // 900
        return site.tariffs[index[slot - start]].id

    assert at(26, 12, 45) == "high"
    assert at(26, 13, 0) == "low"
    assert at(26, 6, 45) == "low"
    assert at(26, 7, 0) == "high"
    assert at(25, 21, 45) == "high"
    assert at(25, 22, 0) == "low"


def test_sm_6_validity_dates_are_local_days() -> None:
    """A price change at 2024-07-01: the quarter hour 00:00-00:15 local (22:00 UTC on 30 June)
    already has the new price."""
    tariffs = [
        Tariff(id="old", kind=TariffKind.GRID, price=Decimal("0.2"), valid_to=date(2024, 6, 30)),
        Tariff(id="new", kind=TariffKind.GRID, price=Decimal("0.3"), valid_from=date(2024, 7, 1)),
    ]
    start, stop = period_slots(date(2024, 6, 30), date(2024, 7, 1), VIENNA)
    index = tariff_slots(tariffs, start, stop, VIENNA)[TariffKey(TariffKind.GRID, None)]
    assert index.tolist() == [0] * 96 + [1] * 96


# ------------------------------------------------------------------------------------------
# contracts, base fees, VAT


def test_sm_6_tenant_change_mid_month_gives_two_bills_with_prorated_base_fee() -> None:
    """January 2024 (31 days). Tenant A until Wed 10 Jan (move-out day billed), tenant B from
    11 Jan. Base fee 3.10 per month: A 3.10 x 10/31 = 1.00, B 3.10 x 21/31 = 2.10.
    Energy 0.1 kWh every quarter hour, plus 5 kWh at 23:45 on 10 Jan (A's last quarter hour)
    and 7 kWh at 00:00 on 11 Jan (B's first): A 10 x 96 x 0.1 + 5 = 101 kWh x 0.25 = 25.25;
    B 21 x 96 x 0.1 + 7 = 208.6 kWh x 0.25 = 52.15.
    VAT 20 %: A (25.25 + 1.00) x 0.2 = 5.25, total 31.50; B (52.15 + 2.10) x 0.2 = 10.85,
    total 65.10."""
    site = make_site(
        units=[{"id": "u1", "meters": ["top1"]}],
        contracts=[
            {"unit": "u1", "customer": "A", "move_in": "2023-05-01", "move_out": "2024-01-10"},
            {"unit": "u1", "customer": "B", "move_in": "2024-01-11"},
        ],
        fees=[{"id": "base", "name": "Base fee", "amount": "3.10"}],
    )
    first, last = date(2024, 1, 1), date(2024, 1, 31)
    spikes = {
        datetime(2024, 1, 10, 23, 45, tzinfo=VIENNA): 5.0,
        datetime(2024, 1, 11, 0, 0, tzinfo=VIENNA): 7.0,
    }
    a, b = bill(site, first, last, {"u1": series(first, last, spikes, base=0.1)})
    assert (a.customer, a.first_day, a.last_day) == ("A", date(2024, 1, 1), date(2024, 1, 10))
    assert (b.customer, b.first_day, b.last_day) == ("B", date(2024, 1, 11), date(2024, 1, 31))
    assert lines_of(a) == {
        "grid": (Decimal("101.000"), Decimal("25.25")),
        "base": (Decimal("10"), Decimal("1.00")),
    }
    assert lines_of(b) == {
        "grid": (Decimal("208.600"), Decimal("52.15")),
        "base": (Decimal("21"), Decimal("2.10")),
    }
    assert (a.vat_total, a.total) == (Decimal("5.25"), Decimal("31.50"))
    assert (b.vat_total, b.total) == (Decimal("10.85"), Decimal("65.10"))
    fee_line = a.lines[-1]
    assert fee_line.days_in_month == 31 and "10/31 days" in fee_line.description


def test_sm_6_two_vat_rates_each_rounded_half_up() -> None:
    """One day, 15 Jan 2024 (1 day of a 31-day month). 12.345 kWh at 0.2145 = 2.6480025 ->
    2.65 (20 %). Fee 'service' 229.71 per month: 229.71 / 31 = 7.41 (20 %). Fee 'meter'
    7.75 per month: 7.75 / 31 = 0.25 (10 %).
    VAT 20 %: (2.65 + 7.41) x 0.20 = 2.012 -> 2.01. VAT 10 %: 0.25 x 0.10 = 0.025 -> 0.03
    (half-up; half-even would give 0.02). Total 10.31 + 2.01 + 0.03 = 12.35."""
    site = make_site(
        units=[{"id": "u1", "meters": ["top1"]}],
        tariffs=[{"id": "grid", "kind": "grid", "price": "0.2145", "vat": "0.20"}],
        fees=[
            {"id": "service", "amount": "229.71", "vat": 0.2},
            {"id": "meter", "amount": "7.75", "vat": 0.1},
        ],
    )
    day = date(2024, 1, 15)
    consumption = series(day, day, {datetime(2024, 1, 15, 10, 0, tzinfo=VIENNA): 12.345})
    (b,) = bill(site, day, day, {"u1": consumption})
    assert lines_of(b) == {
        "grid": (Decimal("12.345"), Decimal("2.65")),
        "service": (Decimal("1"), Decimal("7.41")),
        "meter": (Decimal("1"), Decimal("0.25")),
    }
    assert [(v.rate, v.net, v.vat) for v in b.vat] == [
        (Decimal("0.2"), Decimal("10.06"), Decimal("2.01")),
        (Decimal("0.1"), Decimal("0.25"), Decimal("0.03")),
    ]
    assert b.total == Decimal("12.35")
    assert b.vacancy  # no contract: billed to the owner
    assert b.customer == "Owner"


def test_sm_6_base_fee_over_two_months_and_a_price_change() -> None:
    """15 Jan .. 10 Feb 2024 (leap year: February has 29 days). Fee 6.20 until 31 Jan, then
    5.80. January: 6.20 x 17/31 = 3.40; February: 5.80 x 10/29 = 2.00."""
    site = make_site(
        units=[{"id": "u1", "meters": ["top1"]}],
        fees=[
            {"id": "old", "amount": "6.20", "valid_to": "2024-01-31"},
            {"id": "new", "amount": "5.80", "valid_from": "2024-02-01"},
        ],
    )
    first, last = date(2024, 1, 15), date(2024, 2, 10)
    (b,) = bill(site, first, last, {"u1": series(first, last, {})})
    fees = [(line.item, line.quantity, line.amount) for line in b.lines if line.kind == "base-fee"]
    assert fees == [
        ("old", Decimal("17"), Decimal("3.40")),
        ("new", Decimal("10"), Decimal("2.00")),
    ]


def test_sm_6_vacancy_is_billed_to_the_owner() -> None:
    """Tenant until 10 Jan, nobody after: 11..31 Jan is vacancy, billed to the owner."""
    site = make_site(
        units=[{"id": "u1", "meters": ["top1"]}],
        contracts=[{"unit": "u1", "customer": "A", "start": "2023-01-01", "end": "2024-01-10"}],
    )
    periods = contract_periods(site, date(2024, 1, 1), date(2024, 1, 31))
    assert [(p.customer, p.first_day, p.last_day, p.vacancy) for p in periods] == [
        ("A", date(2024, 1, 1), date(2024, 1, 10), False),
        ("Owner", date(2024, 1, 11), date(2024, 1, 31), True),
    ]
    no_owner = make_site(
        units=[{"id": "u1", "meters": ["top1"]}],
        contracts=[{"unit": "u1", "customer": "A", "start": "2023-01-01", "end": "2024-01-10"}],
        billing={},
    )
    with pytest.raises(InvalidInput) as caught:
        contract_periods(no_owner, date(2024, 1, 1), date(2024, 1, 31))
    assert "2024-01-11 to 2024-01-31 (vacancy)" in str(caught.value)


def test_sm_6_overlapping_contracts_are_named() -> None:
    site = make_site(
        contracts=[
            {"unit": "u1", "customer": "A", "start": "2023-01-01", "end": "2024-01-15"},
            {"unit": "u1", "customer": "B", "start": "2024-01-11"},
            {"unit": "nowhere", "customer": "C", "start": "2024-01-01"},
        ]
    )
    reasons = [p.reason for p in contract_problems(site)]
    assert any("'A' and 'B'" in r and "from 2024-01-11 to 2024-01-15" in r for r in reasons)
    assert any("unknown billing unit 'nowhere'" in r for r in reasons)
    with pytest.raises(InvalidInput):
        contract_periods(site, date(2024, 1, 1), date(2024, 1, 31))


def test_sm_6_an_allocation_naming_a_row_twice_is_refused() -> None:
    """Bills are priced by name: an allocation that names a consumer or a source twice (made by
    hand with :func:`allocate`) cannot be billed, and says which names repeat."""
    first = last = date(2024, 1, 10)
    start, stop = period_slots(first, last, VIENNA)
    n = stop - start
    site = make_site(tariffs=[{"id": "grid", "kind": "grid", "price": "0.25"}])
    twice_consumer = allocate(
        np.ones((2, n)), np.ones((1, n)), consumers=["u1", "u1"], sources=["pv"], start=start
    )
    with pytest.raises(InvalidInput, match=r"names consumers more than once: \['u1'\]"):
        price_site(site, twice_consumer, first, last)
    twice_source = allocate(
        np.ones((2, n)), np.ones((2, n)), consumers=["u1", "u2"], sources=["pv", "pv"], start=start
    )
    with pytest.raises(InvalidInput, match=r"names sources more than once: \['pv'\]"):
        price_site(site, twice_source, first, last)


# ------------------------------------------------------------------------------------------
# sources: solar, battery on a virtual meter, feed-in


def test_sm_3_battery_tariff_on_virtual_production_meter() -> None:
    """Emergency power concept: production = "incl. solar" - "excl. solar" (virtual meter
    'production'), priced by a battery tariff. One quarter hour: flats 6 and 4 kWh, the unit
    produces 6 kWh: flat 1 gets 3.6 kWh battery energy x 0.15 = 0.54 and 2.4 kWh grid x 0.25 =
    0.60; flat 2 2.4 x 0.15 = 0.36 and 1.6 x 0.25 = 0.40."""
    site = make_site(
        locations=[
            {"id": "hak", "role": "grid"},
            {"id": "top1", "role": "consumer"},
            {"id": "top2", "role": "consumer"},
            {"id": "ep_excl", "role": "production"},
            {"id": "ep_incl", "role": "production"},
        ],
        virtual_meters=[
            {"id": "production", "formula": "ep_incl - ep_excl", "parent": "hak"},
        ],
        units=[{"id": "u1", "meters": ["top1"]}, {"id": "u2", "meters": ["top2"]}],
        tariffs=[
            {"id": "battery", "kind": "battery", "price": "0.15", "meter": "production"},
            {"id": "grid", "kind": "grid", "price": "0.25"},
        ],
    )
    assert tariff_problems(site) == []
    day = date(2024, 5, 6)
    noon = datetime(2024, 5, 6, 12, 0, tzinfo=VIENNA)
    b1, b2 = bill(
        site,
        day,
        day,
        {"u1": series(day, day, {noon: 6.0}), "u2": series(day, day, {noon: 4.0})},
        {"production": series(day, day, {noon: 6.0})},
    )
    assert lines_of(b1) == {
        "battery": (Decimal("3.600"), Decimal("0.54")),
        "grid": (Decimal("2.400"), Decimal("0.60")),
    }
    assert lines_of(b2) == {
        "battery": (Decimal("2.400"), Decimal("0.36")),
        "grid": (Decimal("1.600"), Decimal("0.40")),
    }
    assert b1.lines[0].kind is LineKind.BATTERY and b1.lines[0].meter == "production"
    assert (b1.local_kwh, b1.grid_kwh) == pytest.approx((3.6, 2.4))


def test_sm_5_solar_with_feed_in_credit_for_the_producer() -> None:
    """PV 2 kWh in one quarter hour, flat u1 uses 0.5 kWh: 0.5 local at 0.12 = 0.06, surplus
    1.5 kWh credited to the roof unit at 0.08: -0.12. Another quarter hour u1 uses 1 kWh from
    the grid: 0.25. With credit_local_sales the roof owner also gets 0.5 x 0.12 = -0.06."""
    tariffs = [
        {"id": "solar", "kind": "solar", "price": "0.12", "meter": "pv"},
        {"id": "feed", "kind": "feed-in", "price": "0.08", "meter": "pv", "vat": 0},
        {"id": "grid", "kind": "grid", "price": "0.25"},
    ]
    day = date(2024, 6, 3)
    noon = datetime(2024, 6, 3, 12, 0, tzinfo=VIENNA)
    night = datetime(2024, 6, 3, 23, 0, tzinfo=VIENNA)
    consumption = {"u1": series(day, day, {noon: 0.5, night: 1.0}), "u2": series(day, day, {})}
    production = {"pv": series(day, day, {noon: 2.0})}
    site = make_site(tariffs=tariffs)
    u1, u2, roof = bill(site, day, day, consumption, production)
    assert u2.total == 0 and u2.consumption_kwh == 0
    assert lines_of(u1) == {
        "solar": (Decimal("0.500"), Decimal("0.06")),
        "grid": (Decimal("1.000"), Decimal("0.25")),
    }
    assert roof.unit == "roof" and roof.vacancy
    assert lines_of(roof) == {"feed": (Decimal("1.500"), Decimal("-0.12"))}
    assert roof.total == Decimal("-0.12")  # feed-in without VAT
    site = make_site(tariffs=tariffs, billing={"owner": "Owner", "credit_local_sales": True})
    *_, roof = bill(site, day, day, consumption, production)
    assert lines_of(roof) == {
        "feed": (Decimal("1.500"), Decimal("-0.12")),
        "solar": (Decimal("0.500"), Decimal("-0.06")),
    }


# ------------------------------------------------------------------------------------------
# holes and overlaps


def _times(problems: list[Any]) -> list[str]:
    return [f"{p.reason} | {p.time}" for p in problems]


def test_sm_6_tariff_hole_is_named_in_local_time() -> None:
    """Only a high tariff Mon-Fri 07:00-22:00 and Sat 07:00-13:00 and no "otherwise" tariff:
    the nights, Saturday afternoon and Sunday are uncovered."""
    site = make_site(tariffs=[GRID_HIGH_LOW[0] | {"valid_from": "2024-01-01"}])
    (problem,) = tariff_problems(site)
    assert "no grid tariff applies" in problem.reason
    assert problem.time == (
        "Mon-Fri 00:00-07:00, 22:00-24:00; Sat 00:00-07:00, 13:00-24:00; Sun 00:00-24:00 "
        "from 2024-01-01 on"
    )


def test_sm_6_tariff_overlap_is_named_with_both_tariffs() -> None:
    """High Mon-Fri 07:00-22:00 and a peak tariff Fri 18:00-24:00: both apply Fri 18:00-22:00."""
    site = make_site(
        tariffs=[
            *GRID_HIGH_LOW,
            {
                "id": "peak",
                "kind": "grid",
                "price": "0.4",
                "windows": [{"days": "Fri", "from": "18:00", "to": "24:00"}],
            },
        ]
    )
    (problem,) = tariff_problems(site)
    assert "'high' and 'peak' both apply" in problem.reason
    assert problem.time == "Fri 18:00-22:00 at every date"


def test_sm_6_validity_hole_and_overlap_between_price_versions() -> None:
    """Grid prices: 'a' until 30 June, 'b' from 1 August to 31 December, 'c' from 1 December:
    a hole in July (all week) and an overlap of b and c in December."""
    site = make_site(
        tariffs=[
            {"id": "a", "kind": "grid", "price": "0.2", "valid_to": "2024-06-30"},
            {
                "id": "b",
                "kind": "grid",
                "price": "0.2",
                "valid_from": "2024-08-01",
                "valid_to": "2024-12-31",
            },
            {"id": "c", "kind": "grid", "price": "0.3", "valid_from": "2024-12-01"},
        ]
    )
    assert _times(tariff_problems(site)) == [
        "no grid tariff applies (hole in the tariffs); add a grid tariff without time windows "
        "(it applies whenever no windowed tariff does), or widen a window or a validity | "
        "all week, 00:00-24:00 from 2024-07-01 to 2024-07-31",
        "grid tariffs 'b' and 'c' both apply (overlap); exactly one tariff of a kind may apply "
        "at a time: narrow a time window or a validity | "
        "all week, 00:00-24:00 from 2024-12-01 to 2024-12-31",
    ]


def test_sm_6_hole_in_a_short_validity_names_only_its_weekdays() -> None:
    """A windowed tariff valid only Sat 2024-06-01 .. Sun 2024-06-02 (Mon-Fri windows only)
    next to plain tariffs before and after: the hole is the weekend, nothing else."""
    site = make_site(
        tariffs=[
            {"id": "a", "kind": "grid", "price": "0.2", "valid_to": "2024-05-31"},
            {
                "id": "w",
                "kind": "grid",
                "price": "0.2",
                "valid_from": "2024-06-01",
                "valid_to": "2024-06-02",
                "windows": [{"days": "Mon-Fri"}],
            },
            {"id": "b", "kind": "grid", "price": "0.2", "valid_from": "2024-06-03"},
        ]
    )
    (problem,) = tariff_problems(site)
    assert problem.time == "Sat, Sun 00:00-24:00 from 2024-06-01 to 2024-06-02"


def test_sm_6_clean_configuration_has_no_problems() -> None:
    site = make_site(
        tariffs=[
            *GRID_HIGH_LOW,
            {"id": "solar", "kind": "local", "price": "0.12", "meter": "pv"},
            {"id": "feed", "kind": "feed-in", "price": "0.08", "meter": "pv"},
        ],
        contracts=[{"unit": "u1", "customer": "A", "start": "2024-01-01"}],
        fees=[{"id": "base", "amount": "3", "units": ["u1"]}],
    )
    assert billing_problems(site) == []


def test_sm_6_configuration_mistakes_are_listed_together() -> None:
    site = make_site(
        tariffs=[
            {"id": "solar", "kind": "local", "price": "0.12", "meter": "pv"},
            {"id": "solar", "kind": "battery", "price": "0.12", "meter": "pv"},
            {"id": "ghost", "kind": "local", "price": "0.12", "meter": "nothing"},
        ],
        fees=[{"id": "base", "amount": "3", "units": ["u9"]}],
        billing={"balance_meter": "nope", "sources": ["elsewhere"]},
    )
    text = "\n".join(str(p) for p in billing_problems(site))
    for expected in (
        "tariff id 'solar' is used twice",
        "'nothing', which is neither a location nor a virtual meter",
        "both local and battery tariffs",
        "no grid tariff",
        "unknown billing unit 'u9'",
        "balance meter 'nope'",
        "[billing] sources names 'elsewhere'",
        "[billing] owner is not set",
    ):
        assert expected in text


def test_sm_6_energy_in_a_tariff_hole_stops_pricing_with_the_local_time() -> None:
    """Only the high tariff: 1 kWh on Saturday 2024-10-26 at 13:00 local cannot be priced."""
    site = make_site(tariffs=[GRID_HIGH_LOW[0]])
    day = date(2024, 10, 26)
    consumption = series(day, day, {datetime(2024, 10, 26, 13, 0, tzinfo=VIENNA): 1.0})
    with pytest.raises(InvalidInput) as caught:
        bill(site, day, day, {"u1": consumption})
    (problem,) = caught.value.problems
    assert "no tariff applies" in problem.reason
    assert problem.time == "Sat 2024-10-26 13:00-13:15"


def test_tariff_slots_marks_holes_and_overlaps() -> None:
    tariffs = [
        Tariff(id="a", kind=TariffKind.GRID, price=Decimal("0.2"), valid_to=date(2024, 1, 1)),
        Tariff(
            id="b",
            kind=TariffKind.GRID,
            price=Decimal("0.2"),
            valid_from=date(2024, 1, 2),
            valid_to=date(2024, 1, 2),
        ),
        Tariff(
            id="c",
            kind=TariffKind.GRID,
            price=Decimal("0.2"),
            valid_from=date(2024, 1, 2),
            valid_to=date(2024, 1, 2),
        ),
    ]
    start, stop = period_slots(date(2024, 1, 1), date(2024, 1, 3), VIENNA)
    index = tariff_slots(tariffs, start, stop, VIENNA)[TariffKey(TariffKind.GRID, None)]
    assert index.tolist() == [0] * 96 + [OVERLAP] * 96 + [NO_TARIFF] * 96


def test_tariff_models_reject_bad_input() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="quarter hour"):
        Tariff.model_validate(
            {"id": "x", "kind": "grid", "price": 1, "windows": [{"from": "07:10"}]}
        )
    with pytest.raises(ValidationError, match="needs 'meter'"):
        Tariff.model_validate({"id": "x", "kind": "local", "price": 1})
    with pytest.raises(ValidationError, match="unknown weekday"):
        Tariff.model_validate(
            {"id": "x", "kind": "grid", "price": 1, "windows": [{"days": "Mon-Fry"}]}
        )
    with pytest.raises(ValidationError, match="VAT rate"):
        Tariff.model_validate({"id": "x", "kind": "grid", "price": 1, "vat": 20})
    assert Tariff.model_validate({"id": "x", "kind": "Solar", "price": 1, "meter": "pv"}).kind == (
        TariffKind.LOCAL
    )


# ------------------------------------------------------------------------------------------
# property: billing two halves = billing the whole


def _energy_by_tariff(bills: list[Bill]) -> dict[tuple[str, str], float]:
    out: dict[tuple[str, str], float] = {}
    for b in bills:
        for line in b.lines:
            if line.energy_kwh is not None:
                key = (b.unit, line.item)
                out[key] = out.get(key, 0.0) + line.energy_kwh
    return out


@given(st.integers(0, 2**32 - 1), st.integers(1, 6))
def test_sm_6_billing_two_halves_gives_the_energy_of_the_whole(seed: int, cut: int) -> None:
    """A week around the autumn clock change billed whole, and as two parts split after
    ``cut`` days: per unit and tariff, the same energy."""
    rng = np.random.default_rng(seed)
    first, last = date(2024, 10, 22), date(2024, 10, 28)
    site = make_site(
        tariffs=[
            *GRID_HIGH_LOW,
            {"id": "solar", "kind": "local", "price": "0.12", "meter": "pv"},
            {"id": "feed", "kind": "feed-in", "price": "0.08", "meter": "pv"},
        ],
        contracts=[
            {"unit": "u1", "customer": "A", "start": "2024-01-01", "end": "2024-10-24"},
            {"unit": "u1", "customer": "B", "start": "2024-10-25"},
        ],
    )
    start, stop = period_slots(first, last, VIENNA)
    n = stop - start
    consumption = {"u1": rng.random(n), "u2": rng.random(n) * (rng.random(n) > 0.3)}
    production = {"pv": rng.random(n) * 2}
    whole = _energy_by_tariff(bill(site, first, last, consumption, production))
    mid = date.fromordinal(first.toordinal() + cut - 1)
    cut_slot = period_slots(first, mid, VIENNA)[1] - start
    parts: list[Bill] = []
    for lo_day, hi_day, lo, hi in (
        (first, mid, 0, cut_slot),
        (date.fromordinal(mid.toordinal() + 1), last, cut_slot, n),
    ):
        parts += bill(
            site,
            lo_day,
            hi_day,
            {k: v[lo:hi] for k, v in consumption.items()},
            {k: v[lo:hi] for k, v in production.items()},
        )
    halves = _energy_by_tariff(parts)
    assert halves.keys() == whole.keys()
    for key, energy in whole.items():
        assert halves[key] == pytest.approx(energy, rel=1e-12, abs=1e-9)


# ------------------------------------------------------------------------------------------
# the worked example of docs/billing.md


def _docs_site() -> Site:
    from pathlib import Path

    from lastgang.concept.load import parse_site

    text = (Path(__file__).resolve().parents[2] / "docs" / "billing.md").read_text("utf-8")
    block = text.split("```toml\n", 1)[1].split("```", 1)[0]
    return parse_site(block, "docs/billing.md")


def test_sm_6_worked_example_of_the_billing_docs() -> None:
    """docs/billing.md section 7, Saturday 2024-06-01, four quarter hours with energy:

    06:45 PV 0 / Top1 0.4 / Top2 0.2 -> all grid, low tariff;
    10:00 PV 1.5 / 0.5 / 0.5 -> share 1, 0.5 kWh surplus, high;
    12:45 PV 0.8 / 1.2 / 0.4 -> share 0.5: 0.6 + 0.6 grid, 0.2 + 0.2 grid, high;
    13:00 PV 0.6 / 0.6 / 0.9 -> share 0.4: 0.24 + 0.36 grid, 0.36 + 0.54 grid, low.
    Top 1: solar 1.34 x 0.12 = 0.1608 -> 0.16, high 0.6 x 0.30 = 0.18, low 0.76 x 0.20 = 0.152
    -> 0.15, fee 3.00 / 30 = 0.10; net 0.59, VAT 0.118 -> 0.12, total 0.71.
    Top 2: 1.06 x 0.12 = 0.1272 -> 0.13, 0.2 x 0.30 = 0.06, 0.74 x 0.20 = 0.148 -> 0.15, 0.10;
    net 0.44, VAT 0.088 -> 0.09, total 0.53. Roof: feed-in 0.5 x 0.08 = -0.04, no VAT."""
    site = _docs_site()
    assert billing_problems(site) == []
    day = date(2024, 6, 1)

    def at(hour: int, minute: int) -> datetime:
        return datetime(2024, 6, 1, hour, minute, tzinfo=VIENNA)

    quarters = [at(6, 45), at(10, 0), at(12, 45), at(13, 0)]
    pv = series(day, day, dict(zip(quarters, [0.0, 1.5, 0.8, 0.6], strict=True)))
    top1 = series(day, day, dict(zip(quarters, [0.4, 0.5, 1.2, 0.6], strict=True)))
    top2 = series(day, day, dict(zip(quarters, [0.2, 0.5, 0.4, 0.9], strict=True)))
    b1, b2, roof = bill(site, day, day, {"top-1": top1, "top-2": top2}, {"pv": pv})
    assert b1.customer == "Anna Berger" and b2.customer == "Clara Gruber"
    assert lines_of(b1) == {
        "solar": (Decimal("1.340"), Decimal("0.16")),
        "grid-high": (Decimal("0.600"), Decimal("0.18")),
        "grid-low": (Decimal("0.760"), Decimal("0.15")),
        "base": (Decimal("1"), Decimal("0.10")),
    }
    assert (b1.net, b1.vat_total, b1.total) == (Decimal("0.59"), Decimal("0.12"), Decimal("0.71"))
    assert lines_of(b2) == {
        "solar": (Decimal("1.060"), Decimal("0.13")),
        "grid-high": (Decimal("0.200"), Decimal("0.06")),
        "grid-low": (Decimal("0.740"), Decimal("0.15")),
        "base": (Decimal("1"), Decimal("0.10")),
    }
    assert (b2.net, b2.vat_total, b2.total) == (Decimal("0.44"), Decimal("0.09"), Decimal("0.53"))
    assert roof.customer == "Hausverwaltung Lindengasse 5" and roof.vacancy
    assert lines_of(roof) == {"feed-in": (Decimal("0.500"), Decimal("-0.04"))}
    assert roof.total == Decimal("-0.04")


def test_tor_4_2_time_names_in_the_repeated_autumn_hour_carry_the_offset() -> None:
    """Sunday 2024-10-27: 02:30-03:00 CEST and 02:15-02:30 CET have the same wall clock; the
    offset keeps them apart."""
    from lastgang.pricing import describe_slots

    start, _ = period_slots(date(2024, 10, 27), date(2024, 10, 27), VIENNA)
    # slot 10 starts 02:30+02:00; slot 13 starts 02:15+01:00 (00:00 + 13 x 15 min - 1 h)
    text = describe_slots([start + 10, start + 11, start + 13], VIENNA)
    assert text == (
        "Sun 2024-10-27 02:30+02:00-02:00+01:00, Sun 2024-10-27 02:15+01:00-02:30+01:00"
    )
    assert describe_slots([start + 40], VIENNA) == "Sun 2024-10-27 09:00-09:15"
