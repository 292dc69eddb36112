"""Invariants of load-profile building, checked with Hypothesis."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from lastgang.concept.model import Location, Meter, Role
from lastgang.profiles.build import build_location_profile
from lastgang.profiles.phases import phases_to_slots
from lastgang.profiles.readings import MeterReadings, RegisterSeries
from lastgang.profiles.registers import cumulative_to_slots, unwrap_register
from lastgang.profiles.substitutes import fill_gaps, merge_measured
from lastgang.profiles.types import LoadProfile
from lastgang.quality import Quality
from lastgang.timegrid import day_slots

TZ = "Europe/Vienna"
DAYS = [date(2024, 2, 5), date(2024, 3, 31), date(2024, 10, 27), date(2024, 7, 1)]


@st.composite
def register_day(draw: st.DrawFn) -> tuple[int, int, np.ndarray, np.ndarray, float]:
    """A local day (96, 92 or 100 slots) with readings at its start, its end and anywhere in
    between, a rising register and a transformer constant."""
    day = draw(st.sampled_from(DAYS))
    start, stop = day_slots(day, TZ)
    seconds = (stop - start) * 900
    inner = draw(st.lists(st.integers(1, seconds - 1), max_size=40, unique=True))
    t = start * 900 + np.array(sorted([0, seconds, *inner]), dtype=np.int64)
    steps = draw(
        st.lists(
            st.floats(0.0, 50.0, allow_nan=False, allow_infinity=False),
            min_size=len(t) - 1,
            max_size=len(t) - 1,
        )
    )
    first = draw(st.floats(0.0, 1e6, allow_nan=False))
    values = first + np.concatenate(([0.0], np.cumsum(steps)))
    constant = draw(st.sampled_from([1.0, 0.5, 40.0, 8000.0]))
    return start, stop, t, values, constant


@given(register_day())
def test_tor_4_2_day_sum_equals_register_difference_times_constant(
    case: tuple[int, int, np.ndarray, np.ndarray, float],
) -> None:
    start, stop, t, values, constant = case
    cumulative = unwrap_register(
        t, values, digits=None, max_power_kw=None, constant=constant, meter="m", obis="1.8.0"
    )
    energy, covered = cumulative_to_slots(t, cumulative, start, stop)
    expected = (values[-1] - values[0]) * constant
    assert math.isclose(math.fsum(energy), expected, rel_tol=1e-9, abs_tol=1e-6 * constant)
    assert (covered == 900).all()
    assert (energy >= -1e-9 * max(1.0, abs(cumulative).max())).all()


@given(
    st.lists(st.integers(0, 2**20), min_size=2, max_size=30),
    st.integers(3, 7),
)
def test_tor_5_0a_unwrap_recovers_a_register_that_overflowed_once_per_period(
    quarter_steps: list[int], digits: int
) -> None:
    # a true register rising by less than half the range per period, shown modulo 10**digits
    span = 10**digits
    steps = [s % (span * 2 // 5) for s in quarter_steps]  # whole kWh, below half the range
    true = np.cumsum([span - 3, *steps]).astype(np.float64)
    shown = np.mod(true, span)
    t = np.arange(len(true), dtype=np.int64) * 900
    got = unwrap_register(
        t, shown, digits=digits, max_power_kw=None, constant=1.0, meter="m", obis="1.8.0"
    )
    assert np.array_equal(got - got[0], true - true[0])


@st.composite
def phase_samples(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    gaps = draw(st.lists(st.integers(1, 1500), min_size=1, max_size=40))
    t = 1_000_000 * 900 + np.concatenate(([0], np.cumsum(gaps))).astype(np.int64)
    power = st.floats(-20.0, 20.0, allow_nan=False, allow_infinity=False)
    n = len(t)
    l1, l2, l3 = (np.array(draw(st.lists(power, min_size=n, max_size=n))) for _ in range(3))
    hold = draw(st.sampled_from([900, 1200, 3600]))
    return t, l1, l2, l3, hold


@given(phase_samples())
def test_tor_5_0b_import_minus_export_is_the_integral_of_the_summed_power(
    case: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int],
) -> None:
    t, l1, l2, l3, hold = case
    start, stop = int(t[0] // 900), int(t[-1] // 900) + 1
    imp, exp, covered = phases_to_slots(t, l1, l2, l3, start, stop, max_hold_seconds=hold)
    # reference: one held sample at a time
    integral = 0.0
    gross = 0.0
    seconds = 0
    for i in range(len(t) - 1):
        dt = int(t[i + 1] - t[i])
        if dt <= hold:
            p = float(l1[i] + l2[i] + l3[i])
            integral += p * dt / 3600
            gross += abs(p) * dt / 3600
            seconds += dt
    assert math.isclose(math.fsum(imp) - math.fsum(exp), integral, abs_tol=1e-9 * (1 + gross))
    assert math.isclose(math.fsum(imp) + math.fsum(exp), gross, abs_tol=1e-9 * (1 + gross))
    assert (imp >= 0).all() and (exp >= 0).all()
    assert int(covered.sum()) == seconds
    assert (covered <= 900).all()


@given(phase_samples(), st.integers(0, 20))
def test_phase_slots_do_not_depend_on_the_window(
    case: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int], cut: int
) -> None:
    t, l1, l2, l3, hold = case
    start, stop = int(t[0] // 900), int(t[-1] // 900) + 1
    middle = min(start + cut, stop)
    whole = phases_to_slots(t, l1, l2, l3, start, stop, max_hold_seconds=hold)
    left = phases_to_slots(t, l1, l2, l3, start, middle, max_hold_seconds=hold)
    right = phases_to_slots(t, l1, l2, l3, middle, stop, max_hold_seconds=hold)
    for w, a, b in zip(whole, left, right, strict=True):
        assert np.allclose(w, np.concatenate((a, b)), rtol=1e-12, atol=1e-12)


@given(
    st.lists(st.integers(1, 3000), min_size=2, max_size=25),
    st.data(),
)
def test_tor_7_2_1_an_exchange_at_a_reading_gives_the_same_series_as_one_meter(
    gaps: list[int], data: st.DataObject
) -> None:
    base = int(datetime(2024, 2, 5, tzinfo=UTC).timestamp())
    t = base + np.concatenate(([0], np.cumsum(gaps))).astype(np.int64)
    steps = data.draw(
        st.lists(st.floats(0.0, 5.0, allow_nan=False), min_size=len(gaps), max_size=len(gaps))
    )
    values = 50.0 + np.concatenate(([0.0], np.cumsum(steps)))
    k = data.draw(st.integers(1, len(t) - 2)) if len(t) > 2 else 1
    start, stop = int(t[0] // 900), int(t[-1] // 900) + 1
    exchange = datetime.fromtimestamp(int(t[k]), UTC)

    def readings(key: str, times: np.ndarray, vals: np.ndarray) -> MeterReadings:
        n = len(times)
        return MeterReadings(
            key,
            registers={
                "1-0:1.8.0": RegisterSeries("1-0:1.8.0", times, vals, np.zeros(n, np.int64)),
                "1-0:2.8.0": RegisterSeries("1-0:2.8.0", times, np.zeros(n), np.zeros(n, np.int64)),
            },
        )

    one = Location(
        id="a",
        role=Role.CONSUMER,
        meters=[Meter(manufacturer="A", serial="1", installed=date(2024, 1, 1))],
    )
    single = build_location_profile(one, {"A:1": readings("A:1", t, values)}, start, stop, TZ)
    two = Location(
        id="a",
        role=Role.CONSUMER,
        meters=[
            Meter(manufacturer="A", serial="1", installed=date(2024, 1, 1), removed=exchange),
            Meter(manufacturer="B", serial="2", installed=exchange),
        ],
    )
    split = build_location_profile(
        two,
        {
            "A:1": readings("A:1", t[: k + 1], values[: k + 1]),
            # the new meter starts from 0 at the exchange
            "B:2": readings("B:2", t[k:], values[k:] - values[k]),
        },
        start,
        stop,
        TZ,
    )
    assert np.array_equal(single.quality, split.quality)
    assert np.allclose(single.import_kwh, split.import_kwh, rtol=1e-9, atol=1e-9, equal_nan=True)
    measured = single.quality != Quality.MISSING
    assert math.isclose(
        math.fsum(single.import_kwh[measured]),
        math.fsum(split.import_kwh[measured]),
        rel_tol=1e-9,
        abs_tol=1e-9,
    )


@st.composite
def gappy_profile(draw: st.DrawFn) -> LoadProfile:
    start = day_slots(date(2024, 2, 5), TZ)[0]
    n = 96 * 3
    values = np.array(draw(st.lists(st.floats(0.0, 3.0, allow_nan=False), min_size=n, max_size=n)))
    missing = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    missing[:8] = False  # keep some measured values for the level
    imp = np.where(missing, np.nan, values)
    exp = np.where(missing, np.nan, values / 4)
    q = np.where(missing, Quality.MISSING, Quality.L1).astype(np.int8)
    return LoadProfile(start, imp, exp, q)


@given(gappy_profile())
def test_q_2_filling_keeps_measured_values_and_fills_every_gap(profile: LoadProfile) -> None:
    filled = fill_gaps(profile, TZ, slp="H0")
    known = profile.quality != Quality.MISSING
    assert np.array_equal(filled.import_kwh[known], profile.import_kwh[known])
    assert np.array_equal(filled.quality[known], profile.quality[known])
    assert not np.isnan(filled.import_kwh).any() and not np.isnan(filled.export_kwh).any()
    assert set(filled.quality[~known].tolist()) <= {Quality.L2, Quality.L3}
    assert (filled.import_kwh >= 0).all() and (filled.export_kwh >= 0).all()
    # a measured profile merged over the substitutes brings every measured value back
    back = merge_measured(filled, profile)
    assert np.array_equal(back.import_kwh[known], profile.import_kwh[known])
    same = merge_measured(profile, profile)
    assert np.array_equal(same.import_kwh, profile.import_kwh, equal_nan=True)
