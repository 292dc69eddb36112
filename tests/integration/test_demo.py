"""``lastgang demo`` on a short period: every promised output, figures that add up, a fresh start
on every run, and a foreign folder never touched."""

import csv
import json
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lastgang.cli import app
from lastgang.cli import commands as _commands  # noqa: F401  (registers the commands)
from lastgang.cli.demo import MARKER

PNG = b"\x89PNG\r\n\x1a\n"
PDF = b"%PDF-"
runner = CliRunner()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object]]:
    """January and the first day of February 2025: two monthly runs."""
    out = tmp_path_factory.mktemp("demo") / "demo-output"
    result = runner.invoke(app, ["demo", "--out", str(out), "--days", "32", "--json"])
    assert result.exit_code == 0, result.output
    return out, json.loads(result.output)


def test_demo_writes_every_promised_output(demo: tuple[Path, dict[str, object]]) -> None:
    out, summary = demo
    assert (out / "lastgang.duckdb").is_file()
    assert (out / "data" / "site.toml").is_file()
    kinds = {p.name.split("-")[0] for p in (out / "data").glob("*.csv")}
    assert kinds == {"registers", "phases", "intervals"}
    # one run per month, each with invoices as PDF and HTML, lines CSV, run JSON, reconciliation
    assert sorted(p.name for p in (out / "bills").iterdir() if p.is_dir()) == [
        "2025-01",
        "2025-02",
    ]
    for month in ("2025-01", "2025-02"):
        folder = out / "bills" / month
        pdfs, pages = sorted(folder.glob("*.pdf")), sorted(folder.glob("*-0?.html"))
        assert len(pdfs) == len(pages) == 4  # Top 1, Top 2, general areas, heating
        assert all(p.read_bytes().startswith(PDF) for p in pdfs)
        for suffix in ("lines.csv", "run.json", "reconciliation.csv", "reconciliation.json"):
            assert len(list(folder.glob(f"*-{suffix}"))) == 1, (month, suffix)
    rec = list(csv.DictReader((out / "bills" / "reconciliation.csv").open(encoding="utf-8")))
    assert [row["month"] for row in rec] == ["2025-01", "2025-02"]
    invoices = list(csv.DictReader((out / "bills" / "invoices.csv").open(encoding="utf-8")))
    assert len(invoices) == 8
    assert all((out / row["pdf"]).is_file() and (out / row["html"]).is_file() for row in invoices)
    charts = out / "charts"
    for name in ("summer-day", "winter-day", "week", "month", "year"):
        assert (charts / f"{name}.png").read_bytes().startswith(PNG), name
    page = (charts / "monitoring.html").read_text(encoding="utf-8")
    assert "Plotly" in page and "<script src=" not in page
    assert json.loads((out / "summary.json").read_text(encoding="utf-8")) == summary
    assert (out / MARKER).is_file()


def test_demo_figures_add_up(demo: tuple[Path, dict[str, object]]) -> None:
    _, summary = demo
    figures = summary["figures"]
    assert isinstance(figures, dict)
    assert summary["first_day"] == "2025-01-01" and summary["last_day"] == "2025-02-01"
    # what the billing units were invoiced equals what the monitoring counts as consumption
    units = summary["units"]
    assert isinstance(units, list) and len(units) == 4
    billed = sum(Decimal(u["consumption_kwh"]) for u in units)
    assert float(billed) == pytest.approx(figures["consumption_kwh"], abs=0.01)
    local = sum(Decimal(u["local_kwh"]) for u in units)
    assert float(local) == pytest.approx(figures["self_consumed_kwh"], abs=0.01)
    assert figures["self_sufficiency_ratio"] == pytest.approx(
        figures["self_consumed_kwh"] / figures["consumption_kwh"]
    )
    assert figures["self_consumption_ratio"] == pytest.approx(
        figures["self_consumed_kwh"] / figures["production_kwh"]
    )
    # the monthly runs' totals are the units' totals
    runs = summary["runs"]
    assert isinstance(runs, list) and [r["status"] for r in runs] == ["final", "final"]
    assert sum(Decimal(r["total"]) for r in runs) == sum(Decimal(u["total"]) for u in units)
    # the grid connection balances the building in every month: nothing flagged
    assert all(r["reconciliation_flagged"] == 0 for r in runs)


def test_demo_starts_afresh_and_never_touches_a_foreign_folder(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    first = runner.invoke(app, ["demo", "--out", str(out), "--days", "1", "--no-pdf", "--json"])
    assert first.exit_code == 0, first.output
    stale = out / "bills" / "2024-12"
    stale.mkdir()
    again = runner.invoke(app, ["demo", "--out", str(out), "--days", "1", "--no-pdf", "--json"])
    assert again.exit_code == 0, again.output
    assert not stale.exists()
    assert json.loads(again.output)["runs"][0]["run"] == 1  # a fresh store

    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me", encoding="utf-8")
    refused = runner.invoke(app, ["demo", "--out", str(foreign), "--days", "1"])
    assert refused.exit_code == 1
    assert "did not write" in refused.output
    assert sorted(p.name for p in foreign.iterdir()) == ["notes.txt"]

    early = runner.invoke(app, ["demo", "--out", str(tmp_path / "x"), "--year", "2023"])
    assert early.exit_code == 1 and "--year 2025 or later" in early.output


@pytest.mark.parametrize("view", ["day", "week", "month"])
def test_charts_taken_a_block_of_slots_at_a_time_are_the_same(
    demo: tuple[Path, dict[str, object]], view: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The allocation is slot by slot, so the monitoring chart (emergency power unit with its
    own draw, PV, a battery) and every unit's chart are the same when a long view is evaluated
    and allocated a day at a time instead of at once: every bar exactly; a unit's totals are
    the sums of the days' sums, so equal up to the order of the additions."""
    import dataclasses
    from datetime import date

    import numpy as np

    from lastgang.allocation import consumer_units
    from lastgang.api import charts_data
    from lastgang.store import open_store

    out, _ = demo
    store = open_store(out / "lastgang.duckdb", read_only=True)
    try:
        site = store.site_version(store.site_ids()[0]).site
        day = date(2025, 1, 15)

        def charts() -> tuple[str, list[dict[str, float | None]]]:
            found = [charts_data.monitoring_chart(store, site, view, day)]
            found += [
                charts_data.unit_chart(store, site, unit, view, day)
                for unit in consumer_units(site)
            ]
            shown = [dataclasses.asdict(c) for c in found]
            totals = [c.pop("totals") for c in shown[1:]]
            for c in shown[1:]:
                c.pop("summary")  # the totals, as text
            return json.dumps(shown, default=str), totals

        whole, totals = charts()
        monkeypatch.setattr(charts_data, "CHART_BLOCK_VALUES", 1)  # a day per block
        hours = np.arange(0, 96 * 31 + 1, 4)  # the week view's bars, in a month of 96-slot days
        assert charts_data._blocks(site, hours) == [(96 * d, 96 * (d + 1)) for d in range(31)]
        blocked, blocked_totals = charts()
        assert blocked == whole
        assert len(totals) >= 2 and all(t["local_kwh"] for t in totals)
        for got, expected in zip(blocked_totals, totals, strict=True):
            assert got == pytest.approx(expected, rel=1e-12)
        assert '"own_draw"' in whole  # the emergency power unit's own draw is in every view
    finally:
        store.close()


def test_every_units_year_split_equals_each_unit_taken_alone_over_blocks_that_cut_a_month(
    demo: tuple[Path, dict[str, object]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A unit's chart takes the split of every unit at once, in blocks of slots; a block of ten
    days cuts January's bar into parts. Each unit's bars and totals equal those of the unit
    alone over the whole year at once (its local and grid energy per quarter hour summed to
    the months, a quarter hour the unit has no value for making its month empty)."""
    from datetime import date

    import numpy as np

    from lastgang.allocation import consumer_units
    from lastgang.api import charts_data
    from lastgang.monitoring import site_allocation, stored_concept, unit_consumption
    from lastgang.report.charts import view_bounds
    from lastgang.store import open_store
    from lastgang.timegrid import MONTH, aggregate, period_boundaries

    out, _ = demo
    store = open_store(out / "lastgang.duckdb", read_only=True)
    try:
        site = store.site_version(store.site_ids()[0]).site
        tz = site.site.timezone
        day = date(2025, 1, 15)
        start, stop = view_bounds("year", day, tz)
        concept = stored_concept(store, site, start, stop)
        alloc = site_allocation(site, concept)
        monkeypatch.setattr(charts_data, "CHART_BLOCK_VALUES", 960 * len(site.locations))
        months = period_boundaries(start, stop, MONTH, tz)
        blocks = charts_data._blocks(site, months)
        assert all(0 < b - a <= 960 for a, b in blocks)  # ten days a block at most
        assert sum(months[0] < a < months[1] for a, _ in blocks) == 3  # January cut in four
        units = consumer_units(site)
        assert len(units) >= 2
        bars = 0
        # the split is made for the first unit (its stamp drawn for this store) and kept
        stamp = f"{store.change_stamp(site.site.id)} ten-day blocks"
        for unit in units:
            i = alloc.consumer_index(unit)
            missing = np.isnan(unit_consumption(site, concept, unit))
            local = np.where(missing, np.nan, alloc.local_rows(i))
            grid = np.where(missing, np.nan, alloc.grid_rows(i))
            chart = charts_data.unit_chart(store, site, unit, "year", day, stamp=stamp)
            shown = {s.kind: s.values for s in chart.series}
            for kind, kwh in (("local", local), ("grid", grid)):
                _, months = aggregate(kwh, start, MONTH, tz)
                expected = [None if np.isnan(v) else v for v in months.tolist()]
                assert expected[2:] == [None] * 10  # the demo has January and 1 February
                assert [v is None for v in shown[kind]] == [v is None for v in expected]
                for got, want in zip(shown[kind], expected, strict=True):
                    if want is not None:
                        assert got == pytest.approx(want, rel=1e-12, abs=1e-6)
                bars += sum(v is not None for v in expected)
            assert chart.totals["local_kwh"] == pytest.approx(float(np.nansum(local)), rel=1e-12)
            assert chart.totals["grid_kwh"] == pytest.approx(float(np.nansum(grid)), rel=1e-12)
            assert chart.totals["local_kwh"] > 0 and chart.totals["grid_kwh"] > 0
        assert bars > 0  # January's bar, cut into four blocks, has values for some unit
    finally:
        store.close()
