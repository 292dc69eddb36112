"""What the pages and the API show, shaped from the store's read methods (no SQL here): site
summaries, the data-quality heat map, meters with their exchanges.

The heat map has one row per metering location and one column per local day; a cell holds the
worst quality of the day's quarter hours (Q-1: L1 measured, L2 reliable substitute, L3
unreliable substitute, missing) and the share of quarter hours that have a value (92, 96 or 100
per day, TOR-4.2). A site of 10,000 locations is shown a part of the rows at a time, found by
name or metering point, or only the rows with a problem.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np
from numpy.typing import NDArray

from lastgang.cache import SizedCache
from lastgang.concept.model import Location, Site
from lastgang.quality import Quality
from lastgang.store import Store
from lastgang.timegrid import DAY, aggregate, local_date_of_slots, period_slots

__all__ = [
    "HeatCell",
    "HeatMap",
    "HeatRow",
    "MeterRow",
    "default_days",
    "finds",
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
    #: the rows that match the search and filter, of which ``rows`` are those from ``offset``
    matches: int = 0
    offset: int = 0
    #: every metering location of the site
    locations: int = 0


def _today(tz: str) -> date:
    from zoneinfo import ZoneInfo

    return datetime.now(UTC).astimezone(ZoneInfo(tz)).date()


#: the last slot with a stored value, by site, change stamp and locations (finding it scans
#: every profile of the site: 0.3 s at 1,000 locations x a year, for every page that shows the
#: latest days)
_LAST_SLOT: SizedCache[tuple[str, str, tuple[str, ...]], int] = SizedCache(16 * 2**20)


def _last_slot(store: Store, site: Site) -> int | None:
    stamp = store.change_stamp(site.site.id)  # before the profiles: the slot is kept by it
    ids = tuple(loc.id for loc in site.locations)

    def find() -> int:
        extents = store.profile_extent(site.site.id, ids)
        return max((hi for _, hi in extents.values()), default=0) - 1

    key = None if stamp is None else (site.site.id, stamp, ids)
    slot = _LAST_SLOT.get_or_make(key, find, lambda _: 100 + 8 * len(ids))
    return None if slot < 0 else slot


def default_days(store: Store, site: Site, days: int = 31) -> tuple[date, date]:
    """The last ``days`` local days up to the last day with stored data (today without data)."""
    tz = site.site.timezone
    last_slot = _last_slot(store, site)
    if last_slot is not None:
        last = local_date_of_slots(np.array([last_slot], dtype=np.int64), tz)[0].item()
        assert isinstance(last, date)
    else:
        last = _today(tz)
    return last - timedelta(days=days - 1), last


#: quarter-hour values whose profiles the heat map reads at once, a block of locations at a
#: time (about 0.4 GB of profile columns; 31 days of 5,000 locations)
HEAT_BLOCK_VALUES = 16_000_000


def finds(search: str, *texts: str) -> bool:
    """Whether every word of ``search`` (any case) is part of one of ``texts``: how the long
    lists of the pages and the API are searched (an empty search finds everything)."""
    found = " ".join(texts).casefold()
    return all(word in found for word in search.casefold().split())


def _points(loc: Location) -> tuple[str, ...]:
    """A location's metering point IDs (import, export), those it has."""
    return tuple(x for x in (loc.metering_points.import_, loc.metering_points.export) if x)


def _day_cells(
    store: Store,
    site: Site,
    locations: Sequence[Location],
    start: int,
    stop: int,
    bounds: NDArray[np.int64],
) -> tuple[NDArray[np.int8], NDArray[np.int64]]:
    """Per location and local day (``bounds``: the days' first slots and the end): the worst
    quality and the number of quarter hours with a value, read a block of locations at a time."""
    firsts = bounds[:-1] - start
    worst = np.zeros((len(locations), len(firsts)), dtype=np.int8)
    present = np.zeros((len(locations), len(firsts)), dtype=np.int64)
    step = max(1, HEAT_BLOCK_VALUES // max(stop - start, 1))
    for k in range(0, len(locations), step):
        block = [loc.id for loc in locations[k : k + step]]
        profiles = store.load_profiles(site.site.id, block, start, stop)
        quality = np.stack([profiles[i].quality for i in block])
        del profiles
        worst[k : k + len(block)] = np.maximum.reduceat(quality, firsts, axis=1)
        have = (quality != Quality.MISSING).astype(np.int32)
        present[k : k + len(block)] = np.add.reduceat(have, firsts, axis=1)
    return worst, present


#: the cells of every location of a site over a period, by site, change stamp, locations and
#: period: the filter for points with a problem reads them all (1.0-1.2 s at 10,000 locations x
#: 31 days), and its next page or another search takes them from here
_CELLS: SizedCache[
    tuple[str, str, tuple[str, ...], int, int], tuple[NDArray[np.int8], NDArray[np.int64]]
] = SizedCache(128 * 2**20)


def _cells_of(
    store: Store,
    site: Site,
    locations: Sequence[Location],
    start: int,
    stop: int,
    bounds: NDArray[np.int64],
) -> tuple[NDArray[np.int8], NDArray[np.int64]]:
    """:func:`_day_cells` of ``locations``, taken from the site's cells kept for the period;
    those are made when half the site or more is asked for (else only the locations asked
    for are read, and nothing is kept)."""
    stamp = store.change_stamp(site.site.id)  # before the profiles: the cells are kept by it
    ids = tuple(loc.id for loc in site.locations)
    key = None if stamp is None else (site.site.id, stamp, ids, start, stop)
    found = None if key is None else _CELLS.get(key)
    if found is None:
        if key is None or 2 * len(locations) < len(ids):  # a few: read only those
            return _day_cells(store, site, locations, start, stop, bounds)
        found = _CELLS.get_or_make(
            key,
            lambda: _day_cells(store, site, site.locations, start, stop, bounds),
            lambda cells: cells[0].nbytes + cells[1].nbytes + 8 * len(ids),
        )
    row = {loc_id: i for i, loc_id in reversed(list(enumerate(ids)))}  # the first of an id
    picked = [row[loc.id] for loc in locations]
    return found[0][picked], found[1][picked]


def quality_heat_map(
    store: Store,
    site: Site,
    first_day: date,
    last_day: date,
    *,
    offset: int = 0,
    limit: int | None = None,
    search: str = "",
    problems_only: bool = False,
) -> HeatMap:
    """Worst quality and completeness per metering location and local day: of the locations
    whose id, name or metering point holds every word of ``search``, with ``problems_only``
    those with a day that is not all measured (L1) and complete; ``limit`` of them from
    ``offset`` (all by default)."""
    tz = site.site.timezone
    if (last_day - first_day).days + 1 > MAX_HEAT_DAYS:
        first_day = last_day - timedelta(days=MAX_HEAT_DAYS - 1)
    start, stop = period_slots(first_day, last_day, tz)
    days = tuple(first_day + timedelta(days=i) for i in range((last_day - first_day).days + 1))
    bounds, _ = aggregate(np.zeros(stop - start), start, DAY, tz)
    sizes = np.diff(bounds)
    found = [loc for loc in site.locations if finds(search, loc.id, loc.name or "", *_points(loc))]
    worst: NDArray[np.int8] | None = None
    present: NDArray[np.int64] | None = None
    if problems_only:  # every location found is read to know which have a problem
        worst, present = _cells_of(store, site, found, start, stop, bounds)
        bad = (worst != Quality.L1).any(axis=1) | (present < sizes).any(axis=1)
        keep = np.flatnonzero(bad).tolist()
        found = [found[i] for i in keep]
        worst, present = worst[keep], present[keep]
    end = None if limit is None else offset + limit
    shown = found[offset:end]
    if worst is None or present is None:
        worst, present = _day_cells(store, site, shown, start, stop, bounds)
    else:
        worst, present = worst[offset:end], present[offset:end]
    labels = {int(q): Quality(int(q)).label for q in Quality}
    rows: list[HeatRow] = []
    for loc, row_worst, row_present in zip(shown, worst.tolist(), present.tolist(), strict=True):
        cells = tuple(
            HeatCell(day, labels[q], float(c) / float(n), int(n))
            for day, q, c, n in zip(days, row_worst, row_present, sizes.tolist(), strict=True)
        )
        rows.append(HeatRow(loc.id, loc.name or loc.id, _points(loc), cells))
    return HeatMap(
        site.site.id,
        first_day,
        last_day,
        days,
        tuple(rows),
        matches=len(found),
        offset=offset,
        locations=len(site.locations),
    )


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
        mps = _points(loc)
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
