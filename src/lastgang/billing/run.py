"""A billing run of one site for one period, as a pure function (no I/O).

:func:`bill_site_period` takes the site's configuration and the stored load profiles of its
metering locations and returns a :class:`~lastgang.billing.invoice.Run`:

1. **Concept** (SM-2, SM-3): :func:`~lastgang.concept.evaluate.evaluate_concept` swaps the
   values of inverted meters and computes the virtual meters per quarter hour, with the worst
   quality of their inputs (Q-1).
2. **Inputs of the allocation**: per consumer unit the import of its ``consumer`` meters, per
   billed source (:func:`~lastgang.allocation.billing_sources`) the export of the production
   meter (production), and in balance-meter mode the export at the grid connection. A quarter
   hour without a value counts as 0 kWh; it is named in the invoice's data quality statement and
   refuses a final run (Q-1).
3. **Allocation** (SM-5, EC-1) with :func:`~lastgang.allocation.allocate_site` and **pricing**
   (SM-6) with :func:`~lastgang.pricing.price_site`: one bill per contract period or vacancy.
4. **Invoices**: lines, VAT, totals, the energy from substitute values, a breakdown by month,
   the meters and metering point IDs used with their raw batches, and a short explanation.
5. **Reconciliation** (:func:`reconcile`) and **quality issues** (:func:`quality_issues`).

The run is a draft unless ``status="final"``; a final run raises :class:`FinalRefused` when a
value it depends on is L3 or missing. Numbering (run, version) and storing are the caller's
(:mod:`lastgang.billing_service`).
"""

from __future__ import annotations

import calendar
import functools
import gc
import hashlib
import json
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from numpy.typing import NDArray

from lastgang.allocation import (
    Allocation,
    allocate_site,
    billing_sources,
    consumer_meters,
    consumer_units,
    finite_or_zero,
)
from lastgang.billing.invoice import (
    DataQuality,
    Invoice,
    InvoiceLine,
    MeterUsed,
    MonthRow,
    QualityIssue,
    ReconciliationReport,
    ReconciliationRow,
    Run,
    RunStatus,
    VatAmount,
    invoice_number,
    to_jsonable,
)
from lastgang.concept.evaluate import ConceptResult, evaluate_concept
from lastgang.concept.formula import parse_formula, references
from lastgang.concept.model import BillingUnit, Location, Role, Site, VirtualMeter, to_instant
from lastgang.concept.tariffs import AllocationKey, TariffKind
from lastgang.errors import InvalidInput, Problem
from lastgang.ids import is_metering_point_id, parse_metering_point_id
from lastgang.money import (
    format_kwh,
    format_price,
    percent,
    percents,
    to_decimal_kwh,
    to_decimal_kwhs,
)
from lastgang.pricing import Bill, LineKind, price_site, producer_units
from lastgang.profiles.types import LoadProfile
from lastgang.quality import Quality
from lastgang.records import record
from lastgang.timegrid import SLOT_SECONDS, end_label, period_slots, to_epoch, zone

__all__ = [
    "DEFAULT_THRESHOLD_PERCENT",
    "FinalRefused",
    "PeriodResult",
    "Progress",
    "RunInputs",
    "bill_site_period",
    "compute_period",
    "dependency_locations",
    "make_run",
    "quality_issues",
    "reconcile",
    "used_batches",
]

FloatArray = NDArray[np.float64]
QualityArray = NDArray[np.int8]

Progress = Callable[[str, int, int], None]
"""``progress(what, done, total)``, called between the stages of a run."""

#: reconciliation differences above this many percent are flagged
DEFAULT_THRESHOLD_PERCENT = Decimal("1")

_STAGES = 4

# the quality codes as plain ints: numpy compares an array with an int enum member about ten
# times slower than with an int (it is converted on every comparison)
_L1, _L2, _L3, _MISSING = (int(q) for q in (Quality.L1, Quality.L2, Quality.L3, Quality.MISSING))


class FinalRefused(InvalidInput):
    """A final run was asked for a period that still holds L3 substitute values or missing
    values (Q-1). ``problems`` names each metering point with its count of quarter hours and the
    first and last period-end label."""


@dataclass(frozen=True)
class RunInputs:
    """What a run read, for its fingerprint (provenance): the site version and the SHA-256 of its
    TOML text, and the raw batches by number (``{"sha256": ..., "source": ..., ...}``)."""

    site_version: int | None = None
    site_sha256: str | None = None
    batches: Mapping[int, Mapping[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class PeriodResult:
    """The numbers of a site-period before they become invoices.

    ``consumption[M, T]`` (rows = ``allocation.consumers``) and ``production[S, T]`` are the
    allocation inputs with missing values as 0; ``consumer_quality[M, T]`` is the worst quality
    of each consumer unit's own meters, ``split_quality[T]`` the worst quality of what decides
    the local/grid split of a slot (:func:`_split_quality`); ``source_quality[S, T]`` per source.
    """

    site: Site
    first_day: date
    last_day: date
    start: int
    stop: int
    concept: ConceptResult
    allocation: Allocation
    bills: tuple[Bill, ...]
    consumer_quality: QualityArray
    source_quality: QualityArray
    split_quality: QualityArray
    #: :func:`_profile_digest` of the run's inputs, computed on another core from the moment
    #: the concept is evaluated (None: computed when the run is made)
    profiles_sha256: Future[str] | None = field(default=None, repr=False)
    #: distinct batches per (location, first column, stop column), see _distinct_batches
    batches_memo: dict[tuple[str, int, int], list[int]] = field(
        default_factory=dict, init=False, repr=False
    )

    @property
    def tz(self) -> ZoneInfo:
        return zone(self.site.site.timezone)


# --------------------------------------------------------------------------------------------
# small helpers


def _worst_rows(concept: ConceptResult, ids: Sequence[str]) -> QualityArray:
    """Worst quality per slot over some rows (L1 when there are none)."""
    out = np.full(len(concept), Quality.L1, dtype=np.int8)
    for meter in ids:
        np.maximum(out, concept.quality[concept.index(meter)], out=out)
    return out


@dataclass(frozen=True)
class _SiteFacts:
    """Lookups every unit and invoice of a run asks for, built once per site (a run over 1,000
    units would otherwise rebuild them a million times; see ``bench/README.md``). Read only."""

    site: Site
    meter_ids: dict[str, Location | VirtualMeter]
    units: dict[str, BillingUnit]
    sources: tuple[str, ...]

    @functools.cached_property
    def producers(self) -> dict[str, str]:
        """:func:`~lastgang.pricing.producer_units` (raises as it does)."""
        return producer_units(self.site)

    @functools.cached_property
    def owned_sources(self) -> dict[str, tuple[str, ...]]:
        """The production meters each unit gets the feed-in credit of (by unit id, in the order
        of :attr:`producers`); units without are not listed."""
        out: dict[str, list[str]] = {}
        for meter, unit in self.producers.items():
            out.setdefault(unit, []).append(meter)
        return {unit: tuple(meters) for unit, meters in out.items()}

    @functools.cached_property
    def sources_text(self) -> str:
        """The billed sources by name, as an invoice's explanation lists them."""
        return " and ".join(self.meter_ids[s].name or s for s in self.sources)

    @functools.cached_property
    def consumer_meters(self) -> dict[str, tuple[str, ...]]:
        """The meters of role ``consumer`` of every unit (by unit id; none for a unit that
        does not consume)."""
        found = consumer_meters(self.site)
        return {unit_id: found.get(unit_id, ()) for unit_id in self.units}


_FACTS: dict[int, _SiteFacts] = {}


def _facts(site: Site) -> _SiteFacts:
    found = _FACTS.get(id(site))
    if found is not None and found.site is site:
        return found
    units: dict[str, BillingUnit] = {}
    for unit in site.units:
        units.setdefault(unit.id, unit)
    facts = _SiteFacts(site, site.meter_ids(), units, billing_sources(site))
    if len(_FACTS) >= 8:
        _FACTS.clear()
    _FACTS[id(site)] = facts
    return facts


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector paused: the bills and invoices of a run are some
    hundred thousand objects that all stay alive (lines, Decimals, month rows), which the
    collector would otherwise walk again and again while they are made."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


@functools.lru_cache(maxsize=4096)
def _period_slots(first: date, last: date, tz: ZoneInfo) -> tuple[int, int]:
    return period_slots(first, last, tz)


def _distinct(values: NDArray[Any]) -> list[int]:
    """The distinct values of an integer array, ascending, taken where the array changes (batch
    and meter numbers come in long runs) instead of sorting every value."""
    if not len(values):
        return []
    heads = values[np.flatnonzero(values[1:] != values[:-1]) + 1]
    return sorted({int(values[0]), *heads.tolist()})


def _distinct_batches(result: PeriodResult, location: str, lo: int, hi: int) -> list[int]:
    """:func:`_distinct` of the batches of a location's profile in the columns ``[lo, hi)``,
    kept with the result (a meter's batches over the whole period are asked for by its invoice
    and by the run's provenance). Empty without a profile."""
    key = (location, lo, hi)
    found = result.batches_memo.get(key)
    if found is None:
        src = result.concept.sources.get(location)
        found = [] if src is None else _distinct(src.batch[lo:hi])
        result.batches_memo[key] = found
    return found


def _rows(matrix: NDArray[Any], idx: Sequence[int]) -> NDArray[Any]:
    """``matrix[idx]``, as a view without copying when the rows are consecutive (as the
    consumers of a site usually are: a site-year of 1,000 of them is 280 MB)."""
    if idx and list(idx) == list(range(idx[0], idx[0] + len(idx))):
        return matrix[idx[0] : idx[0] + len(idx)]
    return matrix[list(idx)]


def _single_rows(concept: ConceptResult, unit_meters: Sequence[list[str]]) -> list[int] | None:
    """The concept rows of units with one meter each when they follow each other, else None."""
    if not unit_meters or any(len(meters) != 1 for meters in unit_meters):
        return None
    rows = [concept.index(meters[0]) for meters in unit_meters]
    if rows != list(range(rows[0], rows[0] + len(rows))):
        return None
    return rows


def _consumer_rows(concept: ConceptResult, unit_meters: Sequence[list[str]]) -> FloatArray | None:
    """The consumption of units with one meter each whose rows follow each other in the concept
    and hold no missing value: those rows themselves (``+ 0.0`` in place, as adding them to 0
    gives), without a copy of the whole block. None otherwise."""
    rows = _single_rows(concept, unit_meters)
    if rows is None:
        return None
    block = concept.import_kwh[rows[0] : rows[0] + len(rows)]
    # a finite sum has no NaN or infinity among its terms (one pass instead of min and max;
    # a sum that overflows goes the general way, which gives the same)
    if not math.isfinite(float(block.sum())):
        return None  # missing values count as 0: sum them the general way
    if block.flags.writeable:
        block += 0.0  # -0.0 -> 0.0, as 0.0 + x
    elif block.view(np.int64).min() < 0:  # a sign bit set: signbit(block).any(), no mask
        # the concept's rows are the stored profiles themselves (read only): a copy where
        # adding to 0 changes a value (-0.0)
        block = block + 0.0
    return block


def _unit(site: Site, unit_id: str) -> BillingUnit:
    return _facts(site).units[unit_id]


def _consumer_meters(site: Site, unit: BillingUnit) -> list[str]:
    facts = _facts(site)
    if facts.units.get(unit.id) is unit:
        return list(facts.consumer_meters[unit.id])
    known = facts.meter_ids
    return [m for m in unit.meters if m in known and known[m].role is Role.CONSUMER]


@functools.lru_cache(maxsize=65536)
def _dotted(text: str | None) -> str | None:
    if not text:
        return None
    return parse_metering_point_id(text).dotted if is_metering_point_id(text) else text


def _location_ids(location: Location) -> tuple[str, ...]:
    mp = location.metering_points
    return tuple(t for t in (_dotted(mp.import_), _dotted(mp.export)) if t)


def _metering_points_of(site: Site, meter: str) -> tuple[str, ...]:
    """Dotted metering point IDs of a location; a virtual meter has the IDs of its real parent
    (TOR-4.1v)."""
    known = _facts(site).meter_ids
    item = known.get(meter)
    if isinstance(item, Location):
        return _location_ids(item)
    if isinstance(item, VirtualMeter):
        parent = known.get(item.parent)
        if isinstance(parent, Location):
            return _location_ids(parent)
    return ()


def dependency_locations(site: Site, meters: Iterable[str]) -> list[str]:
    """The metering locations behind some meters: a location stands for itself, a virtual meter
    for the locations its formula uses (recursively). In site order, each once."""
    known = _facts(site).meter_ids
    found: set[str] = set()
    seen: set[str] = set()
    stack = list(meters)
    while stack:
        meter = stack.pop()
        if meter in seen:
            continue
        seen.add(meter)
        item = known.get(meter)
        if isinstance(item, Location):
            found.add(meter)
        elif isinstance(item, VirtualMeter):
            stack.extend(ref.id for ref in references(parse_formula(item.formula)))
    return [loc.id for loc in site.locations if loc.id in found]


def _billing_meters(site: Site) -> list[str]:
    """Every meter the invoices depend on: consumer meters of consumer units, billed sources, the
    balance meter."""
    meters: list[str] = []
    for unit_id in consumer_units(site):
        meters += _consumer_meters(site, _unit(site, unit_id))
    meters += _facts(site).sources
    if site.billing.balance_meter is not None:
        meters.append(site.billing.balance_meter)
    return list(dict.fromkeys(meters))


def _label_range(slots: NDArray[np.int64], tz: ZoneInfo) -> tuple[str, str]:
    return end_label(int(slots[0]), tz), end_label(int(slots[-1]), tz)


@functools.lru_cache(maxsize=4096)
def _period_labels(start: int, stop: int, tz: ZoneInfo) -> tuple[str, str]:
    """Labels of the first and last slot of ``[start, stop)`` (the same for most invoices)."""
    return _label_range(np.arange(start, stop, dtype=np.int64), tz)


@functools.lru_cache(maxsize=4096)
def _month_columns(first: date, last: date, tz: ZoneInfo) -> tuple[tuple[int, int], ...]:
    """The columns of each month piece of ``first`` .. ``last``, counted from its first slot."""
    start = _period_slots(first, last, tz)[0]
    return tuple(
        (a - start, b - start)
        for a, b in (_period_slots(x, y, tz) for x, y in _month_pieces(first, last))
    )


@functools.lru_cache(maxsize=4096)
def _month_labels(first: date, last: date) -> tuple[str, ...]:
    """``YYYY-MM`` of each month piece of ``first`` .. ``last``."""
    return tuple(f"{a:%Y-%m}" for a, _ in _month_pieces(first, last))


@functools.lru_cache(maxsize=4096)
def _month_pieces(first: date, last: date) -> tuple[tuple[date, date], ...]:
    out: list[tuple[date, date]] = []
    day = first
    while day <= last:
        end = min(date(day.year, day.month, calendar.monthrange(day.year, day.month)[1]), last)
        out.append((day, end))
        day = end + timedelta(days=1)
    return tuple(out)


_ZERO_KWH = to_decimal_kwh(0.0)


def _kwh(value: float) -> Decimal:
    value = float(value)
    return _ZERO_KWH if value == 0 else to_decimal_kwh(value)  # many month sums are 0


def _split_quality(
    concept: ConceptResult,
    split_meters: Sequence[str],
    consumer_quality: QualityArray,
    allocation: Allocation,
) -> QualityArray:
    """Worst quality per slot of everything the local/grid split depends on: the production
    meters and the balance meter, and, in slots with production available, every consumer
    (the share ``available / total consumption`` depends on all of them, SM-5)."""
    out = _worst_rows(concept, split_meters)
    if len(consumer_quality):
        everyone = consumer_quality.max(axis=0)
        np.maximum(out, np.where(allocation.available > 0, everyone, _L1), out=out)
    return out


# --------------------------------------------------------------------------------------------
# the numbers


def compute_period(
    site: Site,
    profiles: Mapping[str, LoadProfile],
    first_day: date,
    last_day: date,
    *,
    progress: Progress | None = None,
) -> PeriodResult:
    """Concept, allocation and pricing of ``site`` for the local days ``first_day`` ..
    ``last_day`` from the stored ``profiles`` (location id -> profile; a location without one is
    missing). Missing values count as 0 kWh (see :func:`quality_issues`)."""
    tz = zone(site.site.timezone)
    start, stop = period_slots(first_day, last_day, tz)

    def step(what: str, done: int) -> None:
        if progress is not None:
            progress(what, done, _STAGES)

    step("evaluating the measurement concept", 0)
    concept = evaluate_concept(site, profiles, start, stop)
    # SHA-256 over the profiles read (900 MB for a site-year of 1,000 metering points) runs on
    # another core while allocation, pricing and the invoices are computed: hashlib releases
    # the GIL, and make_run takes the digest when it needs it
    hasher = ThreadPoolExecutor(max_workers=1)
    digest = hasher.submit(_digest_of, site, concept)
    hasher.shutdown(wait=False)
    step("allocating local production", 1)
    units = consumer_units(site)
    consumption: dict[str, FloatArray] = {}
    unit_meters = [_consumer_meters(site, _unit(site, unit_id)) for unit_id in units]
    # one [units, slots] array (rows handed over as views: allocate_site takes it as it is)
    totals = _consumer_rows(concept, unit_meters)
    if totals is None:
        totals = np.zeros((len(units), stop - start))
        for i, meters in enumerate(unit_meters):
            for meter in meters:
                totals[i] += finite_or_zero(concept.import_kwh[concept.index(meter)])
    rows = _single_rows(concept, unit_meters)
    if rows is not None:  # one meter per unit, consecutive rows: all units in one pass
        consumer_quality = np.maximum(concept.quality[rows[0] : rows[0] + len(rows)], _L1)
    else:
        consumer_quality = np.full((len(units), stop - start), Quality.L1, dtype=np.int8)
    for i, (unit_id, meters) in enumerate(zip(units, unit_meters, strict=True)):
        consumption[unit_id] = totals[i]
        if rows is None:
            consumer_quality[i] = _worst_rows(concept, meters)
    sources = billing_sources(site)
    production = {s: finite_or_zero(concept.export_kwh[concept.index(s)]) for s in sources}
    source_quality = np.full((len(sources), stop - start), Quality.L1, dtype=np.int8)
    for k, source in enumerate(sources):
        source_quality[k] = concept.quality[concept.index(source)]
    balance = site.billing.balance_meter
    balance_export = None
    split_meters = list(sources)
    if balance is not None:
        balance_export = finite_or_zero(concept.export_kwh[concept.index(balance)])
        split_meters.append(balance)
    allocation = allocate_site(
        site, consumption, production, balance_export=balance_export, start=start
    )
    step("pricing", 2)
    # the whole period's and each month's sums of every consumer, taken in the pass that prices
    # the consumers (it makes their local and grid energy once for both): the bills of
    # whole-period units take their totals from them, and their invoices their month rows
    # (Allocation.range_sums keeps them, and sums those of the consumers with a contract
    # change in a pass of their own)
    months = [(0, stop - start), *_month_columns(first_day, last_day, tz)]
    with _collector_paused():
        bills = price_site(site, allocation, first_day, last_day, sums=months)
    allocation.range_sums(months)
    step("building the invoices", 3)
    return PeriodResult(
        site=site,
        first_day=first_day,
        last_day=last_day,
        start=start,
        stop=stop,
        concept=concept,
        allocation=allocation,
        bills=tuple(bills),
        consumer_quality=consumer_quality,
        source_quality=source_quality,
        split_quality=_split_quality(concept, split_meters, consumer_quality, allocation),
        profiles_sha256=digest,
    )


def quality_issues(result: PeriodResult) -> list[QualityIssue]:
    """Metering locations the invoices depend on (:func:`dependency_locations` of the consumer
    meters, billed sources and balance meter) that hold L3 or missing values in the period: what
    a final run refuses (Q-1)."""
    site, concept, tz = result.site, result.concept, result.tz
    out: list[QualityIssue] = []
    for loc_id in dependency_locations(site, _billing_meters(site)):
        q = concept.quality[concept.index(loc_id)]
        bad = np.flatnonzero(q >= _L3)
        if not len(bad):
            continue
        location = site.location(loc_id)
        first, last = _label_range(result.start + bad, tz)
        out.append(
            QualityIssue(
                location=loc_id,
                name=location.name or loc_id,
                metering_points=_location_ids(location),
                l3_slots=int(np.count_nonzero(q == _L3)),
                missing_slots=int(np.count_nonzero(q == _MISSING)),
                first_label=first,
                last_label=last,
            )
        )
    return out


# --------------------------------------------------------------------------------------------
# reconciliation


def reconcile(
    result: PeriodResult, threshold_percent: Decimal = DEFAULT_THRESHOLD_PERCENT
) -> ReconciliationReport:
    """The grid connection (HAK) against the meters behind it, per calendar month.

    - **grid**: the balance meter if one is configured, else every location of role ``grid``:
      import and export as registered (physical direction);
    - **consumers**: every meter of role ``consumer`` that a billing unit lists (what is billed
      as consumption), import;
    - **production**: every meter of role ``production`` or ``storage`` that is billed as a
      source or listed by a unit, net (export - import: a unit drawing power counts negative).

    Energy is conserved at the grid connection, so grid import - export should equal consumers -
    production. The difference in kWh and in percent of the consumers' energy is flagged when
    its absolute value exceeds ``threshold_percent``: a meter that is not billed, a wrong
    transformer ratio, an inverted meter that is not marked, or missing data (counted as 0).
    """
    site, concept = result.site, result.concept
    known = _facts(site).meter_ids
    listed = [m for unit in site.units for m in unit.meters if m in known]
    if site.billing.balance_meter is not None:
        grid = [site.billing.balance_meter]
    else:
        grid = [loc.id for loc in site.locations if loc.role is Role.GRID]
    consumers = list(dict.fromkeys(m for m in listed if known[m].role is Role.CONSUMER))
    producing = (Role.PRODUCTION, Role.STORAGE)
    producers = list(
        dict.fromkeys(
            m for m in [*_facts(site).sources, *listed] if m in known and known[m].role in producing
        )
    )

    def rows(ids: Sequence[str], what: str) -> FloatArray:
        if not ids:
            return np.zeros(len(concept))
        values = _rows(getattr(concept, what), [concept.index(m) for m in ids])
        out: FloatArray = values.sum(axis=0)
        bad = ~np.isfinite(out)
        if bad.any():  # missing values count as 0: add those columns up again without them
            out[bad] = finite_or_zero(values[:, bad]).sum(axis=0)
        return out

    grid_import = rows(grid, "import_kwh")
    grid_export = rows(grid, "export_kwh")
    consumed = rows(consumers, "import_kwh")
    produced = rows(producers, "export_kwh") - rows(producers, "import_kwh")
    involved = [concept.index(m) for m in [*grid, *consumers, *producers]]
    missing: NDArray[np.bool_] = np.zeros(len(concept), dtype=np.bool_)
    if involved:
        values = _rows(concept.import_kwh, sorted(set(involved)))
        # a few rows at a time: no [meters, slots] mask beside the invoices being built
        for r in range(0, len(values), _MARK_ROWS):
            missing |= np.isnan(values[r : r + _MARK_ROWS]).any(axis=0)
    tz = result.tz
    out: list[ReconciliationRow] = []
    if grid:
        for first, last in _month_pieces(result.first_day, result.last_day):
            lo, hi = (s - result.start for s in _period_slots(first, last, tz))
            g_imp = float(grid_import[lo:hi].sum())
            g_exp = float(grid_export[lo:hi].sum())
            cons = float(consumed[lo:hi].sum())
            prod = float(produced[lo:hi].sum())
            diff = (g_imp - g_exp) - (cons - prod)
            share = percent(diff, cons) if cons > 0 else percent(diff, g_imp)
            out.append(
                ReconciliationRow(
                    month=f"{first:%Y-%m}",
                    first_day=first,
                    last_day=last,
                    grid_import_kwh=_kwh(g_imp),
                    grid_export_kwh=_kwh(g_exp),
                    grid_net_kwh=_kwh(g_imp - g_exp),
                    consumers_kwh=_kwh(cons),
                    production_kwh=_kwh(prod),
                    expected_net_kwh=_kwh(cons - prod),
                    difference_kwh=_kwh(diff),
                    difference_percent=share,
                    flagged=share is not None and abs(share) > threshold_percent,
                    missing_slots=int(np.count_nonzero(missing[lo:hi])),
                )
            )
    note = (
        "" if grid else "the site has no grid connection meter (role 'grid'): nothing to reconcile"
    )
    return ReconciliationReport(
        threshold_percent=threshold_percent,
        grid_meters=tuple(grid),
        consumer_meters=tuple(consumers),
        production_meters=tuple(producers),
        rows=tuple(out),
        note=note,
    )


# --------------------------------------------------------------------------------------------
# invoices


_PRICE_UNIT = {"kWh": "/kWh", "days": "/month"}


def _line(line: Any, currency: str) -> InvoiceLine:
    return record(
        InvoiceLine,
        kind=str(line.kind),  # a StrEnum's str is its value (``.value`` is slower)
        item=line.item,
        description=line.description,
        first_day=line.first_day,
        last_day=line.last_day,
        quantity=line.quantity,
        unit=line.unit,
        price=line.price,
        price_unit=f"{currency}{_PRICE_UNIT.get(line.unit, '')}",
        amount=line.amount,
        vat_rate=line.vat_rate,
        meter=line.meter,
        days_in_month=line.days_in_month,
        energy_kwh=line.energy_kwh,
    )


def _physical_meters(
    site: Site, loc_id: str, profile: LoadProfile | None, lo: int, hi: int, start: int
) -> tuple[tuple[str, ...], tuple[tuple[str, str], ...]]:
    """``manufacturer serial`` of the meters that produced the values in ``[lo, hi)``: from the
    profile's meter index, else the meters the site file has installed in that time. With more
    than one (a meter exchange, TOR-7.2.1) also the labels of each one's first and last quarter
    hour (:attr:`MeterUsed.meter_periods`)."""
    tz = site.site.timezone
    if profile is not None and profile.meters:
        column = profile.meter[lo:hi]
        if len(profile.meters) == 1:  # the usual case: whether that meter produced any value
            idx = [0] if bool((column == 0).any()) else []
        else:
            idx = [i for i in _distinct(column) if 0 <= i < len(profile.meters)]
        if idx:
            keys = tuple(profile.meters[i].replace(":", " ", 1) for i in idx)
            if len(idx) == 1:
                return keys, ()
            periods = []
            for i in idx:
                where = np.flatnonzero(column == i)
                first, last = start + lo + int(where[0]), start + lo + int(where[-1])
                periods.append((end_label(first, tz), end_label(last, tz)))
            return keys, tuple(periods)
    location = _facts(site).meter_ids[loc_id]
    assert isinstance(location, Location)
    begin, end = (start + lo) * SLOT_SECONDS, (start + hi) * SLOT_SECONDS
    out: list[tuple[str, int, int]] = []
    for meter in location.meters:
        installed = to_epoch(to_instant(meter.installed, tz))
        removed = meter.removed_at(tz)
        gone = to_epoch(removed) if removed is not None else None
        if installed < end and (gone is None or gone > begin):
            # the first and last quarter hour that starts while the meter is in place
            first = -(-max(begin, installed) // SLOT_SECONDS)
            last = -(-(end if gone is None else min(end, gone)) // SLOT_SECONDS) - 1
            out.append((f"{meter.manufacturer} {meter.serial}", first, last))
    keys = tuple(name for name, _, _ in out)
    if len(out) < 2:
        return keys, ()
    return keys, tuple((end_label(a, tz), end_label(b, tz)) for _, a, b in out)


def _quality_counts(q: QualityArray) -> dict[str, int]:
    # a comparison per code: no widening copy of the slots and no bincount
    return {label: int(np.count_nonzero(q == code)) for label, code in _QUALITY_CODES}


_QUALITY_CODES = tuple((quality.label, int(quality.value)) for quality in Quality)


def _meters_used(
    result: PeriodResult,
    meters: Sequence[tuple[str, str]],
    lo: int,
    hi: int,
    cache: dict[tuple[str, str, int, int], MeterUsed] | None = None,
) -> tuple[MeterUsed, ...]:
    """The meters of an invoice over the columns ``[lo, hi)``. ``cache`` keeps each meter's
    entry per period for the next invoice (every consumer's invoice lists the same sources)."""
    found = {} if cache is None else cache
    out: list[MeterUsed] = []
    for meter, purpose in meters:
        entry = found.get((meter, purpose, lo, hi))
        if entry is None:
            plain = found.get((meter, "", lo, hi))
            if plain is None:
                plain = found[(meter, "", lo, hi)] = _meter_used(result, meter, lo, hi)
            entry = found[(meter, purpose, lo, hi)] = _with_purpose(plain, purpose)
        out.append(entry)
    return tuple(out)


def _with_purpose(entry: MeterUsed, purpose: str) -> MeterUsed:
    """``replace(entry, purpose=purpose)`` without its look at every field (once per invoice)."""
    return MeterUsed(
        id=entry.id,
        name=entry.name,
        role=entry.role,
        purpose=purpose,
        virtual=entry.virtual,
        formula=entry.formula,
        metering_points=entry.metering_points,
        physical_meters=entry.physical_meters,
        batches=entry.batches,
        quality_slots=entry.quality_slots,
        meter_periods=entry.meter_periods,
    )


def _meter_used(result: PeriodResult, meter: str, lo: int, hi: int) -> MeterUsed:
    """One meter of an invoice over the columns ``[lo, hi)`` (``purpose`` left empty)."""
    site, concept = result.site, result.concept
    item = _facts(site).meter_ids[meter]
    q = concept.quality[concept.index(meter), lo:hi]
    if isinstance(item, VirtualMeter):
        locations = dependency_locations(site, [meter])
        batches: set[int] = set()
        for loc in locations:
            batches.update(_distinct_batches(result, loc, lo, hi))
        return MeterUsed(
            id=meter,
            name=item.name or meter,
            role=item.role.value,
            purpose="",
            virtual=True,
            formula=item.formula,
            metering_points=_metering_points_of(site, meter),
            physical_meters=(),
            batches=tuple(sorted(b for b in batches if b > 0)),
            quality_slots=_quality_counts(q),
        )
    src = concept.sources.get(meter)
    batch_ids = _distinct_batches(result, meter, lo, hi)
    physical, periods = _physical_meters(site, meter, src, lo, hi, result.start)
    return MeterUsed(
        id=meter,
        name=item.name or meter,
        role=item.role.value,
        purpose="",
        virtual=False,
        formula=None,
        metering_points=_metering_points_of(site, meter),
        physical_meters=physical,
        batches=tuple(sorted(int(b) for b in batch_ids if b > 0)),
        quality_slots=_quality_counts(q),
        meter_periods=periods,
    )


def _windows_text(site: Site, kind: TariffKind, first: date, last: date) -> str:
    key = (id(site), kind, first, last)
    found = _WINDOWS.get(key)
    if found is None or found[0] is not site:
        if len(_WINDOWS) >= 1024:
            _WINDOWS.clear()
        found = _WINDOWS[key] = (site, _describe_windows(site, kind, first, last))
    return found[1]


_WINDOWS: dict[tuple[int, TariffKind, date, date], tuple[Site, str]] = {}


def _describe_windows(site: Site, kind: TariffKind, first: date, last: date) -> str:
    parts = []
    for tariff in site.tariffs:
        if tariff.kind is not kind:
            continue
        if tariff.valid_to is not None and tariff.valid_to < first:
            continue
        if tariff.valid_from is not None and tariff.valid_from > last:
            continue
        name = tariff.name or tariff.id
        price = f"{format_price(tariff.price)} {site.site.currency}/kWh"
        if tariff.windows:
            when = ", ".join(w.describe() for w in tariff.windows)
            parts.append(f"{name} {price} ({when})")
        else:
            parts.append(f"{name} {price}")
    return "; ".join(parts)


def _explanation(
    result: PeriodResult, bill: Bill, unit: BillingUnit, feed_in: float
) -> tuple[str, ...]:
    """The "how this was computed" box in words (SM-5, SM-6)."""
    site = result.site
    settings = site.billing
    currency = site.site.currency
    sources = _facts(site).sources
    names = _facts(site).meter_ids
    texts: list[str] = []
    consumer = result.allocation.has_consumer(bill.unit)
    if consumer:
        own = ", ".join(names[m].name or m for m in _consumer_meters(site, unit))
        texts.append(
            f"Your consumption is measured every quarter hour by the meter {own}; each value "
            "is used unrounded."
        )
        if sources:
            produced = _facts(site).sources_text
            if settings.allocation is AllocationKey.STATIC:
                texts.append(
                    f"In every quarter hour the energy produced in the building ({produced}) "
                    "is shared by fixed shares: each consumer receives its share of the "
                    "production, at most what it consumed in that quarter hour. The rest of "
                    "your consumption came from the grid."
                )
            else:
                texts.append(
                    f"In every quarter hour the energy produced in the building ({produced}) "
                    "is shared among all consumers in proportion to their consumption: when "
                    "all consumers together use 10 kWh and 6 kWh are produced, every consumer "
                    "receives 60 % of its own consumption in that quarter hour as local energy "
                    "(never more than it consumed). The rest came from the grid."
                )
            if settings.balance_meter is not None:
                texts.append(
                    "Energy that left the building at the grid connection in the same quarter "
                    "hour was not used in the building and is not shared."
                )
            share = percent(bill.local_kwh, bill.consumption_kwh)
            local_prices = "; ".join(
                p
                for p in (
                    _windows_text(site, TariffKind.LOCAL, bill.first_day, bill.last_day),
                    _windows_text(site, TariffKind.BATTERY, bill.first_day, bill.last_day),
                )
                if p
            )
            if share is not None:
                texts.append(
                    f"In this period {share} % of your consumption "
                    f"({format_kwh(bill.local_kwh)} of {format_kwh(bill.consumption_kwh)} kWh) "
                    f"was local energy, billed at {local_prices}."
                )
        grid_prices = _windows_text(site, TariffKind.GRID, bill.first_day, bill.last_day)
        if grid_prices:
            texts.append(
                f"Grid energy ({format_kwh(bill.grid_kwh)} kWh) is billed at the grid tariff "
                f"valid in its quarter hour (local time): {grid_prices}; a quarter hour "
                "belongs to a time window when it starts inside it."
            )
    owned = _facts(site).owned_sources.get(bill.unit, ())
    if owned:
        texts.append(
            f"Production of {', '.join(names[s].name or s for s in owned)} that was not used "
            f"in the building ({format_kwh(feed_in)} kWh) went to the grid and is credited at "
            "the feed-in tariff where one is configured."
        )
    if any(line.kind is LineKind.BASE_FEE for line in bill.lines):
        texts.append(
            "The base fee is a monthly amount, charged for the days of each month that this "
            "invoice covers (days / days of the month)."
        )
    texts.append(
        "Quantities are rounded to the Wh (3 decimals); each amount is quantity x price "
        f"rounded to the cent ({currency}); VAT is computed per rate on the sum of the net "
        "amounts."
    )
    return tuple(texts)


def _quality_statement(energy: float, l2: float, l3: float, missing: int) -> str:
    substitute = l2 + l3
    if substitute == 0 and missing == 0:
        return "All values used for this invoice were measured (quality L1)."
    parts = []
    if substitute > 0:
        parts.append(
            f"{format_kwh(substitute)} kWh of the {format_kwh(energy)} kWh on this invoice fall "
            "in quarter hours in which a meter value was a substitute value (Ersatzwert): "
            f"{format_kwh(l2)} kWh reliable (L2)"
            + (f" and {format_kwh(l3)} kWh provisional (L3, will be replaced)" if l3 > 0 else "")
            + "."
        )
    else:
        parts.append("No substitute values were used.")
    if missing:
        parts.append(
            f"In {missing} quarter hour(s) a meter this invoice depends on had no value at all "
            "(see the meters below); it was counted as 0 kWh, so this invoice can only be a "
            "draft."
        )
    return " ".join(parts)


@dataclass(frozen=True, eq=False)
class _MonthSums:
    """Consumption, local and grid energy of every consumer per month of one period
    (``[consumers, months]``): row sums of the same slices an invoice would sum one by one (numpy
    sums a row of a 2-D array exactly as that row alone), taken once for all the invoices of a
    period that most consumers share."""

    consumption: FloatArray
    local: FloatArray
    grid: FloatArray

    @functools.cached_property
    def rows(self) -> list[tuple[tuple[Decimal, Decimal, Decimal, Decimal | None], ...]]:
        """Per consumer and month: consumption, local and grid energy as billed and the local
        share in percent (:func:`_kwh` and :func:`percent` of the sums, for all at once)."""
        months = self.consumption.shape[1]
        cons, local, grid = (to_decimal_kwhs(x) for x in (self.consumption, self.local, self.grid))
        shares = percents(self.local, self.consumption)
        return [
            tuple(
                zip(
                    cons[r : r + months],
                    local[r : r + months],
                    grid[r : r + months],
                    shares[r : r + months],
                    strict=True,
                )
            )
            for r in range(0, len(cons), months)
        ]


def _month_sums(result: PeriodResult) -> dict[tuple[int, int], _MonthSums]:
    allocation, tz = result.allocation, result.tz
    owners = set(_facts(result.site).producers.values())
    periods: dict[tuple[date, date], int] = {}
    for bill in result.bills:
        if allocation.has_consumer(bill.unit) and bill.unit not in owners:
            key = (bill.first_day, bill.last_day)
            periods[key] = periods.get(key, 0) + 1
    out: dict[tuple[int, int], _MonthSums] = {}
    for (first_day, last_day), count in periods.items():
        if count < max(8, len(allocation.consumers) // 4):
            continue  # a few invoices: summing their own rows is cheaper
        start, stop = _period_slots(first_day, last_day, tz)
        lo, hi = start - result.start, stop - result.start
        columns: list[tuple[int, int]] = []
        for first, last in _month_pieces(first_day, last_day):
            a, b = (s - result.start for s in _period_slots(first, last, tz))
            columns.append((a, b))

        out[(lo, hi)] = _MonthSums(*allocation.range_sums(columns))
    return out


def _owned(result: PeriodResult, bill: Bill) -> list[str]:
    """The billed sources that the bill's unit owns (its production is on its invoice)."""
    sources = result.allocation.sources
    owned = _facts(result.site).owned_sources.get(bill.unit, ())
    return [s for s in owned if s in sources]


def _own_meters(
    result: PeriodResult, unit: BillingUnit, consumer: bool, owned: Sequence[str]
) -> list[tuple[str, str]]:
    """The meters at the head of an invoice's list, each with what it is used for: the unit's
    own consumption meters and the sources it owns."""
    used: list[tuple[str, str]] = []
    if consumer:
        used += [(m, "your consumption") for m in _consumer_meters(result.site, unit)]
    used += [(s, "your production (feed-in)") for s in owned]
    return used


def _shared_meters(
    result: PeriodResult, consumer: bool, owned: Sequence[str]
) -> list[tuple[str, str]]:
    """The rest of an invoice's list: for a consumer the sources it shares with the others and
    the balance meter (the same for every consumer that owns no source)."""
    if not consumer:
        return []
    site = result.site
    used = [
        (s, "production shared among the consumers")
        for s in result.allocation.sources
        if s not in owned
    ]
    if site.billing.balance_meter is not None:
        used.append((site.billing.balance_meter, "grid connection (energy exported is not shared)"))
    return used


@dataclass(eq=False)
class _EntryCache:
    """The meter entries of a run's invoices, each made once per period: per meter and purpose
    (``entries``), and the shared rest of the lists (``tails``, by consumer, owned sources and
    columns), which every consumer's invoice of a period repeats."""

    entries: dict[tuple[str, str, int, int], MeterUsed] = field(default_factory=dict)
    tails: dict[tuple[bool, tuple[str, ...], int, int], tuple[MeterUsed, ...]] = field(
        default_factory=dict
    )


def _invoice_meters(
    result: PeriodResult,
    unit: BillingUnit,
    consumer: bool,
    owned: Sequence[str],
    lo: int,
    hi: int,
    cache: _EntryCache,
) -> tuple[MeterUsed, ...]:
    """The meters an invoice lists over the columns ``[lo, hi)``: its own, then the shared."""
    head = _meters_used(result, _own_meters(result, unit, consumer, owned), lo, hi, cache.entries)
    key = (consumer, tuple(owned), lo, hi)
    tail = cache.tails.get(key)
    if tail is None:
        shared = _shared_meters(result, consumer, owned)
        tail = cache.tails[key] = _meters_used(result, shared, lo, hi, cache.entries)
    return head + tail


def _prepare_entries(
    result: PeriodResult,
    cache: _EntryCache,
    line_cache: dict[int, tuple[Any, InvoiceLine]],
) -> None:
    """The meter entries and invoice lines of every invoice of the run, into the caches that
    :func:`_invoice` takes them from (they need none of the sums of the period)."""
    site, allocation, tz = result.site, result.allocation, result.tz
    currency = site.site.currency
    for bill in result.bills:
        for line in bill.lines:
            entry = line_cache.get(id(line))
            if entry is None or entry[0] is not line:
                line_cache[id(line)] = (line, _line(line, currency))
        start, stop = _period_slots(bill.first_day, bill.last_day, tz)
        consumer = allocation.has_consumer(bill.unit)
        lo, hi = start - result.start, stop - result.start
        unit = _unit(site, bill.unit)
        _invoice_meters(result, unit, consumer, _owned(result, bill), lo, hi, cache)


@dataclass(frozen=True, eq=False)
class _Marks:
    """The slots in which the quality of a consumer's invoice (the worst of its own meters and
    of what decides the split, :func:`_split_quality`) is not L1, for every consumer at once:
    row ``i``'s are ``columns[bounds[i]:bounds[i + 1]]`` (ascending) with their quality in
    ``codes``. Taken from blocks of rows (a few MB), not the whole ``[consumers, slots]``
    array."""

    bounds: list[int]
    columns: NDArray[np.intp]
    codes: QualityArray

    def of(self, row: int, lo: int, hi: int) -> tuple[NDArray[np.intp], QualityArray]:
        """Row ``row``'s marked slots in ``[lo, hi)`` (counted from ``lo``) and their quality."""
        a, b = self.bounds[row], self.bounds[row + 1]
        columns, codes = self.columns[a:b], self.codes[a:b]
        if lo == 0 and (not len(columns) or columns[-1] < hi):
            return columns, codes
        k0, k1 = np.searchsorted(columns, [lo, hi]).tolist()
        return columns[k0:k1] - lo, codes[k0:k1]


#: consumer rows whose quality :func:`_marks` takes together
_MARK_ROWS = 64


def _marks(consumer_quality: QualityArray, split_quality: QualityArray) -> _Marks:
    rows: list[NDArray[np.intp]] = []
    columns: list[NDArray[np.intp]] = []
    codes: list[QualityArray] = []
    for r in range(0, len(consumer_quality), _MARK_ROWS):
        block = np.maximum(consumer_quality[r : r + _MARK_ROWS], split_quality)
        at_row, at_column = np.nonzero(block != _L1)
        rows.append(at_row + r)
        columns.append(at_column)
        codes.append(block[at_row, at_column])
    every_row = np.concatenate(rows) if rows else np.zeros(0, dtype=np.intp)
    return _Marks(
        bounds=np.searchsorted(every_row, np.arange(len(consumer_quality) + 1)).tolist(),
        columns=np.concatenate(columns) if columns else np.zeros(0, dtype=np.intp),
        codes=np.concatenate(codes) if codes else np.zeros(0, dtype=np.int8),
    )


def _invoice(
    result: PeriodResult,
    bill: Bill,
    number: str,
    status: RunStatus,
    cache: _EntryCache | None = None,
    sums: Mapping[tuple[int, int], _MonthSums] | None = None,
    line_cache: dict[int, tuple[Any, InvoiceLine]] | None = None,
    marks: _Marks | None = None,
) -> Invoice:
    site, allocation, tz = result.site, result.allocation, result.tz
    unit = _unit(site, bill.unit)
    start, stop = _period_slots(bill.first_day, bill.last_day, tz)
    lo, hi = start - result.start, stop - result.start
    n = hi - lo
    consumer = allocation.has_consumer(bill.unit)
    owned = _owned(result, bill)
    # Sums that are 0 by construction (no owned source, no substitute value) are not computed;
    # every other sum is the same numpy operation on the same values as always.
    i = allocation.consumer_index(bill.unit) if consumer else -1
    if consumer and not owned:
        energy = allocation.consumption[i, lo:hi]  # a view: 0 + x is x
        local: FloatArray | None = None  # made below if the month sums need them
        grid: FloatArray | None = None
        if marks is None:
            marks = _marks(result.consumer_quality, result.split_quality)
        marked, codes = marks.of(i, lo, hi)
        surplus: FloatArray | None = None
    else:
        energy = np.zeros(n)
        local = np.zeros(n)
        grid = np.zeros(n)
        quality = np.full(n, Quality.L1, dtype=np.int8)
        if consumer:
            energy += allocation.consumption[i, lo:hi]
            local = allocation.local_rows(i, lo, hi)
            grid = allocation.grid_rows(i, lo, hi, local)
            np.maximum(quality, result.consumer_quality[i, lo:hi], out=quality)
            np.maximum(quality, result.split_quality[lo:hi], out=quality)
        surplus = np.zeros(n)
        for source in owned:
            s = allocation.source_index(source)
            energy += allocation.production[s, lo:hi]
            surplus += allocation.surplus[s, lo:hi]
            np.maximum(quality, result.source_quality[s, lo:hi], out=quality)
        marked = np.flatnonzero(quality != _L1)
        codes = quality[marked]
    # the slots that are not L1 (ascending) and their quality: energy[marked[codes == L2]] holds
    # the same values in the same order as energy[quality == L2]
    is_l2, is_l3 = codes == _L2, codes == _L3
    has_l2, has_l3 = bool(is_l2.any()), bool(is_l3.any())
    l2 = float(energy[marked[is_l2]].sum()) if has_l2 else 0.0
    l3 = float(energy[marked[is_l3]].sum()) if has_l3 else 0.0
    missing = int(np.count_nonzero(codes == _MISSING))
    substitute_at = marked[is_l2 | is_l3] if has_l2 or has_l3 else np.zeros(0, dtype=np.intp)
    # a consumer's bill summed the same values the same way
    energy_kwh = bill.consumption_kwh if consumer and not owned else float(energy.sum())
    block = None if sums is None or not consumer or owned else sums.get((lo, hi))
    months = []
    pieces = _month_pieces(bill.first_day, bill.last_day)
    columns = _month_columns(bill.first_day, bill.last_day, tz)
    # where each month's substitute slots begin and end, for all months at once
    edges = np.searchsorted(substitute_at, [c for ab in columns for c in ab]).tolist()
    labels = _month_labels(bill.first_day, bill.last_day)
    # the same sums, taken for all consumers at once, already as billed (a consumer without
    # an own source: no feed-in)
    known = None if block is None else block.rows[i]
    for k, (first, last) in enumerate(pieces):
        a, b = columns[k]
        substitute = 0.0
        k0, k1 = edges[2 * k], edges[2 * k + 1]
        if k1 > k0:  # the same values in the same order as energy[a:b][mask]
            substitute = float(energy[substitute_at[k0:k1]].sum())
        if known is not None:
            cons_d, local_d, grid_d, share = known[k]
            feed_in_d = _ZERO_KWH
        else:
            if local is None or grid is None:
                local = allocation.local_rows(i, lo, hi)
                grid = allocation.grid_rows(i, lo, hi, local)
            cons = float(allocation.consumption[i, lo + a : lo + b].sum()) if consumer else 0.0
            loc_kwh = float(local[a:b].sum())
            cons_d, local_d = _kwh(cons), _kwh(loc_kwh)
            grid_d = _kwh(float(grid[a:b].sum()))
            feed_in_d = _kwh(0.0 if surplus is None else float(surplus[a:b].sum()))
            share = percent(loc_kwh, cons) if consumer else None
        months.append(
            record(
                MonthRow,
                month=labels[k],
                first_day=first,
                last_day=last,
                consumption_kwh=cons_d,
                local_kwh=local_d,
                grid_kwh=grid_d,
                feed_in_kwh=feed_in_d,
                substitute_kwh=_kwh(substitute),
                local_share_percent=share,
            )
        )
    net, vat_total = bill.net, bill.vat_total
    first_label, last_label = _period_labels(start, stop, tz)
    currency = site.site.currency
    if line_cache is None:
        lines = tuple(_line(line, currency) for line in bill.lines)
    else:  # the fee lines of units with the same fees and days are the same objects
        found: list[InvoiceLine] = []
        for line in bill.lines:
            entry = line_cache.get(id(line))
            if entry is None or entry[0] is not line:
                entry = line_cache[id(line)] = (line, _line(line, currency))
            found.append(entry[1])
        lines = tuple(found)
    return Invoice(
        number=number,
        site_id=site.site.id,
        site_name=site.site.name or site.site.id,
        issuer=site.billing.owner or site.site.name or site.site.id,
        timezone=site.site.timezone,
        currency=currency,
        unit_id=unit.id,
        unit_name=unit.name or unit.id,
        unit_kind=unit.kind.value,
        customer=bill.customer,
        vacancy=bill.vacancy,
        contract_id=None if bill.contract is None else bill.contract.id,
        first_day=bill.first_day,
        last_day=bill.last_day,
        first_label=first_label,
        last_label=last_label,
        period_label=f"{first_label} – {last_label}",
        lines=lines,
        vat=tuple(VatAmount(v.rate, v.net, v.vat) for v in bill.vat),
        net=net,
        vat_total=vat_total,
        total=net + vat_total,  # Bill.total, its two sums taken once
        consumption_kwh=_kwh(bill.consumption_kwh),
        local_kwh=_kwh(bill.local_kwh),
        grid_kwh=_kwh(bill.grid_kwh),
        local_share_percent=percent(bill.local_kwh, bill.consumption_kwh) if consumer else None,
        explanation=_explanation(
            result, bill, unit, 0.0 if surplus is None else float(surplus.sum())
        ),
        months=tuple(months),
        meters=_invoice_meters(
            result, unit, consumer, owned, lo, hi, _EntryCache() if cache is None else cache
        ),
        quality=DataQuality(
            energy_kwh=_kwh(energy_kwh),
            substitute_kwh=_kwh(l2 + l3),
            l2_kwh=_kwh(l2),
            l3_kwh=_kwh(l3),
            missing_slots=missing,
            statement=_quality_statement(energy_kwh, l2, l3, missing),
        ),
        status=status,
    )


# --------------------------------------------------------------------------------------------
# provenance


def _profile_digest(result: PeriodResult) -> str:
    """SHA-256 over the stored values the run read (import, export, quality, batch per
    location, in site order)."""
    return _digest_of(result.site, result.concept)


def _digest_of(site: Site, concept: ConceptResult) -> str:
    digest = hashlib.sha256()
    for loc in site.locations:
        src = concept.sources.get(loc.id)
        digest.update(loc.id.encode())
        if src is None:
            digest.update(b"-")
            continue
        # the arrays' own bytes (buffer protocol): no copy of 900 MB for a site-year; the
        # batches as 8-byte integers whatever type the store read them in (a row's copy)
        for array in (src.import_kwh, src.export_kwh, src.quality):
            digest.update(np.ascontiguousarray(array).data)
        digest.update(np.ascontiguousarray(src.batch, dtype=np.int64).data)
    return digest.hexdigest()


def _batches_by_location(result: PeriodResult) -> tuple[dict[str, Any], ...]:
    out = []
    for loc in result.site.locations:
        n = result.stop - result.start
        batches = [b for b in _distinct_batches(result, loc.id, 0, n) if b > 0]
        out.append(
            {
                "location": loc.id,
                "metering_points": list(_location_ids(loc)),
                "batches": batches,
            }
        )
    return tuple(out)


def used_batches(result: PeriodResult) -> set[int]:
    """The raw batches whose values a computed period read (its provenance: only these need
    their facts in :class:`RunInputs`)."""
    return {b for entry in _batches_by_location(result) for b in entry["batches"]}


def _inputs(
    result: PeriodResult, inputs: RunInputs, used: set[int], profiles_sha256: str | None = None
) -> dict[str, Any]:
    site = result.site
    tariffs = [
        {
            "id": t.id,
            "kind": t.kind.value,
            "sha256": hashlib.sha256(t.model_dump_json().encode()).hexdigest(),
        }
        for t in site.tariffs
    ]
    fees = [
        {"id": f.id, "sha256": hashlib.sha256(f.model_dump_json().encode()).hexdigest()}
        for f in site.fees
    ]
    batches = []
    for b in sorted(used):
        info = dict(inputs.batches.get(b, {}))
        batches.append({"batch": b, **{k: to_jsonable(v) for k, v in info.items()}})
    return {
        "site": site.site.id,
        "site_version": inputs.site_version,
        "site_sha256": inputs.site_sha256
        or hashlib.sha256(site.model_dump_json(by_alias=True).encode()).hexdigest(),
        "first_day": result.first_day.isoformat(),
        "last_day": result.last_day.isoformat(),
        "tariffs": tariffs,
        "fees": fees,
        "batches": batches,
        "profiles_sha256": profiles_sha256 or _profile_digest(result),
    }


# --------------------------------------------------------------------------------------------
# the run


def make_run(
    result: PeriodResult,
    *,
    run: int = 1,
    version: int = 1,
    status: RunStatus = "draft",
    created_at: datetime | None = None,
    threshold_percent: Decimal = DEFAULT_THRESHOLD_PERCENT,
    inputs: RunInputs | None = None,
) -> Run:
    """The :class:`Run` of a computed period: numbered invoices, reconciliation, provenance.

    ``status="final"`` raises :class:`FinalRefused` when a location the invoices depend on holds
    L3 or missing values, naming each with its metering point IDs, counts and labels.
    """
    if status not in ("draft", "final"):
        raise InvalidInput(f"a run is 'draft' or 'final', not {status!r}")
    with _collector_paused():
        return _make_run(result, run, version, status, created_at, threshold_percent, inputs)


def _make_run(
    result: PeriodResult,
    run: int,
    version: int,
    status: RunStatus,
    created_at: datetime | None,
    threshold_percent: Decimal,
    inputs: RunInputs | None,
) -> Run:
    issues = quality_issues(result)
    if status == "final" and issues:
        raise FinalRefused(
            f"{result.first_day} to {result.last_day} cannot be billed final: "
            f"{len(issues)} metering location(s) still hold L3 substitute values or missing "
            "values (Q-1); import the measured values, or bill a draft",
            [
                Problem(
                    f"{issue.name}: {issue.counts()}",
                    meter=", ".join(issue.metering_points) or issue.location,
                    time=f"{issue.first_label} – {issue.last_label}",
                )
                for issue in issues
            ],
        )
    site = result.site
    # the month sums and quality marks of all consumers, then the reconciliation (numpy over
    # whole arrays: it releases the GIL) on the other core while the invoice lines and meter
    # entries, then the invoices are built here
    helper = ThreadPoolExecutor(max_workers=1)
    month_sums = helper.submit(_month_sums, result)
    all_marks = helper.submit(_marks, result.consumer_quality, result.split_quality)
    reconciliation = helper.submit(reconcile, result, threshold_percent)
    helper.shutdown(wait=False)
    cache = _EntryCache()
    line_cache: dict[int, tuple[Any, InvoiceLine]] = {}
    _prepare_entries(result, cache, line_cache)
    sums = month_sums.result()
    marks = all_marks.result()
    invoices = tuple(
        _invoice(
            result,
            bill,
            invoice_number(site.site.id, run, version, k + 1),
            status,
            cache,
            sums,
            line_cache,
            marks,
        )
        for k, bill in enumerate(result.bills)
    )
    digest = (
        result.profiles_sha256.result()
        if result.profiles_sha256 is not None
        else _profile_digest(result)
    )
    slots = np.arange(result.start, result.stop, dtype=np.int64)
    first_label, last_label = _label_range(slots, result.tz)
    batches = _batches_by_location(result)
    used = {b for entry in batches for b in entry["batches"]}
    fingerprint_inputs = _inputs(result, inputs or RunInputs(), used, digest)
    fingerprint = hashlib.sha256(
        json.dumps(fingerprint_inputs, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()
    return Run(
        site_id=site.site.id,
        site_name=site.site.name or site.site.id,
        currency=site.site.currency,
        run=run,
        version=version,
        status=status,
        created_at=created_at or datetime.now(UTC),
        first_day=result.first_day,
        last_day=result.last_day,
        first_label=first_label,
        last_label=last_label,
        period_label=f"{first_label} – {last_label}",
        slots=result.stop - result.start,
        invoices=invoices,
        reconciliation=reconciliation.result(),
        net=sum((i.net for i in invoices), Decimal(0)),
        vat_total=sum((i.vat_total for i in invoices), Decimal(0)),
        total=sum((i.total for i in invoices), Decimal(0)),
        batches=batches,
        quality_issues=tuple(issues),
        inputs=fingerprint_inputs,
        fingerprint=fingerprint,
    )


def bill_site_period(
    site: Site,
    profiles: Mapping[str, LoadProfile],
    first_day: date,
    last_day: date,
    *,
    run: int = 1,
    version: int = 1,
    status: RunStatus = "draft",
    created_at: datetime | None = None,
    threshold_percent: Decimal = DEFAULT_THRESHOLD_PERCENT,
    inputs: RunInputs | None = None,
    progress: Progress | None = None,
) -> Run:
    """Bill ``site`` for the local days ``first_day`` .. ``last_day`` from its load profiles:
    :func:`compute_period` then :func:`make_run`. Pure: the same inputs give the same run."""
    result = compute_period(site, profiles, first_day, last_day, progress=progress)
    return make_run(
        result,
        run=run,
        version=version,
        status=status,
        created_at=created_at,
        threshold_percent=threshold_percent,
        inputs=inputs,
    )
