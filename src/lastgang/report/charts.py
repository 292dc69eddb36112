"""Monitoring graphics (SM-4): production and consumption over time, as PNG and offline HTML.

A chart shows, per period (a bar):

- above 0: local production, stacked per source (PV yellow, emergency power unit green);
- a black line: the consumption of all billing units together;
- below 0 (hatched red): the emergency power unit's own draw, when it takes power instead of
  giving it (standby, or charging its battery from the grid). SM-4 draws it below the 0 line;
- a second panel: what the grid connection meter (HAK) measured, import from the grid (grey,
  above 0) and export to the grid (blue, below 0).

The header states the self-consumption ratio (Eigenverbrauchsquote: self-consumed / production)
and the self-sufficiency ratio (Autarkiegrad: self-consumed / consumption) of what is shown, see
:func:`ratios` and ``docs/monitoring.md``.

Time on the x axis is the site's legal time. Every bar spans its period; the period 10:00-10:15
is the bar between the 10:00 and the 10:15 marks and its value carries the label 10:15 (TOR-4.2,
period-END labels). Quarter-hour views (``day``) are drawn in kW (average power of the quarter
hour = kWh x 4), the others in kWh per period. Periods are local calendar periods from
:func:`lastgang.timegrid.aggregate`; a day has 92, 96 or 100 quarter hours.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl
from numpy.typing import NDArray

from lastgang.errors import InvalidInput
from lastgang.timegrid import (
    DAY,
    HOUR,
    MONTH,
    QUARTER_HOUR,
    Resolution,
    aggregate,
    day_slots,
    end_labels,
    month_slots,
    period_slots,
    zone,
)

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

__all__ = [
    "VIEWS",
    "MonitoringData",
    "View",
    "ratios",
    "render_html",
    "render_png",
    "view_bounds",
]

View = Literal["day", "week", "month", "year"]
VIEWS: tuple[View, ...] = ("day", "week", "month", "year")

#: bar size of each view (the resolution the data is summed to)
_BARS: dict[str, Resolution] = {"day": QUARTER_HOUR, "week": HOUR, "month": DAY, "year": MONTH}

# colours: production yellow/green, grid import grey, export blue, own draw red (hatched)
_PV_COLOURS = ("#F2B705", "#F7D154", "#D9A404", "#FFE699")
_UNIT_COLOURS = ("#2E9E4F", "#7CC47F", "#1B6E36", "#A8D5A2")
_CONSUMPTION = "#1F1F1F"
_IMPORT = "#8C8C8C"
_EXPORT = "#2C7FB8"
_OWN_DRAW = "#C0392B"
_MISSING = "#E6E6E6"

_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


@dataclass(frozen=True, eq=False)
class MonitoringData:
    """What a monitoring chart shows, kWh per slot ``[start, stop)`` (UTC slots, non-negative).

    - ``production``: per source (e.g. "PV roof", "Emergency power unit"), what it gave;
    - ``consumption``: per billing unit, what it used;
    - ``grid_import`` / ``grid_export``: measured at the grid connection (balance meter, HAK);
    - ``self_consumed``: local production used by the consumers (the local share of SM-5);
    - ``unit_own_draw``: what the emergency power unit drew itself (standby, charging from the
      grid), drawn below the 0 line (SM-4).

    A ``NaN`` marks a slot without data; its period is shaded and left out of the sums.
    """

    start: int
    stop: int
    tz: str
    production: dict[str, FloatArray]
    consumption: dict[str, FloatArray]
    grid_import: FloatArray
    grid_export: FloatArray
    self_consumed: FloatArray
    unit_own_draw: FloatArray = field(default_factory=lambda: np.zeros(0))

    def __post_init__(self) -> None:
        n = self.stop - self.start
        if n < 0:
            raise InvalidInput(
                f"monitoring data ends before it starts: [{self.start}, {self.stop})"
            )
        if len(self.unit_own_draw) == 0 and n:
            object.__setattr__(self, "unit_own_draw", np.zeros(n))
        wrong = [name for name, values in self._series() if np.asarray(values).shape != (n,)]
        if wrong:
            raise InvalidInput(
                f"monitoring data for {n} slots: {', '.join(wrong)} must have one value per slot"
            )
        zone(self.tz)

    def _series(self) -> list[tuple[str, FloatArray]]:
        out = [(f"production[{k!r}]", v) for k, v in self.production.items()]
        out += [(f"consumption[{k!r}]", v) for k, v in self.consumption.items()]
        out += [
            ("grid_import", self.grid_import),
            ("grid_export", self.grid_export),
            ("self_consumed", self.self_consumed),
            ("unit_own_draw", self.unit_own_draw),
        ]
        return out

    @property
    def total_production(self) -> FloatArray:
        """Production of all sources per slot."""
        return _sum(list(self.production.values()), self.stop - self.start)

    @property
    def total_consumption(self) -> FloatArray:
        """Consumption of all units per slot."""
        return _sum(list(self.consumption.values()), self.stop - self.start)

    def window(self, start: int, stop: int) -> MonitoringData:
        """The slots ``[start, stop)``, which must lie inside the data."""
        if not self.start <= start <= stop <= self.stop:
            raise InvalidInput(
                f"window [{start}, {stop}) is outside the data [{self.start}, {self.stop})"
            )
        a, b = start - self.start, stop - self.start
        return MonitoringData(
            start,
            stop,
            self.tz,
            {k: v[a:b] for k, v in self.production.items()},
            {k: v[a:b] for k, v in self.consumption.items()},
            self.grid_import[a:b],
            self.grid_export[a:b],
            self.self_consumed[a:b],
            self.unit_own_draw[a:b],
        )


def _sum(arrays: Sequence[FloatArray], n: int) -> FloatArray:
    out = np.zeros(n)
    for a in arrays:
        out = out + np.asarray(a, dtype=np.float64)
    return out


# --------------------------------------------------------------------------------------------
# ratios


def ratios(data: MonitoringData) -> dict[str, float | None]:
    """Totals in kWh and the two ratios of the data, over the slots that have all values.

    - ``self_consumption_ratio`` (Eigenverbrauchsquote) = self-consumed / production: the part
      of the local production used in the building;
    - ``self_sufficiency_ratio`` (Autarkiegrad) = self-consumed / consumption: the part of the
      consumption covered by local production.

    A ratio is ``None`` when its denominator is 0. ``missing_slots`` counts slots left out
    because a value is NaN.
    """
    production = data.total_production
    consumption = data.total_consumption
    series = [
        production,
        consumption,
        data.grid_import,
        data.grid_export,
        data.self_consumed,
        data.unit_own_draw,
    ]
    ok = np.ones(data.stop - data.start, dtype=bool)
    for s in series:
        ok &= np.isfinite(s)
    produced, used, imported, exported, local, own = (float(s[ok].sum()) for s in series)
    return {
        "production_kwh": produced,
        "consumption_kwh": used,
        "self_consumed_kwh": local,
        "grid_import_kwh": imported,
        "grid_export_kwh": exported,
        "unit_own_draw_kwh": own,
        "self_consumption_ratio": local / produced if produced > 0 else None,
        "self_sufficiency_ratio": local / used if used > 0 else None,
        "missing_slots": float(int((~ok).sum())),
    }


# --------------------------------------------------------------------------------------------
# periods and their labels


def view_bounds(view: View, day: date, tz: str) -> tuple[int, int]:
    """Slots ``[start, stop)`` of the local day, the Monday-to-Sunday week, the month or the
    year that holds ``day``."""
    if view == "day":
        return day_slots(day, tz)
    if view == "week":
        monday = day - timedelta(days=day.weekday())
        return period_slots(monday, monday + timedelta(days=6), tz)
    if view == "month":
        return month_slots(day.year, day.month, tz)
    if view == "year":
        return period_slots(date(day.year, 1, 1), date(day.year, 12, 31), tz)
    raise InvalidInput(f"unknown view {view!r}: use one of {', '.join(VIEWS)}")


def _view(resolution: str) -> View:
    if resolution not in _BARS:
        raise InvalidInput(f"unknown resolution {resolution!r}: use one of {', '.join(VIEWS)}")
    return resolution  # type: ignore[return-value]


@dataclass(frozen=True, eq=False)
class _Bars:
    """The data summed to the bars of one view."""

    view: View
    bounds: IntArray  # slot boundaries, one more than bars
    production: dict[str, FloatArray]
    consumption: dict[str, FloatArray]
    total_consumption: FloatArray
    grid_import: FloatArray
    grid_export: FloatArray
    own_draw: FloatArray
    missing: NDArray[np.bool_]
    scale: float  # kWh -> shown unit (4 for kW of a quarter hour)
    unit: str

    @property
    def n(self) -> int:
        return len(self.bounds) - 1


def _bars(data: MonitoringData, view: View) -> _Bars:
    resolution = _BARS[view]
    n = data.stop - data.start

    def agg(values: FloatArray) -> tuple[IntArray, FloatArray]:
        return aggregate(np.asarray(values, dtype=np.float64), data.start, resolution, data.tz)

    bounds, _ = agg(np.zeros(n))
    missing = np.zeros(len(bounds) - 1, dtype=bool)

    def summed(values: FloatArray) -> FloatArray:
        _, sums = agg(values)
        nan = ~np.isfinite(sums)
        missing[nan] = True
        out: FloatArray = np.where(nan, 0.0, sums)
        return out

    production = {k: summed(v) for k, v in data.production.items()}
    consumption = {k: summed(v) for k, v in data.consumption.items()}
    scale, unit = (4.0, "kW") if view == "day" else (1.0, "kWh")
    return _Bars(
        view,
        bounds,
        production,
        consumption,
        summed(data.total_consumption),
        summed(data.grid_import),
        summed(data.grid_export),
        summed(data.unit_own_draw),
        missing,
        scale,
        unit,
    )


def _local_parts(slots: IntArray, tz: str) -> pl.DataFrame:
    """Local date and time parts of the instants ``slots x 900 s``."""
    series = (
        pl.Series(np.asarray(slots, dtype=np.int64) * 900_000)
        .cast(pl.Datetime("ms"))
        .dt.replace_time_zone("UTC")
        .dt.convert_time_zone(tz)
    )
    return pl.DataFrame(
        {
            "year": series.dt.year(),
            "month": series.dt.month(),
            "day": series.dt.day(),
            "weekday": series.dt.weekday() - 1,  # 0 = Monday
            "hour": series.dt.hour(),
            "minute": series.dt.minute(),
        }
    )


def _end_clock(bounds: IntArray, tz: str) -> list[str]:
    """``HH:MM`` period-end label (TOR-4.2) of each boundary after the first, with the UTC
    offset in the repeated autumn hour; local midnight reads ``24:00``."""
    labels: list[str] = []
    for b in bounds[1:].tolist():
        text = end_labels(int(b) - 1, int(b), tz, offset="ambiguous")[0]
        labels.append(text.split(" ", 1)[1])
    return labels


def _period_names(bars: _Bars, tz: str) -> list[str]:
    """A readable name of each bar (used for hover texts and category labels)."""
    parts = _local_parts(bars.bounds[:-1], tz)
    days = parts["day"].to_list()
    months = parts["month"].to_list()
    years = parts["year"].to_list()
    weekdays = parts["weekday"].to_list()
    if bars.view == "year":
        return [f"{_MONTHS[m - 1]} {y}" for m, y in zip(months, years, strict=True)]
    if bars.view == "month":
        return [
            f"{_WEEKDAYS[w]} {d:02d}.{m:02d}.{y}"
            for w, d, m, y in zip(weekdays, days, months, years, strict=True)
        ]
    starts = [f"{h:02d}:{mi:02d}" for h, mi in zip(parts["hour"], parts["minute"], strict=True)]
    ends = _end_clock(bars.bounds, tz)
    return [
        f"{_WEEKDAYS[w]} {d:02d}.{m:02d}. {s}-{e}"
        for w, d, m, s, e in zip(weekdays, days, months, starts, ends, strict=True)
    ]


def _period_title(bars: _Bars, tz: str) -> str:
    parts = _local_parts(np.array([bars.bounds[0], bars.bounds[-1] - 1]), tz)
    (d0, d1), (m0, m1), (y0, y1) = (parts[c].to_list() for c in ("day", "month", "year"))
    if (d0, m0, y0) == (d1, m1, y1):
        return f"{_WEEKDAYS[parts['weekday'][0]]} {d0} {_MONTHS[m0 - 1]} {y0}"
    if bars.view == "year" and m0 == 1 and m1 == 12 and y0 == y1:
        return f"Year {y0}"
    if bars.view == "month" and m0 == m1 and y0 == y1:
        return f"{_MONTHS[m0 - 1]} {y0}"
    return f"{d0} {_MONTHS[m0 - 1]} {y0} - {d1} {_MONTHS[m1 - 1]} {y1}"


def _ticks(bars: _Bars, tz: str) -> tuple[list[float], list[str], str]:
    """Tick positions, labels and the x-axis title of a view (bar ``i`` spans ``[i, i+1)``)."""
    n = bars.n
    if bars.view == "day":
        clocks = _end_clock(bars.bounds, tz)
        hours = n / 4
        step = 1 if hours <= 12 else 2 if hours <= 30 else 6
        pos: list[float] = [0.0]
        first = _local_parts(bars.bounds[:1], tz)
        labels = [f"{int(first['hour'][0]):02d}:{int(first['minute'][0]):02d}"]
        previous = None
        for k, text in enumerate(clocks, start=1):
            hour, minute = int(text[:2]), int(text[3:5])
            if minute:
                continue
            # every step-th hour, and the hour after the clocks jump (03:00 on the spring day)
            jumped = previous is not None and hour % 24 != (previous + 1) % 24 and hour > previous
            if hour % step == 0 or jumped:
                pos.append(float(k))
                labels.append(text)
            previous = hour
        title = "Legal time; each bar is one quarter hour, labelled by its end (TOR-4.2)"
        return pos, labels, title
    parts = _local_parts(bars.bounds[:-1], tz)
    if bars.view == "week":
        pos, labels = [], []
        starts = _day_starts(bars, tz)
        stops = [*starts[1:], n]
        for a, b in zip(starts, stops, strict=True):
            w, d, m = parts["weekday"][a], parts["day"][a], parts["month"][a]
            pos.append((a + b) / 2)
            labels.append(f"{_WEEKDAYS[w]} {d:02d}.{m:02d}.")
        return pos, labels, "Legal time; each bar is one hour"
    if bars.view == "month":
        step = 1 if n <= 31 else 7
        pos = [i + 0.5 for i in range(0, n, step)]
        labels = [
            f"{parts['day'][i]}" if n <= 31 else f"{parts['day'][i]:02d}.{parts['month'][i]:02d}."
            for i in range(0, n, step)
        ]
        return pos, labels, "Day of the month; each bar is one day (legal time)"
    pos = [i + 0.5 for i in range(n)]
    labels = [_MONTHS[m - 1][:3] for m in parts["month"].to_list()]
    return pos, labels, "Month; each bar is one calendar month"


def _day_starts(bars: _Bars, tz: str) -> list[int]:
    """Indices of the bars that begin a local day."""
    parts = _local_parts(bars.bounds[:-1], tz)
    key = (parts["year"] * 10_000 + parts["month"] * 100 + parts["day"]).to_numpy()
    return [0, *(np.flatnonzero(np.diff(key)) + 1).tolist()]


def _colours(names: Sequence[str]) -> list[str]:
    pv, unit = iter(_PV_COLOURS * 3), iter(_UNIT_COLOURS * 3)
    out = []
    for name in names:
        lower = name.lower()
        is_pv = any(w in lower for w in ("pv", "solar", "photovolt")) and not any(
            w in lower for w in ("battery", "unit", "storage")
        )
        out.append(next(pv) if is_pv else next(unit))
    return out


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.0f} %"


def _kwh(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:,.0f} kWh" if abs(value) >= 100 else f"{value:,.1f} kWh"


def _summary(r: dict[str, float | None]) -> tuple[str, str]:
    line1 = (
        f"Self-consumption {_percent(r['self_consumption_ratio'])} of the production  |  "
        f"Self-sufficiency {_percent(r['self_sufficiency_ratio'])} of the consumption"
    )
    line2 = (
        f"Production {_kwh(r['production_kwh'])}, consumption {_kwh(r['consumption_kwh'])}, "
        f"from the grid {_kwh(r['grid_import_kwh'])}, to the grid {_kwh(r['grid_export_kwh'])}, "
        f"unit's own draw {_kwh(r['unit_own_draw_kwh'])}"
    )
    if r.get("missing_slots"):
        line2 += f"  ({int(r['missing_slots'] or 0)} quarter hours without data left out)"
    return line1, line2


def _y_title(bars: _Bars) -> str:
    if bars.view == "day":
        return "Average power in kW"
    return {"week": "kWh per hour", "month": "kWh per day", "year": "kWh per month"}[bars.view]


# --------------------------------------------------------------------------------------------
# PNG (matplotlib)


def _fit_y(axis: Any, low: FloatArray, high: FloatArray) -> None:
    """Y limits that show every bar whole, 0 included, with a margin of 5 %."""
    lo = min(0.0, float(np.min(low, initial=0.0)))
    hi = max(0.0, float(np.max(high, initial=0.0)))
    pad = 0.05 * (hi - lo) or 1.0
    axis.set_ylim(lo - pad if lo < 0 else 0.0, hi + pad)


def render_png(
    data: MonitoringData,
    path: str | Path,
    *,
    title: str,
    resolution: str = "day",
    dpi: int = 110,
) -> Path:
    """Draw ``data`` as a PNG chart with bars of ``resolution`` (``day``: quarter hours,
    ``week``: hours, ``month``: days, ``year``: months) and return the path."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch
    from matplotlib.ticker import FuncFormatter

    view = _view(resolution)
    bars = _bars(data, view)
    n = bars.n
    s = bars.scale
    fig = Figure(figsize=(12.5, 8.0), dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1.6])
    handles: list[Any] = []
    edges = np.arange(n + 1, dtype=np.float64)
    gap = 0.07 if n <= 62 else 0.0  # few bars (days, months) are drawn apart

    def block(axis: Any, low: FloatArray, high: FloatArray, **style: Any) -> None:
        """Bars from ``low`` to ``high``: one filled step patch when bars touch (fast for
        thousands of quarter hours), separate bars when there are few."""
        if gap:
            axis.bar(
                edges[:-1] + gap, high - low, width=1 - 2 * gap, bottom=low, align="edge", **style
            )
        else:
            axis.stairs(high, edges, baseline=low, fill=True, **style)

    # production stacked above 0, own draw below 0
    base = np.zeros(n)
    names = list(bars.production)
    for name, colour in zip(names, _colours(names), strict=True):
        values = bars.production[name] * s
        block(top, base, base + values, color=colour, linewidth=0)
        handles.append(Patch(facecolor=colour, label=f"Production: {name}"))
        base = base + values
    own = bars.own_draw * s
    own_style: dict[str, Any] = {"facecolor": "#F5B7B1", "edgecolor": _OWN_DRAW, "hatch": "////"}
    if np.any(own > 0):
        block(top, -own, np.zeros(n), linewidth=0.4, **own_style)
    handles.append(
        Patch(
            **own_style,
            label="Below 0: the emergency power unit's own draw (standby, charging from the grid)",
        )
    )
    # consumption as a step line over the bars
    used = bars.total_consumption * s
    line = top.stairs(used, edges, color=_CONSUMPTION, linewidth=2.0, baseline=None)
    line.set_label("Consumption of all units")
    handles.insert(0, line)
    top.set_title("Production and consumption", loc="left", fontsize=11)

    # grid exchange
    block(bottom, np.zeros(n), bars.grid_import * s, color=_IMPORT, linewidth=0)
    block(bottom, -bars.grid_export * s, np.zeros(n), color=_EXPORT, linewidth=0)
    bottom.set_title(
        "Grid connection (HAK): import from the grid above 0, export to the grid below 0",
        loc="left",
        fontsize=11,
    )
    handles.append(Patch(facecolor=_IMPORT, label="Import from the grid"))
    handles.append(Patch(facecolor=_EXPORT, label="Export to the grid"))
    # limits from the data: autoscaling leaves bars that hang below 0 cut off at the frame
    _fit_y(top, -own, np.maximum(base, used))
    _fit_y(bottom, -bars.grid_export * s, bars.grid_import * s)
    magnitude = FuncFormatter(lambda v, _pos: f"{abs(v):g}")  # below 0 is a direction
    for axis in (top, bottom):
        axis.axhline(0.0, color="black", linewidth=0.9)
        axis.set_ylabel(_y_title(bars))
        axis.yaxis.set_major_formatter(magnitude)
        axis.grid(axis="y", color="#DDDDDD", linewidth=0.6)
        axis.set_axisbelow(True)
    if view == "week":
        for k in _day_starts(bars, data.tz)[1:]:
            for axis in (top, bottom):
                axis.axvline(k, color="#BBBBBB", linewidth=0.6, zorder=0)

    # periods without data
    for axis in (top, bottom):
        for i in np.flatnonzero(bars.missing).tolist():
            axis.axvspan(i, i + 1, color=_MISSING, zorder=0, linewidth=0)
    if bars.missing.any():
        handles.append(Patch(facecolor=_MISSING, label="No data (left out of the sums)"))

    pos, labels, xtitle = _ticks(bars, data.tz)
    bottom.set_xlim(0, max(n, 1))
    bottom.set_xticks(pos, labels, fontsize=9)
    if view == "day" and len(pos) > 13:
        bottom.tick_params(axis="x", labelrotation=45)
    bottom.set_xlabel(f"{xtitle}. Time zone {data.tz}.")

    line1, line2 = _summary(ratios(data))
    fig.suptitle(
        f"{title}\n{_period_title(bars, data.tz)}",
        fontsize=14,
        fontweight="bold",
        x=0.01,
        ha="left",
    )
    top.text(
        0.0,
        1.13,
        f"{line1}\n{line2}",
        transform=top.transAxes,
        fontsize=9.5,
        va="bottom",
        ha="left",
        bbox={"boxstyle": "round,pad=0.4", "facecolor": "#F4F9F4", "edgecolor": "#9CC79C"},
    )
    fig.legend(
        handles=handles,
        loc="outside lower center",
        ncol=3,
        fontsize=9,
        frameon=False,
    )
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png")
    return out


# --------------------------------------------------------------------------------------------
# HTML (plotly, the library inlined: works offline)


def _figure(data: MonitoringData, view: View, title: str) -> Any:
    import plotly.graph_objects as go  # type: ignore[import-untyped]
    from plotly.subplots import make_subplots  # type: ignore[import-untyped]

    bars = _bars(data, view)
    s = bars.scale
    names = _period_names(bars, data.tz)
    unit = bars.unit
    fig = make_subplots(
        rows=2,
        cols=1,
        shared_xaxes=True,
        row_heights=[0.66, 0.34],
        vertical_spacing=0.08,
        subplot_titles=(
            "Production and consumption",
            "Grid connection (HAK): import above 0, export below 0",
        ),
    )
    hover = "%{x}<br>%{fullData.name}: %{customdata:.2f} " + unit + "<extra></extra>"
    prod_names = list(bars.production)
    for name, colour in zip(prod_names, _colours(prod_names), strict=True):
        values = bars.production[name] * s
        fig.add_trace(
            go.Bar(
                x=names,
                y=values,
                customdata=values,
                name=f"Production: {name}",
                marker_color=colour,
                hovertemplate=hover,
                legendgroup="production",
            ),
            row=1,
            col=1,
        )
    own = bars.own_draw * s
    fig.add_trace(
        go.Bar(
            x=names,
            y=-own,
            customdata=own,
            name="Below 0: emergency power unit's own draw (standby, charging from the grid)",
            marker={
                "color": "#F5B7B1",
                "line": {"color": _OWN_DRAW, "width": 0.5},
                "pattern": {"shape": "/", "fgcolor": _OWN_DRAW},
            },
            hovertemplate=hover,
        ),
        row=1,
        col=1,
    )
    used = bars.total_consumption * s
    fig.add_trace(
        go.Scatter(
            x=names,
            y=used,
            customdata=used,
            name="Consumption of all units",
            mode="lines",
            line={"color": _CONSUMPTION, "width": 2.5, "shape": "hvh"},
            hovertemplate=hover,
        ),
        row=1,
        col=1,
    )
    for name, values in bars.consumption.items():
        v = values * s
        fig.add_trace(
            go.Scatter(
                x=names,
                y=v,
                customdata=v,
                name=f"Consumption: {name}",
                mode="lines",
                line={"width": 1.2, "shape": "hvh", "dash": "dot"},
                visible="legendonly",
                hovertemplate=hover,
            ),
            row=1,
            col=1,
        )
    imported, exported = bars.grid_import * s, bars.grid_export * s
    fig.add_trace(
        go.Bar(
            x=names,
            y=imported,
            customdata=imported,
            name="Import from the grid",
            marker_color=_IMPORT,
            hovertemplate=hover,
        ),
        row=2,
        col=1,
    )
    fig.add_trace(
        go.Bar(
            x=names,
            y=-exported,
            customdata=exported,
            name="Export to the grid",
            marker_color=_EXPORT,
            hovertemplate=hover,
        ),
        row=2,
        col=1,
    )
    line1, line2 = _summary(ratios(data))
    fig.update_layout(
        barmode="relative",
        bargap=0.0 if view == "day" else 0.1,
        title={
            "text": f"<b>{html.escape(title)}</b>: {_period_title(bars, data.tz)}"
            f"<br><sup>{html.escape(line1)}<br>{html.escape(line2)}</sup>",
            "x": 0.01,
        },
        height=720,
        margin={"t": 130},
        legend={"orientation": "h", "y": -0.12},
        hovermode="x unified" if view != "day" else "closest",
        plot_bgcolor="white",
    )
    fig.update_xaxes(type="category", showgrid=False, nticks=16)
    fig.update_yaxes(
        title_text=_y_title(bars), zeroline=True, zerolinecolor="black", gridcolor="#DDDDDD"
    )
    return fig


def _last_day(data: MonitoringData) -> date:
    from datetime import datetime

    return (datetime.fromtimestamp((data.stop * 900) - 1, zone(data.tz))).date()


def render_html(
    data: MonitoringData,
    path: str | Path,
    *,
    title: str,
    day: date | None = None,
    views: Sequence[str] = VIEWS,
) -> Path:
    """An HTML page with one interactive chart per view: the ``day`` (quarter hours), its
    week (hours), its month (days) and the year (months), each cut to the data. ``day``
    defaults to the last local day of the data. plotly.js is inlined: the page works offline.
    """
    chosen = day or _last_day(data)
    figures: list[tuple[View, Any, dict[str, float | None]]] = []
    for name in views:
        view = _view(name)
        lo, hi = view_bounds(view, chosen, data.tz)
        lo, hi = max(lo, data.start), min(hi, data.stop)
        if hi <= lo:
            continue
        part = data.window(lo, hi)
        figures.append((view, _figure(part, view, title), ratios(part)))
    if not figures:
        raise InvalidInput(f"no data on {chosen.isoformat()} and around it to chart")
    blocks: list[str] = []
    for k, (shown, fig, r) in enumerate(figures):
        chart = fig.to_html(
            include_plotlyjs=k == 0,
            full_html=False,
            config={"displaylogo": False, "responsive": True},
        )
        rows = "".join(
            f"<tr><th>{html.escape(label)}</th><td>{html.escape(value)}</td></tr>"
            for label, value in (
                ("Self-consumption ratio", _percent(r["self_consumption_ratio"])),
                ("Self-sufficiency ratio", _percent(r["self_sufficiency_ratio"])),
                ("Production", _kwh(r["production_kwh"])),
                ("Consumption", _kwh(r["consumption_kwh"])),
                ("Self-consumed", _kwh(r["self_consumed_kwh"])),
                ("Import from the grid", _kwh(r["grid_import_kwh"])),
                ("Export to the grid", _kwh(r["grid_export_kwh"])),
                ("Own draw of the emergency power unit", _kwh(r["unit_own_draw_kwh"])),
            )
        )
        blocks.append(
            f'<section id="{shown}"><h2>{_HEADINGS[shown]}</h2>'
            f'<table class="ratios">{rows}</table>{chart}</section>'
        )
    nav = " | ".join(f'<a href="#{v}">{_HEADINGS[v]}</a>' for v, _, _ in figures)
    page = _PAGE.format(
        title=html.escape(title),
        nav=nav,
        body="\n".join(blocks),
        tz=html.escape(data.tz),
        meta=html.escape(json.dumps({"start": data.start, "stop": data.stop})),
    )
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return out


_HEADINGS = {
    "day": "Day (quarter hours, kW)",
    "week": "Week (hours, kWh)",
    "month": "Month (days, kWh)",
    "year": "Year (months, kWh)",
}

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}: monitoring</title>
<meta name="lastgang-slots" content="{meta}">
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }}
nav {{ margin-bottom: 1em; }}
section {{ margin-bottom: 2.5em; }}
table.ratios {{ border-collapse: collapse; margin: 0.5em 0; font-size: 0.9em; }}
table.ratios th {{ text-align: left; padding: 2px 12px 2px 0; font-weight: normal; }}
table.ratios td {{ text-align: right; padding: 2px 0; }}
p.note {{ font-size: 0.9em; color: #555; max-width: 60em; }}
</style>
</head>
<body>
<h1>{title}: production and consumption</h1>
<nav>{nav}</nav>
<p class="note">Above 0: local production per source (yellow PV, green emergency power unit) and
the consumption of all units (black line). Below 0 (hatched red): what the emergency power unit
drew itself, for standby or to charge its battery from the grid. Lower panel: what the grid
connection meter measured, import from the grid above 0, export below 0. Times are legal time
({tz}); a bar covers its whole period, and a quarter hour is named by its end (10:00-10:15 is
10:15). Self-consumption = self-consumed / production; self-sufficiency = self-consumed /
consumption.</p>
{body}
</body>
</html>
"""
