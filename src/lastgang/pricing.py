"""Pricing: tariffs per quarter hour, contracts, base fees and VAT (SM-6).

The billing core is pure and works on whole arrays:

- :func:`tariff_slots` says, per tariff group (kind, and production meter for ``local``,
  ``battery`` and ``feed-in``), which tariff applies in each slot of a period (vectorized over
  local time, so days of 92, 96 and 100 quarter hours need no special case).
- :func:`tariff_problems` checks a site's tariffs for holes and overlaps over all time, naming the
  times in local time with weekday and hours (``lastgang check``); :func:`billing_problems` adds
  contracts, fees and the ``[billing]`` section.
- :func:`contract_periods` splits a billing period per unit into contracts and vacancy at local
  day boundaries.
- :func:`price_site` turns an :class:`~lastgang.allocation.Allocation` into one :class:`Bill` per
  contract period.

Money rules (all rounding is in :mod:`lastgang.money`): the energy of a line is the unrounded
sum of its slot energies; it becomes a ``Decimal`` only on the line (billed to the Wh). Line
amount = quantity x price, rounded to the cent half-up; VAT per rate = rate x sum of the net line
amounts of that rate, rounded half-up; total = sum of the rounded lines + VAT.
"""

from __future__ import annotations

import calendar
import functools
import itertools
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from numpy.typing import NDArray

from lastgang.allocation import Allocation, billing_sources
from lastgang.concept.model import Site
from lastgang.concept.tariffs import (
    WEEKDAY_NAMES,
    Contract,
    Fee,
    Tariff,
    TariffKey,
    TariffKind,
    format_minute,
)
from lastgang.errors import InvalidInput, Problem
from lastgang.money import priced_kwhs, round_money, to_decimal_kwh
from lastgang.records import record_of
from lastgang.timegrid import (
    SLOT_SECONDS,
    local_date_of_slots,
    local_start_minutes,
    local_weekday,
    period_slots,
    zone,
)

__all__ = [
    "NO_TARIFF",
    "OVERLAP",
    "Bill",
    "ContractPeriod",
    "Line",
    "LineKind",
    "VatLine",
    "billing_problems",
    "contract_periods",
    "contract_problems",
    "describe_slots",
    "describe_week",
    "fee_lines",
    "price_site",
    "producer_units",
    "tariff_problems",
    "tariff_slots",
    "vat_lines",
]

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

#: index in :func:`tariff_slots` results where no tariff of the group applies (a hole)
NO_TARIFF = -1
#: index where more than one tariff of the group applies (an overlap)
OVERLAP = -2

_QUARTERS = 96


def _tz(tz: str | ZoneInfo) -> ZoneInfo:
    return zone(tz) if isinstance(tz, str) else tz


# --------------------------------------------------------------------------------------------
# which tariff applies per slot


def _weekday_masks(tariff: Tariff, weekday: IntArray, minutes: IntArray) -> BoolArray:
    mask = np.zeros(len(weekday), dtype=np.bool_)
    for window in tariff.windows:
        mask |= (
            np.isin(weekday, sorted(window.weekdays))
            & (minutes >= window.start_minute)
            & (minutes < window.end_minute)
        )
    return mask


def _validity_mask(
    valid_from: date | None, valid_to: date | None, days: NDArray[np.generic]
) -> BoolArray:
    mask = np.ones(len(days), dtype=np.bool_)
    if valid_from is not None:
        mask &= days >= np.datetime64(valid_from, "D")
    if valid_to is not None:
        mask &= days <= np.datetime64(valid_to, "D")
    return mask


def tariff_slots(
    tariffs: Sequence[Tariff], start: int, stop: int, tz: str | ZoneInfo
) -> dict[TariffKey, IntArray]:
    """Per tariff group, the index into ``tariffs`` of the tariff that applies in each slot of
    ``[start, stop)``; :data:`NO_TARIFF` (-1) where none does, :data:`OVERLAP` (-2) where two do.

    In a slot, the windowed tariffs of a group whose date validity and time window contain the
    slot's local start apply; when none does, the group's tariff without windows (valid that
    day) applies. Two windowed tariffs, or two tariffs without windows valid on the same day, are
    an overlap.
    """
    zi = _tz(tz)
    slots = np.arange(start, stop, dtype=np.int64)
    days = local_date_of_slots(slots, zi)
    minutes = local_start_minutes(slots, zi)
    weekday = local_weekday(slots, zi)
    n = len(slots)
    counts: dict[TariffKey, tuple[IntArray, IntArray, IntArray, IntArray]] = {}
    for j, tariff in enumerate(tariffs):
        key = tariff.key
        if key not in counts:
            counts[key] = (
                np.zeros(n, dtype=np.int64),
                np.full(n, NO_TARIFF, dtype=np.int64),
                np.zeros(n, dtype=np.int64),
                np.full(n, NO_TARIFF, dtype=np.int64),
            )
        cond_count, cond_index, plain_count, plain_index = counts[key]
        applies = _validity_mask(tariff.valid_from, tariff.valid_to, days)
        if tariff.conditional:
            applies &= _weekday_masks(tariff, weekday, minutes)
            cond_count += applies
            cond_index[applies] = j
        else:
            plain_count += applies
            plain_index[applies] = j
    out: dict[TariffKey, IntArray] = {}
    for key, (cond_count, cond_index, plain_count, plain_index) in counts.items():
        index = np.where(cond_count == 1, cond_index, plain_index)
        index[(cond_count == 0) & (plain_count == 0)] = NO_TARIFF
        index[(cond_count >= 2) | (plain_count >= 2)] = OVERLAP
        out[key] = index
    return out


# --------------------------------------------------------------------------------------------
# describing times


def _runs(mask: Sequence[bool] | BoolArray) -> list[tuple[int, int]]:
    """``[start, stop)`` index runs where ``mask`` is true."""
    values = np.asarray(mask, dtype=np.int8)
    if not values.any():
        return []
    edges = np.diff(np.concatenate(([0], values, [0])))
    starts = np.flatnonzero(edges == 1)
    stops = np.flatnonzero(edges == -1)
    return list(zip(starts.tolist(), stops.tolist(), strict=True))


def _day_set_text(days: list[int]) -> str:
    """``[0, 1, 2, 3, 4]`` -> ``'Mon-Fri'``, ``[0, 2]`` -> ``'Mon, Wed'``."""
    parts: list[str] = []
    for lo, hi in _runs([d in days for d in range(7)]):
        if hi - lo == 1:
            parts.append(WEEKDAY_NAMES[lo])
        elif hi - lo == 2:
            parts.append(f"{WEEKDAY_NAMES[lo]}, {WEEKDAY_NAMES[lo + 1]}")
        else:
            parts.append(f"{WEEKDAY_NAMES[lo]}-{WEEKDAY_NAMES[hi - 1]}")
    return ", ".join(parts)


def describe_week(cells: BoolArray) -> str:
    """A week of quarter hours ``[7, 96]`` (Monday first) as text, e.g.
    ``'Mon-Fri 00:00-07:00, 22:00-24:00; Sat 13:00-24:00; Sun 00:00-24:00'``."""
    if cells.all():
        return "all week, 00:00-24:00"
    by_hours: dict[str, list[int]] = {}
    for day in range(7):
        runs = _runs(cells[day])
        if runs:
            text = ", ".join(
                f"{format_minute(lo * 15)}-{format_minute(hi * 15)}" for lo, hi in runs
            )
            by_hours.setdefault(text, []).append(day)
    ordered = sorted(by_hours.items(), key=lambda item: item[1][0])
    return "; ".join(f"{_day_set_text(days)} {hours}" for hours, days in ordered)


def _date_range_text(first: date | None, last: date | None) -> str:
    if first is None and last is None:
        return "at every date"
    if first is None:
        return f"until {last}"
    if last is None:
        return f"from {first} on"
    if first == last:
        return f"on {first}"
    return f"from {first} to {last}"


def _local(slot: int, zi: ZoneInfo) -> datetime:
    return datetime.fromtimestamp(slot * SLOT_SECONDS, UTC).astimezone(zi)


def _clock(moment: datetime, *, end: bool) -> str:
    """``HH:MM`` of a local time; ``24:00`` for a midnight that ends a range; with the UTC
    offset where the wall time alone is ambiguous (the repeated autumn hour, TOR-4.2)."""
    text = moment.strftime("%H:%M")
    if end and text == "00:00":
        return "24:00"
    if moment.replace(fold=1 - moment.fold).utcoffset() != moment.utcoffset():
        text += moment.strftime("%z")[:3] + ":" + moment.strftime("%z")[3:]
    return text


def describe_slots(slots: Iterable[int] | IntArray, tz: str | ZoneInfo, *, limit: int = 5) -> str:
    """Slots as local time ranges with weekday, split at local midnight, e.g.
    ``'Sat 2024-06-01 13:00-24:00, Sun 2024-06-02 00:00-07:00'`` (at most ``limit`` ranges;
    times in the repeated autumn hour carry their UTC offset)."""
    zi = _tz(tz)
    array = np.unique(np.asarray(list(slots) if not isinstance(slots, np.ndarray) else slots))
    if not len(array):
        return "no time"
    groups = np.split(array, np.flatnonzero(np.diff(array) != 1) + 1)
    texts: list[str] = []
    used = 0
    for group in groups:
        if len(texts) >= limit:
            break
        used += 1
        lo = _local(int(group[0]), zi)
        hi = _local(int(group[-1]) + 1, zi)
        last = (hi - timedelta(microseconds=1)).date()
        day = lo.date()
        while day <= last and len(texts) < limit:
            begin = _clock(lo, end=False) if day == lo.date() else "00:00"
            finish = _clock(hi, end=True) if day == last else "24:00"
            texts.append(f"{WEEKDAY_NAMES[day.weekday()]} {day} {begin}-{finish}")
            day += timedelta(days=1)
    more = len(groups) - used
    return ", ".join(texts) + (f" and {more} more range(s)" if more > 0 else "")


# --------------------------------------------------------------------------------------------
# static checks


def _week_cells(tariff: Tariff) -> BoolArray:
    cells = np.zeros((7, _QUARTERS), dtype=np.bool_)
    for window in tariff.windows:
        for day in window.weekdays:
            cells[day, window.start_minute // 15 : window.end_minute // 15] = True
    return cells


@dataclass
class _Finding:
    what: tuple[str, str, tuple[str, ...]]
    first: date | None
    last: date | None


def _coverage_problems(key: TariffKey, members: list[Tariff]) -> list[Problem]:
    """Holes and overlaps of one tariff group over all dates and the week."""
    bounds: set[date] = set()
    for tariff in members:
        if tariff.valid_from is not None:
            bounds.add(tariff.valid_from)
        if tariff.valid_to is not None:
            bounds.add(tariff.valid_to + timedelta(days=1))
    first = None if any(t.valid_from is None for t in members) else min(bounds)
    last_excl = (
        None
        if any(t.valid_to is None for t in members)
        else max(t.valid_to + timedelta(days=1) for t in members if t.valid_to is not None)
    )
    edges: list[date | None] = [first, *sorted(b for b in bounds if b != first and b != last_excl)]
    edges.append(last_excl)
    # (kind of finding, week text, tariff ids) -> list of (first day, last day)
    findings: list[tuple[tuple[str, str, tuple[str, ...]], date | None, date | None]] = []
    for lo, hi in itertools.pairwise(edges):
        probe = lo if lo is not None else (hi - timedelta(days=1) if hi is not None else None)
        valid = [t for t in members if probe is None or t.valid_on(probe)]
        present = np.ones(7, dtype=np.bool_)
        if lo is not None and hi is not None and (hi - lo).days < 7:
            present[:] = False
            for k in range((hi - lo).days):
                present[(lo + timedelta(days=k)).weekday()] = True
        cond = [(t, _week_cells(t)) for t in valid if t.conditional]
        plain = [t for t in valid if not t.conditional]
        cond_count = np.zeros((7, _QUARTERS), dtype=np.int64)
        for _, cells in cond:
            cond_count += cells
        live = np.repeat(present[:, None], _QUARTERS, axis=1)
        hole = live & (cond_count == 0) & (len(plain) == 0)
        last_day = hi - timedelta(days=1) if hi is not None else None
        if hole.any():
            findings.append((("hole", describe_week(hole), ()), lo, last_day))
        overlap_sets: dict[tuple[str, ...], BoolArray] = {}
        if len(plain) >= 2:
            ids = tuple(t.id for t in plain)
            overlap_sets[ids] = live.copy()
        if len(cond) >= 2:
            for day in range(7):
                for q in range(_QUARTERS):
                    if live[day, q] and cond_count[day, q] >= 2:
                        ids = tuple(t.id for t, cells in cond if cells[day, q])
                        overlap_sets.setdefault(ids, np.zeros((7, _QUARTERS), dtype=np.bool_))[
                            day, q
                        ] = True
        for ids, cells in overlap_sets.items():
            findings.append((("overlap", describe_week(cells), ids), lo, last_day))
    # merge findings that continue over adjacent date intervals
    merged: list[_Finding] = []
    for what, lo, last_day in findings:
        for item in merged:
            if (
                item.what == what
                and item.last is not None
                and lo is not None
                and item.last + timedelta(days=1) == lo
            ):
                item.last = last_day
                break
        else:
            merged.append(_Finding(what, lo, last_day))
    problems: list[Problem] = []
    group = key.describe()
    for item in merged:
        finding, week, ids = item.what
        when = f"{week} {_date_range_text(item.first, item.last)}"
        if finding == "hole":
            reason = (
                f"no {group} tariff applies (hole in the tariffs); add a {key.kind.value} "
                "tariff without time windows (it applies whenever no windowed tariff does), "
                "or widen a window or a validity"
            )
        else:
            names = " and ".join(f"'{i}'" for i in ids)
            reason = (
                f"{group} tariffs {names} both apply (overlap); exactly one tariff of a kind may "
                "apply at a time: narrow a time window or a validity"
            )
        problems.append(Problem(reason, column="tariffs", meter=key.meter, time=when))
    return problems


def tariff_problems(site: Site) -> list[Problem]:
    """Every problem of the site's tariffs: holes and overlaps per tariff group (named in local
    time with weekdays, hours and dates), unknown production meters, duplicate ids, a production
    meter with both ``local`` and ``battery`` tariffs, billed sources without a grid tariff."""
    problems: list[Problem] = []
    known = set(site.meter_ids())
    seen: set[str] = set()
    for tariff in site.tariffs:
        if tariff.id in seen:
            problems.append(
                Problem(
                    f"tariff id {tariff.id!r} is used twice; give each tariff its own id",
                    column="tariffs",
                )
            )
        seen.add(tariff.id)
        if tariff.meter is not None and tariff.meter not in known:
            problems.append(
                Problem(
                    f"tariff {tariff.id!r} prices the production meter {tariff.meter!r}, which "
                    "is neither a location nor a virtual meter of this site",
                    column="tariffs",
                    meter=tariff.meter,
                )
            )
    kinds_by_meter: dict[str, set[TariffKind]] = {}
    for tariff in site.tariffs:
        if tariff.meter is not None and tariff.kind in (TariffKind.LOCAL, TariffKind.BATTERY):
            kinds_by_meter.setdefault(tariff.meter, set()).add(tariff.kind)
    for meter, kinds in kinds_by_meter.items():
        if len(kinds) > 1:
            problems.append(
                Problem(
                    f"production meter {meter!r} has both local and battery tariffs; use one "
                    "kind per production meter",
                    column="tariffs",
                    meter=meter,
                )
            )
    if kinds_by_meter and not any(t.kind is TariffKind.GRID for t in site.tariffs):
        problems.append(
            Problem(
                "local energy is priced but there is no grid tariff: every consumer's grid "
                "energy needs a price; add a tariff of kind 'grid'",
                column="tariffs",
            )
        )
    groups: dict[TariffKey, list[Tariff]] = {}
    for tariff in site.tariffs:
        groups.setdefault(tariff.key, []).append(tariff)
    for key, members in groups.items():
        problems.extend(_coverage_problems(key, members))
    return problems


def contract_problems(site: Site) -> list[Problem]:
    """Contracts for unknown units and overlapping contracts of one unit (named by days)."""
    problems: list[Problem] = []
    units = {unit.id for unit in site.units}
    by_unit: dict[str, list[Contract]] = {}
    for contract in site.contracts:
        if contract.unit not in units:
            problems.append(
                Problem(
                    f"contract of {contract.customer!r} is for the unknown billing unit "
                    f"{contract.unit!r}",
                    column="contracts",
                )
            )
        by_unit.setdefault(contract.unit, []).append(contract)
    for unit, contracts in by_unit.items():
        ordered = sorted(contracts, key=lambda c: c.start)
        for before, after in itertools.pairwise(ordered):
            if before.end is not None and before.end < after.start:
                continue
            ends = [d for d in (before.end, after.end) if d is not None]
            until = f"to {min(ends)}" if ends else "on"
            problems.append(
                Problem(
                    f"contracts of {before.customer!r} and {after.customer!r} for unit "
                    f"{unit!r} overlap from {after.start} {until}; end the first contract the "
                    "day before the next one starts",
                    column="contracts",
                )
            )
    return problems


def billing_problems(site: Site) -> list[Problem]:
    """:func:`tariff_problems`, :func:`contract_problems` and checks of fees and ``[billing]``."""
    problems = tariff_problems(site) + contract_problems(site)
    units = {unit.id for unit in site.units}
    known = set(site.meter_ids())
    for fee in site.fees:
        for unit in fee.units:
            if unit not in units:
                problems.append(
                    Problem(
                        f"fee {fee.id!r} names the unknown billing unit {unit!r}", column="fees"
                    )
                )
    settings = site.billing
    for unit in settings.static_shares:
        if unit not in units:
            problems.append(
                Problem(f"static share for the unknown billing unit {unit!r}", column="billing")
            )
    if settings.allocation == "static" and not settings.static_shares:
        problems.append(
            Problem("the static key needs [billing] static_shares per unit", column="billing")
        )
    if settings.balance_meter is not None and settings.balance_meter not in known:
        problems.append(
            Problem(
                f"balance meter {settings.balance_meter!r} is not a location of this site",
                column="billing",
            )
        )
    sources = billing_sources(site)
    for meter in settings.sources:
        if meter not in sources:
            problems.append(
                Problem(
                    f"[billing] sources names {meter!r}, which no local or battery tariff prices",
                    column="billing",
                    meter=meter,
                )
            )
    try:
        producer_units(site)
    except InvalidInput as error:
        problems.extend(error.problems)
    if settings.owner is None and site.units:
        covered = {c.unit for c in site.contracts}
        open_units = [u.id for u in site.units if u.id not in covered]
        if open_units:
            problems.append(
                Problem(
                    f"units {', '.join(open_units)} have no contract and [billing] owner is not "
                    "set: vacancy cannot be billed; set owner = '...' in [billing]",
                    column="billing",
                    severity="warning",
                )
            )
    return problems


# --------------------------------------------------------------------------------------------
# contracts and periods


@dataclass(frozen=True)
class ContractPeriod:
    """The part of a billing period one customer is billed for one unit (whole local days)."""

    unit: str
    customer: str
    first_day: date
    last_day: date
    vacancy: bool = False
    contract: Contract | None = None

    @property
    def days(self) -> int:
        return (self.last_day - self.first_day).days + 1


def contract_periods(site: Site, first_day: date, last_day: date) -> list[ContractPeriod]:
    """Per unit (in site order) the contracts and vacancies covering ``first_day`` ..
    ``last_day``: a tenant change gives two periods split at the local day boundary; days
    without a contract are vacancy billed to ``[billing] owner``.

    Raises :class:`~lastgang.errors.InvalidInput` for overlapping contracts, or vacancy when no
    owner is configured.
    """
    if last_day < first_day:
        raise InvalidInput(f"billing period {first_day} to {last_day} ends before it starts")
    problems = contract_problems(site)
    out: list[ContractPeriod] = []
    owner = site.billing.owner
    by_unit: dict[str, list[Contract]] = {}
    for contract in site.contracts:
        by_unit.setdefault(contract.unit, []).append(contract)
    for unit in site.units:
        contracts = sorted(by_unit.get(unit.id, []), key=lambda c: c.start)
        cursor = first_day
        pieces: list[ContractPeriod] = []
        for contract in contracts:
            lo = max(contract.start, first_day)
            hi = min(contract.end if contract.end is not None else last_day, last_day)
            if lo > hi:
                continue
            if cursor < lo:
                pieces.append(
                    ContractPeriod(unit.id, owner or "", cursor, lo - timedelta(days=1), True)
                )
            pieces.append(ContractPeriod(unit.id, contract.customer, lo, hi, False, contract))
            cursor = hi + timedelta(days=1)
        if cursor <= last_day:
            pieces.append(ContractPeriod(unit.id, owner or "", cursor, last_day, True))
        for piece in pieces:
            if piece.vacancy and owner is None:
                problems.append(
                    Problem(
                        f"unit {unit.id!r} has no contract from {piece.first_day} to "
                        f"{piece.last_day} (vacancy) and no [billing] owner is set to bill it; "
                        "add a contract or set owner in [billing]",
                        column="contracts",
                    )
                )
        out.extend(pieces)
    if problems:
        raise InvalidInput(f"cannot split {first_day} to {last_day} into contracts", problems)
    return out


def producer_units(site: Site) -> dict[str, str]:
    """Production meter -> the billing unit that lists it (who gets feed-in credits)."""
    out: dict[str, str] = {}
    problems: list[Problem] = []
    meters = {t.meter for t in site.tariffs if t.meter is not None}
    for unit in site.units:
        for meter in unit.meters:
            if meter in meters:
                if meter in out:
                    problems.append(
                        Problem(
                            f"production meter {meter!r} is listed by units {out[meter]!r} and "
                            f"{unit.id!r}; list it in one unit only",
                            column="units",
                            meter=meter,
                        )
                    )
                else:
                    out[meter] = unit.id
    if problems:
        raise InvalidInput("a production meter belongs to more than one unit", problems)
    return out


# --------------------------------------------------------------------------------------------
# bills


class LineKind(StrEnum):
    """What a line of a bill is for."""

    LOCAL = "local"
    BATTERY = "battery"
    GRID = "grid"
    BASE_FEE = "base-fee"
    FEED_IN = "feed-in"
    LOCAL_SALES = "local-sales"


_ORDER = {kind: k for k, kind in enumerate(LineKind)}


@dataclass(frozen=True)
class Line:
    """One line of a bill.

    Energy lines: ``quantity`` kWh (3 decimals, the unrounded ``energy_kwh`` billed to the Wh)
    x ``price`` per kWh. Base-fee lines: ``quantity`` days of a month of ``days_in_month`` days,
    ``amount = price x quantity / days_in_month``. Credits (feed-in, local sales) have negative
    amounts. ``first_day``/``last_day`` are the local days the line covers.
    """

    kind: LineKind
    item: str
    description: str
    first_day: date
    last_day: date
    quantity: Decimal
    unit: str
    price: Decimal
    amount: Decimal
    vat_rate: Decimal
    meter: str | None = None
    days_in_month: int | None = None
    energy_kwh: float | None = None


@dataclass(frozen=True)
class VatLine:
    """VAT of one rate: ``vat = round(rate x net)``, net = sum of the rounded line amounts."""

    rate: Decimal
    net: Decimal
    vat: Decimal


@dataclass(frozen=True)
class Bill:
    """What one customer owes for one unit for a contract period (or vacancy)."""

    unit: str
    customer: str
    first_day: date
    last_day: date
    vacancy: bool
    lines: tuple[Line, ...]
    vat: tuple[VatLine, ...]
    consumption_kwh: float = 0.0
    local_kwh: float = 0.0
    grid_kwh: float = 0.0
    contract: Contract | None = field(default=None, compare=False)

    @property
    def net(self) -> Decimal:
        return sum((line.amount for line in self.lines), Decimal(0))

    @property
    def vat_total(self) -> Decimal:
        return sum((v.vat for v in self.vat), Decimal(0))

    @property
    def total(self) -> Decimal:
        return self.net + self.vat_total


def vat_lines(lines: Sequence[Line]) -> tuple[VatLine, ...]:
    """VAT per rate (highest rate first): rate x sum of net line amounts, rounded half-up."""
    nets: dict[Decimal, Decimal] = {}
    for line in lines:
        nets[line.vat_rate] = nets.get(line.vat_rate, Decimal(0)) + line.amount
    return tuple(
        VatLine(rate, net, round_money(rate * net))
        for rate, net in sorted(nets.items(), key=lambda item: item[0], reverse=True)
    )


def _month_pieces(first: date, last: date) -> list[tuple[date, date, int]]:
    """``first`` .. ``last`` cut at month ends: (first, last, days in that calendar month)."""
    out: list[tuple[date, date, int]] = []
    day = first
    while day <= last:
        days_in_month = calendar.monthrange(day.year, day.month)[1]
        month_end = date(day.year, day.month, days_in_month)
        end = min(month_end, last)
        out.append((day, end, days_in_month))
        day = end + timedelta(days=1)
    return out


@functools.lru_cache(maxsize=16)
def _month_name(month: int) -> str:
    return calendar.month_name[month]  # formatted anew on every access otherwise


def fee_lines(fees: Sequence[Fee], unit: str, first_day: date, last_day: date) -> list[Line]:
    """Base-fee lines of a unit for ``first_day`` .. ``last_day``: per fee and calendar month,
    ``amount x days / days of the month`` (days where the fee is valid), rounded half-up."""
    lines: list[Line] = []
    for fee in fees:
        if not fee.applies_to(unit):
            continue
        lo = max(first_day, fee.valid_from) if fee.valid_from else first_day
        hi = min(last_day, fee.valid_to) if fee.valid_to else last_day
        if lo > hi:
            continue
        for start, end, days_in_month in _month_pieces(lo, hi):
            days = (end - start).days + 1
            amount = round_money(fee.amount * days / days_in_month)
            lines.append(
                Line(
                    kind=LineKind.BASE_FEE,
                    item=fee.id,
                    description=(
                        f"{fee.label()}, {_month_name(start.month)} {start.year}: "
                        f"{days}/{days_in_month} days"
                    ),
                    first_day=start,
                    last_day=end,
                    quantity=Decimal(days),
                    unit="days",
                    price=fee.amount,
                    amount=amount,
                    vat_rate=fee.vat,
                    days_in_month=days_in_month,
                )
            )
    return lines


#: a consumer's local and grid lines from :func:`_consumer_quantities`, and the tariff groups
#: they bill
_Quantities = tuple[list["Line"], frozenset[TariffKey]]
_NO_QUANTITIES: _Quantities = ([], frozenset())


@dataclass
class _PeriodContext:
    site: Site
    allocation: Allocation
    zi: ZoneInfo
    index: dict[TariffKey, IntArray]
    days: NDArray[np.generic]
    problems: list[Problem]
    #: a consumer's local and grid lines, made for all consumers at once
    #: (:func:`_consumer_quantities`): (unit, lo, hi) -> (the lines, the tariff groups billed)
    quantities: dict[tuple[str, int, int], _Quantities] = field(default_factory=dict)
    #: the fields of a line of one kind, tariff and days, all but its quantity, amount and
    #: energy (:func:`_template`): (kind, tariff index, first day, last day) -> the fields
    templates: dict[tuple[LineKind, int, date, date], dict[str, Any]] = field(default_factory=dict)
    #: (tariff group, lo, hi) -> the tariffs applying in the columns with their first and last day
    layouts: dict[tuple[TariffKey, int, int], list[tuple[int, date, date]]] = field(
        default_factory=dict
    )
    #: tariff group of each source, slots of each period, fee lines of each (fees, period):
    #: the same for every unit billed, computed once per run
    keys: dict[str, TariffKey] = field(default_factory=dict)
    slots: dict[tuple[date, date], tuple[int, int]] = field(default_factory=dict)
    fees: dict[tuple[tuple[int, ...], date, date], list[Line]] = field(default_factory=dict)
    #: consumption, local and grid energy of every consumer over the whole period, as Python
    #: floats (:func:`_period_totals`); None until a bill of the whole period needs them
    totals: tuple[list[float], list[float], list[float]] | None = None
    #: the place of each tariff and fee id in the site file (the order of a bill's lines)
    orders: tuple[dict[str, int], dict[str, int]] | None = None
    #: column ranges whose consumer sums (:meth:`Allocation.range_sums`) are taken in the pass
    #: that prices the consumers billed for the whole period
    sums: tuple[tuple[int, int], ...] = ()


def _energy_lines(
    ctx: _PeriodContext,
    key: TariffKey,
    energy: FloatArray,
    lo: int,
    hi: int,
    *,
    kind: LineKind,
    sign: int,
    what: str,
) -> list[Line]:
    """Lines of one tariff group for one energy series over allocation columns ``[lo, hi)``."""
    tariffs = ctx.site.tariffs
    index = ctx.index.get(key)
    start = ctx.allocation.start
    if index is None:
        if np.any(energy > 0):
            first = lo + int(np.flatnonzero(energy > 0)[0])
            ctx.problems.append(
                Problem(
                    f"{what} needs a {key.describe()} tariff, but none is configured",
                    meter=key.meter,
                    time=describe_slots([start + first], ctx.zi),
                )
            )
        return []
    part = index[lo:hi]
    overlap = part == OVERLAP
    # a hole matters only where there is energy to price; no feed-in tariff means no credit
    hole = (part == NO_TARIFF) & (energy > 0) & (kind is not LineKind.FEED_IN)
    for mask, text in ((overlap, "two tariffs apply (overlap)"), (hole, "no tariff applies")):
        if mask.any():
            ctx.problems.append(
                Problem(
                    f"{what}: {text} in the {key.describe()} tariffs; see `lastgang check`",
                    meter=key.meter,
                    time=describe_slots(start + lo + np.flatnonzero(mask), ctx.zi),
                )
            )
    if overlap.any() or hole.any():
        return []
    shifted = part + 2
    sums = np.bincount(shifted, weights=energy, minlength=len(tariffs) + 2)[2:]
    energies = np.asarray(sums, dtype=np.float64)[[j for j, _, _ in _layout(ctx, key, lo, hi)]]
    return _tariff_lines(ctx, key, energies.tolist(), lo, hi, kind=kind, sign=sign)


@functools.lru_cache(maxsize=16)
def _line_kind(kind: TariffKind) -> LineKind:
    """The kind of the lines a tariff kind gives (looked up once, not per line)."""
    return LineKind(kind.value)


def _layout(ctx: _PeriodContext, key: TariffKey, lo: int, hi: int) -> list[tuple[int, date, date]]:
    """The tariffs of a group that apply in the columns ``[lo, hi)`` (ascending), each with the
    first and last local day it applies; the same for every unit billed for those columns."""
    found = ctx.layouts.get((key, lo, hi))
    if found is None:
        part = ctx.index[key][lo:hi]
        days = ctx.days[lo:hi]
        present = np.bincount(part + 2, minlength=len(ctx.site.tariffs) + 2)[2:]
        found = []
        for j in np.flatnonzero(present).tolist():
            where = np.flatnonzero(part == j)
            found.append((j, days[where[0]].item(), days[where[-1]].item()))
        ctx.layouts[(key, lo, hi)] = found
    return found


def _template(
    ctx: _PeriodContext, kind: LineKind, j: int, first_day: date, last_day: date
) -> dict[str, Any]:
    """The fields of a line of tariff ``j`` of this kind over these days, in field order, with
    its quantity, amount and energy still None: the same for every unit, made once per run."""
    key = (kind, j, first_day, last_day)
    found = ctx.templates.get(key)
    if found is None:
        tariff = ctx.site.tariffs[j]
        source = f" from {tariff.meter}" if tariff.meter is not None else ""
        if kind is LineKind.LOCAL_SALES:
            description = f"Local energy sold{source} ({tariff.label()})"
        else:
            description = tariff.name or f"{tariff.kind.label}{source}"
        found = ctx.templates[key] = {
            "kind": kind,
            "item": tariff.id,
            "description": description,
            "first_day": first_day,
            "last_day": last_day,
            "quantity": None,
            "unit": "kWh",
            "price": tariff.price,
            "amount": None,
            "vat_rate": tariff.vat,
            "meter": tariff.meter,
            "days_in_month": None,
            "energy_kwh": None,
        }
    return found


def _energy_line(
    template: dict[str, Any], quantity: Decimal, amount: Decimal, energy_kwh: float
) -> Line:
    """The line of a :func:`_template` with its quantity, amount and energy."""
    values = template.copy()
    values["quantity"] = quantity
    values["amount"] = amount
    values["energy_kwh"] = energy_kwh
    return record_of(Line, values)


def _tariff_lines(
    ctx: _PeriodContext,
    key: TariffKey,
    energies: Sequence[float],
    lo: int,
    hi: int,
    *,
    kind: LineKind,
    sign: int,
) -> list[Line]:
    """One line per tariff of the group that applies in ``[lo, hi)`` (its :func:`_layout`),
    billing ``energies[k]`` kWh at the layout's ``k``-th tariff."""
    tariffs = ctx.site.tariffs
    lines: list[Line] = []
    for (j, first_day, last_day), energy_kwh in zip(
        _layout(ctx, key, lo, hi), energies, strict=True
    ):
        quantity = to_decimal_kwh(energy_kwh)
        amount = round_money(quantity * tariffs[j].price)
        template = _template(ctx, kind, j, first_day, last_day)
        lines.append(_energy_line(template, quantity, amount if sign > 0 else -amount, energy_kwh))
    return lines


def _slots(ctx: _PeriodContext, period: ContractPeriod) -> tuple[int, int]:
    key = (period.first_day, period.last_day)
    found = ctx.slots.get(key)
    if found is None:
        found = ctx.slots[key] = period_slots(period.first_day, period.last_day, ctx.zi)
    return found


def _fee_lines(ctx: _PeriodContext, period: ContractPeriod) -> list[Line]:
    """:func:`fee_lines` of a period; units with the same fees and days share them."""
    fees = [fee for fee in ctx.site.fees if fee.applies_to(period.unit)]
    key = (tuple(id(fee) for fee in fees), period.first_day, period.last_day)
    found = ctx.fees.get(key)
    if found is None:
        found = ctx.fees[key] = fee_lines(fees, period.unit, period.first_day, period.last_day)
    return list(found)


def _consumer_quantities(
    ctx: _PeriodContext, periods: Sequence[ContractPeriod]
) -> dict[tuple[str, int, int], _Quantities]:
    """The consumers' local and grid lines (their energy per tariff, billed), for every
    consumer billed for the same columns ``[lo, hi)`` at once.

    A line's energy is the sum over its slots of the consumer's local energy times the source's
    share (or of its grid energy): a product of the consumers' ``[M, T]`` array with one weight
    column per tariff (the share where the tariff applies, else 0). One matrix product instead of
    one pass per consumer, source and tariff (``bench/README.md``). The products go into one
    ``[units, columns]`` array, a column per tariff that applies (not per tariff of the site:
    with 100 sources and 200 tariffs that would be 100 x 200 numbers per unit). The lines are
    made from it: each column's fields from its :func:`_template`, the quantities and amounts of
    the whole array at once (:func:`~lastgang.money.priced_kwhs`, the same Decimals as line by
    line). Tariff groups with no tariff, a hole or an overlap in the columns are left out:
    :func:`_energy_lines` reports those."""
    allocation = ctx.allocation
    groups: dict[tuple[int, int], list[str]] = {}
    for period in periods:
        if allocation.has_consumer(period.unit):
            start, stop = _slots(ctx, period)
            lo, hi = start - allocation.start, stop - allocation.start
            groups.setdefault((lo, hi), []).append(period.unit)
    grid_key = TariffKey(TariffKind.GRID, None)
    out: dict[tuple[str, int, int], _Quantities] = {}
    for (lo, hi), units in groups.items():
        local_cols: list[tuple[TariffKey, dict[str, Any], FloatArray]] = []
        for s, meter in enumerate(allocation.sources):
            key = _source_key(ctx.site, meter, ctx.keys)
            part = _clean(ctx, key, lo, hi)
            if part is not None:
                share = allocation.source_share[s, lo:hi]
                kind = _line_kind(key.kind)
                for j, first, last in _layout(ctx, key, lo, hi):
                    template = _template(ctx, kind, j, first, last)
                    local_cols.append((key, template, np.where(part == j, share, 0.0)))
        grid_cols: list[tuple[TariffKey, dict[str, Any], FloatArray]] = []
        part = _clean(ctx, grid_key, lo, hi)
        if part is not None:
            for j, first, last in _layout(ctx, grid_key, lo, hi):
                template = _template(ctx, LineKind.GRID, j, first, last)
                grid_cols.append((grid_key, template, (part == j).astype(np.float64)))
        rows = [allocation.consumer_index(u) for u in units]
        # every unit's energy per column: local columns first, then the grid's
        n_local = len(local_cols)
        found = np.zeros((len(units), n_local + len(grid_cols)))
        local_weights = np.stack([w for _, _, w in local_cols], axis=1) if local_cols else None
        grid_weights = np.stack([w for _, _, w in grid_cols], axis=1) if grid_cols else None
        # the local and grid energy of a block of units, made and multiplied while they are in
        # the cache (a row's product is the same whichever rows are beside it); blocks of more
        # rows when there are many columns, so that the weights are read fewer times
        size = _product_rows(n_local + len(grid_cols))
        # the sums of the group's own columns (its bills' totals) and, for the consumers of the
        # whole period, those of the ranges wanted later, from the same blocks
        sums = ctx.sums if (lo, hi) == (0, allocation.slots) else ((lo, hi),)
        for at, local, grid in allocation.blocks(rows, lo, hi, size=size, sums=sums):
            if local_weights is not None:
                found[at, :n_local] = local @ local_weights
            if grid_weights is not None:
                found[at, n_local:] = grid @ grid_weights
        # every unit's line of every column, the quantities and amounts rounded for all at
        # once (the same Decimals as line by line)
        columns = local_cols + grid_cols
        billed = frozenset(key for key, _, _ in columns)
        templates = [template for _, template, _ in columns]
        quantities, amounts = priced_kwhs(found, [t["price"] for t in templates])
        width = len(columns)
        for r, (unit, energies) in enumerate(zip(units, found.tolist(), strict=True)):
            base = r * width
            lines = [
                _energy_line(template, quantities[base + c], amounts[base + c], energies[c])
                for c, template in enumerate(templates)
            ]
            out[(unit, lo, hi)] = (lines, billed)
    return out


def _product_rows(columns: int) -> int:
    """Consumer rows per block of :func:`_consumer_quantities`: more rows for more weight
    columns, so that the product reads its weights fewer times, but few for few columns, where
    the block's local and grid energy stay in the cache. Measured over a year of quarter hours
    (``bench/README.md``, fifth round): 8 rows were best for 14 columns, 16 for 28, 32 for 44
    and 64, 32 to 64 for 104 (64 at 9,900 consumers)."""
    if columns < 20:
        return 8
    if columns < 36:
        return 16
    return 32 if columns < 96 else 64


def _clean(ctx: _PeriodContext, key: TariffKey, lo: int, hi: int) -> IntArray | None:
    """The tariff index of a group over ``[lo, hi)`` when exactly one tariff applies in every
    column (no hole, no overlap), else None."""
    index = ctx.index.get(key)
    if index is None:
        return None
    part = index[lo:hi]
    return part if not len(part) or part.min() >= 0 else None


def _source_key(site: Site, meter: str, cache: dict[str, TariffKey] | None = None) -> TariffKey:
    if cache is not None:
        found = cache.get(meter)
        if found is None:
            found = cache[meter] = _source_key(site, meter)
        return found
    kinds = [
        t.kind
        for t in site.tariffs
        if t.meter == meter and t.kind in (TariffKind.LOCAL, TariffKind.BATTERY)
    ]
    return TariffKey(kinds[0] if kinds else TariffKind.LOCAL, meter)


def _period_totals(ctx: _PeriodContext) -> tuple[list[float], list[float], list[float]]:
    if ctx.totals is None:
        # with the other ranges wanted (the first is the whole period's): a consumer that no
        # pass took them for is then made once for all of them
        cons, local, grid = ctx.allocation.range_sums(ctx.sums)
        ctx.totals = (cons[:, 0].tolist(), local[:, 0].tolist(), grid[:, 0].tolist())
    return ctx.totals


def _bill(ctx: _PeriodContext, period: ContractPeriod, producers: dict[str, str]) -> Bill:
    site, allocation = ctx.site, ctx.allocation
    start, stop = _slots(ctx, period)
    lo, hi = start - allocation.start, stop - allocation.start
    lines: list[Line] = []
    consumption = local_total = grid_total = 0.0
    who = f"unit {period.unit!r}"
    if allocation.has_consumer(period.unit):
        i = allocation.consumer_index(period.unit)
        made: list[FloatArray] = []

        def local_and_grid(i: int = i, lo: int = lo, hi: int = hi) -> list[FloatArray]:
            """The unit's local and grid energy, made when a line needs them slot by slot."""
            if not made:
                local = allocation.local_rows(i, lo, hi)
                made.extend((local, allocation.grid_rows(i, lo, hi, local)))
            return made

        if lo == 0 and hi == allocation.slots:  # most units: all consumers at once
            totals = _period_totals(ctx)
            consumption, local_total, grid_total = totals[0][i], totals[1][i], totals[2][i]
        else:
            kept = allocation.kept_sums(i, lo, hi)  # taken with the group's lines
            if kept is None:
                local, grid = local_and_grid()
                kept = (
                    float(allocation.consumption[i, lo:hi].sum()),
                    float(local.sum()),
                    float(grid.sum()),
                )
            consumption, local_total, grid_total = kept
        # the lines of the groups with one tariff in every slot, made for all consumers at
        # once; the others' here, where their holes and overlaps are reported
        prepared, billed = ctx.quantities.get((period.unit, lo, hi), _NO_QUANTITIES)
        lines += prepared
        for s, meter in enumerate(allocation.sources):
            key = _source_key(site, meter, ctx.keys)
            if key in billed:
                continue
            energy = local_and_grid()[0] * allocation.source_share[s, lo:hi]
            lines += _energy_lines(
                ctx,
                key,
                energy,
                lo,
                hi,
                kind=_line_kind(key.kind),
                sign=1,
                what=f"local energy of {who}",
            )
        grid_key = TariffKey(TariffKind.GRID, None)
        if grid_key not in billed:
            lines += _energy_lines(
                ctx,
                grid_key,
                local_and_grid()[1],
                lo,
                hi,
                kind=LineKind.GRID,
                sign=1,
                what=f"grid energy of {who}",
            )
    lines += _fee_lines(ctx, period)
    for s, meter in enumerate(allocation.sources):
        if producers.get(meter) != period.unit:
            continue
        feed_in = TariffKey(TariffKind.FEED_IN, meter)
        if feed_in in ctx.index:
            lines += _energy_lines(
                ctx,
                feed_in,
                allocation.surplus[s, lo:hi],
                lo,
                hi,
                kind=LineKind.FEED_IN,
                sign=-1,
                what=f"surplus of {meter!r}",
            )
        if site.billing.credit_local_sales:
            lines += _energy_lines(
                ctx,
                _source_key(site, meter, ctx.keys),
                allocation.self_consumed[s, lo:hi],
                lo,
                hi,
                kind=LineKind.LOCAL_SALES,
                sign=-1,
                what=f"local sales of {meter!r}",
            )
    if ctx.orders is None:
        ctx.orders = (
            {t.id: k for k, t in enumerate(site.tariffs)},
            {f.id: k for k, f in enumerate(site.fees)},
        )
    tariff_order, fee_order = ctx.orders
    lines.sort(
        key=lambda line: (
            _ORDER[line.kind],
            (fee_order if line.kind is LineKind.BASE_FEE else tariff_order).get(line.item, 0),
            line.first_day,
        )
    )
    return Bill(
        unit=period.unit,
        customer=period.customer,
        first_day=period.first_day,
        last_day=period.last_day,
        vacancy=period.vacancy,
        lines=tuple(lines),
        vat=vat_lines(lines),
        consumption_kwh=consumption,
        local_kwh=local_total,
        grid_kwh=grid_total,
        contract=period.contract,
    )


def price_site(
    site: Site,
    allocation: Allocation,
    first_day: date,
    last_day: date,
    *,
    sums: Sequence[tuple[int, int]] = (),
) -> list[Bill]:
    """One :class:`Bill` per contract period (and vacancy) of every unit for the local days
    ``first_day`` .. ``last_day``, from an allocation of exactly that period's slots.

    ``sums``: column ranges of the allocation whose consumer sums (:meth:`Allocation.range_sums`)
    are wanted later, such as an invoice's months: they are taken, with the whole period's, in
    the pass that makes the lines of the consumers billed for the whole period, which then makes
    their local and grid energy once for both (the other consumers' sums in a pass of their own
    when they are asked for).

    Consumer units (rows of the allocation) get local lines per source at that source's
    ``local``/``battery`` tariff and grid lines at the grid tariffs; every unit gets its base
    fees; the unit listing a production meter gets feed-in credits for its surplus (and credits
    for local sales with ``[billing] credit_local_sales``).

    Raises :class:`~lastgang.errors.InvalidInput` with every problem found: energy in a slot
    where no tariff applies or two do (named in local time), overlapping contracts, vacancy
    without an owner, an allocation that does not match the period or names a consumer or
    source twice.
    """
    zi = _tz(site.site.timezone)
    start, stop = period_slots(first_day, last_day, zi)
    if allocation.start != start or allocation.stop != stop:
        raise InvalidInput(
            f"the allocation covers slots {allocation.start}..{allocation.stop} but "
            f"{first_day} to {last_day} in {zi.key} is {start}..{stop}; allocate the period "
            "being billed"
        )
    units = {unit.id for unit in site.units}
    unknown = [c for c in allocation.consumers if c not in units]
    if unknown:
        raise InvalidInput(f"the allocation has consumers that are no billing unit: {unknown}")
    for what, names in (("consumers", allocation.consumers), ("sources", allocation.sources)):
        if len(set(names)) != len(names):
            repeated = sorted(name for name, n in Counter(names).items() if n > 1)
            raise InvalidInput(f"the allocation names {what} more than once: {repeated}")
    periods = contract_periods(site, first_day, last_day)
    producers = producer_units(site)
    slots = np.arange(start, stop, dtype=np.int64)
    ctx = _PeriodContext(
        site=site,
        allocation=allocation,
        zi=zi,
        index=tariff_slots(site.tariffs, start, stop, zi),
        days=local_date_of_slots(slots, zi),
        problems=[],
        sums=((0, allocation.slots), *sums),
    )
    ctx.quantities = _consumer_quantities(ctx, periods)
    bills = [_bill(ctx, period, producers) for period in periods]
    if ctx.problems:
        raise InvalidInput(f"cannot price {first_day} to {last_day}", ctx.problems)
    return bills
