"""The shipped examples pass ``lastgang check``; the command reports problems with their place."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import lastgang.cli.commands  # noqa: F401  (registers the commands)
from lastgang.cli import app
from lastgang.cli.concept import line_of, toml_lines
from lastgang.concept.evaluate import evaluate_concept
from lastgang.concept.load import load_site
from lastgang.concept.model import Orientation, Role
from lastgang.concept.validate import check_site
from lastgang.ids import is_metering_point_id
from lastgang.profiles.types import LoadProfile
from lastgang.quality import Quality
from lastgang.timegrid import to_epoch

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
NAMES = ["emergency-power", "pv-balance", "pv-battery", "heat-pump-ev", "energy-community"]
runner = CliRunner()
WIDE = {"COLUMNS": "200", "NO_COLOR": "1"}


def test_every_example_folder_is_listed() -> None:
    assert sorted(p.name for p in EXAMPLES.iterdir() if p.is_dir()) == sorted(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_example_passes_check(name: str) -> None:
    site = load_site(EXAMPLES / name / "site.toml")
    for today in (None, date(2026, 11, 22), date(2031, 6, 1)):
        assert check_site(site, today=today) == [], today


@pytest.mark.parametrize("name", NAMES)
def test_example_passes_the_check_command(name: str) -> None:
    result = runner.invoke(app, ["check", str(EXAMPLES / name / "site.toml")], env=WIDE)
    assert result.exit_code == 0, result.output
    assert "ok: 0 error(s), 0 warning(s)" in result.output


@pytest.mark.parametrize("name", NAMES)
def test_example_readme_has_a_wiring_diagram(name: str) -> None:
    readme = (EXAMPLES / name / "README.md").read_text(encoding="utf-8")
    assert "```mermaid" in readme
    assert f"lastgang check examples/{name}/site.toml" in readme


def test_sm_3_example_has_the_emergency_power_concept() -> None:
    site = load_site(EXAMPLES / "emergency-power" / "site.toml")
    assert site.location("excl-solar").meters[0].orientation is Orientation.INVERTED
    assert site.location("incl-solar").meters[0].orientation is Orientation.INVERTED
    production = site.virtual_meter("production")
    assert production.formula == "incl-solar - excl-solar"
    assert [t.meter for t in site.tariffs if t.kind == "battery"] == ["production"]
    kinds = sorted(u.kind.value for u in site.units)
    assert kinds == ["apartment", "apartment", "general", "heating"]


def test_sm_3_example_evaluated_by_hand() -> None:
    """One sunny quarter hour and one standby quarter hour in the shipped example.

    Sun: the unit takes 0.5 kWh from the grid (excl. solar, inverted, registers it as export)
    and delivers 2.5 kWh to the building (incl. solar, inverted, export 2.5):
    Production = 2.5 - 0.5 = 2.0 kWh export. Standby: 1.25 kWh in, 1.2 kWh out: Production =
    -0.05 kWh, booked as import (the unit's own draw).
    """
    site = load_site(EXAMPLES / "emergency-power" / "site.toml")
    start = to_epoch(datetime(2025, 7, 1, 10, tzinfo=UTC)) // 900
    l1 = np.full(2, Quality.L1, dtype=np.int8)
    profiles = {
        "excl-solar": LoadProfile(start, np.array([0.0, 0.0]), np.array([0.5, 1.25]), l1),
        "incl-solar": LoadProfile(start, np.array([0.0, 0.0]), np.array([2.5, 1.2]), l1),
    }
    result = evaluate_concept(site, profiles, start, start + 2)
    m = result.index("production")
    np.testing.assert_allclose(result.export_kwh[m], [2.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(result.import_kwh[m], [0.0, 0.05], atol=1e-12)
    assert result.role("production") is Role.PRODUCTION


def test_tor_4_1_energy_community_ids_are_valid_and_distinct() -> None:
    site = load_site(EXAMPLES / "energy-community" / "site.toml")
    ids = [
        mp
        for loc in site.locations
        for mp in (loc.metering_points.import_, loc.metering_points.export)
        if mp is not None
    ]
    assert len(ids) >= 8 and len(set(ids)) == len(ids)
    assert all(len(mp) == 33 and mp.startswith("AT") and is_metering_point_id(mp) for mp in ids)
    postal_codes = {mp[8:13] for mp in ids}
    assert len(postal_codes) >= 3  # members at different places
    roles = {loc.role for loc in site.locations} | {vm.role for vm in site.virtual_meters}
    assert Role.PRODUCTION in roles and Role.CONSUMER in roles
    assert Role.GRID not in roles


# --- the command with problems ------------------------------------------------------------


BROKEN = """\
[site]
id = "broken"

[[locations]]
id = "hak"
role = "grid"
metering_points = { import = "AT0081000801000000000000005260181" }

[[locations.meters]]
manufacturer = "LGZ"
serial = "1"
installed = 2024-01-01

[[locations]]
id = "apt-1"
role = "consumer"
upstream = "hak-x"

[[locations.meters]]
manufacturer = "LGZ"
serial = "2"
installed = 2024-01-01
verified = 2019
validity_years = 8

[[virtual_meters]]
id = "v"
formula = "apt-1 + nothing"
parent = "hak"
role = "consumer"

[[units]]
id = "top-1"
meters = ["apt-1"]

[billing]
owner = "Owner"
"""


def test_check_command_lists_errors_with_line_and_path(tmp_path: Path) -> None:
    path = tmp_path / "site.toml"
    path.write_text(BROKEN, encoding="utf-8")
    result = runner.invoke(app, ["check", str(path), "--json", "--today", "2026-01-15"], env=WIDE)
    assert result.exit_code == 1, result.output
    problems = json.loads(result.output)
    by_column = {p["column"]: p for p in problems}
    assert by_column["locations[1].upstream"]["line"] == 17
    assert by_column["locations[1].upstream"]["severity"] == "error"
    assert by_column["virtual_meters[0].formula"]["line"] == 28
    assert "unknown meter 'nothing'" in by_column["virtual_meters[0].formula"]["message"]
    # calibration of apt-1 ends 2027-12-31: no problem on 2026-01-15 ...
    assert "locations[1].meters[0].verified" not in by_column
    assert all(p["file"] == str(path) for p in problems)


def test_check_command_exits_0_with_warnings_only(tmp_path: Path) -> None:
    fixed = BROKEN.replace('"hak-x"', '"hak"').replace(" + nothing", "")
    path = tmp_path / "site.toml"
    path.write_text(fixed, encoding="utf-8")
    # ... but on 2027-09-01 it ends within six months: a warning
    result = runner.invoke(app, ["check", str(path), "--today", "2027-09-01"], env=WIDE)
    assert result.exit_code == 0, result.output
    assert "warning" in result.output
    assert "0 error(s), 1 warning(s)" in result.output
    # and a billing period in 2028 makes it an error
    result = runner.invoke(
        app,
        ["check", str(path), "--today", "2027-09-01", "--period", "2028-01-01:2028-01-31"],
        env=WIDE,
    )
    assert result.exit_code == 1, result.output
    assert "1 error(s), 0 warning(s)" in result.output


def test_check_command_reports_load_errors(tmp_path: Path) -> None:
    path = tmp_path / "site.toml"
    path.write_text(BROKEN.replace('role = "consumer"\nupstream', 'rol = "consumer"\nupstream'))
    result = runner.invoke(app, ["check", str(path), "--json"], env=WIDE)
    assert result.exit_code == 1
    problems = json.loads(result.output)
    assert any(p["column"] and p["column"].startswith("locations[1]") for p in problems)


def test_check_command_missing_file(tmp_path: Path) -> None:
    result = runner.invoke(app, ["check", str(tmp_path / "nope.toml")], env=WIDE)
    assert result.exit_code == 1
    assert "no such file" in result.output


def test_toml_lines_follow_arrays_of_tables() -> None:
    lines = toml_lines(BROKEN)
    assert lines["locations[0]"] == 4
    assert lines["locations[0].metering_points"] == 7
    assert lines["locations[1].meters[0]"] == 19
    assert lines["locations[1].meters[0].verified"] == 23
    assert lines["units[0].meters"] == 34
    assert lines["billing.owner"] == 37
    assert line_of(lines, "locations[1].meters[0].ct") == 19
    assert line_of(lines, "locations[0].metering_points.import") == 7
    assert line_of(lines, None) is None


@pytest.mark.parametrize("name", NAMES)
def test_concept_guide_shows_each_example_diagram(name: str) -> None:
    """docs/concepts.md carries each example's wiring diagram exactly as its README does."""
    readme = (EXAMPLES / name / "README.md").read_text(encoding="utf-8")
    block = readme[readme.index("```mermaid") :]
    block = block[: block.index("```\n", 3) + 4]
    guide = (ROOT / "docs" / "concepts.md").read_text(encoding="utf-8")
    assert block in guide
    assert f"examples/{name}/README.md" in guide
