"""Property-based run of the API against its own OpenAPI schema (schemathesis): whatever a
client sends that the schema describes, the server never answers with a 5xx, and every error is
a problem document. Examples are bounded (a few per operation) so the run takes seconds."""

from __future__ import annotations

import zlib
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from .conftest import SITE, World


@pytest.fixture(scope="module")
def fuzz_world(world: World) -> World:
    # the shared application: this module runs after the others of tests/api (the fuzzer adds
    # runs and batches, which the other modules' exact lists would not expect)
    return world


def _aim(case: Any, world: World) -> None:
    """Point most cases at data that exists (random ids would mostly meet a 404): the site
    always, the unit, run, invoice and job of the test site in every other case."""
    params = case.path_parameters or {}
    if "site_id" in params:
        params["site_id"] = SITE
    known = {
        "unit_id": "top1",
        "run_id": world.draft_run,
        "invoice_id": world.invoices.get("top1", ""),
        "job_id": world.import_job,
    }
    for name, value in known.items():
        if name in params and zlib.crc32(str(params[name]).encode()) % 2 == 0:
            params[name] = value


def test_api_never_fails_with_a_server_error(fuzz_world: World) -> None:
    headers = fuzz_world.bearer("operator")
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", fuzz_world.app, headers=headers)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 25
    seen: list[str] = []
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=5,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case: Any) -> None:
            _aim(case, fuzz_world)
            response = case.call(headers=headers)
            case.validate_response(response, checks=[not_a_server_error])
            assert response.status_code < 500, f"{case.method} {case.path}: {response.text[:300]}"
            if response.status_code >= 400:
                kind = response.headers.get("content-type", "")
                kind = kind[0] if isinstance(kind, list) else kind
                assert kind.startswith("application/problem+json"), (case.path, kind)

        run()
        seen.append(operation.label)
    assert len(seen) == len(operations)
