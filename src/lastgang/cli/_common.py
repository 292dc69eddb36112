"""What every ``lastgang`` command shares: options, exit codes, error output, JSON, progress.

Exit codes (the same for every command, see ``docs/cli.md``):

- ``0`` success;
- ``1`` invalid input or a refused request: a file, a site configuration, an option, a final run
  over data that is not final-ready. Every problem is listed with its place;
- ``2`` a store problem: the store file is locked by another process, is not a lastgang store,
  or does not know the site.

Errors go to standard error with what to do next; ``--json`` prints them as a JSON object
(``error``, ``exit_code``, ``problems``) on standard output instead, so a script reads one stream.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)

from lastgang.errors import LastgangError, Problem
from lastgang.store import DB_ENV, Store, open_store, resolve_db_path

__all__ = [
    "EXIT_CODES",
    "EXIT_INPUT",
    "EXIT_OK",
    "EXIT_STORE",
    "DbOption",
    "JsonOption",
    "SiteOption",
    "echo_json",
    "epilog",
    "err_console",
    "fail",
    "next_step",
    "parse_day",
    "problem_dict",
    "progress_bar",
    "store_session",
]

EXIT_OK = 0
EXIT_INPUT = 1
EXIT_STORE = 2

#: the sentence every command's help ends with
EXIT_CODES = "Exit codes: 0 success, 1 invalid input or refused, 2 store problem."

DbOption = Annotated[
    Path | None,
    typer.Option(
        "--db",
        help=f"The store file (default: ${DB_ENV}, else ./lastgang.duckdb).",
        metavar="PATH",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
SiteOption = Annotated[str, typer.Option("--site", help="The site id.", metavar="ID")]


def err_console() -> Console:
    """A console on standard error (made per call: test runners swap ``sys.stderr``)."""
    return Console(stderr=True)


def epilog(*examples: str, exit_codes: bool = True) -> str:
    """A command's ``--help`` epilog: its examples, one per line, and the exit codes."""
    parts = ["[bold]Examples[/bold]"]
    parts += [f"  [cyan]{escape(example)}[/cyan]" for example in examples]
    text = "\n\n".join(parts)
    if exit_codes:
        text += "\n\n" + EXIT_CODES
    return text


def problem_dict(p: Problem) -> dict[str, object]:
    """A problem as JSON: severity, file, line, column, meter, time, message."""
    return {
        "severity": p.severity,
        "file": p.file,
        "line": p.line,
        "column": p.column,
        "meter": p.meter,
        "time": p.time,
        "message": p.reason,
    }


def next_step(exc: LastgangError) -> str | None:
    """What to do next after ``exc``, where its message does not say it already."""
    text = exc.message.lower()
    name = type(exc).__name__
    if name == "ConceptError" and "lastgang check" not in text:
        return "see every problem with its line: lastgang check SITE.toml"
    return None


def fail(
    exc: LastgangError, as_json: bool = False, problems: Sequence[Problem] | None = None
) -> typer.Exit:
    """Print ``exc`` with every problem (``problems`` instead of its own where given) and what
    to do next; return the exit to raise (``raise fail(exc, as_json) from None``): 1 for
    invalid input, 2 for the store."""
    hint = next_step(exc)
    listed = exc.problems if problems is None else problems
    if as_json:
        payload: dict[str, Any] = {
            "error": exc.message,
            "exit_code": exc.exit_code,
            "problems": [problem_dict(p) for p in listed],
        }
        if hint:
            payload["next"] = hint
        echo_json(payload)
    else:
        console = err_console()
        console.print(f"[bold red]error:[/bold red] {escape(exc.message)}", highlight=False)
        for p in listed:
            colour = "yellow" if p.severity == "warning" else "red"
            where = p.where()
            text = f"{where}: {p.reason}" if where else p.reason
            console.print(f"  [{colour}]-[/{colour}] {escape(text)}", highlight=False)
        if hint:
            console.print(f"[bold]next:[/bold] {escape(hint)}", highlight=False)
    return typer.Exit(code=exc.exit_code)


def echo_json(payload: Any) -> None:
    """``payload`` as indented JSON (UTF-8 kept) on standard output."""
    typer.echo(json.dumps(payload, indent=2, ensure_ascii=False, default=str))


def parse_day(text: str, option: str) -> date:
    """An ISO date given to ``option``; a usage error (exit 2 by Click) otherwise."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is not an ISO date (YYYY-MM-DD)", param_hint=option
        ) from None


@contextmanager
def store_session(
    db: Path | None,
    as_json: bool = False,
    adjust: Callable[[tuple[Problem, ...]], Sequence[Problem]] | None = None,
) -> Iterator[Store]:
    """Open the store from ``--db``, ``LASTGANG_DB`` or ``./lastgang.duckdb``; every lastgang
    error inside becomes a printed error and its exit code (its problems passed through
    ``adjust`` first, e.g. to add TOML line numbers); the store is closed at the end."""

    def exit_for(exc: LastgangError) -> typer.Exit:
        return fail(exc, as_json, None if adjust is None else adjust(exc.problems))

    try:
        store = open_store(resolve_db_path(db), notice=lambda text: err_console().print(text))
    except LastgangError as exc:
        raise exit_for(exc) from None
    try:
        yield store
    except LastgangError as exc:
        raise exit_for(exc) from None
    finally:
        store.close()


class _Bar:
    """A ``progress(what, done, total)`` callback on a Rich progress bar."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._task = progress.add_task("starting", total=None)

    def __call__(self, what: str, done: int, total: int) -> None:
        self._progress.update(
            self._task, description=escape(what), completed=done, total=total or None
        )

    def stage(self, what: str, total: int | None = None) -> None:
        """Start a new stage: the bar restarts at 0 of ``total`` (``None``: a spinner)."""
        self._progress.update(self._task, description=escape(what), completed=0, total=total)


@contextmanager
def progress_bar(enabled: bool = True, *, transient: bool = True) -> Iterator[_Bar | None]:
    """A progress bar on standard error while a long operation runs, as a
    ``progress(what, done, total)`` callback; ``None`` when disabled or when standard error is
    not a terminal (scripts and logs get no bar)."""
    console = err_console()
    if not enabled or not console.is_terminal:
        yield None
        return
    columns: Sequence[Any] = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=transient) as bar:
        yield _Bar(bar)
