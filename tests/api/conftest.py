"""A populated web application for the API tests: the site ``webtest`` (tests/api/site.toml)
with two days of interval values, users of every role, API tokens, a draft and a final billing
run. Built once per test module (argon2 hashing and PDF rendering take a moment)."""

from __future__ import annotations

import re
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi import FastAPI

# the test client's transport is fine for these tests; its deprecation notice is noise here
warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
from fastapi.testclient import TestClient  # noqa: E402

from lastgang.api.accounts import Role, Scope  # noqa: E402
from lastgang.api.app import create_app  # noqa: E402

from .webdata import DAYS, FIRST_DAY, MP, SITE, interval_csv  # noqa: E402, F401

HERE = Path(__file__).resolve().parent
SITE_TOML = HERE / "site.toml"
PASSWORD = "correct horse battery"


def login(client: TestClient, name: str, password: str = PASSWORD) -> str:
    """Sign in through the login form; returns the session's CSRF token."""
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None
    r = client.post(
        "/login",
        data={"name": name, "password": password, "csrf_token": token[1], "next": "/"},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    me = client.get("/api/v1/me")
    assert me.status_code == 200
    csrf: str = me.json()["csrf_token"]
    return csrf


def wait_job(client: TestClient, href: str, headers: dict[str, str], timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        job = client.get(href, headers=headers).json()
        if job["state"] in ("done", "failed") or time.monotonic() > deadline:
            return job
        time.sleep(0.05)


@dataclass
class World:
    app: FastAPI
    client: TestClient
    path: Path
    tokens: dict[str, str] = field(default_factory=dict)
    draft_run: int = 0
    final_run: int = 0
    invoices: dict[str, str] = field(default_factory=dict)  # unit -> final invoice number
    draft_invoices: dict[str, str] = field(default_factory=dict)
    import_job: int = 0

    def bearer(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[name]}"}

    def new_client(self) -> TestClient:
        return TestClient(self.app, follow_redirects=False)


def build_world(tmp: Path) -> Iterator[World]:
    path = tmp / "web.duckdb"
    app = create_app(path, login_limit=10_000, push_wait=30.0)
    state = app.state.lastgang
    accounts = state.accounts
    with TestClient(app, follow_redirects=False) as client:
        world = World(app, client, path)
        accounts.add_user("admin", PASSWORD, Role.ADMIN)
        # the site comes through the API, as an administrator would create it
        admin_token = login(client, "admin")
        r = client.post(
            "/api/v1/sites",
            json={"toml": SITE_TOML.read_text(encoding="utf-8")},
            headers={"X-CSRF-Token": admin_token},
        )
        assert r.status_code == 201, r.text
        client.cookies.clear()
        accounts.add_user("operator", PASSWORD, Role.OPERATOR, site_id=SITE)
        accounts.add_user("tenant1", PASSWORD, Role.TENANT, site_id=SITE, unit_id="top1")
        accounts.add_user("tenant2", PASSWORD, Role.TENANT, site_id=SITE, unit_id="top2")
        for scope in Scope:
            world.tokens[scope.value], _ = accounts.create_token(SITE, scope)
        world.tokens["expired"], _ = accounts.create_token(
            SITE, Scope.ADMIN, days=1, now=datetime.now(UTC) - timedelta(days=2)
        )
        op = world.bearer("operator")
        r = client.post(
            f"/api/v1/sites/{SITE}/imports",
            files=[("files", ("intervals.csv", interval_csv(), "text/csv"))],
            headers=op,
        )
        assert r.status_code == 202, r.text
        job = wait_job(client, r.json()[0]["href"], op)
        assert job["state"] == "done", str(job)[:2000]
        world.import_job = job["id"]
        last = FIRST_DAY + timedelta(days=DAYS - 1)
        period = {"first_day": FIRST_DAY.isoformat(), "last_day": last.isoformat()}
        r = client.post(f"/api/v1/sites/{SITE}/runs", json=period, headers=op)
        assert r.status_code == 202, r.text
        job = wait_job(client, r.json()["href"], op)
        assert job["state"] == "done", str(job)[:2000]
        world.draft_run = job["result"]["run"]
        r = client.post(f"/api/v1/sites/{SITE}/runs/{world.draft_run}/finalize", headers=op)
        assert r.status_code == 202, r.text
        job = wait_job(client, r.json()["href"], op)
        assert job["state"] == "done", str(job)[:2000]
        world.final_run = job["result"]["run"]
        for run, target in (
            (world.final_run, world.invoices),
            (world.draft_run, world.draft_invoices),
        ):
            detail = client.get(f"/api/v1/sites/{SITE}/runs/{run}", headers=op).json()
            for inv in detail["invoice_list"]:
                target[inv["unit_id"]] = inv["number"]
        yield world


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    yield from build_world(tmp_path_factory.mktemp("web"))
