"""docs/configuration.md is generated from the site schema and must not drift from it."""

from __future__ import annotations

from pathlib import Path

from lastgang.concept.model import Site
from lastgang.concept.reference import configuration_reference

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
REGENERATE = ".venv/bin/python -m lastgang.concept.reference --write docs/configuration.md"


def test_configuration_reference_is_up_to_date() -> None:
    assert DOC.read_text(encoding="utf-8") == configuration_reference(), (
        f"docs/configuration.md differs from the schema; regenerate it with: {REGENERATE}"
    )


def test_reference_names_every_table_and_field() -> None:
    text = configuration_reference()
    tables = [
        "[site]",
        "[[locations]]",
        "[locations.metering_points]",
        "[[locations.meters]]",
        "[locations.meters.ct]",
        "[locations.meters.vt]",
        "[[virtual_meters]]",
        "[[units]]",
        "[[tariffs]]",
        "[[contracts]]",
        "[billing]",
    ]
    for table in tables:
        assert f"## `{table}`" in text, table
    for name in Site.model_fields:
        assert f"`[{name}]`" in text or f"`[[{name}]]`" in text, name
    for field in ["orientation", "connection", "verified", "validity_years", "formula", "parent"]:
        assert f"| `{field}` |" in text
    # the name written in TOML, not the Python attribute
    assert "| `import` |" in text and "import_" not in text
