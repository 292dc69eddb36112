"""``lastgang demo``: the whole job on a realistic building, in one command.

1. A fresh embedded store (``OUT/lastgang.duckdb`` unless ``--db``).
2. The shipped emergency power example (``examples/emergency-power``, SM-3) with one meter
   exchange added, applied as the site configuration.
3. A year (or ``--days``) of 15-minute meter data from the physical model of
   :mod:`lastgang.demo` (PV, households, common areas, heat pump, emergency power unit with its
   battery), written to ``OUT/data/`` as the CSV files a user imports.
4. Those files imported the normal way: raw archive, readings, load profiles with substitute
   values for the gaps.
5. The period billed month by month, each month its own run (final where the data allows it,
   else a draft): invoices as PDF and HTML, every line as CSV, the run as JSON, and the
   reconciliation against the grid connection, in ``OUT/bills/YYYY-MM/``; all months'
   reconciliation in ``OUT/bills/reconciliation.csv`` and all invoices in
   ``OUT/bills/invoices.csv``.
6. The monitoring graphics (SM-4) in ``OUT/charts/``: a summer day, a winter day, a week, a month
   and the year as PNG, and one interactive HTML page that works offline.
7. A summary: key figures, invoice totals per unit, and where each file is
   (``OUT/summary.json`` holds the same).

Each run starts afresh: the folders the demo wrote before (marked by ``OUT/.lastgang-demo``) are
removed first; a folder with other content is never touched.
"""

from __future__ import annotations

import calendar
import csv
import json
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from lastgang import services
from lastgang.cli import app
from lastgang.cli._common import echo_json, epilog, fail, progress_bar
from lastgang.concept.load import load_site, parse_site
from lastgang.concept.model import Site
from lastgang.errors import InvalidInput, LastgangError
from lastgang.monitoring import site_monitoring
from lastgang.report.charts import MonitoringData, ratios, render_html, render_png, view_bounds
from lastgang.timegrid import DAY, aggregate, period_slots, zone

__all__ = ["DEFAULT_OUT", "DEFAULT_YEAR", "MARKER", "DemoResult", "demo_command", "run_demo"]

#: where ``lastgang demo`` writes when no ``--out`` is given (``make demo`` uses the same)
DEFAULT_OUT = Path("demo-output")
#: the year billed by default: the first whole year of the example's meters
DEFAULT_YEAR = 2025
#: the file that marks a folder as written by the demo (so a rerun may clear it)
MARKER = ".lastgang-demo"
#: columns of ``OUT/bills/invoices.csv``: one row per invoice of every monthly run
INVOICE_COLUMNS = (
    "month",
    "invoice",
    "unit",
    "customer",
    "status",
    "consumption_kwh",
    "local_kwh",
    "grid_kwh",
    "net",
    "vat",
    "total",
    "currency",
    "pdf",
    "html",
)
#: what a rerun removes from a marked folder
_OWNED = ("data", "bills", "charts", "summary.json", "lastgang.duckdb", "lastgang.duckdb.wal")

Progress = Callable[[str, int, int], None]


@dataclass
class UnitTotal:
    """A billing unit's invoices over the demo period."""

    unit: str
    customer: str
    invoices: int = 0
    consumption_kwh: Decimal = Decimal(0)
    local_kwh: Decimal = Decimal(0)
    net: Decimal = Decimal(0)
    total: Decimal = Decimal(0)

    @property
    def local_share(self) -> Decimal | None:
        if not self.consumption_kwh:
            return None
        return (100 * self.local_kwh / self.consumption_kwh).quantize(Decimal("0.1"))


@dataclass
class DemoResult:
    """What :func:`run_demo` did and wrote."""

    out_dir: Path
    db: Path
    site_id: str
    site_name: str
    currency: str
    first_day: date
    last_day: date
    data_files: list[Path]
    imported_rows: int
    runs: list[dict[str, Any]]
    units: list[UnitTotal]
    figures: dict[str, float | None]
    charts: dict[str, tuple[Path, str]]
    files: dict[str, Path] = field(default_factory=dict)


def example_site_file() -> Path:
    """``examples/emergency-power/site.toml`` of the source tree this lastgang runs from."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent / "examples" / "emergency-power" / "site.toml"
        if candidate.is_file():
            return candidate
    raise InvalidInput(
        "the demo needs examples/emergency-power/site.toml of the lastgang source tree: run it "
        "from a checkout (make demo)"
    )


def _prepare(out_dir: Path, db: Path) -> None:
    """Make ``out_dir`` ready for a fresh demo, or refuse (never removes foreign files)."""
    if out_dir.exists() and not out_dir.is_dir():
        raise InvalidInput(f"--out {out_dir} is a file: name a folder")
    marked = (out_dir / MARKER).exists()
    if out_dir.is_dir() and any(out_dir.iterdir()) and not marked:
        raise InvalidInput(
            f"--out {out_dir} already holds files that lastgang demo did not write: name an "
            "empty or new folder (the demo starts afresh and removes what it wrote before)"
        )
    if marked:
        for name in _OWNED:
            path = out_dir / name
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
    inside = db.resolve().parent == out_dir.resolve()
    if db.exists() and not inside:
        raise InvalidInput(
            f"--db {db} exists: the demo needs a fresh store; name a new file or leave out --db "
            f"(the default is {out_dir / 'lastgang.duckdb'})"
        )
    if inside:
        for path in (db, db.with_name(db.name + ".wal")):
            if path.exists():
                path.unlink()
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / MARKER).write_text(
        "This folder was written by 'lastgang demo'; the next run of it clears it.\n",
        encoding="utf-8",
    )


def _period(site: Site, year: int, days: int | None) -> tuple[date, date]:
    first = date(year, 1, 1)
    last = date(year, 12, 31)
    if days is not None:
        if days < 1:
            raise InvalidInput(f"--days {days}: give 1 or more days")
        last = min(last, first + timedelta(days=days - 1))
    tz = site.site.timezone
    installed = min(
        (m.installed_at(tz).date() for loc in site.locations for m in loc.meters), default=None
    )
    if installed is not None and first < installed:
        raise InvalidInput(
            f"--year {year}: the example's meters were installed on {installed}; choose "
            f"--year {installed.year + 1} or later"
        )
    return first, last


def _months(first: date, last: date) -> list[tuple[date, date]]:
    out: list[tuple[date, date]] = []
    day = first
    while day <= last:
        end = date(day.year, day.month, calendar.monthrange(day.year, day.month)[1])
        out.append((day, min(end, last)))
        day = end + timedelta(days=1)
    return out


def _daily(values: np.ndarray[Any, Any], start: int, tz: str) -> tuple[list[date], list[float]]:
    bounds, sums = aggregate(np.nan_to_num(values), start, DAY, tz)
    days = [datetime.fromtimestamp(int(b) * 900, zone(tz)).date() for b in bounds[:-1]]
    return days, [float(x) for x in sums]


def choose_days(data: MonitoringData) -> tuple[date, date]:
    """The summer day and the winter day the demo draws: the day with the most production in
    June to August (else in the whole period), and the day the emergency power unit drew most
    from the grid in December to February (else the day with the least production), never the
    same day when the period has two."""
    days, produced = _daily(data.total_production, data.start, data.tz)
    _, drawn = _daily(data.unit_own_draw, data.start, data.tz)
    summer_idx = [k for k, d in enumerate(days) if d.month in (6, 7, 8)] or list(range(len(days)))
    summer = max(summer_idx, key=lambda k: (produced[k], -k))
    winter_idx = [k for k, d in enumerate(days) if d.month in (12, 1, 2) and k != summer]
    if winter_idx:
        winter = max(winter_idx, key=lambda k: (drawn[k], -produced[k], -k))
    else:
        rest = [k for k in range(len(days)) if k != summer] or [summer]
        winter = min(rest, key=lambda k: (produced[k], k))
    return days[summer], days[winter]


def _clip(data: MonitoringData, bounds: tuple[int, int]) -> MonitoringData:
    return data.window(max(bounds[0], data.start), min(bounds[1], data.stop))


def _charts(data: MonitoringData, out: Path, title: str) -> dict[str, tuple[Path, str]]:
    """The demo's monitoring graphics: name -> (file, what it shows)."""
    tz = data.tz
    summer, winter = choose_days(data)
    charts: dict[str, tuple[Path, str]] = {}
    out.mkdir(parents=True, exist_ok=True)
    for name, day, label in (
        ("summer-day", summer, "summer day" if summer.month in (6, 7, 8) else "sunniest day"),
        ("winter-day", winter, "winter day" if winter.month in (12, 1, 2) else "dullest day"),
    ):
        path = render_png(
            _clip(data, view_bounds("day", day, tz)), out / f"{name}.png", title=title
        )
        charts[name] = (path, f"{label} {day.isoformat()}, quarter hours")
    week = _clip(data, view_bounds("week", winter, tz))
    monday = winter - timedelta(days=winter.weekday())
    charts["week"] = (
        render_png(week, out / "week.png", title=title, resolution="week"),
        f"week of {monday.isoformat()}, hours",
    )
    month = _clip(data, view_bounds("month", summer, tz))
    charts["month"] = (
        render_png(month, out / "month.png", title=title, resolution="month"),
        f"{summer.strftime('%B %Y')}, days",
    )
    charts["year"] = (
        render_png(data, out / "year.png", title=title, resolution="year"),
        "the whole period, months",
    )
    charts["monitoring"] = (
        render_html(data, out / "monitoring.html", title=title, day=summer),
        f"interactive, offline: {summer.isoformat()}, its week, month and year",
    )
    return charts


def run_demo(
    out_dir: Path,
    *,
    db: Path | None = None,
    year: int = DEFAULT_YEAR,
    days: int | None = None,
    seed: int = 1,
    pdf: bool = True,
    stage: Callable[[str, int | None], None] | None = None,
    progress: Progress | None = None,
) -> DemoResult:
    """Run the whole demo into ``out_dir`` (see the module documentation) and return what it
    did. ``stage(what, total)`` announces each step, ``progress(what, done, total)`` reports
    within a step."""
    from lastgang import billing_service
    from lastgang.billing.run import FinalRefused
    from lastgang.demo import generate_site_period
    from lastgang.report.invoice import reconciliation_csv
    from lastgang.store import open_store

    def announce(what: str, total: int | None = None) -> None:
        if stage is not None:
            stage(what, total)

    def report(what: str, done: int, total: int) -> None:
        if progress is not None:
            progress(what, done, total)

    out_dir = Path(out_dir)
    store_path = Path(db) if db is not None else out_dir / "lastgang.duckdb"
    example = load_site(example_site_file())
    first_day, last_day = _period(example, year, days)
    _prepare(out_dir, store_path)
    tz = example.site.timezone
    start, stop = period_slots(first_day, last_day, tz)

    announce(f"generating {(last_day - first_day).days + 1} days of meter data")
    generated = generate_site_period(example, start, stop, out_dir / "data", seed=seed)
    site = parse_site(generated.site_file.read_text(encoding="utf-8"), str(generated.site_file))
    site_id = site.site.id
    data_files = [f for f in generated.files if f.suffix == ".csv"]

    store = open_store(store_path)
    try:
        announce("applying the site configuration")
        services.apply_site(store, generated.site_file)
        announce(f"importing {len(data_files)} files", len(data_files))
        results = services.import_files(store, site_id, data_files, progress=progress)
        rows = sum(r.rows for r in results)

        months = _months(first_day, last_day)
        announce(f"billing {len(months)} month(s)", len(months))
        runs: list[dict[str, Any]] = []
        units: dict[tuple[str, str], UnitTotal] = {}
        reconciliation: list[str] = []
        invoice_rows: list[list[object]] = []
        currency = site.site.currency
        for k, (first, last) in enumerate(months):
            report(f"billing {first:%Y-%m} (PDF and HTML invoices)", k, len(months))
            folder = out_dir / "bills" / f"{first:%Y-%m}"
            try:
                bill = billing_service.bill(
                    store, site_id, first, last, out_dir=folder, final=True, pdf=pdf
                )
            except FinalRefused:
                bill = billing_service.bill(
                    store, site_id, first, last, out_dir=folder, final=False, pdf=pdf
                )
            run = bill.run
            currency = run.currency
            csv_text = reconciliation_csv(run).splitlines()
            if not reconciliation:
                reconciliation.append(csv_text[0])
            reconciliation.extend(csv_text[1:])
            runs.append(
                {
                    "run": run.run,
                    "version": run.version,
                    "status": run.status,
                    "first_day": run.first_day.isoformat(),
                    "last_day": run.last_day.isoformat(),
                    "folder": str(folder),
                    "invoices": len(run.invoices),
                    "total": str(run.total),
                    "reconciliation_flagged": sum(r.flagged for r in run.reconciliation.rows),
                }
            )
            for inv in run.invoices:
                key = (inv.unit_id, inv.customer)
                total = units.setdefault(key, UnitTotal(inv.unit_name, inv.customer))
                total.invoices += 1
                total.consumption_kwh += inv.consumption_kwh
                total.local_kwh += inv.local_kwh
                total.net += inv.net
                total.total += inv.total
                pdf_file = folder / f"{inv.number}.pdf"
                invoice_rows.append(
                    [
                        f"{first:%Y-%m}",
                        inv.number,
                        inv.unit_name,
                        inv.customer,
                        run.status,
                        inv.consumption_kwh,
                        inv.local_kwh,
                        inv.grid_kwh,
                        inv.net,
                        inv.vat_total,
                        inv.total,
                        run.currency,
                        pdf_file.relative_to(out_dir) if pdf_file.exists() else "",
                        (folder / f"{inv.number}.html").relative_to(out_dir),
                    ]
                )
        report("billing done", len(months), len(months))
        bills = out_dir / "bills"
        (bills / "reconciliation.csv").write_text("\n".join(reconciliation) + "\n", "utf-8")
        _write_csv(bills / "invoices.csv", INVOICE_COLUMNS, invoice_rows)

        announce("drawing the monitoring graphics", None)
        profiles = store.load_profiles(site_id, [loc.id for loc in site.locations], start, stop)
    finally:
        store.close()
    data = site_monitoring(site, profiles, start, stop)
    title = site.site.name or site_id
    charts = _charts(data, out_dir / "charts", title)
    result = DemoResult(
        out_dir=out_dir,
        db=store_path,
        site_id=site_id,
        site_name=title,
        currency=currency,
        first_day=first_day,
        last_day=last_day,
        data_files=data_files,
        imported_rows=rows,
        runs=runs,
        units=list(units.values()),
        figures=ratios(data),
        charts=charts,
        files={
            "store": store_path,
            "data": out_dir / "data",
            "site": generated.site_file,
            "bills": bills,
            "reconciliation": bills / "reconciliation.csv",
            "invoices": bills / "invoices.csv",
            "charts": out_dir / "charts",
            "summary": out_dir / "summary.json",
        },
    )
    (out_dir / "summary.json").write_text(
        json.dumps(summary(result), indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    return result


def _write_csv(path: Path, header: Sequence[str], rows: list[list[object]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def summary(result: DemoResult) -> dict[str, Any]:
    """The demo's outcome as JSON-ready data (also written to ``OUT/summary.json``)."""
    return {
        "site": result.site_id,
        "site_name": result.site_name,
        "first_day": result.first_day.isoformat(),
        "last_day": result.last_day.isoformat(),
        "currency": result.currency,
        "figures": result.figures,
        "imported_files": len(result.data_files),
        "imported_rows": result.imported_rows,
        "runs": result.runs,
        "units": [
            {
                "unit": u.unit,
                "customer": u.customer,
                "invoices": u.invoices,
                "consumption_kwh": str(u.consumption_kwh),
                "local_kwh": str(u.local_kwh),
                "local_share_percent": None if u.local_share is None else str(u.local_share),
                "net": str(u.net),
                "total": str(u.total),
            }
            for u in result.units
        ],
        "charts": {k: {"file": str(p), "shows": what} for k, (p, what) in result.charts.items()},
        "files": {k: str(v) for k, v in result.files.items()},
    }


# ---------------------------------------------------------------------------------------------
# output


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f} %"


def _kwh(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f} kWh"


def _print(result: DemoResult) -> None:
    console = Console()
    f = result.figures
    period = f"{result.first_day.isoformat()} to {result.last_day.isoformat()}"
    key = Table(
        title=f"{escape(result.site_name)} (site {escape(result.site_id)}), {period}",
        title_justify="left",
    )
    key.add_column("key figure")
    key.add_column("value", justify="right")
    key.add_column("what it means", overflow="fold")
    for label, value, note in (
        ("production", _kwh(f["production_kwh"]), "emergency power unit and PV (SM-3)"),
        ("consumption", _kwh(f["consumption_kwh"]), "all billing units"),
        ("self-consumed", _kwh(f["self_consumed_kwh"]), "local production used in the house"),
        ("from the grid", _kwh(f["grid_import_kwh"]), "import at the grid connection (HAK)"),
        ("to the grid", _kwh(f["grid_export_kwh"]), "export at the grid connection (HAK)"),
        (
            "unit's own draw",
            _kwh(f["unit_own_draw_kwh"]),
            "standby and charging from the grid (below 0 in the charts)",
        ),
        (
            "self-consumption ratio",
            _pct(f["self_consumption_ratio"]),
            "self-consumed / production (Eigenverbrauchsquote)",
        ),
        (
            "self-sufficiency ratio",
            _pct(f["self_sufficiency_ratio"]),
            "self-consumed / consumption (Autarkiegrad)",
        ),
    ):
        key.add_row(label, value, note)
    console.print(key)

    statuses = sorted({str(r["status"]) for r in result.runs})
    inv = Table(
        title=f"Invoices per billing unit: {len(result.runs)} monthly run(s), "
        f"{' and '.join(statuses)}, one invoice per unit and month",
        title_justify="left",
    )
    inv.add_column("unit")
    inv.add_column("customer", overflow="fold")
    inv.add_column("kWh", justify="right", no_wrap=True)
    inv.add_column("local share", justify="right", no_wrap=True)
    inv.add_column("total", justify="right", no_wrap=True)
    grand = Decimal(0)
    for u in result.units:
        grand += u.total
        inv.add_row(
            escape(u.unit),
            escape(u.customer),
            f"{u.consumption_kwh:,.0f}",
            "-" if u.local_share is None else f"{u.local_share} %",
            f"{u.total:,.2f} {result.currency}",
        )
    inv.add_section()
    inv.add_row("all units", "", "", "", f"[bold]{grand:,.2f} {result.currency}[/bold]")
    console.print(inv)

    flagged = sum(int(r["reconciliation_flagged"]) for r in result.runs)
    files = Table(title="Where everything is", title_justify="left")
    files.add_column("what")
    files.add_column("where", overflow="fold")
    out = result.out_dir
    first_bills = Path(str(result.runs[0]["folder"])) if result.runs else out / "bills"
    for what, where in (
        ("store (DuckDB)", str(result.db)),
        (
            f"meter data ({len(result.data_files)} CSV files, {result.imported_rows:,} rows)",
            f"{out / 'data'}/",
        ),
        ("site configuration (example + meter exchange)", str(result.files["site"])),
        (
            "invoices: PDF, HTML, lines CSV, run JSON per month",
            f"{out / 'bills'}/YYYY-MM/  (e.g. {first_bills})",
        ),
        ("all invoices in one table", str(result.files["invoices"])),
        (
            f"reconciliation against the HAK ({flagged} month(s) flagged)",
            str(result.files["reconciliation"]),
        ),
        *((f"chart: {what}", str(path)) for path, what in result.charts.values()),
        ("this summary as JSON", str(result.files["summary"])),
    ):
        files.add_row(escape(what), escape(where))
    console.print(files)
    db = escape(str(result.db))
    console.print(
        f"Open [bold]{escape(str(result.charts['monitoring'][0]))}[/bold] in a browser. "
        f"Next: [cyan]lastgang runs --db {db}[/cyan], "
        f"[cyan]lastgang chart --site {escape(result.site_id)} --from "
        f"{result.first_day} --to {result.last_day} --out my-chart.png --db {db}[/cyan]",
        highlight=False,
    )


@app.command(
    "demo",
    help=(
        "Run the whole job on a realistic building: the emergency power example (SM-3) in a "
        "fresh store, a year of 15-minute meter data from a physical model, imported the "
        "normal way, billed month by month (invoices as PDF, HTML, CSV and JSON, and the "
        "reconciliation), the monitoring graphics (PNG and an offline HTML page), and a "
        "summary of where everything is.\n\n"
        "Everything goes into [bold]--out[/bold] (default demo-output); a rerun clears what "
        "the demo wrote there before. [bold]--days N[/bold] takes only the first N days of "
        "the year, for a quick look. The data is synthetic (see docs/demo-data.md); the same "
        "--seed gives the same files."
    ),
    epilog=epilog(
        "lastgang demo",
        "lastgang demo --out demo --days 14",
        "lastgang demo --out demo-2026 --year 2026 --seed 7 --json",
    ),
)
def demo_command(
    out: Annotated[
        Path, typer.Option("--out", help="Folder for everything the demo writes.", metavar="DIR")
    ] = DEFAULT_OUT,
    db: Annotated[
        Path | None,
        typer.Option(
            "--db",
            help="A new store file (default: DIR/lastgang.duckdb).",
            metavar="PATH",
            show_default=False,
        ),
    ] = None,
    year: Annotated[
        int, typer.Option("--year", help="The local calendar year to model.", metavar="YEAR")
    ] = DEFAULT_YEAR,
    days: Annotated[
        int | None,
        typer.Option(
            "--days",
            help="Only the first N days of the year (default: the whole year).",
            metavar="N",
            show_default=False,
        ),
    ] = None,
    seed: Annotated[
        int, typer.Option("--seed", help="Seed of the weather and the loads.", metavar="N")
    ] = 1,
    pdf: Annotated[
        bool, typer.Option("--pdf/--no-pdf", help="Render the invoices as PDF too.")
    ] = True,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the summary as JSON instead of tables.")
    ] = False,
) -> None:
    try:
        with progress_bar(not as_json, transient=True) as bar:
            stage = bar.stage if bar is not None else None
            if bar is None and not as_json:
                console = Console(stderr=True)

                def stage(what: str, total: int | None = None) -> None:
                    console.print(f"{escape(what)} ...", highlight=False)

            result = run_demo(
                out, db=db, year=year, days=days, seed=seed, pdf=pdf, stage=stage, progress=bar
            )
    except LastgangError as exc:
        raise fail(exc, as_json) from None
    if as_json:
        echo_json(summary(result))
        return
    _print(result)
