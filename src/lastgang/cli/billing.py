"""Billing commands: ``lastgang bill`` and ``lastgang runs``. They call
:mod:`lastgang.billing_service`; the store is opened from ``--db``, ``LASTGANG_DB`` or
``./lastgang.duckdb``.

Exit codes: 0 success; 1 bad input or a refused final run (every problem listed: which metering
points still hold L3 or missing values, how many quarter hours, first and last label); 2 the
store refused (unknown site, locked file).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from lastgang import billing_service
from lastgang.billing.invoice import Run
from lastgang.cli import app
from lastgang.cli._common import (
    DbOption,
    JsonOption,
    SiteOption,
    echo_json,
    err_console,
    fail,
    parse_day,
    progress_bar,
    store_session,
)
from lastgang.errors import LastgangError
from lastgang.money import format_kwh, format_money
from lastgang.report.invoice import file_names, summary

#: invoices listed in the terminal: a larger run lists its first ones, its totals, and the file
#: that lists them all (a community's thousands of rows took Rich seconds to lay out and are
#: better read in the summary or the lines)
TABLE_ROWS = 50


def _print_run(run: Run, out_dir: Path) -> None:
    console = Console()
    cur = run.currency
    table = Table(
        title=f"{'Final' if run.status == 'final' else 'DRAFT'} run {run.run}, version "
        f"{run.version}: {escape(run.site_name)}, {run.first_day} to {run.last_day}"
    )
    table.add_column("invoice", no_wrap=True)
    for name, justify in (
        ("unit", "left"),
        ("customer", "left"),
        ("days", "left"),
        ("kWh", "right"),
        ("local", "right"),
        ("net", "right"),
        ("VAT", "right"),
        ("total", "right"),
        ("substitute kWh", "right"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for invoice in run.invoices[:TABLE_ROWS]:
        share = invoice.local_share_percent
        table.add_row(
            escape(invoice.number),
            escape(invoice.unit_name),
            escape(invoice.customer) + (" (vacancy)" if invoice.vacancy else ""),
            f"{invoice.first_day} – {invoice.last_day}",
            format_kwh(invoice.consumption_kwh),
            "-" if share is None else f"{share} %",
            format_money(invoice.net),
            format_money(invoice.vat_total),
            format_money(invoice.total),
            format_kwh(invoice.quality.substitute_kwh)
            + (
                f" ({invoice.quality.missing_slots} missing)"
                if invoice.quality.missing_slots
                else ""
            ),
        )
    more = len(run.invoices) - TABLE_ROWS
    if more > 0:
        table.add_row(f"… {more:,} more", *[""] * 9)
    table.add_section()
    table.add_row(
        "total" if more <= 0 else f"total of {len(run.invoices):,}",
        "",
        "",
        "",
        "",
        "",
        format_money(run.net),
        format_money(run.vat_total),
        f"[bold]{format_money(run.total, cur)}[/bold]",
        "",
    )
    console.print(table)

    report = run.reconciliation
    if report.rows:
        rec = Table(
            title=f"Reconciliation: grid connection ({escape(', '.join(report.grid_meters))}) "
            f"against consumers - production, flagged above {report.threshold_percent} %"
        )
        for name in (
            "month",
            "grid import",
            "grid export",
            "consumers",
            "production",
            "difference kWh",
            "difference",
            "",
        ):
            rec.add_column(name, justify="left" if name in ("month", "") else "right")
        for row in report.rows:
            pct = "-" if row.difference_percent is None else f"{row.difference_percent} %"
            rec.add_row(
                row.month,
                format_kwh(row.grid_import_kwh),
                format_kwh(row.grid_export_kwh),
                format_kwh(row.consumers_kwh),
                format_kwh(row.production_kwh),
                format_kwh(row.difference_kwh),
                f"[red]{pct}[/red]" if row.flagged else pct,
                ("[bold red]FLAGGED[/bold red]" if row.flagged else "ok")
                + (f" ({row.missing_slots} missing)" if row.missing_slots else ""),
            )
        console.print(rec)
    elif report.note:
        console.print(f"reconciliation: {escape(report.note)}")
    for issue in run.quality_issues:
        err_console().print(
            f"[yellow]not final-ready:[/yellow] {escape(issue.describe())}", highlight=False
        )
    status = "final" if run.status == "final" else "[bold red]DRAFT[/bold red]"
    console.print(
        f"{status} run {run.run} (version {run.version}) stored; files in "
        f"[bold]{escape(str(out_dir))}[/bold]"
    )
    if more > 0:
        names = file_names(run)
        console.print(
            f"the table lists the first {TABLE_ROWS} of {len(run.invoices):,} invoices; every "
            f"one is in {escape(names['summary'])} and {escape(names['lines'])}"
        )


@app.command(
    "bill",
    help=(
        "Bill a site for whole local days: invoices per billing unit and contract (PDF and "
        "HTML), a CSV and a JSON of all lines, the reconciliation against the grid connection "
        "(CSV, JSON) and a run summary.\n\n"
        "A run is a [bold]draft[/bold] (DRAFT on every page) unless [bold]--final[/bold] is "
        "given. A final run is refused while a metering point it depends on holds L3 "
        "substitute values or missing values (Q-1); each is listed with its count of quarter "
        "hours and first and last label. Every run is stored unchanged; billing a period again "
        "gives its next version.\n\n"
        "Exit codes: 0 success, 1 bad input or refused, 2 store error."
    ),
    epilog=(
        "Example: [bold]lastgang bill --site emergency-power --from 2024-01-01 --to 2024-12-31 "
        "--out bills/2024 --final[/bold]"
    ),
)
def bill_command(
    site: SiteOption,
    first: Annotated[str, typer.Option("--from", help="First local day.", metavar="DATE")],
    last: Annotated[str, typer.Option("--to", help="Last local day (inclusive).", metavar="DATE")],
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Folder for the run's files (default: bills/<site>-R<run>-V<version>).",
            metavar="DIR",
        ),
    ] = None,
    final: Annotated[
        bool, typer.Option("--final", help="Bill final (refused with L3 or missing values).")
    ] = False,
    threshold: Annotated[
        str,
        typer.Option(
            "--threshold",
            help="Reconciliation: flag months whose difference exceeds this many percent.",
            metavar="PCT",
        ),
    ] = "1",
    pdf: Annotated[
        bool,
        typer.Option("--pdf/--no-pdf", help="Write a PDF next to each HTML invoice."),
    ] = True,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    first_day, last_day = parse_day(first, "--from"), parse_day(last, "--to")
    try:
        limit = billing_service.parse_threshold(threshold)
    except LastgangError as exc:
        raise fail(exc, as_json) from None
    with store_session(db, as_json) as store, progress_bar(not as_json) as progress:
        result = billing_service.bill(
            store,
            site,
            first_day,
            last_day,
            out_dir=out,
            final=final,
            threshold_percent=limit,
            pdf=pdf,
            progress=progress,
        )
    if as_json:
        data = summary(result.run, sorted(p.name for p in result.files.values()))
        data["out_dir"] = str(result.out_dir)
        echo_json(data)
        return
    _print_run(result.run, result.out_dir)


@app.command(
    "runs",
    help=(
        "List the stored billing runs: run number, site, period, version, status (draft or "
        "final), when it was created, and its totals."
    ),
    epilog="Example: [bold]lastgang runs --site emergency-power[/bold]",
)
def runs_command(
    site: Annotated[
        str | None, typer.Option("--site", help="Only this site.", metavar="ID")
    ] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    with store_session(db, as_json) as store:
        records = billing_service.list_runs(store, site)
    rows = [
        {
            "run": r.run,
            "site": r.site_id,
            "first_day": r.first_day.isoformat(),
            "last_day": r.last_day.isoformat(),
            "version": r.version,
            "status": r.status,
            "created_at": r.created_at.isoformat(),
            "invoices": r.invoices,
            "currency": r.currency,
            "net": str(r.net),
            "vat": str(r.vat),
            "total": str(r.total),
            "fingerprint": r.fingerprint,
        }
        for r in records
    ]
    if as_json:
        echo_json(rows)
        return
    if not rows:
        Console().print(
            "no billing runs stored yet" + (f" for site {escape(site)}" if site else "")
        )
        return
    table = Table(title="Billing runs" + (f" of site {escape(site)}" if site else ""))
    for name, justify in (
        ("run", "right"),
        ("site", "left"),
        ("period", "left"),
        ("version", "right"),
        ("status", "left"),
        ("created", "left"),
        ("invoices", "right"),
        ("net", "right"),
        ("total", "right"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for r in records:
        table.add_row(
            str(r.run),
            escape(r.site_id),
            f"{r.first_day} – {r.last_day}",
            str(r.version),
            r.status if r.status == "final" else "[red]draft[/red]",
            r.created_at.strftime("%Y-%m-%d %H:%M UTC"),
            str(r.invoices),
            format_money(r.net),
            format_money(r.total, r.currency),
        )
    Console().print(table)
