"""A metering location's profile from its meters: exchange (TOR-7.2.1), sources, links, status."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime

import numpy as np
import pytest

from lastgang.concept.model import Location, Meter, Orientation, Role, Transformer
from lastgang.errors import MeterDataError
from lastgang.profiles.build import build_location, build_location_profile
from lastgang.profiles.intervals import intervals_to_profile
from lastgang.profiles.readings import (
    IntervalSeries,
    MeterReadings,
    PhaseSeries,
    RegisterSeries,
    StatusSeries,
)
from lastgang.profiles.slp import standard_load_profile
from lastgang.quality import Quality
from lastgang.timegrid import day_slots, period_slots

TZ = "Europe/Vienna"
OLD, NEW = "EMH:001", "LGZ:002"
L1, L2, L3, MISSING = Quality.L1, Quality.L2, Quality.L3, Quality.MISSING


def at(hour: int, minute: int = 0, day: int = 15) -> int:
    return int(datetime(2024, 1, day, hour, minute, tzinfo=UTC).timestamp())


def slot(hour: int, minute: int = 0, day: int = 15) -> int:
    return at(hour, minute, day) // 900


def utc(hour: int, minute: int = 0, day: int = 15) -> datetime:
    return datetime(2024, 1, day, hour, minute, tzinfo=UTC)


def register(
    obis: str, times: list[int], values: list[float], batches: list[int] | None = None
) -> RegisterSeries:
    return RegisterSeries(
        obis=obis,
        time=np.array(times, dtype=np.int64),
        value=np.array(values, dtype=float),
        batch=np.array(batches or [0] * len(times), dtype=np.int64),
    )


def registers(
    key: str, times: list[int], imp: list[float], batches: list[int] | None = None
) -> MeterReadings:
    """Import register as given, export register standing still."""
    return MeterReadings(
        key,
        registers={
            "1-0:1.8.0": register("1-0:1.8.0", times, imp, batches),
            "1-0:2.8.0": register("1-0:2.8.0", times, [7.0] * len(times), batches),
        },
    )


def location(*meters: Meter) -> Location:
    return Location(id="flat1", role=Role.CONSUMER, meters=list(meters))


def meter(key: str, installed: date | datetime, removed: date | datetime | None = None) -> Meter:
    manufacturer, serial = key.split(":")
    return Meter(manufacturer=manufacturer, serial=serial, installed=installed, removed=removed)


# --- meter exchange (TOR-7.2.1) ---------------------------------------------------------------


def exchange_site() -> tuple[Location, dict[str, MeterReadings]]:
    loc = location(
        meter(OLD, date(2024, 1, 1), utc(10, 5)),
        meter(NEW, utc(10, 5)),
    )
    readings = {
        OLD: registers(OLD, [at(9, 45), at(10), at(10, 5)], [99.0, 100.0, 100.5], [11, 12, 13]),
        NEW: registers(NEW, [at(10, 5), at(10, 15), at(10, 30)], [0.0, 0.25, 1.0], [21, 22, 23]),
    }
    return loc, readings


def test_tor_7_2_1_exchange_slot_gets_the_sum_of_both_parts() -> None:
    loc, readings = exchange_site()
    profile = build_location_profile(loc, readings, slot(9, 45), slot(10, 45), TZ)
    # 09:45 old 1.0; 10:00 old 0.5 (10:00-10:05) + new 0.25 (10:05-10:15); 10:15 new 0.75;
    # 10:30 nothing after the new meter's last reading
    assert profile.import_kwh[:3].tolist() == [1.0, 0.75, 0.75]
    assert math.isnan(profile.import_kwh[3])
    assert profile.export_kwh[:3].tolist() == [0.0, 0.0, 0.0]
    assert profile.quality.tolist() == [L1, L1, L1, MISSING]


def test_tor_4_1m_exchange_links_slots_to_both_serials_and_batches() -> None:
    loc, readings = exchange_site()
    profile = build_location_profile(loc, readings, slot(9, 45), slot(10, 45), TZ)
    assert profile.meters == (OLD, NEW)
    # the exchange slot belongs to the new meter: 600 s against 300 s
    assert [profile.meters[i] for i in profile.meter[:3]] == [OLD, NEW, NEW]
    assert profile.meter[3] == -1
    # batch of the reading that closes each slot's reading period
    assert profile.batch.tolist() == [12, 22, 23, 0]


def test_tor_7_2_1_time_between_the_meters_leaves_the_slot_incomplete() -> None:
    loc = location(meter(OLD, date(2024, 1, 1), utc(10, 5)), meter(NEW, utc(10, 7)))
    readings = {
        OLD: registers(OLD, [at(10), at(10, 5)], [100.0, 100.5]),
        NEW: registers(NEW, [at(10, 7), at(10, 15), at(10, 30)], [0.0, 0.2, 1.0]),
    }
    profile = build_location_profile(loc, readings, slot(10), slot(10, 30), TZ)
    # 10:00 is covered 300 + 480 = 780 s of 900: missing, to be substituted
    assert profile.quality.tolist() == [MISSING, L1]
    assert math.isnan(profile.import_kwh[0])
    assert profile.import_kwh[1] == pytest.approx(0.8, rel=1e-12)


def test_readings_outside_the_installed_period_name_the_meter() -> None:
    loc, readings = exchange_site()
    readings[OLD] = registers(OLD, [at(10), at(10, 5), at(10, 10)], [100.0, 100.5, 100.6])
    with pytest.raises(MeterDataError) as info:
        build_location_profile(loc, readings, slot(9, 45), slot(10, 45), TZ)
    problems = info.value.problems
    assert len(problems) == 2  # the import and the export register
    for problem in problems:
        assert problem.meter == OLD
        assert "outside its installed period" in problem.reason
        assert problem.time == "2024-01-15T10:10:00Z"


def test_overlapping_meters_are_an_error() -> None:
    loc = location(meter(OLD, date(2024, 1, 1), utc(11)), meter(NEW, utc(10)))
    with pytest.raises(MeterDataError, match="one meter at a time"):
        build_location_profile(loc, {}, slot(9), slot(12), TZ)


def test_a_date_means_local_midnight() -> None:
    # installed 2024-01-16 (a date) = 2024-01-15 23:00 UTC in Vienna: a reading at 22:45 UTC is
    # before it, one at 23:00 is not
    loc = location(meter(NEW, date(2024, 1, 16)))
    ok = {NEW: registers(NEW, [at(23), at(23, 15)], [0.0, 1.0])}
    profile = build_location_profile(loc, ok, slot(23), slot(23, 15), TZ)
    assert profile.import_kwh.tolist() == [1.0]
    early = {NEW: registers(NEW, [at(22, 45), at(23, 15)], [0.0, 1.0])}
    with pytest.raises(MeterDataError, match="outside its installed period"):
        build_location_profile(loc, early, slot(23), slot(23, 15), TZ)


# --- sources -----------------------------------------------------------------------------------


def test_tor_4_4_transformer_constant_in_the_location_profile() -> None:
    m = Meter(
        manufacturer="EMH",
        serial="9",
        ct=Transformer(ratio="200/5"),
        vt=Transformer(ratio="20000/100"),
        installed=date(2024, 1, 1),
    )
    readings = {"EMH:9": registers("EMH:9", [at(0), at(0, 15)], [100.0, 100.125])}
    profile = build_location_profile(location(m), readings, slot(0), slot(0, 15), TZ)
    assert profile.import_kwh.tolist() == [1000.0]  # 0.125 kWh x 8000


def test_only_tariff_registers_are_summed() -> None:
    t = [at(0), at(0, 15)]
    readings = {
        NEW: MeterReadings(
            NEW,
            registers={
                "1-0:1.8.1": register("1-0:1.8.1", t, [10.0, 11.0]),
                "1-0:1.8.2": register("1-0:1.8.2", t, [20.0, 20.5]),
                "1-0:2.8.0": register("1-0:2.8.0", t, [0.0, 0.25]),
                "1-0:3.8.0": register("1-0:3.8.0", t, [0.0, 99.0]),  # reactive: not used
            },
        )
    }
    profile = build_location_profile(
        location(meter(NEW, date(2024, 1, 1))), readings, slot(0), slot(0, 15), TZ
    )
    assert profile.import_kwh.tolist() == [1.5]
    assert profile.export_kwh.tolist() == [0.25]


def test_missing_export_register_counts_as_zero_with_a_warning() -> None:
    t = [at(0), at(0, 15)]
    readings = {NEW: MeterReadings(NEW, registers={"1-0:1.8.0": register("1-0:1.8.0", t, [0, 2])})}
    report = build_location(
        location(meter(NEW, date(2024, 1, 1))), readings, slot(0), slot(0, 15), TZ
    )
    assert report.profile.import_kwh.tolist() == [2.0]
    assert report.profile.export_kwh.tolist() == [0.0]
    (warning,) = report.warnings
    assert warning.severity == "warning" and "1-0:2.8.0" in warning.reason


def test_phases_are_used_without_registers() -> None:
    t = np.array([at(10), at(10, 10), at(10, 15)])
    readings = {
        NEW: MeterReadings(
            NEW,
            phases=PhaseSeries(
                t,
                np.array([1.0, 1.5, 0.0]),
                np.array([0.4, 1.2, 0.0]),
                np.array([-2.0, -1.5, 0.0]),
                np.array([1, 2, 3]),
            ),
        )
    }
    profile = build_location_profile(
        location(meter(NEW, date(2024, 1, 1))), readings, slot(10), slot(10, 15), TZ
    )
    assert profile.import_kwh.tolist() == [0.1]  # TOR-A2 through the whole location
    assert profile.export_kwh.tolist() == [0.1]
    assert profile.quality.tolist() == [L1]
    assert profile.batch.tolist() == [3]


def test_interval_values_get_the_constant_when_secondary_and_split_at_an_exchange() -> None:
    def intervals(slots: list[int], imp: list[float], batch: int) -> IntervalSeries:
        n = len(slots)
        return IntervalSeries(
            np.array(slots),
            np.array(imp),
            np.zeros(n),
            np.full(n, L1, dtype=np.int8),
            np.full(n, batch),
            primary=False,
        )

    ct = Transformer(ratio="100/5")  # 20
    old = Meter(
        manufacturer="EMH", serial="001", ct=ct, installed=date(2024, 1, 1), removed=utc(10, 5)
    )
    new = Meter(manufacturer="LGZ", serial="002", ct=ct, installed=utc(10, 5))
    readings = {
        OLD: MeterReadings(OLD, intervals=intervals([slot(9, 45), slot(10)], [0.5, 0.125], 1)),
        NEW: MeterReadings(NEW, intervals=intervals([slot(10), slot(10, 15)], [0.25, 1.0], 2)),
    }
    profile = build_location_profile(location(old, new), readings, slot(9, 45), slot(10, 30), TZ)
    # x 20; the exchange slot 10:00 sums both meters' values: (0.125 + 0.25) x 20 = 7.5
    assert profile.import_kwh.tolist() == [10.0, 7.5, 20.0]
    assert [profile.meters[i] for i in profile.meter] == [OLD, NEW, NEW]


def test_sm_2_the_profile_is_the_meter_view_inverted_meters_are_not_swapped() -> None:
    m = Meter(
        manufacturer="LGZ",
        serial="002",
        orientation=Orientation.INVERTED,
        installed=date(2024, 1, 1),
    )
    readings = {NEW: registers(NEW, [at(0), at(0, 15)], [0.0, 3.0])}
    profile = build_location_profile(location(m), readings, slot(0), slot(0, 15), TZ)
    assert profile.import_kwh.tolist() == [3.0]
    assert profile.export_kwh.tolist() == [0.0]


# --- quality -----------------------------------------------------------------------------------


def test_q_1_reading_periods_over_15_minutes_are_l2() -> None:
    t = [at(0), at(0, 15), at(1)]
    readings = {NEW: registers(NEW, t, [0.0, 1.0, 4.0])}
    profile = build_location_profile(
        location(meter(NEW, date(2024, 1, 1))), readings, slot(0), slot(1), TZ
    )
    assert profile.import_kwh.tolist() == [1.0, 1.0, 1.0, 1.0]
    assert profile.quality.tolist() == [L1, L2, L2, L2]


def test_tor_6_2_status_lowers_quality_in_the_location_profile() -> None:
    t = [at(0), at(0, 15), at(0, 30), at(0, 45)]
    readings = {
        NEW: MeterReadings(
            NEW,
            registers=registers(NEW, t, [0.0, 1.0, 2.0, 3.0]).registers,
            status=StatusSeries(
                np.array([at(0, 15), at(0, 45)]), ("power-failure", "tamper"), np.zeros(2, int)
            ),
        )
    }
    profile = build_location_profile(
        location(meter(NEW, date(2024, 1, 1))), readings, slot(0), slot(0, 45), TZ
    )
    assert profile.quality.tolist() == [L2, L1, L3]
    assert profile.import_kwh.tolist() == [1.0, 1.0, 1.0]  # values stay, only flags change


def test_long_reading_periods_are_shaped_by_the_slp_and_keep_their_measured_total() -> None:
    # daily readings at local midnight, 3 days in February: no measured quarter hours exist, so
    # each day's total is spread like the H0 profile of that day (L2)
    first, last = date(2024, 2, 5), date(2024, 2, 7)
    start, stop = period_slots(first, last, TZ)
    bounds = [day_slots(date(2024, 2, d), TZ)[0] * 900 for d in (5, 6, 7, 8)]
    readings = {NEW: registers(NEW, bounds, [100.0, 105.0, 113.0, 116.0], [1, 2, 3, 4])}
    report = build_location(location(meter(NEW, date(2024, 1, 1))), readings, start, stop, TZ)
    profile = report.profile
    assert (profile.quality == L2).all()
    days = profile.import_kwh.reshape(3, 96)
    assert days.sum(axis=1) == pytest.approx([5.0, 8.0, 3.0], rel=1e-12)
    slp = standard_load_profile("H0", start, stop, TZ).reshape(3, 96)
    ratio = days / slp
    assert np.allclose(ratio, ratio[:, :1], rtol=1e-12)  # proportional to H0 within each day
    assert profile.batch.reshape(3, 96)[:, 0].tolist() == [2, 3, 4]
    assert len(report.known_totals) == 3


@pytest.mark.parametrize(("day", "slots"), [(date(2024, 3, 31), 92), (date(2024, 10, 27), 100)])
def test_tor_4_2_clock_change_days_through_the_location(day: date, slots: int) -> None:
    start, stop = day_slots(day, TZ)
    t = list(range(start * 900, stop * 900 + 1, 900))
    readings = {NEW: registers(NEW, t, [0.5 * i for i in range(len(t))])}
    profile = build_location_profile(
        location(meter(NEW, date(2024, 1, 1))), readings, start, stop, TZ
    )
    assert len(profile) == slots
    assert profile.import_kwh.tolist() == [0.5] * slots
    assert (profile.quality == L1).all()


# --- interval values --------------------------------------------------------------------------


def interval_series(
    slots: list[int], imp: list[float], exp: list[float], primary: bool = True
) -> IntervalSeries:
    n = len(slots)
    return IntervalSeries(
        np.array(slots),
        np.array(imp),
        np.array(exp),
        np.full(n, L1, dtype=np.int8),
        np.arange(n) + 5,
        primary=primary,
    )


def test_interval_duplicates_are_an_error_naming_the_slot() -> None:
    series = interval_series([slot(10), slot(10), slot(10, 15)], [1.0, 2.0, 3.0], [0, 0, 0])
    with pytest.raises(MeterDataError) as info:
        intervals_to_profile(series, slot(10), slot(11), meter=NEW)
    (problem,) = info.value.problems
    assert f"slot {slot(10)} (2024-01-15T10:00Z-10:15Z) is given 2 times" in problem.reason
    assert problem.meter == NEW


def test_interval_values_primary_or_secondary_and_missing_directions() -> None:
    series = interval_series([slot(10), slot(10, 15)], [1.0, 2.0], [0.5, math.nan])
    primary = intervals_to_profile(series, slot(10), slot(10, 45), constant=20.0, meter=NEW)
    assert primary.import_kwh[0] == 1.0 and primary.export_kwh[0] == 0.5  # not scaled
    # a value without its export direction is missing, so is a slot the series does not name
    assert primary.quality.tolist() == [L1, MISSING, MISSING]
    assert math.isnan(primary.import_kwh[1])
    assert primary.batch.tolist() == [5, 0, 0]
    assert primary.meters == (NEW,) and primary.meter.tolist() == [0, -1, -1]
    secondary = intervals_to_profile(
        interval_series([slot(10)], [1.0], [0.5], primary=False),
        slot(10),
        slot(10, 15),
        constant=20.0,
    )
    assert secondary.import_kwh.tolist() == [20.0] and secondary.export_kwh.tolist() == [10.0]
