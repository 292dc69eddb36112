"""API: billing runs (create, list, show, finalize), invoices (JSON, HTML, PDF), reconciliation,
a unit's consumption with the local/grid split."""

from __future__ import annotations

from fastapi import APIRouter

from lastgang.api.state import AppState

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["billing"])


def register_jobs(state: AppState) -> None:
    """Billing jobs (filled in with the billing service)."""
