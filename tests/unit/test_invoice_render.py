"""Invoice documents: one template for HTML and PDF, what a tenant must find on them, DRAFT on
every page of a draft, and the CSV/JSON files of a run."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from lastgang.billing import bill_site_period
from lastgang.billing.invoice import Run
from lastgang.concept.model import Site
from lastgang.errors import InvalidInput
from lastgang.profiles.types import LoadProfile
from lastgang.quality import Quality
from lastgang.report.invoice import (
    LINE_COLUMNS,
    lines_csv,
    reconciliation_csv,
    render_html,
    render_pdf,
    write_run_files,
)
from lastgang.timegrid import period_slots

WHEN = datetime(2025, 1, 3, 9, 0, tzinfo=UTC)
MP_TOP1 = "AT0081000801000000000000000900011"


def site() -> Site:
    return Site.model_validate(
        {
            "site": {"id": "render", "name": "Haus am Park", "timezone": "Europe/Vienna"},
            "locations": [
                {"id": "hak", "role": "grid"},
                {
                    "id": "top1",
                    "name": "Top 1",
                    "role": "consumer",
                    "metering_points": {"import": MP_TOP1},
                },
                {"id": "pv", "name": "PV roof", "role": "production"},
            ],
            "units": [{"id": "u1", "name": "Top 1", "meters": ["top1"]}],
            "tariffs": [
                {
                    "id": "solar",
                    "name": "Solar energy",
                    "kind": "local",
                    "meter": "pv",
                    "price": "0.12",
                },
                {"id": "grid", "name": "Grid energy", "kind": "grid", "price": "0.25"},
            ],
            "fees": [{"id": "base", "name": "Base fee", "amount": "3.00"}],
            "contracts": [{"unit": "u1", "customer": "Anna Berger", "start": "2024-01-01"}],
            "billing": {"owner": "Owner"},
        }
    )


def year_run(status: str = "draft") -> Run:
    s = site()
    first, last = date(2024, 1, 1), date(2024, 12, 31)
    start, stop = period_slots(first, last, "Europe/Vienna")
    n = stop - start
    ones = np.full(n, Quality.L1, dtype=np.int8)
    profiles = {
        "hak": LoadProfile(start, np.full(n, 0.1), np.zeros(n), ones.copy()),
        "top1": LoadProfile(start, np.full(n, 0.125), np.zeros(n), ones.copy()),
        "pv": LoadProfile(start, np.zeros(n), np.full(n, 0.025), ones.copy()),
    }
    return bill_site_period(
        s,
        profiles,
        first,
        last,
        status=status,
        created_at=WHEN,  # type: ignore[arg-type]
    )


@pytest.fixture(scope="module")
def draft() -> Run:
    return year_run()


def _page_texts(html: str) -> list[list[str]]:
    import weasyprint  # type: ignore[import-untyped]
    from weasyprint.formatting_structure import boxes  # type: ignore[import-untyped]

    document = weasyprint.HTML(string=html).render()
    return [
        [b.text for b in page._page_box.descendants() if isinstance(b, boxes.TextBox)]
        for page in document.pages
    ]


def test_html_invoice_has_what_a_tenant_needs(draft: Run) -> None:
    (invoice,) = draft.invoices
    html = render_html(invoice, draft)
    # header: site, customer, unit, invoice number, period with TOR-4.2 labels
    for text in (
        "Haus am Park",
        "Anna Berger",
        "Top 1",
        "render-R1-V1-01",
        "1 January 2024 – 31 December 2024",
        "2024-01-01 00:15+01:00",
        "2024-12-31 24:00+01:00",
    ):
        assert text in html
    # lines with kWh to 3 decimals: 0.1 kWh local of 0.125 per quarter hour all year
    # (8784 hours x 4 = 35136 quarter hours; 2024 is a leap year)
    assert "878.400 kWh" in html  # 35136 x 0.025 solar
    assert "3513.600 kWh" in html  # 35136 x 0.1 grid
    assert "0.12 EUR/kWh" in html and "20 %" in html
    assert "How this was computed" in html and "60 %" in html
    assert "AT.008100.08010.00000000000000900011" in html  # dotted metering point ID
    assert "Your energy by month" in html and "February 2024" in html
    assert "All values used for this invoice were measured" in html
    assert "DRAFT" in html


def test_draft_pdf_says_draft_on_every_page_and_final_nowhere(draft: Run) -> None:
    (invoice,) = draft.invoices
    pages = _page_texts(render_html(invoice, draft))
    assert len(pages) >= 2
    for texts in pages:
        assert "DRAFT" in texts  # the watermark
        assert any("DRAFT, not a final invoice" in t for t in texts)  # the footer
    final = year_run("final")
    final_pages = _page_texts(render_html(final.invoices[0], final))
    assert not any("DRAFT" in t for texts in final_pages for t in texts)
    assert any(f"page 1 of {len(final_pages)}" in t for t in final_pages[0])


def test_pdf_is_exactly_what_weasyprint_prints_from_the_page(draft: Run) -> None:
    # render_pdf parses the invoice style sheet once and leaves out user agent rules an invoice
    # never uses; the PDF must not change by a byte (draft with watermark, and final)
    import weasyprint

    final = year_run("final")
    pages = [render_html(draft.invoices[0], draft), render_html(final.invoices[0], final)]
    for html in pages:
        assert "<style>" in html and ".summary" in html  # the style sheet is inline
        assert render_pdf(html) == weasyprint.HTML(string=html).write_pdf()
    # a page with a style sheet of its own keeps it
    other = "<style>p { color: red; font-size: 20pt }</style><p>Other</p>"
    assert render_pdf(other) == weasyprint.HTML(string=other).write_pdf()


def test_pdf_footer_names_the_invoice_on_every_page(draft: Run) -> None:
    final = year_run("final")
    (invoice,) = final.invoices
    pages = _page_texts(render_html(invoice, final))
    assert len(pages) >= 2
    for k, texts in enumerate(pages, start=1):
        assert invoice.number in texts
        assert f"page {k} of {len(pages)}" in texts


def test_pdf_is_a4(draft: Run) -> None:
    import weasyprint

    html = render_html(draft.invoices[0], draft)
    assert render_pdf(html).startswith(b"%PDF")
    page = weasyprint.HTML(string=html).render().pages[0]
    # A4 is 210 x 297 mm; CSS pixels are 1/96 inch
    assert (page.width * 25.4 / 96, page.height * 25.4 / 96) == (
        pytest.approx(210, abs=0.1),
        pytest.approx(297, abs=0.1),
    )


def test_lines_csv_has_every_line_as_billed(draft: Run) -> None:
    rows = list(csv.DictReader(io.StringIO(lines_csv(draft))))
    assert tuple(rows[0]) == LINE_COLUMNS
    (invoice,) = draft.invoices
    assert len(rows) == len(invoice.lines) == 2 + 12
    solar = rows[0]
    assert (solar["kind"], solar["quantity"], solar["price"], solar["amount"]) == (
        "local",
        "878.400",
        "0.12",
        "105.41",  # 878.4 x 0.12 = 105.408
    )
    assert float(solar["energy_kwh"]) == pytest.approx(878.4)
    assert sum(Decimal(r["amount"]) for r in rows) == invoice.net


def test_reconciliation_csv_has_one_row_per_month(draft: Run) -> None:
    rows = list(csv.DictReader(io.StringIO(reconciliation_csv(draft))))
    assert [r["month"] for r in rows] == [f"2024-{m:02d}" for m in range(1, 13)]
    # HAK 0.1 = 0.125 consumed - 0.025 produced in every quarter hour
    assert {r["difference_kwh"] for r in rows} == {"0.000"}
    assert rows[0]["flagged"] == "False"


def test_run_files_are_written_once(draft: Run, tmp_path: Path) -> None:
    files = write_run_files(draft, tmp_path, pdf=False)
    assert sorted(files) == [
        "render-R1-V1-01.html",
        "render-R1-V1-lines.csv",
        "render-R1-V1-lines.json",
        "render-R1-V1-reconciliation.csv",
        "render-R1-V1-reconciliation.json",
        "render-R1-V1-run.json",
        "render-R1-V1-summary.json",
    ]
    summary = json.loads(files["render-R1-V1-summary.json"].read_text())
    assert summary["status"] == "draft" and summary["total"] == str(draft.total)
    assert len(summary["reconciliation"]["rows"]) == 12
    lines = json.loads(files["render-R1-V1-lines.json"].read_text())
    assert tuple(lines[0]) == LINE_COLUMNS
    assert [r["amount"] for r in lines] == [
        r["amount"] for r in csv.DictReader(io.StringIO(lines_csv(draft)))
    ]
    with pytest.raises(InvalidInput, match="never overwritten"):
        write_run_files(draft, tmp_path, pdf=False)
