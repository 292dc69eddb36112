"""Faults with real processes: a kill -9 during imports loses nothing that was acknowledged and
leaves no half batch; the server keeps answering while it imports; a second process that opens
the same store while the server runs gets a clear message (and exit code 2), not a corrupt
file."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import duckdb
import httpx
import pytest

from lastgang.api.app import create_app
from lastgang.errors import StoreError

from .conftest import SITE, SITE_TOML, Server, interval_csv, prepare_store, slot_ends

#: three files of four months each (the meters are installed on 2024-01-01); both clock
#: changes fall inside them
PARTS = {
    "2024-01": (date(2024, 1, 1), 121),
    "2024-05": (date(2024, 5, 1), 123),
    "2024-09": (date(2024, 9, 1), 122),
}


def _slots(part: str) -> int:
    first, days = PARTS[part]
    return len(slot_ends(first, days))


def test_kill_during_imports_loses_nothing_acknowledged_and_a_second_process_is_refused(
    tmp_path: Path, server_factory: list[Server]
) -> None:
    db = tmp_path / "store.duckdb"
    token = prepare_store(db)
    headers = {"Authorization": f"Bearer {token}"}
    files = {part: interval_csv(first, days) for part, (first, days) in PARTS.items()}
    server = Server(db)
    server_factory.append(server)
    acknowledged: list[int] = []
    for part, content in files.items():
        r = httpx.post(
            f"{server.url}/api/v1/sites/{SITE}/imports",
            files=[("files", (f"{part}.csv", content, "text/csv"))],
            headers=headers,
            timeout=30,
        )
        assert r.status_code == 202, r.text
        acknowledged.append(r.json()[0]["id"])
    # while the worker imports, the server answers (the answer comes before the import ends)
    deadline = time.monotonic() + 30
    while True:
        states = [
            httpx.get(f"{server.url}/api/v1/jobs/{j}", headers=headers, timeout=10).json()["state"]
            for j in acknowledged
        ]
        if "running" in states:
            sites = httpx.get(f"{server.url}/api/v1/sites", headers=headers, timeout=10)
            assert sites.status_code == 200 and sites.json()[0]["id"] == SITE
            break
        assert time.monotonic() < deadline, states
        time.sleep(0.005)
    server.kill()

    # after the crash: every archived batch has all of its readings, nothing else is there
    with duckdb.connect(str(db)) as con:
        batches = dict(con.execute("SELECT batch, source FROM raw_batches").fetchall())
        per_batch = dict(
            con.execute("SELECT batch, count(*) FROM interval_values GROUP BY batch").fetchall()
        )
    assert len(batches) < len(PARTS), "the kill came after every import had finished"
    assert set(per_batch) == set(batches)
    for batch, source in batches.items():
        assert per_batch[batch] == 4 * _slots(source.removesuffix(".csv"))

    # the restarted server finishes what it acknowledged, each file exactly once
    again = Server(db, server.port)
    server_factory.append(again)
    for job in acknowledged:
        deadline = time.monotonic() + 60
        while (
            state := httpx.get(f"{again.url}/api/v1/jobs/{job}", headers=headers, timeout=10).json()
        )["state"] not in ("done", "failed"):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert state["state"] == "done", str(state)[:3000]
    archive = httpx.get(f"{again.url}/api/v1/sites/{SITE}/batches", headers=headers).json()
    assert sorted(b["source"] for b in archive) == [f"{p}.csv" for p in PARTS]

    # a second process on the same store while the server runs gets a clear message
    applied = subprocess.run(
        [
            sys.executable,
            "-c",
            "from lastgang.cli import main; main()",
            "site",
            "apply",
            str(SITE_TOML),
            "--db",
            str(db),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert applied.returncode == 2
    assert "is in use by another lastgang process" in " ".join(applied.stderr.split())
    with pytest.raises(StoreError, match="in use by another lastgang process"):
        create_app(db)
    assert httpx.get(f"{again.url}/health").status_code == 200  # unharmed
    again.stop()
    with duckdb.connect(str(db)) as con:
        total = con.execute("SELECT count(*) FROM interval_values").fetchall()[0][0]
    assert total == 4 * sum(_slots(p) for p in PARTS)
