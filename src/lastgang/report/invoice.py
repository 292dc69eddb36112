"""Invoice documents and run files: HTML and PDF from one Jinja2 template, CSV and JSON.

- :func:`render_html`: one invoice as a self-contained HTML page (``templates/invoice.html.j2``);
- :func:`render_pdf`: the same HTML as an A4 PDF (WeasyPrint; a draft has a DRAFT watermark and
  a DRAFT footer on every page);
- :func:`lines_csv`, :func:`reconciliation_csv`, :func:`run_json`, :func:`summary`: the files
  of a run;
- :func:`write_run_files`: everything into a folder, named after the run
  (``<site>-R<run>-V<version>``) and the invoice numbers.

Numbers are formatted with :mod:`lastgang.money` (kWh with 3 decimals, amounts with 2, prices as
configured, VAT rates in percent); nothing is rounded here.
"""

from __future__ import annotations

import csv
import io
import json
import multiprocessing
import os
import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from datetime import date
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

from lastgang.billing.invoice import Invoice, MeterUsed, Run, to_jsonable
from lastgang.errors import InvalidInput
from lastgang.money import format_kwh, format_money, format_price, format_rate

__all__ = [
    "LINE_COLUMNS",
    "RECONCILIATION_COLUMNS",
    "file_names",
    "invoice_context",
    "lines_csv",
    "lines_json",
    "reconciliation_csv",
    "reconciliation_json",
    "render_html",
    "render_pdf",
    "render_pdfs",
    "run_json",
    "summary",
    "write_run_files",
]

TEMPLATE = "invoice.html.j2"
#: the style sheet of :data:`TEMPLATE` (included inline)
STYLESHEET = "invoice.css"

_KIND_LABELS = {
    "local": "Local energy",
    "battery": "Battery energy",
    "grid": "Grid energy",
    "base-fee": "Base fee",
    "feed-in": "Feed-in credit",
    "local-sales": "Local energy sold",
}

_UNIT_KINDS = {
    "apartment": "apartment",
    "general": "common areas",
    "heating": "heating",
    "heat-pump": "heat pump",
    "ev-charging": "EV charging",
    "commercial": "commercial unit",
}


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("lastgang.report", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _day(value: date) -> str:
    return f"{value.day} {value:%B %Y}"


def _days(first: date, last: date) -> str:
    if first == last:
        return _day(first)
    return f"{_day(first)} – {_day(last)}"


def _short_days(first: date, last: date) -> str:
    """``1–31 Jan 2025``, ``1 Jan – 31 Dec 2025``, ``15 Dec 2024 – 14 Jan 2025``."""
    if first == last:
        return f"{first.day} {first:%b %Y}"
    if (first.year, first.month) == (last.year, last.month):
        return f"{first.day}–{last.day} {last:%b %Y}"
    if first.year == last.year:
        return f"{first.day} {first:%b} – {last.day} {last:%b %Y}"
    return f"{first.day} {first:%b %Y} – {last.day} {last:%b %Y}"


def _signed_money(value: Decimal) -> str:
    return format_money(value)


def _meter_detail(meter: MeterUsed) -> list[str]:
    if meter.virtual:
        return [f"virtual meter = {meter.formula}"]
    if meter.physical_meters:
        return [f"meter {m}" for m in meter.physical_meters]
    return [meter.id]


def _quality_text(counts: Mapping[str, int]) -> list[str]:
    """``['L1: 35040']`` or ``['L1: 34000', 'L3: 1040']``: the qualities that occur."""
    return [f"{k}: {counts[k]}" for k in ("L1", "L2", "L3", "missing") if counts.get(k, 0)]


def invoice_context(invoice: Invoice, run: Run) -> dict[str, Any]:
    """Everything the template shows, formatted as text."""
    currency = invoice.currency
    consumer = invoice.local_share_percent is not None or invoice.consumption_kwh > 0
    producer = any(m.purpose.startswith("your production") for m in invoice.meters)
    lines = []
    for line in invoice.lines:
        if line.unit == "days":
            quantity = f"{line.quantity}/{line.days_in_month} days"
        else:
            quantity = f"{format_kwh(line.quantity)} {line.unit}"
        label = _KIND_LABELS.get(line.kind, line.kind)
        lines.append(
            {
                # the kind is left out where the description already says it
                "kind_label": "" if line.description.startswith(label) else label,
                "description": line.description,
                "period": _short_days(line.first_day, line.last_day),
                "quantity": quantity,
                "price": f"{format_price(line.price)} {line.price_unit}",
                "amount": _signed_money(line.amount),
                "vat_rate": format_rate(line.vat_rate),
            }
        )
    months = [
        {
            "month": f"{m.first_day:%B %Y}",
            "days": f"{m.first_day.day}–{m.last_day.day}",
            "consumption_kwh": format_kwh(m.consumption_kwh),
            "local_kwh": format_kwh(m.local_kwh),
            "grid_kwh": format_kwh(m.grid_kwh),
            "local_share": "–" if m.local_share_percent is None else f"{m.local_share_percent} %",
            "feed_in_kwh": format_kwh(m.feed_in_kwh),
            "substitute_kwh": format_kwh(m.substitute_kwh),
        }
        for m in invoice.months
    ]
    meters = [
        {
            "name": m.name,
            "detail": _meter_detail(m),
            "metering_points": list(m.metering_points),
            "virtual": m.virtual,
            "purpose": m.purpose,
            "quality": _quality_text(m.quality_slots),
            "batches": ", ".join(str(b) for b in m.batches) or "–",
        }
        for m in invoice.meters
    ]
    quality = invoice.quality
    return {
        "draft": invoice.draft,
        "status": invoice.status,
        "number": invoice.number,
        "issuer": invoice.issuer,
        "site_name": invoice.site_name,
        "timezone": invoice.timezone,
        "currency": currency,
        "unit_id": invoice.unit_id,
        "unit_name": invoice.unit_name,
        "unit_kind": _UNIT_KINDS.get(invoice.unit_kind, invoice.unit_kind),
        "customer": invoice.customer,
        "vacancy": invoice.vacancy,
        "contract_id": invoice.contract_id,
        "created": _day(run.created_at.date()),
        "created_at": run.created_at.isoformat(timespec="seconds"),
        "period_days": _days(invoice.first_day, invoice.last_day),
        "first_label": invoice.first_label,
        "last_label": invoice.last_label,
        "consumer": consumer,
        "producer": producer,
        "consumption_kwh": format_kwh(invoice.consumption_kwh),
        "local_share": (
            "–" if invoice.local_share_percent is None else f"{invoice.local_share_percent} %"
        ),
        "lines": lines,
        "vat": [
            {"rate": format_rate(v.rate), "net": format_money(v.net), "vat": format_money(v.vat)}
            for v in invoice.vat
        ],
        "net": format_money(invoice.net),
        "total": format_money(invoice.total),
        "total_negative": invoice.total < 0,
        "explanation": list(invoice.explanation),
        "months": months,
        "meters": meters,
        "quality_statement": quality.statement,
        "quality_ok": quality.substitute_kwh == 0 and quality.missing_slots == 0,
        "run": run.run,
        "version": run.version,
        "fingerprint": run.fingerprint[:16],
    }


def render_html(invoice: Invoice, run: Run) -> str:
    """The invoice as a self-contained HTML page (the same page the PDF is printed from)."""
    return _environment().get_template(TEMPLATE).render(**invoice_context(invoice, run))


def render_pdf(html: str) -> bytes:
    """An HTML invoice as an A4 PDF (WeasyPrint).

    The same PDF as ``weasyprint.HTML(string=html).write_pdf()``, with less work per page: the
    invoice style sheet (``templates/invoice.css``, which every page holds inline) is parsed
    once per process, the fonts are looked up once per thread, and the user agent style sheet
    leaves out the rules for pseudo-elements an invoice never has (list markers outside lists,
    footnotes), whose styles WeasyPrint would otherwise compute for every element
    (``bench/README.md``). A page with another style sheet keeps it."""
    printer = _printer()
    stylesheets = None
    start = html.find("<style>")
    end = html.find("</style>", start)
    if start >= 0 and end >= 0 and html[start + 7 : end].strip() == printer.css_text:
        html = html[:start] + html[end + 8 :]
        stylesheets = [printer.css]
    document = printer.html_class(string=html)
    pdf: bytes = document.write_pdf(stylesheets=stylesheets, font_config=printer.font_config())
    return pdf


class _Printer:
    """What every invoice PDF of a process shares (see :func:`render_pdf`)."""

    def __init__(self) -> None:
        import weasyprint  # type: ignore[import-untyped]  # imported here: it is slow to load
        from weasyprint.css.counters import CounterStyle  # type: ignore[import-untyped]
        from weasyprint.html import UA  # type: ignore[import-untyped]
        from weasyprint.text.fonts import FontConfiguration  # type: ignore[import-untyped]

        env = _environment()
        assert env.loader is not None
        self.css_text = env.loader.get_source(env, STYLESHEET)[0].strip()
        self.css = weasyprint.CSS(string=self.css_text)
        lean = weasyprint.CSS(string=_lean_user_agent_css(UA), counter_style=CounterStyle())
        self._fonts = threading.local()
        self._font_configuration = FontConfiguration

        class InvoiceHTML(weasyprint.HTML):  # type: ignore[misc]
            def _ua_stylesheets(self, forms: bool = False) -> list[Any]:
                return [lean, *super()._ua_stylesheets(forms)[1:]]

        self.html_class = InvoiceHTML

    def font_config(self) -> Any:
        """The fonts of this thread (a Pango font map is not to be shared between threads)."""
        config = getattr(self._fonts, "config", None)
        if config is None:
            config = self._fonts.config = self._font_configuration()
        return config


#: pseudo-elements of WeasyPrint's user agent style sheet that no invoice has (footnotes and
#: notes); its ``::marker`` rule is kept for list items only
_UNUSED_PSEUDO_RULES = re.compile(
    r"^::(footnote-call|footnote-marker|note-call|note-marker|note-callback) \{[^}]*\}$",
    re.MULTILINE,
)


def _lean_user_agent_css(ua: str) -> str:
    """WeasyPrint's HTML user agent style sheet without the rules of :data:`_UNUSED_PSEUDO_RULES`
    and with ``::marker`` for list items (``li``, ``summary``) instead of every element."""
    lean = _UNUSED_PSEUDO_RULES.sub("", ua)
    return lean.replace("\n::marker {", "\nli::marker, summary::marker {", 1)


@lru_cache(maxsize=1)
def _printer() -> _Printer:
    return _Printer()


#: invoices from which a run's PDFs are rendered by several processes: a worker needs about a
#: second to start (Python, WeasyPrint, fonts) and a page of layout about 0.3-0.5 s
PARALLEL_FROM = 12


def _warm_up() -> None:
    render_pdf("<p>.</p>")


def render_pdfs(pages: Sequence[str], *, workers: int | None = None) -> Iterator[bytes]:
    """PDFs of HTML invoices, in order. From :data:`PARALLEL_FROM` pages on (or when ``workers``
    is given) they are rendered by a pool of processes, one per core: WeasyPrint's layout is
    pure Python, so threads would not help (``bench/README.md``). The workers are started
    fresh (``spawn``), never forked from a process that holds a store connection."""
    count = workers if workers is not None else min(os.cpu_count() or 1, len(pages) // 4)
    if count < 2 or (workers is None and len(pages) < PARALLEL_FROM):
        for html in pages:
            yield render_pdf(html)
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(count, mp_context=context, initializer=_warm_up) as pool:
        yield from pool.map(render_pdf, pages)


# --------------------------------------------------------------------------------------------
# run files

#: columns of the CSV of all lines of a run
LINE_COLUMNS = (
    "invoice",
    "unit",
    "customer",
    "kind",
    "item",
    "description",
    "first_day",
    "last_day",
    "quantity",
    "unit_of_quantity",
    "price",
    "price_unit",
    "amount",
    "vat_rate",
    "meter",
    "energy_kwh",
    "status",
)

#: columns of the reconciliation CSV
RECONCILIATION_COLUMNS = (
    "month",
    "first_day",
    "last_day",
    "grid_import_kwh",
    "grid_export_kwh",
    "grid_net_kwh",
    "consumers_kwh",
    "production_kwh",
    "expected_net_kwh",
    "difference_kwh",
    "difference_percent",
    "flagged",
    "missing_slots",
)


def _csv(header: tuple[str, ...], rows: list[list[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if v is None else v for v in row])
    return buffer.getvalue()


def lines_csv(run: Run) -> str:
    """Every line of every invoice of the run: quantities and amounts exactly as billed, plus
    the unrounded energy (``energy_kwh``) of energy lines."""
    rows = [
        [
            invoice.number,
            invoice.unit_id,
            invoice.customer,
            line.kind,
            line.item,
            line.description,
            line.first_day.isoformat(),
            line.last_day.isoformat(),
            str(line.quantity),
            line.unit,
            str(line.price),
            line.price_unit,
            str(line.amount),
            str(line.vat_rate),
            line.meter,
            None if line.energy_kwh is None else repr(line.energy_kwh),
            invoice.status,
        ]
        for invoice in run.invoices
        for line in invoice.lines
    ]
    return _csv(LINE_COLUMNS, rows)


def lines_json(run: Run) -> str:
    """Every line of every invoice of the run as a JSON list, with the columns of
    :data:`LINE_COLUMNS` (decimals as exact strings, ``energy_kwh`` a number)."""
    rows = [
        {
            "invoice": invoice.number,
            "unit": invoice.unit_id,
            "customer": invoice.customer,
            "kind": line.kind,
            "item": line.item,
            "description": line.description,
            "first_day": line.first_day.isoformat(),
            "last_day": line.last_day.isoformat(),
            "quantity": str(line.quantity),
            "unit_of_quantity": line.unit,
            "price": str(line.price),
            "price_unit": line.price_unit,
            "amount": str(line.amount),
            "vat_rate": str(line.vat_rate),
            "meter": line.meter,
            "energy_kwh": line.energy_kwh,
            "status": invoice.status,
        }
        for invoice in run.invoices
        for line in invoice.lines
    ]
    return _dump(rows)


def reconciliation_csv(run: Run) -> str:
    """The reconciliation rows of a run, one per month."""
    rows = [
        [to_jsonable(getattr(row, name)) for name in RECONCILIATION_COLUMNS]
        for row in run.reconciliation.rows
    ]
    return _csv(RECONCILIATION_COLUMNS, rows)


def _dump(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def run_json(run: Run) -> str:
    """The whole run as JSON (amounts, prices and quantities as exact decimal strings)."""
    return _dump(to_jsonable(run))


def reconciliation_json(run: Run) -> str:
    return _dump(to_jsonable(run.reconciliation))


def summary(run: Run, files: list[str] | None = None) -> dict[str, Any]:
    """The run summary: what was billed, totals, reconciliation flags, quality issues, files."""
    return {
        "site": run.site_id,
        "run": run.run,
        "version": run.version,
        "status": run.status,
        "created_at": run.created_at.isoformat(),
        "first_day": run.first_day.isoformat(),
        "last_day": run.last_day.isoformat(),
        "period": run.period_label,
        "currency": run.currency,
        "fingerprint": run.fingerprint,
        "invoices": [
            {
                "number": i.number,
                "unit": i.unit_id,
                "customer": i.customer,
                "first_day": i.first_day.isoformat(),
                "last_day": i.last_day.isoformat(),
                "consumption_kwh": str(i.consumption_kwh),
                "local_kwh": str(i.local_kwh),
                "grid_kwh": str(i.grid_kwh),
                "net": str(i.net),
                "vat": str(i.vat_total),
                "total": str(i.total),
                "substitute_kwh": str(i.quality.substitute_kwh),
                "l3_kwh": str(i.quality.l3_kwh),
                "missing_slots": i.quality.missing_slots,
            }
            for i in run.invoices
        ],
        "net": str(run.net),
        "vat": str(run.vat_total),
        "total": str(run.total),
        "reconciliation": to_jsonable(run.reconciliation),
        "quality_issues": to_jsonable(run.quality_issues),
        "files": files or [],
    }


def file_names(run: Run) -> dict[str, str]:
    """File name per output of a run: ``lines``, ``lines-json``, ``run``, ``reconciliation-csv``,
    ``reconciliation-json``, ``summary`` and per invoice ``<number>.html`` / ``.pdf``."""
    key = run.key
    names = {
        "lines": f"{key}-lines.csv",
        "lines-json": f"{key}-lines.json",
        "run": f"{key}-run.json",
        "reconciliation-csv": f"{key}-reconciliation.csv",
        "reconciliation-json": f"{key}-reconciliation.json",
        "summary": f"{key}-summary.json",
    }
    for invoice in run.invoices:
        names[f"{invoice.number}.html"] = f"{invoice.number}.html"
        names[f"{invoice.number}.pdf"] = f"{invoice.number}.pdf"
    return names


def write_run_files(
    run: Run,
    out_dir: Path,
    *,
    pdf: bool = True,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, Path]:
    """Write every file of a run into ``out_dir`` (created if needed) and return them by name.

    Never overwrites: a file that exists already refuses the whole write
    (:class:`~lastgang.errors.InvalidInput`) before anything is written."""
    names = file_names(run)
    if not pdf:
        names = {k: v for k, v in names.items() if not v.endswith(".pdf")}
    out_dir = Path(out_dir)
    existing = sorted(name for name in names.values() if (out_dir / name).exists())
    if existing:
        raise InvalidInput(
            f"{out_dir} already holds files of this run ({', '.join(existing)}); files of a "
            "run are never overwritten: choose another --out folder"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}

    def put(name: str, content: str | bytes) -> None:
        path = out_dir / name
        if isinstance(content, str):
            path.write_text(content, encoding="utf-8")
        else:
            path.write_bytes(content)
        written[name] = path

    total = len(run.invoices)
    pages = []
    for k, invoice in enumerate(run.invoices):
        if progress is not None and not pdf:
            progress(f"rendering invoice {invoice.number}", k, total)
        html = render_html(invoice, run)
        put(f"{invoice.number}.html", html)
        pages.append(html)
    if pdf:
        for k, (invoice, document) in enumerate(zip(run.invoices, render_pdfs(pages), strict=True)):
            if progress is not None:
                progress(f"rendering invoice {invoice.number}", k, total)
            put(f"{invoice.number}.pdf", document)
    if progress is not None:
        progress("writing run files", total, total)
    put(names["lines"], lines_csv(run))
    put(names["lines-json"], lines_json(run))
    put(names["run"], run_json(run))
    put(names["reconciliation-csv"], reconciliation_csv(run))
    put(names["reconciliation-json"], reconciliation_json(run))
    listing = sorted([*(path.name for path in written.values()), names["summary"]])
    put(names["summary"], _dump(summary(run, listing)))
    return written
