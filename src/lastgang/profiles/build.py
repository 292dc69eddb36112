"""The load profile of a whole metering location (Zählstelle) from the readings of its meters.

A location is measured by one meter at a time; a meter exchange (Zählerwechsel, TOR-7.2.1) ends
one meter's installed period and starts the next. :func:`build_location_profile` turns each
meter's readings into per-slot import and export over that meter's own installed period and joins
the meters into one continuous series:

- **Source per meter.** The registers ``1.8.0``/``2.8.0`` when present; else, per direction, the
  sum of the tariff registers ``1.8.1``, ``1.8.2``, ... (``2.8.e``); else the phase powers
  (TOR-5.0b); else the interval values. Register and phase values are secondary values times the
  meter's transformer constant (TOR-4.4); interval values unless they are marked primary.
- **Installed period.** ``installed``/``removed`` from the concept; a ``date`` means local
  midnight (00:00 legal time) of that day, a datetime without offset legal time of the site.
  Readings outside the installed period are an error naming the meter; so are meters whose
  installed periods overlap.
- **Exchange.** The old meter's last reading and the new meter's first reading bound the exchange.
  Each meter contributes the covered part of each slot; the exchange slot gets the sum of both
  parts. A slot covered for all of its 900 seconds (by one meter or by both together) is
  measured; a slot covered only partly (for example between the old meter's last and the new
  meter's first reading) is incomplete: missing, to be substituted (:func:`.fill_gaps`).
- **Links** (TOR-4.1m). ``meters`` holds every meter of the location as ``manufacturer:serial``;
  each slot names the meter that covered the larger part of it (the later meter on a tie) and the
  batch of the reading that closes the slot's reading period.
- **Quality.** The worst of: the reading-period rule of :mod:`.registers` (L1 up to 15 minutes,
  L2 longer), the interval values' own flags, the status floor of :mod:`.status` (TOR-6.2).
  Reading periods of 2 hours or more are measured totals with an unknown split: their whole
  slots are shaped by comparable days or the location's standard load profile and scaled to the
  total (L2, :func:`.distribute_totals`).

The profile is the METER view: import is what the meters registered as import. Orientation
(inverted meters, SM-2) is applied later by the concept; nothing is swapped here.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
from numpy.typing import NDArray

from lastgang.concept.model import Location, Meter
from lastgang.errors import InvalidTime, LastgangError, MeterDataError, Problem
from lastgang.obis import parse_obis
from lastgang.profiles.intervals import intervals_to_profile
from lastgang.profiles.phases import phases_to_slots
from lastgang.profiles.readings import MeterReadings, RegisterSeries
from lastgang.profiles.registers import RegisterSlots, closing_reading, register_slots
from lastgang.profiles.status import status_quality
from lastgang.profiles.substitutes import KnownTotal, distribute_totals
from lastgang.profiles.types import LoadProfile
from lastgang.quality import Quality
from lastgang.timegrid import SLOT_SECONDS, to_epoch, zone

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

__all__ = ["BuildReport", "build_location", "build_location_profile", "meter_period"]

_FAR = 2**62


@dataclass(frozen=True)
class BuildReport:
    """A built profile with what a reader needs to explain it.

    ``warnings`` are facts worth telling (a direction without register, counted as 0);
    ``known_totals`` the stretches whose measured totals were shaped (L2).
    """

    profile: LoadProfile
    warnings: tuple[Problem, ...] = ()
    known_totals: tuple[KnownTotal, ...] = field(default_factory=tuple)


@dataclass
class _Part:
    """One meter's contribution to the slots ``[start, stop)``."""

    imp: FloatArray
    exp: FloatArray
    covered: IntArray
    quality: NDArray[np.int8]
    batch: IntArray
    floor: NDArray[np.int8]
    totals: list[tuple[str, int, int, int]]  # (direction, first, stop, batch), slots absolute


def _utc(seconds: int | np.integer) -> str:
    return datetime.fromtimestamp(int(seconds), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def meter_period(meter: Meter, tz: str) -> tuple[int, int | None]:
    """Installed period of a meter as epoch seconds ``(installed, removed)`` (None: still in).

    As the concept reads them (:meth:`Meter.installed_at`): a date is 00:00 legal time of that
    day, a datetime without offset is legal time of the site."""
    removed = meter.removed_at(tz)
    return to_epoch(meter.installed_at(tz)), None if removed is None else to_epoch(removed)


def _outside(
    times: IntArray,
    bad: NDArray[np.bool_],
    begin: int,
    end: int | None,
    key: str,
    what: str,
    problems: list[Problem],
) -> None:
    """Report the ``times`` flagged ``bad`` as lying outside the installed period."""
    idx = np.flatnonzero(bad)
    if len(idx):
        until = "now" if end is None else _utc(end)
        problems.append(
            Problem(
                f"{len(idx)} {what} of meter {key} lie outside its installed period "
                f"{_utc(begin)} - {until} (first at {_utc(times[idx[0]])}, last at "
                f"{_utc(times[idx[-1]])}); check installed/removed in the concept or the meter "
                "the readings were filed under",
                meter=key,
                time=_utc(times[idx[0]]),
            )
        )


def _registers(
    readings: MeterReadings, key: str, problems: list[Problem]
) -> dict[str, list[RegisterSeries]]:
    """Energy registers per direction: the total register, else the tariff registers."""
    totals: dict[str, RegisterSeries] = {}
    tariffs: dict[str, list[tuple[int, RegisterSeries]]] = {"import": [], "export": []}
    for code, series in readings.registers.items():
        try:
            obis = parse_obis(code)
        except LastgangError as exc:
            problems.append(Problem(f"register {code!r}: {exc.message}", meter=key))
            continue
        direction = obis.direction
        if (
            not obis.is_register
            or obis.phase is not None
            or obis.f != 255
            or obis.c not in (1, 2)
            or direction is None
        ):
            continue  # reactive, per-phase or billing-period registers are not used here
        if obis.e == 0:
            totals[direction] = series
        else:
            tariffs[direction].append((obis.e, series))
    out: dict[str, list[RegisterSeries]] = {}
    for side in ("import", "export"):
        if side in totals:
            out[side] = [totals[side]]
        elif tariffs[side]:
            out[side] = [s for _, s in sorted(tariffs[side], key=lambda x: x[0])]
    return out


def _merge_spans(slots: list[RegisterSlots]) -> list[tuple[int, int]]:
    """The long-reading-period spans of a direction's registers (tariff registers may differ):
    spans of different registers that overlap are joined; neighbouring spans stay apart, each
    with its own measured total."""
    pairs = sorted(
        {(int(a), int(b)) for s in slots for a, b in zip(s.span_first, s.span_stop, strict=True)}
    )
    merged: list[tuple[int, int]] = []
    for a, b in pairs:
        if merged and a < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


def _register_part(
    meter: Meter,
    registers: dict[str, list[RegisterSeries]],
    start: int,
    stop: int,
    problems: list[Problem],
    warnings: list[Problem],
) -> _Part | None:
    n = stop - start
    key = meter.key
    constant = float(meter.transformer_constant)
    per_direction: dict[str, tuple[FloatArray, IntArray, NDArray[np.int8], IntArray]] = {}
    spans: list[tuple[str, int, int, int]] = []
    for direction, series_list in registers.items():
        slots: list[RegisterSlots] = []
        for series in series_list:
            try:
                slots.append(
                    register_slots(
                        series,
                        start,
                        stop,
                        digits=meter.register_digits,
                        max_power_kw=meter.max_power_kw,
                        constant=constant,
                        meter=key,
                    )
                )
            except MeterDataError as exc:
                problems.extend(exc.problems)
        if len(slots) != len(series_list):
            continue
        energy = np.sum([s.energy for s in slots], axis=0)
        covered = np.min([s.covered for s in slots], axis=0)
        quality = np.max([s.quality for s in slots], axis=0).astype(np.int8)
        batch = slots[0].batch
        per_direction[direction] = (energy, covered, quality, batch)
        for first, last in _merge_spans(slots):
            spans.append((direction, first, last, int(batch[last - 1 - start])))
    if len(per_direction) != len(registers):
        return None  # a register had errors, reported above
    present = list(per_direction)
    covered = np.min([per_direction[d][1] for d in present], axis=0)
    quality = np.max([per_direction[d][2] for d in present], axis=0).astype(np.int8)
    batch = per_direction[present[0]][3]
    zero = np.zeros(n)
    for direction in ("import", "export"):
        if direction not in per_direction:
            listed = [
                c for c in meter.registers if _direction_of(c) == direction and c.strip() != ""
            ]
            if listed:
                warnings.append(
                    Problem(
                        f"meter {key} has no readings of its {direction} register "
                        f"({', '.join(listed)}); its {direction} is counted as 0 kWh",
                        meter=key,
                        severity="warning",
                    )
                )
    return _Part(
        imp=per_direction["import"][0] if "import" in per_direction else zero,
        exp=per_direction["export"][0] if "export" in per_direction else zero.copy(),
        covered=covered,
        quality=quality,
        batch=batch,
        floor=np.full(n, Quality.L1, dtype=np.int8),
        totals=spans,
    )


def _direction_of(code: str) -> str | None:
    try:
        return parse_obis(code).direction
    except LastgangError:
        return None


def _overlap(begin: int, end: int | None, start: int, stop: int) -> IntArray:
    """Seconds of each slot ``[start, stop)`` inside ``[begin, end)``."""
    lo = np.arange(start, stop, dtype=np.int64) * SLOT_SECONDS
    hi = lo + SLOT_SECONDS
    top = _FAR if end is None else end
    result: IntArray = np.clip(np.minimum(hi, top) - np.maximum(lo, begin), 0, SLOT_SECONDS)
    return result


def _meter_part(
    meter: Meter,
    readings: MeterReadings,
    start: int,
    stop: int,
    tz: str,
    problems: list[Problem],
    warnings: list[Problem],
) -> _Part | None:
    key = meter.key
    n = stop - start
    begin, end = meter_period(meter, tz)
    before = len(problems)
    hi = _FAR if end is None else end

    def check(times: IntArray, what: str) -> None:
        t = np.asarray(times, dtype=np.int64)
        _outside(t, (t < begin) | (t > hi), begin, end, key, what, problems)

    for code, series in readings.registers.items():
        check(series.time, f"readings of register {code}")
    if readings.phases is not None:
        check(readings.phases.time, "phase power samples")
    if readings.status is not None:
        check(readings.status.time, "status events")
    if readings.intervals is not None:
        starts = np.asarray(readings.intervals.slot, dtype=np.int64) * SLOT_SECONDS
        outside = (starts + SLOT_SECONDS <= begin) | (starts >= hi)
        _outside(starts, outside, begin, end, key, "interval values", problems)
    if len(problems) > before:
        return None

    constant = float(meter.transformer_constant)
    registers = _registers(readings, key, problems)
    part: _Part | None = None
    times: IntArray | None = None
    if registers:
        part = _register_part(meter, registers, start, stop, problems, warnings)
        if part is None:
            return None
        first = next(iter(registers.values()))[0]
        times = first.time
    elif readings.phases is not None:
        ph = readings.phases
        try:
            imp, exp, covered = phases_to_slots(
                ph.time, ph.l1, ph.l2, ph.l3, start, stop, constant=constant, meter=key
            )
        except MeterDataError as exc:
            problems.extend(exc.problems)
            return None
        quality = np.where(covered > 0, Quality.L1, Quality.MISSING).astype(np.int8)
        closing = closing_reading(ph.time, start, stop)
        batch = ph.batch[closing] if len(ph.batch) else np.zeros(n, dtype=np.int64)
        part = _Part(imp, exp, covered, quality, batch, np.full(n, 1, np.int8), [])
        times = ph.time
    elif readings.intervals is not None:
        try:
            prof = intervals_to_profile(
                readings.intervals, start, stop, constant=constant, meter=key
            )
        except MeterDataError as exc:
            problems.extend(exc.problems)
            return None
        valued = prof.quality != Quality.MISSING
        covered = np.where(valued, _overlap(begin, end, start, stop), 0)
        part = _Part(
            np.where(valued, prof.import_kwh, 0.0),
            np.where(valued, prof.export_kwh, 0.0),
            covered,
            prof.quality,
            prof.batch,
            np.full(n, Quality.L1, np.int8),
            [],
        )
        times = (np.asarray(readings.intervals.slot, dtype=np.int64) + 1) * SLOT_SECONDS
    if part is None:
        warnings.append(
            Problem(
                f"meter {key} has readings but no energy register, phase powers or interval "
                "values; it contributes nothing",
                meter=key,
                severity="warning",
            )
        )
        return None
    if readings.status is not None and times is not None:
        try:
            part.floor = status_quality(
                readings.status, start, stop, reading_times=np.sort(times), meter=key
            )
        except LastgangError as exc:
            problems.extend(exc.problems)
            return None
    return part


def build_location(
    location: Location,
    readings: Mapping[str, MeterReadings],
    start: int,
    stop: int,
    tz: str,
    *,
    history: LoadProfile | None = None,
) -> BuildReport:
    """:func:`build_location_profile` with the warnings and the shaped totals (see module doc)."""
    zone(tz)
    if stop < start:
        raise InvalidTime(f"slot range [{start}, {stop}) ends before it starts")
    n = stop - start
    problems: list[Problem] = []
    warnings: list[Problem] = []
    meters = location.meters
    keys = tuple(m.key for m in meters)

    periods: list[tuple[int, int | None, str]] = []
    for meter in meters:
        try:
            begin, end = meter_period(meter, tz)
        except InvalidTime as exc:
            problems.append(Problem(f"installed/removed: {exc.message}", meter=meter.key))
            continue
        if end is not None and end <= begin:
            problems.append(
                Problem(
                    f"meter {meter.key} is removed ({_utc(end)}) before it is installed "
                    f"({_utc(begin)})",
                    meter=meter.key,
                )
            )
        periods.append((begin, end, meter.key))
    periods.sort(key=lambda p: p[0])
    for (_b1, e1, k1), (b2, _e2, k2) in itertools.pairwise(periods):
        if e1 is None or e1 > b2:
            problems.append(
                Problem(
                    f"meters {k1} and {k2} are both installed at location {location.id} from "
                    f"{_utc(b2)}: a location has one meter at a time; set removed of {k1}",
                    meter=k2,
                    time=_utc(b2),
                )
            )
    if problems:
        raise MeterDataError(f"location {location.id}: meters cannot be joined", problems)

    parts: list[tuple[int, _Part]] = []
    for index, meter in enumerate(meters):
        meter_readings = readings.get(meter.key)
        if meter_readings is None:
            continue
        part = _meter_part(meter, meter_readings, start, stop, tz, problems, warnings)
        if part is not None:
            parts.append((index, part))
    if problems:
        raise MeterDataError(
            f"location {location.id}: {len(problems)} problem(s) in the meter readings", problems
        )

    imp = np.zeros(n)
    exp = np.zeros(n)
    covered_total = np.zeros(n, dtype=np.int64)
    quality = np.full(n, Quality.L1, dtype=np.int8)
    floor = np.full(n, Quality.L1, dtype=np.int8)
    best = np.zeros(n, dtype=np.int64)
    meter_of = np.full(n, -1, dtype=np.int32)
    batch = np.zeros(n, dtype=np.int64)
    for index, part in parts:
        has = part.covered > 0
        imp[has] += part.imp[has]
        exp[has] += part.exp[has]
        covered_total += part.covered
        quality[has] = np.maximum(quality[has], part.quality[has])
        floor[has] = np.maximum(floor[has], part.floor[has])
        larger = has & (part.covered >= best)  # later meters come later: they win a tie
        best[larger] = part.covered[larger]
        meter_of[larger] = index
        batch[larger] = part.batch[larger]
    over = np.flatnonzero(covered_total > SLOT_SECONDS)
    if len(over):
        slot = start + int(over[0])
        raise MeterDataError(
            f"location {location.id}: meters overlap in {len(over)} slot(s)",
            [
                Problem(
                    f"readings of more than one meter cover the same time in {len(over)} slot(s) "
                    "(one meter at a time; check installed/removed)",
                    time=_utc(slot * SLOT_SECONDS),
                )
            ],
        )
    complete = covered_total == SLOT_SECONDS
    imp[~complete] = np.nan
    exp[~complete] = np.nan
    quality[~complete] = Quality.MISSING
    meter_of[covered_total == 0] = -1
    batch[covered_total == 0] = 0

    spans: dict[tuple[int, int, int], dict[str, float | int]] = {}
    for index, part in parts:
        for direction, first, last, span_batch in part.totals:
            a, b = first - start, last - start
            if not complete[a:b].all():
                continue
            values = imp if direction == "import" else exp
            own = part.imp if direction == "import" else part.exp
            entry = spans.setdefault((first, last, index), {"batch": span_batch})
            entry[direction] = float(own[a:b].sum())
            values[a:b] = np.nan
            quality[a:b] = Quality.MISSING
    totals = [
        KnownTotal(
            first,
            last,
            import_kwh=float(entry.get("import", np.nan)),
            export_kwh=float(entry.get("export", np.nan)),
            batch=int(entry["batch"]),
            meter=index,
        )
        for (first, last, index), entry in sorted(spans.items())
    ]
    profile = LoadProfile(start, imp, exp, quality, batch, meter_of, keys)
    if totals:
        profile = distribute_totals(profile, totals, tz, slp=location.slp, history=history)
    valued = profile.quality != Quality.MISSING
    final = profile.quality.copy()
    final[valued] = np.maximum(final[valued], floor[valued])
    profile = LoadProfile(
        start,
        profile.import_kwh,
        profile.export_kwh,
        final,
        profile.batch,
        profile.meter,
        keys,
    )
    return BuildReport(profile, tuple(warnings), tuple(totals))


def build_location_profile(
    location: Location,
    readings: Mapping[str, MeterReadings],
    start: int,
    stop: int,
    tz: str,
    *,
    history: LoadProfile | None = None,
) -> LoadProfile:
    """The meter-view load profile of ``location`` for the slots ``[start, stop)``.

    ``readings`` maps ``manufacturer:serial`` to each meter's readings (keys of other locations'
    meters are ignored); ``tz`` is the site's legal time; ``history`` earlier data of the location
    for the comparable days that shape long reading periods. Missing and incomplete slots stay
    missing (fill them with :func:`.fill_gaps`). Problems are collected and raised together as
    :class:`~lastgang.errors.MeterDataError`.
    """
    return build_location(location, readings, start, stop, tz, history=history).profile
