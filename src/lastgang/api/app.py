"""The web application: the HTTP API under ``/api/v1`` and the server-rendered pages.

:func:`create_app` opens the store (refused with a clear message when another process holds
it), starts the job worker and mounts the routes. Every script, style and chart library is
served by the app itself (``/static``; plotly.js from the installed plotly package), so it works
offline. Errors of the API are problem documents (RFC 9457, :mod:`lastgang.api.problems`);
pages show the same text on an error page, and send a caller who is not signed in to the login.
"""

from __future__ import annotations

import atexit
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
import plotly  # type: ignore[import-untyped]
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

from lastgang.api import (
    routes_accounts,
    routes_auth,
    routes_billing,
    routes_data,
    routes_sites,
    routes_web,
)
from lastgang.api.accounts import open_accounts
from lastgang.api.auth import LoginLimiter, principal_of
from lastgang.api.jobs import JobRunner
from lastgang.api.problems import (
    ApiProblem,
    problem_for_error,
    problem_response,
    validation_entries,
)
from lastgang.api.state import AppState, StorePool
from lastgang.errors import LastgangError, StoreError
from lastgang.store import open_store, resolve_db_path

__all__ = ["API_VERSION", "WEB", "create_app"]

log = logging.getLogger("lastgang.api")

API_VERSION = "1"
WEB = Path(__file__).resolve().parent.parent / "web"
_PLOTLY = Path(plotly.__file__).resolve().parent / "package_data"


def _wants_html(request: Request) -> bool:
    path = request.url.path
    return not (path.startswith("/api/") or path in ("/health",))


def _render_problem(request: Request, problem: ApiProblem) -> Response:
    if not _wants_html(request):
        return problem_response(problem, request.url.path)
    if problem.status == 401:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target)}", status_code=303)
    state: AppState = request.app.state.lastgang
    try:
        who = principal_of(request)
    except ApiProblem:
        who = None
    doc = problem.document(request.url.path)
    return state.templates.TemplateResponse(
        request,
        "error.html.j2",
        {"problem": doc, "who": who if who is not None and not who.anonymous else None},
        status_code=problem.status,
    )


def web_templates() -> Jinja2Templates:
    """The pages' templates, every value escaped: they are named ``*.html.j2``, which Jinja's
    default choice by file extension (``html``, ``htm``, ``xml``) would leave unescaped."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(WEB / "templates")),
        autoescape=jinja2.select_autoescape(["html", "j2"], default=True),
    )
    return Jinja2Templates(env=env)


def create_app(
    store_path: str | Path | None = None,
    *,
    secure_cookies: bool | None = None,
    login_limit: int = 5,
    push_wait: float = 30.0,
) -> FastAPI:
    """The FastAPI application on the store at ``store_path`` (``--db``, ``LASTGANG_DB`` or
    ``./lastgang.duckdb``). Raises :class:`~lastgang.errors.StoreError` when another process
    holds the store."""
    path = resolve_db_path(store_path)
    if str(path) == ":memory:":
        raise StoreError(
            "the web application needs a store file (its worker and readers share it): "
            "name one with --db PATH"
        )
    first = open_store(path)
    try:
        accounts = open_accounts(path)
    except BaseException:
        first.close()
        raise
    pool = StorePool(path, first)
    runner = JobRunner(lambda: open_store(path), accounts)
    templates = web_templates()
    state = AppState(
        path=path,
        pool=pool,
        accounts=accounts,
        jobs=runner,
        templates=templates,
        limiter=LoginLimiter(login_limit, 60.0),
        push_wait=push_wait,
        secure_cookies=secure_cookies,
    )
    for module in (routes_sites, routes_data, routes_billing):
        module.register_jobs(state)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        state.close()

    app = FastAPI(
        title="lastgang",
        version=f"{API_VERSION}.0",
        summary="Electricity meter data to correct, explainable bills (TOR Stromzähler)",
        description=(
            "Versioned under /api/v1. Authenticate with an API token "
            "(`Authorization: Bearer TOKEN`, see `lastgang token create`) or a session cookie "
            "from POST /login (then send X-CSRF-Token on changes). Every error is an RFC 9457 "
            "problem document with an `errors` list naming each problem's place."
        ),
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.lastgang = state

    @app.exception_handler(ApiProblem)
    async def _api_problem(request: Request, exc: ApiProblem) -> Response:
        return _render_problem(request, exc)

    @app.exception_handler(LastgangError)
    async def _lastgang_error(request: Request, exc: LastgangError) -> Response:
        return _render_problem(request, problem_for_error(exc))

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(request: Request, exc: RequestValidationError) -> Response:
        entries = validation_entries(exc.errors())
        detail = f"the request has {len(entries)} problem(s): " + "; ".join(
            f"{e.place}: {e.detail}" for e in entries[:5]
        )
        return _render_problem(request, ApiProblem(422, detail, "invalid-request", entries))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        detail = str(exc.detail)
        if exc.status_code == 404:
            detail = f"there is nothing at {request.url.path}: check the address"
        elif exc.status_code == 405:
            detail = f"{request.method} is not allowed on {request.url.path}"
        return _render_problem(
            request, ApiProblem(exc.status_code, detail, headers=dict(exc.headers or {}))
        )

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> Response:
        log.exception("internal error on %s %s", request.method, request.url.path)
        return problem_response(
            ApiProblem(
                500,
                "the server failed on this request; the error is in its log. "
                "Nothing was changed by a failed request.",
                "internal",
            ),
            request.url.path,
        )

    app.include_router(routes_auth.router)
    app.include_router(routes_accounts.router)
    app.include_router(routes_sites.router)
    app.include_router(routes_data.router)
    app.include_router(routes_billing.router)
    app.include_router(routes_billing.pages)
    app.include_router(routes_web.router)
    app.mount("/static/vendor", StaticFiles(directory=str(_PLOTLY)), name="vendor")
    app.mount("/static", StaticFiles(directory=str(WEB / "static")), name="static")
    _openapi_patch(app)
    runner.start()
    atexit.register(state.close)  # an app whose lifespan never ran still lets go of the store
    if accounts.user_count() == 0:
        log.warning("no user yet: %s", first_admin_hint(path))
    return app


def first_admin_hint(path: Path) -> str:
    """What to run to create the first administrator."""
    return (
        "create the first administrator with: "
        f"lastgang user add admin --role admin --db {path} (stop the server first: "
        "the store is one process's at a time)"
    )


def _openapi_patch(app: FastAPI) -> None:
    """Document the problem responses and the bearer token in the OpenAPI schema."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = original()
        components = schema.setdefault("components", {})
        components.setdefault("securitySchemes", {})["bearer"] = {
            "type": "http",
            "scheme": "bearer",
            "description": "an API token from `lastgang token create`",
        }
        schema["security"] = [{"bearer": []}]
        problem_ref = {"$ref": "#/components/schemas/ProblemDocument"}
        from lastgang.api.problems import ProblemDocument

        components.setdefault("schemas", {})["ProblemDocument"] = ProblemDocument.model_json_schema(
            ref_template="#/components/schemas/{model}"
        )
        defs = components["schemas"]["ProblemDocument"].pop("$defs", {})
        components["schemas"].update(defs)
        for path_item in schema.get("paths", {}).values():
            for op in path_item.values():
                responses = op.setdefault("responses", {})
                for code in ("401", "403", "404", "422"):
                    responses[code] = {
                        "description": "problem document (RFC 9457)",
                        "content": {"application/problem+json": {"schema": problem_ref}},
                    }
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
