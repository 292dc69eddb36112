"""Data commands: ``lastgang site apply``, ``lastgang import``, ``lastgang profile``,
``lastgang rebuild``. They call :mod:`lastgang.services`; the store is opened from ``--db``,
``LASTGANG_DB`` or ``./lastgang.duckdb``.

Exit codes: 0 success, 1 bad input (every problem listed), 2 the store refused (locked file,
reused metering point ID, unknown site).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from lastgang import services
from lastgang.cli import app
from lastgang.cli._common import DbOption, JsonOption, SiteOption, problem_dict, store_session
from lastgang.errors import Problem
from lastgang.store import Store

site_app = typer.Typer(
    name="site",
    help="Site configurations in the store: apply a new version, list versions.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
app.add_typer(site_app, name="site")

_err = Console(stderr=True)


def _with_toml_lines(problems: tuple[Problem, ...]) -> list[Problem]:
    """Add the line in the site file to problems that name a TOML path."""
    from lastgang.cli.concept import line_of, toml_lines

    cache: dict[str, dict[str, int]] = {}
    out: list[Problem] = []
    for p in problems:
        if p.line is None and p.column and p.file and p.file.endswith(".toml"):
            if p.file not in cache:
                try:
                    cache[p.file] = toml_lines(Path(p.file).read_text(encoding="utf-8"))
                except (OSError, UnicodeDecodeError):
                    cache[p.file] = {}
            p = replace(p, line=line_of(cache[p.file], p.column))
        out.append(p)
    return out


def _store(db: Path | None, as_json: bool) -> AbstractContextManager[Store]:
    """The store session of the data commands: problems of a site file with their TOML lines."""
    return store_session(db, as_json, adjust=_with_toml_lines)


@contextmanager
def _progress(enabled: bool) -> Iterator[services.Progress | None]:
    """A Rich progress bar on stderr, as a ``progress(what, done, total)`` callback."""
    if not enabled or not _err.is_terminal:
        yield None
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=_err, transient=True) as bar:
        task = bar.add_task("starting", total=None)

        def report(what: str, done: int, total: int) -> None:
            bar.update(task, description=escape(what), completed=done, total=total)

        yield report


def _warnings(problems: tuple[Problem, ...]) -> None:
    for p in _with_toml_lines(problems):
        where = p.where()
        _err.print(
            f"[yellow]warning:[/yellow] {escape(where + ': ' if where else '')}{escape(p.reason)}",
            highlight=False,
        )


# ---------------------------------------------------------------------------------------------
# lastgang site ...


@site_app.command(
    "apply",
    help=(
        "Check a site configuration and store it as the site's next version.\n\n"
        "Errors (see [bold]lastgang check[/bold]) refuse it; warnings are printed. Older "
        "versions are kept. A metering point ID once given to a location is never moved to "
        "another location or reused (TOR-4.1). When meters changed and the site already has "
        "data, its profiles are rebuilt from the raw archive (see [bold]lastgang rebuild[/bold])."
    ),
    epilog=(
        "Example: [bold]lastgang site apply site.toml --db data.duckdb[/bold]\n\n"
        "Exit codes: 0 success, 1 invalid configuration, 2 store problem (a metering point ID "
        "of another location, locked store)."
    ),
)
def site_apply(
    site_file: Annotated[
        Path, typer.Argument(help="The site configuration (TOML).", metavar="SITE.toml")
    ],
    db: DbOption = None,
    as_json: JsonOption = False,
    rebuild: Annotated[
        bool,
        typer.Option("--rebuild/--no-rebuild", help="Rebuild the profiles when meters changed."),
    ] = True,
) -> None:
    with _store(db, as_json) as store, _progress(not as_json) as progress:
        result = services.apply_site(store, site_file, rebuild=rebuild, progress=progress)
    version = result.version
    if as_json:
        payload: dict[str, Any] = {
            "site": version.site_id,
            "version": version.version,
            "applied_at": version.applied_at.isoformat(),
            "effective_from": (
                None if version.effective_from is None else version.effective_from.isoformat()
            ),
            "changed_locations": list(result.changed_locations),
            "warnings": [problem_dict(p) for p in _with_toml_lines(result.warnings)],
            "rebuilt": None if result.rebuilt is None else _rebuilt_json(result.rebuilt),
            "rebuild_pending": services.locations_listed(result.pending),
        }
        typer.echo(json.dumps(payload, indent=2, ensure_ascii=False))
        return
    _warnings(result.warnings)
    console = Console()
    effective = ""
    if version.effective_from is not None:
        local = version.effective_from.astimezone(ZoneInfo(version.site.site.timezone))
        effective = f", meter changes take effect from {local.isoformat()}"
    console.print(
        f"site [bold]{escape(version.site_id)}[/bold]: version {version.version} applied"
        f"{escape(effective)}"
    )
    if result.changed_locations:
        console.print(
            f"locations with meter changes: {escape(', '.join(result.changed_locations))}"
        )
    if result.rebuilt is not None:
        console.print(
            f"profiles {_rebuilt_text(result.rebuilt)}, {_read_text(result.rebuilt)}, "
            f"{result.rebuilt.changed} value(s) changed (kept in the history)"
        )
    pending = services.locations_listed(result.pending)
    if pending:
        what = "every location" if pending == "all" else ", ".join(pending)
        console.print(
            f"awaiting a rebuild ([bold]lastgang rebuild --pending[/bold]): {escape(what)}"
        )


def _read_text(result: services.RebuildResult) -> str:
    return f"{result.read} of {result.batches} archived batch(es) read again"


def _rebuilt_json(result: services.RebuildResult) -> dict[str, Any]:
    return {
        "batches": result.batches,
        "read": result.read,
        "changed_values": result.changed,
        "locations": services.locations_listed(result.locations),
    }


def _rebuilt_text(result: services.RebuildResult) -> str:
    if result.locations is None:
        return "of every location rebuilt"
    if not result.locations:
        return "of no location rebuilt (none awaited a rebuild)"
    return f"of {len(result.locations)} location(s) rebuilt ({escape(', '.join(result.locations))})"


@site_app.command(
    "versions",
    help="List the stored versions of a site configuration.",
    epilog=(
        "Example: [bold]lastgang site versions emergency-power[/bold]\n\n"
        "Exit codes: 0 success, 2 store problem (unknown site)."
    ),
)
def site_versions(
    site_id: Annotated[str, typer.Argument(help="The site id.", metavar="ID")],
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    with _store(db, as_json) as store:
        store.site_version(site_id)  # unknown site -> StoreError
        versions = store.site_versions(site_id)
    rows = [
        {
            "version": v.version,
            "applied_at": v.applied_at.isoformat(),
            "effective_from": None if v.effective_from is None else v.effective_from.isoformat(),
            "source": v.source,
        }
        for v in versions
    ]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table(title=f"Versions of site {escape(site_id)}")
    for name in ("version", "applied_at", "effective_from", "source"):
        table.add_column(name)
    for r in rows:
        table.add_row(*(escape(str(r[k] if r[k] is not None else "-")) for k in r))
    Console().print(table)


# ---------------------------------------------------------------------------------------------
# lastgang import / rebuild / profile


@app.command(
    "import",
    help=(
        "Import files of meter readings into a site.\n\n"
        "CSV register readings, phase power samples or interval values (see "
        "docs/data-formats.md), EDA ConsumptionRecord messages (--format eda), smart meter "
        "telegrams (--format dlms --key HEX), vendor CSV/Excel/Parquet files with a column "
        "mapping (--format vendor --mapping map.toml) and MQTT captures (--format mqtt); "
        "folders are read recursively and every member of a zip archive is its own input. "
        "Every file is checked first; a file with any problem is "
        "rejected whole and nothing is imported, with every problem listed (file, line, "
        "column). The bytes of each file are archived unchanged (TOR-7.1); importing the same "
        "bytes again changes nothing. The load profiles the readings touch are rebuilt."
    ),
    epilog=(
        "Example: [bold]lastgang import --site graz-lend-12 readings/*.csv[/bold]\n\n"
        "Exit codes: 0 success, 1 a file was refused (nothing imported), 2 store problem "
        "(unknown site: apply it first with lastgang site apply)."
    ),
)
def import_command(
    files: Annotated[
        list[Path], typer.Argument(help="Files, folders or zip archives.", metavar="FILE...")
    ],
    site: SiteOption,
    db: DbOption = None,
    as_json: JsonOption = False,
    format: Annotated[
        str,
        typer.Option(
            "--format", help="auto, csv, eda, dlms, vendor, xlsx, parquet or mqtt.", metavar="FMT"
        ),
    ] = "auto",
    key: Annotated[
        list[str] | None,
        typer.Option(
            "--key",
            help="Smart meter key: HEX for every meter, or SYSTEMTITLE=HEX (repeatable).",
            metavar="KEY",
        ),
    ] = None,
    mapping: Annotated[
        Path | None,
        typer.Option("--mapping", help="Vendor column mapping (TOML).", metavar="FILE"),
    ] = None,
    map_line: Annotated[
        list[str] | None,
        typer.Option(
            "--map",
            help="One line of a vendor mapping, e.g. 'columns.Bezug = \"top1:import\"' "
            "(repeatable, after --mapping).",
            metavar="KEY=VALUE",
        ),
    ] = None,
) -> None:
    from lastgang.ingest.dispatch import import_options

    with _store(db, as_json) as store, _progress(not as_json) as progress:
        options = import_options(format, key or [], mapping, map_line or [])
        results = services.import_files(
            store, site, files, progress=progress, format=format, options=options
        )
    rows = [
        {
            "file": r.file,
            "kind": r.kind,
            "rows": r.rows,
            "batch": r.batch,
            "metering_points": r.metering_points,
            "slots": r.slots,
            "status": r.status,
        }
        for r in results
    ]
    if as_json:
        for row, result in zip(rows, results, strict=True):
            if result.warnings:
                row["warnings"] = [problem_dict(p) for p in result.warnings]
        typer.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    _warnings(tuple(p for result in results for p in result.warnings))
    table = Table(title=f"Import into site {escape(site)}")
    for name, justify in (
        ("file", "left"),
        ("kind", "left"),
        ("rows", "right"),
        ("batch", "right"),
        ("metering points", "right"),
        ("slots", "right"),
        ("status", "left"),
    ):
        table.add_column(name, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for r in rows:
        table.add_row(*(escape(str(v)) for v in r.values()))
    Console().print(table)


@app.command(
    "rebuild",
    help=(
        "Rebuild a site's readings and load profiles from its raw archive with the current "
        "site configuration (for example after correcting a transformer ratio). Values that "
        "change are kept in the profile history."
    ),
    epilog=(
        "Example: [bold]lastgang rebuild --site emergency-power[/bold]\n\n"
        "Exit codes: 0 success, 1 the configuration refuses archived data (nothing rebuilt), "
        "2 store problem."
    ),
)
def rebuild_command(
    site: SiteOption,
    db: DbOption = None,
    as_json: JsonOption = False,
    pending: Annotated[
        bool,
        typer.Option(
            "--pending",
            help="Only the locations that the versions applied since the last rebuild read "
            "otherwise (after [bold]site apply --no-rebuild[/bold]); the result is the same.",
        ),
    ] = False,
) -> None:
    with _store(db, as_json) as store, _progress(not as_json) as progress:
        result = services.rebuild_profiles(store, site, progress=progress, pending=pending)
    if as_json:
        typer.echo(json.dumps({"site": result.site_id, **_rebuilt_json(result)}, indent=2))
        return
    Console().print(
        f"site [bold]{escape(result.site_id)}[/bold]: profiles {_rebuilt_text(result)}, "
        f"{_read_text(result)}, {result.changed} stored value(s) changed (kept in the history)"
    )


def _day(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is not an ISO date (YYYY-MM-DD)", param_hint=option
        ) from None


@app.command(
    "profile",
    help=(
        "Write the load profile of a metering point as CSV: end (period-end label with UTC "
        "offset, TOR-4.2), import_kwh, export_kwh, quality (the worst in the period; missing "
        "when any quarter hour is missing). Values are unrounded. Dates are local days, "
        "inclusive."
    ),
    epilog=(
        "Example: [bold]lastgang profile --site graz-lend-12 top1 --from 2024-10-01 "
        "--to 2024-10-31 --resolution day[/bold]\n\n"
        "Exit codes: 0 success, 1 unknown metering point or bad option, 2 store problem."
    ),
)
def profile_command(
    target: Annotated[
        str,
        typer.Argument(help="A metering point ID or a location id.", metavar="METERING_POINT"),
    ],
    site: SiteOption,
    first: Annotated[str, typer.Option("--from", help="First local day.", metavar="DATE")],
    last: Annotated[str, typer.Option("--to", help="Last local day.", metavar="DATE")],
    resolution: Annotated[
        str, typer.Option(help="15min, 30min, 1h, day or month.", metavar="RES")
    ] = "15min",
    out: Annotated[
        Path | None, typer.Option("--out", help="Write to FILE instead of stdout.", metavar="FILE")
    ] = None,
    db: DbOption = None,
) -> None:
    first_day, last_day = _day(first, "--from"), _day(last, "--to")
    with _store(db, False) as store:
        table = services.export_profile(store, site, target, first_day, last_day, resolution)
    text = table.to_csv()
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text, encoding="utf-8")
        _err.print(
            f"{len(table.end)} period(s) of {escape(table.location_id)} written to "
            f"{escape(str(out))}"
        )
