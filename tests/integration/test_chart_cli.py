"""``lastgang chart``: the monitoring graphic from the store, as PNG and as offline HTML; its
totals against the physical truth of the demo data (SM-3, SM-4)."""

import json
import re
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from lastgang import services
from lastgang.cli import app
from lastgang.cli import commands as _commands  # noqa: F401  (registers the commands)
from lastgang.cli.chart import auto_view
from lastgang.concept.load import load_site
from lastgang.demo import GeneratedData, generate_site_period
from lastgang.store import open_store
from lastgang.timegrid import period_slots

EXAMPLE = Path(__file__).parents[2] / "examples" / "emergency-power" / "site.toml"
FIRST, LAST = date(2025, 6, 13), date(2025, 6, 15)
PNG = b"\x89PNG\r\n\x1a\n"

runner = CliRunner()


@pytest.fixture(scope="module")
def store_with_data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, GeneratedData]:
    """Three June days of demo data for the emergency power example, imported into a store."""
    root = tmp_path_factory.mktemp("chart")
    site = load_site(EXAMPLE)
    start, stop = period_slots(FIRST, LAST, site.site.timezone)
    data = generate_site_period(site, start, stop, root / "data", seed=3)
    db = root / "lastgang.duckdb"
    store = open_store(db)
    try:
        services.apply_site(store, data.site_file)
        services.import_files(store, site.site.id, [f for f in data.files if f.suffix == ".csv"])
    finally:
        store.close()
    return db, data


def _chart(db: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["chart", "--site", "emergency-power", "--db", str(db), *args])
    return result.exit_code, result.output


def test_chart_png_day_view(store_with_data: tuple[Path, GeneratedData], tmp_path: Path) -> None:
    db, _ = store_with_data
    out = tmp_path / "day.png"
    code, output = _chart(db, "--from", "2025-06-14", "--to", "2025-06-14", "--out", str(out))
    assert code == 0, output
    assert out.read_bytes().startswith(PNG)
    assert "day view" in output and "self-sufficiency" in output


def test_chart_html_works_offline(
    store_with_data: tuple[Path, GeneratedData], tmp_path: Path
) -> None:
    db, _ = store_with_data
    out = tmp_path / "monitoring.html"
    code, output = _chart(
        db, "--from", FIRST.isoformat(), "--to", LAST.isoformat(), "--out", str(out)
    )
    assert code == 0, output
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert "Plotly" in page  # the library is inlined
    # nothing is loaded from elsewhere: no script or stylesheet with an address
    assert not re.search(r"<script[^>]*\ssrc=|<link[^>]*\shref=", page)


def test_sm_4_chart_totals_equal_the_physical_truth(
    store_with_data: tuple[Path, GeneratedData], tmp_path: Path
) -> None:
    db, truth = store_with_data
    code, output = _chart(
        db,
        "--from",
        FIRST.isoformat(),
        "--to",
        LAST.isoformat(),
        "--out",
        str(tmp_path / "week.png"),
        "--json",
    )
    assert code == 0, output
    shown = json.loads(output)
    assert shown["view"] == "week" and shown["format"] == "png" and shown["missing_slots"] == 0
    # production = positive part of incl. solar - excl. solar per quarter hour (SM-3); the
    # unit's own draw is the negative part (SM-4)
    produced = np.clip(truth.production_kwh, 0.0, None).sum()
    drawn = np.clip(-truth.production_kwh, 0.0, None).sum()
    used = sum(truth.flows[f"consumption:{loc}"].sum() for loc in ("apt-1", "apt-2"))
    used += truth.flows["consumption:general"].sum() + truth.flows["consumption:heating"].sum()
    assert shown["production_kwh"] == pytest.approx(produced, abs=0.05)
    assert shown["unit_own_draw_kwh"] == pytest.approx(drawn, abs=0.05)
    assert shown["consumption_kwh"] == pytest.approx(used, abs=0.05)
    assert shown["grid_import_kwh"] == pytest.approx(truth.import_kwh["hak"].sum(), abs=0.05)
    assert shown["grid_export_kwh"] == pytest.approx(truth.export_kwh["hak"].sum(), abs=0.05)
    # the ratios are what their names say
    assert shown["self_consumption_ratio"] == pytest.approx(
        shown["self_consumed_kwh"] / shown["production_kwh"]
    )
    assert shown["self_sufficiency_ratio"] == pytest.approx(
        shown["self_consumed_kwh"] / shown["consumption_kwh"]
    )
    # self-consumed never exceeds what was produced minus what left the building
    assert shown["self_consumed_kwh"] <= produced - shown["grid_export_kwh"] + 0.05


def test_chart_errors_say_what_to_do(
    store_with_data: tuple[Path, GeneratedData], tmp_path: Path
) -> None:
    db, _ = store_with_data
    period = ["--from", "2025-06-14", "--to", "2025-06-14"]
    code, output = _chart(db, *period, "--out", str(tmp_path / "chart.pdf"))
    assert code == 1 and ".png" in output and ".html" in output
    code, output = _chart(db, *period, "--out", str(tmp_path / "c.png"), "--view", "hour")
    assert code == 1 and "day, week, month, year" in output
    code, output = _chart(
        db, "--from", "2025-06-15", "--to", "2025-06-14", "--out", str(tmp_path / "c.png")
    )
    assert code == 1 and "ends before it starts" in output
    result = runner.invoke(
        app,
        ["chart", "--site", "nowhere", "--db", str(db), *period, "--out", str(tmp_path / "c.png")],
    )
    assert result.exit_code == 2
    assert "lastgang site apply" in result.output
    assert not (tmp_path / "c.png").exists()


def test_auto_view_by_length() -> None:
    assert auto_view(date(2025, 6, 14), date(2025, 6, 14)) == "day"
    assert auto_view(date(2025, 6, 9), date(2025, 6, 15)) == "week"
    assert auto_view(date(2025, 6, 1), date(2025, 6, 30)) == "month"
    assert auto_view(date(2025, 1, 1), date(2025, 12, 31)) == "year"
