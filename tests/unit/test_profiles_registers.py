"""Registers -> 15-minute energies: overflow, running backwards, transformer constants, quality."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime

import numpy as np
import pytest

from lastgang.concept.model import Meter, Transformer
from lastgang.errors import MeterDataError
from lastgang.profiles.registers import (
    closing_reading,
    cumulative_to_slots,
    interval_quality,
    long_intervals,
    unwrap_register,
)
from lastgang.quality import Quality
from lastgang.timegrid import day_slots

TZ = "Europe/Vienna"
METER = "EMH:1234"
OBIS = "1-0:1.8.0"


def at(hour: int, minute: int = 0, day: int = 15) -> int:
    """Epoch seconds of 2024-01-<day> hour:minute UTC."""
    return int(datetime(2024, 1, day, hour, minute, tzinfo=UTC).timestamp())


def slot(hour: int, minute: int = 0, day: int = 15) -> int:
    return at(hour, minute, day) // 900


def unwrap(
    time: list[int],
    value: list[float],
    *,
    digits: int | None = None,
    max_power_kw: float | None = None,
    constant: float = 1.0,
) -> np.ndarray:
    return unwrap_register(
        np.array(time),
        np.array(value, dtype=float),
        digits=digits,
        max_power_kw=max_power_kw,
        constant=constant,
        meter=METER,
        obis=OBIS,
    )


# --- transformer constant (TOR-4.4) ----------------------------------------------------------


def test_tor_4_4_transformer_constant_200_5_times_20000_100_is_8000() -> None:
    meter = Meter(
        manufacturer="EMH",
        serial="1",
        ct=Transformer(ratio="200/5"),
        vt=Transformer(ratio="20000/100"),
        installed=date(2024, 1, 1),
    )
    assert meter.transformer_constant == 8000
    # secondary 100.000 -> 100.125 kWh in one quarter hour: 0.125 x 8000 = 1000 kWh primary
    t = [at(0), at(0, 15)]
    cumulative = unwrap(t, [100.0, 100.125], constant=float(meter.transformer_constant))
    assert cumulative.tolist() == [800_000.0, 801_000.0]
    energy, covered = cumulative_to_slots(t, cumulative, slot(0), slot(0, 15))
    assert energy.tolist() == [1000.0]
    assert covered.tolist() == [900]


def test_tor_7_2_values_unrounded() -> None:
    values = [0.1, 0.30000000000000004, 1234.56789012345]
    cumulative = unwrap([at(0), at(0, 15), at(0, 30)], values, constant=40.0)
    assert cumulative.tolist() == [v * 40.0 for v in values]


# --- readings on and off slot boundaries -------------------------------------------------------


def test_readings_on_boundaries_give_the_register_differences() -> None:
    t = [at(0), at(0, 15), at(0, 30), at(0, 45)]
    cumulative = unwrap(t, [10.0, 10.5, 11.25, 12.0])
    energy, covered = cumulative_to_slots(t, cumulative, slot(0), slot(1))
    assert energy.tolist() == [0.5, 0.75, 0.75, 0.0]
    assert covered.tolist() == [900, 900, 900, 0]


def test_readings_off_boundaries_are_interpolated_linearly_at_the_boundaries() -> None:
    # 00:05 10 kWh, 00:20 13 kWh, 00:35 16 kWh: 0.2 kWh per minute throughout
    t = [at(0, 5), at(0, 20), at(0, 35)]
    cumulative = unwrap(t, [10.0, 13.0, 16.0])
    energy, covered = cumulative_to_slots(t, cumulative, slot(0), slot(1))
    # 00:00-00:15 covered 00:05-00:15: 10 min x 0.2 = 2.0; 00:15-00:30: 3.0; 00:30-00:45
    # covered 00:30-00:35: 1.0; 00:45-01:00 not covered
    assert energy == pytest.approx([2.0, 3.0, 1.0, 0.0], rel=1e-12)
    assert covered.tolist() == [600, 900, 300, 0]


def test_uneven_readings_split_by_time_share() -> None:
    # 00:00 0 kWh, 00:40 4 kWh (0.1 kWh/min), 01:00 10 kWh (0.3 kWh/min)
    t = [at(0), at(0, 40), at(1)]
    energy, _ = cumulative_to_slots(t, unwrap(t, [0.0, 4.0, 10.0]), slot(0), slot(1))
    # 1.5, 1.5, 10 min x 0.1 + 5 min x 0.3 = 2.5, 15 min x 0.3 = 4.5
    assert energy == pytest.approx([1.5, 1.5, 2.5, 4.5], rel=1e-12)
    assert math.fsum(energy) == pytest.approx(10.0, rel=1e-12)


# --- overflow and running backwards (TOR-5.0a) -----------------------------------------------


def test_tor_5_0a_one_overflow_of_a_6_digit_register_is_absorbed() -> None:
    t = [at(0), at(0, 15), at(0, 30)]
    cumulative = unwrap(t, [999_999.5, 1.5, 3.0], digits=6)
    # 999,999.5 -> 1,000,000 (0.5) -> 1.5 more: 2.0 kWh, then 1.5 kWh
    assert cumulative.tolist() == [999_999.5, 1_000_001.5, 1_000_003.0]
    energy, _ = cumulative_to_slots(t, cumulative, slot(0), slot(0, 30))
    assert energy.tolist() == [2.0, 1.5]


def test_tor_5_0a_overflow_with_transformer_constant() -> None:
    t = [at(0), at(0, 15)]
    cumulative = unwrap(t, [999_999.75, 0.25], digits=6, constant=8000.0)
    energy, _ = cumulative_to_slots(t, cumulative, slot(0), slot(0, 15))
    assert energy.tolist() == [0.5 * 8000.0]


def test_tor_5_0a_register_running_backwards_is_reported_with_meter_and_time() -> None:
    t = [at(0), at(0, 15), at(0, 30)]
    with pytest.raises(MeterDataError) as info:
        unwrap(t, [500.0, 499.0, 501.0], digits=6)
    (problem,) = info.value.problems
    assert problem.meter == METER
    assert problem.time == "2024-01-15T00:15:00Z"
    assert "runs backwards" in problem.reason
    assert OBIS in problem.reason
    assert "500 kWh at 2024-01-15T00:00:00Z -> 499 kWh at 2024-01-15T00:15:00Z" in problem.reason


def test_tor_5_0a_any_decrease_without_digits_runs_backwards() -> None:
    with pytest.raises(MeterDataError) as info:
        unwrap([at(0), at(0, 15)], [999_999.5, 1.5])
    assert "runs backwards" in info.value.problems[0].reason


def test_tor_5_0a_wrapped_advance_over_half_the_range_is_backwards_not_an_overflow() -> None:
    # 600,000 -> 50,000 would be an advance of 450,000 (< half of 10^6): overflow
    ok = unwrap([at(0), at(1)], [600_000.0, 50_000.0], digits=6)
    assert ok[-1] - ok[0] == 450_000.0
    # 400,000 -> 350,000 would be an advance of 950,000 (> half): running backwards
    with pytest.raises(MeterDataError, match="runs backwards"):
        unwrap([at(0), at(1)], [400_000.0, 350_000.0], digits=6)


def test_tor_5_0a_second_overflow_detected_with_max_power() -> None:
    # 4 digits (10,000 kWh), 50 kW max: in 240 h up to 12,000 kWh can flow, so 9,990 -> 10 may
    # be 20 kWh (one overflow) or 10,020 kWh (two): ambiguous, reported.
    t = [at(0, day=1), at(0, day=11)]
    with pytest.raises(MeterDataError) as info:
        unwrap(t, [9_990.0, 10.0], digits=4, max_power_kw=50.0)
    (problem,) = info.value.problems
    assert "overflowed twice" in problem.reason
    assert problem.meter == METER
    assert problem.time == "2024-01-11T00:00:00Z"
    assert "12000 kWh" in problem.reason
    # over one day at most 1,200 kWh can flow: a second overflow is excluded, 20 kWh it is
    t = [at(0, day=1), at(0, day=2)]
    cumulative = unwrap(t, [9_990.0, 10.0], digits=4, max_power_kw=50.0)
    assert cumulative[-1] - cumulative[0] == 20.0


def test_tor_5_0a_advance_beyond_max_power_is_reported() -> None:
    # 100 kWh in 15 min is 400 kW average, more than 100 kW max (25 kWh)
    with pytest.raises(MeterDataError) as info:
        unwrap([at(0), at(0, 15)], [100.0, 200.0], max_power_kw=100.0)
    assert "more than max power" in info.value.problems[0].reason


def test_tor_5_0a_every_violation_is_collected() -> None:
    t = [at(0), at(0, 15), at(0, 30), at(0, 45)]
    with pytest.raises(MeterDataError) as info:
        unwrap(t, [10.0, 9.0, 12.0, 11.0], digits=6)
    times = [p.time for p in info.value.problems]
    assert times == ["2024-01-15T00:15:00Z", "2024-01-15T00:45:00Z"]


def test_reading_larger_than_the_register_and_unsorted_times_are_reported() -> None:
    with pytest.raises(MeterDataError) as info:
        unwrap([at(0), at(0), at(0, 30)], [1.0, 2.0, 1_000_000.0], digits=6)
    reasons = " | ".join(p.reason for p in info.value.problems)
    assert "does not fit a register of 6 digits" in reasons
    assert "does not come after" in reasons


# --- quality of the covered part and long reading periods -------------------------------------


def test_reading_period_quality_l1_up_to_15_minutes_l2_longer() -> None:
    t = [at(0), at(0, 15), at(1), at(3)]
    q = interval_quality(t, slot(0), slot(3, 30))
    assert q.tolist() == [Quality.L1] + [Quality.L2] * 3 + [Quality.L2] * 8 + [Quality.MISSING] * 2


def test_off_boundary_readings_15_minutes_apart_are_measured() -> None:
    t = [at(0, 5), at(0, 20), at(0, 35)]
    q = interval_quality(t, slot(0), slot(1))
    assert q.tolist() == [Quality.L1, Quality.L1, Quality.L1, Quality.MISSING]


def test_long_intervals_are_the_whole_slots_inside_a_reading_period_of_2_hours_or_more() -> None:
    t = [at(0), at(0, 15), at(2, 15), at(3), at(5, 20)]
    first, stop, closing = long_intervals(t, slot(0), slot(6))
    # 00:15-02:15 (2 h) and 03:00-05:20 (whole slots 03:00-05:15); 02:15-03:00 is shorter
    assert first.tolist() == [slot(0, 15), slot(3)]
    assert stop.tolist() == [slot(2, 15), slot(5, 15)]
    assert closing.tolist() == [2, 4]


def test_closing_reading_is_the_reading_at_or_after_the_slot_end() -> None:
    t = [at(0), at(0, 20), at(0, 30)]
    assert closing_reading(t, slot(0), slot(1)).tolist() == [1, 2, 2, 2]


# --- days with 92 and 100 quarter hours (TOR-4.2) ---------------------------------------------


@pytest.mark.parametrize(("day", "slots"), [(date(2024, 3, 31), 92), (date(2024, 10, 27), 100)])
def test_tor_4_2_clock_change_days_through_the_register_path(day: date, slots: int) -> None:
    start, stop = day_slots(day, TZ)
    assert stop - start == slots
    # a reading every full hour (UTC), the register advancing 1 kWh an hour
    t = np.arange(start * 900, stop * 900 + 1, 3600)
    values = np.arange(len(t), dtype=float)
    energy, covered = cumulative_to_slots(t, unwrap(t.tolist(), values.tolist()), start, stop)
    assert len(energy) == slots
    assert energy.tolist() == [0.25] * slots
    assert covered.tolist() == [900] * slots
    assert energy.sum() == slots / 4  # 23 and 25 kWh
