"""What the monitoring graphic shows (SM-4), built from a concept evaluation and an allocation.

:func:`monitoring_data` is a pure function: it takes what a billing run computes anyway, the
evaluated measurement concept (:class:`~lastgang.concept.evaluate.ConceptResult`, physical
directions, virtual meters) and the allocation of local production
(:class:`~lastgang.allocation.Allocation`), and returns the
:class:`~lastgang.report.charts.MonitoringData` that the PNG and HTML charts draw:

- **production** per source: the export of every billed production meter (the sources of the
  allocation, :func:`~lastgang.allocation.billing_sources`), named as in the site file. In the
  emergency power concept (SM-3) that is the virtual meter *Production = incl. solar - excl.
  solar*; a site without local or battery tariffs shows its ``production`` meters instead;
- **consumption** per billing unit that consumes: the import of its ``consumer`` meters;
- **grid import / export**: what the grid connection meter measured (the ``[billing]
  balance_meter``, else the first ``grid`` location; zeros when the site has none, as in an
  energy community whose members are spread over the grid);
- **self-consumed**: the local energy the allocation handed to the consumers (Eigenverbrauch,
  SM-5): available production, capped by the consumption;
- **the emergency power unit's own draw** (SM-4): the negative part of a virtual production
  meter, i.e. its import direction. When the unit takes more than it gives (standby, charging
  its battery from the grid), incl. solar - excl. solar is negative, and the concept books that
  as import of the production meter (:func:`~lastgang.concept.evaluate.evaluate_concept`).

A quarter hour in which a shown input is missing (``NaN`` in the concept) stays ``NaN`` in the
output: the chart shades its period and leaves it out of the totals and ratios.

:func:`site_monitoring` evaluates the concept and allocates for load profiles;
:func:`load_monitoring` (``lastgang chart``) and :func:`stored_concept` (the web app's charts)
read the profiles from a store first; ``lastgang demo`` calls :func:`site_monitoring`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import date
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from lastgang.allocation import (
    Allocation,
    allocate_site,
    billing_sources,
    consumer_meters,
    finite_or_zero,
)
from lastgang.concept.evaluate import ConceptResult, evaluate_concept
from lastgang.concept.model import Role, Site
from lastgang.errors import InvalidInput
from lastgang.profiles.types import LoadProfile
from lastgang.report.charts import MonitoringData
from lastgang.timegrid import period_slots

if TYPE_CHECKING:
    from lastgang.store import Store

__all__ = [
    "consumption_of",
    "grid_meter",
    "load_monitoring",
    "monitoring_data",
    "monitoring_sources",
    "site_allocation",
    "site_monitoring",
    "source_name",
    "stored_concept",
    "unit_consumption",
]

FloatArray = NDArray[np.float64]


def grid_meter(site: Site) -> str | None:
    """The location whose import and export are the building's exchange with the grid: the
    balance meter of ``[billing]``, else the first location of role ``grid``."""
    if site.billing.balance_meter is not None:
        return site.billing.balance_meter
    for loc in site.locations:
        if loc.role is Role.GRID:
            return loc.id
    return None


def monitoring_sources(site: Site) -> tuple[str, ...]:
    """The production meters a chart shows: the billed sources of the site
    (:func:`~lastgang.allocation.billing_sources`), else every location or virtual meter of
    role ``production``."""
    billed = billing_sources(site)
    if billed:
        return billed
    return tuple(item.id for item in site.meter_ids().values() if item.role is Role.PRODUCTION)


def unit_consumption(site: Site, concept: ConceptResult, unit_id: str) -> FloatArray:
    """What a billing unit used per slot: the import of its ``consumer`` meters, ``NaN`` where
    one of them has no value (zeros for a unit without consumer meters)."""
    return consumption_of(concept, consumer_meters(site).get(unit_id, ()))


def consumption_of(concept: ConceptResult, meters: Sequence[str]) -> FloatArray:
    """The import of ``meters`` summed per slot, ``NaN`` where one of them has no value (for
    many units: :func:`~lastgang.allocation.consumer_meters` once, then this per unit)."""
    total = np.zeros(len(concept))
    for meter in meters:
        total = total + concept.import_kwh[concept.index(meter)]
    return total


def site_allocation(site: Site, concept: ConceptResult) -> Allocation:
    """The allocation of local production (SM-5, EC-1) for an evaluated concept, with the same
    inputs a billing run uses: per consumer unit the import of its consumer meters, per billed
    source the export of its production meter, and in balance-meter mode the export at the grid
    connection. Missing values count as 0 kWh here; :func:`monitoring_data` marks them."""
    units = consumer_meters(site)
    # one [units, slots] array: allocate_site takes its rows as they are, without a copy
    totals = np.zeros((len(units), len(concept)))
    for total, meters in zip(totals, units.values(), strict=True):
        for meter in meters:
            total += finite_or_zero(concept.import_kwh[concept.index(meter)])
    consumption = dict(zip(units, totals, strict=True))
    production = {
        s: finite_or_zero(concept.export_kwh[concept.index(s)]) for s in billing_sources(site)
    }
    balance = site.billing.balance_meter
    balance_export = None
    if balance is not None:
        balance_export = finite_or_zero(concept.export_kwh[concept.index(balance)])
    return allocate_site(
        site, consumption, production, balance_export=balance_export, start=concept.start
    )


def source_name(name: str) -> str:
    """A production meter's name as a chart legend entry, which says "Production:" itself:
    ``"Production (emergency power unit and PV)"`` -> ``"Emergency power unit and PV"``."""
    text = name.strip()
    if text.lower().startswith("production (") and text.endswith(")"):
        inner = text[len("production (") : -1].strip()
        if inner:
            return inner[0].upper() + inner[1:]
    return text


def _unique(names: list[str], ids: list[str]) -> list[str]:
    """Display names, with the id added where two rows would have the same name."""
    count = Counter(names)
    return [
        f"{name} ({ident})" if count[name] > 1 else name
        for name, ident in zip(names, ids, strict=True)
    ]


def monitoring_data(
    site: Site,
    concept: ConceptResult,
    allocation: Allocation,
    *,
    source_label: Callable[[str], str] = source_name,
) -> MonitoringData:
    """The monitoring view (SM-4) of an evaluated concept and its allocation over the same
    slots. See the module documentation for what each series is.

    ``source_label`` turns a production meter's name into its key in ``production``: by default
    :func:`source_name`, for a legend that says "Production:" itself. Keys are in the order of
    :func:`monitoring_sources`."""
    n = len(concept)
    # an allocation of nothing (no consuming unit, no billed source) has no slots to compare
    allocated = bool(allocation.consumers or allocation.sources)
    if allocated and (allocation.start != concept.start or allocation.slots != n):
        raise InvalidInput(
            f"the allocation covers slots [{allocation.start}, {allocation.stop}), the concept "
            f"[{concept.start}, {concept.stop}): compute both for the same period"
        )
    sources = list(monitoring_sources(site))
    source_rows = [concept.index(s) for s in sources]
    names = dict(zip(concept.ids, concept.names or concept.ids, strict=True))
    production = dict(
        zip(
            _unique([source_label(names[s]) for s in sources], sources),
            (concept.export_kwh[r].copy() for r in source_rows),
            strict=True,
        )
    )
    units = {u.id: u for u in site.units}
    meters = consumer_meters(site)
    unit_ids = list(allocation.consumers)
    consumption: dict[str, FloatArray] = {}
    for name, unit_id in zip(
        _unique([units[u].name or u if u in units else u for u in unit_ids], unit_ids),
        unit_ids,
        strict=True,
    ):
        consumption[name] = (
            consumption_of(concept, meters.get(unit_id, ())) if unit_id in units else np.zeros(n)
        )

    grid = grid_meter(site)
    if grid is not None:
        row = concept.index(grid)
        grid_import, grid_export = concept.import_kwh[row].copy(), concept.export_kwh[row].copy()
    else:
        grid_import, grid_export = np.zeros(n), np.zeros(n)

    own_draw = np.zeros(n)
    for r in source_rows:
        if concept.virtual[r] and concept.roles[r] is Role.PRODUCTION:
            own_draw = own_draw + concept.import_kwh[r]

    self_consumed: FloatArray = allocation.handed_out if len(unit_ids) else np.zeros(n)
    missing = np.zeros(n, dtype=bool)
    for series in (*production.values(), *consumption.values()):
        missing |= ~np.isfinite(series)
    if site.billing.balance_meter is not None:
        missing |= ~np.isfinite(grid_export)
    self_consumed = np.where(missing, np.nan, self_consumed)

    return MonitoringData(
        start=concept.start,
        stop=concept.stop,
        tz=site.site.timezone,
        production=production,
        consumption=consumption,
        grid_import=grid_import,
        grid_export=grid_export,
        self_consumed=self_consumed,
        unit_own_draw=own_draw,
    )


def site_monitoring(
    site: Site, profiles: Mapping[str, LoadProfile], start: int, stop: int
) -> MonitoringData:
    """Evaluate the concept over the stored ``profiles`` (location id -> profile as the meters
    registered it) for the slots ``[start, stop)``, allocate, and return the monitoring view."""
    concept = evaluate_concept(site, profiles, start, stop)
    return monitoring_data(site, concept, site_allocation(site, concept))


def load_monitoring(
    store: Store, site_id: str, first_day: date, last_day: date
) -> tuple[Site, MonitoringData]:
    """The site's latest configuration and its monitoring view over the local days
    ``first_day`` .. ``last_day`` (inclusive), from the load profiles in ``store``.

    :class:`~lastgang.errors.StoreError` for an unknown site, :class:`InvalidInput` for a period
    that ends before it starts."""
    if last_day < first_day:
        raise InvalidInput(
            f"the period {first_day} to {last_day} ends before it starts: give --from before --to"
        )
    site = store.site_version(site_id).site
    start, stop = period_slots(first_day, last_day, site.site.timezone)
    concept = stored_concept(store, site, start, stop)
    return site, monitoring_data(site, concept, site_allocation(site, concept))


def stored_concept(store: Store, site: Site, start: int, stop: int) -> ConceptResult:
    """The measurement concept of ``site`` evaluated over the load profiles of its locations in
    ``store`` for the slots ``[start, stop)``."""
    profiles = store.load_profiles(site.site.id, [loc.id for loc in site.locations], start, stop)
    return evaluate_concept(site, profiles, start, stop)
