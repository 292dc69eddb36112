"""Substitute values (Q-1, Q-2) and merging later measurements."""

from __future__ import annotations

import math
from datetime import date, timedelta

import numpy as np
import pytest

from lastgang.errors import InvalidInput
from lastgang.profiles.slp import standard_load_profile
from lastgang.profiles.substitutes import KnownTotal, distribute_totals, fill_gaps, merge_measured
from lastgang.profiles.types import LoadProfile
from lastgang.quality import Quality
from lastgang.timegrid import day_slots

TZ = "Europe/Vienna"
L1, L2, L3, MISSING = Quality.L1, Quality.L2, Quality.L3, Quality.MISSING
MON = date(2024, 2, 5)  # a Monday in a month without public holidays


def days_profile(
    first: date, imp: list[float], exp: list[float] | None = None, meters: tuple[str, ...] = ()
) -> LoadProfile:
    """Consecutive local days from ``first``, each with one import (export) value in every slot."""
    exp = exp if exp is not None else [0.0] * len(imp)
    start = day_slots(first, TZ)[0]
    i_parts, e_parts = [], []
    for k, (vi, ve) in enumerate(zip(imp, exp, strict=True)):
        a, b = day_slots(first + timedelta(days=k), TZ)
        i_parts.append(np.full(b - a, vi))
        e_parts.append(np.full(b - a, ve))
    i_all, e_all = np.concatenate(i_parts), np.concatenate(e_parts)
    quality = np.full(len(i_all), L1, dtype=np.int8)
    batch = np.ones(len(i_all), dtype=np.int64)
    meter = np.zeros(len(i_all), dtype=np.int32) if meters else np.full(len(i_all), -1, np.int32)
    return LoadProfile(start, i_all, e_all, quality, batch, meter, meters)


def punch(profile: LoadProfile, day: date, first_quarter: int, stop_quarter: int) -> LoadProfile:
    """The profile with the local quarters ``[first_quarter, stop_quarter)`` of ``day`` missing."""
    a = day_slots(day, TZ)[0] - profile.start
    imp, exp, q = profile.import_kwh.copy(), profile.export_kwh.copy(), profile.quality.copy()
    imp[a + first_quarter : a + stop_quarter] = np.nan
    exp[a + first_quarter : a + stop_quarter] = np.nan
    q[a + first_quarter : a + stop_quarter] = MISSING
    return LoadProfile(
        profile.start, imp, exp, q, profile.batch.copy(), profile.meter.copy(), profile.meters
    )


def day_values(profile: LoadProfile, day: date) -> slice:
    a, b = day_slots(day, TZ)
    return slice(a - profile.start, b - profile.start)


# --- Q-2 rule 2: short gaps ------------------------------------------------------------------


def test_q_2_gap_shorter_than_2_hours_is_interpolated_linearly() -> None:
    p = days_profile(MON, [1.0], [0.5])
    imp = p.import_kwh.copy()
    imp[9], imp[13] = 2.0, 6.0
    imp[10:13] = np.nan
    imp[20:27] = np.nan  # 7 slots, 1 h 45 min, between 1.0 and 1.0
    exp = p.export_kwh.copy()
    exp[10:13] = np.nan
    exp[20:27] = np.nan
    q = p.quality.copy()
    q[10:13] = MISSING
    q[20:27] = MISSING
    gappy = LoadProfile(p.start, imp, exp, q)
    filled = fill_gaps(gappy, TZ)
    assert filled.import_kwh[9:14].tolist() == [2.0, 3.0, 4.0, 5.0, 6.0]
    assert filled.import_kwh[20:27].tolist() == [1.0] * 7
    assert filled.export_kwh[10:13].tolist() == [0.5] * 3
    assert filled.quality[10:13].tolist() == [L2] * 3
    assert filled.quality[20:27].tolist() == [L2] * 7
    assert filled.quality[9] == L1 and filled.quality[13] == L1
    # substitutes carry no meter and no batch
    assert filled.batch[10:13].tolist() == [0, 0, 0]
    assert filled.meter[10:13].tolist() == [-1, -1, -1]


# --- Q-2 rule 3: comparable days --------------------------------------------------------------


def test_q_2_gap_of_2_hours_takes_the_mean_of_the_nearest_comparable_days() -> None:
    # Mon..Fri with 1, 2, 10, 4, 5 kWh a slot; Wednesday 10:00-12:00 (8 slots) missing
    wed = MON + timedelta(days=2)
    p = punch(days_profile(MON, [1.0, 2.0, 10.0, 4.0, 5.0], [0, 0.5, 0, 0.25, 0]), wed, 40, 48)
    filled = fill_gaps(p, TZ)
    day = filled.import_kwh[day_values(filled, wed)]
    # Tuesday 2.0 and Thursday 4.0: 3.0 (a line between the neighbours would give 10.0)
    assert day[40:48].tolist() == [3.0] * 8
    assert filled.export_kwh[day_values(filled, wed)][40:48].tolist() == [0.375] * 8
    assert filled.quality[day_values(filled, wed)][40:48].tolist() == [L3] * 8
    assert day[39] == 10.0 and day[48] == 10.0


def test_q_2_gaps_at_the_end_of_data_are_never_extrapolated() -> None:
    # Monday 1.0, Tuesday 2.0, Wednesday rising 3, 4, 5, ...; the last 2 slots of Wednesday missing
    wed = MON + timedelta(days=2)
    p = days_profile(MON, [1.0, 2.0, 0.0])
    imp = p.import_kwh.copy()
    sl = day_values(p, wed)
    imp[sl] = 3.0 + np.arange(96)
    p = punch(LoadProfile(p.start, imp, p.export_kwh, p.quality), wed, 94, 96)
    filled = fill_gaps(p, TZ)
    # only a comparable day before exists (Tuesday): 2.0, not 97 and 98 from the rising line
    assert filled.import_kwh[-2:].tolist() == [2.0, 2.0]
    assert filled.quality[-2:].tolist() == [L3, L3]


def test_q_2_gap_at_the_start_of_data_takes_the_comparable_day_after() -> None:
    tue = MON + timedelta(days=1)
    p = punch(days_profile(tue, [9.0, 4.0]), tue, 0, 3)
    filled = fill_gaps(p, TZ)
    assert filled.import_kwh[:4].tolist() == [4.0, 4.0, 4.0, 9.0]


def test_q_2_comparable_days_from_history_with_the_same_day_type() -> None:
    # last week's Saturday used 0.7 a slot; this week's Friday is measured, Saturday missing
    history = days_profile(date(2024, 2, 3), [0.7, 0.2])  # Sat 3 Feb, Sun 4 Feb
    fri = date(2024, 2, 9)
    p = punch(days_profile(fri, [1.0, 0.0]), fri + timedelta(days=1), 0, 96)
    filled = fill_gaps(p, TZ, history=history)
    assert filled.import_kwh[96:].tolist() == [0.7] * 96  # not Friday's 1.0, not Sunday's 0.2
    assert (filled.quality[96:] == L3).all()


@pytest.mark.parametrize(
    ("first", "gap_day", "slots", "expected"),
    [
        # Sunday 31 March 2024 (92 slots, Easter Sunday): Sunday 24 March and Easter Monday 1 April
        (date(2024, 3, 17), date(2024, 3, 31), 92, (0.24 + 0.01) / 2),
        # Sunday 27 October 2024 (100 slots): Saturday 26 October (national holiday) and Friday
        # 1 November (All Saints) are the nearest days of the Sunday/holiday type
        (date(2024, 10, 20), date(2024, 10, 27), 100, (0.26 + 0.01) / 2),
    ],
)
def test_q_2_clock_change_days_take_comparable_sundays_and_holidays(
    first: date, gap_day: date, slots: int, expected: float
) -> None:
    days = [first + timedelta(days=k) for k in range(22)]
    p = days_profile(first, [d.day / 100 for d in days])
    a, b = day_slots(gap_day, TZ)
    assert b - a == slots
    p = punch(p, gap_day, 0, slots)
    filled = fill_gaps(p, TZ)
    values = filled.import_kwh[a - p.start : b - p.start]
    assert values == pytest.approx([expected] * slots, rel=1e-12)
    assert (filled.quality[a - p.start : b - p.start] == L3).all()


# --- Q-2 rule 1: known totals ----------------------------------------------------------------


def test_q_2_known_total_scales_the_comparable_shape_and_is_l2() -> None:
    # Tuesday 0.01 x (q+1), Thursday 0.03 x (q+1) in quarter q: comparable shape 0.02 x (q+1)
    tue, wed, thu = (MON + timedelta(days=k) for k in (1, 2, 3))
    p = days_profile(tue, [0.0, 5.0, 0.0], meters=("EMH:1",))
    imp = p.import_kwh.copy()
    imp[day_values(p, tue)] = 0.01 * (np.arange(96) + 1)
    imp[day_values(p, thu)] = 0.03 * (np.arange(96) + 1)
    p = punch(
        LoadProfile(p.start, imp, p.export_kwh, p.quality, p.batch, p.meter, p.meters), wed, 40, 48
    )
    first = day_slots(wed, TZ)[0] + 40
    total = KnownTotal(first, first + 8, import_kwh=17.8, export_kwh=0.0, batch=77, meter=0)
    filled = fill_gaps(p, TZ, known_totals=[total])
    got = filled.import_kwh[day_values(filled, wed)][40:48]
    # 17.8 / (0.02 x (41 + ... + 48) = 7.12) = 2.5 times the shape: 0.05 x (q+1)
    assert got == pytest.approx([0.05 * k for k in range(41, 49)], rel=1e-12)
    assert math.fsum(got) == pytest.approx(17.8, rel=1e-12)
    sl = day_values(filled, wed)
    assert filled.export_kwh[sl][40:48].tolist() == [0.0] * 8
    assert filled.quality[sl][40:48].tolist() == [L2] * 8
    assert filled.batch[sl][40:48].tolist() == [77] * 8
    assert filled.meter[sl][40:48].tolist() == [0] * 8


def test_q_2_known_total_without_comparable_days_follows_the_slp() -> None:
    p = punch(days_profile(MON, [0.0]), MON, 0, 96)
    total = KnownTotal(p.start, p.stop, import_kwh=9.6, export_kwh=0.0)
    flat = distribute_totals(p, [total], TZ, slp="FLAT")
    assert flat.import_kwh.tolist() == pytest.approx([0.1] * 96, rel=1e-12)
    assert (flat.quality == L2).all()
    h0 = distribute_totals(p, [total], TZ, slp="H0")
    slp = standard_load_profile("H0", p.start, p.stop, TZ)
    assert h0.import_kwh == pytest.approx(slp * (9.6 / slp.sum()), rel=1e-12)


def test_known_totals_outside_the_profile_or_negative_are_refused() -> None:
    p = days_profile(MON, [1.0])
    with pytest.raises(InvalidInput) as info:
        distribute_totals(
            p,
            [
                KnownTotal(p.start - 1, p.start + 1, import_kwh=1.0),
                KnownTotal(p.start, p.start + 2, import_kwh=-1.0),
            ],
            TZ,
        )
    assert len(info.value.problems) == 2


# --- Q-2 rule 4: standard load profile --------------------------------------------------------


def test_q_2_without_comparable_days_the_slp_at_the_metering_points_level() -> None:
    # one Monday, the afternoon missing; flat profile: the level is 0.5 kWh a slot
    p = punch(days_profile(MON, [0.5], [0.125]), MON, 48, 96)
    filled = fill_gaps(p, TZ, slp="FLAT")
    assert filled.import_kwh[48:] == pytest.approx([0.5] * 48, rel=1e-12)
    assert filled.export_kwh[48:] == pytest.approx([0.125] * 48, rel=1e-12)
    assert (filled.quality[48:] == L3).all()
    # H0: the SLP scaled by measured energy / SLP energy of the measured morning
    filled = fill_gaps(p, TZ, slp="H0")
    slp = standard_load_profile("H0", p.start, p.stop, TZ)
    scale = 24.0 / slp[:48].sum()
    assert filled.import_kwh[48:] == pytest.approx(slp[48:] * scale, rel=1e-12)


def test_q_2_no_data_at_all_uses_annual_kwh_or_stays_missing() -> None:
    p = punch(days_profile(MON, [0.0]), MON, 0, 96)
    assert (fill_gaps(p, TZ, slp="FLAT").quality == MISSING).all()
    # 2024 has 366 x 96 = 35,136 local quarter hours: 35,136 kWh a year flat is 1 kWh a slot
    filled = fill_gaps(p, TZ, slp="FLAT", annual_kwh=35_136.0)
    assert filled.import_kwh == pytest.approx([1.0] * 96, rel=1e-12)
    assert filled.export_kwh.tolist() == [0.0] * 96
    assert (filled.quality == L3).all()


def test_fill_gaps_never_changes_existing_values() -> None:
    wed = MON + timedelta(days=2)
    p = punch(days_profile(MON, [1.0, 2.0, 3.0, 4.0, 5.0]), wed, 10, 60)
    filled = fill_gaps(p, TZ)
    known = p.quality != MISSING
    assert np.array_equal(filled.import_kwh[known], p.import_kwh[known])
    assert np.array_equal(filled.quality[known], p.quality[known])
    assert not np.isnan(filled.import_kwh).any()


# --- later measurements replace substitutes ----------------------------------------------------


def test_q_2_measured_values_replace_substitutes_and_the_newer_wins_a_tie() -> None:
    def prof(start: int, imp: list[float], q: list[int], meters: tuple[str, ...]) -> LoadProfile:
        n = len(imp)
        return LoadProfile(
            start,
            np.array(imp),
            np.zeros(n),
            np.array(q, dtype=np.int8),
            np.arange(n, dtype=np.int64) + 10 * len(meters[0]),
            np.zeros(n, dtype=np.int32),
            meters,
        )

    old = prof(100, [1.0, 2.0, 3.0, 4.0], [L2, L1, L3, L1], ("EMH:1",))
    new = prof(101, [20.0, 30.0, math.nan, 50.0], [L3, L1, MISSING, L1], ("LGZ:22",))
    merged = merge_measured(old, new)
    assert merged.start == 100 and merged.stop == 105
    # slot 100 only old; 101 old L1 beats new L3; 102 new L1 beats old L3; 103 new missing keeps
    # old; 104 only new
    assert merged.import_kwh.tolist() == [1.0, 2.0, 30.0, 4.0, 50.0]
    assert merged.quality.tolist() == [L2, L1, L1, L1, L1]
    assert merged.meters == ("EMH:1", "LGZ:22")
    assert merged.meter.tolist() == [0, 0, 1, 0, 1]
    same = merge_measured(old, prof(100, [9.0, 9.0, 9.0, 9.0], [L2, L1, L3, L2], ("LGZ:22",)))
    assert same.import_kwh.tolist() == [9.0, 9.0, 9.0, 4.0]
