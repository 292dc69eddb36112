"""Command-line interface: ``lastgang`` (Typer + Rich). Commands call services, never SQL.

Each command group lives in its own module and is registered here.

Exit codes are the same for every command (``docs/cli.md``): 0 success, 1 invalid input or a
refused request (usage errors such as a malformed date included), 2 a store problem.
"""

from __future__ import annotations

from typing import Any

import typer
from typer._click.exceptions import NoArgsIsHelpError, UsageError  # Typer's own Click
from typer.core import TyperGroup


class _Group(TyperGroup):
    """The root group: a usage error (unknown option, malformed value) is invalid input and
    exits with 1, so that 2 always means a store problem."""

    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().make_context(*args, **kwargs)
        except UsageError as exc:
            _as_input_error(exc)
            raise

    def invoke(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().invoke(*args, **kwargs)
        except UsageError as exc:
            _as_input_error(exc)
            raise


def _as_input_error(exc: UsageError) -> None:
    if not isinstance(exc, NoArgsIsHelpError):
        exc.exit_code = 1


app = typer.Typer(
    name="lastgang",
    cls=_Group,
    help="Turn electricity meter data into correct, explainable bills (TOR Stromzähler).",
    epilog=(
        "Start with [bold]lastgang demo[/bold] (or [bold]make demo[/bold]). Your own building: "
        "[bold]lastgang check[/bold] site.toml, [bold]lastgang site apply[/bold] site.toml, "
        "[bold]lastgang import[/bold], [bold]lastgang bill[/bold], [bold]lastgang chart[/bold]. "
        "Every command has --help with examples; docs/cli.md is the reference.\n\n"
        "Exit codes: 0 success, 1 invalid input or refused, 2 store problem."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"lastgang {version('lastgang')}")
        raise typer.Exit()


@app.callback()
def _root(
    show_version: bool = typer.Option(
        False,
        "--version",
        help="Print the version and exit.",
        callback=_version,
        is_eager=True,
    ),
) -> None:
    """Turn electricity meter data into correct, explainable bills (TOR Stromzähler)."""


def main() -> None:
    """Console script entry point."""
    from lastgang.cli import commands  # noqa: F401  (registers the commands)

    app()
