"""A naive reference implementation of allocation and pricing, one slot at a time.

This module exists to check the fast engine (:mod:`lastgang.allocation`, :mod:`lastgang.pricing`)
on random sites and to serve as a readable statement of the billing rules. It shares nothing with
the engine but the site model and the rounding policy (:mod:`lastgang.money`): local time comes
from ``zoneinfo`` per slot, tariffs are chosen by plain loops, contracts are walked day by day.
It is slow on purpose; never use it for real billing runs.
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from lastgang.concept.model import Site
from lastgang.concept.tariffs import Contract, Tariff, TariffKind
from lastgang.money import round_money, to_decimal_kwh

__all__ = [
    "ReferenceAllocation",
    "ReferenceBill",
    "ReferenceLine",
    "reference_allocate",
    "reference_bills",
    "reference_period_slots",
]

_SLOT = 900


@dataclass
class ReferenceAllocation:
    """Per slot lists: ``local[t][i][s]``, ``grid[t][i]``, ``surplus[t][s]``,
    ``self_consumed[t][s]``."""

    local: list[list[list[float]]] = field(default_factory=list)
    grid: list[list[float]] = field(default_factory=list)
    surplus: list[list[float]] = field(default_factory=list)
    self_consumed: list[list[float]] = field(default_factory=list)


def reference_allocate(
    consumption: Sequence[Sequence[float]],
    production: Sequence[Sequence[float]],
    *,
    key: str = "smart-me",
    static_shares: Sequence[float] | None = None,
    balance_export: Sequence[float] | None = None,
    source_order: str = "proportional",
) -> ReferenceAllocation:
    """Allocate slot by slot; ``consumption[i][t]``, ``production[s][t]``."""
    m = len(consumption)
    s_count = len(production)
    t_count = len(consumption[0]) if m else (len(production[0]) if s_count else 0)
    out = ReferenceAllocation()
    for t in range(t_count):
        for i in range(m):
            if consumption[i][t] != consumption[i][t]:
                raise ValueError(f"consumption {i} is NaN in slot {t}")
        offered = [float(production[s][t]) for s in range(s_count)]
        total_offered = 0.0
        for value in offered:
            if value != value:
                raise ValueError(f"production is NaN in slot {t}")
            total_offered += value
        available = total_offered
        if balance_export is not None:
            available = total_offered - float(balance_export[t])
            if available < 0:
                available = 0.0
            if available > total_offered:
                available = total_offered
        demand = [float(consumption[i][t]) for i in range(m)]
        total_demand = 0.0
        for value in demand:
            total_demand += value
        given: list[float] = []
        for i in range(m):
            if key == "static":
                assert static_shares is not None
                offer = static_shares[i] * available
                given.append(offer if offer < demand[i] else demand[i])
            elif total_demand > 0:
                share = available / total_demand
                if share > 1:
                    share = 1.0
                given.append(demand[i] * share)
            else:
                given.append(0.0)
        handed_out = 0.0
        for value in given:
            handed_out += value
        taken: list[float] = []
        if source_order == "priority":
            remaining = handed_out
            for s in range(s_count):
                take = remaining if remaining < offered[s] else offered[s]
                taken.append(take)
                remaining -= take
            if s_count and remaining > 0:
                taken[-1] += remaining
        else:
            for s in range(s_count):
                taken.append(
                    handed_out * (offered[s] / total_offered) if total_offered > 0 else 0.0
                )
        mix = [taken[s] / handed_out if handed_out > 0 else 0.0 for s in range(s_count)]
        out.local.append([[given[i] * mix[s] for s in range(s_count)] for i in range(m)])
        out.grid.append([max(demand[i] - given[i], 0.0) for i in range(m)])
        out.self_consumed.append(taken)
        out.surplus.append([max(offered[s] - taken[s], 0.0) for s in range(s_count)])
    return out


# --------------------------------------------------------------------------------------------
# time, one slot at a time


def _local(slot: int, zi: ZoneInfo) -> datetime:
    return datetime.fromtimestamp(slot * _SLOT, UTC).astimezone(zi)


def _midnight_slot(day: date, zi: ZoneInfo) -> int:
    instant = datetime.combine(day, time(0, 0), tzinfo=zi).astimezone(UTC)
    seconds = int(instant.timestamp())
    return -(-seconds // _SLOT)


def reference_period_slots(first_day: date, last_day: date, tz: str) -> tuple[int, int]:
    """``[start, stop)`` slots from local midnight of ``first_day`` to the one after
    ``last_day``."""
    zi = ZoneInfo(tz)
    return _midnight_slot(first_day, zi), _midnight_slot(last_day + timedelta(days=1), zi)


def _applies(tariff: Tariff, local: datetime) -> bool:
    if tariff.valid_from is not None and local.date() < tariff.valid_from:
        return False
    if tariff.valid_to is not None and local.date() > tariff.valid_to:
        return False
    if not tariff.windows:
        return True
    minute = local.hour * 60 + local.minute
    return any(w.contains(local.weekday(), minute) for w in tariff.windows)


def _tariff_of(
    tariffs: Sequence[Tariff], kind: TariffKind, meter: str | None, local: datetime
) -> int | None:
    """Index of the single tariff of (kind, meter) for a slot; None for none; raises on two."""
    windowed: list[int] = []
    plain: list[int] = []
    for j, tariff in enumerate(tariffs):
        if tariff.kind != kind or tariff.meter != meter:
            continue
        if _applies(tariff, local):
            (windowed if tariff.windows else plain).append(j)
    if len(windowed) > 1 or len(plain) > 1:
        raise ValueError(f"two {kind.value} tariffs apply at {local.isoformat()}")
    if windowed:
        return windowed[0]
    if plain:
        return plain[0]
    return None


# --------------------------------------------------------------------------------------------
# bills


@dataclass
class ReferenceLine:
    kind: str
    item: str
    first_day: date
    last_day: date
    quantity: Decimal
    amount: Decimal
    vat_rate: Decimal
    energy_kwh: float | None = None


@dataclass
class ReferenceBill:
    unit: str
    customer: str
    first_day: date
    last_day: date
    vacancy: bool
    lines: list[ReferenceLine]
    vat: dict[Decimal, Decimal]
    consumption_kwh: float = 0.0
    local_kwh: float = 0.0
    grid_kwh: float = 0.0

    @property
    def total(self) -> Decimal:
        total = Decimal(0)
        for line in self.lines:
            total += line.amount
        for amount in self.vat.values():
            total += amount
        return total


def _sources(site: Site) -> list[str]:
    metered: list[str] = []
    for tariff in site.tariffs:
        local = tariff.kind in (TariffKind.LOCAL, TariffKind.BATTERY)
        if local and tariff.meter is not None and tariff.meter not in metered:
            metered.append(tariff.meter)
    ordered: list[str] = []
    for meter in site.billing.sources:
        if meter in metered:
            ordered.append(meter)
    for meter in metered:
        if meter not in ordered:
            ordered.append(meter)
    return ordered


def _contract_on(site: Site, unit: str, day: date) -> Contract | None:
    found = None
    for contract in site.contracts:
        if contract.unit != unit:
            continue
        if contract.start <= day and (contract.end is None or day <= contract.end):
            if found is not None:
                raise ValueError(f"two contracts for {unit} on {day}")
            found = contract
    return found


def _periods(
    site: Site, unit: str, first_day: date, last_day: date
) -> list[tuple[Contract | None, date, date]]:
    out: list[tuple[Contract | None, date, date]] = []
    day = first_day
    while day <= last_day:
        contract = _contract_on(site, unit, day)
        if out and out[-1][0] is contract and out[-1][2] + timedelta(days=1) == day:
            out[-1] = (contract, out[-1][1], day)
        else:
            out.append((contract, day, day))
        day += timedelta(days=1)
    return out


@dataclass
class _Sum:
    energy: float
    first: date
    last: date


def _add(sums: dict[tuple[str, int], _Sum], kind: str, j: int, energy: float, day: date) -> None:
    entry = sums.get((kind, j))
    if entry is None:
        sums[(kind, j)] = _Sum(energy, day, day)
    else:
        entry.energy += energy
        entry.last = day


_KIND_ORDER = ["local", "battery", "grid", "base-fee", "feed-in", "local-sales"]


def _energy_line(
    kind: str, tariff: Tariff, energy: float, first: date, last: date, sign: int
) -> ReferenceLine:
    quantity = to_decimal_kwh(energy)
    amount = round_money(quantity * tariff.price)
    return ReferenceLine(
        kind, tariff.id, first, last, quantity, amount if sign > 0 else -amount, tariff.vat, energy
    )


def reference_bills(
    site: Site,
    consumption: Mapping[str, Sequence[float]],
    production: Mapping[str, Sequence[float]],
    first_day: date,
    last_day: date,
    *,
    balance_export: Sequence[float] | None = None,
) -> list[ReferenceBill]:
    """Bills of every unit's contract periods (and vacancies) for ``first_day`` .. ``last_day``.

    ``consumption`` maps consumer unit id -> kWh per slot of the period, ``production`` maps
    production meter id -> kWh per slot; the same inputs as
    :func:`lastgang.allocation.allocate_site` takes.
    """
    zi = ZoneInfo(site.site.timezone)
    start, stop = reference_period_slots(first_day, last_day, site.site.timezone)
    consumers = list(consumption)
    sources = [meter for meter in _sources(site) if meter in production]
    settings = site.billing
    shares = None
    if settings.allocation.value == "static":
        shares = [float(settings.static_shares.get(u, 0)) for u in consumers]
    alloc = reference_allocate(
        [list(consumption[u]) for u in consumers],
        [list(production[m]) for m in sources],
        key=settings.allocation.value,
        static_shares=shares,
        balance_export=balance_export if settings.balance_meter is not None else None,
        source_order=settings.source_order.value,
    )
    local_times = [_local(slot, zi) for slot in range(start, stop)]
    source_kind: dict[str, TariffKind] = {}
    for tariff in site.tariffs:
        if tariff.meter in sources and tariff.kind in (TariffKind.LOCAL, TariffKind.BATTERY):
            source_kind.setdefault(tariff.meter, tariff.kind)
    producers: dict[str, str] = {}
    for unit in site.units:
        for meter in unit.meters:
            if meter in sources or any(t.meter == meter for t in site.tariffs):
                producers.setdefault(meter, unit.id)
    has_feed_in = {t.meter for t in site.tariffs if t.kind is TariffKind.FEED_IN}

    bills: list[ReferenceBill] = []
    for unit in site.units:
        for contract, lo_day, hi_day in _periods(site, unit.id, first_day, last_day):
            if contract is None and settings.owner is None:
                raise ValueError(f"vacancy of {unit.id} without owner")
            # sums per (kind, tariff index): energy, first day, last day
            sums: dict[tuple[str, int], _Sum] = {}
            consumption_kwh = local_kwh = grid_kwh = 0.0
            row = consumers.index(unit.id) if unit.id in consumers else None
            for t in range(stop - start):
                local = local_times[t]
                day = local.date()
                if day < lo_day or day > hi_day:
                    continue
                if row is not None:
                    consumption_kwh += float(consumption[unit.id][t])
                    for s, meter in enumerate(sources):
                        kind = source_kind[meter]
                        energy = alloc.local[t][row][s]
                        local_kwh += energy
                        j = _tariff_of(site.tariffs, kind, meter, local)
                        if j is None:
                            if energy > 0:
                                raise ValueError(f"no {kind.value} tariff at {local}")
                            continue
                        _add(sums, kind.value, j, energy, day)
                    energy = alloc.grid[t][row]
                    grid_kwh += energy
                    j = _tariff_of(site.tariffs, TariffKind.GRID, None, local)
                    if j is None:
                        if energy > 0:
                            raise ValueError(f"no grid tariff at {local}")
                    else:
                        _add(sums, "grid", j, energy, day)
                for s, meter in enumerate(sources):
                    if producers.get(meter) != unit.id:
                        continue
                    if meter in has_feed_in:
                        j = _tariff_of(site.tariffs, TariffKind.FEED_IN, meter, local)
                        if j is not None:
                            _add(sums, "feed-in", j, alloc.surplus[t][s], day)
                    if settings.credit_local_sales:
                        j = _tariff_of(site.tariffs, source_kind[meter], meter, local)
                        if j is not None:
                            _add(sums, "local-sales", j, alloc.self_consumed[t][s], day)
            lines: list[ReferenceLine] = []
            for (line_kind, j), total in sums.items():
                sign = -1 if line_kind in ("feed-in", "local-sales") else 1
                lines.append(
                    _energy_line(
                        line_kind, site.tariffs[j], total.energy, total.first, total.last, sign
                    )
                )
            # base fees: count days per fee and month, one line each
            for fee_index, fee in enumerate(site.fees):
                if fee.units and unit.id not in fee.units:
                    continue
                months: dict[tuple[int, int], list[date]] = {}
                day = lo_day
                while day <= hi_day:
                    if fee.valid_on(day):
                        months.setdefault((day.year, day.month), []).append(day)
                    day += timedelta(days=1)
                for (year, month), days in months.items():
                    in_month = calendar.monthrange(year, month)[1]
                    amount = round_money(fee.amount * len(days) / in_month)
                    lines.append(
                        ReferenceLine(
                            "base-fee",
                            f"{fee_index}:{fee.id}",
                            days[0],
                            days[-1],
                            Decimal(len(days)),
                            amount,
                            fee.vat,
                        )
                    )
            order = {t.id: k for k, t in enumerate(site.tariffs)}

            def sort_key(
                line: ReferenceLine, order: dict[str, int] = order
            ) -> tuple[int, int, date]:
                if line.kind == "base-fee":
                    return (
                        _KIND_ORDER.index(line.kind),
                        int(line.item.split(":")[0]),
                        line.first_day,
                    )
                return (_KIND_ORDER.index(line.kind), order[line.item], line.first_day)

            lines.sort(key=sort_key)
            for line in lines:
                if line.kind == "base-fee":
                    line.item = line.item.split(":", 1)[1]
            nets: dict[Decimal, Decimal] = {}
            for line in lines:
                nets[line.vat_rate] = nets.get(line.vat_rate, Decimal(0)) + line.amount
            vat = {rate: round_money(rate * net) for rate, net in nets.items()}
            bills.append(
                ReferenceBill(
                    unit=unit.id,
                    customer=contract.customer if contract is not None else settings.owner or "",
                    first_day=lo_day,
                    last_day=hi_day,
                    vacancy=contract is None,
                    lines=lines,
                    vat=vat,
                    consumption_kwh=consumption_kwh,
                    local_kwh=local_kwh,
                    grid_kwh=grid_kwh,
                )
            )
    return bills
