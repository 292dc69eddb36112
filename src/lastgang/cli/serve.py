"""``lastgang serve`` (the web application and HTTP API), ``lastgang user add`` and
``lastgang token create``.

The store is one process's at a time (DuckDB's file lock): add users and tokens while the server
is stopped. Exit codes: 0 success, 1 bad input, 2 the store refused (locked, unknown site).
"""

from __future__ import annotations

import getpass
import os
import sys
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from lastgang.cli import app
from lastgang.cli._common import DbOption
from lastgang.errors import LastgangError, StoreError
from lastgang.store import Store, open_store, resolve_db_path

__all__ = ["serve", "token_create", "user_add"]

user_app = typer.Typer(
    name="user", help="User accounts of the web interface.", no_args_is_help=True
)
token_app = typer.Typer(
    name="token", help="API tokens (per site, with a scope).", no_args_is_help=True
)
app.add_typer(user_app, name="user")
app.add_typer(token_app, name="token")

_out = Console()
_err = Console(stderr=True)


def _fail(exc: LastgangError) -> typer.Exit:
    _err.print(f"[red]error:[/red] {exc.message}", highlight=False, markup=True)
    for p in exc.problems:
        _err.print(f"  {p}", highlight=False, markup=False)
    return typer.Exit(code=exc.exit_code)


@contextmanager
def _store(db: Path | None) -> Iterator[tuple[Path, Store]]:
    """The store file and the store opened on it (closed at the end); a lastgang error inside
    is printed and becomes its exit code."""
    path = resolve_db_path(db)
    try:
        store = open_store(path, notice=lambda text: _err.print(text))
        try:
            yield path, store
        finally:
            store.close()
    except LastgangError as exc:
        failure = _fail(exc)
        if isinstance(exc, StoreError) and "in use by another" in exc.message:
            _err.print(
                "hint: a running server adds users and tokens itself: POST /api/v1/users and "
                "POST /api/v1/sites/SITE/tokens as a signed-in administrator (docs/web.md)",
                highlight=False,
            )
        raise failure from None


@app.command(
    "serve",
    epilog=(
        "Example: [bold]lastgang serve --port 8000 --db data.duckdb[/bold] (then open "
        "http://127.0.0.1:8000; stop it with Ctrl+C)\n\n"
        "Exit codes: 0 stopped, 2 store problem (for example in use by another process)."
    ),
)
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    db: DbOption = None,
    secure_cookies: Annotated[
        bool | None,
        typer.Option(
            "--secure-cookies/--no-secure-cookies",
            help="Force the Secure flag on cookies (default: when the request came over https).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Serve the web interface and the HTTP API (/api/v1) on the store."""
    import uvicorn

    from lastgang.api.app import create_app, first_admin_hint

    path = resolve_db_path(db)
    try:
        application = create_app(path, secure_cookies=secure_cookies)
    except LastgangError as exc:
        raise _fail(exc) from None
    state = application.state.lastgang
    if state.accounts.user_count() == 0:
        _out.print(
            "No user exists yet. Stop the server (Ctrl+C) and "
            f"{first_admin_hint(path)}; then start it again.",
            highlight=False,
        )
    _out.print(f"lastgang on http://{host}:{port}/ (store {path})", highlight=False)
    uvicorn.run(application, host=host, port=port, log_level="info", proxy_headers=True)


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    env = os.environ.get("LASTGANG_PASSWORD")
    if env:
        return env
    first = getpass.getpass("Password: ")
    if getpass.getpass("Password again: ") != first:
        _err.print("error: the passwords differ; nothing was changed")
        raise typer.Exit(code=1)
    return first


@user_app.command(
    "add",
    epilog=(
        "Example: [bold]lastgang user add anna --role tenant --site emergency-power "
        "--unit top-1[/bold]\n\n"
        "Exit codes: 0 success, 1 invalid input, 2 store problem."
    ),
)
def user_add(
    name: Annotated[str, typer.Argument(help="The login name.")],
    role: Annotated[
        str, typer.Option(help="admin (every site), operator or tenant.", metavar="ROLE")
    ] = "operator",
    site: Annotated[
        str | None, typer.Option("--site", help="The site (operator: only this one).", metavar="ID")
    ] = None,
    unit: Annotated[
        str | None, typer.Option("--unit", help="The billing unit of a tenant.", metavar="ID")
    ] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
    db: DbOption = None,
) -> None:
    """Add a user of the web interface (the password is asked for, or read from standard input
    or $LASTGANG_PASSWORD)."""
    from lastgang.api.accounts import Role, open_accounts

    if role not in {r.value for r in Role}:
        _err.print(f"error: unknown role {role!r}: use admin, operator or tenant")
        raise typer.Exit(code=1)
    with _store(db) as (path, store):
        known = store.site_ids()
        if site is not None and unit is not None and site in known:
            units = [u.id for u in store.site_version(site).site.units]
            if unit not in units:
                _err.print(f"error: site {site!r} has no unit {unit!r} (units: {', '.join(units)})")
                raise typer.Exit(code=1)
        with closing(open_accounts(path)) as accounts:
            user = accounts.add_user(
                name,
                _password(password_stdin),
                Role(role),
                site_id=site,
                unit_id=unit,
                known_sites=known,
            )
            accounts.audit("cli", "user add", site, f"user {name}", f"role {role}")
    where = f" on site {user.site_id}" if user.site_id else ""
    unit_text = f", unit {user.unit_id}" if user.unit_id else ""
    _out.print(f"user {user.name} added: {user.role.value}{where}{unit_text}", highlight=False)


@token_app.command(
    "create",
    epilog=(
        "Example: [bold]lastgang token create --site emergency-power --scope read-only "
        "--label 'monthly export'[/bold]\n\n"
        "Exit codes: 0 success, 1 invalid input, 2 store problem."
    ),
)
def token_create(
    site: Annotated[str, typer.Option("--site", help="The site the token is for.", metavar="ID")],
    scope: Annotated[
        str, typer.Option("--scope", help="admin, operator or read-only.", metavar="SCOPE")
    ] = "read-only",
    expires: Annotated[
        int | None,
        typer.Option(
            "--expires", help="Valid for this many days (default: no expiry).", metavar="DAYS"
        ),
    ] = None,
    label: Annotated[str, typer.Option(help="What the token is for (shown in lists).")] = "",
    db: DbOption = None,
) -> None:
    """Create an API token for one site and print it once (only its hash is kept)."""
    from lastgang.api.accounts import Scope, open_accounts

    if scope not in {s.value for s in Scope}:
        _err.print(f"error: unknown scope {scope!r}: use admin, operator or read-only")
        raise typer.Exit(code=1)
    with _store(db) as (path, store):
        if site not in store.site_ids():
            known = ", ".join(store.site_ids()) or "none yet"
            _err.print(f"error: unknown site {site!r} (sites: {known})")
            raise typer.Exit(code=1)
        with closing(open_accounts(path)) as accounts:
            secret, token = accounts.create_token(site, Scope(scope), days=expires, label=label)
            accounts.audit("cli", "token create", site, f"token {token.token_id}", scope)
    until = token.expires_at.strftime("%Y-%m-%d %H:%M UTC") if token.expires_at else "no expiry"
    _err.print(
        f"token {token.token_id} for site {site}, scope {scope}, {until}. "
        "It is shown only now: store it safely.",
        highlight=False,
    )
    print(secret)
