"""``lastgang id``: metering point IDs (Zählpunktbezeichnung, TOR-4.1)."""

from __future__ import annotations

from typing import Annotated, TypedDict

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from lastgang.cli import app
from lastgang.cli._common import echo_json
from lastgang.ids import check_metering_point_id, parse_metering_point_id

id_app = typer.Typer(
    name="id",
    help="Metering point IDs (Zählpunktbezeichnung, TOR-4.1).",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
app.add_typer(id_app, name="id")


class IdResult(TypedDict):
    input: str
    valid: bool
    canonical: str | None
    dotted: str | None
    problems: list[str]


def check_ids(texts: list[str]) -> list[IdResult]:
    """One result per text: both forms when valid, else every problem."""
    results: list[IdResult] = []
    for text in texts:
        problems = check_metering_point_id(text)
        if problems:
            results.append(
                IdResult(
                    input=text,
                    valid=False,
                    canonical=None,
                    dotted=None,
                    problems=[p.reason for p in problems],
                )
            )
        else:
            mp = parse_metering_point_id(text)
            results.append(
                IdResult(
                    input=text, valid=True, canonical=mp.canonical, dotted=mp.dotted, problems=[]
                )
            )
    return results


@id_app.command(
    "check",
    help=(
        "Check metering point IDs and show their 33-character and dotted forms.\n\n"
        "Every problem of an ID is listed: its length, the country code (ISO 3166-1), the "
        "network operator number (6 digits), the postal code (5 digits) and the metering point "
        "number (20 characters A-Z, 0-9). In the dotted form, short segments are padded with "
        "zeros on the left."
    ),
    epilog=(
        "Example: [bold]lastgang id check AT.008100.08010.0O6G56M11SN51G21M24S[/bold]\n\n"
        "Exit code 0 if every ID is valid, 1 otherwise."
    ),
)
def check(
    ids: Annotated[
        list[str],
        typer.Argument(
            help="IDs in the 33-character form or the dotted form (AT.008100.08010.0O6G...)",
            show_default=False,
            metavar="ID",
        ),
    ],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print a JSON list instead of a table.")
    ] = False,
) -> None:
    results = check_ids(ids)
    if as_json:
        echo_json(results)
    else:
        table = Table(title="Metering point IDs (TOR-4.1)")
        # Columns fold (never crop) when the terminal is too narrow to show the IDs whole.
        table.add_column("input", overflow="fold")
        table.add_column("canonical", overflow="fold")
        table.add_column("dotted", overflow="fold")
        table.add_column("result", overflow="fold")
        for r in results:
            result = (
                "[green]ok[/green]"
                if r["valid"]
                else "\n".join(f"[red]-[/red] {escape(p)}" for p in r["problems"])
            )
            table.add_row(escape(r["input"]), r["canonical"] or "-", r["dotted"] or "-", result)
        Console().print(table)
    if not all(r["valid"] for r in results):
        raise typer.Exit(code=1)
