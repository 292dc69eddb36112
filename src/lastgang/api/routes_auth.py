"""Health, login and logout, and the OpenAPI document."""

from __future__ import annotations

import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel

from lastgang.api.auth import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    Need,
    Principal,
    check_login_csrf,
    guard,
)
from lastgang.api.deps import app_state

__all__ = ["router", "safe_next", "secure_cookie"]

router = APIRouter(tags=["session"])


class Health(BaseModel):
    status: str
    jobs_pending: int


@router.get("/health", response_model=Health, summary="Liveness (no data, no login needed)")
def health(request: Request, who: Annotated[Principal, Depends(guard(Need.PUBLIC))]) -> Health:
    return Health(status="ok", jobs_pending=app_state(request).jobs.pending())


def secure_cookie(request: Request) -> bool:
    """Cookies are ``Secure`` when the page came over https (or the app is told so)."""
    forced = app_state(request).secure_cookies
    if forced is not None:
        return forced
    proto = request.headers.get("x-forwarded-proto", request.url.scheme)
    return proto.split(",")[0].strip() == "https"


def safe_next(value: str | None) -> str:
    """A local path to go to after login (never another host)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


def _login_page(
    request: Request, error: str | None, next_path: str, status: int = 200
) -> HTMLResponse:
    token = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(24)
    response = app_state(request).templates.TemplateResponse(
        request,
        "login.html.j2",
        {"error": error, "next": next_path, "csrf_token": token, "who": None},
        status_code=status,
    )
    response.set_cookie(
        CSRF_COOKIE,
        token,
        httponly=True,
        samesite="lax",
        secure=secure_cookie(request),
        path="/login",
    )
    return response


@router.get(
    "/login", response_class=HTMLResponse, include_in_schema=False, summary="The login form"
)
def login_form(
    request: Request,
    who: Annotated[Principal, Depends(guard(Need.PUBLIC))],
    next: str | None = None,
) -> HTMLResponse:
    return _login_page(request, None, safe_next(next))


@router.post(
    "/login",
    include_in_schema=False,
    summary="Sign in with name and password (sets the session cookie)",
)
async def login(
    request: Request,
    who: Annotated[Principal, Depends(guard(Need.PUBLIC))],
    name: Annotated[str, Form(max_length=200)],
    password: Annotated[str, Form(max_length=1000)],
    csrf_token: Annotated[str, Form(max_length=200)],
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    state = app_state(request)
    await check_login_csrf(request, csrf_token)
    address = request.client.host if request.client else "unknown"
    wait = state.limiter.attempt(name, address)
    target = safe_next(next)
    if wait:
        response = _login_page(
            request,
            f"Too many login attempts: wait {int(wait) + 1} seconds and try again.",
            target,
            429,
        )
        response.headers["Retry-After"] = str(int(wait) + 1)
        return response
    from starlette.concurrency import run_in_threadpool

    user = await run_in_threadpool(state.accounts.check_password, name, password)
    if user is None:
        return _login_page(request, "Wrong name or password.", target, 401)
    secret, _session = state.accounts.create_session(user)
    state.accounts.audit(user.name, "login", user.site_id, f"user {user.name}", address)
    if target == "/" and user.site_id and user.unit_id:
        target = f"/sites/{user.site_id}/units/{user.unit_id}"
    done = RedirectResponse(target, status_code=303)
    done.set_cookie(
        SESSION_COOKIE,
        secret,
        httponly=True,
        samesite="lax",
        secure=secure_cookie(request),
        path="/",
        max_age=12 * 3600,
    )
    done.delete_cookie(CSRF_COOKIE, path="/login")
    return done


@router.post("/logout", include_in_schema=False, summary="End the session")
def logout(request: Request, who: Annotated[Principal, Depends(guard(Need.SIGNED_IN))]) -> Response:
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        app_state(request).accounts.end_session(cookie)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get(
    "/api/v1/openapi.json",
    include_in_schema=False,
    summary="The OpenAPI document of the API",
)
def openapi_document(
    request: Request, who: Annotated[Principal, Depends(guard(Need.SIGNED_IN))]
) -> JSONResponse:
    schema: dict[str, Any] = request.app.openapi()
    return JSONResponse(schema)
