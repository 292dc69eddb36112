"""check_site: one test per rule, each a deliberately broken variant of a small valid site."""

from __future__ import annotations

import copy
from datetime import date
from typing import Any

import pytest

from lastgang.concept.model import Site
from lastgang.concept.validate import check_site, errors_of, warnings_of
from lastgang.errors import Problem

TODAY = date(2026, 11, 22)

HAK_IMPORT = "AT0081000801000000000000005260181"
HAK_EXPORT = "AT0081000801000000000000005260182"


def _meter(serial: str, **extra: Any) -> dict[str, Any]:
    return {
        "manufacturer": "SMART-ME",
        "serial": serial,
        "accuracy_class": "B",
        "installed": date(2024, 3, 1),
        "verified": 2024,
        "validity_years": 8,
        **extra,
    }


def base() -> dict[str, Any]:
    """A small valid building: HAK, PV, two apartments, a virtual meter, tariffs."""
    return {
        "site": {"id": "test", "name": "Test building"},
        "locations": [
            {
                "id": "hak",
                "role": "grid",
                "metering_points": {"import": HAK_IMPORT, "export": HAK_EXPORT},
                "meters": [_meter("HAK1", manufacturer="LGZ", accuracy_class="A")],
            },
            {"id": "pv", "role": "production", "upstream": "hak", "meters": [_meter("PV1")]},
            {"id": "apt-1", "role": "consumer", "upstream": "hak", "meters": [_meter("A1")]},
            {"id": "apt-2", "role": "consumer", "upstream": "hak", "meters": [_meter("A2")]},
        ],
        "virtual_meters": [
            {
                "id": "both",
                "formula": "apt-1 + apt-2",
                "parent": "hak",
                "role": "technical",
            }
        ],
        "units": [
            {"id": "top-1", "meters": ["apt-1"]},
            {"id": "top-2", "meters": ["apt-2"]},
        ],
        "tariffs": [
            {"id": "solar", "kind": "local", "meter": "pv", "price": "0.15"},
            {"id": "grid", "kind": "grid", "price": "0.25"},
        ],
        "billing": {"owner": "Owner", "balance_meter": "hak"},
    }


def problems_of(data: dict[str, Any], **kwargs: Any) -> list[Problem]:
    kwargs.setdefault("today", TODAY)
    return check_site(Site.model_validate(data), **kwargs)


def only(problems: list[Problem], column: str) -> Problem:
    """The one problem at ``column`` (fails with the full list otherwise)."""
    found = [p for p in problems if p.column == column]
    assert len(found) == 1, [str(p) for p in problems]
    return found[0]


def test_base_site_has_no_problem() -> None:
    assert problems_of(base()) == []


# --- references --------------------------------------------------------------------------------


def test_unknown_upstream() -> None:
    data = base()
    data["locations"][2]["upstream"] = "hak2"
    p = only(problems_of(data), "locations[2].upstream")
    assert p.severity == "error"
    assert "unknown upstream 'hak2'" in p.reason
    assert p.meter == "apt-1"


def test_upstream_must_be_a_real_location() -> None:
    data = base()
    data["locations"][2]["upstream"] = "both"
    p = only(problems_of(data), "locations[2].upstream")
    assert "is a virtual meter" in p.reason


def test_wiring_loop() -> None:
    data = base()
    data["locations"][2]["upstream"] = "apt-2"
    data["locations"][3]["upstream"] = "apt-1"
    problems = errors_of(problems_of(data))
    assert len(problems) == 1
    assert "apt-1 -> apt-2 -> apt-1" in problems[0].reason


def test_tor_4_1v_unknown_formula_operand() -> None:
    data = base()
    data["virtual_meters"][0]["formula"] = "apt-1 + apt-3"
    p = only(problems_of(data), "virtual_meters[0].formula")
    assert "unknown meter 'apt-3'" in p.reason
    assert p.severity == "error"


def test_formula_hyphen_without_spaces_gets_a_hint() -> None:
    data = base()
    data["virtual_meters"][0]["formula"] = "apt-1-apt-2"
    p = only(problems_of(data), "virtual_meters[0].formula")
    assert "put spaces around '-' ('apt-1 - apt-2')" in p.reason


def test_formula_that_cannot_be_parsed() -> None:
    data = base()
    data["virtual_meters"][0]["formula"] = "apt-1 * apt-2"
    p = only(problems_of(data), "virtual_meters[0].formula")
    assert "multiply a meter by a constant only" in p.reason


def test_tor_4_1v_unknown_parent() -> None:
    data = base()
    data["virtual_meters"][0]["parent"] = "nowhere"
    p = only(problems_of(data), "virtual_meters[0].parent")
    assert "unknown parent 'nowhere'" in p.reason
    assert "TOR-4.1v" in p.reason


def test_tor_4_1v_parent_is_not_virtual() -> None:
    data = base()
    data["virtual_meters"].append(
        {"id": "half", "formula": "0.5 * both", "parent": "both", "role": "technical"}
    )
    p = only(problems_of(data), "virtual_meters[1].parent")
    assert "is itself virtual" in p.reason


def test_tor_4_1v_parent_without_metering_point_id_is_a_warning() -> None:
    data = base()
    data["virtual_meters"][0]["parent"] = "apt-1"
    p = only(problems_of(data), "virtual_meters[0].parent")
    assert p.severity == "warning"
    assert "has no metering point ID" in p.reason


def test_cycle_among_virtual_meters() -> None:
    data = base()
    data["virtual_meters"] = [
        {"id": "a", "formula": "b + apt-1", "parent": "hak", "role": "technical"},
        {"id": "b", "formula": "c - apt-2", "parent": "hak", "role": "technical"},
        {"id": "c", "formula": "0.5 * a", "parent": "hak", "role": "technical"},
    ]
    problems = errors_of(problems_of(data))
    assert len(problems) == 1, problems
    assert "a -> b -> c -> a" in problems[0].reason
    assert problems[0].column == "virtual_meters[0].formula"


def test_virtual_meter_naming_itself() -> None:
    data = base()
    data["virtual_meters"][0]["formula"] = "both + apt-1"
    p = only(problems_of(data), "virtual_meters[0].formula")
    assert "both -> both" in p.reason


def test_unknown_unit_meter() -> None:
    data = base()
    data["units"][1]["meters"] = ["apt-2", "apt-9"]
    p = only(problems_of(data), "units[1].meters[1]")
    assert "unknown meter 'apt-9'" in p.reason


# --- ids ---------------------------------------------------------------------------------------


def test_tor_4_1_invalid_metering_point_id() -> None:
    data = base()
    data["locations"][0]["metering_points"]["import"] = "AT00810008010000000000000052601"  # 31
    problems = [p for p in problems_of(data) if p.column == "locations[0].metering_points.import"]
    assert problems, "a 31-character ID must be reported"
    assert all(p.severity == "error" and p.meter == "hak" for p in problems)
    assert any("33" in p.reason for p in problems)


def test_tor_4_1_metering_point_id_used_twice() -> None:
    data = base()
    data["locations"][2]["metering_points"] = {"import": HAK_IMPORT}
    p = only(problems_of(data), "locations[2].metering_points.import")
    assert "used twice" in p.reason
    assert "locations[0].metering_points.import" in p.reason


def test_tor_4_0_one_id_per_direction() -> None:
    data = base()
    data["locations"][0]["metering_points"]["export"] = HAK_IMPORT
    p = only(problems_of(data), "locations[0].metering_points.export")
    assert "used twice" in p.reason


def test_tor_4_1_dotted_form_counts_as_the_same_id() -> None:
    data = base()
    data["locations"][2]["metering_points"] = {"import": "AT.008100.08010.00000000000005260181"}
    p = only(problems_of(data), "locations[2].metering_points.import")
    assert "used twice" in p.reason


def test_duplicate_location_id() -> None:
    data = base()
    data["locations"][3]["id"] = "apt-1"
    p = only(problems_of(data), "locations[3].id")
    assert "'apt-1' is used twice" in p.reason


def test_virtual_meter_with_the_id_of_a_location() -> None:
    data = base()
    data["virtual_meters"][0]["id"] = "pv"
    p = only(problems_of(data), "virtual_meters[0].id")
    assert "'pv' is used twice" in p.reason


def test_duplicate_unit_id() -> None:
    data = base()
    data["units"][1]["id"] = "top-1"
    p = only(problems_of(data), "units[1].id")
    assert "used twice" in p.reason


# --- meters --------------------------------------------------------------------------------------


def test_tor_5_1_meter_below_the_a3_class_of_its_connection() -> None:
    data = base()
    data["locations"][1]["meters"][0]["accuracy_class"] = "A"  # class 2, lv-direct: fine
    data["locations"][2]["meters"][0].update(
        connection="lv-ct",
        accuracy_class="A",  # lv-ct needs 1 (B)
        ct={"ratio": "100/5", "accuracy_class": "0.5S"},
    )
    problems = errors_of(problems_of(data))
    assert [p.column for p in problems] == ["locations[2].meters[0].accuracy_class"]
    assert "below the minimum" in problems[0].reason


def test_tor_5_1_current_transformer_below_class() -> None:
    data = base()
    data["locations"][2]["meters"][0].update(
        connection="lv-ct", ct={"ratio": "100/5", "accuracy_class": "1"}
    )
    p = only(problems_of(data), "locations[2].meters[0].ct")
    assert p.severity == "error"


def test_tor_4_3_invalid_register() -> None:
    data = base()
    data["locations"][2]["meters"][0]["registers"] = ["1-0:1.8.0", "1.8"]
    p = only(problems_of(data), "locations[2].meters[0].registers[1]")
    assert "OBIS" in p.reason


def test_tor_7_2_1_overlapping_installations_at_one_location() -> None:
    data = base()
    data["locations"][2]["meters"] = [
        _meter("A1", removed=date(2025, 5, 1)),
        _meter("A1B", installed=date(2025, 4, 20)),
    ]
    p = only(problems_of(data), "locations[2].meters[1].installed")
    assert "overlap" in p.reason
    assert "SMART-ME:A1" in p.reason


def test_tor_7_2_1_exchange_without_overlap_is_fine() -> None:
    data = base()
    data["locations"][2]["meters"] = [
        _meter("A1", removed=date(2025, 5, 1)),
        _meter("A1B", installed=date(2025, 5, 1), verified=2025),
    ]
    assert problems_of(data) == []


def test_open_installation_overlaps_every_later_one() -> None:
    data = base()
    data["locations"][2]["meters"] = [
        _meter("A1"),  # never removed
        _meter("A1B", installed=date(2025, 1, 1), removed=date(2025, 2, 1)),
        _meter("A1C", installed=date(2025, 3, 1)),
    ]
    problems = errors_of(problems_of(data))
    assert [p.column for p in problems] == [
        "locations[2].meters[1].installed",
        "locations[2].meters[2].installed",
    ]


def test_meter_removed_before_installed() -> None:
    data = base()
    data["locations"][2]["meters"][0]["removed"] = date(2024, 2, 1)
    p = only(problems_of(data), "locations[2].meters[0].removed")
    assert "before it is installed" in p.reason


def test_one_meter_at_two_places_at_once() -> None:
    data = base()
    data["locations"][3]["meters"][0]["serial"] = "A1"
    p = only(problems_of(data), "locations[3].meters[0].serial")
    assert "two places at once" in p.reason


def test_location_without_meter_is_a_warning() -> None:
    data = base()
    data["locations"][3]["meters"] = []
    problems = problems_of(data)
    assert errors_of(problems) == []
    assert only(problems, "locations[3].meters").severity == "warning"


# --- calibration (TOR-6.1) ---------------------------------------------------------------------


def test_tor_6_1_expired_calibration_is_an_error() -> None:
    data = base()
    data["locations"][2]["meters"][0].update(verified=2016, validity_years=8)  # to 2024-12-31
    p = only(problems_of(data), "locations[2].meters[0].verified")
    assert p.severity == "error"
    assert "expired on 2024-12-31" in p.reason


def test_tor_6_1_calibration_ending_within_six_months_is_a_warning() -> None:
    data = base()
    data["locations"][2]["meters"][0].update(verified=2018, validity_years=8)  # to 2026-12-31
    p = only(problems_of(data), "locations[2].meters[0].verified")
    assert p.severity == "warning"
    assert "2026-12-31" in p.reason
    # seven months before the end: nothing to say yet
    assert problems_of(data, today=date(2026, 5, 31)) == []


def test_tor_6_1_billing_period_after_expiry_is_an_error() -> None:
    data = base()
    data["locations"][2]["meters"][0].update(verified=2018, validity_years=8)  # to 2026-12-31
    p = only(
        problems_of(data, today=date(2026, 3, 1), periods=[(date(2027, 1, 1), date(2027, 1, 31))]),
        "locations[2].meters[0].verified",
    )
    assert p.severity == "error"
    assert "billing period 2027-01-01 to 2027-01-31" in p.reason
    # a period that ends on the last valid day is fine
    ok = problems_of(
        data, today=date(2026, 3, 1), periods=[(date(2026, 12, 1), date(2026, 12, 31))]
    )
    assert ok == []


def test_tor_6_1_meter_removed_before_expiry_is_fine() -> None:
    data = base()
    data["locations"][2]["meters"] = [
        _meter("A1", verified=2016, validity_years=8, removed=date(2025, 1, 1)),
        _meter("A1B", installed=date(2025, 1, 1), verified=2024),
    ]
    assert problems_of(data) == []


def test_tor_6_1_expired_current_transformer() -> None:
    data = base()
    data["locations"][0]["meters"][0].update(
        connection="lv-ct",
        accuracy_class="B",
        ct={"ratio": "200/5", "accuracy_class": "0.5S", "verified": 2008, "validity_years": 16},
    )
    p = only(problems_of(data), "locations[0].meters[0].ct.verified")
    assert p.severity == "error"
    assert "current transformer" in p.reason
    assert "2024-12-31" in p.reason


def test_tor_6_1_incomplete_calibration_is_a_warning() -> None:
    data = base()
    del data["locations"][2]["meters"][0]["validity_years"]
    p = only(problems_of(data), "locations[2].meters[0].validity_years")
    assert p.severity == "warning"


# --- TOR-5.4 series ------------------------------------------------------------------------------


def _second_grid_meter(
    registers: list[str] | None = None, *, upstream_registers: Any = None
) -> Any:
    data = base()
    data["locations"][2]["role"] = "grid"
    if registers is not None:
        data["locations"][2]["meters"][0]["registers"] = registers
    if upstream_registers is not None:
        data["locations"][0]["meters"][0]["registers"] = upstream_registers
    data["units"][0]["meters"] = ["apt-2"]
    data["units"] = data["units"][:1]
    return data


def test_tor_5_4_grid_billing_meters_in_series() -> None:
    data = _second_grid_meter()
    p = only(problems_of(data), "locations[2].upstream")
    assert p.severity == "error"
    assert "'hak' and 'apt-1' are connected in series" in p.reason
    assert "TOR-5.4" in p.reason


def test_tor_5_4_series_further_up_the_wiring() -> None:
    data = _second_grid_meter()
    data["locations"][2]["role"] = "consumer"
    data["locations"][3].update(role="grid", upstream="apt-1")
    data["units"] = [{"id": "top-1", "meters": ["apt-1"]}]
    p = only(problems_of(data), "locations[3].upstream")
    assert "'hak' and 'apt-2'" in p.reason


def test_tor_5_4_separate_active_and_reactive_meters_are_allowed() -> None:
    data = _second_grid_meter(
        ["1-0:3.8.0", "1-0:4.8.0"], upstream_registers=["1-0:1.8.0", "1-0:2.8.0"]
    )
    assert errors_of(problems_of(data)) == []


def test_tor_5_4_one_meter_per_direction_is_allowed() -> None:
    data = _second_grid_meter(["1-0:2.8.0"], upstream_registers=["1-0:1.8.0"])
    assert errors_of(problems_of(data)) == []


def test_tor_5_4_private_sub_meters_are_not_grid_meters() -> None:
    # apartments downstream of the HAK are private sub-meters (role consumer): the base site
    assert errors_of(problems_of(base())) == []


# --- billing ---------------------------------------------------------------------------------


def test_billing_unit_without_meter() -> None:
    data = base()
    data["units"].append({"id": "top-3", "meters": []})
    p = only(problems_of(data), "units[2].meters")
    assert p.severity == "error"
    assert "'top-3' has no meter" in p.reason


def test_meter_billed_to_two_units_is_a_warning() -> None:
    data = base()
    data["units"][1]["meters"] = ["apt-2", "apt-1"]
    p = only(problems_of(data), "units[1].meters[1]")
    assert p.severity == "warning"
    assert "invoiced twice" in p.reason


def test_sm_3_battery_tariff_without_a_production_meter() -> None:
    data = base()
    data["tariffs"].append({"id": "battery", "kind": "battery", "meter": "apt-1", "price": "0.18"})
    p = only(problems_of(data), "tariffs[2].meter")
    assert p.severity == "error"
    assert "not a production meter" in p.reason


def test_sm_3_battery_tariff_on_the_virtual_production_meter() -> None:
    data = base()
    data["locations"].append(
        {"id": "excl", "role": "technical", "upstream": "hak", "meters": [_meter("E1")]}
    )
    data["locations"].append(
        {"id": "incl", "role": "technical", "upstream": "excl", "meters": [_meter("E2")]}
    )
    data["virtual_meters"].append(
        {"id": "production", "formula": "incl - excl", "parent": "hak", "role": "production"}
    )
    data["tariffs"].append(
        {"id": "battery", "kind": "battery", "meter": "production", "price": "0.18"}
    )
    assert problems_of(data) == []


def test_production_nobody_consumes_from() -> None:
    data = base()
    data["units"] = []
    data["contracts"] = []
    problems = problems_of(data)
    p = only(problems, "locations[1].role")
    assert p.severity == "error"
    assert "nobody to consume from it" in p.reason


def test_production_without_local_tariff_is_a_warning() -> None:
    data = base()
    data["locations"].append(
        {"id": "pv2", "role": "production", "upstream": "hak", "meters": [_meter("PV2")]}
    )
    p = only(problems_of(data), "locations[4].role")
    assert p.severity == "warning"
    assert "no local or battery tariff" in p.reason


def test_production_counted_twice_is_a_warning() -> None:
    data = base()
    data["virtual_meters"].append(
        {"id": "all-pv", "formula": "pv.export", "parent": "hak", "role": "production"}
    )
    data["tariffs"].append({"id": "all", "kind": "local", "meter": "all-pv", "price": "0.1"})
    problems = problems_of(data)
    p = only(problems, "virtual_meters[1].formula")
    assert p.severity == "warning"
    assert "counted twice" in p.reason


def test_balance_meter_must_be_the_grid_connection() -> None:
    data = base()
    data["billing"]["balance_meter"] = "apt-1"
    p = only(problems_of(data), "billing.balance_meter")
    assert "role 'consumer'" in p.reason


def test_tariff_problems_of_pricing_are_included() -> None:
    """SM-6: a local tariff needs a grid tariff next to it (reported by lastgang.pricing)."""
    data = base()
    data["tariffs"] = [data["tariffs"][0]]
    reasons = [p.reason for p in errors_of(problems_of(data))]
    assert any("no grid tariff" in r for r in reasons), reasons


# --- site, severities ----------------------------------------------------------------------------


def test_unknown_time_zone_and_currency() -> None:
    data = base()
    data["site"].update(timezone="Europe/Wien", currency="euro")
    problems = problems_of(data)
    assert only(problems, "site.timezone").severity == "error"
    assert only(problems, "site.currency").severity == "error"


def test_every_problem_is_listed_at_once() -> None:
    data = base()
    data["locations"][2]["upstream"] = "nowhere"
    data["virtual_meters"][0]["formula"] = "apt-1 + ghost"
    data["units"].append({"id": "empty"})
    data["locations"][3]["meters"] = []
    problems = problems_of(data)
    assert {p.column for p in errors_of(problems)} == {
        "locations[2].upstream",
        "virtual_meters[0].formula",
        "units[2].meters",
    }
    assert [p.column for p in warnings_of(problems)] == ["locations[3].meters"]


@pytest.mark.parametrize("today", [None, TODAY])
def test_today_defaults_to_the_current_day(today: date | None) -> None:
    assert check_site(Site.model_validate(copy.deepcopy(base())), today=today) == []


def test_a_copy_with_other_locations_finds_its_own_locations() -> None:
    """``Site.location`` keeps a lookup by id; a ``model_copy`` with other locations (as a
    meter exchange in the demo makes) must find its own, not the original's."""
    from pathlib import Path

    from lastgang.concept.load import load_site

    site = load_site(Path(__file__).resolve().parents[2] / "examples/emergency-power/site.toml")
    first = site.locations[0]
    assert site.location(first.id) is first
    renamed = first.model_copy(update={"name": "renamed"})
    copy = site.model_copy(update={"locations": [renamed, *site.locations[1:]]})
    assert copy.location(first.id).name == "renamed"
    assert site.location(first.id) is first
    with pytest.raises(KeyError):
        copy.location("no-such-location")
