"""End to end in a real headless Chromium (Debian's chromium, driven by Playwright): an operator
signs in, uploads a file, bills a period, opens an invoice; a tenant signs in and sees only its
own unit. Set LASTGANG_SCREENSHOTS=DIR to keep a screenshot of every page."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import playwright.sync_api as playwright_api
import pytest

from .conftest import CHROMIUM, PASSWORD, SITE, Server, interval_csv, prepare_store

if not Path(CHROMIUM).exists():  # pragma: no cover - the Makefile's test-deps installs it
    if os.environ.get("CI"):
        raise RuntimeError(f"{CHROMIUM} is missing in CI: `make test` installs it (test-deps)")
    pytest.skip(f"{CHROMIUM} is missing: run `make test-deps`", allow_module_level=True)

ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def _shot(page: Any, name: str, tmp: Path) -> None:
    folder = Path(os.environ.get("LASTGANG_SCREENSHOTS", tmp))
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"lastgang-{name}.png"), full_page=True)


def _login(page: Any, url: str, name: str) -> None:
    page.goto(f"{url}/login")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state("load")


def _wait_job_done(page: Any) -> None:
    page.wait_for_selector("#job-state[data-refresh=no]", timeout=60_000)
    assert page.inner_text("#job-state") == "done", page.inner_text("main")


def test_operator_bills_and_tenant_sees_only_its_own(
    browser: Any, tmp_path: Path, server_factory: list[Server]
) -> None:
    db = tmp_path / "store.duckdb"
    prepare_store(db)
    server = Server(db)
    server_factory.append(server)
    url = server.url
    data = tmp_path / "march.csv"
    data.write_bytes(interval_csv())
    requests: list[str] = []
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.on("request", lambda r: requests.append(r.url))
    page = context.new_page()
    page.set_default_timeout(20_000)

    _shot_login = page.goto(f"{url}/sites")
    assert _shot_login is not None and "/login" in page.url
    _shot(page, "login", tmp_path)
    _login(page, url, "operator")
    assert page.url.endswith("/sites")
    page.click(f"a[href='/sites/{SITE}']")
    page.click("nav.tabs >> text=Imports")
    page.set_input_files("input[name=files]", str(data))
    page.click("form.upload button[type=submit]")
    _wait_job_done(page)
    assert "imported" in page.inner_text("main")
    _shot(page, "job", tmp_path)

    # a file with problems is rejected with the list of its problems
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "end,metering_point,import_kwh,export_kwh\n"
        "2024-03-06T00:15+01:00,AT0010000012000000000000000000011,0.2,0\n"
        "2024-03-06T00:30,AT0010000012000000000000000000011,0.2,0\n"
        "2024-03-06T00:45+01:00,AT0010000012000000000000000000099,x,0\n"
    )
    page.click("nav.tabs >> text=Imports")
    page.set_input_files("input[name=files]", str(bad))
    page.click("form.upload button[type=submit]")
    page.wait_for_selector("#job-state[data-refresh=no]", timeout=60_000)
    assert page.inner_text("#job-state") == "failed"
    rows = page.locator("table.problems tbody tr")
    assert rows.count() >= 3
    assert "bad.csv:3" in page.inner_text("table.problems")
    _shot(page, "rejected", tmp_path)

    page.goto(f"{url}/sites/{SITE}?from=2024-02-26&to=2024-03-10")
    cells = page.locator("td.cell.q-L1")
    assert cells.count() == 4 * 2  # four metering points, two days of measured values
    _shot(page, "quality", tmp_path)

    page.goto(f"{url}/sites/{SITE}/monitoring?view=day&date=2024-03-04")
    page.wait_for_selector("#monitoring-chart[data-drawn=yes]")
    # one day: PV 16 x 0.25 = 4 kWh, consumption 96 x 0.3 = 28.8 kWh, all of the PV used
    assert "Production 4.0 kWh, consumption 28.8 kWh" in page.inner_text("#chart-summary")
    _shot(page, "monitoring", tmp_path)
    page.goto(f"{url}/sites/{SITE}/meters")
    _shot(page, "meters", tmp_path)
    page.goto(f"{url}/sites/{SITE}/versions")
    _shot(page, "versions", tmp_path)

    page.click("nav.tabs >> text=Billing runs")
    page.fill("input[name=first_day]", "2024-03-04")
    page.fill("input[name=last_day]", "2024-03-05")
    page.select_option("select[name=status]", "final")
    page.click("form.inline-form button[type=submit]")
    _wait_job_done(page)
    page.click("text=Open run")
    assert "Reconciliation" in page.inner_text("main")
    _shot(page, "run", tmp_path)
    page.click("table.list td.mono a >> nth=0")
    page.wait_for_load_state("load")
    assert re.search(rf"{SITE}-R1-V1-01", page.content())
    assert "10.88" in page.inner_text("body")
    _shot(page, "invoice", tmp_path)
    page.goto(f"{url}/sites/{SITE}/runs")
    _shot(page, "runs", tmp_path)
    page.goto(f"{url}/sites/{SITE}/imports")
    _shot(page, "imports", tmp_path)
    page.click("button:has-text('Sign out')")
    assert "/login" in page.url

    _login(page, url, "tenant1")
    assert page.url.endswith(f"/sites/{SITE}/units/top1")
    page.goto(f"{url}/sites/{SITE}/units/top1?view=month&date=2024-03-04")
    page.wait_for_selector("#consumption-chart[data-drawn=yes]")
    text = page.inner_text("main")
    assert "Anna Berger" in text and f"{SITE}-R1-V1-01" in text
    assert "Karl Huber" not in text and f"{SITE}-R1-V1-02" not in text
    assert "local 5.3 kWh" in page.inner_text("#consumption-summary")
    _shot(page, "tenant", tmp_path)
    page.goto(f"{url}/sites/{SITE}/invoices/{SITE}-R1-V1-02")
    assert "Not allowed" in page.inner_text("main")
    _shot(page, "tenant-refused", tmp_path)
    response = page.goto(f"{url}/sites/{SITE}")
    assert response is not None and response.status == 403
    context.close()
    # everything the pages loaded came from the server itself
    assert requests and all(r.startswith(url) for r in requests), [
        r for r in requests if not r.startswith(url)
    ]
