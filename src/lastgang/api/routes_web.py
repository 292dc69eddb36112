"""The web interface (server-rendered with Jinja2, little JavaScript).

For an operator, per site: data quality per metering point and day (heat map), the monitoring
chart (SM-4), meters and their exchanges, configuration versions, imports with their jobs and
problems, billing runs with invoices and the reconciliation, the audit log (administrators).
For a tenant: the portal of its own unit (contracts, invoices, consumption).
Every form carries the session's CSRF token; every page is guarded by :mod:`lastgang.api.auth`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from lastgang.api.auth import Need, Principal, guard, visible_sites
from lastgang.api.deps import app_state, read_store, site_version
from lastgang.api.routes_data import read_uploads, submit_imports
from lastgang.api.routes_sites import ConfigIn, _apply, check_text, job_out
from lastgang.api.views import HeatMap, default_days, finds, meter_rows, quality_heat_map
from lastgang.store import Store

__all__ = ["Pager", "page", "pager", "query", "router", "site_context"]

router = APIRouter(include_in_schema=False)

StoreDep = Annotated[Store, Depends(read_store)]

#: colour of a heat map cell per worst quality (missing: by completeness, see the template)
QUALITY_COLOURS = {"L1": "#1a9641", "L2": "#a6d96a", "L3": "#fdae61", "missing": "#d7191c"}

#: metering points on one page of the heat map (a site of 10,000: 100 pages, or a search)
HEAT_PAGE_ROWS = 100

#: meters on one page of the site's meters
METER_PAGE_ROWS = 200

#: entries of the raw archive on one page of the imports (a listener archives a batch a minute)
BATCH_PAGE_ROWS = 100


def page(
    request: Request,
    template: str,
    who: Principal,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    """Render a page with the caller and its CSRF token."""
    return app_state(request).templates.TemplateResponse(
        request,
        template,
        {"who": who, "csrf_token": who.csrf or "", **context},
        status_code=status_code,
    )


@dataclass(frozen=True)
class Pager:
    """Where a page of a long list stands (page ``page`` of ``pages``), with the links to the
    first, previous, next and last page that keep the rest of the address (``_pager.html.j2``
    shows them)."""

    page: int
    pages: int
    first: str
    previous: str
    next: str
    last: str


def query(params: Mapping[str, object]) -> str:
    """``?a=1&b=2`` of the parameters that are set (empty ones left out)."""
    return "?" + urlencode({k: v for k, v in params.items() if v not in (None, "", False)})


def pager(number: int, matches: int, size: int, params: Mapping[str, object]) -> Pager:
    """Page ``number`` (from 1; past the end: the last) of ``matches`` items ``size`` to a
    page, its links keeping ``params``."""
    pages = max(1, -(-matches // size))
    number = min(max(number, 1), pages)

    def link(n: int) -> str:
        return query({**params, "page": n if n > 1 else None})

    return Pager(number, pages, link(1), link(number - 1), link(number + 1), link(pages))


def site_context(store: Store, site_id: str, who: Principal, tab: str) -> dict[str, Any]:
    """What every page of a site shows around its content: the site, its version, the open tab
    and what the caller may do there."""
    v = site_version(store, site_id)
    return {
        "site": v.site,
        "site_id": site_id,
        "version": v,
        "tab": tab,
        "may_operate": who.may(Need.OPERATE, site_id),
        "may_admin": who.may(Need.ADMIN, site_id),
    }


@router.get("/", response_class=HTMLResponse)
def home(who: Annotated[Principal, Depends(guard(Need.SIGNED_IN))]) -> Response:
    if who.is_tenant and who.site_id and who.unit_id:
        return RedirectResponse(f"/sites/{who.site_id}/units/{who.unit_id}", status_code=303)
    return RedirectResponse("/sites", status_code=303)


@router.get("/sites", response_class=HTMLResponse)
def sites_page(
    request: Request, store: StoreDep, who: Annotated[Principal, Depends(guard(Need.SIGNED_IN))]
) -> Response:
    if who.is_tenant and who.site_id and who.unit_id:
        return RedirectResponse(f"/sites/{who.site_id}/units/{who.unit_id}", status_code=303)
    rows = []
    for site_id in visible_sites(who, store.site_ids()):
        v = store.site_version(site_id)
        rows.append(
            {
                "id": site_id,
                "name": v.site.site.name or site_id,
                "version": v.version,
                "locations": len(v.site.locations),
                "units": len(v.site.units),
                "batches": store.batch_count(site_id),
            }
        )
    return page(request, "sites.html.j2", who, sites=rows)


@router.get("/sites/{site_id}", response_class=HTMLResponse)
def site_quality_page(
    site_id: str,
    request: Request,
    store: StoreDep,
    who: Annotated[Principal, Depends(guard(Need.READ))],
    first: Annotated[date | None, Query(alias="from")] = None,
    last: Annotated[date | None, Query(alias="to")] = None,
    page_number: Annotated[int, Query(alias="page", ge=1, le=10**6)] = 1,
    q: Annotated[str, Query(max_length=200)] = "",
    problems: bool = False,
) -> HTMLResponse:
    ctx = site_context(store, site_id, who, "quality")
    site = ctx["site"]
    if first is None and last is None:
        first, last = default_days(store, site)
    first = first or (last - timedelta(days=30) if last else None)
    last = last or (first + timedelta(days=30) if first else None)
    assert first is not None and last is not None
    if last < first:
        first, last = last, first
    size, search = HEAT_PAGE_ROWS, " ".join(q.split())

    def heat_map(number: int) -> HeatMap:
        return quality_heat_map(
            store,
            site,
            first,
            last,
            offset=(number - 1) * size,
            limit=size,
            search=search,
            problems_only=problems,
        )

    heat = heat_map(page_number)
    kept = {"q": search, "problems": "1" if problems else None}
    here = {"from": heat.first_day, "to": heat.last_day}
    links = pager(page_number, heat.matches, size, {**here, **kept})
    if links.page != page_number:  # past the end (the search found fewer): its last page
        heat = heat_map(links.page)
    span = timedelta(days=(heat.last_day - heat.first_day).days + 1)
    one = timedelta(days=1)
    return page(
        request,
        "site_quality.html.j2",
        who,
        heat=heat,
        colours=QUALITY_COLOURS,
        pager=links,
        search=search,
        problems=problems,
        every_point=query(here),
        earlier=query({"from": heat.first_day - span, "to": heat.first_day - one, **kept}),
        later=query({"from": heat.last_day + one, "to": heat.last_day + span, **kept}),
        **ctx,
    )


@router.get("/sites/{site_id}/monitoring", response_class=HTMLResponse)
def monitoring_page(
    site_id: str,
    request: Request,
    store: StoreDep,
    who: Annotated[Principal, Depends(guard(Need.READ))],
    view: Annotated[str, Query(pattern="^(day|week|month|year)$")] = "week",
    day: Annotated[date | None, Query(alias="date")] = None,
) -> HTMLResponse:
    ctx = site_context(store, site_id, who, "monitoring")
    if day is None:
        day = default_days(store, ctx["site"], 1)[1]
    return page(
        request,
        "site_monitoring.html.j2",
        who,
        view=view,
        day=day,
        data_url=f"/api/v1/sites/{site_id}/charts/monitoring?view={view}&date={day.isoformat()}",
        **ctx,
    )


@router.get("/sites/{site_id}/meters", response_class=HTMLResponse)
def meters_page(
    site_id: str,
    request: Request,
    store: StoreDep,
    who: Annotated[Principal, Depends(guard(Need.READ))],
    page_number: Annotated[int, Query(alias="page", ge=1, le=10**6)] = 1,
    q: Annotated[str, Query(max_length=200)] = "",
) -> HTMLResponse:
    ctx = site_context(store, site_id, who, "meters")
    size, search = METER_PAGE_ROWS, " ".join(q.split())
    rows = meter_rows(ctx["site"])
    found = [
        m
        for m in rows
        if finds(
            search, m.location_id, m.location_name, *m.metering_points, m.manufacturer, m.serial
        )
    ]
    links = pager(page_number, len(found), size, {"q": search})
    offset = (links.page - 1) * size
    return page(
        request,
        "site_meters.html.j2",
        who,
        meters=found[offset : offset + size],
        matches=len(found),
        total=len(rows),
        offset=offset,
        pager=links,
        search=search,
        every=query({}),
        **ctx,
    )


@router.get("/sites/{site_id}/versions", response_class=HTMLResponse)
def versions_page(
    site_id: str,
    request: Request,
    store: StoreDep,
    who: Annotated[Principal, Depends(guard(Need.READ))],
    show: int | None = None,
) -> HTMLResponse:
    ctx = site_context(store, site_id, who, "versions")
    versions = store.site_versions(site_id)
    shown = next((v for v in versions if v.version == show), versions[-1])
    return page(
        request,
        "site_versions.html.j2",
        who,
        versions=list(reversed(versions)),
        shown=shown,
        check=None,
        **ctx,
    )


@router.post("/sites/{site_id}/versions", response_class=HTMLResponse)
async def versions_apply(
    site_id: str,
    request: Request,
    who: Annotated[Principal, Depends(guard(Need.OPERATE))],
    file: Annotated[UploadFile, File()],
    action: Annotated[str, Form(pattern="^(check|apply)$")] = "check",
) -> Response:
    state = app_state(request)
    text = (await file.read(4 * 1024 * 1024)).decode("utf-8", errors="replace")
    with state.pool.store() as store:
        ctx = site_context(store, site_id, who, "versions")
        versions = store.site_versions(site_id)
    checked = check_text(text, file.filename or f"{site_id}.toml")
    if action == "check" or not checked.valid:
        return page(
            request,
            "site_versions.html.j2",
            who,
            status_code=200 if checked.valid else 422,
            versions=list(reversed(versions)),
            shown=versions[-1],
            check=checked,
            **ctx,
        )
    out = await run_in_threadpool(_apply, state, who, ConfigIn(toml=text), site_id)
    return RedirectResponse(f"/jobs/{out.id}", status_code=303)


@router.get("/sites/{site_id}/imports", response_class=HTMLResponse)
def imports_page(
    site_id: str,
    request: Request,
    store: StoreDep,
    who: Annotated[Principal, Depends(guard(Need.READ))],
    page_number: Annotated[int, Query(alias="page", ge=1, le=10**7)] = 1,
) -> HTMLResponse:
    ctx = site_context(store, site_id, who, "imports")
    state = app_state(request)
    jobs = [job_out(state, j.id) for j in state.accounts.jobs(site_id=site_id, limit=30)]
    size, count = BATCH_PAGE_ROWS, store.batch_count(site_id)
    links = pager(page_number, count, size, {})
    offset = (links.page - 1) * size
    batches = store.batches(site_id, newest_first=True, offset=offset, limit=size)
    return page(
        request,
        "site_imports.html.j2",
        who,
        jobs=jobs,
        batches=batches,
        batch_count=count,
        offset=offset,
        pager=links,
        **ctx,
    )


@router.post("/sites/{site_id}/imports", response_class=HTMLResponse)
async def imports_upload(
    site_id: str,
    request: Request,
    who: Annotated[Principal, Depends(guard(Need.OPERATE))],
    files: Annotated[list[UploadFile], File()],
) -> Response:
    contents = await read_uploads(files, skip_unnamed=True)
    jobs = await run_in_threadpool(submit_imports, app_state(request), site_id, who, contents)
    if len(jobs) == 1:
        return RedirectResponse(f"/jobs/{jobs[0].id}", status_code=303)
    return RedirectResponse(f"/sites/{site_id}/imports", status_code=303)


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
def job_page(
    job_id: int, request: Request, who: Annotated[Principal, Depends(guard(Need.READ))]
) -> HTMLResponse:
    state = app_state(request)
    job = job_out(state, job_id)
    with state.pool.store() as store:
        ctx = site_context(store, job.site_id, who, "imports")
    problem = (job.result or {}).get("problem") if job.state == "failed" else None
    return page(request, "job.html.j2", who, job=job, problem=problem, **ctx)


@router.get("/sites/{site_id}/audit", response_class=HTMLResponse)
def audit_page(
    site_id: str,
    request: Request,
    store: StoreDep,
    who: Annotated[Principal, Depends(guard(Need.ADMIN))],
) -> HTMLResponse:
    ctx = site_context(store, site_id, who, "audit")
    entries = app_state(request).accounts.audit_log(site_id)
    return page(request, "audit.html.j2", who, entries=entries, **ctx)
