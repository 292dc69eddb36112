"""API: sites and their configuration versions (check, apply), meters, jobs, the audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from lastgang import services
from lastgang.api.auth import Need, Owner, Principal, guard, register_owner, visible_sites
from lastgang.api.deps import app_state, read_store, site_version
from lastgang.api.jobs import JobContext
from lastgang.api.problems import ApiProblem, ProblemEntry, entry_of
from lastgang.api.state import AppState
from lastgang.api.views import meter_rows
from lastgang.concept.load import parse_site
from lastgang.concept.validate import check_site
from lastgang.errors import ConceptError
from lastgang.store import Store

__all__ = ["JobOut", "job_out", "router", "wait_for_job"]

router = APIRouter(prefix="/api/v1", tags=["sites"])

StoreDep = Annotated[Store, Depends(read_store)]


class Me(BaseModel):
    name: str
    kind: str
    role: str | None
    site_id: str | None
    unit_id: str | None
    scope: str | None
    csrf_token: str | None = Field(None, description="send as X-CSRF-Token with a session")


class SiteSummary(BaseModel):
    id: str
    name: str
    timezone: str
    version: int
    applied_at: datetime
    locations: int
    units: int


class VersionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    site_id: str
    version: int
    source: str
    applied_at: datetime
    effective_from: datetime | None


class VersionText(VersionOut):
    toml: str


class ConfigIn(BaseModel):
    toml: str = Field(description="the site configuration (TOML), as `lastgang check` reads it")


class CheckOut(BaseModel):
    site_id: str | None
    valid: bool
    errors: list[ProblemEntry]
    warnings: list[ProblemEntry]


class MeterOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    location_id: str
    location_name: str
    role: str
    metering_points: list[str]
    manufacturer: str
    serial: str
    installed: str
    removed: str | None
    orientation: str
    connection: str
    accuracy_class: str
    transformer: str | None


class JobOut(BaseModel):
    id: int
    kind: str
    site_id: str
    actor: str
    state: str = Field(description="queued, running, done or failed")
    created_at: datetime
    finished_at: datetime | None
    progress: dict[str, Any] | None = None
    params: dict[str, Any]
    result: dict[str, Any] | None
    href: str


class AuditOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    actor: str
    action: str
    site_id: str | None
    subject: str
    detail: str


@router.get("/me", response_model=Me, summary="Who is calling")
def me(who: Annotated[Principal, Depends(guard(Need.SIGNED_IN))]) -> Me:
    return Me(
        name=who.name,
        kind=who.kind,
        role=None if who.role is None else who.role.value,
        site_id=who.site_id,
        unit_id=who.unit_id,
        scope=None if who.scope is None else who.scope.value,
        csrf_token=who.csrf,
    )


def _summary(store: Store, site_id: str) -> SiteSummary:
    v = store.site_version(site_id)
    return SiteSummary(
        id=site_id,
        name=v.site.site.name or site_id,
        timezone=v.site.site.timezone,
        version=v.version,
        applied_at=v.applied_at,
        locations=len(v.site.locations),
        units=len(v.site.units),
    )


@router.get("/sites", response_model=list[SiteSummary], summary="Sites the caller may see")
def list_sites(
    store: StoreDep, who: Annotated[Principal, Depends(guard(Need.SIGNED_IN))]
) -> list[SiteSummary]:
    return [_summary(store, s) for s in visible_sites(who, store.site_ids())]


@router.get("/sites/{site_id}", response_model=SiteSummary, summary="One site")
def get_site(
    site_id: str, store: StoreDep, who: Annotated[Principal, Depends(guard(Need.READ))]
) -> SiteSummary:
    site_version(store, site_id)
    return _summary(store, site_id)


@router.get(
    "/sites/{site_id}/versions",
    response_model=list[VersionOut],
    summary="Configuration versions of a site, oldest first",
)
def list_versions(
    site_id: str, store: StoreDep, who: Annotated[Principal, Depends(guard(Need.READ))]
) -> list[VersionOut]:
    site_version(store, site_id)
    return [VersionOut.model_validate(v) for v in store.site_versions(site_id)]


@router.get(
    "/sites/{site_id}/versions/{version}",
    response_model=VersionText,
    summary="One configuration version with its TOML text as applied",
)
def get_version(
    site_id: str,
    version: int,
    store: StoreDep,
    who: Annotated[Principal, Depends(guard(Need.READ))],
) -> VersionText:
    v = site_version(store, site_id, version)
    return VersionText(**VersionOut.model_validate(v).model_dump(), toml=v.text)


def check_text(text: str, source: str) -> CheckOut:
    """The problems of a site configuration (as ``lastgang check`` finds them)."""
    try:
        site = parse_site(text, source)
    except ConceptError as exc:
        return CheckOut(
            site_id=None,
            valid=False,
            errors=[entry_of(p) for p in exc.problems if p.severity == "error"],
            warnings=[entry_of(p) for p in exc.problems if p.severity == "warning"],
        )
    problems = check_site(site)
    errors = [entry_of(p) for p in problems if p.severity == "error"]
    return CheckOut(
        site_id=site.site.id,
        valid=not errors,
        errors=errors,
        warnings=[entry_of(p) for p in problems if p.severity == "warning"],
    )


@router.post(
    "/sites/{site_id}/check",
    response_model=CheckOut,
    summary="Check a configuration for this site without applying it",
)
def check_config(
    site_id: str, body: ConfigIn, who: Annotated[Principal, Depends(guard(Need.OPERATE))]
) -> CheckOut:
    out = check_text(body.toml, f"{site_id}.toml")
    if out.site_id is not None and out.site_id != site_id:
        raise ApiProblem(
            422,
            f"the configuration is for site {out.site_id!r}, not {site_id!r}: "
            "check it under its own site",
        )
    return out


def _apply_job(ctx: JobContext) -> dict[str, Any]:
    text = (ctx.payload or b"").decode("utf-8")
    result = services.apply_site_text(
        ctx.store, text, str(ctx.job.params.get("source", "site.toml")), progress=ctx.progress
    )
    v = result.version
    ctx.accounts.audit(
        ctx.job.actor,
        "apply",
        v.site_id,
        f"version {v.version}",
        f"source {v.source}; changed locations: {', '.join(result.changed_locations) or 'none'}",
    )
    return {
        "site_id": v.site_id,
        "version": v.version,
        "changed_locations": list(result.changed_locations),
        "warnings": [entry_of(p).model_dump() for p in result.warnings],
        "rebuilt": None if result.rebuilt is None else result.rebuilt.changed,
        "rebuilt_locations": None
        if result.rebuilt is None
        else services.locations_listed(result.rebuilt.locations),
        "rebuild_pending": services.locations_listed(result.pending),
        "href": f"/api/v1/sites/{v.site_id}/versions/{v.version}",
    }


def job_out(state: AppState, job_id: int) -> JobOut:
    job = state.accounts.job(job_id)
    if job is None:
        raise ApiProblem(404, f"there is no job {job_id}")
    p = state.jobs.progress(job_id)
    return JobOut(
        id=job.id,
        kind=job.kind,
        site_id=job.site_id,
        actor=job.actor,
        state=job.state,
        created_at=job.created_at,
        finished_at=job.finished_at,
        progress=None if p is None else {"what": p.what, "done": p.done, "total": p.total},
        params=job.params,
        result=job.result,
        href=f"/api/v1/jobs/{job.id}",
    )


def wait_for_job(state: AppState, job_id: int, seconds: float) -> JobOut:
    """Wait up to ``seconds`` for a job; raise its problem when it failed."""
    done = state.jobs.wait(job_id, seconds)
    out = job_out(state, job_id)
    if done is not None and done.state == "failed" and done.result:
        doc = done.result.get("problem", {})
        raise ApiProblem(
            int(doc.get("status", 422)),
            str(doc.get("detail", "the job failed")),
            str(doc.get("type", "")).rsplit(":", 1)[-1] or None,
            [ProblemEntry.model_validate(e) for e in doc.get("errors", [])],
        )
    return out


def _apply(state: AppState, who: Principal, body: ConfigIn, site_id: str | None) -> JobOut:
    checked = check_text(body.toml, f"{site_id or 'site'}.toml")
    if checked.site_id is None or not checked.valid:
        raise ApiProblem(
            422,
            f"the configuration has {len(checked.errors)} error(s); nothing was applied",
            "invalid-concept",
            checked.errors,
        )
    if site_id is not None and checked.site_id != site_id:
        raise ApiProblem(422, f"the configuration is for site {checked.site_id!r}, not {site_id!r}")
    job = state.jobs.submit(
        "apply",
        checked.site_id,
        who.name,
        {"source": f"{checked.site_id}.toml (web)"},
        body.toml.encode("utf-8"),
    )
    return wait_for_job(state, job.id, 60.0)


@router.post(
    "/sites/{site_id}/versions",
    response_model=JobOut,
    status_code=201,
    summary="Apply a new configuration version (refused with every problem on errors)",
)
def apply_version(
    site_id: str,
    body: ConfigIn,
    request: Request,
    response: Response,
    who: Annotated[Principal, Depends(guard(Need.OPERATE))],
) -> JobOut:
    with app_state(request).pool.store() as store:
        site_version(store, site_id)
    out = _apply(app_state(request), who, body, site_id)
    if out.state != "done":
        response.status_code = 202
    return out


@router.post(
    "/sites",
    response_model=JobOut,
    status_code=201,
    summary="Create a site from its first configuration version (administrators)",
)
def create_site(
    body: ConfigIn,
    request: Request,
    response: Response,
    who: Annotated[Principal, Depends(guard(Need.ADMIN))],
) -> JobOut:
    out = _apply(app_state(request), who, body, None)
    if out.state != "done":
        response.status_code = 202
    return out


@router.get(
    "/sites/{site_id}/meters",
    response_model=list[MeterOut],
    summary="Physical meters per location with their installed/removed times (exchanges)",
)
def list_meters(
    site_id: str, store: StoreDep, who: Annotated[Principal, Depends(guard(Need.READ))]
) -> list[MeterOut]:
    site = site_version(store, site_id).site
    return [MeterOut.model_validate(r) for r in meter_rows(site)]


@router.get("/sites/{site_id}/jobs", response_model=list[JobOut], summary="Jobs of a site")
def list_jobs(
    site_id: str, request: Request, who: Annotated[Principal, Depends(guard(Need.READ))]
) -> list[JobOut]:
    state = app_state(request)
    return [job_out(state, j.id) for j in state.accounts.jobs(site_id=site_id, limit=100)]


@router.get("/jobs/{job_id}", response_model=JobOut, summary="A job with its progress")
def get_job(
    job_id: int, request: Request, who: Annotated[Principal, Depends(guard(Need.READ))]
) -> JobOut:
    return job_out(app_state(request), job_id)


@router.get(
    "/sites/{site_id}/audit",
    response_model=list[AuditOut],
    summary="Who applied which version, imported which batch, finalized which run",
)
def audit_log(
    site_id: str, request: Request, who: Annotated[Principal, Depends(guard(Need.ADMIN))]
) -> list[AuditOut]:
    return [AuditOut.model_validate(e) for e in app_state(request).accounts.audit_log(site_id)]


def _job_owner(state: AppState, params: dict[str, str]) -> Owner | None:
    try:
        job = state.accounts.job(int(params["job_id"]))
    except ValueError:
        return None
    return None if job is None else Owner(job.site_id, None, tenant_visible=False)


register_owner("job_id", _job_owner)


def register_jobs(state: AppState) -> None:
    state.jobs.register("apply", _apply_job)
