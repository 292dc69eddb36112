"""Problem documents (RFC 9457, ``application/problem+json``): every error of the HTTP API.

A problem document has ``type`` (a URN naming the kind of problem, listed in ``docs/api.md``),
``title`` (the same for every problem of that type), ``status`` (the HTTP status), ``detail``
(what went wrong this time and what to do) and ``errors``: one entry per
:class:`~lastgang.errors.Problem` with its place (file, line, column, meter, time and, for a JSON
body, a JSON pointer), so a client sees everything to fix at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from lastgang.errors import (
    ConceptError,
    InvalidInput,
    LastgangError,
    MeterDataError,
    Problem,
    StoreError,
)

__all__ = [
    "MEDIA_TYPE",
    "PROBLEM_TYPES",
    "ApiProblem",
    "ProblemDocument",
    "ProblemEntry",
    "entry_of",
    "problem_for_error",
    "problem_response",
]

MEDIA_TYPE = "application/problem+json"

#: slug -> title of every problem type the API uses (``urn:lastgang:problem:<slug>``)
PROBLEM_TYPES: dict[str, str] = {
    "invalid-input": "The input breaks a rule",
    "invalid-concept": "The site configuration has errors",
    "meter-data": "The meter data is inconsistent",
    "invalid-request": "The request is malformed",
    "unauthenticated": "Authentication required",
    "forbidden": "Not allowed",
    "csrf": "Missing or wrong CSRF token",
    "not-found": "Not found",
    "conflict": "The store refused the operation",
    "method-not-allowed": "Method not allowed",
    "too-many-requests": "Too many attempts",
    "payload-too-large": "The request body is too large",
    "unsupported-media-type": "Unsupported media type",
    "not-acceptable": "Not acceptable",
    "unavailable": "Not available yet",
    "internal": "Internal server error",
}

_BY_STATUS = {
    400: "invalid-request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    406: "not-acceptable",
    409: "conflict",
    413: "payload-too-large",
    415: "unsupported-media-type",
    422: "invalid-request",
    429: "too-many-requests",
    503: "unavailable",
}


class ProblemEntry(BaseModel):
    """One problem with its place; the fields of the place that are unknown are null."""

    detail: str = Field(description="what is wrong and what to do")
    place: str = Field("", description="the place as one readable string")
    severity: str = "error"
    file: str | None = None
    line: int | None = None
    column: str | None = None
    meter: str | None = None
    time: str | None = None
    pointer: str | None = Field(None, description="JSON pointer into the request (RFC 6901)")


class ProblemDocument(BaseModel):
    """An RFC 9457 problem document."""

    type: str = Field(description="URN naming the kind of problem")
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[ProblemEntry] = Field(default_factory=list)


def entry_of(p: Problem, pointer: str | None = None) -> ProblemEntry:
    """A :class:`ProblemEntry` for a :class:`~lastgang.errors.Problem`."""
    return ProblemEntry(
        detail=p.reason,
        place=p.where(),
        severity=p.severity,
        file=p.file,
        line=p.line,
        column=p.column,
        meter=p.meter,
        time=p.time,
        pointer=pointer,
    )


@dataclass
class ApiProblem(Exception):
    """Raised by a route to answer with a problem document."""

    status: int
    detail: str
    slug: str | None = None
    errors: Sequence[ProblemEntry] = ()
    headers: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.detail)

    def document(self, instance: str | None = None) -> ProblemDocument:
        slug = self.slug or _BY_STATUS.get(self.status, "internal")
        return ProblemDocument(
            type=f"urn:lastgang:problem:{slug}",
            title=PROBLEM_TYPES.get(slug, slug),
            status=self.status,
            detail=self.detail,
            instance=instance,
            errors=list(self.errors),
        )


def problem_for_error(exc: LastgangError, pointers: Mapping[int, str] | None = None) -> ApiProblem:
    """The problem document for an error of lastgang's own tree. ``pointers`` maps a problem's
    line number to a JSON pointer (for bodies that were turned into CSV lines)."""
    entries = [
        entry_of(p, None if pointers is None or p.line is None else pointers.get(p.line))
        for p in exc.problems
    ]
    if isinstance(exc, ConceptError):
        return ApiProblem(422, exc.message, "invalid-concept", entries)
    if isinstance(exc, InvalidInput):
        return ApiProblem(422, exc.message, "invalid-input", entries)
    if isinstance(exc, MeterDataError):
        return ApiProblem(422, exc.message, "meter-data", entries)
    if isinstance(exc, StoreError):
        return ApiProblem(409, exc.message, "conflict", entries)
    return ApiProblem(422, exc.message, "invalid-input", entries)


def problem_response(problem: ApiProblem, instance: str | None = None) -> JSONResponse:
    """The HTTP response carrying ``problem``."""
    doc = problem.document(instance)
    return JSONResponse(
        jsonable_encoder(doc.model_dump(exclude_none=True)),
        status_code=problem.status,
        media_type=MEDIA_TYPE,
        headers=dict(problem.headers),
    )


#: tags of the request bodies that are discriminated unions (the JSON push of readings)
_UNION_TAGS = frozenset({"registers", "phases", "intervals"})


def validation_entries(errors: Iterable[Mapping[str, Any]]) -> list[ProblemEntry]:
    """Problem entries for FastAPI/pydantic request validation errors (``loc`` -> pointer)."""
    out: list[ProblemEntry] = []
    for err in errors:
        loc = [str(x) for x in err.get("loc", ())]
        where = loc[0] if loc else "request"
        rest = loc[1:]
        if where == "body" and rest and rest[0] in _UNION_TAGS:
            rest = rest[1:]  # the tag of a discriminated union is not a place in the body
        pointer = "/" + "/".join(x.replace("~", "~0").replace("/", "~1") for x in rest)
        place = f"{where} {'.'.join(rest)}".strip() if rest else where
        out.append(
            ProblemEntry(
                detail=_validation_message(err),
                place=place,
                column=".".join(rest) or None,
                pointer=pointer if where == "body" else None,
            )
        )
    return out


def _validation_message(err: Mapping[str, Any]) -> str:
    msg = str(err.get("msg", "invalid value"))
    kind = str(err.get("type", ""))
    if kind == "missing":
        return "this field is required: add it"
    if kind == "json_invalid":
        return f"the body is not valid JSON ({err.get('ctx', {}).get('error', msg)}): fix it"
    return f"{msg}: correct the value"
