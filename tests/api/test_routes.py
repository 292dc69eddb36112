"""Every route of the API and the pages, with numbers worked out by hand.

The site (tests/api/site.toml, two days from 2024-03-04, Vienna): Top 1 uses 0.2 kWh and Top 2
0.1 kWh per quarter hour, the PV gives 0.25 kWh per quarter hour from 10:00 to 14:00 (16 quarter
hours a day), the HAK measures the balance. With the balance meter nothing is exported (0.25 <
0.3), so the local share in those quarter hours is 0.25 / 0.3 (SM-5): Top 1 gets
0.2 x 0.25 / 0.3 = 1/6 kWh local per PV quarter hour, 16 x 2 / 6 = 5.333 kWh over two days, out
of 2 x 96 x 0.2 = 38.4 kWh; grid 38.4 - 5.333 = 33.067 kWh. At 0.15 and 0.25 EUR/kWh:
0.80 + 8.27 = 9.07 EUR net, 20 % VAT 1.81 EUR, total 10.88 EUR.
"""

from __future__ import annotations

import hashlib
import json

import pytest

from .conftest import FIRST_DAY, MP, SITE, SITE_TOML, World, interval_csv, login, wait_job


def _problem(r: object) -> dict:
    resp = r  # a response
    assert resp.headers["content-type"].startswith("application/problem+json")  # type: ignore[attr-defined]
    doc = resp.json()  # type: ignore[attr-defined]
    assert {"type", "title", "status", "detail"} <= set(doc)
    assert doc["type"].startswith("urn:lastgang:problem:")
    return doc


def test_health_needs_no_login(world: World) -> None:
    r = world.new_client().get("/health")
    assert r.status_code == 200 and r.json()["status"] == "ok"


def test_me_and_site_list(world: World) -> None:
    c = world.new_client()
    me = c.get("/api/v1/me", headers=world.bearer("read-only")).json()
    assert me["kind"] == "token" and me["site_id"] == SITE and me["scope"] == "read-only"
    sites = c.get("/api/v1/sites", headers=world.bearer("read-only")).json()
    assert [s["id"] for s in sites] == [SITE]
    assert sites[0]["locations"] == 4 and sites[0]["units"] == 2
    assert c.get(f"/api/v1/sites/{SITE}", headers=world.bearer("read-only")).json()["name"] == (
        "Testgasse 1, Wien"
    )


def test_unknown_site_and_address_are_problems(world: World) -> None:
    c = world.new_client()
    login(c, "admin")
    doc = _problem(c.get("/api/v1/sites/nowhere"))
    assert doc["status"] == 404 and "apply its configuration first" in doc["detail"]
    doc = _problem(c.get("/api/v1/nothing-here"))
    assert doc["status"] == 404
    doc = _problem(c.put("/api/v1/sites"))
    assert doc["status"] == 405
    page = c.get("/sites/nowhere")
    assert page.status_code == 404 and "text/html" in page.headers["content-type"]


def test_versions_and_the_applied_text(world: World) -> None:
    c, h = world.new_client(), world.bearer("read-only")
    versions = c.get(f"/api/v1/sites/{SITE}/versions", headers=h).json()
    assert versions[0]["version"] == 1
    one = c.get(f"/api/v1/sites/{SITE}/versions/1", headers=h).json()
    assert one["toml"] == SITE_TOML.read_text(encoding="utf-8")
    assert _problem(c.get(f"/api/v1/sites/{SITE}/versions/99", headers=h))["status"] == 404


def test_check_names_every_problem_with_its_place(world: World) -> None:
    c, h = world.new_client(), world.bearer("operator")
    ok = c.post(f"/api/v1/sites/{SITE}/check", json={"toml": SITE_TOML.read_text()}, headers=h)
    assert ok.status_code == 200 and ok.json()["valid"] is True
    broken = SITE_TOML.read_text().replace('upstream = "hak"', 'upstream = "nowhere"')
    r = c.post(f"/api/v1/sites/{SITE}/check", json={"toml": broken}, headers=h).json()
    assert r["valid"] is False
    # three locations name the unknown upstream: one problem each, each with its place
    assert len([e for e in r["errors"] if "nowhere" in e["detail"]]) == 3
    assert all(e["place"] for e in r["errors"])
    other = SITE_TOML.read_text().replace('id = "webtest"', 'id = "other"')
    r = c.post(f"/api/v1/sites/{SITE}/check", json={"toml": other}, headers=h)
    assert _problem(r)["status"] == 422


def test_apply_a_version_is_audited_and_a_broken_one_refused(
    world: World,
) -> None:
    c, h = world.new_client(), world.bearer("operator")
    broken = SITE_TOML.read_text().replace('upstream = "hak"', 'upstream = "nowhere"')
    r = c.post(f"/api/v1/sites/{SITE}/versions", json={"toml": broken}, headers=h)
    doc = _problem(r)
    assert doc["status"] == 422 and doc["type"].endswith("invalid-concept")
    assert len(doc["errors"]) == 3
    renamed = SITE_TOML.read_text().replace("Testgasse 1, Wien", "Testgasse 1, 1010 Wien")
    r = c.post(f"/api/v1/sites/{SITE}/versions", json={"toml": renamed}, headers=h)
    assert r.status_code == 201, r.text
    assert r.json()["result"]["version"] == 2
    # the site's name is not how its readings are read: nothing rebuilt, nothing pending
    result = r.json()["result"]
    assert (result["rebuilt"], result["rebuilt_locations"], result["rebuild_pending"]) == (
        None,
        None,
        [],
    )
    # the job's page names the lists of names too (none here) and counts the warnings
    pages = world.new_client()
    login(pages, "operator")
    job_page = pages.get(f"/jobs/{r.json()['id']}").text
    assert "<dt>changed locations</dt><dd>none</dd>" in job_page
    assert "<dt>rebuild pending</dt><dd>none</dd>" in job_page
    assert f"<dt>warnings</dt><dd>{len(result['warnings']) or 'none'}</dd>" in job_page
    audit = c.get(f"/api/v1/sites/{SITE}/audit", headers=world.bearer("admin")).json()
    applied = [a for a in audit if a["action"] == "apply"]
    assert applied[0]["subject"] == "version 2" and applied[0]["actor"].startswith("token:")
    assert c.get(f"/api/v1/sites/{SITE}", headers=h).json()["name"] == "Testgasse 1, 1010 Wien"


def test_meters_with_their_periods(world: World) -> None:
    rows = world.client.get(f"/api/v1/sites/{SITE}/meters", headers=world.bearer("read-only"))
    meters = {m["location_id"]: m for m in rows.json()}
    assert set(meters) == {"hak", "pv", "top1", "top2"}
    assert meters["hak"]["metering_points"] == [MP["hak_import"], MP["hak_export"]]
    assert meters["top1"]["serial"] == "T10001" and meters["top1"]["removed"] is None


def test_a_rejected_upload_lists_every_problem_and_stores_nothing(world: World) -> None:
    c, h = world.new_client(), world.bearer("operator")
    before = c.get(f"/api/v1/sites/{SITE}/batches", headers=h).json()
    bad = (
        "end,metering_point,import_kwh,export_kwh\n"
        f"2024-03-06T00:15+01:00,{MP['top1']},0.2,0\n"
        f"2024-03-06T00:30,{MP['top1']},0.2,0\n"
        f"2024-03-06T00:45+01:00,{MP['top1']},abc,0\n"
    ).encode()
    r = c.post(
        f"/api/v1/sites/{SITE}/imports", files=[("files", ("bad.csv", bad, "text/csv"))], headers=h
    )
    assert r.status_code == 202
    job = wait_job(c, r.json()[0]["href"], h)
    assert job["state"] == "failed"
    problem = job["result"]["problem"]
    lines = sorted(e["line"] for e in problem["errors"])
    assert lines == [3, 4]
    assert all(e["file"] == "bad.csv" for e in problem["errors"])
    assert c.get(f"/api/v1/sites/{SITE}/batches", headers=h).json() == before
    empty = c.post(f"/api/v1/sites/{SITE}/imports", files=[], headers=h)
    assert empty.status_code == 422


def test_upload_archives_the_bytes_and_a_second_upload_is_skipped(world: World) -> None:
    c, h = world.new_client(), world.bearer("operator")
    batches = c.get(f"/api/v1/sites/{SITE}/batches", headers=h).json()
    first = next(b for b in batches if b["source"] == "intervals.csv")
    assert first["sha256"] == hashlib.sha256(interval_csv()).hexdigest()
    r = c.post(
        f"/api/v1/sites/{SITE}/imports",
        files=[("files", ("again.csv", interval_csv(), "text/csv"))],
        headers=h,
    )
    job = wait_job(c, r.json()[0]["href"], h)
    assert job["state"] == "done" and job["result"]["already_imported"] is True
    assert job["result"]["batch"] == first["batch"]
    jobs = c.get(f"/api/v1/sites/{SITE}/jobs", headers=h).json()
    assert any(j["id"] == job["id"] for j in jobs)
    newest = c.get(f"/api/v1/sites/{SITE}/batches?newest_first=true&limit=1", headers=h).json()
    assert newest == batches[-1:]
    assert (
        c.get(f"/api/v1/sites/{SITE}/batches?offset=1&limit=1", headers=h).json() == (batches[1:2])
    )


def _push(day: str, kwh: float) -> dict:
    return {
        "kind": "intervals",
        "readings": [
            {"end": f"{day}T00:15+01:00", "metering_point": MP["top2"], "import_kwh": kwh},
            {"end": f"{day}T00:30+01:00", "metering_point": MP["top2"], "import_kwh": kwh},
        ],
    }


def test_the_imports_page_lists_the_raw_archive_a_page_at_a_time(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lastgang.api import routes_web

    monkeypatch.setattr(routes_web, "BATCH_PAGE_ROWS", 1)
    h = world.bearer("operator")
    pushed = world.client.post(
        f"/api/v1/sites/{SITE}/readings", json=_push("2024-03-21", 0.125), headers=h
    )
    assert pushed.status_code in (200, 201)  # a second batch at least
    c = world.new_client()
    login(c, "operator")
    batches = world.client.get(f"/api/v1/sites/{SITE}/batches", headers=h).json()
    count = len(batches)
    assert count >= 2
    first = c.get(f"/sites/{SITE}/imports").text
    assert f"Batches 1–1 of {count}, the newest first." in first
    assert f"page 1 of {count}" in first and 'href="?page=2">next ›' in first
    second = c.get(f"/sites/{SITE}/imports?page=2").text
    assert batches[-2]["sha256"] in second and batches[-1]["sha256"] not in second
    assert batches[-1]["sha256"] in first


def test_json_push_is_idempotent(world: World) -> None:
    c, h = world.new_client(), world.bearer("operator")
    body = _push("2024-03-08", 0.125)
    first = c.post(f"/api/v1/sites/{SITE}/readings", json=body, headers=h)
    assert first.status_code == 201, first.text
    assert first.json()["rows"] == 2 and first.json()["already_imported"] is False
    # the same batch again, written differently (key order, spacing): stored once
    again = json.dumps({"readings": body["readings"], "kind": "intervals"}, indent=3)
    second = c.post(
        f"/api/v1/sites/{SITE}/readings",
        content=again,
        headers={**h, "content-type": "application/json"},
    )
    assert second.status_code == 200, second.text
    assert second.json()["already_imported"] is True
    assert second.json()["batch"] == first.json()["batch"]
    profile = c.get(
        f"/api/v1/sites/{SITE}/profiles/top2?from=2024-03-08&to=2024-03-08&resolution=15min",
        headers=h,
    ).json()
    assert profile["import_kwh"][:2] == [0.125, 0.125]
    assert profile["quality"][:2] == ["L1", "L1"]


def test_json_push_problems_point_into_the_body(world: World) -> None:
    c, h = world.new_client(), world.bearer("operator")
    body = _push("2024-03-09", 0.1)
    body["readings"][1]["end"] = "2024-03-09T00:30"  # no UTC offset
    r = c.post(f"/api/v1/sites/{SITE}/readings", json=body, headers=h)
    doc = _problem(r)
    assert doc["status"] == 422
    assert [e["pointer"] for e in doc["errors"]] == ["/readings/1"]
    body["readings"][0]["import_kwh"] = "lots"
    doc = _problem(c.post(f"/api/v1/sites/{SITE}/readings", json=body, headers=h))
    assert doc["errors"][0]["pointer"] == "/readings/0/import_kwh"


def test_profile_at_any_resolution_and_as_csv(world: World) -> None:
    c, h = world.new_client(), world.bearer("read-only")
    url = f"/api/v1/sites/{SITE}/profiles/top1?from=2024-03-04&to=2024-03-05"
    day = c.get(url + "&resolution=day", headers=h).json()
    assert day["end"] == ["2024-03-04 24:00+01:00", "2024-03-05 24:00+01:00"]
    assert day["import_kwh"] == pytest.approx([19.2, 19.2])
    hours = c.get(url + "&resolution=1h", headers=h).json()
    assert len(hours["end"]) == 48 and hours["import_kwh"][0] == pytest.approx(0.8)
    by_id = c.get(
        f"/api/v1/sites/{SITE}/profiles/{MP['top1']}?from=2024-03-04&resolution=day", headers=h
    ).json()
    assert by_id["location_id"] == "top1" and by_id["import_kwh"] == pytest.approx([19.2])
    csv_text = c.get(url + "&resolution=day&format=csv", headers=h)
    assert csv_text.headers["content-type"].startswith("text/csv")
    assert csv_text.text.splitlines()[0] == "end,import_kwh,export_kwh,quality"
    assert _problem(c.get(url + "&resolution=fortnight", headers=h))["status"] == 422
    assert _problem(c.get(f"/api/v1/sites/{SITE}/profiles/attic", headers=h))["status"] == 422
    swapped = f"/api/v1/sites/{SITE}/profiles/top1?from=2024-03-05&to=2024-03-04"
    assert _problem(c.get(swapped, headers=h))["status"] == 422


def test_quality_heat_map(world: World) -> None:
    c, h = world.new_client(), world.bearer("read-only")
    heat = c.get(f"/api/v1/sites/{SITE}/quality?from=2024-03-03&to=2024-03-05", headers=h).json()
    top1 = next(r for r in heat["rows"] if r["location_id"] == "top1")
    cells = {cell["day"]: cell for cell in top1["cells"]}
    assert cells["2024-03-03"] == {
        "day": "2024-03-03",
        "worst": "missing",
        "complete": 0.0,
        "slots": 96,
    }
    assert cells["2024-03-04"]["worst"] == "L1" and cells["2024-03-04"]["complete"] == 1.0
    # the spring change day has 92 quarter hours (TOR-4.2)
    spring = c.get(f"/api/v1/sites/{SITE}/quality?from=2024-03-31&to=2024-03-31", headers=h)
    assert spring.json()["rows"][0]["cells"][0]["slots"] == 92


def test_the_heat_map_gives_a_part_of_its_rows_and_finds_them(world: World) -> None:
    c, h = world.new_client(), world.bearer("read-only")
    base = f"/api/v1/sites/{SITE}/quality?from=2024-03-03&to=2024-03-05"
    whole = c.get(base, headers=h).json()
    rows = whole["rows"]
    assert (whole["matches"], whole["offset"], whole["locations"]) == (len(rows), 0, len(rows))
    part = c.get(f"{base}&offset=1&limit=2", headers=h).json()
    assert part["rows"] == rows[1:3] and part["offset"] == 1
    problems = c.get(f"{base}&problems=true", headers=h).json()
    with_problem = [
        r for r in rows if any(x["worst"] != "L1" or x["complete"] < 1 for x in r["cells"])
    ]
    assert problems["rows"] == with_problem and problems["matches"] == len(with_problem) > 0
    top1 = next(r for r in rows if r["location_id"] == "top1")
    found = c.get(f"{base}&q={top1['metering_points'][0]}", headers=h).json()
    assert found["rows"] == [top1] and found["locations"] == len(rows)
    assert _problem(c.get(f"{base}&limit=0", headers=h))["status"] == 422


def test_the_quality_page_shows_a_page_of_metering_points_and_a_search(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lastgang.api import routes_web

    monkeypatch.setattr(routes_web, "HEAT_PAGE_ROWS", 2)
    c = world.new_client()
    login(c, "operator")
    days = "from=2024-03-03&to=2024-03-05"
    count = len(
        world.client.get(
            f"/api/v1/sites/{SITE}/quality?{days}", headers=world.bearer("operator")
        ).json()["rows"]
    )
    pages = -(-count // 2)
    first = c.get(f"/sites/{SITE}?{days}").text
    assert f"Metering points 1–2 of {count}." in first and f"page 1 of {pages}" in first
    escaped = days.replace("&", "&amp;")
    assert f'href="?{escaped}&amp;page=2">next ›' in first
    assert 'href="?from=2024-02-29&amp;to=2024-03-02">&larr; Earlier' in first
    last = c.get(f"/sites/{SITE}?{days}&page=99").text  # past the end: the last page
    assert f"page {pages} of {pages}" in last and "next ›" not in last
    found = c.get(f"/sites/{SITE}?{days}&q=TOP1").text
    assert "Metering points 1–1 of 1 (" in found and "Top 1" in found and "Top 2" not in found
    problems = c.get(f"/sites/{SITE}?{days}&problems=1").text
    assert 'name="problems" value="1" checked' in problems
    assert f'href="?{escaped}">all metering points' in problems
    assert 'href="?from=2024-03-06&amp;to=2024-03-08&amp;problems=1">Later' in problems
    none = c.get(f"/sites/{SITE}?{days}&q=nowhere").text
    assert "No metering point matches “nowhere”." in none


def test_the_meters_page_shows_a_page_of_meters_and_finds_them(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lastgang.api import routes_web

    monkeypatch.setattr(routes_web, "METER_PAGE_ROWS", 2)
    c = world.new_client()
    login(c, "operator")
    with world.app.state.lastgang.pool.store() as store:
        count = len(routes_web.meter_rows(store.site_version(SITE).site))
    pages = -(-count // 2)
    first = c.get(f"/sites/{SITE}/meters").text
    assert f"Meters 1–2 of {count}." in first and f"page 1 of {pages}" in first
    assert 'href="?page=2">next ›' in first
    found = c.get(f"/sites/{SITE}/meters?q=t10001").text
    assert f"Meters 1–1 of 1 matching “t10001” ({count} in the site)." in found
    assert "T10001" in found and 'href="?">all meters' in found
    assert "No meter matches “nothing”." in c.get(f"/sites/{SITE}/meters?q=nothing").text
    assert f"page {pages} of {pages}" in c.get(f"/sites/{SITE}/meters?page=50").text


def test_a_pager_keeps_the_address_and_stops_at_the_last_page() -> None:
    from lastgang.api.routes_web import pager

    links = pager(7, 25, 10, {"q": "a b", "problems": None, "from": "2024-03-01"})
    assert (links.page, links.pages) == (3, 3)  # past the end: the last page
    assert links.first == "?q=a+b&from=2024-03-01"
    assert links.previous == "?q=a+b&from=2024-03-01&page=2"
    assert links.last == "?q=a+b&from=2024-03-01&page=3"
    empty = pager(1, 0, 10, {})
    assert (empty.page, empty.pages, empty.first) == (1, 1, "?")


def test_monitoring_chart_data(world: World) -> None:
    c, h = world.new_client(), world.bearer("read-only")
    r = c.get(f"/api/v1/sites/{SITE}/charts/monitoring?view=day&date=2024-03-04", headers=h)
    chart = r.json()
    assert chart["unit"] == "kW" and len(chart["x"]) == 96
    series = {s["kind"]: s for s in chart["series"]}
    # 0.25 kWh per quarter hour = 1 kW from 10:00 to 14:00; consumption 0.3 kWh = 1.2 kW
    pv = series["production"]["values"]
    assert pv[40:56] == pytest.approx([1.0] * 16) and pv[39] == 0 and pv[56] == 0
    assert series["consumption"]["values"][0] == pytest.approx(1.2)
    assert chart["labels"][0] == "2024-03-04 00:15+01:00"
    assert chart["prev"] == "2024-03-03" and chart["next"] == "2024-03-05"
    # the title names the local day; the last bar ends at midnight (closes the step line)
    assert chart["title"].endswith(": 2024-03-04")
    assert chart["x"][0] == "2024-03-04 00:00" and chart["end"] == "2024-03-05 00:00"
    week = c.get(f"/api/v1/sites/{SITE}/charts/monitoring?view=week&date=2024-03-04", headers=h)
    assert len(week.json()["x"]) == 7 * 24
    # 2024-03-04 is a Monday: the week runs Monday to Sunday
    assert week.json()["title"].endswith(": 2024-03-04 – 2024-03-10")
    assert week.json()["end"] == "2024-03-11 00:00"
    bad = c.get(f"/api/v1/sites/{SITE}/charts/monitoring?view=decade", headers=h)
    assert _problem(bad)["status"] == 422


def test_unit_consumption_split(world: World) -> None:
    c = world.new_client()
    login(c, "tenant1")
    r = c.get(f"/api/v1/sites/{SITE}/units/top1/charts/consumption?view=month&date=2024-03-04")
    chart = r.json()
    assert chart["totals"]["consumption_kwh"] == pytest.approx(38.4)
    assert chart["totals"]["local_kwh"] == pytest.approx(16 * 2 / 6)
    assert chart["totals"]["grid_kwh"] == pytest.approx(38.4 - 16 * 2 / 6)
    local = {s["kind"]: s["values"] for s in chart["series"]}["local"]
    assert local[3] == pytest.approx(16 / 6)  # 2024-03-04 is the fourth bar


def test_runs_invoices_and_reconciliation(world: World) -> None:
    c, h = world.new_client(), world.bearer("read-only")
    runs = c.get(f"/api/v1/sites/{SITE}/runs", headers=h).json()
    assert [(r["run"], r["status"], r["version"]) for r in runs][:2] == [
        (world.draft_run, "draft", 1),
        (world.final_run, "final", 2),
    ]
    detail = c.get(f"/api/v1/sites/{SITE}/runs/{world.final_run}", headers=h).json()
    top1 = next(i for i in detail["invoice_list"] if i["unit_id"] == "top1")
    assert (top1["consumption_kwh"], top1["local_kwh"], top1["grid_kwh"]) == (
        "38.400",
        "5.333",
        "33.067",
    )
    inv = c.get(top1["href"], headers=h).json()
    assert (inv["net"], inv["vat_total"], inv["total"]) == ("9.07", "1.81", "10.88")
    assert [line["amount"] for line in inv["lines"]] == ["0.80", "8.27"]
    html = c.get(top1["html"], headers=h)
    assert html.status_code == 200 and top1["number"] in html.text
    pdf = c.get(top1["pdf"], headers=h)
    assert pdf.content.startswith(b"%PDF") and pdf.headers["content-type"] == "application/pdf"
    rec = c.get(f"/api/v1/sites/{SITE}/runs/{world.final_run}/reconciliation", headers=h).json()
    # HAK 2 x (96 x 0.3 - 16 x 0.25) = 49.6 kWh = consumers 57.6 - production 8.0
    row = rec["rows"][0]
    assert (row["grid_import_kwh"], row["consumers_kwh"], row["production_kwh"]) == (
        "49.600",
        "57.600",
        "8.000",
    )
    assert row["flagged"] is False
    again = c.post(
        f"/api/v1/sites/{SITE}/runs/{world.final_run}/finalize", headers=world.bearer("operator")
    )
    assert _problem(again)["status"] == 409
    unknown = c.get(f"/api/v1/sites/{SITE}/invoices/{SITE}-R99-V1-01", headers=h)
    assert _problem(unknown)["status"] == 404


def test_runs_kept_invoice_by_invoice_are_served_without_their_whole_json(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run's page, its invoices, one invoice, its reconciliation and a unit's invoices come
    from the run's invoice entries, never from the whole run JSON (1.2 GB at 10,000 units);
    the answers are those read from the whole JSON, as for runs stored before the entries."""
    from lastgang.api import routes_billing
    from lastgang.store.runs import RunStore

    final, draft = world.final_run, world.draft_run
    top1_final, top1_draft = world.invoices["top1"], world.draft_invoices["top1"]
    operator = [
        f"/api/v1/sites/{SITE}/runs/{final}",
        f"/api/v1/sites/{SITE}/runs/{draft}",
        f"/api/v1/sites/{SITE}/runs/{final}/reconciliation",
        f"/api/v1/sites/{SITE}/invoices/{top1_final}",
        f"/api/v1/sites/{SITE}/invoices/{top1_draft}",
        f"/api/v1/sites/{SITE}/invoices/{SITE}-R{final}-V2-99",
        f"/api/v1/sites/{SITE}/runs/{final}?offset=1&limit=1",
        f"/api/v1/sites/{SITE}/runs/{final}?q=HUBER",
        f"/api/v1/sites/{SITE}/units/top1",
        f"/api/v1/sites/{SITE}/units/top2",
    ]
    tenant = [  # a tenant sees the final invoices of its own unit only
        f"/api/v1/sites/{SITE}/units/top1",
        f"/api/v1/sites/{SITE}/invoices/{top1_final}",
        f"/api/v1/sites/{SITE}/invoices/{top1_draft}",
        f"/api/v1/sites/{SITE}/invoices/{world.invoices['top2']}",
    ]
    client = world.new_client()
    login(client, "tenant1")
    h = world.bearer("operator")

    def answers() -> list[tuple[int, object]]:
        routes_billing._JSON_CACHE.clear()
        got = [world.client.get(path, headers=h) for path in operator]
        got += [client.get(path) for path in tenant]
        return [(r.status_code, r.json()) for r in got]

    with world.app.state.lastgang.pool.store() as store:
        assert RunStore(store).keeps_invoices(final) and RunStore(store).keeps_invoices(draft)
    with monkeypatch.context() as m:  # as a run stored before the entries: the whole JSON
        m.setattr(RunStore, "_split", lambda self, run, column="count(*)": None)
        m.setattr(RunStore, "unit_invoices", lambda self, site_id, unit_id: {})
        whole = answers()

    def refuse(self: RunStore, run: int) -> str:
        raise AssertionError(f"the whole JSON of run {run} was read")

    monkeypatch.setattr(RunStore, "run_json", refuse)
    kept = answers()
    assert kept == whole
    assert [status for status, _ in kept] == [200] * 5 + [404] + [200] * 6 + [403, 403]
    assert [i["number"] for i in kept[-4][1]["invoices"]] == [top1_final]  # type: ignore[index]
    assert [i["unit_id"] for i in kept[7][1]["invoice_list"]] == ["top2"]  # type: ignore[index]
    detail = kept[0][1]
    assert isinstance(detail, dict) and detail["period"] and detail["reconciliation"]["rows"]
    assert len(detail["invoice_list"]) == len(world.invoices)


def test_a_run_lists_its_invoices_a_part_at_a_time_and_finds_them(world: World) -> None:
    """A community of 10,000 units has 10,000 invoices in a run: the API gives a part of the
    list (``offset``, ``limit``) and finds invoices by number, unit or customer (``q``: every
    word, in any case)."""
    h = world.bearer("read-only")
    base = f"/api/v1/sites/{SITE}/runs/{world.final_run}"
    whole = world.client.get(base, headers=h).json()
    numbers = [i["number"] for i in whole["invoice_list"]]
    assert len(numbers) == whole["invoices"] == whole["invoice_matches"] == 2
    assert (whole["invoice_offset"], whole["invoice_search"]) == (0, "")

    def listed(query: str) -> tuple[list[str], int, int]:
        got = world.client.get(f"{base}?{query}", headers=h).json()
        return [i["number"] for i in got["invoice_list"]], got["invoice_matches"], got["invoices"]

    assert listed("limit=1") == (numbers[:1], 2, 2)
    assert listed("offset=1&limit=5") == (numbers[1:], 2, 2)
    assert listed(f"offset={len(numbers)}&limit=5") == ([], len(numbers), len(numbers))
    assert listed("q=anna") == ([world.invoices["top1"]], 1, len(numbers))
    assert listed("q=karl+huber+top") == ([world.invoices["top2"]], 1, len(numbers))
    assert listed("q=karl+berger") == ([], 0, len(numbers))  # no invoice has both words
    assert listed(f"q={world.invoices['top1'].lower()}")[0] == [world.invoices["top1"]]
    for bad in ("offset=-1", "limit=0", "q=" + "x" * 201):
        assert _problem(world.client.get(f"{base}?{bad}", headers=h))["status"] == 422


def test_the_run_page_shows_a_page_of_invoices_and_a_search(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lastgang.api import routes_billing

    monkeypatch.setattr(routes_billing, "_RUN_PAGE_INVOICES", 1)
    c = world.new_client()
    login(c, "operator")
    base = f"/sites/{SITE}/runs/{world.final_run}"
    top1, top2 = world.invoices["top1"], world.invoices["top2"]
    first = c.get(base).text
    assert "Invoices 1–1 of 2." in first and "page 1 of 2" in first
    assert top1 in first and top2 not in first
    assert "previous" not in first and 'href="?page=2">last »' in first
    last = c.get(f"{base}?page=2").text
    assert "Invoices 2–2 of 2." in last and top2 in last and top1 not in last
    assert "next ›" not in last and 'href="?">« first' in last
    assert "Invoices 2–2 of 2." in c.get(f"{base}?page=999").text  # past the end: the last
    found = c.get(f"{base}?q=Karl").text
    assert top2 in found and top1 not in found
    assert "Invoices 1–1 of 1 matching “Karl” (2 in the run)." in found
    assert "page 1 of" not in found  # one page: no pager
    none = c.get(f"{base}?q=nobody+here").text
    assert "No invoice matches “nobody here”." in none and 'href="?">all invoices' in none
    both = c.get(f"{base}?q=Top").text  # both units' names: the pager keeps the search
    assert "matching “Top” (2 in the run)" in both and 'href="?q=Top&amp;page=2">next ›' in both
    assert c.get(f"{base}?page=0").status_code == 422


def test_billing_a_period_backwards_is_refused(world: World) -> None:
    body = {"first_day": "2024-03-05", "last_day": "2024-03-04"}
    r = world.client.post(f"/api/v1/sites/{SITE}/runs", json=body, headers=world.bearer("operator"))
    assert _problem(r)["status"] == 422


def test_unit_with_contracts(world: World) -> None:
    unit = world.client.get(
        f"/api/v1/sites/{SITE}/units/top2", headers=world.bearer("read-only")
    ).json()
    assert unit["contracts"] == [
        {"id": None, "customer": "Karl Huber", "start": "2024-01-01", "end": None}
    ]
    # operators see the drafts too
    assert {i["status"] for i in unit["invoices"]} == {"draft", "final"}
    missing = world.client.get(
        f"/api/v1/sites/{SITE}/units/attic", headers=world.bearer("read-only")
    )
    assert _problem(missing)["status"] == 404


def test_audit_names_who_imported_billed_and_finalized(world: World) -> None:
    audit = world.client.get(f"/api/v1/sites/{SITE}/audit", headers=world.bearer("admin")).json()
    actions = {(a["action"], a["subject"]) for a in audit}
    assert ("import", "batch 1") in actions
    assert ("bill", f"run {world.draft_run}") in actions
    assert ("finalize", f"run {world.draft_run}") in actions


@pytest.mark.parametrize(
    ("path", "text"),
    [
        ("/sites", "Testgasse"),
        (f"/sites/{SITE}", "Data quality and completeness"),
        (f"/sites/{SITE}?from=2024-03-01&to=2024-03-10", "L3 unreliable substitute"),
        (f"/sites/{SITE}/monitoring?view=day&date=2024-03-04", "monitoring-chart"),
        (f"/sites/{SITE}/meters", "T10001"),
        (f"/sites/{SITE}/versions", "Configuration versions"),
        (f"/sites/{SITE}/imports", "intervals.csv"),
        (f"/sites/{SITE}/runs", "Billing runs"),
        (f"/sites/{SITE}/runs/1", "Reconciliation"),
        (f"/sites/{SITE}/invoices/{SITE}-R2-V2-01", f"{SITE}-R2-V2-01"),
        (f"/sites/{SITE}/units/top1", "Anna Berger"),
        ("/jobs/1", "Job 1"),
    ],
)
def test_pages_for_an_operator(world: World, path: str, text: str) -> None:
    c = world.new_client()
    login(c, "operator")
    r = c.get(path)
    assert r.status_code == 200, r.text[:500]
    assert text in r.text


@pytest.mark.parametrize(
    "path",
    [
        "/login?next=/%22%3E%3Cscript%3Ealert(1)%3C/script%3E",
        f"/sites/{SITE}/runs/1?q=%3Cscript%3Ealert(1)%3C/script%3E",
        f"/sites/{SITE}?q=%3Cscript%3Ealert(1)%3C/script%3E",
    ],
)
def test_what_a_link_carries_is_escaped_in_the_page(world: World, path: str) -> None:
    """A search or a login's next page comes from the address: the page shows it as text,
    never as markup (a crafted link must not run script in an operator's session)."""
    c = world.new_client()
    if not path.startswith("/login"):
        login(c, "operator")
    r = c.get(path)
    assert r.status_code == 200
    assert "<script>alert(1)</script>" not in r.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in r.text


def test_names_from_the_configuration_are_escaped_in_the_pages(world: World) -> None:
    """Every page escapes what it shows: the templates end in .html.j2, which Jinja's default
    selection of extensions would not escape."""
    templates = world.app.state.lastgang.templates
    page = templates.env.get_template("error.html.j2")
    html = page.render(problem={"title": "<b>x</b>", "status": 400, "detail": "a & b"})
    assert "&lt;b&gt;x&lt;/b&gt;" in html and "a &amp; b" in html and "<b>x</b>" not in html


def test_pages_use_no_outside_resources(world: World) -> None:
    c = world.new_client()
    login(c, "operator")
    for path in (
        "/login",
        f"/sites/{SITE}",
        f"/sites/{SITE}/monitoring",
        f"/sites/{SITE}/units/top1",
    ):
        body = c.get(path).text
        assert "http://" not in body.replace("http://www.w3.org", "")
        assert "https://" not in body
    assert c.get("/static/vendor/plotly.min.js").status_code == 200
    assert c.get("/static/app.css").status_code == 200


def test_forms_check_apply_upload_and_bill(world: World) -> None:
    c = world.new_client()
    csrf = login(c, "operator")
    r = c.post(
        f"/sites/{SITE}/versions",
        data={"csrf_token": csrf, "action": "check"},
        files={"file": ("site.toml", SITE_TOML.read_bytes(), "text/plain")},
    )
    assert r.status_code == 200 and "The configuration is valid" in r.text
    broken = SITE_TOML.read_bytes().replace(b'upstream = "hak"', b'upstream = "nowhere"')
    r = c.post(
        f"/sites/{SITE}/versions",
        data={"csrf_token": csrf, "action": "apply"},
        files={"file": ("site.toml", broken, "text/plain")},
    )
    assert r.status_code == 422 and "nowhere" in r.text
    day = interval_csv(FIRST_DAY.replace(day=12), 1)
    r = c.post(
        f"/sites/{SITE}/imports",
        data={"csrf_token": csrf},
        files=[("files", ("march-12.csv", day, "text/csv"))],
    )
    assert r.status_code == 303 and r.headers["location"].startswith("/jobs/")
    job_id = r.headers["location"].rsplit("/", 1)[1]
    job = wait_job(c, f"/api/v1/jobs/{job_id}", {})
    assert job["state"] == "done"
    assert "imported" in c.get(f"/jobs/{job_id}").text
    r = c.post(
        f"/sites/{SITE}/runs",
        data={"csrf_token": csrf, "first_day": "2024-03-12", "last_day": "2024-03-12"},
    )
    assert r.status_code == 303
    job_id = r.headers["location"].rsplit("/", 1)[1]
    assert wait_job(c, f"/api/v1/jobs/{job_id}", {})["state"] == "done"
