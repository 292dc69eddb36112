"""Chart data for the pages: the monitoring chart of a site (SM-4) and the consumption of one
billing unit with its local/grid split (SM-5), for a day, week, month or year.

The numbers come from the pure core: the stored profiles go through the measurement concept
(:func:`~lastgang.concept.evaluate.evaluate_concept`: inverted meters swapped, virtual meters
evaluated) and the allocation of the site's ``[billing]`` rule
(:func:`~lastgang.allocation.allocate_site`); this module only sums them to the bars of the view
(:func:`~lastgang.timegrid.aggregate`: local calendar periods, 92/96/100 quarter hours a day).
A day is drawn in kW (average power of each quarter hour = kWh x 4), longer views in kWh.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
from numpy.typing import NDArray

from lastgang.allocation import allocate_site, billing_sources, consumer_units
from lastgang.concept.evaluate import ConceptResult, evaluate_concept
from lastgang.concept.model import Role, Site
from lastgang.errors import InvalidInput
from lastgang.report.charts import MonitoringData, ratios, view_bounds
from lastgang.store import Store
from lastgang.timegrid import (
    DAY,
    HOUR,
    MONTH,
    QUARTER_HOUR,
    Resolution,
    aggregate,
    end_labels,
    zone,
)

__all__ = ["Chart", "Series", "monitoring_chart", "unit_chart"]

FloatArray = NDArray[np.float64]

_BARS: dict[str, Resolution] = {"day": QUARTER_HOUR, "week": HOUR, "month": DAY, "year": MONTH}


@dataclass(frozen=True)
class Series:
    name: str
    kind: str
    values: list[float | None]
    colour: str | None = None


@dataclass(frozen=True)
class Chart:
    title: str
    view: str
    day: date
    prev: date
    next: date
    unit: str
    #: local wall time of each bar's start (ISO, no offset: the x axis of the chart)
    x: list[str]
    #: width of each bar in milliseconds
    widths: list[int]
    #: period END label of each bar (TOR-4.2)
    labels: list[str]
    series: list[Series]
    summary: str
    totals: dict[str, float | None]


def _step(view: str, day: date) -> tuple[date, date]:
    if view == "day":
        return day - timedelta(days=1), day + timedelta(days=1)
    if view == "week":
        return day - timedelta(days=7), day + timedelta(days=7)
    if view == "month":
        first = day.replace(day=1)
        prev = (first - timedelta(days=1)).replace(day=1)
        nxt = (first + timedelta(days=32)).replace(day=1)
        return prev, nxt
    return day.replace(year=day.year - 1, month=1, day=1), day.replace(
        year=day.year + 1, month=1, day=1
    )


def _concept(store: Store, site: Site, start: int, stop: int) -> ConceptResult:
    ids = [loc.id for loc in site.locations]
    profiles = store.load_profiles(site.site.id, ids, start, stop)
    return evaluate_concept(site, profiles, start, stop)


def _row(concept: ConceptResult, meter: str, what: str) -> FloatArray:
    arr = concept.import_kwh if what == "import" else concept.export_kwh
    out: FloatArray = arr[concept.index(meter)].astype(np.float64)
    return out


def _zero_nan(values: FloatArray) -> FloatArray:
    out: FloatArray = np.nan_to_num(values, nan=0.0)
    return out


def _consumer_meters(site: Site, unit_id: str) -> list[str]:
    roles = {item.id: item.role for item in site.meter_ids().values()}
    unit = next(u for u in site.units if u.id == unit_id)
    return [m for m in unit.meters if roles.get(m) is Role.CONSUMER]


def _unit_consumption(site: Site, concept: ConceptResult) -> dict[str, FloatArray]:
    n = len(concept)
    out: dict[str, FloatArray] = {}
    for unit_id in consumer_units(site):
        total = np.zeros(n)
        for meter in _consumer_meters(site, unit_id):
            total = total + _row(concept, meter, "import")
        out[unit_id] = total
    return out


def _allocation_inputs(
    site: Site, concept: ConceptResult
) -> tuple[dict[str, FloatArray], dict[str, FloatArray], FloatArray | None]:
    consumption = {k: _zero_nan(v) for k, v in _unit_consumption(site, concept).items()}
    production = {s: _zero_nan(_row(concept, s, "export")) for s in billing_sources(site)}
    balance = site.billing.balance_meter
    balance_export = None if balance is None else _zero_nan(_row(concept, balance, "export"))
    return consumption, production, balance_export


def monitoring_data(store: Store, site: Site, start: int, stop: int) -> MonitoringData:
    """What the monitoring chart shows for ``[start, stop)`` (see
    :class:`~lastgang.report.charts.MonitoringData`)."""
    concept = _concept(store, site, start, stop)
    n = stop - start
    names = dict(zip(concept.ids, concept.names or concept.ids, strict=False))
    unit_names = {u.id: u.name or u.id for u in site.units}
    consumption_raw = _unit_consumption(site, concept)
    consumption, production, balance_export = _allocation_inputs(site, concept)
    self_consumed = np.zeros(n)
    if production and consumption:
        alloc = allocate_site(
            site, consumption, production, balance_export=balance_export, start=start
        )
        self_consumed = alloc.local.sum(axis=0)
    grid = [loc.id for loc in site.locations if loc.role is Role.GRID]
    grid_import = np.zeros(n)
    grid_export = np.zeros(n)
    for g in grid:
        grid_import = grid_import + _row(concept, g, "import")
        grid_export = grid_export + _row(concept, g, "export")
    own_draw = np.zeros(n)
    for s in billing_sources(site):
        own_draw = own_draw + _zero_nan(_row(concept, s, "import"))
    return MonitoringData(
        start=start,
        stop=stop,
        tz=site.site.timezone,
        production={names.get(s, s): _row(concept, s, "export") for s in billing_sources(site)},
        consumption={unit_names[k]: v for k, v in consumption_raw.items()},
        grid_import=grid_import,
        grid_export=grid_export,
        self_consumed=self_consumed,
        unit_own_draw=own_draw,
    )


def _bars(
    site: Site, view: str, start: int, stop: int
) -> tuple[Resolution, list[str], list[int], list[str], NDArray[np.int64]]:
    res = _BARS[view]
    tz = zone(site.site.timezone)
    bounds, _ = aggregate(np.zeros(stop - start), start, res, tz)
    labels_all = end_labels(start, stop, tz)
    x = [
        datetime.fromtimestamp(int(b) * 900, UTC).astimezone(tz).strftime("%Y-%m-%d %H:%M")
        for b in bounds[:-1].tolist()
    ]
    widths = [int(w) * 900_000 for w in np.diff(bounds).tolist()]
    labels = [labels_all[int(b) - start - 1] for b in bounds[1:].tolist()]
    return res, x, widths, labels, bounds


def _sum(values: FloatArray, start: int, res: Resolution, tz: str, scale: float) -> list[Any]:
    _, sums = aggregate(values, start, res, zone(tz))
    return [None if v != v else round(float(v) * scale, 6) for v in sums.tolist()]


#: production colours (SM-4 charts): PV yellow, an emergency power unit or battery green
_PV = ("#F2B705", "#D9A404", "#F7D154", "#FFE699")
_UNIT = ("#2E9E4F", "#7CC47F", "#1B6E36", "#A8D5A2")


def _colour(site: Site, name: str, k: int) -> str:
    """Yellow for PV, green for a source that is a virtual meter (emergency power unit) or a
    storage location."""
    meters = {item.name or item.id: item for item in site.meter_ids().values()}
    item = meters.get(name)
    virtual = item is not None and item.id in {v.id for v in site.virtual_meters}
    storage = item is not None and item.role is Role.STORAGE
    return (_UNIT if virtual or storage else _PV)[k % 4]


def _check_view(view: str) -> None:
    if view not in _BARS:
        raise InvalidInput(f"unknown view {view!r}: use day, week, month or year")


def monitoring_chart(store: Store, site: Site, view: str, day: date) -> Chart:
    """The monitoring chart of a site (SM-4) for the view holding ``day``."""
    _check_view(view)
    tz = site.site.timezone
    start, stop = view_bounds(view, day, tz)  # type: ignore[arg-type]
    data = monitoring_data(store, site, start, stop)
    res, x, widths, labels, _ = _bars(site, view, start, stop)
    scale = 4.0 if view == "day" else 1.0
    series = [
        Series(name, "production", _sum(v, start, res, tz, scale), _colour(site, name, k))
        for k, (name, v) in enumerate(data.production.items())
    ]
    if np.any(data.unit_own_draw > 0):
        series.append(
            Series(
                "Own draw of the emergency power unit",
                "own_draw",
                [
                    None if v is None else -v
                    for v in _sum(data.unit_own_draw, start, res, tz, scale)
                ],
            )
        )
    total = np.zeros(stop - start)
    for v in data.consumption.values():
        total = total + v
    series.append(
        Series("Consumption (all units)", "consumption", _sum(total, start, res, tz, scale))
    )
    series.append(
        Series("From the grid", "grid_import", _sum(data.grid_import, start, res, tz, scale))
    )
    series.append(
        Series(
            "To the grid",
            "grid_export",
            [None if v is None else -v for v in _sum(data.grid_export, start, res, tz, scale)],
        )
    )
    r = ratios(data)
    prev, nxt = _step(view, day)
    return Chart(
        title=f"{site.site.name or site.site.id}: {labels[0] if labels else ''} – "
        f"{labels[-1] if labels else ''}",
        view=view,
        day=day,
        prev=prev,
        next=nxt,
        unit="kW" if view == "day" else "kWh",
        x=x,
        widths=widths,
        labels=labels,
        series=series,
        summary=_summary(r),
        totals=r,
    )


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f} %"


def _summary(r: dict[str, float | None]) -> str:
    def kwh(key: str) -> str:
        v = r.get(key)
        return "–" if v is None else f"{v:,.1f} kWh"

    return (
        f"Production {kwh('production_kwh')}, consumption {kwh('consumption_kwh')}, "
        f"self-consumption ratio {_pct(r.get('self_consumption_ratio'))}, "
        f"self-sufficiency {_pct(r.get('self_sufficiency_ratio'))}"
    )


def unit_chart(store: Store, site: Site, unit_id: str, view: str, day: date) -> Chart:
    """The consumption of one billing unit with its local/grid split (SM-5)."""
    _check_view(view)
    tz = site.site.timezone
    start, stop = view_bounds(view, day, tz)  # type: ignore[arg-type]
    concept = _concept(store, site, start, stop)
    consumption, production, balance_export = _allocation_inputs(site, concept)
    res, x, widths, labels, _ = _bars(site, view, start, stop)
    scale = 4.0 if view == "day" else 1.0
    raw = _unit_consumption(site, concept).get(unit_id)
    if raw is None:
        raise InvalidInput(f"unit {unit_id!r} has no consumer meter: there is nothing to chart")
    missing = np.isnan(raw)
    if production:
        alloc = allocate_site(
            site, consumption, production, balance_export=balance_export, start=start
        )
        i = alloc.consumer_index(unit_id)
        local = np.where(missing, np.nan, alloc.local[i])
        grid = np.where(missing, np.nan, alloc.grid[i])
    else:
        local = np.where(missing, np.nan, 0.0)
        grid = raw
    local_sum = float(np.nansum(local))
    grid_sum = float(np.nansum(grid))
    used = local_sum + grid_sum
    share = None if used == 0 else local_sum / used
    prev, nxt = _step(view, day)
    return Chart(
        title=f"{next(u.name or u.id for u in site.units if u.id == unit_id)}: "
        f"{labels[0] if labels else ''} – {labels[-1] if labels else ''}",
        view=view,
        day=day,
        prev=prev,
        next=nxt,
        unit="kW" if view == "day" else "kWh",
        x=x,
        widths=widths,
        labels=labels,
        series=[
            Series("Local (solar/battery)", "local", _sum(local, start, res, tz, scale)),
            Series("Grid", "grid", _sum(grid, start, res, tz, scale)),
        ],
        summary=(
            f"Consumption {used:,.1f} kWh: local {local_sum:,.1f} kWh ({_pct(share)}), "
            f"grid {grid_sum:,.1f} kWh"
        ),
        totals={"consumption_kwh": used, "local_kwh": local_sum, "grid_kwh": grid_sum},
    )
