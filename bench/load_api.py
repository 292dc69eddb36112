"""Load test of the HTTP API on loopback: concurrent clients push readings and read invoices.

Starts ``lastgang serve`` on a fresh store (the web test site, tests/api/site.toml) on a free
port of 127.0.0.1, bills one period so there are invoices, then runs ``--clients`` threads for
at most ``--seconds`` seconds and ``--requests`` requests in all: every other client pushes a
day of quarter-hour values of Top 2 as JSON (a new day each time), the others read an invoice
(JSON or HTML), the tenant's unit and a chart. At the end every acknowledged push is read back:
a reading is lost when its stored value differs from what was pushed.

Prints requests/s, median and p99 latency per kind, errors and readings lost (and writes them
as JSON with ``--json FILE``). Traffic goes to loopback only and stops by itself.

    .venv/bin/python bench/load_api.py --clients 8 --seconds 20
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx

ROOT = Path(__file__).resolve().parents[1]
SITE_TOML = ROOT / "tests" / "api" / "site.toml"
SITE = "webtest"
TOP2 = "AT0010000012000000000000000000012"
TOP1 = "AT0010000012000000000000000000011"
HAK = "AT0010000012000000000000000000001"
PV = "AT0010000012000000000000000000003"
VIENNA = ZoneInfo("Europe/Vienna")
FIRST_PUSH_DAY = date(2024, 4, 1)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _day_ends(day: date) -> list[str]:
    start = datetime(day.year, day.month, day.day, tzinfo=VIENNA).astimezone(UTC)
    nxt = day + timedelta(days=1)
    stop = datetime(nxt.year, nxt.month, nxt.day, tzinfo=VIENNA).astimezone(UTC)
    n = int((stop - start).total_seconds() // 900)
    return [
        (start + timedelta(minutes=15 * (i + 1))).astimezone(VIENNA).isoformat(timespec="minutes")
        for i in range(n)
    ]


def _value(day: date, i: int) -> float:
    """What is pushed for quarter hour ``i`` of ``day`` (exact in binary: eighths of a kWh)."""
    return ((day.toordinal() + i) % 7 + 1) / 8


def _setup(db: Path) -> tuple[str, str]:
    """Site, users and an operator token in a fresh store (before the server holds it)."""
    from lastgang import services
    from lastgang.api.accounts import Role, Scope, open_accounts
    from lastgang.store import open_store

    store = open_store(db)
    try:
        services.apply_site(store, SITE_TOML)
    finally:
        store.close()
    accounts = open_accounts(db)
    try:
        accounts.add_user("tenant1", "bench password 1", Role.TENANT, site_id=SITE, unit_id="top1")
        operator, _ = accounts.create_token(SITE, Scope.OPERATOR)
    finally:
        accounts.close()
    return operator, "bench password 1"


@dataclass
class Stats:
    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    pushed: dict[date, int] = field(default_factory=dict)  # day -> readings acknowledged
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, kind: str, seconds: float) -> None:
        with self.lock:
            self.latencies.setdefault(kind, []).append(seconds)


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--requests", type=int, default=4000, help="at most this many in all")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if args.clients < 1 or args.seconds <= 0 or args.requests < 1:
        parser.error("--clients, --seconds and --requests must be positive")

    tmp = Path(tempfile.mkdtemp(prefix="lastgang-load-"))
    db = tmp / "load.duckdb"
    token, tenant_password = _setup(db)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = (tmp / "server.log").open("wb")
    server = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from lastgang.cli import main; main()",
            "serve",
            "--db",
            str(db),
            "--port",
            str(port),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=tmp,
    )
    try:
        return _run(args, url, token, tenant_password, tmp)
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def _run(args: Any, url: str, token: str, tenant_password: str, tmp: Path) -> int:
    auth = {"Authorization": f"Bearer {token}"}
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            print("the server did not start; see", tmp / "server.log")
            return 2
        time.sleep(0.1)

    # a month of both apartments and a final run, so there are invoices to read
    with httpx.Client(base_url=url, headers=auth, timeout=120) as c:
        rows = []
        for day in (date(2024, 3, 1) + timedelta(days=k) for k in range(31)):
            for end in _day_ends(day):
                rows.append({"end": end, "metering_point": TOP1, "import_kwh": 0.25})
                rows.append({"end": end, "metering_point": TOP2, "import_kwh": 0.125})
                rows.append({"end": end, "metering_point": HAK, "import_kwh": 0.375})
                rows.append({"end": end, "metering_point": PV, "import_kwh": 0.0})
        r = c.post(f"/api/v1/sites/{SITE}/readings", json={"kind": "intervals", "readings": rows})
        r.raise_for_status()
        r = c.post(
            f"/api/v1/sites/{SITE}/runs",
            json={"first_day": "2024-03-01", "last_day": "2024-03-31", "final": True},
        )
        r.raise_for_status()
        job = r.json()["href"]
        while (state := c.get(job).json())["state"] not in ("done", "failed"):
            time.sleep(0.1)
        if state["state"] != "done":
            print("billing failed:", state)
            return 2
        run = state["result"]["run"]
        invoices = [
            i["number"] for i in c.get(f"/api/v1/sites/{SITE}/runs/{run}").json()["invoice_list"]
        ]

    stats = Stats()
    days = itertools.count()
    budget = itertools.count()
    stop_at = time.monotonic() + args.seconds

    def tenant_client() -> httpx.Client:
        client = httpx.Client(base_url=url, timeout=60, follow_redirects=False)
        page = client.get("/login")
        csrf = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        client.post(
            "/login", data={"name": "tenant1", "password": tenant_password, "csrf_token": csrf}
        )
        return client

    def pusher() -> None:
        with httpx.Client(base_url=url, headers=auth, timeout=60) as c:
            while time.monotonic() < stop_at and next(budget) < args.requests:
                day = FIRST_PUSH_DAY + timedelta(days=next(days))
                body = {
                    "kind": "intervals",
                    "readings": [
                        {"end": end, "metering_point": TOP2, "import_kwh": _value(day, i)}
                        for i, end in enumerate(_day_ends(day))
                    ],
                }
                t0 = time.perf_counter()
                r = c.post(f"/api/v1/sites/{SITE}/readings", json=body)
                stats.add("push", time.perf_counter() - t0)
                if r.status_code in (200, 201):
                    with stats.lock:
                        stats.pushed[day] = len(body["readings"])
                else:
                    stats.errors.append(f"push {day}: {r.status_code} {r.text[:200]}")

    def reader(seed: int) -> None:
        rng = random.Random(seed)
        tenant = tenant_client()
        with httpx.Client(base_url=url, headers=auth, timeout=60) as c:
            while time.monotonic() < stop_at and next(budget) < args.requests:
                number = rng.choice(invoices)
                kind, client, path = rng.choice(
                    [
                        ("invoice-json", c, f"/api/v1/sites/{SITE}/invoices/{number}"),
                        ("invoice-html", c, f"/api/v1/sites/{SITE}/invoices/{number}/html"),
                        ("tenant-unit", tenant, f"/api/v1/sites/{SITE}/units/top1"),
                        (
                            "chart",
                            tenant,
                            f"/api/v1/sites/{SITE}/units/top1/charts/consumption?view=month&date=2024-03-15",
                        ),
                    ]
                )
                t0 = time.perf_counter()
                r = client.get(path)
                stats.add(kind, time.perf_counter() - t0)
                if r.status_code != 200:
                    stats.errors.append(f"{kind}: {r.status_code} {r.text[:200]}")
        tenant.close()

    threads = [
        threading.Thread(target=pusher if k % 2 == 0 else reader, args=() if k % 2 == 0 else (k,))
        for k in range(args.clients)
    ]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started

    # read every acknowledged day back
    lost = 0
    with httpx.Client(base_url=url, headers=auth, timeout=60) as c:
        for day, count in sorted(stats.pushed.items()):
            p = c.get(
                f"/api/v1/sites/{SITE}/profiles/top2",
                params={"from": day.isoformat(), "to": day.isoformat(), "resolution": "15min"},
            ).json()
            stored = p["import_kwh"]
            expected = [_value(day, i) for i in range(count)]
            lost += sum(
                1
                for i in range(count)
                if i >= len(stored) or stored[i] != expected[i] or p["quality"][i] != "L1"
            )

    total = sum(len(v) for v in stats.latencies.values())
    result: dict[str, Any] = {
        "machine": (
            f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
        ),
        "clients": args.clients,
        "seconds": round(elapsed, 2),
        "requests": total,
        "requests_per_second": round(total / elapsed, 1),
        "errors": len(stats.errors),
        "readings_pushed": sum(stats.pushed.values()),
        "readings_lost": lost,
        "latency_ms": {
            kind: {
                "count": len(v),
                "median": round(statistics.median(v) * 1000, 1),
                "p99": round(_p(v, 0.99) * 1000, 1),
            }
            for kind, v in sorted(stats.latencies.items())
        },
    }
    all_latencies = [x for v in stats.latencies.values() for x in v]
    result["latency_ms"]["all"] = {
        "count": len(all_latencies),
        "median": round(statistics.median(all_latencies) * 1000, 1),
        "p99": round(_p(all_latencies, 0.99) * 1000, 1),
    }
    print(json.dumps(result, indent=2))
    for e in stats.errors[:10]:
        print("error:", e)
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if not stats.errors and lost == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
