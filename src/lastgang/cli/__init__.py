"""Command-line interface: ``lastgang`` (Typer + Rich). Commands call services, never SQL.

Each command group lives in its own module and is registered here.
"""

from __future__ import annotations

import typer

app = typer.Typer(
    name="lastgang",
    help="Turn electricity meter data into correct, explainable bills (TOR Stromzähler).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


def main() -> None:
    """Console script entry point."""
    from lastgang.cli import commands  # noqa: F401  (registers the commands)

    app()
