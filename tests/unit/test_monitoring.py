"""The monitoring view (SM-4) from a concept evaluation and an allocation, with hand-worked
quarter hours of the emergency power example (SM-3); the web app's chart data shows the same
view."""

from collections.abc import Sequence
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from lastgang.api.charts_data import monitoring_chart, unit_chart
from lastgang.concept.evaluate import evaluate_concept
from lastgang.concept.load import load_site, parse_site
from lastgang.errors import InvalidInput
from lastgang.monitoring import (
    grid_meter,
    monitoring_data,
    monitoring_sources,
    site_allocation,
    site_monitoring,
    source_name,
)
from lastgang.profiles.types import LoadProfile
from lastgang.quality import Quality
from lastgang.report.charts import ratios
from lastgang.timegrid import day_slots

EXAMPLE = Path(__file__).parents[2] / "examples" / "emergency-power" / "site.toml"
WEBTEST = Path(__file__).parents[2] / "tests" / "api" / "site.toml"
NAN = float("nan")


def _profile(start: int, imp: list[float], exp: list[float]) -> LoadProfile:
    quality = np.array([Quality.MISSING if np.isnan(a) else Quality.L1 for a in imp], dtype=np.int8)
    return LoadProfile(start, np.array(imp), np.array(exp), quality)


def _four_quarter_hours() -> tuple[int, dict[str, LoadProfile]]:
    """Four quarter hours as the meters REGISTER them (excl-solar and incl-solar inverted).

    0: the unit and its PV give 2.0 kWh: incl 2.5 in, excl 0.5 in (registered as export);
       Top 1 1.2, Top 2 0.8 (general, heating 0); HAK import 0.5.
    1: the unit draws 0.3 kWh from the grid and gives nothing: excl 0.3 in, incl 0;
       Top 1 0.5, Top 2 0.5; HAK import 1.3.
    2: Top 2 has no value (missing); the rest as in 1.
    3: production 3.0 (incl 3.0, excl 0), Top 1 1.0, Top 2 0.5; HAK export 1.5.
    """
    start, _ = day_slots(date(2025, 6, 2), "Europe/Vienna")
    zero = [0.0] * 4
    profiles = {
        "hak": _profile(start, [0.5, 1.3, 1.3, 0.0], [0.0, 0.0, 0.0, 1.5]),
        # inverted: physical import registered as export
        "excl-solar": _profile(start, zero, [0.5, 0.3, 0.3, 0.0]),
        "incl-solar": _profile(start, zero, [2.5, 0.0, 0.0, 3.0]),
        "pv-roof": _profile(start, zero, zero),
        "apt-1": _profile(start, [1.2, 0.5, 0.5, 1.0], zero),
        "apt-2": _profile(start, [0.8, 0.5, NAN, 0.5], [0.0, 0.0, NAN, 0.0]),
        "general": _profile(start, zero, zero),
        "heating": _profile(start, zero, zero),
    }
    return start, profiles


def test_sm_4_monitoring_of_the_emergency_power_example() -> None:
    site = load_site(EXAMPLE)
    start, profiles = _four_quarter_hours()
    data = site_monitoring(site, profiles, start, start + 4)

    assert list(data.production) == ["Emergency power unit and PV"]
    production = data.production["Emergency power unit and PV"]
    np.testing.assert_allclose(production, [2.0, 0.0, 0.0, 3.0])
    # SM-4: the unit's own draw is the negative part of incl - excl, shown below 0
    np.testing.assert_allclose(data.unit_own_draw, [0.0, 0.3, 0.3, 0.0])
    assert list(data.consumption) == ["Top 1", "Top 2", "General areas", "Heating"]
    np.testing.assert_allclose(data.consumption["Top 1"], [1.2, 0.5, 0.5, 1.0])
    np.testing.assert_allclose(data.consumption["Top 2"], [0.8, 0.5, NAN, 0.5])
    np.testing.assert_allclose(data.grid_import, [0.5, 1.3, 1.3, 0.0])
    np.testing.assert_allclose(data.grid_export, [0.0, 0.0, 0.0, 1.5])
    # SM-5 with the balance meter: available = production - HAK export, capped by consumption
    # 0: min(2.0, 2.0) = 2.0; 1: nothing produced; 2: a consumer is missing; 3: 3.0 - 1.5 = 1.5
    np.testing.assert_allclose(data.self_consumed, [2.0, 0.0, NAN, 1.5])

    r = ratios(data)  # quarter hour 2 is left out
    assert r["missing_slots"] == 1
    assert r["production_kwh"] == pytest.approx(5.0)
    assert r["consumption_kwh"] == pytest.approx(2.0 + 1.0 + 1.5)
    assert r["self_consumed_kwh"] == pytest.approx(3.5)
    assert r["self_consumption_ratio"] == pytest.approx(3.5 / 5.0)
    assert r["self_sufficiency_ratio"] == pytest.approx(3.5 / 4.5)


def test_monitoring_refuses_an_allocation_of_other_slots() -> None:
    site = load_site(EXAMPLE)
    start, profiles = _four_quarter_hours()
    concept = evaluate_concept(site, profiles, start, start + 4)
    other = evaluate_concept(site, profiles, start, start + 3)
    with pytest.raises(InvalidInput, match="same period"):
        monitoring_data(site, concept, site_allocation(site, other))


def test_sources_and_grid_meter_of_the_examples() -> None:
    examples = EXAMPLE.parents[1]
    assert monitoring_sources(load_site(EXAMPLE)) == ("production",)
    assert grid_meter(load_site(EXAMPLE)) == "hak"
    assert monitoring_sources(load_site(examples / "pv-battery" / "site.toml")) == (
        "pv",
        "battery",
    )
    community = load_site(examples / "energy-community" / "site.toml")
    assert grid_meter(community) is None
    assert set(monitoring_sources(community)) == {"hofer-pv", "gemeinde-pv", "lang-pv"}


def test_source_names_drop_the_word_the_legend_adds() -> None:
    assert source_name("Production (emergency power unit and PV)") == (
        "Emergency power unit and PV"
    )
    assert source_name("PV roof") == "PV roof"
    assert source_name("Production ()") == "Production ()"


MONITORING_ONLY = """
[site]
id = "watch"
name = "PV on a shed, no billing"
timezone = "Europe/Vienna"

[[locations]]
id = "hak"
name = "Grid connection"
role = "grid"

[locations.metering_points]
import = "AT0010000012000000000000000000001"
export = "AT0010000012000000000000000000002"

[[locations]]
id = "pv"
name = "PV shed"
role = "production"
upstream = "hak"
metering_points = { export = "AT0010000012000000000000000000003" }
"""


def test_sm_4_monitoring_of_a_site_without_units_or_billed_sources() -> None:
    """Nothing to allocate: the production meter is shown (no tariff bills it), nothing is
    self-consumed, and the chart covers the period all the same."""
    site = parse_site(MONITORING_ONLY)
    start, _ = day_slots(date(2025, 6, 2), "Europe/Vienna")
    profiles = {
        "hak": _profile(start, [0.0, 0.0], [0.4, 0.1]),
        "pv": _profile(start, [0.0, 0.0], [0.4, 0.1]),
    }
    data = site_monitoring(site, profiles, start, start + 2)
    assert list(data.production) == ["PV shed"]
    np.testing.assert_allclose(data.production["PV shed"], [0.4, 0.1])
    assert data.consumption == {}
    np.testing.assert_allclose(data.grid_export, [0.4, 0.1])
    np.testing.assert_allclose(data.self_consumed, [0.0, 0.0])


class ProfileStore:
    """The one method of a store the web charts read: load profiles, missing outside the
    data."""

    def __init__(self, profiles: dict[str, LoadProfile]) -> None:
        self.profiles = profiles

    def load_profiles(
        self, site_id: str, location_ids: Sequence[str], start: int, stop: int
    ) -> dict[str, LoadProfile]:
        empty = LoadProfile.empty(start, stop)
        return {
            i: self.profiles[i].window(start, stop) if i in self.profiles else empty
            for i in location_ids
        }


def test_sm_4_web_monitoring_chart_of_the_emergency_power_example() -> None:
    """The four quarter hours from local midnight, the rest of the day without values."""
    site = load_site(EXAMPLE)
    store = ProfileStore(_four_quarter_hours()[1])
    chart = monitoring_chart(store, site, "day", date(2025, 6, 2))  # type: ignore[arg-type]
    series = {s.kind: s for s in chart.series}
    production = series["production"]
    # the page names the source as the site file does, green for the emergency power unit
    assert production.name == "Production (emergency power unit and PV)"
    assert production.colour == "#2E9E4F"
    # kW = kWh x 4: 2.0 kWh -> 8 kW, 3.0 kWh -> 12 kW
    assert production.values[:4] == pytest.approx([8.0, 0.0, 0.0, 12.0])
    # the unit's 0.3 kWh own draw below 0 (1.2 kW); a quarter hour without values stays empty,
    # as the production does
    assert series["own_draw"].values[:4] == pytest.approx([0.0, -1.2, -1.2, 0.0])
    assert series["own_draw"].values[4] is None and production.values[4] is None
    # quarter hour 2 and the 92 without values are left out of the totals
    totals = chart.totals
    assert totals["missing_slots"] == 93
    assert totals["production_kwh"] == pytest.approx(5.0)
    assert totals["consumption_kwh"] == pytest.approx(2.0 + 1.0 + 1.5)
    assert totals["unit_own_draw_kwh"] == pytest.approx(0.3)
    assert totals["self_consumed_kwh"] == pytest.approx(3.5)
    assert totals["self_consumption_ratio"] == pytest.approx(3.5 / 5.0)


def test_sm_5_web_unit_chart_of_the_emergency_power_example() -> None:
    site = load_site(EXAMPLE)
    store = ProfileStore(_four_quarter_hours()[1])
    chart = unit_chart(store, site, "top-1", "day", date(2025, 6, 2))  # type: ignore[arg-type]
    series = {s.kind: s.values for s in chart.series}
    # 0: 2.0 kWh for 2.0 kWh of consumption, all local; 1, 2: nothing produced;
    # 3: 3.0 kWh - 1.5 kWh HAK export for 1.5 kWh of consumption, all local
    assert series["local"][:4] == pytest.approx([1.2 * 4, 0.0, 0.0, 1.0 * 4])
    assert series["grid"][:4] == pytest.approx([0.0, 0.5 * 4, 0.5 * 4, 0.0])
    assert chart.totals == pytest.approx(
        {"consumption_kwh": 3.2, "local_kwh": 2.2, "grid_kwh": 1.0}
    )


def test_sm_4_a_pv_inverters_standby_is_no_own_draw_of_an_emergency_power_unit() -> None:
    """PV roof with 0.002 kWh of standby import per quarter hour: the site has no emergency
    power unit, so the web chart shows no own draw (as ``lastgang chart`` does)."""
    site = load_site(WEBTEST)
    start, _ = day_slots(date(2025, 6, 2), "Europe/Vienna")
    n = 96
    store = ProfileStore(
        {
            "hak": _profile(start, [0.3] * n, [0.0] * n),
            "pv": _profile(start, [0.002] * n, [0.0] * n),
            "top1": _profile(start, [0.2] * n, [0.0] * n),
            "top2": _profile(start, [0.1] * n, [0.0] * n),
        }
    )
    chart = monitoring_chart(store, site, "day", date(2025, 6, 2))  # type: ignore[arg-type]
    assert "own_draw" not in {s.kind for s in chart.series}
    assert chart.totals["unit_own_draw_kwh"] == 0.0
    assert chart.totals["consumption_kwh"] == pytest.approx(96 * 0.3)
