"""API: imports (file upload and JSON push of readings), the raw archive, load profiles at any
resolution, the data-quality heat map.

A JSON push is turned into its canonical CSV text (fixed columns, numbers as Python writes
them back exactly, one row per reading in the order given): that text is what the raw archive
keeps (TOR-7.1) and its SHA-256 makes a push idempotent: the same batch pushed twice is stored
once, whatever the JSON's key order or spacing. A rebuild replays it like any imported file.
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Query, Request, Response, UploadFile
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from lastgang import services
from lastgang.api.auth import Need, Principal, guard
from lastgang.api.deps import app_state, read_store, site_version
from lastgang.api.jobs import JobContext
from lastgang.api.problems import ApiProblem, problem_for_error
from lastgang.api.routes_sites import JobOut, job_out, wait_for_job
from lastgang.api.state import AppState
from lastgang.api.views import default_days, quality_heat_map
from lastgang.errors import LastgangError
from lastgang.store import Store

__all__ = ["MAX_UPLOAD_BYTES", "canonical_csv", "read_uploads", "router"]

router = APIRouter(prefix="/api/v1", tags=["data"])

StoreDep = Annotated[Store, Depends(read_store)]

#: largest file accepted by one upload (a year of 15-minute values of 200 metering points)
MAX_UPLOAD_BYTES = 256 * 1024 * 1024
#: most readings in one JSON push
MAX_PUSH_READINGS = 500_000

_Finite = Annotated[float, Field(allow_inf_nan=False)]


class RegisterReading(BaseModel):
    time: str = Field(description="reading time with UTC offset, e.g. 2024-03-31T03:00+02:00")
    meter: str = Field(min_length=1, description="serial number (or manufacturer:serial)")
    obis: str = Field(min_length=1, description="register OBIS code, e.g. 1-0:1.8.0")
    value: _Finite
    unit: Literal["kWh", "Wh"] = "kWh"
    status: str | None = None


class PhaseSample(BaseModel):
    time: str
    meter: str = Field(min_length=1)
    l1_kw: _Finite
    l2_kw: _Finite
    l3_kw: _Finite
    status: str | None = None


class IntervalValue(BaseModel):
    end: str = Field(description="END of the quarter hour with UTC offset (TOR-4.2)")
    metering_point: str = Field(min_length=1, description="33-character metering point ID")
    import_kwh: _Finite
    export_kwh: _Finite = 0.0
    quality: Literal["L1", "L2", "L3"] | None = None


class RegistersPush(BaseModel):
    kind: Literal["registers"]
    readings: list[RegisterReading] = Field(min_length=1, max_length=MAX_PUSH_READINGS)


class PhasesPush(BaseModel):
    kind: Literal["phases"]
    readings: list[PhaseSample] = Field(min_length=1, max_length=MAX_PUSH_READINGS)


class IntervalsPush(BaseModel):
    kind: Literal["intervals"]
    readings: list[IntervalValue] = Field(min_length=1, max_length=MAX_PUSH_READINGS)


Push = Annotated[RegistersPush | PhasesPush | IntervalsPush, Field(discriminator="kind")]

_COLUMNS = {
    "registers": ("time", "meter", "obis", "value", "unit", "status"),
    "phases": ("time", "meter", "l1_kw", "l2_kw", "l3_kw", "status"),
    "intervals": ("end", "metering_point", "import_kwh", "export_kwh", "quality"),
}


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)


def canonical_csv(push: RegistersPush | PhasesPush | IntervalsPush) -> bytes:
    """The canonical CSV text of a push (what the raw archive keeps). Optional columns appear
    only when a reading uses them, so the text does not depend on how the JSON was written."""
    columns = list(_COLUMNS[push.kind])
    rows = [r.model_dump() for r in push.readings]
    for optional in ("status", "quality"):
        if optional in columns and all(r.get(optional) is None for r in rows):
            columns.remove(optional)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for r in rows:
        writer.writerow([_cell(r[c]) for c in columns])
    return buffer.getvalue().encode("utf-8")


class ImportOut(BaseModel):
    file: str
    kind: str
    rows: int
    batch: int
    metering_points: int
    slots: int
    status: str
    already_imported: bool


class PushOut(ImportOut):
    job: str


class BatchOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    batch: int
    sha256: str
    source: str
    format: str
    imported_at: datetime
    size: int
    site_version: int


class ProfileOut(BaseModel):
    site_id: str
    location_id: str
    resolution: str
    end: list[str] = Field(description="period END labels in the site's legal time (TOR-4.2)")
    import_kwh: list[float | None]
    export_kwh: list[float | None]
    quality: list[str] = Field(description="worst quality of each period (L1, L2, L3, missing)")


class HeatCellOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    day: date
    worst: str
    complete: float
    slots: int


class HeatRowOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    location_id: str
    name: str
    metering_points: list[str]
    cells: list[HeatCellOut]


class HeatMapOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    site_id: str
    first_day: date
    last_day: date
    locations: int = Field(description="metering locations of the site")
    matches: int = Field(description="rows that match q and problems (all when neither)")
    offset: int = Field(description="where rows begin among those")
    rows: list[HeatRowOut]


def _import_job(ctx: JobContext) -> dict[str, Any]:
    source = str(ctx.job.params.get("source", "upload"))
    ctx.progress(f"checking {source}", 0, 1)
    r = services.import_bytes(ctx.store, ctx.job.site_id, ctx.payload or b"", source)
    ctx.progress("done", 1, 1)
    if not r.already_imported:
        ctx.accounts.audit(
            ctx.job.actor,
            "import",
            ctx.job.site_id,
            f"batch {r.batch}",
            f"{source}: {r.kind}, {r.rows} rows, {r.slots} slots",
        )
    return {
        "file": r.file,
        "kind": r.kind,
        "rows": r.rows,
        "batch": r.batch,
        "metering_points": r.metering_points,
        "slots": r.slots,
        "status": r.status,
        "already_imported": r.already_imported,
    }


def register_jobs(state: AppState) -> None:
    state.jobs.register("import", _import_job)
    state.jobs.register("push", _import_job)


@router.post(
    "/sites/{site_id}/imports",
    response_model=list[JobOut],
    status_code=202,
    summary="Upload files of readings; each is imported in the background (one job per file)",
)
async def upload(
    site_id: str,
    request: Request,
    files: Annotated[list[UploadFile], File(description="CSV files of readings")],
    who: Annotated[Principal, Depends(guard(Need.OPERATE))],
) -> list[JobOut]:
    contents = await read_uploads(files)
    return await run_in_threadpool(submit_imports, app_state(request), site_id, who, contents)


async def read_uploads(
    files: list[UploadFile], *, skip_unnamed: bool = False
) -> list[tuple[str, bytes]]:
    """Name and bytes of every uploaded file, a 413 problem for one over
    :data:`MAX_UPLOAD_BYTES`. A file without a name is ``upload.csv``, or left out with
    ``skip_unnamed`` (a page's form sends its file field even when nothing was chosen)."""
    contents: list[tuple[str, bytes]] = []
    for f in files:
        if skip_unnamed and not f.filename:
            continue
        data = await f.read(MAX_UPLOAD_BYTES + 1)
        if len(data) > MAX_UPLOAD_BYTES:
            raise ApiProblem(413, f"{f.filename}: larger than {MAX_UPLOAD_BYTES} bytes: split it")
        contents.append((f.filename or "upload.csv", data))
    return contents


def submit_imports(
    state: AppState, site_id: str, who: Principal, files: list[tuple[str, bytes]]
) -> list[JobOut]:
    """Queue one import job per file (the site must exist)."""
    with state.pool.store() as store:
        site_version(store, site_id)
    if not files:
        raise ApiProblem(422, "no file in the upload: choose at least one file")
    jobs = [state.jobs.submit("import", site_id, who.name, {"source": n}, c) for n, c in files]
    return [job_out(state, j.id) for j in jobs]


@router.post(
    "/sites/{site_id}/readings",
    response_model=PushOut,
    status_code=201,
    responses={200: {"description": "the same batch was stored before (nothing changed)"}},
    summary="Push readings as JSON (idempotent: the same batch twice is stored once)",
)
def push_readings(
    site_id: str,
    body: Push,
    request: Request,
    response: Response,
    who: Annotated[Principal, Depends(guard(Need.OPERATE))],
) -> PushOut | JobOut:
    state = app_state(request)
    content = canonical_csv(body)
    with state.pool.store() as store:
        site_version(store, site_id)
    job = state.jobs.submit(
        "push", site_id, who.name, {"source": f"push-{body.kind}.csv", "via": "api"}, content
    )
    try:
        out = wait_for_job(state, job.id, state.push_wait)
    except ApiProblem as problem:
        problem.errors = [
            e.model_copy(update={"pointer": f"/readings/{e.line - 2}"})
            if e.line is not None and e.line >= 2
            else e
            for e in problem.errors
        ]
        raise
    if out.state != "done" or out.result is None:
        response.status_code = 202
        response.headers["Location"] = out.href
        return out
    if out.result.get("already_imported"):
        response.status_code = 200
    return PushOut(**out.result, job=out.href)


@router.get(
    "/sites/{site_id}/batches",
    response_model=list[BatchOut],
    summary="The raw archive of a site: every imported batch (TOR-7.1)",
)
def list_batches(
    site_id: str,
    store: StoreDep,
    who: Annotated[Principal, Depends(guard(Need.READ))],
    offset: Annotated[int, Query(ge=0, description="the first batch given (from 0)")] = 0,
    limit: Annotated[int | None, Query(ge=1, description="at most this many batches")] = None,
    newest_first: Annotated[bool, Query(description="the newest batch first")] = False,
) -> list[BatchOut]:
    site_version(store, site_id)
    found = store.batches(site_id, newest_first=newest_first, offset=offset, limit=limit)
    return [BatchOut.model_validate(b) for b in found]


def _days(first: date | None, last: date | None, default: tuple[date, date]) -> tuple[date, date]:
    if first is None and last is None:
        a, b = default
    else:
        a, b = first or last or default[0], last or first or default[1]
    if b < a:
        raise ApiProblem(422, f"the period ends ({b}) before it starts ({a}): swap the days")
    if (b - a).days > 3660:
        raise ApiProblem(422, "the period is longer than ten years: ask for less")
    return a, b


def _nullable(values: Any) -> list[float | None]:
    return [None if v != v else float(v) for v in values.tolist()]


@router.get(
    "/sites/{site_id}/profiles/{target}",
    response_model=ProfileOut,
    responses={200: {"content": {"text/csv": {}}}},
    summary="A metering point's load profile at any resolution (ID or location id)",
)
def get_profile(
    site_id: str,
    target: str,
    store: StoreDep,
    who: Annotated[Principal, Depends(guard(Need.READ))],
    first: Annotated[date | None, Query(alias="from", description="first local day")] = None,
    last: Annotated[date | None, Query(alias="to", description="last local day")] = None,
    resolution: Annotated[str, Query(description="15min, 1h, day, month, PT15M, ...")] = "15min",
    format: Annotated[Literal["json", "csv"], Query()] = "json",
) -> Any:
    site = site_version(store, site_id).site
    a, b = _days(first, last, default_days(store, site, 1))
    try:
        table = services.export_profile(store, site_id, target, a, b, resolution)
    except LastgangError as exc:
        raise problem_for_error(exc) from None
    if format == "csv":
        return PlainTextResponse(table.to_csv(), media_type="text/csv")
    return ProfileOut(
        site_id=site_id,
        location_id=table.location_id,
        resolution=table.resolution,
        end=table.end,
        import_kwh=_nullable(table.import_kwh),
        export_kwh=_nullable(table.export_kwh),
        quality=table.quality,
    )


@router.get(
    "/sites/{site_id}/quality",
    response_model=HeatMapOut,
    summary="Worst quality and completeness per metering point and local day",
)
def get_quality(
    site_id: str,
    store: StoreDep,
    who: Annotated[Principal, Depends(guard(Need.READ))],
    first: Annotated[date | None, Query(alias="from")] = None,
    last: Annotated[date | None, Query(alias="to")] = None,
    offset: Annotated[int, Query(ge=0, description="the first row given (from 0)")] = 0,
    limit: Annotated[int | None, Query(ge=1, description="at most this many rows")] = None,
    q: Annotated[
        str,
        Query(max_length=200, description="only rows with every word in id, name or ID"),
    ] = "",
    problems: Annotated[
        bool, Query(description="only rows with a day not all measured (L1) and complete")
    ] = False,
) -> HeatMapOut:
    site = site_version(store, site_id).site
    a, b = _days(first, last, default_days(store, site))
    heat = quality_heat_map(
        store, site, a, b, offset=offset, limit=limit, search=q, problems_only=problems
    )
    return HeatMapOut.model_validate(heat)
