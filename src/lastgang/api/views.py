"""What the pages and the API show, shaped from the store's read methods (no SQL here): site
summaries, the data-quality heat map, meters with their exchanges.

The heat map has one row per metering location and one column per local day; a cell holds the
worst quality of the day's quarter hours (Q-1: L1 measured, L2 reliable substitute, L3
unreliable substitute, missing) and the share of quarter hours that have a value (92, 96 or 100
per day, TOR-4.2).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np

from lastgang.concept.model import Site
from lastgang.quality import Quality
from lastgang.store import Store
from lastgang.timegrid import DAY, aggregate, local_date_of_slots, period_slots

__all__ = [
    "HeatCell",
    "HeatMap",
    "HeatRow",
    "MeterRow",
    "default_days",
    "meter_rows",
    "quality_heat_map",
]

#: longest span the heat map shows at once (days)
MAX_HEAT_DAYS = 400


@dataclass(frozen=True)
class HeatCell:
    day: date
    #: worst quality of the day ("L1", "L2", "L3", "missing")
    worst: str
    #: quarter hours with a value / quarter hours of the day
    complete: float
    slots: int


@dataclass(frozen=True)
class HeatRow:
    location_id: str
    name: str
    metering_points: tuple[str, ...]
    cells: tuple[HeatCell, ...]


@dataclass(frozen=True)
class HeatMap:
    site_id: str
    first_day: date
    last_day: date
    days: tuple[date, ...]
    rows: tuple[HeatRow, ...]


def _today(tz: str) -> date:
    from zoneinfo import ZoneInfo

    return datetime.now(UTC).astimezone(ZoneInfo(tz)).date()


def default_days(store: Store, site: Site, days: int = 31) -> tuple[date, date]:
    """The last ``days`` local days up to the last day with stored data (today without data)."""
    tz = site.site.timezone
    extents = store.profile_extent(site.site.id, [loc.id for loc in site.locations])
    if extents:
        last_slot = max(hi for _, hi in extents.values()) - 1
        last = local_date_of_slots(np.array([last_slot], dtype=np.int64), tz)[0].item()
        assert isinstance(last, date)
    else:
        last = _today(tz)
    return last - timedelta(days=days - 1), last


def quality_heat_map(store: Store, site: Site, first_day: date, last_day: date) -> HeatMap:
    """Worst quality and completeness per metering location and local day."""
    tz = site.site.timezone
    if (last_day - first_day).days + 1 > MAX_HEAT_DAYS:
        first_day = last_day - timedelta(days=MAX_HEAT_DAYS - 1)
    start, stop = period_slots(first_day, last_day, tz)
    ids = [loc.id for loc in site.locations]
    profiles = store.load_profiles(site.site.id, ids, start, stop)
    days = tuple(first_day + timedelta(days=i) for i in range((last_day - first_day).days + 1))
    rows: list[HeatRow] = []
    for loc in site.locations:
        p = profiles[loc.id]
        present = (p.quality != Quality.MISSING).astype(np.float64)
        bounds, counts = aggregate(present, start, DAY, tz)
        sizes = np.diff(bounds)
        worst = np.maximum.reduceat(p.quality, bounds[:-1] - start)
        cells = tuple(
            HeatCell(day, Quality(int(q)).label, float(c) / float(n), int(n))
            for day, q, c, n in zip(
                days, worst.tolist(), counts.tolist(), sizes.tolist(), strict=True
            )
        )
        mps = tuple(x for x in (loc.metering_points.import_, loc.metering_points.export) if x)
        rows.append(HeatRow(loc.id, loc.name or loc.id, mps, cells))
    return HeatMap(site.site.id, first_day, last_day, days, tuple(rows))


@dataclass(frozen=True)
class MeterRow:
    """One physical meter of a location with its period (an exchange ends one, starts the
    next: TOR-7.2.1)."""

    location_id: str
    location_name: str
    role: str
    metering_points: tuple[str, ...]
    manufacturer: str
    serial: str
    installed: str
    removed: str | None
    orientation: str
    connection: str
    accuracy_class: str
    transformer: str | None
    #: "exchanged for SERIAL" / "replaced SERIAL" when the location had a meter exchange
    exchange: str | None = None


def _when(value: object) -> str:
    """A meter's installed/removed value as a person reads it (date, or local time)."""
    text = value.isoformat() if hasattr(value, "isoformat") else str(value)
    return text.replace("T", " ").replace(":00+", " +").replace(":00-", " -")


def meter_rows(site: Site) -> list[MeterRow]:
    out: list[MeterRow] = []
    for loc in site.locations:
        mps = tuple(x for x in (loc.metering_points.import_, loc.metering_points.export) if x)
        meters = list(loc.meters)
        for k, m in enumerate(meters):
            notes = []
            if k > 0:
                notes.append(f"replaced {meters[k - 1].serial}")
            if k + 1 < len(meters):
                notes.append(f"exchanged for {meters[k + 1].serial}")
            ratio = " x ".join(
                f"{name} {t.ratio}" for name, t in (("CT", m.ct), ("VT", m.vt)) if t is not None
            )
            out.append(
                MeterRow(
                    loc.id,
                    loc.name or loc.id,
                    str(loc.role),
                    mps,
                    m.manufacturer,
                    m.serial,
                    _when(m.installed),
                    None if m.removed is None else _when(m.removed),
                    str(m.orientation),
                    str(m.connection),
                    m.accuracy_class,
                    ratio or None,
                    "; ".join(notes) or None,
                )
            )
    return out
