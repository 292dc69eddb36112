"""The PV standard load profile (Q-2 rule 4 for production locations): the clear-sky shape
against a slot-by-slot computation with datetime and math, facts of the sun at 47.5 degrees
north, the default of production locations, and substitute values that stay dark at night."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from pydantic import ValidationError

from lastgang.concept.model import Location
from lastgang.profiles.slp import PROFILES, standard_load_profile
from lastgang.profiles.substitutes import fill_gaps
from lastgang.profiles.types import LoadProfile
from lastgang.quality import Quality
from lastgang.timegrid import day_slots, period_slots

TZ = "Europe/Vienna"
VIENNA = ZoneInfo(TZ)


def naive_irradiance(slot: int) -> float:
    """One slot the long way: the middle of the quarter hour in winter time (local time minus
    the summer-time hour), the sun's elevation at 47.5 degrees north, Meinel's air mass model."""
    middle = datetime.fromtimestamp(slot * 900 + 450, UTC).astimezone(VIENNA)
    dst = middle.dst() or timedelta(0)
    standard = middle.replace(tzinfo=None) - dst
    n = standard.timetuple().tm_yday
    hours = standard.hour + standard.minute / 60 + standard.second / 3600
    declination = math.radians(23.44 * math.sin(math.radians(360 * (284 + n) / 365)))
    latitude = math.radians(47.5)
    hour_angle = math.radians(15 * (hours - 12))
    sin_h = math.sin(latitude) * math.sin(declination) + math.cos(latitude) * math.cos(
        declination
    ) * math.cos(hour_angle)
    if sin_h <= 0:
        return 0.0
    return sin_h * 0.7 ** ((1 / sin_h) ** 0.678)


def test_q_2_pv_profile_equals_a_slot_by_slot_computation_over_a_year() -> None:
    start, stop = period_slots(date(2025, 1, 1), date(2025, 12, 31), TZ)
    values = standard_load_profile("PV", start, stop, TZ, annual_kwh=5000.0)
    naive = np.array([naive_irradiance(s) for s in range(start, stop)])
    assert values.sum() == pytest.approx(5000.0, rel=1e-12)
    assert values == pytest.approx(naive * (5000.0 / naive.sum()), rel=1e-9, abs=1e-15)


def test_q_2_pv_profile_follows_the_sun_at_47_5_degrees_north() -> None:
    start, stop = period_slots(date(2025, 1, 1), date(2025, 12, 31), TZ)
    year = standard_load_profile("PV", start, stop, TZ)

    def day(d: date) -> np.ndarray:
        a, b = day_slots(d, TZ)
        return year[a - start : b - start]

    june, december = day(date(2025, 6, 21)), day(date(2025, 12, 21))
    # day length: cos w0 = -tan(47.5) tan(23.44) gives 15.8 h in June, 8.2 h in December; the
    # slots whose middle has the sun up
    assert np.count_nonzero(june) in (63, 64)
    assert np.count_nonzero(december) in (32, 33)
    # nothing at midnight, the most at noon winter time: 13:00 summer time, 12:00 winter time
    assert june[:8].sum() == 0.0 and december[:28].sum() == 0.0
    assert int(np.argmax(june)) in (51, 52)  # the quarter hours 12:45-13:00 and 13:00-13:15
    assert int(np.argmax(december)) in (47, 48)
    assert june.sum() > 5 * december.sum()
    # the clock change days have 92 and 100 quarter hours and still one midday each
    assert len(day(date(2025, 3, 30))) == 92 and len(day(date(2025, 10, 26))) == 100
    assert year.sum() == pytest.approx(1000.0, rel=1e-12)


def test_q_2_production_locations_default_to_pv_others_to_h0() -> None:
    pv = Location.model_validate({"id": "pv", "role": "production"})
    top = Location.model_validate({"id": "top1", "role": "consumer"})
    shop = Location.model_validate(
        {"id": "shop", "role": "consumer", "standard_load_profile": "G0"}
    )
    assert (pv.slp, top.slp, shop.slp) == ("PV", "H0", "G0")
    assert "PV" in PROFILES
    with pytest.raises(ValidationError) as caught:
        Location.model_validate({"id": "x", "role": "consumer", "standard_load_profile": "H9"})
    assert "unknown standard load profile 'H9': lastgang has H0, G0, FLAT, PV" in str(caught.value)


def test_q_2_pv_substitutes_stay_dark_at_night_and_take_the_measured_level() -> None:
    # a PV system measured on Monday 5 May 2025 until 10:00 (its morning production), the rest of
    # the day missing and no comparable day: the PV shape scaled to the measured morning
    monday = date(2025, 5, 5)
    a, b = day_slots(monday, TZ)
    shape = standard_load_profile("PV", a, b, TZ)
    measured = 40  # quarter hours up to 10:00
    export = np.where(np.arange(b - a) < measured, shape * 3.0, np.nan)
    quality = np.where(np.isnan(export), Quality.MISSING, Quality.L1).astype(np.int8)
    profile = LoadProfile(a, np.where(np.isnan(export), np.nan, 0.0), export, quality)
    filled = fill_gaps(profile, TZ, slp="PV")
    assert filled.export_kwh[measured:] == pytest.approx(shape[measured:] * 3.0, rel=1e-12)
    assert filled.import_kwh[measured:].tolist() == [0.0] * (b - a - measured)
    assert (filled.quality[measured:] == Quality.L3).all()
    assert filled.export_kwh[-8:].tolist() == [0.0] * 8  # 22:00-24:00: dark
    # with H0 the same gap would produce at night: the reason production has PV
    night = fill_gaps(profile, TZ, slp="H0").export_kwh[-8:]
    assert (night > 0).all()


def test_q_2_pv_yearly_energy_without_measurements_is_export() -> None:
    monday = date(2025, 5, 5)
    a, b = day_slots(monday, TZ)
    empty = LoadProfile.empty(a, b)
    filled = fill_gaps(empty, TZ, slp="PV", annual_kwh=1000.0)
    assert filled.export_kwh == pytest.approx(standard_load_profile("PV", a, b, TZ), rel=1e-12)
    assert filled.import_kwh.tolist() == [0.0] * (b - a)
