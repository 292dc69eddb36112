"""Invoice documents: HTML and PDF from one context, what a tenant must find on them (in the
PDF: in the text a reader extracts), DRAFT on every page of a draft, user text printed as it
is, the same PDF bytes every time, and the CSV/JSON files of a run."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pypdf import PdfReader

from lastgang.billing import bill_site_period
from lastgang.billing.invoice import Run
from lastgang.concept.model import Site
from lastgang.errors import InvalidInput
from lastgang.money import format_price, format_rate
from lastgang.profiles.types import LoadProfile
from lastgang.quality import Quality
from lastgang.report.invoice import (
    LINE_COLUMNS,
    invoice_context,
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
    return Site.model_validate(site_data())


def site_data() -> dict[str, Any]:
    return {
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


def profiles(first: date, last: date) -> dict[str, LoadProfile]:
    """The site's profiles over whole days: the HAK draws 0.1 kWh, Top 1 0.125 kWh and the PV
    produces 0.025 kWh in every quarter hour, all measured (L1)."""
    start, stop = period_slots(first, last, "Europe/Vienna")
    n = stop - start
    ones = np.full(n, Quality.L1, dtype=np.int8)
    return {
        "hak": LoadProfile(start, np.full(n, 0.1), np.zeros(n), ones.copy()),
        "top1": LoadProfile(start, np.full(n, 0.125), np.zeros(n), ones.copy()),
        "pv": LoadProfile(start, np.zeros(n), np.full(n, 0.025), ones.copy()),
    }


def year_run(status: str = "draft") -> Run:
    first, last = date(2024, 1, 1), date(2024, 12, 31)
    return bill_site_period(
        site(),
        profiles(first, last),
        first,
        last,
        status=status,
        created_at=WHEN,  # type: ignore[arg-type]
    )


@pytest.fixture(scope="module")
def draft() -> Run:
    return year_run()


def _page_texts(pdf: bytes) -> list[str]:
    """The text of every page of a PDF, as a reader extracts it."""
    return [page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages]


def _pdf(run: Run, k: int = 0) -> bytes:
    return render_pdf(invoice_context(run.invoices[k], run))


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


def test_tor_4_1_tor_4_2_pdf_shows_every_number_of_the_invoice() -> None:
    final = year_run("final")
    text = "\n".join(_page_texts(_pdf(final)))
    # head: invoice number, date of the run, period in days and as TOR-4.2 labels
    for value in (
        "Invoice number render-R1-V1-01",
        "Date 3 January 2025",
        "Billing period 1 January 2024 – 31 December 2024",
        "2024-01-01 00:15+01:00",
        "2024-12-31 24:00+01:00",
        "Anna Berger",
        "Status final",
    ):
        assert value in text
    # the summary: 0.125 kWh in each of 35136 quarter hours, 20 % of it local (0.025 / 0.125)
    assert "4392.000 kWh" in text and "20.0 %" in text
    # every line: solar 878.400 kWh x 0.12 = 105.408 -> 105.41; grid 3513.600 x 0.25 = 878.40;
    # twelve base fees of a whole month, 3.00 each
    assert "878.400 kWh 0.12 EUR/kWh 105.41 20 %" in text
    assert "3513.600 kWh 0.25 EUR/kWh 878.40 20 %" in text
    for month, days in (("Jan", 31), ("Feb", 29), ("Jun", 30), ("Dec", 31)):
        assert f"1–{days} {month} 2024 {days}/{days} days 3.00 EUR/month 3.00 20 %" in text
    assert text.count("3.00 EUR/month 3.00 20 %") == 12
    # totals: 105.41 + 878.40 + 12 x 3.00 = 1019.81 net, 20 % VAT 203.962 -> 203.96
    assert "Net total 1019.81 EUR" in text
    assert "VAT 20 % on 1019.81 EUR 203.96 EUR" in text
    assert "Total 1223.77 EUR" in text and "Total to pay\n1223.77 EUR" in text
    # energy by month: January 31 days x 96 x 0.125 = 372.000, 74.400 local, 297.600 grid;
    # February 2024 has 29 days: 348.000; March loses an hour to daylight saving: 371.500
    assert "January 2024 1–31 372.000 74.400 297.600 20.0 % 0.000" in text
    assert "February 2024 1–29 348.000 69.600 278.400 20.0 % 0.000" in text
    assert "March 2024 1–31 371.500 74.300 297.200 20.0 % 0.000" in text
    assert "October 2024 1–31 372.500 74.500 298.000 20.0 % 0.000" in text
    # meters: the dotted metering point ID (TOR-4.1), quality counts, the statement
    assert "AT.008100.08010.00000000000000900011 your consumption L1: 35136" in text
    assert "All values used for this invoice were measured (quality L1)." in text
    assert "Run 1, version 1 of this period (final), created 2025-01-03T09:00:00+00:00" in text
    assert final.fingerprint[:16] in text and "(Europe/Vienna, TOR-4.2)" in text
    assert "DRAFT" not in text


def test_draft_pdf_says_draft_on_every_page_and_final_nowhere(draft: Run) -> None:
    pages = _page_texts(_pdf(draft))
    assert len(pages) >= 2
    for text in pages:
        assert text.endswith("\nDRAFT")  # the watermark
        assert "render-R1-V1-01 · DRAFT, not a final invoice" in text  # the footer
    assert "DRAFT – not a final invoice. Amounts may still change" in pages[0]  # the banner
    assert "Status DRAFT" in pages[0] and "Invoice (draft)" in pages[0]
    final = year_run("final")
    assert not any("DRAFT" in text for text in _page_texts(_pdf(final)))


def test_pdf_footer_names_the_invoice_on_every_page() -> None:
    final = year_run("final")
    pages = _page_texts(_pdf(final))
    assert len(pages) >= 2
    for k, text in enumerate(pages, start=1):
        assert f"render-R1-V1-01 page {k} of {len(pages)}" in text


def test_pdf_is_a4_with_title_author_and_the_run_s_date(draft: Run) -> None:
    reader = PdfReader(io.BytesIO(_pdf(draft)))
    for page in reader.pages:
        # A4 is 210 x 297 mm, 595.276 x 841.890 pt
        assert (float(page.mediabox.width), float(page.mediabox.height)) == (
            pytest.approx(210 / 25.4 * 72, abs=0.01),
            pytest.approx(297 / 25.4 * 72, abs=0.01),
        )
    meta = reader.metadata
    assert meta is not None
    assert meta.title == "render-R1-V1-01 (DRAFT) – Haus am Park"
    assert meta.author == "Owner"
    assert meta["/CreationDate"] == meta["/ModDate"] == "D:20250103090000Z"  # WHEN


HOSTILE = '#strong[x] $a^2$ *b* _c_ <d> @e [f] \\ `g` ~ "h" // i /* j */ = k'


def test_pdf_prints_user_text_literally() -> None:
    data = site_data()
    data["site"]["name"] = "Haus #1 am *Park* " + HOSTILE
    data["contracts"][0]["customer"] = "Anna " + HOSTILE
    data["billing"]["owner"] = "Owner <owner@example.org> & [Co]"
    data["units"][0]["name"] = "Top_1 $[a]$"
    s = Site.model_validate(data)
    first, last = date(2024, 6, 1), date(2024, 6, 2)
    run = bill_site_period(s, profiles(first, last), first, last, status="draft", created_at=WHEN)  # type: ignore[arg-type]
    # long names wrap: compare the words
    text = " ".join(" ".join(_page_texts(_pdf(run))).split())
    assert "Anna " + HOSTILE in text
    assert "Haus #1 am *Park* " + HOSTILE in text
    assert "Owner <owner@example.org> & [Co] · Haus #1" in text
    assert "Billing unit Top_1 $[a]$ (u1)" in text
    assert "Electricity for Top_1 $[a]$ (apartment), Haus #1 am *Park* #strong[x]" in text
    reader = PdfReader(io.BytesIO(_pdf(run)))
    assert reader.metadata is not None and reader.metadata.author == data["billing"]["owner"]


def test_same_invoice_gives_the_same_pdf_bytes_in_another_process(draft: Run) -> None:
    context = invoice_context(draft.invoices[0], draft)
    pdf = render_pdf(context)
    assert render_pdf(context) == pdf
    # a fresh interpreter (fonts found and loaded anew, another moment) prints the same bytes
    script = (
        "import json, sys; from lastgang.report.pdf import render_pdf; "
        "sys.stdout.buffer.write(render_pdf(json.loads(sys.stdin.read())))"
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        input=json.dumps(context).encode(),
        capture_output=True,
        check=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert out.stdout == pdf


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


def test_a_file_that_fails_half_written_leaves_nothing_under_its_name(
    draft: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The large files are written piece by piece; one that fails on the way is removed, not
    left half written (which would look like a whole file and refuse the next write)."""
    from lastgang.report import invoice as module

    def broken(out: Any, run: Run, spans: Any = None) -> None:
        out.write(b'{\n  "site_id": ')
        raise OSError("disk full")

    monkeypatch.setattr(module, "_write_run_json", broken)
    with pytest.raises(OSError, match="disk full"):
        write_run_files(draft, tmp_path, pdf=False)
    left = sorted(path.name for path in tmp_path.iterdir())
    assert "render-R1-V1-run.json" not in left
    assert not [name for name in left if name.endswith(".part")]
    assert "render-R1-V1-lines.json" in left  # written before it, whole
    monkeypatch.undo()
    for name in left:
        (tmp_path / name).unlink()
    files = write_run_files(draft, tmp_path, pdf=False)
    assert json.loads(files["render-R1-V1-run.json"].read_text())["site_id"] == "render"


@given(
    st.decimals(allow_nan=False, allow_infinity=False, min_value=-1000, max_value=1000)
    | st.sampled_from([Decimal("0.2"), Decimal("0.20"), Decimal("0.2000"), Decimal("2E+1")])
)
def test_prices_and_rates_formatted_once_per_text_are_formatted_as_always(value: Decimal) -> None:
    """The pages format each price and VAT rate once per run by the text of its Decimal: equal
    numbers written with other decimals (0.2, 0.20) keep their own text."""
    from lastgang.report.invoice import _price_text, _rate_text

    assert _price_text(str(value), "EUR/kWh") == f"{format_price(value)} EUR/kWh"
    assert _rate_text(str(value)) == format_rate(value)
