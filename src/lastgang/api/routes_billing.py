"""Billing: runs (create, list, show, finalize), invoices (JSON, HTML, PDF), reconciliation,
chart data (monitoring, a unit's consumption with its local/grid split), billing units with
their contracts; the API under ``/api/v1`` and the pages.

Runs are computed by :mod:`lastgang.billing_service` in the job worker and never change once
stored: finalizing a draft bills the same period again as a final run (its next version; Q-1
refuses it while a value it needs is L3 or missing). A tenant sees only the final invoices of
its own unit.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Callable
from dataclasses import asdict
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Form, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import BaseModel, ConfigDict, Field

from lastgang import billing_service
from lastgang.api.auth import Need, Owner, Principal, decide, guard, register_owner
from lastgang.api.charts_data import Chart, monitoring_chart, unit_chart
from lastgang.api.deps import app_state, read_store, site_version
from lastgang.api.jobs import JobContext
from lastgang.api.problems import ApiProblem, problem_for_error
from lastgang.api.routes_sites import JobOut, job_out, wait_for_job
from lastgang.api.routes_web import page, pager, query, site_context
from lastgang.api.state import AppState
from lastgang.api.views import default_days, finds
from lastgang.cache import SizedCache
from lastgang.concept.model import Site
from lastgang.errors import LastgangError, StoreError
from lastgang.store import Store
from lastgang.store.runs import InvoiceEntry, RunRecord, RunStore

__all__ = ["pages", "router"]

router = APIRouter(prefix="/api/v1", tags=["billing"])
pages = APIRouter(include_in_schema=False)

StoreDep = Annotated[Store, Depends(read_store)]

_NUMBER = re.compile(r"^(?P<site>.+)-R(?P<run>[0-9]{1,12})-V(?P<version>[0-9]{1,6})-(?P<n>[0-9]+)$")


class RunIn(BaseModel):
    first_day: date = Field(description="first local day billed")
    last_day: date = Field(description="last local day billed (inclusive)")
    final: bool = Field(False, description="a final run (refused while values are L3/missing)")


class RunOut(BaseModel):
    run: int
    site_id: str
    first_day: date
    last_day: date
    version: int
    status: str
    created_at: datetime
    site_version: int | None
    fingerprint: str
    invoices: int
    currency: str
    net: Decimal
    vat: Decimal
    total: Decimal
    href: str


class InvoiceSummary(BaseModel):
    number: str
    run: int
    status: str
    unit_id: str
    unit_name: str
    customer: str
    first_day: date
    last_day: date
    consumption_kwh: Decimal
    local_kwh: Decimal
    grid_kwh: Decimal
    total: Decimal
    currency: str
    href: str
    html: str
    pdf: str


class RunDetail(RunOut):
    period: str
    invoice_search: str = Field(description="the search the invoice list answers ('' for all)")
    invoice_matches: int = Field(description="invoices that match it (all the run's when '')")
    invoice_offset: int = Field(description="where invoice_list begins among those")
    invoice_list: list[InvoiceSummary]
    reconciliation: dict[str, Any]
    quality_issues: list[dict[str, Any]]


class SeriesOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    name: str
    kind: str = Field(
        description="production, own_draw, consumption, grid_import, grid_export, local, grid"
    )
    values: list[float | None]
    colour: str | None = None


class ChartOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    title: str
    view: str
    day: date
    prev: date
    next: date
    unit: str
    x: list[str]
    widths: list[int]
    end: str = Field(description="local wall time where the last bar ends")
    labels: list[str] = Field(description="period END labels (TOR-4.2)")
    series: list[SeriesOut]
    summary: str
    totals: dict[str, float | None]


class ContractOut(BaseModel):
    id: str | None
    customer: str
    start: date
    end: date | None


class UnitOut(BaseModel):
    site_id: str
    unit_id: str
    name: str
    kind: str
    contracts: list[ContractOut]
    invoices: list[InvoiceSummary]


# ---------------------------------------------------------------------------------------------
# reading stored runs


def _run_out(r: RunRecord) -> RunOut:
    return RunOut(**asdict(r), href=f"/api/v1/sites/{r.site_id}/runs/{r.run}")


def _record(store: Store, run: int) -> RunRecord | None:
    try:
        return RunStore(store).get(run)
    except StoreError:
        return None


def _guarded_run(store: Store, run: int) -> RunRecord:
    """A run the route's guard has found already (its owner lookup answers 404 for others)."""
    record = _record(store, run)
    assert record is not None  # the guard found it
    return record


#: parsed run JSON by run: at most this much text in all (a run of 1,000 units has 30 MB of it,
#: one of 10,000 units 1.2 GB, which is parsed for each request and not kept)
_JSON_CACHE: SizedCache[tuple[str, int], dict[str, Any]] = SizedCache(128 * 2**20)


def _parse_run_json(text: str) -> dict[str, Any]:
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError:  # what only Python reads (NaN, integers beyond 64 bits)
        data = json.loads(text)
    if not isinstance(data, dict):
        raise StoreError("a stored run JSON is not an object")
    return data


def _run_json(store: Store, record: RunRecord) -> dict[str, Any]:
    key = (record.fingerprint, record.run)
    found = _JSON_CACHE.get(key)
    if found is not None:
        return found
    text = RunStore(store).run_json(record.run)
    data = _parse_run_json(text)
    _JSON_CACHE.put(key, data, len(text))
    return data


def _summary(record: RunRecord, number: str, **fields: Any) -> InvoiceSummary:
    base = f"/api/v1/sites/{record.site_id}/invoices/{number}"
    return InvoiceSummary(
        number=number, run=record.run, href=base, html=f"{base}/html", pdf=f"{base}/pdf", **fields
    )


def _invoice_summaries(record: RunRecord, invoices: list[dict[str, Any]]) -> list[InvoiceSummary]:
    """The summaries of invoices as they stand in a run JSON."""
    return [
        _summary(
            record,
            inv["number"],
            status=inv.get("status", record.status),
            unit_id=inv["unit_id"],
            unit_name=inv.get("unit_name") or inv["unit_id"],
            customer=inv.get("customer", ""),
            first_day=inv["first_day"],
            last_day=inv["last_day"],
            consumption_kwh=Decimal(inv["consumption_kwh"]),
            local_kwh=Decimal(inv["local_kwh"]),
            grid_kwh=Decimal(inv["grid_kwh"]),
            total=Decimal(inv["total"]),
            currency=inv.get("currency", record.currency),
        )
        for inv in invoices
    ]


def _summaries(store: Store, record: RunRecord, unit_id: str | None = None) -> list[InvoiceSummary]:
    """The invoices of a run (of one unit): from the run's invoice entries, without its JSON
    (a run stored before they were kept: from its JSON)."""
    entries = RunStore(store).invoices(record.run, unit_id)
    if entries is None:
        found = _invoice_summaries(record, _run_json(store, record).get("invoices", []))
        return found if unit_id is None else [s for s in found if s.unit_id == unit_id]
    return _entry_summaries(record, entries)


def _entry_summaries(record: RunRecord, entries: list[InvoiceEntry]) -> list[InvoiceSummary]:
    return [
        _summary(
            record,
            e.number,
            status=e.status,
            unit_id=e.unit_id,
            unit_name=e.unit_name or e.unit_id,
            customer=e.customer,
            first_day=e.first_day,
            last_day=e.last_day,
            consumption_kwh=e.consumption_kwh,
            local_kwh=e.local_kwh,
            grid_kwh=e.grid_kwh,
            total=e.total,
            currency=e.currency,
        )
        for e in entries
    ]


def _run_head(store: Store, record: RunRecord) -> dict[str, Any]:
    """The run's JSON without its invoices where the run keeps them apart, else the whole."""
    text = RunStore(store).run_head(record.run)
    return _run_json(store, record) if text is None else _parse_run_json(text)


def _invoice(store: Store, site_id: str, number: str) -> tuple[RunRecord, dict[str, Any]] | None:
    m = _NUMBER.match(number)
    if m is None or m["site"] != site_id:
        return None
    record = _record(store, int(m["run"]))
    if record is None or record.site_id != site_id:
        return None
    runs = RunStore(store)
    if runs.keeps_invoices(record.run):  # read that one invoice, not the whole run
        text = runs.invoice_json(record.run, number)
        return None if text is None else (record, _parse_run_json(text))
    for inv in _run_json(store, record).get("invoices", []):
        if inv.get("number") == number:
            return record, inv
    return None


def _run_owner(state: AppState, params: dict[str, str]) -> Owner | None:
    try:
        run = int(params["run_id"])
    except ValueError:
        return None
    with state.pool.store() as store:
        record = _record(store, run)
    return None if record is None else Owner(record.site_id, None, tenant_visible=False)


def _invoice_owner(state: AppState, params: dict[str, str]) -> Owner | None:
    site_id = params.get("site_id", "")
    with state.pool.store() as store:
        found = _invoice(store, site_id, params["invoice_id"])
    if found is None:
        return None
    record, inv = found
    status = inv.get("status", record.status)
    return Owner(record.site_id, inv.get("unit_id"), tenant_visible=status == "final")


register_owner("run_id", _run_owner)
register_owner("invoice_id", _invoice_owner)


# ---------------------------------------------------------------------------------------------
# jobs


def _bill_job(ctx: JobContext) -> dict[str, Any]:
    p = ctx.job.params
    first, last = date.fromisoformat(p["first_day"]), date.fromisoformat(p["last_day"])
    with tempfile.TemporaryDirectory(prefix="lastgang-run-") as tmp:
        result = billing_service.bill(
            ctx.store,
            ctx.job.site_id,
            first,
            last,
            out_dir=Path(tmp) / "run",
            final=bool(p.get("final")),
            progress=ctx.progress,
        )
    run = result.record
    if p.get("finalizes"):
        ctx.accounts.audit(
            ctx.job.actor,
            "finalize",
            run.site_id,
            f"run {p['finalizes']}",
            f"final run {run.run} (version {run.version}) for {first} to {last}, "
            f"total {run.total} {run.currency}",
        )
    else:
        ctx.accounts.audit(
            ctx.job.actor,
            "bill",
            run.site_id,
            f"run {run.run}",
            f"{run.status} for {first} to {last}, {run.invoices} invoice(s)",
        )
    return {
        "run": run.run,
        "version": run.version,
        "status": run.status,
        "invoices": run.invoices,
        "total": str(run.total),
        "currency": run.currency,
        "href": f"/api/v1/sites/{run.site_id}/runs/{run.run}",
    }


def register_jobs(state: AppState) -> None:
    state.jobs.register("bill", _bill_job)


def _finalize(state: AppState, site_id: str, who: Principal, run_id: int) -> JobOut:
    """Bill a draft run's period again as a final run; 409 for a run that is final already."""
    with state.pool.store() as store:
        record = _guarded_run(store, run_id)
    if record.status == "final":
        raise ApiProblem(409, f"run {run_id} is final already: nothing to finalize")
    body = RunIn(first_day=record.first_day, last_day=record.last_day, final=True)
    return submit_run(state, site_id, who, body, finalizes=run_id)


def submit_run(
    state: AppState, site_id: str, who: Principal, body: RunIn, finalizes: int | None = None
) -> JobOut:
    if body.last_day < body.first_day:
        raise ApiProblem(
            422, f"the period ends ({body.last_day}) before it starts ({body.first_day})"
        )
    if (body.last_day - body.first_day).days > 3700:
        raise ApiProblem(422, "a billing period is at most ten years: bill a shorter one")
    with state.pool.store() as store:
        site_version(store, site_id)
    params: dict[str, Any] = {
        "first_day": body.first_day.isoformat(),
        "last_day": body.last_day.isoformat(),
        "final": body.final,
    }
    if finalizes is not None:
        params["finalizes"] = finalizes
    job = state.jobs.submit("bill", site_id, who.name, params)
    return wait_for_job(state, job.id, 0.0)


# ---------------------------------------------------------------------------------------------
# API


@router.post(
    "/sites/{site_id}/runs",
    response_model=JobOut,
    status_code=202,
    summary="Start a billing run for a period (runs in the background; see the job)",
)
def create_run(
    site_id: str,
    body: RunIn,
    request: Request,
    response: Response,
    who: Annotated[Principal, Depends(guard(Need.OPERATE))],
) -> JobOut:
    out = submit_run(app_state(request), site_id, who, body)
    response.headers["Location"] = out.href
    return out


@router.get("/sites/{site_id}/runs", response_model=list[RunOut], summary="Billing runs")
def list_runs(
    site_id: str, store: StoreDep, who: Annotated[Principal, Depends(guard(Need.READ))]
) -> list[RunOut]:
    site_version(store, site_id)
    return [_run_out(r) for r in RunStore(store).runs(site_id)]


def _detail(
    store: Store,
    record: RunRecord,
    offset: int = 0,
    limit: int | None = None,
    search: str = "",
) -> RunDetail:
    """A run with the invoices that match ``search`` (every word in the number, unit or
    customer), ``limit`` of them from ``offset`` (all by default)."""
    stop = None if limit is None else offset + limit
    runs = RunStore(store)
    if not runs.keeps_invoices(record.run):  # stored before invoices were kept apart: the whole
        data = _run_json(store, record)  # JSON, parsed once
        found = [
            inv
            for inv in data.get("invoices", [])
            if finds(
                search,
                inv["number"],
                inv["unit_id"],
                inv.get("unit_name") or "",
                inv.get("customer", ""),
            )
        ]
        invoices, matches = _invoice_summaries(record, found[offset:stop]), len(found)
    elif search.split():
        data = _run_head(store, record)
        kept = [
            e
            for e in runs.invoices(record.run) or []
            if finds(search, e.number, e.unit_id, e.unit_name, e.customer)
        ]
        invoices, matches = _entry_summaries(record, kept[offset:stop]), len(kept)
    else:  # only the entries shown are read (a run of 10,000 units has 50 pages of them)
        data = _run_head(store, record)
        entries = runs.invoices(record.run, offset=offset, limit=limit) or []
        invoices, matches = _entry_summaries(record, entries), record.invoices
    return RunDetail(
        **_run_out(record).model_dump(),
        period=str(data.get("period_label", "")),
        invoice_search=search,
        invoice_matches=matches,
        invoice_offset=offset,
        invoice_list=invoices,
        reconciliation=data.get("reconciliation", {}),
        quality_issues=list(data.get("quality_issues", [])),
    )


@router.get(
    "/sites/{site_id}/runs/{run_id}",
    response_model=RunDetail,
    summary="One run with its invoices, reconciliation and quality issues",
)
def get_run(
    site_id: str,
    run_id: int,
    store: StoreDep,
    who: Annotated[Principal, Depends(guard(Need.READ))],
    offset: Annotated[int, Query(ge=0, description="the first invoice listed (from 0)")] = 0,
    limit: Annotated[
        int | None, Query(ge=1, description="at most this many invoices (default: all)")
    ] = None,
    q: Annotated[
        str,
        Query(
            max_length=200,
            description="only invoices with every word in their number, unit or customer",
        ),
    ] = "",
) -> RunDetail:
    return _detail(store, _guarded_run(store, run_id), offset, limit, q)


@router.post(
    "/sites/{site_id}/runs/{run_id}/finalize",
    response_model=JobOut,
    status_code=202,
    summary="Bill the run's period again as a final run (its next version)",
)
def finalize_run(
    site_id: str,
    run_id: int,
    request: Request,
    response: Response,
    who: Annotated[Principal, Depends(guard(Need.OPERATE))],
) -> JobOut:
    out = _finalize(app_state(request), site_id, who, run_id)
    response.headers["Location"] = out.href
    return out


@router.get(
    "/sites/{site_id}/runs/{run_id}/reconciliation",
    summary="The reconciliation of a run: grid connection against the meters behind it",
)
def get_reconciliation(
    site_id: str,
    run_id: int,
    store: StoreDep,
    who: Annotated[Principal, Depends(guard(Need.READ))],
) -> dict[str, Any]:
    rec: dict[str, Any] = _run_head(store, _guarded_run(store, run_id)).get("reconciliation", {})
    return rec


def _found_invoice(store: Store, site_id: str, invoice_id: str) -> tuple[RunRecord, dict[str, Any]]:
    found = _invoice(store, site_id, invoice_id)
    if found is None:
        raise ApiProblem(404, f"there is no invoice {invoice_id!r} in site {site_id!r}")
    return found


def _output(store: Store, record: RunRecord, name: str) -> bytes:
    found = RunStore(store).output(record.run, name)
    if found is None:
        raise ApiProblem(404, f"run {record.run} has no file {name}: bill the period again")
    return found.content


def _invoice_html(store: Store, site_id: str, invoice_id: str) -> HTMLResponse:
    """The invoice page as the run stored it (the same page as the PDF)."""
    record, _ = _found_invoice(store, site_id, invoice_id)
    return HTMLResponse(_output(store, record, f"{invoice_id}.html").decode("utf-8"))


@router.get(
    "/sites/{site_id}/invoices/{invoice_id}",
    summary="An invoice as JSON (every line, the explanation, the data quality)",
)
def get_invoice(
    site_id: str,
    invoice_id: str,
    store: StoreDep,
    who: Annotated[Principal, Depends(guard(Need.UNIT))],
) -> dict[str, Any]:
    return _found_invoice(store, site_id, invoice_id)[1]


@router.get(
    "/sites/{site_id}/invoices/{invoice_id}/html",
    response_class=HTMLResponse,
    summary="An invoice as HTML (the same page as the PDF)",
)
def get_invoice_html(
    site_id: str,
    invoice_id: str,
    store: StoreDep,
    who: Annotated[Principal, Depends(guard(Need.UNIT))],
) -> HTMLResponse:
    return _invoice_html(store, site_id, invoice_id)


@router.get(
    "/sites/{site_id}/invoices/{invoice_id}/pdf",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}}},
    summary="An invoice as PDF (A4)",
)
def get_invoice_pdf(
    site_id: str,
    invoice_id: str,
    store: StoreDep,
    who: Annotated[Principal, Depends(guard(Need.UNIT))],
) -> Response:
    record, _ = _found_invoice(store, site_id, invoice_id)
    return Response(
        _output(store, record, f"{invoice_id}.pdf"),
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{invoice_id}.pdf"'},
    )


def _chart_out(
    store: Store, site: Site, day: date | None, draw: Callable[[date], Chart]
) -> ChartOut:
    """A chart for ``day`` (default: the last day with data), a core error as its problem."""
    try:
        return ChartOut.model_validate(draw(day or default_days(store, site, 1)[1]))
    except LastgangError as exc:
        raise problem_for_error(exc) from None


View = Literal["day", "week", "month", "year"]


@router.get(
    "/sites/{site_id}/charts/monitoring",
    response_model=ChartOut,
    summary="Monitoring chart data (SM-4): production, consumption, own draw, grid",
)
def monitoring_data(
    site_id: str,
    store: StoreDep,
    who: Annotated[Principal, Depends(guard(Need.READ))],
    view: Annotated[View, Query()] = "week",
    day: Annotated[date | None, Query(alias="date")] = None,
) -> ChartOut:
    stamp = store.change_stamp(site_id)  # before the site: a chart is kept by it
    site = site_version(store, site_id).site
    return _chart_out(
        store, site, day, lambda d: monitoring_chart(store, site, view, d, stamp=stamp)
    )


def _unit_or_404(store: Store, site_id: str, unit_id: str) -> Any:
    site = site_version(store, site_id).site
    unit = next((u for u in site.units if u.id == unit_id), None)
    if unit is None:
        raise ApiProblem(404, f"site {site_id!r} has no unit {unit_id!r}")
    return site, unit


@router.get(
    "/sites/{site_id}/units/{unit_id}/charts/consumption",
    response_model=ChartOut,
    summary="A unit's consumption with its local/grid split (SM-5)",
)
def unit_consumption(
    site_id: str,
    unit_id: str,
    store: StoreDep,
    who: Annotated[Principal, Depends(guard(Need.UNIT))],
    view: Annotated[View, Query()] = "month",
    day: Annotated[date | None, Query(alias="date")] = None,
) -> ChartOut:
    stamp = store.change_stamp(site_id)  # before the site: a chart is kept by it
    site, _unit = _unit_or_404(store, site_id, unit_id)
    return _chart_out(
        store, site, day, lambda d: unit_chart(store, site, unit_id, view, d, stamp=stamp)
    )


def unit_view(store: Store, site_id: str, unit_id: str, who: Principal) -> UnitOut:
    """A unit with its contracts and the invoices the caller may see (a tenant: final only)."""
    site, unit = _unit_or_404(store, site_id, unit_id)
    invoices: list[InvoiceSummary] = []
    runs = RunStore(store)
    kept = runs.unit_invoices(site_id, unit_id)  # every run with entries at once
    for record in runs.runs(site_id):
        entries = kept.get(record.run)
        found = (
            _summaries(store, record, unit_id)
            if entries is None
            else _entry_summaries(record, entries)
        )
        for inv in found:
            if decide(who, Need.UNIT, site_id, inv.unit_id, tenant_visible=inv.status == "final"):
                invoices.append(inv)
    return UnitOut(
        site_id=site_id,
        unit_id=unit_id,
        name=unit.name or unit.id,
        kind=str(unit.kind),
        contracts=[
            ContractOut(id=c.id, customer=c.customer, start=c.start, end=c.end)
            for c in site.contracts
            if c.unit == unit_id
        ],
        invoices=list(reversed(invoices)),
    )


@router.get(
    "/sites/{site_id}/units/{unit_id}",
    response_model=UnitOut,
    summary="A billing unit: its contracts and invoices (a tenant sees final invoices only)",
)
def get_unit(
    site_id: str,
    unit_id: str,
    store: StoreDep,
    who: Annotated[Principal, Depends(guard(Need.UNIT))],
) -> UnitOut:
    return unit_view(store, site_id, unit_id, who)


# ---------------------------------------------------------------------------------------------
# pages


@pages.get("/sites/{site_id}/runs", response_class=HTMLResponse)
def runs_page(
    site_id: str,
    request: Request,
    store: StoreDep,
    who: Annotated[Principal, Depends(guard(Need.READ))],
) -> HTMLResponse:
    ctx = site_context(store, site_id, who, "runs")
    state = app_state(request)
    jobs = [
        job_out(state, j.id)
        for j in state.accounts.jobs(site_id=site_id, limit=50)
        if j.kind == "bill"
    ][:10]
    runs = list(reversed(RunStore(store).runs(site_id)))
    return page(request, "runs.html.j2", who, runs=runs, jobs=jobs, **ctx)


@pages.post("/sites/{site_id}/runs", response_class=HTMLResponse)
def runs_create(
    site_id: str,
    request: Request,
    who: Annotated[Principal, Depends(guard(Need.OPERATE))],
    first_day: Annotated[date, Form()],
    last_day: Annotated[date, Form()],
    status: Annotated[Literal["draft", "final"], Form()] = "draft",
) -> Response:
    body = RunIn(first_day=first_day, last_day=last_day, final=status == "final")
    out = submit_run(app_state(request), site_id, who, body)
    return RedirectResponse(f"/jobs/{out.id}", status_code=303)


#: invoices on one page of a run (a community of 10,000 units: 50 pages)
_RUN_PAGE_INVOICES = 200


@pages.get("/sites/{site_id}/runs/{run_id}", response_class=HTMLResponse)
def run_page(
    site_id: str,
    run_id: int,
    request: Request,
    store: StoreDep,
    who: Annotated[Principal, Depends(guard(Need.READ))],
    page_number: Annotated[int, Query(alias="page", ge=1, le=10**6)] = 1,
    q: Annotated[str, Query(max_length=200)] = "",
) -> HTMLResponse:
    ctx = site_context(store, site_id, who, "runs")
    size, search = _RUN_PAGE_INVOICES, " ".join(q.split())
    record = _guarded_run(store, run_id)
    run = _detail(store, record, (page_number - 1) * size, size, search)
    links = pager(page_number, run.invoice_matches, size, {"q": search})
    if links.page != page_number:  # past the end (the search found fewer): its last page
        run = _detail(store, record, (links.page - 1) * size, size, search)
    return page(
        request, "run.html.j2", who, run=run, pager=links, search=search, every=query({}), **ctx
    )


@pages.post("/sites/{site_id}/runs/{run_id}/finalize", response_class=HTMLResponse)
def run_finalize(
    site_id: str,
    run_id: int,
    request: Request,
    who: Annotated[Principal, Depends(guard(Need.OPERATE))],
) -> Response:
    out = _finalize(app_state(request), site_id, who, run_id)
    return RedirectResponse(f"/jobs/{out.id}", status_code=303)


@pages.get("/sites/{site_id}/invoices/{invoice_id}", response_class=HTMLResponse)
def invoice_page(
    site_id: str,
    invoice_id: str,
    store: StoreDep,
    who: Annotated[Principal, Depends(guard(Need.UNIT))],
) -> HTMLResponse:
    return _invoice_html(store, site_id, invoice_id)


@pages.get("/sites/{site_id}/units/{unit_id}", response_class=HTMLResponse)
def unit_page(
    site_id: str,
    unit_id: str,
    request: Request,
    store: StoreDep,
    who: Annotated[Principal, Depends(guard(Need.UNIT))],
    view: Annotated[View, Query()] = "month",
    day: Annotated[date | None, Query(alias="date")] = None,
) -> HTMLResponse:
    unit = unit_view(store, site_id, unit_id, who)
    site = site_version(store, site_id).site
    if day is None:
        last = default_days(store, site, 1)[1]
        # a month that has only just begun shows little: show the one before
        day = last.replace(day=1) - timedelta(days=1) if last.day <= 3 else last
    return page(
        request,
        "unit.html.j2",
        who,
        unit=unit,
        site=site,
        site_id=site_id,
        tab="portal",
        view=view,
        day=day,
        data_url=f"/api/v1/sites/{site_id}/units/{unit_id}/charts/consumption"
        f"?view={view}&date={day.isoformat()}",
    )
