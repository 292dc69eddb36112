"""Who may see and do what: the ONE place of the web application that decides it.

Every route declares what it needs with :func:`guard` (a FastAPI dependency); a test enumerates
the routes of the app and checks each one has a guard and refuses an anonymous caller and a
tenant of another unit. The decision itself is :func:`decide`.

Callers are authenticated by a session cookie (a person who logged in with name and password,
argon2) or an API token (``Authorization: Bearer lg_...``, stored as SHA-256, per site with a
scope and an expiry). Levels on a site, from least to most:

- a tenant sees only its own billing unit (contracts, finalized invoices, its consumption);
- ``read-only`` sees everything of the site;
- ``operator`` also imports data, checks and applies configurations, creates and finalizes
  billing runs;
- ``admin`` also reads the audit log. A user with role ``admin`` is admin on every site; a user
  with role ``operator`` is operator on its site (every site when none is named).

Requests authenticated by the session cookie that change something (POST, PUT, PATCH, DELETE)
need the session's CSRF token (form field ``csrf_token`` or header ``X-CSRF-Token``); the login
form uses a double-submit cookie. Login attempts are limited per account and per address.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING, Any

from fastapi import Request

from lastgang.api.accounts import Role, Scope
from lastgang.api.problems import ApiProblem

if TYPE_CHECKING:
    from lastgang.api.state import AppState

__all__ = [
    "CSRF_COOKIE",
    "SESSION_COOKIE",
    "LoginLimiter",
    "Need",
    "Owner",
    "Principal",
    "decide",
    "guard",
    "principal_of",
    "register_owner",
    "visible_sites",
]

SESSION_COOKIE = "lastgang_session"
#: double-submit cookie of the login form (there is no session yet to hold the token)
CSRF_COOKIE = "lastgang_login_csrf"

_UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class Need(IntEnum):
    """What a route needs. ``UNIT``: the data of one billing unit (its tenant, or anyone who
    may read the whole site)."""

    PUBLIC = 0
    SIGNED_IN = 1
    UNIT = 2
    READ = 3
    OPERATE = 4
    ADMIN = 5


class _Level(IntEnum):
    NONE = 0
    TENANT = 1
    READ = 2
    OPERATE = 3
    ADMIN = 4


@dataclass(frozen=True)
class Principal:
    """Who is calling."""

    name: str
    kind: str  # "anonymous", "session" or "token"
    role: Role | None = None
    site_id: str | None = None
    unit_id: str | None = None
    scope: Scope | None = None
    csrf: str | None = None

    @property
    def anonymous(self) -> bool:
        return self.kind == "anonymous"

    @property
    def is_tenant(self) -> bool:
        return self.role is Role.TENANT

    def _level(self, site_id: str) -> _Level:
        if self.kind == "token":
            if self.site_id != site_id or self.scope is None:
                return _Level.NONE
            return {
                Scope.READ_ONLY: _Level.READ,
                Scope.OPERATOR: _Level.OPERATE,
                Scope.ADMIN: _Level.ADMIN,
            }[self.scope]
        if self.kind != "session" or self.role is None:
            return _Level.NONE
        if self.role is Role.ADMIN:
            return _Level.ADMIN
        if self.site_id is not None and self.site_id != site_id:
            return _Level.NONE
        return _Level.OPERATE if self.role is Role.OPERATOR else _Level.TENANT

    def may(self, need: Need, site_id: str | None = None, unit_id: str | None = None) -> bool:
        """Whether this caller may do what ``need`` says (shorthand for :func:`decide`)."""
        return decide(self, need, site_id, unit_id)


ANONYMOUS = Principal("anonymous", "anonymous")


def decide(
    who: Principal,
    need: Need,
    site_id: str | None = None,
    unit_id: str | None = None,
    *,
    tenant_visible: bool = True,
) -> bool:
    """The access decision. ``site_id``/``unit_id``: the site and billing unit the request is
    about (``None``: not about one); ``tenant_visible``: whether the resource may be shown to
    a tenant at all (drafts are not)."""
    if need is Need.PUBLIC:
        return True
    if who.anonymous:
        return False
    if need is Need.SIGNED_IN:
        return True
    if site_id is None:
        return who.kind == "session" and who.role is Role.ADMIN
    level = who._level(site_id)
    if need is Need.UNIT:
        if level >= _Level.READ:
            return True
        return (
            level == _Level.TENANT
            and unit_id is not None
            and unit_id == who.unit_id
            and tenant_visible
        )
    required = {Need.READ: _Level.READ, Need.OPERATE: _Level.OPERATE, Need.ADMIN: _Level.ADMIN}
    return level >= required[need]


def visible_sites(who: Principal, site_ids: Sequence[str]) -> list[str]:
    """The sites a caller may see at all (a tenant sees its own site)."""
    return [s for s in site_ids if decide(who, Need.UNIT, s, who.unit_id)]


# ---------------------------------------------------------------------------------------------
# owners of resources named in a path (runs, invoices, jobs)


@dataclass(frozen=True)
class Owner:
    """The site and billing unit a resource belongs to."""

    site_id: str
    unit_id: str | None = None
    tenant_visible: bool = True


#: path parameter -> function telling the owner of the resource it names (``None``: unknown)
OwnerLookup = Callable[["AppState", dict[str, str]], Owner | None]
_OWNERS: dict[str, OwnerLookup] = {}


def register_owner(param: str, lookup: OwnerLookup) -> None:
    """Tell the guard how to find the site and unit of the resource a path parameter names."""
    _OWNERS[param] = lookup


# ---------------------------------------------------------------------------------------------
# authentication


def _state(request: Request) -> AppState:
    state: AppState = request.app.state.lastgang
    return state


def principal_of(request: Request) -> Principal:
    """Who sent ``request``: an API token, a session cookie, or anonymous."""
    cached = getattr(request.state, "principal", None)
    if isinstance(cached, Principal):
        return cached
    state = _state(request)
    who = ANONYMOUS
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        token = state.accounts.token(header[7:].strip())
        if token is None:
            raise ApiProblem(
                401,
                "the API token is unknown or expired: create one with "
                "`lastgang token create --site ID --scope read-only`",
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        who = Principal(
            f"token:{token.token_id}", "token", site_id=token.site_id, scope=token.scope
        )
    else:
        cookie = request.cookies.get(SESSION_COOKIE)
        session = state.accounts.session(cookie) if cookie else None
        if session is not None:
            u = session.user
            who = Principal(u.name, "session", u.role, u.site_id, u.unit_id, csrf=session.csrf)
    request.state.principal = who
    return who


async def _check_csrf(request: Request, who: Principal) -> None:
    if request.method not in _UNSAFE or who.kind != "session":
        return
    sent = request.headers.get("x-csrf-token")
    if sent is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        value = form.get("csrf_token")
        sent = value if isinstance(value, str) else None
    if not sent or who.csrf is None or not secrets.compare_digest(sent, who.csrf):
        raise ApiProblem(
            403,
            "the form's CSRF token is missing or wrong: reload the page and send the form "
            "again (API clients: send the X-CSRF-Token header, or use an API token)",
            "csrf",
        )


async def check_login_csrf(request: Request, sent: str | None) -> None:
    """The login form's double-submit check: the form field must equal the cookie."""
    cookie = request.cookies.get(CSRF_COOKIE)
    if not sent or not cookie or not secrets.compare_digest(sent, cookie):
        raise ApiProblem(
            403, "the login form expired or cookies are blocked: reload the page", "csrf"
        )


def guard(need: Need) -> Callable[[Request], Awaitable[Principal]]:
    """A FastAPI dependency that lets the request through when the caller may do ``need`` on
    the site (path parameter ``site_id``), unit (``unit_id``) or resource (a parameter with a
    registered owner) the path names, and returns the :class:`Principal`."""

    async def dependency(request: Request) -> Principal:
        who = principal_of(request)
        if need is Need.PUBLIC:
            return who
        if who.anonymous:
            raise ApiProblem(
                401,
                "sign in first (POST /login) or send an API token: Authorization: Bearer TOKEN",
                headers={"WWW-Authenticate": 'Bearer realm="lastgang"'},
            )
        await _check_csrf(request, who)
        params: dict[str, str] = {k: str(v) for k, v in request.path_params.items()}
        site_id = params.get("site_id")
        unit_id = params.get("unit_id")
        visible = True
        for param, lookup in _OWNERS.items():
            if param not in params:
                continue
            owner = lookup(_state(request), params)
            if owner is None or (site_id is not None and owner.site_id != site_id):
                # say "not found" only to callers who may read the site it would be in
                if site_id is None or not decide(who, Need.UNIT, site_id, who.unit_id):
                    raise _forbidden(who)
                raise ApiProblem(404, f"no {param.removesuffix('_id')} {params[param]!r} here")
            site_id = owner.site_id
            unit_id = owner.unit_id if owner.unit_id is not None else unit_id
            visible = visible and owner.tenant_visible
        if need is Need.SIGNED_IN or decide(who, need, site_id, unit_id, tenant_visible=visible):
            return who
        raise _forbidden(who)

    dependency.__lastgang_need__ = need  # type: ignore[attr-defined]
    return dependency


def _forbidden(who: Principal) -> ApiProblem:
    return ApiProblem(403, f"{who.name} may not do this: ask an administrator for access")


# ---------------------------------------------------------------------------------------------
# login rate limit


class LoginLimiter:
    """At most ``limit`` login attempts per ``window`` seconds per account and per address."""

    def __init__(self, limit: int = 5, window: float = 60.0) -> None:
        self.limit = limit
        self.window = window
        self._lock = threading.Lock()
        self._hits: dict[str, deque[float]] = defaultdict(deque)

    def attempt(self, account: str, address: str, *, now: float | None = None) -> float:
        """Count one attempt; returns 0 when allowed, else the seconds to wait."""
        t = time.monotonic() if now is None else now
        keys = (f"user:{account.lower()}", f"addr:{address}")
        with self._lock:
            waits: list[float] = []
            for key in keys:
                hits = self._hits[key]
                while hits and hits[0] <= t - self.window:
                    hits.popleft()
                if len(hits) >= self.limit:
                    waits.append(hits[0] + self.window - t)
            if waits:
                return max(max(waits), 1.0)
            for key in keys:
                self._hits[key].append(t)
            return 0.0


def need_of(dependency: Any) -> Need | None:
    """The :class:`Need` of a guard dependency (for the route test), else ``None``."""
    value = getattr(dependency, "__lastgang_need__", None)
    return value if isinstance(value, Need) else None
