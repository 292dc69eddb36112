"""``lastgang id check`` (TOR-4.1)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

import lastgang.cli.commands  # noqa: F401  (registers the commands)
from lastgang.cli import app

runner = CliRunner()
WIDE = {"COLUMNS": "220", "NO_COLOR": "1"}

TOR_DOTTED = "AT.008100.08010.0O6G56M11SN51G21M24S"
TOR_CANONICAL = "AT008100080100O6G56M11SN51G21M24S"


def test_tor_4_1_cli_check_valid_ids_table() -> None:
    result = runner.invoke(app, ["id", "check", TOR_DOTTED, "AT.8100.8010.123"], env=WIDE)
    assert result.exit_code == 0, result.output
    rows = [line for line in result.output.splitlines() if TOR_CANONICAL in line]
    assert len(rows) == 1
    assert TOR_DOTTED in rows[0] and "ok" in rows[0]
    padded = [line for line in result.output.splitlines() if "AT.8100.8010.123" in line]
    assert "AT0081000801000000000000000000123" in padded[0]
    assert "AT.008100.08010.00000000000000000123" in padded[0]


def test_tor_4_1_cli_check_invalid_id_exits_1_and_lists_problems() -> None:
    result = runner.invoke(app, ["id", "check", TOR_CANONICAL, "XX.12a.1.ABC"], env=WIDE)
    assert result.exit_code == 1
    assert "country code 'XX'" in result.output
    assert "network operator number '12a'" in result.output
    (valid_row,) = [line for line in result.output.splitlines() if TOR_DOTTED in line]
    assert "│ ok" in valid_row  # the valid one still gets its row


def test_tor_4_1_cli_check_json() -> None:
    result = runner.invoke(app, ["id", "check", "--json", TOR_CANONICAL, "at" + TOR_CANONICAL[2:]])
    assert result.exit_code == 1
    data = json.loads(result.output)
    assert data[0] == {
        "input": TOR_CANONICAL,
        "valid": True,
        "canonical": TOR_CANONICAL,
        "dotted": TOR_DOTTED,
        "problems": [],
    }
    assert data[1]["valid"] is False
    assert data[1]["canonical"] is None and data[1]["dotted"] is None
    assert data[1]["problems"] == ["country code 'at': write it in capital letters (AT)"]


def test_tor_4_1_cli_check_json_all_valid_exits_0() -> None:
    result = runner.invoke(app, ["id", "check", "--json", f" {TOR_DOTTED} "])
    assert result.exit_code == 0
    (entry,) = json.loads(result.output)
    assert entry["canonical"] == TOR_CANONICAL
    assert entry["input"] == f" {TOR_DOTTED} "


def test_cli_id_check_help_has_an_example() -> None:
    result = runner.invoke(app, ["id", "check", "--help"], env=WIDE)
    assert result.exit_code == 0
    assert "Example" in result.output
    assert "lastgang id check" in result.output


def test_cli_id_check_needs_an_id() -> None:
    result = runner.invoke(app, ["id", "check"])
    assert result.exit_code == 1  # a usage error is invalid input; 2 is kept for the store
