"""Readings -> 15-minute load profiles (TOR-4.2, 4.4, 5.0a, 5.0b, 6.2, 7.2, 7.2.1; Q-1, Q-2).

See ``docs/load-profiles.md`` for every rule with worked numbers.
"""

from lastgang.profiles.build import (
    BuildReport,
    build_location,
    build_location_profile,
    meter_period,
)
from lastgang.profiles.intervals import intervals_to_profile
from lastgang.profiles.phases import phases_to_slots
from lastgang.profiles.registers import (
    RegisterSlots,
    closing_reading,
    cumulative_to_slots,
    interval_quality,
    long_intervals,
    register_slots,
    unwrap_register,
)
from lastgang.profiles.slp import standard_load_profile
from lastgang.profiles.status import STATUS_CODES, StatusCode, status_code, status_quality
from lastgang.profiles.substitutes import (
    KnownTotal,
    distribute_totals,
    fill_gaps,
    merge_measured,
)
from lastgang.profiles.types import LoadProfile

__all__ = [
    "STATUS_CODES",
    "BuildReport",
    "KnownTotal",
    "LoadProfile",
    "RegisterSlots",
    "StatusCode",
    "build_location",
    "build_location_profile",
    "closing_reading",
    "cumulative_to_slots",
    "distribute_totals",
    "fill_gaps",
    "interval_quality",
    "intervals_to_profile",
    "long_intervals",
    "merge_measured",
    "meter_period",
    "phases_to_slots",
    "register_slots",
    "standard_load_profile",
    "status_code",
    "status_quality",
    "unwrap_register",
]
