"""Chart data for the pages: the monitoring chart of a site (SM-4) and the consumption of one
billing unit with its local/grid split (SM-5), for a day, week, month or year.

The numbers come from :mod:`lastgang.monitoring`, the same as ``lastgang chart`` draws: the stored
profiles go through the measurement concept (inverted meters swapped, virtual meters evaluated)
and the allocation of the site's ``[billing]`` rule with the inputs a billing run uses; this
module only sums them to the bars of the view (:func:`~lastgang.timegrid.aggregate`: local
calendar periods, 92/96/100 quarter hours a day).
A day is drawn in kW (average power of each quarter hour = kWh x 4), longer views in kWh.

A view costs the allocation of the whole site over it (a unit's share depends on every other
unit), so what a view made is kept by the site's change stamp
(:meth:`~lastgang.store.Store.change_stamp`, drawn again by every import, rebuild and
configuration change): a unit's chart makes the split of every unit at once, and the next
request for the view, for any unit, takes it from there.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TypeVar, cast

import numpy as np
from numpy.typing import NDArray

from lastgang.allocation import consumer_meters, consumer_units
from lastgang.cache import SizedCache
from lastgang.concept.model import Role, Site
from lastgang.errors import InvalidInput
from lastgang.monitoring import (
    consumption_of,
    monitoring_data,
    monitoring_sources,
    site_allocation,
    stored_concept,
)
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
    period_boundaries,
    zone,
)

__all__ = ["Chart", "Series", "monitoring_chart", "unit_chart"]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
_T = TypeVar("_T")

_BARS: dict[str, Resolution] = {"day": QUARTER_HOUR, "week": HOUR, "month": DAY, "year": MONTH}

#: quarter-hour values of a site's profiles a chart reads, evaluates and allocates at once (about
#: 1 GB at 35 million). The allocation is slot by slot, so a longer view is taken a block of
#: slots at a time and needs the memory of one block: a year of 1,000 locations is one block, a
#: year of 10,000 eight blocks of 50 days. Each block costs the per-location work again, so the
#: blocks are no smaller than they must be.
CHART_BLOCK_VALUES = 48_000_000

#: values of the units' local and grid energy summed to bars at once
_UNIT_BLOCK_VALUES = 2**20


#: charts made at the same time (each holds up to :data:`CHART_BLOCK_VALUES` values with their
#: allocation, about 1.4 GB); a further request waits for one of them to end
CHARTS_MADE_AT_ONCE = 2
_MAKING = threading.BoundedSemaphore(CHARTS_MADE_AT_ONCE)

#: the data of the charts made, by site, change stamp and view (a year's split of 10,000 units
#: is 2 MB): a chart is made again only when the site's configuration or profiles changed
_KEPT: SizedCache[tuple[Hashable, ...], object] = SizedCache(256 * 2**20)


def _blocks(site: Site, edges: IntArray) -> list[tuple[int, int]]:
    """The slots from ``edges[0]`` to ``edges[-1]`` (the bars' boundaries, ascending) in blocks
    of at most :data:`CHART_BLOCK_VALUES` values of the site's locations (at least a day each),
    each ending on a bar's edge wherever a bar fits into one."""
    start, stop = int(edges[0]), int(edges[-1])
    step = max(96, CHART_BLOCK_VALUES // max(len(site.locations), 1))
    out: list[tuple[int, int]] = []
    a = start
    while a < stop:
        # the farthest edge within a block's reach; a bar longer than a block is cut
        k = int(np.searchsorted(edges, a + step, side="right")) - 1
        b = int(edges[k]) if k >= 0 and edges[k] > a else min(a + step, stop)
        out.append((a, b))
        a = b
    return out or [(start, stop)]


def _monitoring_block(store: Store, site: Site, start: int, stop: int) -> MonitoringData:
    """The monitoring data of ``[start, stop)`` with the consumption of all units as one
    series (summed unit by unit, as the chart sums them)."""
    concept = stored_concept(store, site, start, stop)
    # the legend names a source as the site file does (the page adds no "Production:")
    data = monitoring_data(site, concept, site_allocation(site, concept), source_label=str)
    total = np.zeros(stop - start)
    for v in data.consumption.values():
        total = total + v
    return MonitoringData(
        start,
        stop,
        data.tz,
        data.production,
        {"": total},
        data.grid_import,
        data.grid_export,
        data.self_consumed,
        data.unit_own_draw,
    )


def _joined(parts: list[MonitoringData]) -> MonitoringData:
    """Consecutive blocks of monitoring data as one."""
    if len(parts) == 1:
        return parts[0]

    def cat(field: str) -> FloatArray:
        return np.concatenate([getattr(p, field) for p in parts])

    first = parts[0]
    return MonitoringData(
        first.start,
        parts[-1].stop,
        first.tz,
        {k: np.concatenate([p.production[k] for p in parts]) for k in first.production},
        {k: np.concatenate([p.consumption[k] for p in parts]) for k in first.consumption},
        cat("grid_import"),
        cat("grid_export"),
        cat("self_consumed"),
        cat("unit_own_draw"),
    )


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
    #: local wall time where the last bar ends (ISO, no offset: closes a step line)
    end: str
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


@dataclass(frozen=True)
class _Bars:
    """The bars of a view: the slots ``[start, stop)`` of the day, week, month or year that
    holds ``day`` in the site's time zone, summed to quarter hours (in kW), hours, days or
    months."""

    view: str
    day: date
    tz: str
    start: int
    stop: int
    res: Resolution
    #: the slots where the bars begin, then ``stop``
    edges: IntArray
    x: list[str]
    widths: list[int]
    labels: list[str]

    @classmethod
    def of(cls, site: Site, view: str, day: date) -> _Bars:
        if view not in _BARS:
            raise InvalidInput(f"unknown view {view!r}: use day, week, month or year")
        tz = site.site.timezone
        start, stop = view_bounds(view, day, tz)  # type: ignore[arg-type]
        res, local = _BARS[view], zone(tz)
        bounds, _ = aggregate(np.zeros(stop - start), start, res, local)
        labels_all = end_labels(start, stop, local)
        x = [
            datetime.fromtimestamp(int(b) * 900, UTC).astimezone(local).strftime("%Y-%m-%d %H:%M")
            for b in bounds[:-1].tolist()
        ]
        widths = [int(w) * 900_000 for w in np.diff(bounds).tolist()]
        labels = [labels_all[int(b) - start - 1] for b in bounds[1:].tolist()]
        return cls(view, day, tz, start, stop, res, bounds, x, widths, labels)

    def values(self, kwh: FloatArray, *, below: bool = False) -> list[float | None]:
        """One value a bar (kW in the day view: kWh x 4), negated ``below`` the 0 line; a bar
        with a missing quarter hour is ``None``."""
        _, sums = aggregate(kwh, self.start, self.res, zone(self.tz))
        return self.shown(sums, below=below)

    def shown(self, sums: FloatArray, *, below: bool = False) -> list[float | None]:
        """:meth:`values` of the bars' sums (``NaN``: a bar with a missing quarter hour)."""
        scale = 4.0 if self.view == "day" else 1.0
        out = [None if v != v else round(float(v) * scale, 6) for v in sums.tolist()]
        return [None if v is None else -v for v in out] if below else out

    def chart(
        self, name: str, series: list[Series], summary: str, totals: dict[str, float | None]
    ) -> Chart:
        prev, nxt = _step(self.view, self.day)
        labels = self.labels
        local = zone(self.tz)
        first = datetime.fromtimestamp(self.start * 900, UTC).astimezone(local)
        last = datetime.fromtimestamp((self.stop - 1) * 900, UTC).astimezone(local).date()
        # the whole local days the chart shows, by date (a day is named by its date)
        days = f"{first.date()}" if first.date() == last else f"{first.date()} – {last}"
        return Chart(
            title=f"{name}: {days}",
            view=self.view,
            day=self.day,
            prev=prev,
            next=nxt,
            unit="kW" if self.view == "day" else "kWh",
            x=self.x,
            widths=self.widths,
            end=datetime.fromtimestamp(self.stop * 900, UTC)
            .astimezone(local)
            .strftime("%Y-%m-%d %H:%M"),
            labels=labels,
            series=series,
            summary=summary,
            totals=totals,
        )


#: production colours (SM-4 charts): PV yellow, an emergency power unit or battery green
_PV = ("#F2B705", "#D9A404", "#F7D154", "#FFE699")
_UNIT = ("#2E9E4F", "#7CC47F", "#1B6E36", "#A8D5A2")


def _colour(site: Site, source: str, k: int) -> str:
    """Yellow for PV, green for a source that is a virtual meter (emergency power unit) or a
    storage location."""
    item = site.meter_ids().get(source)
    virtual = item is not None and item.id in {v.id for v in site.virtual_meters}
    storage = item is not None and item.role is Role.STORAGE
    return (_UNIT if virtual or storage else _PV)[k % 4]


def _kept(site: Site, stamp: str | None, what: tuple[Hashable, ...], make: Callable[[], _T]) -> _T:
    """``make()`` at most :data:`CHARTS_MADE_AT_ONCE` at a time, kept by the site's change
    ``stamp`` and ``what`` it shows (not kept without a stamp)."""

    def made() -> _T:
        with _MAKING:
            return make()

    key = None if stamp is None else (site.site.id, stamp, *what)
    return cast(_T, _KEPT.get_or_make(key, made, _size))


def _size(value: object) -> int:
    """Roughly what a kept value holds, in bytes: a split's arrays, or a chart's series (a
    float and its list entry a value)."""
    if isinstance(value, _UnitBars):
        return value.nbytes
    series, _, _ = cast(tuple[list[Series], str, dict[str, float | None]], value)
    return 1024 + 32 * sum(len(s.values) for s in series)


def monitoring_chart(
    store: Store, site: Site, view: str, day: date, *, stamp: str | None = None
) -> Chart:
    """The monitoring chart of a site (SM-4) for the view holding ``day``. ``stamp`` is the
    site's :meth:`~lastgang.store.Store.change_stamp`, read before ``site``: a view made for
    the same stamp is taken again, not made again."""
    bars = _Bars.of(site, view, day)
    series, summary, totals = _kept(
        site,
        stamp,
        ("monitoring", bars.view, bars.start, bars.stop),
        lambda: _monitoring_series(store, site, bars),
    )
    return bars.chart(site.site.name or site.site.id, series, summary, totals)


def _monitoring_series(
    store: Store, site: Site, bars: _Bars
) -> tuple[list[Series], str, dict[str, float | None]]:
    blocks = _blocks(site, bars.edges)
    data = _joined([_monitoring_block(store, site, a, b) for a, b in blocks])
    series = [
        Series(name, "production", bars.values(v), _colour(site, source, k))
        for k, (source, (name, v)) in enumerate(
            zip(monitoring_sources(site), data.production.items(), strict=True)
        )
    ]
    if np.any(data.unit_own_draw > 0):
        series.append(
            Series(
                "Own draw of the emergency power unit",
                "own_draw",
                bars.values(data.unit_own_draw, below=True),
            )
        )
    total = np.zeros(bars.stop - bars.start)
    for v in data.consumption.values():
        total = total + v
    series += [
        Series("Consumption (all units)", "consumption", bars.values(total)),
        Series("From the grid", "grid_import", bars.values(data.grid_import)),
        Series("To the grid", "grid_export", bars.values(data.grid_export, below=True)),
    ]
    r = ratios(data)
    return series, _summary(r), r


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


@dataclass(frozen=True)
class _UnitBars:
    """The local and grid energy of every consuming unit over one view (row: the unit's place
    in :func:`~lastgang.allocation.consumer_meters`), summed to the view's bars (``NaN``: a bar
    with a quarter hour the unit has no value for) and over the whole view (those quarter hours
    left out)."""

    units: dict[str, int]
    local: FloatArray
    grid: FloatArray
    local_sum: FloatArray
    grid_sum: FloatArray

    @property
    def nbytes(self) -> int:
        arrays = (self.local, self.grid, self.local_sum, self.grid_sum)
        return sum(a.nbytes for a in arrays) + 100 * len(self.units)


def _unit_bars(store: Store, site: Site, bars: _Bars) -> _UnitBars:
    """:class:`_UnitBars` of every unit at once: the allocation a unit's chart needs is that of
    the whole site, so the next unit's chart of the view costs nothing more. Taken in blocks of
    whole bars where a bar fits into one (a bar cut by blocks is the sum of its parts), a few
    units at a time, so no ``[units, slots]`` array is made beyond the allocation's own."""
    meters = consumer_meters(site)
    units = list(meters)
    shape = (len(units), len(bars.edges) - 1)
    local, grid = np.zeros(shape), np.zeros(shape)
    local_sum, grid_sum = np.zeros(len(units)), np.zeros(len(units))
    tz = zone(bars.tz)
    for a, b in _blocks(site, bars.edges):
        concept = stored_concept(store, site, a, b)
        alloc = site_allocation(site, concept)
        rows = [alloc.consumer_index(u) for u in units]
        first = int(np.searchsorted(bars.edges, a, side="right")) - 1
        # the block's first bar began in an earlier block: add to it; every other is whole
        cut = int(bars.edges[first]) != a
        # where the block's bars begin (as aggregate finds them), found once for all units
        offsets = period_boundaries(a, b, bars.res, tz)[:-1] - a
        # units a few million values at a time (8 MB of local energy)
        size = max(8, _UNIT_BLOCK_VALUES // (b - a))
        for positions, local_kwh, grid_kwh in alloc.blocks(rows, size=size):
            picked = range(positions.start, positions.stop)
            missing = np.stack(
                [np.isnan(consumption_of(concept, meters[units[k]])) for k in picked]
            )
            if missing.any():
                local_kwh = np.where(missing, np.nan, local_kwh)
                grid_kwh = np.where(missing, np.nan, grid_kwh)
            for into, values in ((local, local_kwh), (grid, grid_kwh)):
                sums = np.add.reduceat(values, offsets, axis=-1)
                part = into[positions, first : first + sums.shape[1]]
                if cut:
                    sums[:, 0] += part[:, 0]
                part[...] = sums
            local_sum[positions] += np.nansum(local_kwh, axis=1)
            grid_sum[positions] += np.nansum(grid_kwh, axis=1)
    return _UnitBars({u: i for i, u in enumerate(units)}, local, grid, local_sum, grid_sum)


def unit_chart(
    store: Store, site: Site, unit_id: str, view: str, day: date, *, stamp: str | None = None
) -> Chart:
    """The consumption of one billing unit with its local/grid split (SM-5). ``stamp`` as for
    :func:`monitoring_chart`: one view's split is made for every unit at once and kept."""
    bars = _Bars.of(site, view, day)
    if unit_id not in consumer_units(site):
        raise InvalidInput(f"unit {unit_id!r} has no consumer meter: there is nothing to chart")
    made = _kept(
        site,
        stamp,
        ("units", bars.view, bars.start, bars.stop),
        lambda: _unit_bars(store, site, bars),
    )
    i = made.units[unit_id]
    local_sum = float(made.local_sum[i])
    grid_sum = float(made.grid_sum[i])
    used = local_sum + grid_sum
    share = None if used == 0 else local_sum / used
    return bars.chart(
        next(u.name or u.id for u in site.units if u.id == unit_id),
        [
            Series("Local (solar/battery)", "local", bars.shown(made.local[i])),
            Series("Grid", "grid", bars.shown(made.grid[i])),
        ],
        (
            f"Consumption {used:,.1f} kWh: local {local_sum:,.1f} kWh ({_pct(share)}), "
            f"grid {grid_sum:,.1f} kWh"
        ),
        {"consumption_kwh": used, "local_kwh": local_sum, "grid_kwh": grid_sum},
    )
