"""API: users of the web interface and API tokens, managed while the server runs.

The store file is one process's at a time (DuckDB's file lock), so ``lastgang user add`` and
``lastgang token create`` need the server stopped; these routes do the same from the running
server: an administrator adds users, and an administrator of a site creates its tokens. The
first administrator still comes from the command line (no one can sign in before it exists).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from lastgang.api.accounts import Role, Scope
from lastgang.api.auth import Need, Principal, guard
from lastgang.api.deps import app_state, read_store, site_version
from lastgang.api.problems import ApiProblem
from lastgang.errors import InvalidInput, Problem
from lastgang.store import Store

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["accounts"])

StoreDep = Annotated[Store, Depends(read_store)]


class UserOut(BaseModel):
    name: str
    role: str = Field(description="admin, operator or tenant")
    site_id: str | None
    unit_id: str | None
    created_at: datetime


class UserIn(BaseModel):
    name: str = Field(description="the login name: 1 to 64 letters, digits, '.', '_', '@', '-'")
    password: str = Field(description="at least 8 characters; kept only as an argon2 hash")
    role: Role = Field(Role.OPERATOR, description="admin, operator or tenant")
    site_id: str | None = Field(None, description="operator: only this site; tenant: its site")
    unit_id: str | None = Field(None, description="tenant: the billing unit it may see")


class TokenIn(BaseModel):
    scope: Scope = Field(Scope.READ_ONLY, description="read-only, operator or admin")
    label: str = Field("", description="what the token is for (shown in the audit log)")
    expires_days: int | None = Field(None, description="valid for this many days (none: no expiry)")


class TokenOut(BaseModel):
    token_id: str
    site_id: str
    scope: str
    label: str
    created_at: datetime
    expires_at: datetime | None
    token: str = Field(description="the token itself: shown only in this answer, store it safely")


def _user_out(user: object) -> UserOut:
    return UserOut.model_validate(user, from_attributes=True)


@router.get("/users", response_model=list[UserOut], summary="Users (administrators)")
def list_users(
    request: Request, who: Annotated[Principal, Depends(guard(Need.ADMIN))]
) -> list[UserOut]:
    return [_user_out(u) for u in app_state(request).accounts.users()]


@router.post(
    "/users",
    response_model=UserOut,
    status_code=201,
    summary="Add a user (administrators; refused with every problem)",
)
def add_user(
    body: UserIn,
    request: Request,
    store: StoreDep,
    who: Annotated[Principal, Depends(guard(Need.ADMIN))],
) -> UserOut:
    known = store.site_ids()
    if body.site_id is not None and body.unit_id is not None and body.site_id in known:
        units = [u.id for u in store.site_version(body.site_id).site.units]
        if body.unit_id not in units:
            raise InvalidInput(
                f"user {body.name!r} not added",
                [Problem(f"site {body.site_id!r} has no unit {body.unit_id!r}", column="unit_id")],
            )
    accounts = app_state(request).accounts
    user = accounts.add_user(
        body.name,
        body.password,
        body.role,
        site_id=body.site_id,
        unit_id=body.unit_id,
        known_sites=known,
    )
    accounts.audit(who.name, "user add", body.site_id, f"user {user.name}", f"role {user.role}")
    return _user_out(user)


@router.post(
    "/sites/{site_id}/tokens",
    response_model=TokenOut,
    status_code=201,
    summary="Create an API token for the site (a signed-in administrator of it; shown once)",
)
def create_token(
    site_id: str,
    body: TokenIn,
    request: Request,
    store: StoreDep,
    who: Annotated[Principal, Depends(guard(Need.ADMIN))],
) -> TokenOut:
    if who.kind != "session":
        raise ApiProblem(403, "a token is created by a signed-in user, not by another token")
    site_version(store, site_id)  # 404 for an unknown site
    accounts = app_state(request).accounts
    secret, token = accounts.create_token(
        site_id, body.scope, days=body.expires_days, label=body.label
    )
    accounts.audit(who.name, "token create", site_id, f"token {token.token_id}", token.scope)
    return TokenOut(
        token_id=token.token_id,
        site_id=token.site_id,
        scope=token.scope.value,
        label=token.label,
        created_at=token.created_at,
        expires_at=token.expires_at,
        token=secret,
    )
