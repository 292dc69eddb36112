"""Small helpers the route modules share: the application state, a read connection to the
store, a site's latest configuration as a 404 when it does not exist."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import Request

from lastgang.api.problems import ApiProblem
from lastgang.api.state import AppState
from lastgang.errors import StoreError
from lastgang.store import SiteVersion, Store

__all__ = ["app_state", "read_store", "site_version"]


def app_state(request: Request) -> AppState:
    state: AppState = request.app.state.lastgang
    return state


def read_store(request: Request) -> Iterator[Store]:
    """A FastAPI dependency: a read connection to the store for the request."""
    with app_state(request).pool.store() as store:
        yield store


def site_version(store: Store, site_id: str, version: int | None = None) -> SiteVersion:
    """The site's configuration (the latest version by default), else a 404 problem."""
    if site_id not in store.site_ids():
        raise ApiProblem(
            404,
            f"there is no site {site_id!r}: apply its configuration first "
            "(POST /api/v1/sites or `lastgang site apply SITE.toml`)",
        )
    try:
        return store.site_version(site_id, version)
    except StoreError as exc:
        raise ApiProblem(404, exc.message) from None
