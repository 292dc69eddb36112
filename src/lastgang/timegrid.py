"""The quarter-hour time grid, legal time and period-end labels (TOR-4.2).

Inside lastgang time is UTC and counted in *slots*: slot ``n`` covers ``[n*900 s, (n+1)*900 s)``
from the Unix epoch. Outside, a site speaks its legal time (gesetzliche Zeit, an IANA zone,
``Europe/Vienna`` by default) and labels each metering period (Messperiode) by its END, to the
minute: the quarter 03:15-03:30 is ``03:30``, the last quarter of a day is ``24:00`` of that day,
and in the repeated autumn hour the UTC offset keeps the labels apart (``02:15+02:00`` and
``02:15+01:00``). See ``docs/time.md``.

Everything here is pure. Bulk functions work on numpy ``int64`` arrays of slots or epoch seconds;
UTC offsets are looked up per zone transition (Zeitumstellung), never per value.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from enum import IntEnum
from functools import lru_cache
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import numpy as np
import polars as pl
from numpy.typing import NDArray

from lastgang.errors import InvalidInput, InvalidTime

__all__ = [
    "DAY",
    "DEFAULT_TIMEZONE",
    "HOUR",
    "MONTH",
    "QUARTER_HOUR",
    "SLOT_SECONDS",
    "DayType",
    "OffsetStyle",
    "Resolution",
    "aggregate",
    "austrian_holidays",
    "day_slots",
    "day_type",
    "day_types",
    "disaggregate",
    "easter_sunday",
    "end_label",
    "end_labels",
    "is_on_grid",
    "local_date_of_slots",
    "local_days",
    "local_start_minutes",
    "local_weekday",
    "month_slots",
    "parse_end_label",
    "parse_resolution",
    "parse_timestamp",
    "parse_timestamps",
    "period_boundaries",
    "period_slots",
    "slot_of",
    "slot_start",
    "slot_start_epoch",
    "slots_of",
    "to_epoch",
    "utc_offsets",
    "zone",
]

SLOT_SECONDS = 900
"""Length of one metering period (Messperiode) in seconds: 15 minutes (TOR-4.2)."""

DEFAULT_TIMEZONE = "Europe/Vienna"
"""Legal time of a site unless its concept says otherwise."""

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]
TimeZoneLike = str | ZoneInfo
OffsetStyle = Literal["always", "ambiguous", "never"]

_DAY = 86_400
_BIG = 2**62  # stands for -inf/+inf in int64 arithmetic
_MAX_OFFSET = 26 * 3600  # no zone has ever been further than this from UTC
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_ONE_SECOND = timedelta(seconds=1)


# --------------------------------------------------------------------------------------------
# zones and UTC offsets


@lru_cache(maxsize=256)
def zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name`` (e.g. ``Europe/Vienna``), cached.

    Raises :class:`InvalidTime` for an unknown zone, naming the closest known zones.
    """
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        close = difflib.get_close_matches(name, sorted(available_timezones()), n=3, cutoff=0.6)
        hint = f"; did you mean {' or '.join(close)}?" if close else ""
        raise InvalidTime(
            f"unknown time zone {name!r}: use an IANA zone name such as {DEFAULT_TIMEZONE}{hint}"
        ) from None


def _tz(tz: TimeZoneLike) -> ZoneInfo:
    return zone(tz) if isinstance(tz, str) else tz


def _offset_at(tz: ZoneInfo, epoch: int) -> int:
    offset = datetime.fromtimestamp(epoch, tz).utcoffset()
    assert offset is not None
    return offset // _ONE_SECOND


def _year_start(year: int) -> int:
    return (date(year, 1, 1).toordinal() - _EPOCH_ORDINAL) * _DAY


@lru_cache(maxsize=4096)
def _year_table(tz: ZoneInfo, year: int) -> tuple[int, tuple[int, ...], tuple[int, ...]]:
    """UTC offset at the start of UTC ``year`` and the transitions inside it (instant, offset).

    The zone is sampled every UTC hour and each change is narrowed down to the second, so the
    table is exact for every zone whose transitions are more than an hour apart (all of them).
    """
    lo, hi = _year_start(year), _year_start(year + 1)
    first = previous = _offset_at(tz, lo)
    times: list[int] = []
    offsets: list[int] = []
    t_prev = lo
    for t in range(lo + 3600, hi + 1, 3600):  # up to hi: a change in the last hour counts
        current = _offset_at(tz, t)
        if current != previous:
            a, b = t_prev, t  # offset(a) == previous != offset(b)
            while b - a > 1:
                mid = (a + b) // 2
                if _offset_at(tz, mid) == previous:
                    a = mid
                else:
                    b = mid
            times.append(b)
            offsets.append(current)
            previous = current
        t_prev = t
    return first, tuple(times), tuple(offsets)


def _utc_year(epoch: int) -> int:
    ordinal = min(max(_EPOCH_ORDINAL + epoch // _DAY, 1), date.max.toordinal())
    return date.fromordinal(ordinal).year


@lru_cache(maxsize=1024)
def _table_years(tz: ZoneInfo, first: int, last: int) -> tuple[IntArray, IntArray]:
    times: list[int] = []
    offsets: list[int] = []
    for year in range(first, last + 1):
        start_offset, year_times, year_offsets = _year_table(tz, year)
        if not offsets:
            offsets.append(start_offset)
        elif start_offset != offsets[-1]:
            times.append(_year_start(year))
            offsets.append(start_offset)
        times.extend(year_times)
        offsets.extend(year_offsets)
    return np.array(times, dtype=np.int64), np.array(offsets, dtype=np.int64)


def _table(tz: ZoneInfo, lo: int, hi: int) -> tuple[IntArray, IntArray]:
    """Transitions ``times`` and ``offsets`` (one more than times) covering ``[lo, hi]``.

    ``offsets[i]`` is in force from ``times[i-1]`` (inclusive) to ``times[i]`` (exclusive).
    """
    first = max(_utc_year(lo - _DAY), 2)
    last = min(_utc_year(hi + _DAY), 9998)
    return _table_years(tz, first, max(first, last))


def utc_offsets(epochs: IntArray, tz: TimeZoneLike) -> IntArray:
    """UTC offset in seconds in force at each instant (epoch seconds) in zone ``tz``.

    At a transition instant the new offset is in force (03:00 CEST at 01:00 UTC in spring).
    """
    e = np.asarray(epochs, dtype=np.int64)
    if e.size == 0:
        return np.zeros(e.shape, dtype=np.int64)
    times, offsets = _table(_tz(tz), int(e.min()), int(e.max()))
    return offsets[np.searchsorted(times, e, side="right")]


def _segments_near(
    walls: IntArray, tz: ZoneInfo
) -> tuple[IntArray, IntArray, IntArray, IntArray, int]:
    """The offset segments that can hold an instant with one of these wall times.

    Returns (times, offsets, first segment index, last segment index, max count) per wall time.
    """
    times, offsets = _table(tz, int(walls.min()) - _MAX_OFFSET, int(walls.max()) + _MAX_OFFSET)
    first = np.searchsorted(times, walls - _MAX_OFFSET, side="right")
    last = np.searchsorted(times, walls + _MAX_OFFSET, side="right")
    return times, offsets, first, last, int((last - first).max()) + 1


def _segment_bounds(times: IntArray, index: IntArray) -> tuple[IntArray, IntArray]:
    padded = np.concatenate(([-_BIG], times, [_BIG]))
    return padded[index], padded[index + 1]


def _first_instant(walls: IntArray, tz: ZoneInfo) -> IntArray:
    """First instant at which the local clock reaches (shows or has passed) each wall time.

    ``walls`` are local wall-clock times written as seconds from 1970-01-01 00:00 (local). For an
    ordinary time this is simply that time; in a spring gap it is the transition (the clock jumps
    past the wall time); in the repeated autumn hour it is the first occurrence. The result grows
    with the wall time, so local days and calendar periods are contiguous and never overlap.
    """
    w = np.asarray(walls, dtype=np.int64)
    if w.size == 0:
        return w.copy()
    times, offsets, first, last, count = _segments_near(w, tz)
    best = np.full(w.shape, _BIG, dtype=np.int64)
    for k in range(count):
        index = np.minimum(first + k, last)
        seg_lo, seg_hi = _segment_bounds(times, index)
        # instants of this segment from ``w - offset`` on show a wall time of ``w`` or later
        candidate = np.maximum(seg_lo, w - offsets[index])
        ok = (first + k <= last) & (candidate < seg_hi)
        best = np.where(ok, np.minimum(best, candidate), best)
    return best


def _instants_of_wall(walls: IntArray, tz: ZoneInfo) -> tuple[IntArray, IntArray, IntArray]:
    """How many instants show each wall time, and the first and last of them."""
    w = np.asarray(walls, dtype=np.int64)
    times, offsets, first, last, count = _segments_near(w, tz)
    n = np.zeros(w.shape, dtype=np.int64)
    lowest = np.full(w.shape, _BIG, dtype=np.int64)
    highest = np.full(w.shape, -_BIG, dtype=np.int64)
    for k in range(count):
        index = np.minimum(first + k, last)
        seg_lo, seg_hi = _segment_bounds(times, index)
        t = w - offsets[index]
        ok = (first + k <= last) & (seg_lo <= t) & (t < seg_hi)
        n += ok
        lowest = np.where(ok, np.minimum(lowest, t), lowest)
        highest = np.where(ok, np.maximum(highest, t), highest)
    return n, lowest, highest


def _day_number(day: date) -> int:
    return day.toordinal() - _EPOCH_ORDINAL


def _date_of_day_number(n: int) -> date:
    return date.fromordinal(n + _EPOCH_ORDINAL)


def _ceil_slot(epochs: IntArray) -> IntArray:
    return -(-epochs // SLOT_SECONDS)


def _local_walls(slots: IntArray, tz: TimeZoneLike) -> IntArray:
    """Local wall time (seconds from local 1970-01-01 00:00) at the start of each slot."""
    e = np.asarray(slots, dtype=np.int64) * SLOT_SECONDS
    return e + utc_offsets(e, tz)


# --------------------------------------------------------------------------------------------
# timestamps

_TIMESTAMP = re.compile(
    r"(?P<y>[0-9]{4})-(?P<mo>[0-9]{2})-(?P<d>[0-9]{2})[Tt ]"
    r"(?P<h>[0-9]{2}):(?P<mi>[0-9]{2})(?::(?P<s>[0-9]{2})(?:[.,](?P<f>[0-9]{1,9}))?)?"
    r" ?(?P<off>[Zz]|[+-][0-9]{2}(?::?[0-9]{2})?)?",
    re.ASCII,
)
_EXAMPLE = "2024-03-31T02:15:00+01:00"


def _offset_from_text(text: str) -> timedelta:
    if text in ("Z", "z"):
        return timedelta(0)
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:] or 0)
    if hours > 23 or minutes > 59:
        raise ValueError(f"UTC offset {text} out of range")
    return sign * timedelta(hours=hours, minutes=minutes)


def parse_timestamp(text: str) -> datetime:
    """An ISO 8601 timestamp with UTC offset or ``Z`` to an aware :class:`datetime`.

    Accepts ``2024-03-31T02:15:00+01:00``, ``2024-03-31 02:15+01:00``, ``...Z``, seconds and a
    fraction (``.123``, truncated to microseconds) optional, offsets ``+01:00``, ``+0100`` or
    ``+01``. ``24:00`` (and ``24:00:00``) means 00:00 of the next day. A timestamp without offset
    is refused: legal time repeats an hour each autumn, so it would not name one instant.
    """
    if not isinstance(text, str):
        raise InvalidTime(f"{text!r} is not a timestamp text (expected e.g. {_EXAMPLE})")
    stripped = text.strip()
    m = _TIMESTAMP.fullmatch(stripped)
    if m is None:
        raise InvalidTime(f"{text!r} is not an ISO 8601 timestamp (expected e.g. {_EXAMPLE})")
    if m["off"] is None:
        raise InvalidTime(f"{text!r} has no UTC offset; write e.g. {_EXAMPLE}")
    hour = int(m["h"])
    fraction = m["f"] or ""
    try:
        tzinfo = timezone(_offset_from_text(m["off"]))
        next_day = hour == 24
        if next_day and (int(m["mi"]) or int(m["s"] or 0) or fraction.strip("0")):
            raise ValueError("24:00 is the only time with hour 24")
        dt = datetime(
            int(m["y"]),
            int(m["mo"]),
            int(m["d"]),
            0 if next_day else hour,
            int(m["mi"]),
            int(m["s"] or 0),
            int(fraction[:6].ljust(6, "0")),
            tzinfo=tzinfo,
        )
        return dt + timedelta(days=1) if next_day else dt
    except (ValueError, OverflowError) as exc:
        raise InvalidTime(f"{text!r} is not a valid date and time: {exc}") from None


def to_epoch(dt: datetime) -> int:
    """Seconds since the Unix epoch of an aware datetime, fractions of a second floored.

    Raises :class:`InvalidTime` for a naive datetime (one without ``tzinfo``).
    """
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise InvalidTime(f"{dt.isoformat()} has no time zone; lastgang never guesses one")
    return (dt - _EPOCH) // _ONE_SECOND


# Layouts the vectorized parser reads directly; anything else goes through parse_timestamp.
# d digit, S date/time separator, . fraction separator, + offset sign, Z zulu, others literal.
_LAYOUTS = tuple(
    "dddd-dd-ddS" + time + offset
    for time in ("dd:dd", "dd:dd:dd", "dd:dd:dd.ddd", "dd:dd:dd.dddddd")
    for offset in ("Z", "+dd:dd", "+dddd")
)


def _class_table(chars: str) -> NDArray[np.bool_]:
    table = np.zeros(256, dtype=np.bool_)
    table[list(chars.encode("ascii"))] = True
    return table


_CLASSES = {
    "d": _class_table("0123456789"),
    "S": _class_table("Tt "),
    ".": _class_table(".,"),
    "+": _class_table("+-"),
    "Z": _class_table("Zz"),
    "-": _class_table("-"),
    ":": _class_table(":"),
}


def _digits(m: NDArray[np.uint8], first: int, count: int) -> IntArray:
    value = np.zeros(m.shape[0], dtype=np.int64)
    for p in range(first, first + count):
        value = value * 10 + (m[:, p].astype(np.int64) - 48)
    return value


def _days_from_civil(y: IntArray, m: IntArray, d: IntArray) -> IntArray:
    """Days since 1970-01-01 of proleptic Gregorian dates (H. Hinnant's algorithm)."""
    y = y - (m <= 2)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * np.where(m > 2, m - 3, m + 9) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    result: IntArray = era * 146_097 + doe - 719_468
    return result


_MONTH_DAYS = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)


def _parse_layout(m: NDArray[np.uint8], layout: str) -> tuple[NDArray[np.bool_], IntArray]:
    """Rows of ``m`` that match ``layout`` and hold a valid time, and their epoch seconds."""
    ok = np.ones(m.shape[0], dtype=np.bool_)
    for p, c in enumerate(layout):
        ok &= _CLASSES[c][m[:, p]]
    if not ok.any():
        return ok, np.zeros(m.shape[0], dtype=np.int64)
    year, month, day = _digits(m, 0, 4), _digits(m, 5, 2), _digits(m, 8, 2)
    hour, minute = _digits(m, 11, 2), _digits(m, 14, 2)
    second = _digits(m, 17, 2) if len(layout) > 17 and layout[16] == ":" else np.zeros_like(year)
    fraction_zero = np.ones_like(ok)
    dot = layout.find(".")
    if dot >= 0:
        rest = layout[dot + 1 :]
        fraction_zero = _digits(m, dot + 1, len(rest) - len(rest.lstrip("d"))) == 0
    off = np.zeros_like(year)
    sign_at = layout.find("+")
    if sign_at >= 0:
        off_h = _digits(m, sign_at + 1, 2)
        off_m = _digits(m, sign_at + (4 if layout[sign_at + 3] == ":" else 3), 2)
        sign = np.where(m[:, sign_at] == ord("-"), -1, 1)
        ok &= (off_h <= 23) & (off_m <= 59)
        off = sign * (off_h * 3600 + off_m * 60)
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    month_ok = (month >= 1) & (month <= 12)
    days_in_month = _MONTH_DAYS[np.where(month_ok, month, 0)] + (leap & (month == 2))
    midnight_24 = (hour == 24) & (minute == 0) & (second == 0) & fraction_zero
    ok &= (year >= 1) & month_ok & (day >= 1) & (day <= days_in_month)
    ok &= ((hour <= 23) | midnight_24) & (minute <= 59) & (second <= 59)
    ok &= ~(midnight_24 & (year == 9999) & (month == 12) & (day == 31))
    days = _days_from_civil(year, month, day)
    epoch = days * _DAY + hour * 3600 + minute * 60 + second - off
    return ok, np.where(ok, epoch, 0)


_CHUNK = 1 << 18


def parse_timestamps(
    texts: Sequence[str] | pl.Series | NDArray[Any],
) -> tuple[IntArray, list[tuple[int, str]]]:
    """Many ISO 8601 timestamps with UTC offsets to epoch seconds, in one vectorized pass.

    Returns ``(epochs, problems)``: ``problems`` lists ``(index, reason)`` for every text that
    :func:`parse_timestamp` would refuse, and ``epochs`` holds 0 there. The common fixed layouts
    (``YYYY-MM-DDTHH:MM[:SS[.fff|.ffffff]]`` with ``Z``, ``+HH:MM`` or ``+HHMM``, ``T`` or space)
    are read straight from the bytes with numpy; every other text goes through
    :func:`parse_timestamp`, so the results are the same as calling it on each value.
    Accepts a sequence of ``str``, a numpy array of strings or a polars ``Utf8`` Series.
    """
    problems: list[tuple[int, str]] = []
    if isinstance(texts, pl.Series):
        series = texts.cast(pl.String)
        n = len(series)
        lengths = series.str.len_bytes().fill_null(-1).to_numpy().astype(np.int64)
        joined = (series.str.join("").item() or "") if n else ""
        buffer = np.frombuffer(joined.encode("utf-8"), dtype=np.uint8)

        def get(i: int) -> object:
            return series[i]

    else:
        items: list[Any] = texts.tolist() if isinstance(texts, np.ndarray) else list(texts)
        n = len(items)
        try:
            joined = "".join(items)
        except TypeError:
            joined = "".join(t for t in items if isinstance(t, str))
        encoded = joined.encode("utf-8", errors="surrogatepass")
        buffer = np.frombuffer(encoded, dtype=np.uint8)
        if len(encoded) == len(joined):
            sizes = (len(t) if isinstance(t, str) else -1 for t in items)
        else:
            sizes = (
                len(t.encode("utf-8", errors="surrogatepass")) if isinstance(t, str) else -1
                for t in items
            )
        lengths = np.fromiter(sizes, dtype=np.int64, count=n)

        def get(i: int) -> object:
            return items[i]

    epochs = np.zeros(n, dtype=np.int64)
    done = np.zeros(n, dtype=np.bool_)
    starts = np.concatenate(([0], np.cumsum(np.maximum(lengths, 0))[:-1])) if n else lengths
    by_length: dict[int, list[str]] = {}
    for layout in _LAYOUTS:
        by_length.setdefault(len(layout), []).append(layout)
    uniform = n > 0 and bool((lengths == lengths[0]).all())
    for size, layouts in by_length.items():
        if uniform:
            if lengths[0] != size:
                continue
            rows = np.arange(n)
        else:
            rows = np.flatnonzero(lengths == size)
        for lo in range(0, len(rows), _CHUNK):
            part = rows[lo : lo + _CHUNK]
            if uniform:
                matrix = buffer[lo * size : (lo + len(part)) * size].reshape(len(part), size)
            else:
                matrix = buffer[starts[part][:, None] + np.arange(size)]
            for layout in layouts:
                ok, values = _parse_layout(matrix, layout)
                hit = part[ok & ~done[part]]
                epochs[hit] = values[ok & ~done[part]]
                done[hit] = True
    for i in np.flatnonzero(~done).tolist():
        value = get(i)
        if value is None:
            problems.append((i, "timestamp is missing"))
            continue
        try:
            epochs[i] = to_epoch(parse_timestamp(value))  # type: ignore[arg-type]
        except InvalidTime as exc:
            problems.append((i, exc.message))
    return epochs, problems


# --------------------------------------------------------------------------------------------
# slots


def slot_of(epoch_seconds: int) -> int:
    """The slot holding an instant (floor: 00:14:59 UTC is in the slot of 00:00)."""
    return int(epoch_seconds) // SLOT_SECONDS


def slots_of(epochs: IntArray) -> IntArray:
    """:func:`slot_of` for an array of epoch seconds."""
    result: IntArray = np.asarray(epochs, dtype=np.int64) // SLOT_SECONDS
    return result


def slot_start_epoch(slot: int) -> int:
    """Epoch seconds of the start of ``slot``."""
    return int(slot) * SLOT_SECONDS


def slot_start(slot: int) -> datetime:
    """Start of ``slot`` as an aware UTC datetime."""
    return _EPOCH + timedelta(seconds=slot_start_epoch(slot))


def is_on_grid(epoch_seconds: int) -> bool:
    """Whether an instant is a full quarter hour (a slot boundary)."""
    return int(epoch_seconds) % SLOT_SECONDS == 0


# --------------------------------------------------------------------------------------------
# local days


def _day_starts(day_numbers: IntArray, tz: ZoneInfo) -> IntArray:
    """First slot of each local day (days given as days since 1970-01-01)."""
    return _ceil_slot(_first_instant(np.asarray(day_numbers, dtype=np.int64) * _DAY, tz))


def day_slots(day: date, tz: TimeZoneLike = DEFAULT_TIMEZONE) -> tuple[int, int]:
    """``[start, stop)`` slots of a local day: 96, or 92 / 100 on the days the clocks change."""
    return period_slots(day, day, tz)


def period_slots(
    first_day: date, last_day: date, tz: TimeZoneLike = DEFAULT_TIMEZONE
) -> tuple[int, int]:
    """``[start, stop)`` slots of the whole local days ``first_day`` .. ``last_day`` inclusive."""
    if last_day < first_day:
        raise InvalidTime(f"period from {first_day} to {last_day} ends before it starts")
    days = np.array([_day_number(first_day), _day_number(last_day) + 1], dtype=np.int64)
    start, stop = _day_starts(days, _tz(tz)).tolist()
    return int(start), int(stop)


def month_slots(year: int, month: int, tz: TimeZoneLike = DEFAULT_TIMEZONE) -> tuple[int, int]:
    """``[start, stop)`` slots of a local calendar month."""
    if not 1 <= month <= 12:
        raise InvalidTime(f"month {month} does not exist: use 1 to 12")
    last = date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)
    return period_slots(date(year, month, 1), last, tz)


def local_days(
    start: int, stop: int, tz: TimeZoneLike = DEFAULT_TIMEZONE
) -> list[tuple[date, int, int]]:
    """The local days overlapping ``[start, stop)``, each with its slots clipped to the range."""
    if stop <= start:
        return []
    zi = _tz(tz)
    walls = _local_walls(np.array([start, stop - 1], dtype=np.int64), zi)
    first, last = (walls // _DAY).tolist()
    numbers = np.arange(first - 1, last + 3, dtype=np.int64)
    bounds = _day_starts(numbers, zi).tolist()
    out: list[tuple[date, int, int]] = []
    for i, n in enumerate(numbers[:-1].tolist()):
        lo, hi = max(bounds[i], start), min(bounds[i + 1], stop)
        if lo < hi:
            out.append((_date_of_day_number(n), int(lo), int(hi)))
    return out


def local_date_of_slots(slots: IntArray, tz: TimeZoneLike = DEFAULT_TIMEZONE) -> NDArray[Any]:
    """Local date of each slot's START as ``datetime64[D]``."""
    return (_local_walls(slots, tz) // _DAY).astype("datetime64[D]")


def local_start_minutes(slots: IntArray, tz: TimeZoneLike = DEFAULT_TIMEZONE) -> IntArray:
    """Minutes after local midnight of each slot's start (0 .. 1425 on a normal day)."""
    result: IntArray = (_local_walls(slots, tz) % _DAY) // 60
    return result


def local_weekday(slots: IntArray, tz: TimeZoneLike = DEFAULT_TIMEZONE) -> IntArray:
    """Local weekday of each slot's start, 0 = Monday .. 6 = Sunday."""
    result: IntArray = (_local_walls(slots, tz) // _DAY + 3) % 7  # 1970-01-01 was a Thursday
    return result


# --------------------------------------------------------------------------------------------
# period-end labels (TOR-4.2)


def _format_offset(seconds: int) -> str:
    sign = "-" if seconds < 0 else "+"
    h, rest = divmod(abs(seconds), 3600)
    m, s = divmod(rest, 60)
    return f"{sign}{h:02d}:{m:02d}" + (f":{s:02d}" if s else "")


_CLOCK = [f"{m // 60:02d}:{m % 60:02d}" for m in range(1, 1441)]  # minute 1..1440 of a day


def end_labels(
    start: int,
    stop: int,
    tz: TimeZoneLike = DEFAULT_TIMEZONE,
    *,
    offset: OffsetStyle = "always",
) -> list[str]:
    """TOR-4.2 labels of the ENDS of the slots ``[start, stop)``, see :func:`end_label`."""
    if stop <= start:
        return []
    if offset not in ("always", "ambiguous", "never"):
        raise ValueError(f"offset must be 'always', 'ambiguous' or 'never', not {offset!r}")
    zi = _tz(tz)
    ends = (np.arange(start, stop, dtype=np.int64) + 1) * SLOT_SECONDS
    offs = utc_offsets(ends, zi)
    walls = ends + offs
    # the label belongs to the day the period lies in: local midnight is 24:00 of the day before
    minute = (walls - 1) % _DAY // 60 + 1
    dates = np.datetime_as_string(((walls - 1) // _DAY).astype("datetime64[D]")).tolist()
    clock = [_CLOCK[m - 1] for m in minute.tolist()]
    if offset == "never":
        return [f"{d} {c}" for d, c in zip(dates, clock, strict=True)]
    show = np.ones(len(ends), dtype=np.bool_)
    if offset == "ambiguous":
        count, _, _ = _instants_of_wall(walls, zi)
        show = count > 1
    texts = {o: _format_offset(o) for o in np.unique(offs).tolist()}
    return [
        f"{d} {c}{texts[o]}" if s else f"{d} {c}"
        for d, c, o, s in zip(dates, clock, offs.tolist(), show.tolist(), strict=True)
    ]


def end_label(
    slot: int, tz: TimeZoneLike = DEFAULT_TIMEZONE, *, offset: OffsetStyle = "always"
) -> str:
    """TOR-4.2 label of the END of ``slot`` in legal time, to the minute.

    ``2024-01-15 03:30+01:00`` for 03:15-03:30; the last quarter of a day is ``24:00`` of that
    day. The offset is the one in force at the end instant (as ebUtilities ``DTT``), so the
    repeated autumn hour in Vienna reads ``02:15+02:00`` .. ``02:45+02:00``, ``02:00+01:00``,
    ``02:15+01:00`` .. ``03:00+01:00``. ``offset="ambiguous"`` writes it only where the local
    time alone names two instants, ``"never"`` leaves it out.
    """
    return end_labels(slot, slot + 1, tz, offset=offset)[0]


_LABEL = re.compile(
    r"(?P<y>[0-9]{4})-(?P<mo>[0-9]{2})-(?P<d>[0-9]{2})[Tt ]"
    r"(?P<h>[0-9]{2}):(?P<mi>[0-9]{2})(?::00)? ?(?P<off>[Zz]|[+-][0-9]{2}(?::?[0-9]{2})?)?",
    re.ASCII,
)


def parse_end_label(text: str, tz: TimeZoneLike = DEFAULT_TIMEZONE) -> int:
    """The slot whose period ENDS at a TOR-4.2 label such as ``2024-10-27 02:15+01:00``.

    ``24:00`` is the end of the day. Without offset the local time must name exactly one instant
    (an offset is required in the repeated autumn hour); a local time in the spring gap does not
    exist and is refused; with an offset it must be the offset in force at that instant. Labels
    off the quarter-hour grid are refused.
    """
    zi = _tz(tz)
    m = _LABEL.fullmatch(text.strip()) if isinstance(text, str) else None
    if m is None:
        raise InvalidTime(
            f"{text!r} is not a period-end label (expected e.g. 2024-01-15 03:30+01:00)"
        )
    hour, minute = int(m["h"]), int(m["mi"])
    try:
        day = date(int(m["y"]), int(m["mo"]), int(m["d"]))
        if hour > 24 or minute > 59 or (hour == 24 and minute):
            raise ValueError(f"{hour:02d}:{minute:02d} is not a time of day")
    except ValueError as exc:
        raise InvalidTime(f"{text!r} is not a valid date and time: {exc}") from None
    wall = _day_number(day) * _DAY + hour * 3600 + minute * 60
    if m["off"] is not None:
        try:
            off = _offset_from_text(m["off"]) // _ONE_SECOND
        except ValueError as exc:
            raise InvalidTime(f"{text!r}: {exc}") from None
        instant = wall - off
        in_force = int(utc_offsets(np.array([instant]), zi)[0])
        if in_force != off:
            raise InvalidTime(
                f"{text!r} is not legal time in {zi.key}: the UTC offset there at that instant "
                f"is {_format_offset(in_force)}; write "
                f"{_label_text(instant + in_force, in_force)}"
            )
    else:
        count, lowest, highest = _instants_of_wall(np.array([wall], dtype=np.int64), zi)
        if count[0] == 0:
            raise InvalidTime(
                f"{text!r} does not exist in {zi.key}: the clocks jump over it (spring change)"
            )
        if count[0] > 1:
            a, b = int(lowest[0]), int(highest[0])
            raise InvalidTime(
                f"{text!r} is ambiguous in {zi.key} (the hour is repeated when the clocks go "
                f"back): add the UTC offset, {_label_text(wall, wall - a)} or "
                f"{_label_text(wall, wall - b)}"
            )
        instant = int(lowest[0])
    if instant % SLOT_SECONDS:
        raise InvalidTime(f"{text!r} is not the end of a quarter hour (:00, :15, :30 or :45)")
    return instant // SLOT_SECONDS - 1


def _label_text(wall: int, off: int) -> str:
    days, seconds = divmod(wall - 1, _DAY)
    minute = seconds // 60 + 1
    return f"{_date_of_day_number(days)} {_CLOCK[minute - 1]}{_format_offset(off)}"


# --------------------------------------------------------------------------------------------
# resolutions and aggregation


@dataclass(frozen=True)
class Resolution:
    """Length of a period of aggregation: ``minutes`` (15 .. 1440) or calendar ``months``.

    Exactly one of the two is non-zero. Minutes are a positive multiple of 15 that divides a day;
    months divide a year (1 month, 3 = quarter, 12 = year).
    """

    minutes: int = 0
    months: int = 0

    def __post_init__(self) -> None:
        if (self.minutes == 0) == (self.months == 0):
            raise InvalidTime("a resolution is either minutes or months")
        if self.minutes and (self.minutes < 0 or self.minutes % 15 or (_DAY // 60) % self.minutes):
            raise InvalidTime(
                f"{self.minutes} minutes is not a resolution: use a multiple of 15 minutes that "
                "divides a day (15min, 30min, 1h, 2h, ..., 1d)"
            )
        if self.months and (self.months < 0 or 12 % self.months):
            raise InvalidTime(f"{self.months} months is not a resolution: use 1, 2, 3, 4, 6 or 12")

    @property
    def slots(self) -> int | None:
        """Quarter hours per period on a day without clock change (None for months)."""
        return self.minutes // 15 if self.minutes else None

    @property
    def clock_aligned(self) -> bool:
        """Whether periods follow the clock instants (length divides an hour) rather than
        spans of wall time (longer periods, days, months); see ``docs/time.md``."""
        return self.minutes > 0 and 60 % self.minutes == 0

    @property
    def name(self) -> str:
        if self.months:
            return {1: "month", 3: "quarter", 12: "year"}.get(self.months, f"{self.months}months")
        if self.minutes == 1440:
            return "day"
        if self.minutes % 60 == 0:
            return f"{self.minutes // 60}h"
        return f"{self.minutes}min"

    @property
    def iso(self) -> str:
        """ISO 8601 duration: ``PT15M``, ``PT1H``, ``P1D``, ``P1M``, ``P1Y``."""
        if self.months:
            return "P1Y" if self.months == 12 else f"P{self.months}M"
        if self.minutes == 1440:
            return "P1D"
        h, m = divmod(self.minutes, 60)
        return "PT" + (f"{h}H" if h else "") + (f"{m}M" if m else "")

    def __str__(self) -> str:
        return self.name


QUARTER_HOUR = Resolution(minutes=15)
HOUR = Resolution(minutes=60)
DAY = Resolution(minutes=1440)
MONTH = Resolution(months=1)

_WORDS = {
    "quarter-hour": QUARTER_HOUR,
    "quarterhour": QUARTER_HOUR,
    "hour": HOUR,
    "hourly": HOUR,
    "day": DAY,
    "daily": DAY,
    "month": MONTH,
    "monthly": MONTH,
    "quarter": Resolution(months=3),
    "quarterly": Resolution(months=3),
    "year": Resolution(months=12),
    "yearly": Resolution(months=12),
}
_AMOUNT = re.compile(r"([0-9]+) ?(min|m|h|d|mo|months?|y)", re.ASCII)
_ISO = re.compile(r"P(?:([0-9]+)Y)?(?:([0-9]+)M)?(?:([0-9]+)D)?(?:T(?:([0-9]+)H)?(?:([0-9]+)M)?)?")


def parse_resolution(text: str) -> Resolution:
    """``15min``, ``30min``, ``1h``, ``60min``, ``2h``, ``day``, ``month``, ``quarter``, ``year``
    or an ISO 8601 duration (``PT15M``, ``PT1H``, ``P1D``, ``P1M``, ``P3M``, ``P1Y``)."""
    key = text.strip().lower()
    if key in _WORDS:
        return _WORDS[key]
    minutes = months = 0
    m = _AMOUNT.fullmatch(key)
    iso = _ISO.fullmatch(text.strip().upper())
    if m:
        n, unit = int(m[1]), m[2]
        if unit in ("min", "m"):
            minutes = n
        elif unit == "h":
            minutes = 60 * n
        elif unit == "d":
            minutes = 1440 * n
        elif unit == "y":
            months = 12 * n
        else:
            months = n
    elif iso and text.strip().upper() not in ("P", "PT") and any(iso.groups()):
        y, mo, d, h, mi = (int(g or 0) for g in iso.groups())
        if (y or mo) and (d or h or mi):
            raise InvalidTime(f"resolution {text!r} mixes months and days or hours")
        months, minutes = 12 * y + mo, 1440 * d + 60 * h + mi
    else:
        raise InvalidTime(
            f"unknown resolution {text!r}: use e.g. 15min, 30min, 1h, day, month or PT15M, P1D"
        )
    if minutes == 0 and months == 0:
        raise InvalidTime(f"resolution {text!r} is empty: use e.g. 15min, 1h, day or month")
    if minutes > 1440 or months > 12:
        raise InvalidTime(
            f"resolution {text!r} is longer than a day / a year: use day, month, quarter or year"
        )
    return Resolution(minutes=minutes, months=months)


def period_boundaries(
    start: int, stop: int, resolution: Resolution, tz: TimeZoneLike = DEFAULT_TIMEZONE
) -> IntArray:
    """Slots where periods begin within ``[start, stop)``, then ``stop``.

    The first element is always ``start`` (a period cut by the range is kept as a partial
    period), the last is ``stop``; ``len - 1`` periods, none empty. Periods whose length divides
    an hour begin at every instant the local clock shows a multiple of it (the repeated autumn
    hour has its own quarter hours, half hours and hour). Longer periods (45 min, 2 h, day,
    month, ...) are spans of local wall time counted from midnight, each beginning the first
    time the local clock reaches its start: the one holding the repeated hour is longer, the one
    holding the spring gap shorter.
    """
    if stop < start:
        raise InvalidTime(f"slot range [{start}, {stop}) ends before it starts")
    if stop == start:
        return np.array([stop], dtype=np.int64)
    zi = _tz(tz)
    if resolution.clock_aligned:
        slots = np.arange(start + 1, stop, dtype=np.int64)
        walls = _local_walls(slots, zi)
        inner = slots[walls % (resolution.minutes * 60) == 0]
    else:
        walls = _local_walls(np.array([start, stop - 1], dtype=np.int64), zi)
        first_day, last_day = (walls // _DAY - np.array([1, -2])).tolist()
        if resolution.months:
            d0, d1 = _date_of_day_number(first_day), _date_of_day_number(last_day)
            step = resolution.months
            m0 = (d0.year * 12 + d0.month - 1) // step * step
            m1 = d1.year * 12 + d1.month - 1
            firsts = [date(k // 12, k % 12 + 1, 1) for k in range(m0, m1 + step + 1, step)]
            starting = np.array([_day_number(d) * _DAY for d in firsts], dtype=np.int64)
        else:
            per_day = 1440 // resolution.minutes
            days = np.arange(first_day, last_day + 1, dtype=np.int64)
            within = np.arange(per_day, dtype=np.int64) * resolution.minutes * 60
            starting = (days[:, None] * _DAY + within[None, :]).ravel()
        bounds = _ceil_slot(_first_instant(starting, zi))
        inner = np.unique(bounds[(bounds > start) & (bounds < stop)])
    return np.concatenate(([start], inner, [stop])).astype(np.int64)


def aggregate(
    values: FloatArray,
    start: int,
    resolution: Resolution,
    tz: TimeZoneLike = DEFAULT_TIMEZONE,
) -> tuple[IntArray, FloatArray]:
    """Sum 15-minute values into periods along the LAST axis.

    ``values`` is ``(T,)`` or ``(M, T)``, ``T`` slots from ``start``. Returns the
    :func:`period_boundaries` and the sums with last axis = number of periods. A NaN makes its
    period's sum NaN.
    """
    v = np.asarray(values, dtype=np.float64)
    boundaries = period_boundaries(start, start + v.shape[-1], resolution, tz)
    if v.shape[-1] == 0:
        return boundaries, np.zeros((*v.shape[:-1], 0), dtype=np.float64)
    sums: FloatArray = np.add.reduceat(v, boundaries[:-1] - start, axis=-1)
    return boundaries, sums


def disaggregate(
    totals: FloatArray,
    boundaries: IntArray,
    weights: FloatArray | None = None,
) -> FloatArray:
    """Spread each period total over its slots (the inverse of :func:`aggregate`).

    ``totals`` has the number of periods (``len(boundaries) - 1``) on its last axis. Without
    weights each slot gets an equal part; with non-negative ``weights`` (one per slot, ``(T,)``
    or ``(M, T)``) parts are proportional to them, and equal where a period's weights sum to 0.
    Aggregating the result again gives the totals back (up to float rounding).
    """
    b = np.asarray(boundaries, dtype=np.int64)
    t = np.asarray(totals, dtype=np.float64)
    lengths = np.diff(b)
    if t.shape[-1] != len(lengths):
        raise InvalidInput(
            f"{t.shape[-1]} totals for {len(lengths)} periods: give one total per period"
        )
    if (lengths <= 0).any():
        raise InvalidInput("period boundaries must be strictly increasing")
    uniform = np.repeat(1.0 / lengths, lengths)
    if weights is None:
        share = uniform
    else:
        w = np.asarray(weights, dtype=np.float64)
        if w.shape[-1] != lengths.sum():
            raise InvalidInput(f"{w.shape[-1]} weights for {lengths.sum()} slots")
        if not np.isfinite(w).all() or (w < 0).any():
            raise InvalidInput("weights must be finite and non-negative")
        sums = np.repeat(np.add.reduceat(w, b[:-1] - b[0], axis=-1), lengths, axis=-1)
        positive = sums > 0
        share = np.where(positive, w / np.where(positive, sums, 1.0), uniform)
    result: FloatArray = np.repeat(t, lengths, axis=-1) * share
    return result


# --------------------------------------------------------------------------------------------
# day types and Austrian public holidays


class DayType(IntEnum):
    """Kind of day for comparable days (Vergleichstage) of substitute values (Q-2)."""

    WORKDAY = 0  # Werktag Montag bis Freitag
    SATURDAY = 1  # Samstag
    SUNDAY_HOLIDAY = 2  # Sonn- und Feiertag


def easter_sunday(year: int) -> date:
    """Easter Sunday (Ostersonntag) of ``year`` by the anonymous Gregorian algorithm."""
    a = year % 19
    b, c = divmod(year, 100)
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    leap = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * leap) // 451
    month, day = divmod(h + leap - 7 * m + 114, 31)
    return date(year, month, day + 1)


@lru_cache(maxsize=512)
def _holidays(year: int) -> tuple[tuple[date, str], ...]:
    easter = easter_sunday(year)
    days = [
        (date(year, 1, 1), "Neujahr"),
        (date(year, 1, 6), "Heilige Drei Könige"),
        (easter + timedelta(days=1), "Ostermontag"),
        (date(year, 5, 1), "Staatsfeiertag"),
        (easter + timedelta(days=39), "Christi Himmelfahrt"),
        (easter + timedelta(days=50), "Pfingstmontag"),
        (easter + timedelta(days=60), "Fronleichnam"),
        (date(year, 8, 15), "Mariä Himmelfahrt"),
        (date(year, 10, 26), "Nationalfeiertag"),
        (date(year, 11, 1), "Allerheiligen"),
        (date(year, 12, 8), "Mariä Empfängnis"),
        (date(year, 12, 25), "Christtag"),
        (date(year, 12, 26), "Stefanitag"),
    ]
    return tuple(sorted(days))


def austrian_holidays(year: int) -> dict[date, str]:
    """The 13 nationwide Austrian public holidays (gesetzliche Feiertage) of ``year``."""
    return dict(_holidays(year))


def day_type(day: date) -> DayType:
    """WORKDAY (Mon-Fri), SATURDAY, or SUNDAY_HOLIDAY (Sunday or Austrian public holiday)."""
    if day.weekday() == 6 or day in austrian_holidays(day.year):
        return DayType.SUNDAY_HOLIDAY
    return DayType.SATURDAY if day.weekday() == 5 else DayType.WORKDAY


def day_types(days: NDArray[Any]) -> NDArray[np.int8]:
    """:func:`day_type` for an array of ``datetime64[D]`` dates, as ``DayType`` codes."""
    numbers = np.asarray(days, dtype="datetime64[D]").astype(np.int64)
    weekday = (numbers + 3) % 7
    out = np.where(weekday == 5, DayType.SATURDAY, DayType.WORKDAY).astype(np.int8)
    out[weekday == 6] = DayType.SUNDAY_HOLIDAY
    if numbers.size:
        years = np.unique(numbers.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64))
        holidays = [_day_number(d) for y in years.tolist() for d, _ in _holidays(y + 1970)]
        out[np.isin(numbers, np.array(holidays, dtype=np.int64))] = DayType.SUNDAY_HOLIDAY
    return out
