"""Meter status -> quality floor per slot (TOR-6.2)."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from lastgang.errors import InvalidInput
from lastgang.profiles.readings import StatusSeries
from lastgang.profiles.status import STATUS_CODES, status_code, status_quality
from lastgang.quality import Quality

L1, L2, L3 = Quality.L1, Quality.L2, Quality.L3


def at(hour: int, minute: int = 0) -> int:
    return int(datetime(2024, 1, 15, hour, minute, tzinfo=UTC).timestamp())


def slot(hour: int, minute: int = 0) -> int:
    return at(hour, minute) // 900


def series(*events: tuple[int, str]) -> StatusSeries:
    return StatusSeries(
        time=np.array([t for t, _ in events], dtype=np.int64),
        code=tuple(c for _, c in events),
        batch=np.zeros(len(events), dtype=np.int64),
    )


def test_tor_6_2_status_lowers_the_slots_of_its_reading_period() -> None:
    status = series((at(10, 15), "power-failure"), (at(11), "tamper"), (at(11, 30), "ok"))
    readings = np.arange(at(9), at(12) + 1, 900)
    floor = status_quality(status, slot(10), slot(11, 30), reading_times=readings)
    # 10:00-10:15 ends at the power failure (L2), 10:45-11:00 at the tamper event (L3)
    assert floor.tolist() == [L2, L1, L1, L3, L1, L1]


def test_without_reading_times_a_status_covers_the_quarter_hour_before_it() -> None:
    status = series((at(10, 15), "clock-set"))
    assert status_quality(status, slot(10), slot(10, 30)).tolist() == [L2, L1]


def test_status_with_hourly_readings_lowers_the_whole_hour() -> None:
    readings = np.array([at(10), at(11), at(12)])
    # reported with the 11:00 reading: 10:00-11:00; an event at 11:20 lies in 11:00-12:00
    status = series((at(11), "measurement-error"), (at(11, 20), "clock-set"))
    floor = status_quality(status, slot(10), slot(12), reading_times=readings)
    assert floor.tolist() == [L3] * 4 + [L2] * 4


def test_dlms_profile_status_byte() -> None:
    power_down = status_code("dlms:0x80")
    assert power_down is not None and power_down.floor == L2
    dst = status_code("DLMS:0x08")
    assert dst is not None and dst.floor == L1 and not dst.unreliable
    not_valid = status_code("dlms:132")  # 0x84: power down + data not valid
    assert not_valid is not None and not_valid.floor == L3 and not_valid.unreliable
    assert status_code("dlms:0x100") is None
    status = series((at(10, 15), "dlms:0x84"))
    assert status_quality(status, slot(10), slot(10, 15)).tolist() == [L3]


def test_unknown_codes_are_listed_together() -> None:
    status = series((at(10), "ok"), (at(10, 15), "smoke"), (at(10, 30), "Gremlins"))
    with pytest.raises(InvalidInput) as info:
        status_quality(status, slot(10), slot(11), meter="EMH:1")
    reasons = [p.reason for p in info.value.problems]
    assert len(reasons) == 2
    assert any("'smoke'" in r for r in reasons) and any("'Gremlins'" in r for r in reasons)
    assert all(p.meter == "EMH:1" for p in info.value.problems)


def test_status_table() -> None:
    for name in ("ok", "power-failure", "clock-set", "tamper", "fraud", "measurement-error"):
        assert name in STATUS_CODES
    assert STATUS_CODES["voltage-missing"].unreliable
    for code in STATUS_CODES.values():
        assert code.unreliable == (code.floor >= L3)
    assert status_code("  Power-Failure ") == STATUS_CODES["power-failure"]
