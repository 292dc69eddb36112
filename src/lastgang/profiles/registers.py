"""Cumulative energy registers (Zählwerke, e.g. ``1-0:1.8.0``) -> 15-minute energies.

Three steps, each a pure function over arrays:

1. :func:`unwrap_register` turns the readings as the meter showed them (secondary values) into a
   monotone cumulative PRIMARY register: an overflow (Zählerüberlauf) is absorbed once per reading
   period, anything else that makes the register decrease is reported (TOR-4.4, TOR-5.0a, TOR-7.2).
2. :func:`cumulative_to_slots` spreads the register over the quarter-hour grid by linear
   interpolation between readings and tells how many seconds of each slot readings cover.
3. :func:`interval_quality` and :func:`long_intervals` say how good each slot's value is and which
   slots lie in reading periods so long that their distribution has to come from a shape
   (comparable days or a standard load profile, :mod:`lastgang.profiles.substitutes`).

:func:`register_slots` runs the three for one :class:`~lastgang.profiles.readings.RegisterSeries`.
The rules are written out with worked numbers in ``docs/load-profiles.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from numpy.typing import ArrayLike, NDArray

from lastgang.errors import MeterDataError, Problem
from lastgang.profiles.readings import RegisterSeries
from lastgang.quality import Quality
from lastgang.timegrid import SLOT_SECONDS

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

__all__ = [
    "LINEAR_LIMIT_SECONDS",
    "MEASURED_LIMIT_SECONDS",
    "RegisterSlots",
    "closing_reading",
    "cumulative_to_slots",
    "interval_quality",
    "long_intervals",
    "register_slots",
    "unwrap_register",
]

#: A reading period of at most this length gives measured slots (L1).
MEASURED_LIMIT_SECONDS = SLOT_SECONDS
#: Reading periods shorter than this are spread linearly (L2, Q-2); longer ones get a shape.
LINEAR_LIMIT_SECONDS = 2 * 3600


def _utc(seconds: int | np.integer) -> str:
    return datetime.fromtimestamp(int(seconds), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _num(value: float | np.floating) -> str:
    """A reading as text, unrounded (``repr`` of the float, without a trailing ``.0``)."""
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


def _check_times(
    time: IntArray, *, meter: str | None, what: str, problems: list[Problem]
) -> NDArray[np.bool_]:
    """Report reading times that do not increase strictly; return the mask of bad periods."""
    bad = np.diff(time) <= 0
    for i in np.flatnonzero(bad):
        problems.append(
            Problem(
                f"{what}: reading time {_utc(time[i + 1])} does not come after the previous "
                f"reading at {_utc(time[i])}; readings must be sorted and unique",
                meter=meter,
                time=_utc(time[i + 1]),
            )
        )
    return bad


def unwrap_register(
    time: ArrayLike,
    value: ArrayLike,
    *,
    digits: int | None,
    max_power_kw: float | None,
    constant: float,
    meter: str,
    obis: str,
) -> FloatArray:
    """The cumulative PRIMARY register (kWh), monotone, from readings as the meter showed them.

    ``value`` holds secondary readings in the register's unit (kWh); the result is
    ``(value + overflows x 10**digits) x constant`` where ``constant`` is the transformer
    constant (Wandlerkonstante, CT ratio x VT ratio, TOR-4.4: 200/5 A x 20000/100 V = 8000).
    Nothing is rounded (TOR-7.2).

    Per reading period (two consecutive readings, TOR-5.0a):

    - an increase (or no change) is the energy of the period, no overflow;
    - a decrease is ONE overflow (wrap to zero at ``10**digits``) when ``digits`` is known and the
      wrapped advance ``new + 10**digits - old`` is at most half the register range; a decrease
      whose wrapped advance would be more than half the range, or any decrease without known
      digits, is a register running backwards;
    - with ``max_power_kw`` (primary kW) the advance (after at most one overflow) must fit
      ``max_power_kw x hours``; more is an impossible jump. For an overflow period the bound also
      decides whether a SECOND overflow can be excluded: when the advance plus one more full
      register range would still fit the bound, the number of overflows is ambiguous and is
      reported as a possible second overflow.

    Every violation is collected (meter, OBIS code, UTC times and readings) and raised together as
    :class:`~lastgang.errors.MeterDataError`; nothing is absorbed silently.
    """
    t = np.asarray(time, dtype=np.int64)
    v = np.asarray(value, dtype=np.float64)
    if t.shape != v.shape or t.ndim != 1:
        raise ValueError("time and value must be one-dimensional arrays of the same length")
    if not np.isfinite(constant) or constant <= 0:
        raise ValueError(f"transformer constant must be a positive number, got {constant!r}")
    what = f"register {obis}"
    problems: list[Problem] = []
    span = None if digits is None else 10.0**digits

    for i in np.flatnonzero(~np.isfinite(v) | (v < 0)):
        problems.append(
            Problem(
                f"{what}: reading {_num(v[i])} is not a register value (registers count up "
                "from 0); correct or remove the reading",
                meter=meter,
                time=_utc(t[i]),
            )
        )
    if span is not None:
        for i in np.flatnonzero(np.isfinite(v) & (v >= span)):
            problems.append(
                Problem(
                    f"{what}: reading {_num(v[i])} does not fit a register of {digits} digits "
                    f"(at most {_num(span)}); check register_digits in the concept",
                    meter=meter,
                    time=_utc(t[i]),
                )
            )
    bad_time = _check_times(t, meter=meter, what=what, problems=problems)

    d = np.diff(v)
    decrease = d < 0
    if span is not None:
        advance = np.where(decrease, d + span, d)
        wrap = decrease & (advance <= span / 2)
    else:
        advance = d.copy()
        wrap = np.zeros_like(decrease)
    backwards = decrease & ~wrap
    hours = np.diff(t).astype(np.float64) / 3600.0

    for i in np.flatnonzero(backwards & ~bad_time):
        hint = (
            f"a decrease of {_num(-d[i])} kWh is not an overflow of a {digits}-digit register "
            f"(an overflow would mean {_num(advance[i])} kWh, more than half the range)"
            if span is not None
            else "without register_digits in the concept a decrease cannot be an overflow"
        )
        problems.append(
            Problem(
                f"{what} runs backwards: {_num(v[i])} kWh at {_utc(t[i])} -> {_num(v[i + 1])} kWh "
                f"at {_utc(t[i + 1])}; {hint}. Enter a meter exchange in the concept or correct "
                "the reading (TOR-5.0a)",
                meter=meter,
                time=_utc(t[i + 1]),
            )
        )

    if max_power_kw is not None:
        limit = max_power_kw * hours  # primary kWh the meter can register in the period
        primary = advance * constant
        ok = ~backwards & ~bad_time
        for i in np.flatnonzero(ok & (primary > limit)):
            kind = "after one overflow " if wrap[i] else ""
            problems.append(
                Problem(
                    f"{what} advances {kind}by {_num(primary[i])} kWh (primary) between "
                    f"{_num(v[i])} kWh at {_utc(t[i])} and {_num(v[i + 1])} kWh at "
                    f"{_utc(t[i + 1])}, more than max power {_num(max_power_kw)} kW allows in "
                    f"{_num(hours[i])} h ({_num(limit[i])} kWh): a wrong reading, a second "
                    "overflow or a register running backwards (TOR-5.0a)",
                    meter=meter,
                    time=_utc(t[i + 1]),
                )
            )
        if span is not None:
            second = ok & wrap & (primary <= limit) & ((advance + span) * constant <= limit)
            for i in np.flatnonzero(second):
                problems.append(
                    Problem(
                        f"{what} may have overflowed twice between {_num(v[i])} kWh at "
                        f"{_utc(t[i])} and {_num(v[i + 1])} kWh at {_utc(t[i + 1])}: one overflow "
                        f"gives {_num(primary[i])} kWh, two give "
                        f"{_num((advance[i] + span) * constant)} kWh, and max power "
                        f"{_num(max_power_kw)} kW x {_num(hours[i])} h = {_num(limit[i])} kWh "
                        "allows both; TOR-5.0a allows one overflow per reading period: read the "
                        "meter more often or check register_digits",
                        meter=meter,
                        time=_utc(t[i + 1]),
                    )
                )

    if problems:
        raise MeterDataError(
            f"meter {meter}, register {obis}: {len(problems)} problem(s) in the readings",
            problems,
        )
    if span is None or not wrap.any():
        return v * constant
    overflows = np.concatenate(([0.0], np.cumsum(wrap, dtype=np.float64)))
    return (v + overflows * span) * constant


def cumulative_to_slots(
    time: ArrayLike, cumulative: ArrayLike, start: int, stop: int
) -> tuple[FloatArray, IntArray]:
    """Energy per slot ``[start, stop)`` from a monotone cumulative register, and the seconds of
    each slot that readings cover.

    The register is interpolated linearly between the two readings around each slot boundary;
    a slot's energy is the difference of the interpolated register at its two boundaries
    (Lastgang from a register: constant power between readings). Parts of slots before the first
    or after the last reading are not covered: their energy is not counted and their seconds are
    not in ``covered`` (a slot nothing covers has energy 0 and covered 0). With readings on slot
    boundaries, the slots between two readings sum to the register difference.
    """
    t = np.asarray(time, dtype=np.int64)
    c = np.asarray(cumulative, dtype=np.float64)
    if stop < start:
        raise ValueError(f"stop {stop} is before start {start}")
    n = stop - start
    if len(t) < 2:
        return np.zeros(n), np.zeros(n, dtype=np.int64)
    bounds = np.arange(start, stop + 1, dtype=np.int64) * SLOT_SECONDS
    clipped = np.clip(bounds, t[0], t[-1])
    register = np.interp(clipped.astype(np.float64), t.astype(np.float64), c)
    return np.diff(register), np.diff(clipped)


def _touched_by(
    time: IntArray, mask: NDArray[np.bool_], start: int, stop: int
) -> NDArray[np.bool_]:
    """Slots of ``[start, stop)`` that overlap a reading period ``(time[i], time[i+1])`` with
    ``mask[i]`` set (positive overlap, not just a shared boundary)."""
    n = stop - start
    idx = np.flatnonzero(mask)
    lo = np.clip(time[idx] // SLOT_SECONDS - start, 0, n)
    hi = np.clip(-(-time[idx + 1] // SLOT_SECONDS) - start, 0, n)
    marks = np.zeros(n + 1, dtype=np.int64)
    np.add.at(marks, lo, 1)
    np.add.at(marks, hi, -1)
    return np.cumsum(marks[:-1]) > 0


def interval_quality(time: ArrayLike, start: int, stop: int) -> NDArray[np.int8]:
    """Quality of the covered part of each slot from the lengths of the reading periods.

    ``L1`` when every reading period that touches the slot is at most 15 minutes long (the
    energy is measured per quarter hour; readings off the boundaries move at most the seconds of
    clock offset between neighbours); ``L2`` when a longer period touches it (its total is
    measured, its distribution over the slots is an interpolation, Q-2); ``MISSING`` for slots no
    reading period touches.
    """
    t = np.asarray(time, dtype=np.int64)
    n = stop - start
    out = np.full(n, Quality.MISSING, dtype=np.int8)
    if len(t) < 2:
        return out
    lengths = np.diff(t)
    touched = _touched_by(t, lengths > 0, start, stop)
    longer = _touched_by(t, lengths > MEASURED_LIMIT_SECONDS, start, stop)
    out[touched] = Quality.L1
    out[longer] = Quality.L2
    return out


def long_intervals(
    time: ArrayLike, start: int, stop: int, *, min_seconds: int = LINEAR_LIMIT_SECONDS
) -> tuple[IntArray, IntArray, IntArray]:
    """Reading periods of at least ``min_seconds`` (2 h): for each, the whole slots inside it.

    Returns ``(first, stop, closing)``: slot spans ``[first, stop)`` (clipped to
    ``[start, stop)``, empty spans dropped) and the index of the reading that closes each period.
    The parts of slots at the ends of such a period (readings off the boundaries) are not in the
    span; they keep their linear share.
    """
    t = np.asarray(time, dtype=np.int64)
    if len(t) < 2:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty.copy(), empty.copy()
    idx = np.flatnonzero(np.diff(t) >= min_seconds)
    first = np.clip(-(-t[idx] // SLOT_SECONDS), start, stop)
    last = np.clip(t[idx + 1] // SLOT_SECONDS, start, stop)
    keep = first < last
    return first[keep], last[keep], (idx + 1)[keep].astype(np.int64)


def closing_reading(time: ArrayLike, start: int, stop: int) -> IntArray:
    """Per slot, the index of the reading that closes the slot's (last covered) reading period:
    the first reading at or after the slot's end, or the last reading when the series ends inside
    the slot. Slots before the first reading get index 0 (they are not covered)."""
    t = np.asarray(time, dtype=np.int64)
    ends = np.arange(start + 1, stop + 1, dtype=np.int64) * SLOT_SECONDS
    if len(t) == 0:
        return np.zeros(stop - start, dtype=np.int64)
    return np.minimum(np.searchsorted(t, ends, side="left"), len(t) - 1).astype(np.int64)


@dataclass(frozen=True, eq=False)
class RegisterSlots:
    """One register turned into slots ``[start, stop)``: primary kWh, covered seconds, quality of
    the covered part, closing batch, and the spans of long reading periods (to be shaped)."""

    energy: FloatArray
    covered: IntArray
    quality: NDArray[np.int8]
    batch: IntArray
    span_first: IntArray
    span_stop: IntArray
    span_batch: IntArray


def register_slots(
    series: RegisterSeries,
    start: int,
    stop: int,
    *,
    digits: int | None,
    max_power_kw: float | None,
    constant: float,
    meter: str,
) -> RegisterSlots:
    """:func:`unwrap_register`, :func:`cumulative_to_slots`, :func:`interval_quality` and
    :func:`long_intervals` for one register series."""
    cumulative = unwrap_register(
        series.time,
        series.value,
        digits=digits,
        max_power_kw=max_power_kw,
        constant=constant,
        meter=meter,
        obis=series.obis,
    )
    energy, covered = cumulative_to_slots(series.time, cumulative, start, stop)
    quality = interval_quality(series.time, start, stop)
    closing = closing_reading(series.time, start, stop)
    batch = (
        series.batch[closing].astype(np.int64)
        if len(series.batch)
        else np.zeros(stop - start, dtype=np.int64)
    )
    first, last, span_closing = long_intervals(series.time, start, stop)
    return RegisterSlots(
        energy=energy,
        covered=covered,
        quality=quality,
        batch=batch,
        span_first=first,
        span_stop=last,
        span_batch=series.batch[span_closing].astype(np.int64),
    )
