"""Golden file: the shipped emergency power example (SM-3) billed for a whole year.

The year of meter data comes from the demo generator (:func:`lastgang.demo.generate.
generate_site_year`, seed 2025) and is billed from in-memory profiles through the same pure
function the store path uses (:func:`lastgang.billing.bill_site_period`), so the test stays
fast. The whole run JSON is checked in under ``tests/golden/``; the fingerprint hashes are left
out of the comparison (they change with any new field of the site model), unrounded energies are
compared to 1e-9 relative, everything else exactly.

After an intended change (of the billing rules or of the demo model), regenerate with::

    LASTGANG_UPDATE_GOLDEN=1 .venv/bin/pytest tests/unit/test_invoice_golden.py

and review the diff of the golden file like any other change.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lastgang.billing import Run, bill_site_period, to_jsonable
from lastgang.concept.load import load_site
from lastgang.demo.generate import generate_site_year
from lastgang.profiles.types import LoadProfile
from lastgang.quality import Quality
from lastgang.report.invoice import render_html, write_run_files

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden" / "emergency-power-2025.json"
VOLATILE = ("inputs", "fingerprint")
CREATED = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def year(tmp_path_factory: pytest.TempPathFactory) -> tuple[Run, Any]:
    site = load_site(ROOT / "examples" / "emergency-power" / "site.toml")
    data = generate_site_year(site, 2025, tmp_path_factory.mktemp("demo"), seed=2025)
    profiles = {}
    for loc in data.site.locations:
        imp, exp = data.registered(loc.id)
        quality = np.full(len(imp), Quality.L1, dtype=np.int8)
        profiles[loc.id] = LoadProfile(data.start, imp.copy(), exp.copy(), quality)
    run = bill_site_period(
        data.site, profiles, date(2025, 1, 1), date(2025, 12, 31), created_at=CREATED
    )
    return run, data


def _same(actual: Any, expected: Any, path: str = "$") -> list[str]:
    if isinstance(expected, dict) and isinstance(actual, dict):
        diffs = []
        if set(actual) != set(expected):
            diffs.append(f"{path}: keys {sorted(set(actual) ^ set(expected))} differ")
        for key in expected.keys() & actual.keys():
            diffs += _same(actual[key], expected[key], f"{path}.{key}")
        return diffs
    if isinstance(expected, list) and isinstance(actual, list):
        if len(actual) != len(expected):
            return [f"{path}: {len(actual)} items, golden has {len(expected)}"]
        return [
            d
            for k, (a, e) in enumerate(zip(actual, expected, strict=True))
            for d in _same(a, e, f"{path}[{k}]")
        ]
    if isinstance(expected, float) and isinstance(actual, float):
        ok = actual == pytest.approx(expected, rel=1e-9, abs=1e-9)
        return [] if ok else [f"{path}: {actual!r} != golden {expected!r}"]
    return [] if actual == expected else [f"{path}: {actual!r} != golden {expected!r}"]


def test_golden_emergency_power_year_invoice_json(year: tuple[Run, Any]) -> None:
    run, _ = year
    actual = {k: v for k, v in to_jsonable(run).items() if k not in VOLATILE}
    if os.environ.get("LASTGANG_UPDATE_GOLDEN"):
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN.write_text(json.dumps(actual, indent=1, ensure_ascii=False) + "\n", "utf-8")
    expected = json.loads(GOLDEN.read_text(encoding="utf-8"))
    diffs = _same(actual, expected)
    assert not diffs, "\n".join(diffs[:20])


def test_golden_year_agrees_with_the_generated_truth(year: tuple[Run, Any]) -> None:
    """Checks independent of the golden file: what each tenant is billed for is what the
    generator says each apartment consumed, and the grid connection balances."""
    run, data = year
    meters = {"top-1": "apt-1", "top-2": "apt-2", "general": "general", "heating": "heating"}
    assert [i.unit_id for i in run.invoices] == list(meters)
    for invoice in run.invoices:
        truth = float(data.flows[f"consumption:{meters[invoice.unit_id]}"].sum())
        assert float(invoice.consumption_kwh) == pytest.approx(truth, abs=0.002)
        energy = sum(line.energy_kwh or 0.0 for line in invoice.lines)
        assert energy == pytest.approx(truth, rel=1e-9)
        assert invoice.local_kwh + invoice.grid_kwh - invoice.consumption_kwh in (
            Decimal("-0.001"),
            Decimal("0.000"),
            Decimal("0.001"),
        )
        assert len(invoice.months) == 12
        assert invoice.total == invoice.net + invoice.vat_total
        assert invoice.status == "draft"
    assert len(run.reconciliation.rows) == 12
    assert not run.reconciliation.flagged
    assert run.quality_issues == ()
    # 365 days: 35,040 quarter hours (92 in March, 100 in October cancel out)
    assert run.slots == 35_040


def test_run_files_are_the_standard_librarys_json_and_the_pages_of_render_html(
    year: tuple[Run, Any], tmp_path: Path
) -> None:
    """The run files are written piece by piece and each meter row of the pages is formatted
    once per run: the same run JSON as the standard library's encoder makes of the whole run,
    the same lines, and the same page per invoice as :func:`render_html` makes alone."""
    run, _ = year
    shared = [id(m) for invoice in run.invoices for m in invoice.meters]
    assert len(set(shared)) < len(shared)  # the invoices list some of the same meter entries
    # and one more invoice listing the same meters with other purposes and qualities
    first = run.invoices[0]
    other = replace(
        first,
        number=f"{first.number}-B",
        meters=tuple(
            replace(m, purpose=f"{m.purpose}, again", quality_slots={"L1": 3, "L2": 7})
            for m in first.meters
        ),
    )
    run = replace(run, invoices=(*run.invoices, other))
    write_run_files(run, tmp_path, pdf=False)
    as_json = json.dumps(to_jsonable(run), indent=2, ensure_ascii=False) + "\n"
    assert (tmp_path / f"{run.key}-run.json").read_text("utf-8") == as_json
    rows = [
        {
            "invoice": invoice.number,
            "unit": invoice.unit_id,
            "customer": invoice.customer,
            "kind": line.kind,
            "item": line.item,
            "description": line.description,
            "first_day": line.first_day.isoformat(),
            "last_day": line.last_day.isoformat(),
            "quantity": str(line.quantity),
            "unit_of_quantity": line.unit,
            "price": str(line.price),
            "price_unit": line.price_unit,
            "amount": str(line.amount),
            "vat_rate": str(line.vat_rate),
            "meter": line.meter,
            "energy_kwh": line.energy_kwh,
            "status": invoice.status,
        }
        for invoice in run.invoices
        for line in invoice.lines
    ]
    lines_text = (tmp_path / f"{run.key}-lines.json").read_text("utf-8")
    assert lines_text == json.dumps(rows, indent=2, ensure_ascii=False) + "\n"
    with (tmp_path / f"{run.key}-lines.csv").open(encoding="utf-8", newline="") as f:
        table = list(csv.DictReader(f))
    assert table == [
        {k: "" if v is None else repr(v) if k == "energy_kwh" else str(v) for k, v in row.items()}
        for row in rows
    ]
    for invoice in run.invoices:
        page = (tmp_path / f"{invoice.number}.html").read_text("utf-8")
        assert page == render_html(invoice, run)
