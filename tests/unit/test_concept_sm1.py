"""SM-1: a measurement concept lists every meter of a building by role, physical or virtual."""

from pathlib import Path

from lastgang.concept.load import load_site
from lastgang.concept.model import Location, Role, VirtualMeter

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_sm_1_emergency_power_concept_lists_meters_by_role() -> None:
    """The SM-3 example names a grid connection meter (HAK), consumers (apartments, general,
    heating), the two emergency power meters and one virtual production meter."""
    site = load_site(EXAMPLES / "emergency-power" / "site.toml")
    meters = site.meter_ids()
    roles = {meter_id: site.role_of(meter_id) for meter_id in meters}

    grid = [m for m, role in roles.items() if role is Role.GRID]
    assert len(grid) == 1, "exactly one balance meter (HAK)"
    consumers = [m for m, role in roles.items() if role is Role.CONSUMER]
    assert len(consumers) >= 4, "at least two apartments, general and heating"
    virtual = [m for m, kind in meters.items() if isinstance(kind, VirtualMeter)]
    assert len(virtual) == 1
    assert roles[virtual[0]] is Role.PRODUCTION
    physical = [m for m, kind in meters.items() if isinstance(kind, Location)]
    assert len(physical) == len(meters) - 1
    # every physical metering location has at least one physical meter behind it
    assert all(site.location(m).meters for m in physical)


def test_sm_1_battery_concept_has_storage_and_production() -> None:
    site = load_site(EXAMPLES / "pv-battery" / "site.toml")
    roles = {site.role_of(m) for m in site.meter_ids()}
    assert {Role.GRID, Role.CONSUMER, Role.PRODUCTION, Role.STORAGE} <= roles
