"""A real ``lastgang serve`` process on a free loopback port, on a store prepared with the test
site (tests/api/site.toml) and users of every role."""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from lastgang import services
from lastgang.api.accounts import Role, Scope, open_accounts
from lastgang.store import open_store

ROOT = Path(__file__).resolve().parents[2]
SITE_TOML = ROOT / "tests" / "api" / "site.toml"
SITE = "webtest"
PASSWORD = "correct horse battery"
CHROMIUM = "/usr/bin/chromium"

# the hand-worked data of the API tests (a plain module beside them)
_spec = importlib.util.spec_from_file_location("webdata", ROOT / "tests" / "api" / "webdata.py")
assert _spec is not None and _spec.loader is not None
webdata = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(webdata)
interval_csv = webdata.interval_csv
slot_ends = webdata.slot_ends


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def prepare_store(path: Path) -> str:
    """Apply the test site, add the users; returns an operator API token for the site."""
    store = open_store(path)
    try:
        services.apply_site(store, SITE_TOML)
    finally:
        store.close()
    accounts = open_accounts(path)
    try:
        accounts.add_user("operator", PASSWORD, Role.OPERATOR, site_id=SITE)
        accounts.add_user("tenant1", PASSWORD, Role.TENANT, site_id=SITE, unit_id="top1")
        accounts.add_user("tenant2", PASSWORD, Role.TENANT, site_id=SITE, unit_id="top2")
        token, _ = accounts.create_token(SITE, Scope.OPERATOR)
    finally:
        accounts.close()
    return token


class Server:
    """``lastgang serve`` in a child process."""

    def __init__(self, db: Path, port: int | None = None) -> None:
        self.db = db
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = db.with_suffix(".log").open("ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from lastgang.cli import main; main()",
                "serve",
                "--db",
                str(db),
                "--port",
                str(self.port),
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            cwd=db.parent,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.log.flush()
                raise RuntimeError(
                    "the server did not start:\n" + db.with_suffix(".log").read_text()[-3000:]
                )
            time.sleep(0.1)

    def kill(self) -> None:
        """Kill -9: no shutdown code runs (a crash)."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        self.log.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()


@pytest.fixture
def server_factory() -> Iterator[list[Server]]:
    """Servers started by a test; every one still running is stopped afterwards."""
    started: list[Server] = []
    yield started
    for server in started:
        if server.proc.poll() is None:
            server.stop()
