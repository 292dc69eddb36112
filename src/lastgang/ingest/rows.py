"""Building blocks shared by the importers of EDA messages, smart meter telegrams, vendor files and
MQTT captures: resolving metering points and meters of a site, and turning whole arrays of values
into the column-wise rows the store takes (:class:`~lastgang.store.ReadingSet`).

Every importer returns an :class:`ImportedFile`: a :class:`~lastgang.ingest.csv_readings.ParsedFile`
that also names the format it was read as (stored with the raw batch) and the options needed to
read the archived bytes again (a vendor column mapping, smart meter keys). Those options are
archived with the batch (under :data:`OPTIONS_KEY` of the batch's ``factors``), so ``lastgang
rebuild`` reads every batch exactly as it was imported (TOR-7.1).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray

from lastgang.concept.model import Site
from lastgang.errors import Problem
from lastgang.ids import is_metering_point_id, parse_metering_point_id
from lastgang.ingest.csv_readings import ParsedFile, SiteIndex
from lastgang.store import IntervalRows, RegisterRows
from lastgang.timegrid import SLOT_SECONDS

__all__ = [
    "MAX_PROBLEMS",
    "OPTIONS_KEY",
    "ImportedFile",
    "Problems",
    "Target",
    "assign_slot_meters",
    "build_file",
    "directions_of",
    "interval_rows",
    "metering_points_of",
    "meters_at",
    "register_rows",
    "resolve_target",
    "time_text",
]

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

#: key of the batch ``factors`` entry holding the options an archived batch is read with again
OPTIONS_KEY = "_import"

#: most problems listed per kind of problem of one file (the rest are counted)
MAX_PROBLEMS = 200


@dataclass(frozen=True, eq=False)
class ImportedFile(ParsedFile):
    """A checked input file, ready to be stored, with the format it was read as (stored with its
    raw batch, e.g. ``eda``, ``dlms``, ``vendor/csv``) and warnings that did not stop it."""

    format: str = "csv"
    warnings: tuple[Problem, ...] = ()
    #: every name the reader looked a meter up by (telegram meter numbers, MQTT topic levels
    #: and payload meters) with the meter it gave (:meth:`SiteIndex.meter_named`); None for
    #: readers that do not say. Stored with the batch: a partial rebuild leaves a batch unread
    #: whose names give what they gave, none of it a meter rebuilt.
    names: Mapping[str, str] | None = None


class Problems:
    """Problems of one input, at most :data:`MAX_PROBLEMS` per reason (the rest counted)."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.items: list[Problem] = []
        self.warnings: list[Problem] = []
        self._counts: dict[str, int] = {}

    def add(
        self,
        reason: str,
        *,
        line: int | None = None,
        column: str | None = None,
        meter: str | None = None,
        time: str | None = None,
        kind: str | None = None,
    ) -> None:
        """Record one error; ``kind`` groups problems for the cap (default: the reason)."""
        key = kind or reason
        count = self._counts.get(key, 0) + 1
        self._counts[key] = count
        if count <= MAX_PROBLEMS:
            self.items.append(
                Problem(reason, file=self.source, line=line, column=column, meter=meter, time=time)
            )

    def room(self, kind: str) -> int:
        """How many more problems of ``kind`` are listed (not only counted)."""
        return max(MAX_PROBLEMS - self._counts.get(kind, 0), 0)

    def skip(self, kind: str, count: int) -> None:
        """Count ``count`` more problems of ``kind`` without listing them (beyond the cap)."""
        if count > 0:
            self._counts[kind] = self._counts.get(kind, 0) + count

    def warn(self, reason: str, **where: Any) -> None:
        self.warnings.append(Problem(reason, file=self.source, severity="warning", **where))

    def summary(self) -> list[Problem]:
        """Every recorded error plus one line per kind that was cut."""
        extra = [
            Problem(
                f"{count - MAX_PROBLEMS} more problem(s) of the same kind ({key})", file=self.source
            )
            for key, count in self._counts.items()
            if count > MAX_PROBLEMS
        ]
        ordered = sorted(self.items, key=lambda p: (p.line is None, p.line or 0))
        return [*ordered, *extra]

    def __bool__(self) -> bool:
        return bool(self.items)


def time_text(epoch: int) -> str:
    """An instant for messages: ISO 8601 in UTC."""
    return datetime.fromtimestamp(int(epoch), UTC).isoformat()


def metering_points_of(site: Site) -> dict[str, tuple[str, str]]:
    """Canonical metering point ID -> (location id, ``import``/``export``) of a site."""
    out: dict[str, tuple[str, str]] = {}
    for loc in site.locations:
        for direction, text in (
            ("import", loc.metering_points.import_),
            ("export", loc.metering_points.export),
        ):
            if text and is_metering_point_id(text):
                out[parse_metering_point_id(text).canonical] = (loc.id, direction)
    return out


def directions_of(site: Site) -> dict[str, frozenset[str]]:
    """Per location id: the directions it has a metering point ID for."""
    out: dict[str, set[str]] = {loc.id: set() for loc in site.locations}
    for loc_id, direction in metering_points_of(site).values():
        out[loc_id].add(direction)
    return {k: frozenset(v) for k, v in out.items()}


@dataclass(frozen=True)
class Target:
    """What a name in an input resolves to: a location (and the direction of its metering point
    when the name was a metering point ID) or one meter (``meter`` key)."""

    location: str
    direction: str | None = None
    meter: str | None = None


def resolve_target(
    index: SiteIndex, text: str, points: Mapping[str, tuple[str, str]] | None = None
) -> Target | str:
    """A metering point ID (either form), a location id, a meter key ``manufacturer:serial`` or a
    serial number of the site; the reason as text when it is none of them. ``points`` is
    :func:`metering_points_of` the site, when the caller resolves many names (computed here
    otherwise)."""
    name = text.strip()
    if not name:
        return "empty metering point or meter"
    if is_metering_point_id(name):
        canonical = parse_metering_point_id(name).canonical
        found = (metering_points_of(index.site) if points is None else points).get(canonical)
        if found is None:
            return (
                f"metering point {name} is not in site {index.site.site.id!r}; add it to a "
                "location's metering_points"
            )
        return Target(found[0], found[1])
    if name in index.location_ids:
        return Target(name)
    if name in index.meters:
        return Target(index.meters[name].location, meter=name)
    keys = index.by_serial.get(name, [])
    if len(keys) == 1:
        return Target(index.meters[keys[0]].location, meter=keys[0])
    if keys:
        return f"serial {name!r} is ambiguous ({', '.join(keys)}): write manufacturer:serial"
    return (
        f"unknown metering point or meter {name!r}: not a metering point ID, location id, "
        f"manufacturer:serial or serial number of site {index.site.site.id!r}"
    )


def meters_at(index: SiteIndex, location: IntArray, time: IntArray) -> tuple[IntArray, IntArray]:
    """Per row: the meter (index into ``index.keys``) installed at ``location`` (index into
    ``index.locations``) at the instant ``time``, and how many are (0: none, 2: an exchange
    at that very instant)."""
    found = np.full(len(time), -1, dtype=np.int64)
    count = np.zeros(len(time), dtype=np.int64)
    # each meter looks only at the rows of its location (rows grouped by location once)
    order, bounds = _by_location(index, location)
    for k, info in enumerate(index.meters.values()):
        a, b = bounds[index.location_index[info.location]]
        rows = np.arange(a, b) if order is None else order[a:b]
        t = time[rows]
        here = rows[(t >= info.lo) & (t <= info.hi)]
        found[here] = k
        count[here] += 1
    return found, count


def _by_location(
    index: SiteIndex, location: IntArray
) -> tuple[IntArray | None, list[tuple[int, int]]]:
    """The rows grouped by location (a stable order; None when the rows are already in
    location order) and per location index the ``[a, b)`` bounds of its rows in that order."""
    n = len(location)
    order: IntArray | None = None
    if n < 2 or bool(np.all(location[1:] >= location[:-1])):
        grouped = location
    else:
        order = np.argsort(location, kind="stable")
        grouped = location[order]
    codes = np.arange(len(index.locations) + 1, dtype=np.int64)
    edges = np.searchsorted(grouped, codes).tolist()
    return order, list(itertools.pairwise(edges))


def assign_slot_meters(index: SiteIndex, location: IntArray, slot: IntArray) -> IntArray:
    """Per row: the meter covering the larger part of the slot at the location (the later one
    on a tie), -1 when none is installed in it."""
    meter = np.full(len(slot), -1, dtype=np.int64)
    best = np.zeros(len(slot), dtype=np.int32)  # seconds of the slot covered, at most 900
    # each meter looks only at the rows of its location (rows grouped by location once), not at
    # every row: a file of 1,000 metering points would otherwise cost 1,000 passes over it
    order, bounds = _by_location(index, location)
    for k, info in enumerate(index.meters.values()):
        a, b = bounds[index.location_index[info.location]]
        rows = np.arange(a, b) if order is None else order[a:b]
        here_slot = slot[rows]
        begin, end = here_slot * SLOT_SECONDS, (here_slot + 1) * SLOT_SECONDS
        overlap = np.minimum(end, info.hi) - np.maximum(begin, info.lo)
        here = (overlap > 0) & (overlap >= best[rows])
        meter[rows[here]] = k
        best[rows[here]] = overlap[here]
    return meter


def _dense(values: IntArray, size: int) -> tuple[IntArray, NDArray[np.int32]]:
    """``np.unique(values, return_inverse=True)`` for integers in ``[0, size)`` (fewer than
    2**31), without a sort: the distinct values (ascending) and each value's index among
    them."""
    present = np.zeros(size, dtype=bool)
    present[values] = True
    rank = np.cumsum(present, dtype=np.int32) - 1
    return np.flatnonzero(present), rank[values]


def interval_rows(
    index: SiteIndex,
    location: IntArray,
    slot: IntArray,
    import_kwh: FloatArray,
    export_kwh: FloatArray,
    quality: NDArray[np.int8],
    problems: Problems,
    *,
    lines: Sequence[int | None] | None = None,
) -> IntervalRows:
    """Interval values (primary kWh) of locations, each row linked to the meter installed in its
    slot (TOR-4.1m). A location that has meters but none in a slot is a problem, as in the CSV
    import; a location without meters takes market data as they are."""
    meter = assign_slot_meters(index, location, slot)
    with_meters = np.array(
        [bool(index.location_ids[loc].meters) for loc in index.locations] + [False], dtype=bool
    )
    orphan = np.flatnonzero((meter < 0) & with_meters[location])
    for r in orphan.tolist():
        problems.add(
            f"no meter of location {index.locations[int(location[r])]!r} is installed in this "
            "quarter hour (see installed/removed of its meters)",
            line=None if lines is None else lines[r],
            time=time_text(int(slot[r]) * SLOT_SECONDS),
            kind="no meter installed",
        )
    if not len(slot):
        return IntervalRows()
    used_loc, local_loc = _dense(location, len(index.locations))
    has_meter = meter >= 0
    if has_meter.all():
        used_meter, local_meter = _dense(meter, len(index.keys))
    else:
        used_meter, _ = _dense(meter[has_meter], len(index.keys))
        local_meter = np.where(has_meter, np.searchsorted(used_meter, meter), -1)
    return IntervalRows(
        locations=tuple(index.locations[int(u)] for u in used_loc),
        meters=tuple(index.keys[int(u)] for u in used_meter),
        location=local_loc.astype(np.int32, copy=False),
        meter=local_meter.astype(np.int32, copy=False),
        slot=np.asarray(slot, dtype=np.int64),
        import_kwh=np.asarray(import_kwh, dtype=np.float64),
        export_kwh=np.asarray(export_kwh, dtype=np.float64),
        quality=np.asarray(quality, dtype=np.int8),
        primary=True,
    )


def register_rows(
    index: SiteIndex,
    meter: IntArray,
    registers: Sequence[str],
    register: IntArray,
    time: IntArray,
    value: FloatArray,
) -> RegisterRows:
    """Register readings (kWh as read) of meters given as indexes into ``index.keys`` and
    ``registers``; rows are sorted by meter, register and time."""
    if not len(time):
        return RegisterRows()
    order = np.lexsort((time, register, meter))
    used_m, local_m = np.unique(meter[order], return_inverse=True)
    used_r, local_r = np.unique(register[order], return_inverse=True)
    return RegisterRows(
        meters=tuple(index.keys[int(u)] for u in used_m),
        registers=tuple(registers[int(u)] for u in used_r),
        meter=local_m.astype(np.int32),
        register=local_r.astype(np.int32),
        time=np.asarray(time[order], dtype=np.int64),
        value=np.asarray(value[order], dtype=np.float64),
    )


def build_file(
    source: str,
    kind: str,
    format: str,
    rows: int,
    readings: Any,
    index: SiteIndex,
    *,
    options: Mapping[str, Any] | None = None,
    warnings: Sequence[Problem] = (),
    extra_locations: Sequence[str] = (),
    names: Mapping[str, str] | None = None,
) -> ImportedFile:
    """An :class:`ImportedFile` with the meters and locations its readings touch, the
    conversion factors of those meters (TOR-7.1, TOR-4.4) and the archived read options."""
    meters: set[str] = set()
    locations: set[str] = set(extra_locations)
    for part in (readings.registers, readings.phases, readings.intervals, readings.status):
        meters.update(k for k in part.meters if k in index.meters)
    locations.update(index.meters[k].location for k in meters)
    locations.update(x for x in readings.intervals.locations if x in index.location_ids)
    keys = tuple(sorted(meters))
    factors: dict[str, Any] = dict(index.factors(keys))
    if options:
        factors[OPTIONS_KEY] = dict(options)
    return ImportedFile(
        source,
        kind,  # type: ignore[arg-type]
        rows,
        readings,
        meters=keys,
        locations=tuple(sorted(locations)),
        factors=factors,
        format=format,
        warnings=tuple(warnings),
        names=names,
    )
