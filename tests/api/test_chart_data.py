"""The chart data of the pages comes from lastgang.monitoring, the same view as ``lastgang
chart``: hand-worked quarter hours of the emergency power example (SM-3, SM-4) read through a
store that holds only those profiles."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from lastgang.api.charts_data import monitoring_chart, unit_chart
from lastgang.concept.load import load_site
from lastgang.profiles.types import LoadProfile
from lastgang.quality import Quality
from lastgang.timegrid import day_slots

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "emergency-power" / "site.toml"
WEBTEST = Path(__file__).resolve().parent / "site.toml"
DAY = date(2025, 6, 2)
NAN = float("nan")


class ProfileStore:
    """The one method of a store the charts read: load profiles, missing outside the data."""

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


def _profile(start: int, imp: list[float], exp: list[float]) -> LoadProfile:
    quality = np.array([Quality.MISSING if np.isnan(a) else Quality.L1 for a in imp], dtype=np.int8)
    return LoadProfile(start, np.array(imp), np.array(exp), quality)


def _emergency_power_store() -> ProfileStore:
    """Four quarter hours from local midnight, as the meters REGISTER them (excl-solar and
    incl-solar inverted), the rest of the day without values:

    0: the unit gives 2.0 kWh (incl 2.5, excl 0.5); Top 1 1.2, Top 2 0.8; HAK import 0.5.
    1: the unit draws 0.3 kWh and gives nothing; Top 1 0.5, Top 2 0.5; HAK import 1.3.
    2: as 1, but Top 2 has no value.
    3: the unit gives 3.0 kWh; Top 1 1.0, Top 2 0.5; HAK export 1.5.
    """
    start, _ = day_slots(DAY, "Europe/Vienna")
    zero = [0.0] * 4
    return ProfileStore(
        {
            "hak": _profile(start, [0.5, 1.3, 1.3, 0.0], [0.0, 0.0, 0.0, 1.5]),
            "excl-solar": _profile(start, zero, [0.5, 0.3, 0.3, 0.0]),
            "incl-solar": _profile(start, zero, [2.5, 0.0, 0.0, 3.0]),
            "pv-roof": _profile(start, zero, zero),
            "apt-1": _profile(start, [1.2, 0.5, 0.5, 1.0], zero),
            "apt-2": _profile(start, [0.8, 0.5, NAN, 0.5], [0.0, 0.0, NAN, 0.0]),
            "general": _profile(start, zero, zero),
            "heating": _profile(start, zero, zero),
        }
    )


def test_sm_4_monitoring_chart_of_the_emergency_power_example() -> None:
    site = load_site(EXAMPLE)
    chart = monitoring_chart(_emergency_power_store(), site, "day", DAY)  # type: ignore[arg-type]
    series = {s.kind: s for s in chart.series}
    production = series["production"]
    # the page names the source as the site file does, green for the emergency power unit
    assert production.name == "Production (emergency power unit and PV)"
    assert production.colour == "#2E9E4F"
    # kW = kWh x 4: 2.0 kWh -> 8 kW, 3.0 kWh -> 12 kW
    assert production.values[:4] == pytest.approx([8.0, 0.0, 0.0, 12.0])
    # SM-4: the unit's 0.3 kWh own draw below 0 (1.2 kW); a quarter hour without values stays
    # empty, as the production does
    assert series["own_draw"].values[:4] == pytest.approx([0.0, -1.2, -1.2, 0.0])
    assert series["own_draw"].values[4] is None and production.values[4] is None
    # quarter hour 2 and the 92 without values are left out of the totals
    totals = chart.totals
    assert totals["missing_slots"] == 93
    assert totals["production_kwh"] == pytest.approx(5.0)
    assert totals["consumption_kwh"] == pytest.approx(2.0 + 1.0 + 1.5)
    assert totals["unit_own_draw_kwh"] == pytest.approx(0.3)
    # SM-5 with the balance meter: 2.0 in quarter hour 0, 3.0 - 1.5 HAK export in 3
    assert totals["self_consumed_kwh"] == pytest.approx(3.5)
    assert totals["self_consumption_ratio"] == pytest.approx(3.5 / 5.0)


def test_sm_5_unit_chart_of_the_emergency_power_example() -> None:
    site = load_site(EXAMPLE)
    chart = unit_chart(_emergency_power_store(), site, "top-1", "day", DAY)  # type: ignore[arg-type]
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
    power unit, so the chart shows no own draw (as ``lastgang chart`` does)."""
    site = load_site(WEBTEST)
    start, _ = day_slots(DAY, "Europe/Vienna")
    n = 96
    store = ProfileStore(
        {
            "hak": _profile(start, [0.3] * n, [0.0] * n),
            "pv": _profile(start, [0.002] * n, [0.0] * n),
            "top1": _profile(start, [0.2] * n, [0.0] * n),
            "top2": _profile(start, [0.1] * n, [0.0] * n),
        }
    )
    chart = monitoring_chart(store, site, "day", DAY)  # type: ignore[arg-type]
    assert "own_draw" not in {s.kind for s in chart.series}
    assert chart.totals["unit_own_draw_kwh"] == 0.0
    assert chart.totals["consumption_kwh"] == pytest.approx(96 * 0.3)
