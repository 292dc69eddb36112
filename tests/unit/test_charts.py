"""Monitoring charts (SM-4): ratios by hand, periods in legal time, PNG and offline HTML."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from lastgang.errors import InvalidInput
from lastgang.report.charts import (
    MonitoringData,
    _bars,
    _ticks,
    ratios,
    render_html,
    render_png,
    view_bounds,
)
from lastgang.timegrid import day_slots, period_slots

TZ = "Europe/Vienna"


def _tiny() -> MonitoringData:
    """Four quarter hours worked by hand.

    production: PV 1, 2, 0, 0 and unit 0, 1, 0, 0 -> 4 kWh
    consumption: Top 1 1, 1, 1, 1 and Top 2 0, 1, 1, 0 -> 6 kWh
    self-consumed 1, 2, 0, 0 -> 3 kWh; export 0, 1, 0, 0; import 0, 0, 2, 1; own draw 0.5
    """
    start, _ = day_slots(date(2025, 6, 2), TZ)
    a = np.array
    return MonitoringData(
        start=start,
        stop=start + 4,
        tz=TZ,
        production={"PV roof": a([1.0, 2, 0, 0]), "Emergency power unit": a([0.0, 1, 0, 0])},
        consumption={"Top 1": a([1.0, 1, 1, 1]), "Top 2": a([0.0, 1, 1, 0])},
        grid_import=a([0.0, 0, 2, 1]),
        grid_export=a([0.0, 1, 0, 0]),
        self_consumed=a([1.0, 2, 0, 0]),
        unit_own_draw=a([0.0, 0, 0, 0.5]),
    )


def _synthetic(start: int, stop: int) -> MonitoringData:
    """Smooth made-up data: a PV bell each day, a flat-ish consumption."""
    n = stop - start
    slots = np.arange(start, stop)
    hour = (slots % 96) / 4.0
    pv = np.clip(np.sin((hour - 5) / 14 * np.pi), 0, None) * 1.5
    unit = np.clip(np.sin((hour - 7) / 10 * np.pi), 0, None) * 0.8
    use = 0.4 + 0.2 * np.cos(hour / 24 * 2 * np.pi) ** 2
    produced = pv + unit
    local = np.minimum(produced, use)
    own = np.where(produced == 0, 0.01, 0.0)
    return MonitoringData(
        start=start,
        stop=stop,
        tz=TZ,
        production={"PV roof": pv, "Emergency power unit (battery and PV)": unit},
        consumption={"Top 1": use * 0.6, "Top 2": use * 0.4},
        grid_import=np.maximum(use - produced, 0) + own,
        grid_export=np.maximum(produced - use, 0),
        self_consumed=local,
        unit_own_draw=own + np.zeros(n),
    )


def test_sm4_ratios_of_a_hand_computed_example() -> None:
    r = ratios(_tiny())
    assert r["production_kwh"] == pytest.approx(4.0)
    assert r["consumption_kwh"] == pytest.approx(6.0)
    assert r["self_consumed_kwh"] == pytest.approx(3.0)
    assert r["grid_import_kwh"] == pytest.approx(3.0)
    assert r["grid_export_kwh"] == pytest.approx(1.0)
    assert r["unit_own_draw_kwh"] == pytest.approx(0.5)
    assert r["self_consumption_ratio"] == pytest.approx(3 / 4)
    assert r["self_sufficiency_ratio"] == pytest.approx(3 / 6)
    assert r["missing_slots"] == 0


def test_ratios_without_production_are_none_and_missing_slots_left_out() -> None:
    data = _tiny()
    none = MonitoringData(
        data.start,
        data.stop,
        TZ,
        {"PV": np.zeros(4)},
        data.consumption,
        data.grid_import,
        data.grid_export,
        np.zeros(4),
    )
    r = ratios(none)
    assert r["self_consumption_ratio"] is None
    assert r["self_sufficiency_ratio"] == 0.0
    gap = data.consumption["Top 1"].copy()
    gap[3] = np.nan  # the last quarter hour has no value: left out of every sum
    holed = MonitoringData(
        data.start,
        data.stop,
        TZ,
        data.production,
        {"Top 1": gap, "Top 2": data.consumption["Top 2"]},
        data.grid_import,
        data.grid_export,
        data.self_consumed,
        data.unit_own_draw,
    )
    r = ratios(holed)
    assert r["missing_slots"] == 1
    assert r["consumption_kwh"] == pytest.approx(5.0)
    assert r["grid_import_kwh"] == pytest.approx(2.0)
    assert r["self_sufficiency_ratio"] == pytest.approx(3 / 5)


def test_monitoring_data_needs_one_value_per_slot() -> None:
    data = _tiny()
    with pytest.raises(InvalidInput, match="grid_export"):
        MonitoringData(
            data.start,
            data.stop,
            TZ,
            data.production,
            data.consumption,
            data.grid_import,
            np.zeros(3),
            data.self_consumed,
        )


def test_tor_4_2_view_bounds_are_local_calendar_periods() -> None:
    spring = view_bounds("day", date(2025, 3, 30), TZ)
    assert spring[1] - spring[0] == 92
    week = view_bounds("week", date(2025, 6, 4), TZ)  # a Wednesday: Mon 2 .. Sun 8 June
    assert week == period_slots(date(2025, 6, 2), date(2025, 6, 8), TZ)
    month = view_bounds("month", date(2025, 2, 14), TZ)
    assert month[1] - month[0] == 28 * 96
    year = view_bounds("year", date(2025, 7, 1), TZ)
    assert year[1] - year[0] == 365 * 96


def test_bars_sum_the_slots_into_local_periods() -> None:
    start, stop = period_slots(date(2025, 10, 20), date(2025, 10, 26), TZ)  # autumn change
    data = _synthetic(start, stop)
    day = _bars(data.window(*day_slots(date(2025, 10, 26), TZ)), "day")
    assert day.n == 100  # the repeated hour has its own four quarter hours
    assert day.scale == 4.0 and day.unit == "kW"
    week = _bars(data, "week")
    assert week.n == 7 * 24 + 1
    month = _bars(data, "month")
    assert month.n == 7
    total = data.total_consumption.sum()
    for bars in (week, month, _bars(data, "year")):
        assert bars.total_consumption.sum() == pytest.approx(total)
        assert sum(v.sum() for v in bars.production.values()) == pytest.approx(
            data.total_production.sum()
        )


def test_tor_4_2_day_axis_is_legal_time_with_period_end_marks() -> None:
    def marks(day: date) -> list[str]:
        start, stop = day_slots(day, TZ)
        zero = np.zeros(stop - start)
        data = MonitoringData(start, stop, TZ, {"PV": zero}, {"Top 1": zero}, zero, zero, zero)
        return _ticks(_bars(data, "day"), TZ)[1]

    spring = marks(date(2025, 3, 30))
    assert spring[:3] == ["00:00", "03:00", "04:00"]  # 02:00 does not exist that night
    assert spring[-1] == "24:00"  # the last quarter hour of a day ends at 24:00
    autumn = marks(date(2025, 10, 26))
    assert autumn[:3] == ["00:00", "02:00+02:00", "02:00+01:00"]  # the repeated hour
    assert marks(date(2025, 6, 1))[1] == "02:00"


@pytest.mark.parametrize("view", ["day", "week", "month", "year"])
def test_sm4_render_png_writes_a_picture(view: str, tmp_path: Path) -> None:
    start, stop = period_slots(date(2025, 3, 24), date(2025, 3, 30), TZ)  # spring change
    data = _synthetic(start, stop)
    if view == "day":
        data = data.window(*day_slots(date(2025, 3, 30), TZ))
    path = render_png(data, tmp_path / f"{view}.png", title="Lindengasse 12", resolution=view)
    content = path.read_bytes()
    assert content[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(content) > 20_000


def test_render_png_refuses_an_unknown_resolution(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="resolution"):
        render_png(_tiny(), tmp_path / "x.png", title="x", resolution="fortnight")


def test_sm4_render_html_works_offline_with_all_views(tmp_path: Path) -> None:
    start, stop = period_slots(date(2025, 5, 26), date(2025, 6, 8), TZ)
    data = _synthetic(start, stop)
    path = render_html(data, tmp_path / "monitoring.html", title="Lindengasse 12")
    text = path.read_text(encoding="utf-8")
    assert len(text) > 1_000_000  # plotly.js is inlined
    assert not re.search(r"<script[^>]*\bsrc\s*=\s*[\"']?https?://", text, re.IGNORECASE)
    assert not re.search(r"<link[^>]*\bhref\s*=\s*[\"']?https?://", text, re.IGNORECASE)
    for view in ("day", "week", "month", "year"):
        assert f'<section id="{view}">' in text
    assert "Self-consumption ratio" in text and "Self-sufficiency ratio" in text
    assert text.count("Plotly.newPlot") == 4


def test_demo_truth_renders(tmp_path: Path) -> None:
    """The generator's truth is valid monitoring data (used by the demo)."""
    from lastgang.concept.load import load_site
    from lastgang.demo import generate_site_period, monitoring_data

    example = Path(__file__).resolve().parents[2] / "examples" / "emergency-power" / "site.toml"
    start, stop = day_slots(date(2025, 6, 14), TZ)
    truth = generate_site_period(load_site(example), start, stop, tmp_path / "data", seed=2)
    data = monitoring_data(truth)
    r = ratios(data)
    assert r["production_kwh"] == pytest.approx(truth.production_kwh.sum() + r["unit_own_draw_kwh"])
    assert 0 < (r["self_consumption_ratio"] or 0) <= 1
    assert 0 < (r["self_sufficiency_ratio"] or 0) <= 1
    assert render_png(data, tmp_path / "day.png", title="Demo", resolution="day").exists()
