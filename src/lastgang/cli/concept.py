"""``lastgang check``: check a measurement concept (site configuration) as a whole."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from lastgang.cli import app
from lastgang.cli._common import echo_json, problem_dict
from lastgang.concept.load import load_site
from lastgang.concept.validate import check_site
from lastgang.errors import LastgangError, Problem

_HEADER = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.\-\" ]+?)\s*\]\]?\s*(?:#.*)?$")
_KEY = re.compile(r"^\s*([A-Za-z0-9_\-]+|\"[^\"]*\")\s*=")


def toml_lines(text: str) -> dict[str, int]:
    """1-based line of every table and key of a TOML file, by TOML path
    (``locations[2].meters[0].ct``). Best effort for the usual layout of site files: tables and
    arrays of tables with ``[...]``/``[[...]]`` headers, one ``key = value`` per line."""
    lines: dict[str, int] = {}
    counts: dict[str, int] = {}  # array of tables (path with indices of parents) -> next index
    current = ""
    resolved: dict[str, str] = {}  # dotted header name -> path with indices
    for number, raw in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(raw)
        if header:
            array = header.group(1) == "[["
            names = [n.strip().strip('"') for n in header.group(2).split(".")]
            path = ""
            for depth, name in enumerate(names):
                dotted = ".".join(names[: depth + 1])
                last = depth == len(names) - 1
                base = f"{path}.{name}" if path else name
                if last and array:
                    index = counts.get(base, 0)
                    counts[base] = index + 1
                    path = f"{base}[{index}]"
                    # a new element resets the arrays nested in it
                    for nested in [k for k in counts if k.startswith(path + ".")]:
                        del counts[nested]
                elif not last and dotted in resolved:
                    path = resolved[dotted]
                else:
                    path = base
                resolved[dotted] = path
            if array:
                lines.setdefault(path.rsplit("[", 1)[0], number)
            lines[path] = number
            current = path
            continue
        key = _KEY.match(raw)
        if key:
            name = key.group(1).strip('"')
            lines.setdefault(f"{current}.{name}" if current else name, number)
    return lines


def line_of(lines: dict[str, int], column: str | None) -> int | None:
    """The line of a TOML path, or of the nearest enclosing table or key that has one."""
    path = column
    while path:
        if path in lines:
            return lines[path]
        cut = max(path.rfind("."), path.rfind("["))
        path = path[:cut] if cut > 0 else ""
    return None


def _problem_dict(p: Problem) -> dict[str, object]:
    """A problem of a site file as JSON: :func:`problem_dict` without ``time`` (a site file's
    problems have no time)."""
    out = problem_dict(p)
    del out["time"]
    return out


def _parse_period(text: str) -> tuple[date, date]:
    first, sep, last = text.partition(":")
    try:
        if not sep:
            raise ValueError
        return date.fromisoformat(first.strip()), date.fromisoformat(last.strip())
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is not FIRST:LAST with ISO dates, e.g. 2025-01-01:2025-12-31"
        ) from None


@app.command(
    "check",
    help=(
        "Check a measurement concept (site configuration) as a whole.\n\n"
        "Lists every problem at once with its place in the file: unknown references, wiring "
        "loops and virtual meter cycles, metering point IDs (TOR-4.1), accuracy classes "
        "(TOR-5.1/A3), grid billing meters in series (TOR-5.4), overlapping meter "
        "installations, calibration (TOR-6.1), billing units without a meter, tariffs and "
        "combinations that cannot be billed."
    ),
    epilog=(
        "Example: [bold]lastgang check examples/emergency-power/site.toml[/bold]\n\n"
        "Exit code 0 when there is no error (warnings only), 1 when there are errors."
    ),
)
def check(
    site_file: Annotated[
        Path, typer.Argument(help="The site configuration (TOML).", metavar="SITE.toml")
    ],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the problems as a JSON list.")
    ] = False,
    today: Annotated[
        str | None,
        typer.Option(help="Date for the calibration checks (ISO, default: today).", metavar="DATE"),
    ] = None,
    period: Annotated[
        list[str] | None,
        typer.Option(
            help="A billing period FIRST:LAST (local days, inclusive) to check calibration "
            "against; repeat for several.",
            metavar="FIRST:LAST",
        ),
    ] = None,
) -> None:
    on_day: date | None = None
    if today is not None:
        try:
            on_day = date.fromisoformat(today)
        except ValueError:
            raise typer.BadParameter(f"{today!r} is not an ISO date (YYYY-MM-DD)") from None
    periods = [_parse_period(p) for p in period or []]
    try:
        site = load_site(site_file)
        problems = check_site(site, today=on_day, periods=periods)
    except LastgangError as exc:
        problems = list(exc.problems) or [Problem(exc.message)]
    try:
        lines = toml_lines(site_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        lines = {}
    problems = [
        replace(
            p,
            file=p.file or str(site_file),
            line=p.line if p.line is not None else line_of(lines, p.column),
        )
        for p in problems
    ]
    problems.sort(key=lambda p: (p.severity != "error", p.line or 0))
    errors = sum(p.severity == "error" for p in problems)
    warnings = len(problems) - errors
    if as_json:
        echo_json([_problem_dict(p) for p in problems])
    else:
        console = Console()
        if problems:
            table = Table(title=f"Problems of {escape(str(site_file))}")
            table.add_column("severity", no_wrap=True)
            table.add_column("place", overflow="fold")
            table.add_column("message", overflow="fold")
            for p in problems:
                severity = (
                    "[bold red]error[/bold red]"
                    if p.severity == "error"
                    else "[yellow]warning[/yellow]"
                )
                place = f"line {p.line}" if p.line is not None else ""
                if p.column:
                    place = f"{place}\n{p.column}" if place else p.column
                table.add_row(severity, escape(place or "-"), escape(p.reason))
            console.print(table)
        verdict = "[green]ok[/green]" if not errors else "[bold red]not usable[/bold red]"
        console.print(
            f"{escape(str(site_file))}: {verdict}: {errors} error(s), {warnings} warning(s)"
        )
    if errors:
        raise typer.Exit(code=1)
