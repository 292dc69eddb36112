"""Standard load profiles (Standardlastprofile, SLP) for substitute values (Q-2).

Q-2 falls back to "the assigned standard load profile" when a metering point has no comparable
days. The profiles used by Austrian and German market participants are the VDEW/BDEW profiles of
1999 (H0 household, G0-G6 commercial, L0-L2 agriculture): for each profile 96 quarter-hour powers
in W for a customer with 1,000 kWh a year, per season (winter 1 Nov - 20 Mar, summer 15 May -
14 Sep, transition in between) and day type (workday, Saturday, Sunday/holiday), and for H0 a
dynamization factor per day of the year (Dynamisierungsfunktion)

    F(t) = -3.92e-10 t^4 + 3.2e-7 t^3 - 7.02e-5 t^2 + 2.1e-3 t + 1.24,   t = day of the year.

**What the values here are.** The shape tables of this module are NOT the published BDEW values.
They are a smooth approximation built from a few named features (night base load, morning,
midday and evening peaks, later mornings and a midday cooking peak at weekends, a lower and later
evening peak in summer) with the same seasons, day types and, for H0, the same dynamization
polynomial. They are good enough to give a missing stretch a plausible daily shape; a value built
on them is always flagged as a substitute (L2 when its total is measured, else L3). Where the exact
published tables are required, replace :data:`DAY_TABLES` with them (same layout).

Every profile is normalized per local calendar year: the slots of one whole year sum to exactly
``annual_kwh`` (1,000 kWh by default), days with 92 and 100 quarter hours included.

- ``H0``: household, dynamized.
- ``G0``: commercial in general (business hours on workdays, short Saturday), not dynamized.
- ``FLAT``: the same value in every slot.
- ``PV``: photovoltaic production (export), the default of production locations: the clear-sky
  irradiance on a horizontal plane at 47.5 degrees north (the middle of Austria) with the sun
  due south at 12:00 local standard time (winter time all year, so 13:00 in summer time). Per
  slot, at its middle: the sun's elevation ``h`` from the declination of the day
  (``23.44 sin(360 (284 + N) / 365)`` degrees, ``N`` = day of the year) and the hour angle (15
  degrees per hour from noon), and the irradiance ``sin h x 0.7 ^ ((1 / sin h) ^ 0.678)`` (the
  air mass model of Meinel and Meinel); 0 while the sun is below the horizon. No weather, tilt
  or shading: a plausible daily and seasonal shape for a stretch without comparable days, never
  a forecast. Day types play no part.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from enum import IntEnum
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray

from lastgang.errors import InvalidInput
from lastgang.timegrid import (
    SLOT_SECONDS,
    DayType,
    day_types,
    local_date_of_slots,
    local_start_minutes,
    period_slots,
    utc_offsets,
    zone,
)

FloatArray = NDArray[np.float64]

__all__ = [
    "DAY_TABLES",
    "PROFILES",
    "Season",
    "dynamization_factor",
    "season_of",
    "standard_load_profile",
]


class Season(IntEnum):
    """The three BDEW periods of the year."""

    WINTER = 0  # 1 Nov - 20 Mar
    SUMMER = 1  # 15 May - 14 Sep
    TRANSITION = 2  # 21 Mar - 14 May, 15 Sep - 31 Oct


_HOURS: FloatArray = (
    np.arange(96, dtype=np.float64) + 0.5
) / 4.0  # slot centres in hours after local midnight

# (centre h, width h, height W) of the bumps on top of a base load, per (season, day type)
_Bump = tuple[float, float, float]


def _shape(base: float, bumps: tuple[_Bump, ...]) -> FloatArray:
    out = np.full(96, base)
    for centre, width, height in bumps:
        d = np.abs(_HOURS - centre)
        d = np.minimum(d, 24.0 - d)  # around midnight the day continues into the next
        out += height * np.exp(-0.5 * (d / width) ** 2)
    return out


def _h0() -> FloatArray:
    winter = {
        DayType.WORKDAY: _shape(
            60.0, ((7.25, 0.9, 70.0), (12.5, 1.5, 80.0), (18.75, 1.8, 160.0), (22.0, 1.2, 40.0))
        ),
        DayType.SATURDAY: _shape(
            60.0, ((9.0, 1.3, 80.0), (12.25, 1.6, 110.0), (18.75, 1.9, 150.0), (22.0, 1.2, 45.0))
        ),
        DayType.SUNDAY_HOLIDAY: _shape(
            58.0, ((9.5, 1.4, 90.0), (12.0, 1.3, 140.0), (18.5, 2.0, 130.0), (22.0, 1.2, 35.0))
        ),
    }
    summer = {
        DayType.WORKDAY: _shape(
            62.0, ((7.0, 1.0, 55.0), (12.5, 1.6, 85.0), (20.25, 1.8, 100.0), (22.5, 1.0, 35.0))
        ),
        DayType.SATURDAY: _shape(
            62.0, ((9.25, 1.3, 75.0), (12.25, 1.7, 110.0), (20.25, 1.9, 100.0), (22.5, 1.0, 40.0))
        ),
        DayType.SUNDAY_HOLIDAY: _shape(
            60.0, ((9.75, 1.4, 85.0), (12.0, 1.4, 135.0), (20.0, 2.0, 90.0), (22.5, 1.0, 35.0))
        ),
    }
    table = np.empty((3, 3, 96))
    for kind in DayType:
        table[Season.WINTER, kind] = winter[kind]
        table[Season.SUMMER, kind] = summer[kind]
        table[Season.TRANSITION, kind] = 0.5 * (winter[kind] + summer[kind])
    return table


def _logistic(x: FloatArray) -> FloatArray:
    result: FloatArray = 1.0 / (1.0 + np.exp(-x))
    return result


def _g0() -> FloatArray:
    def business(base: float, height: float, opens: float, closes: float) -> FloatArray:
        plateau = _logistic((_HOURS - opens) / 0.5) * _logistic((closes - _HOURS) / 0.6)
        dip = 1.0 - 0.08 * np.exp(-0.5 * ((_HOURS - 12.5) / 0.7) ** 2)  # lunch break
        result: FloatArray = base + height * plateau * dip
        return result

    table = np.empty((3, 3, 96))
    for season, light in ((Season.WINTER, 1.1), (Season.SUMMER, 0.92), (Season.TRANSITION, 1.0)):
        table[season, DayType.WORKDAY] = business(60.0, 150.0 * light, 7.75, 17.5)
        table[season, DayType.SATURDAY] = business(60.0, 70.0 * light, 8.25, 13.0)
        table[season, DayType.SUNDAY_HOLIDAY] = np.full(96, 62.0)
    return table


#: Day tables per profile: shape (season, day type, 96 quarter hours from local midnight), in W
#: for about 1,000 kWh a year before the exact yearly normalization. An approximation, see above.
DAY_TABLES: dict[str, FloatArray] = {
    "H0": _h0(),
    "G0": _g0(),
    "FLAT": np.ones((3, 3, 96)),
}

#: Profiles that use the H0 dynamization factor.
_DYNAMIZED = frozenset({"H0"})

#: the latitude of the ``PV`` profile (degrees north): the middle of Austria
PV_LATITUDE = 47.5

#: every profile name :func:`standard_load_profile` knows: the day tables and ``PV``
PROFILES = (*DAY_TABLES, "PV")


def _standard_offset(slots: NDArray[np.int64], tz: str) -> int:
    """The zone's standard (winter) UTC offset in seconds in the year of ``slots``: the smaller
    of its offsets in mid-January and mid-July (summer time adds to it)."""
    year = 1970 + int(
        local_date_of_slots(slots[:1], tz).astype("datetime64[Y]").astype(np.int64)[0]
    )
    probes = [int(datetime(year, month, 15, tzinfo=UTC).timestamp()) for month in (1, 7)]
    return int(utc_offsets(np.array(probes, dtype=np.int64), tz).min())


def _pv(slots: NDArray[np.int64], tz: str) -> FloatArray:
    """Unnormalized clear-sky irradiance on a horizontal plane at the middle of each slot (see
    the module's description of ``PV``)."""
    middle = slots * SLOT_SECONDS + SLOT_SECONDS // 2 + _standard_offset(slots, tz)
    days = (middle // 86400).astype("datetime64[D]")
    day_of_year = (days - days.astype("datetime64[Y]")).astype(np.int64) + 1
    hours = (middle % 86400) / 3600.0
    declination = np.radians(23.44) * np.sin(2.0 * np.pi * (284 + day_of_year) / 365.0)
    hour_angle = np.radians(15.0 * (hours - 12.0))
    latitude = np.radians(PV_LATITUDE)
    sin_h = np.sin(latitude) * np.sin(declination) + np.cos(latitude) * np.cos(
        declination
    ) * np.cos(hour_angle)
    up = sin_h > 0.0
    out = np.zeros(len(slots))
    air_mass = 1.0 / sin_h[up]
    out[up] = sin_h[up] * 0.7 ** (air_mass**0.678)
    return out


def dynamization_factor(day_of_year: NDArray[np.int64] | int) -> FloatArray:
    """The H0 dynamization factor ``F(t)`` for day of the year ``t`` (1 = 1 January)."""
    t = np.asarray(day_of_year, dtype=np.float64)
    result: FloatArray = -3.92e-10 * t**4 + 3.2e-7 * t**3 - 7.02e-5 * t**2 + 2.1e-3 * t + 1.24
    return result


def _month_day(days: NDArray[np.datetime64]) -> NDArray[np.int64]:
    """``month * 100 + day`` of each date (``1224`` for 24 December)."""
    d = np.asarray(days, dtype="datetime64[D]")
    month = d.astype("datetime64[M]").astype(np.int64) % 12 + 1
    day = (d - d.astype("datetime64[M]")).astype(np.int64) + 1
    result: NDArray[np.int64] = month * 100 + day
    return result


def season_of(days: NDArray[np.datetime64]) -> NDArray[np.int8]:
    """The :class:`Season` of each date (``datetime64[D]``)."""
    md = _month_day(days)
    out = np.full(md.shape, Season.TRANSITION, dtype=np.int8)
    out[(md >= 1101) | (md <= 320)] = Season.WINTER
    out[(md >= 515) & (md <= 914)] = Season.SUMMER
    return out


def _raw(name: str, slots: NDArray[np.int64], tz: str) -> FloatArray:
    """Unnormalized values (W) of profile ``name`` at ``slots``."""
    if name == "PV":
        return _pv(slots, tz)
    table = DAY_TABLES[name]
    days = local_date_of_slots(slots, tz)
    kinds = day_types(days).astype(np.int64)
    # BDEW: 24 and 31 December count as Saturday unless they are Sundays or holidays
    md = _month_day(days)
    kinds[((md == 1224) | (md == 1231)) & (kinds == DayType.WORKDAY)] = DayType.SATURDAY
    quarter = local_start_minutes(slots, tz) // 15
    values: FloatArray = table[season_of(days).astype(np.int64), kinds, quarter]
    if name in _DYNAMIZED:
        day_of_year = (days - days.astype("datetime64[Y]")).astype(np.int64) + 1
        values = values * dynamization_factor(day_of_year)
    return values


@lru_cache(maxsize=256)
def _year_scale(name: str, year: int, tz: str) -> float:
    """kWh per W-unit so that the slots of local ``year`` sum to 1 kWh."""
    start, stop = period_slots(date(year, 1, 1), date(year, 12, 31), tz)
    total = float(_raw(name, np.arange(start, stop, dtype=np.int64), tz).sum())
    return 1.0 / total


def standard_load_profile(
    name: str, start: int, stop: int, tz: str, annual_kwh: float = 1000.0
) -> FloatArray:
    """kWh per slot ``[start, stop)`` of standard load profile ``name`` (``H0``, ``G0``,
    ``FLAT``, ``PV``) for a customer using (or a PV system producing) ``annual_kwh`` a year in
    legal time ``tz``.

    Each slot takes the value of its local quarter hour (the repeated autumn hour repeats it, the
    skipped spring hour has none), season and day type (Austrian public holidays count as Sunday;
    24 and 31 December as Saturday), times the dynamization factor for H0; the values of a whole
    local calendar year sum to exactly ``annual_kwh``.
    """
    key = name.strip().upper()
    if key not in PROFILES:
        raise InvalidInput(
            f"unknown standard load profile {name!r}: lastgang knows {', '.join(PROFILES)}"
        )
    zone(tz)  # an unknown zone is a clear error
    if stop < start:
        raise ValueError(f"stop {stop} is before start {start}")
    slots = np.arange(start, stop, dtype=np.int64)
    if len(slots) == 0:
        return np.zeros(0)
    values = _raw(key, slots, tz)
    years = local_date_of_slots(slots, tz).astype("datetime64[Y]").astype(np.int64) + 1970
    scale = np.ones(len(slots))
    for year in np.unique(years).tolist():
        scale[years == year] = _year_scale(key, int(year), tz)
    result: FloatArray = values * scale * annual_kwh
    return result
