"""Phase powers -> import and export per slot (TOR-5.0b, TOR-A2)."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime

import numpy as np
import pytest

from lastgang.errors import MeterDataError
from lastgang.profiles.phases import phases_to_slots
from lastgang.timegrid import day_slots

TZ = "Europe/Vienna"


def at(hour: int, minute: int = 0) -> int:
    return int(datetime(2024, 1, 15, hour, minute, tzinfo=UTC).timestamp())


def slot(hour: int, minute: int = 0) -> int:
    return at(hour, minute) // 900


def test_tor_a2_phase_balancing_example() -> None:
    # 10 min: 1.0 + 0.4 - 2.0 = -0.6 kW (export 0.1 kWh); 5 min: 1.5 + 1.2 - 1.5 = +1.2 kW
    # (import 0.1 kWh); one quarter hour holds both, nothing is netted.
    t = [at(10), at(10, 10), at(10, 15)]
    imp, exp, covered = phases_to_slots(
        t, [1.0, 1.5, 0.0], [0.4, 1.2, 0.0], [-2.0, -1.5, 0.0], slot(10), slot(10, 15)
    )
    assert imp.tolist() == [0.1]
    assert exp.tolist() == [0.1]
    assert math.isclose(imp[0], 0.1, rel_tol=1e-15) and math.isclose(exp[0], 0.1, rel_tol=1e-15)
    assert covered.tolist() == [900]
    assert imp[0] - exp[0] == 0.0  # the net would be 0 kWh, but both are registered


def test_tor_5_0b_phases_are_balanced_at_each_instant() -> None:
    # +2 kW on L1 while L2 and L3 export 0.5 kW each: the meter sees +1 kW, import only
    t = [at(10), at(10, 15)]
    imp, exp, _ = phases_to_slots(t, [2.0, 0.0], [-0.5, 0.0], [-0.5, 0.0], slot(10), slot(10, 15))
    assert imp.tolist() == [0.25]
    assert exp.tolist() == [0.0]


def test_tor_5_0b_holds_and_gaps() -> None:
    # samples (sum): 00:00 +1 kW, 00:10 +2 kW, 00:40 -4 kW, 00:45 +3 kW, 01:00 end
    t = [at(0), at(0, 10), at(0, 40), at(0, 45), at(1)]
    l1 = [0.5, 1.0, -2.0, 1.0, 0.0]
    l2 = [0.25, 1.0, -1.0, 1.0, 0.0]
    l3 = [0.25, 0.0, -1.0, 1.0, 0.0]
    imp, exp, covered = phases_to_slots(t, l1, l2, l3, slot(0), slot(1))
    # 00:10 -> 00:40 holds 30 min > 15 min: a gap, not covered
    assert covered.tolist() == [600, 0, 300, 900]
    assert imp == pytest.approx([1 / 6, 0.0, 0.0, 0.75], rel=1e-12)
    assert exp == pytest.approx([0.0, 0.0, 1 / 3, 0.0], rel=1e-12)
    # with holds up to an hour the 2 kW sample covers 00:10-00:40
    imp, exp, covered = phases_to_slots(t, l1, l2, l3, slot(0), slot(1), max_hold_seconds=3600)
    assert covered.tolist() == [900, 900, 900, 900]
    assert imp == pytest.approx([1 / 6 + 1 / 6, 0.5, 1 / 3, 0.75], rel=1e-12)
    assert exp == pytest.approx([0.0, 0.0, 1 / 3, 0.0], rel=1e-12)


def test_last_sample_only_ends_the_series() -> None:
    imp, exp, covered = phases_to_slots([at(0)], [5.0], [5.0], [5.0], slot(0), slot(1))
    assert imp.tolist() == exp.tolist() == [0.0] * 4
    assert covered.tolist() == [0] * 4


def test_samples_outside_the_window_count_only_inside() -> None:
    # +4 kW from 23:50 to 00:20 (held 30 min with max hold 3600): the window 00:00-00:15 gets 1 kWh
    t = [at(0) - 600, at(0, 20)]
    imp, _, covered = phases_to_slots(
        t, [4.0, 0.0], [0.0, 0.0], [0.0, 0.0], slot(0), slot(0, 15), max_hold_seconds=3600
    )
    assert imp.tolist() == [1.0]
    assert covered.tolist() == [900]


def test_tor_4_4_transformer_constant_applies_to_phase_powers() -> None:
    # 0.5 kW secondary x 40 (CT 200/5) = 20 kW for 15 min = 5 kWh
    t = [at(0), at(0, 15)]
    imp, _, _ = phases_to_slots(
        t, [0.25, 0.0], [0.125, 0.0], [0.125, 0.0], slot(0), slot(0, 15), constant=40.0
    )
    assert imp.tolist() == [5.0]


def test_a_sample_without_value_covers_nothing() -> None:
    t = [at(0), at(0, 15), at(0, 30)]
    imp, _, covered = phases_to_slots(
        t, [1.0, math.nan, 0.0], [1.0, 1.0, 0.0], [0.0, 1.0, 0.0], slot(0), slot(0, 30)
    )
    assert covered.tolist() == [900, 0]
    assert imp.tolist() == [0.5, 0.0]


def test_unsorted_samples_are_an_error() -> None:
    with pytest.raises(MeterDataError, match="out of order"):
        phases_to_slots([at(1), at(0)], [1.0, 1.0], [0.0, 0.0], [0.0, 0.0], slot(0), slot(1))


@pytest.mark.parametrize(("day", "slots"), [(date(2024, 3, 31), 92), (date(2024, 10, 27), 100)])
def test_tor_4_2_clock_change_days_through_the_phase_path(day: date, slots: int) -> None:
    start, stop = day_slots(day, TZ)
    t = np.arange(start * 900, stop * 900 + 1, 900)
    ones = np.ones(len(t))
    # 1 kW import on L1 and on L2, 0.5 kW export on L3: sum +1.5 kW -> 0.375 kWh a slot
    imp, exp, covered = phases_to_slots(t, ones, ones, -0.5 * ones, start, stop)
    assert len(imp) == slots
    assert imp.tolist() == [0.375] * slots
    assert exp.tolist() == [0.0] * slots
    assert covered.tolist() == [900] * slots
    assert imp.sum() == 0.375 * slots  # 34.5 and 37.5 kWh
