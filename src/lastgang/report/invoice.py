"""Invoice documents and run files: HTML and PDF from one context, CSV and JSON.

- :func:`invoice_context`: every value an invoice shows, formatted as text;
- :func:`render_html`: one invoice as a self-contained HTML page (``templates/invoice.html.j2``);
- :func:`render_pdf`: the same context as an A4 PDF (Typst, ``templates/invoice.typ``; a draft
  has a DRAFT watermark and a DRAFT footer on every page); :func:`render_pdfs` many of them, by
  a pool of threads (both from :mod:`lastgang.report.pdf`);
- :func:`lines_csv`, :func:`reconciliation_csv`, :func:`run_json`, :func:`summary`: the files
  of a run;
- :func:`write_run_files`: everything into a folder, named after the run
  (``<site>-R<run>-V<version>``) and the invoice numbers, with where each invoice stands in
  the run JSON (:class:`RunFiles`).

Numbers are formatted with :mod:`lastgang.money` (kWh with 3 decimals, amounts with 2, prices as
configured, VAT rates in percent); nothing is rounded here.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import date
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any, BinaryIO, TextIO

import jinja2

from lastgang.billing.invoice import Invoice, MeterUsed, Run, to_jsonable
from lastgang.errors import InvalidInput
from lastgang.money import format_kwh, format_money, format_price, format_rate
from lastgang.report.jsonfiles import json_bytes, write_json, write_json_array
from lastgang.report.pdf import render_pdf, render_pdfs

__all__ = [
    "LINE_COLUMNS",
    "RECONCILIATION_COLUMNS",
    "RunFiles",
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
METER_ROW_TEMPLATE = "invoice_meter_row.html.j2"

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


@lru_cache(maxsize=4096)
def _day(value: date) -> str:
    return f"{value.day} {value:%B %Y}"


def _days(first: date, last: date) -> str:
    if first == last:
        return _day(first)
    return f"{_day(first)} – {_day(last)}"


@lru_cache(maxsize=4096)
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
    if meter.meter_periods:  # a meter exchange: which meter measured when (TOR-7.2.1)
        return [
            f"meter {m}: {first} – {last}"
            for m, (first, last) in zip(meter.physical_meters, meter.meter_periods, strict=True)
        ]
    if meter.physical_meters:
        return [f"meter {m}" for m in meter.physical_meters]
    return [meter.id]


def _quality_text(counts: Mapping[str, int]) -> list[str]:
    """``['L1: 35040']`` or ``['L1: 34000', 'L3: 1040']``: the qualities that occur."""
    return [f"{k}: {counts[k]}" for k in ("L1", "L2", "L3", "missing") if counts.get(k, 0)]


@lru_cache(maxsize=1024)
def _price_text(price: str, unit: str) -> str:
    """A line's price as shown, from the text of its ``Decimal`` (which keeps its decimals:
    ``Decimal(str(x))`` is ``x`` digit for digit); a run has a few prices and many lines."""
    return f"{format_price(Decimal(price))} {unit}"


@lru_cache(maxsize=256)
def _rate_text(rate: str) -> str:
    return format_rate(Decimal(rate))


def _meter_row(meter: MeterUsed) -> dict[str, Any]:
    return {
        "name": meter.name,
        "detail": _meter_detail(meter),
        "metering_points": list(meter.metering_points),
        "virtual": meter.virtual,
        "purpose": meter.purpose,
        "quality": _quality_text(meter.quality_slots),
        "batches": ", ".join(str(b) for b in meter.batches) or "–",
    }


#: meter rows already formatted, by the identity of their :class:`MeterUsed` (kept beside it)
_MeterRows = dict[int, tuple[MeterUsed, dict[str, Any]]]


def invoice_context(invoice: Invoice, run: Run) -> dict[str, Any]:
    """Everything the template shows, formatted as text."""
    return _context(invoice, run, {})


def _context(invoice: Invoice, run: Run, meter_rows: _MeterRows) -> dict[str, Any]:
    """:func:`invoice_context`, the meter rows from ``meter_rows``: every consumer's invoice of
    a run lists the same shared sources, the same :class:`MeterUsed` objects (a community of
    10,000 consumers and 100 PV systems: a million rows, 10,000 different ones)."""
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
                "price": _price_text(str(line.price), line.price_unit),
                "amount": _signed_money(line.amount),
                "vat_rate": _rate_text(str(line.vat_rate)),
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
    meters = []
    for m in invoice.meters:
        found = meter_rows.get(id(m))
        if found is None or found[0] is not m:
            found = meter_rows[id(m)] = (m, _meter_row(m))
        meters.append(found[1])
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
    """The invoice as a self-contained HTML page (the PDF shows the same context)."""
    return _html_page(invoice_context(invoice, run))


#: meter rows already rendered as HTML (markup: not escaped again), by the identity of their
#: row dict (kept beside it)
_MeterHtml = dict[int, tuple[dict[str, Any], str]]


def _html_page(context: Mapping[str, Any], meter_html: _MeterHtml | None = None) -> str:
    """The page of a context; its meter rows rendered once each (``meter_html``, by the
    identity of their row: a community's invoices share their sources' rows, a page of 100
    meters had half its values escaped in them)."""
    environment = _environment()
    row = environment.get_template(METER_ROW_TEMPLATE).module.meter_row  # type: ignore[attr-defined]
    done: _MeterHtml = {} if meter_html is None else meter_html
    rows = []
    for meter in context["meters"]:
        found = done.get(id(meter))
        if found is None or found[0] is not meter:
            found = done[id(meter)] = (meter, row(meter))
        rows.append(found[1])
    return environment.get_template(TEMPLATE).render(**context, meter_html=rows)


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


def _csv(header: tuple[str, ...], rows: Iterable[list[Any]]) -> str:
    buffer = io.StringIO()
    _write_csv(buffer, header, rows)
    return buffer.getvalue()


def _write_csv(out: TextIO, header: tuple[str, ...], rows: Iterable[list[Any]]) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)  # None is written as an empty field


def _line_values(invoice: Invoice) -> list[list[Any]]:
    """The lines of one invoice in the columns of :data:`LINE_COLUMNS`: the rows of
    :func:`lines_csv` (``energy_kwh`` a float, which the CSV writer writes as its ``repr``, and
    ``None`` as an empty field) and the objects of :func:`lines_json`."""
    number, unit, customer, status = (
        invoice.number,
        invoice.unit_id,
        invoice.customer,
        invoice.status,
    )
    return [
        [
            number,
            unit,
            customer,
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
            line.energy_kwh,
            status,
        ]
        for line in invoice.lines
    ]


def _line_rows(run: Run) -> Iterator[list[Any]]:
    """The rows of :func:`lines_csv`, one invoice after the other."""
    for invoice in run.invoices:
        yield from _line_values(invoice)


def _write_lines_csv(out: BinaryIO, run: Run) -> None:
    text = io.TextIOWrapper(out, encoding="utf-8")
    try:
        _write_csv(text, LINE_COLUMNS, _line_rows(run))
    finally:
        text.flush()
        text.detach()  # leave ``out`` open for its owner


def lines_csv(run: Run) -> str:
    """Every line of every invoice of the run: quantities and amounts exactly as billed, plus
    the unrounded energy (``energy_kwh``) of energy lines."""
    return _csv(LINE_COLUMNS, _line_rows(run))


def _line_objects(invoice: Invoice) -> list[dict[str, Any]]:
    """The lines of one invoice as the objects of :func:`lines_json`."""
    return [dict(zip(LINE_COLUMNS, row, strict=True)) for row in _line_values(invoice)]


def _write_lines_json(out: BinaryIO, run: Run) -> None:
    write_json_array(out, (_line_objects(invoice) for invoice in run.invoices))
    out.write(b"\n")


def lines_json(run: Run) -> str:
    """Every line of every invoice of the run as a JSON list, with the columns of
    :data:`LINE_COLUMNS` (decimals as exact strings, ``energy_kwh`` a number)."""
    buffer = io.BytesIO()
    _write_lines_json(buffer, run)
    return buffer.getvalue().decode()


def reconciliation_csv(run: Run) -> str:
    """The reconciliation rows of a run, one per month."""
    rows = [
        [to_jsonable(getattr(row, name)) for name in RECONCILIATION_COLUMNS]
        for row in run.reconciliation.rows
    ]
    return _csv(RECONCILIATION_COLUMNS, rows)


def _dump(data: Any) -> str:
    return json_bytes(data).decode()


def _write_run_json(out: BinaryIO, run: Run, spans: list[tuple[int, int]] | None = None) -> None:
    write_json(out, run, stream=("invoices",), spans=None if spans is None else {"invoices": spans})


def run_json(run: Run) -> str:
    """The whole run as JSON (amounts, prices and quantities as exact decimal strings): the
    text of ``to_jsonable(run)`` (:mod:`lastgang.report.jsonfiles`)."""
    buffer = io.BytesIO()
    _write_run_json(buffer, run)
    return buffer.getvalue().decode()


def reconciliation_json(run: Run) -> str:
    return _dump(run.reconciliation)


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


class RunFiles(dict[str, Path]):
    """The files :func:`write_run_files` wrote, by name, and where each invoice stands in the
    run JSON: ``invoice_spans[k]`` is ``(offset, length)`` of invoice ``k``'s text in that file,
    with the separator before it (:func:`~lastgang.report.jsonfiles.write_json_array`). The
    store keeps each invoice's text on its own by them, so that one invoice of a large run is
    read without the others."""

    invoice_spans: tuple[tuple[int, int], ...] = ()


def write_run_files(
    run: Run,
    out_dir: Path,
    *,
    pdf: bool = True,
    progress: Callable[[str, int, int], None] | None = None,
) -> RunFiles:
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
    written = RunFiles()

    def put(name: str, content: str | bytes) -> None:
        path = out_dir / name
        if isinstance(content, str):
            path.write_text(content, encoding="utf-8")
        else:
            path.write_bytes(content)
        written[name] = path

    def put_by(name: str, write: Callable[[BinaryIO], None]) -> None:
        """A file written piece by piece (a large run's lines and JSON: never whole in memory),
        under its name only once it is whole."""
        path = out_dir / name
        part = out_dir / f"{name}.part"
        try:
            with part.open("wb") as out:
                write(out)
            part.replace(path)
        except BaseException:
            part.unlink(missing_ok=True)
            raise
        written[name] = path

    total = len(run.invoices)
    meter_rows: _MeterRows = {}
    meter_html: _MeterHtml = {}

    def pages() -> Iterator[dict[str, Any]]:
        for k, invoice in enumerate(run.invoices):
            if progress is not None and not pdf:
                progress(f"rendering invoice {invoice.number}", k, total)
            context = _context(invoice, run, meter_rows)
            put(f"{invoice.number}.html", _html_page(context, meter_html))
            yield context

    if pdf:
        # the PDF threads print the first invoices while the next pages are produced
        documents = render_pdfs(pages(), count=total)
        for k, (invoice, document) in enumerate(zip(run.invoices, documents, strict=True)):
            if progress is not None:
                progress(f"rendering invoice {invoice.number}", k, total)
            put(f"{invoice.number}.pdf", document)
    else:
        for _ in pages():
            pass
    if progress is not None:
        progress("writing run files", total, total)
    put_by(names["lines"], lambda out: _write_lines_csv(out, run))
    put_by(names["lines-json"], lambda out: _write_lines_json(out, run))
    spans: list[tuple[int, int]] = []
    put_by(names["run"], lambda out: _write_run_json(out, run, spans))
    written.invoice_spans = tuple(spans)
    put(names["reconciliation-csv"], reconciliation_csv(run))
    put(names["reconciliation-json"], reconciliation_json(run))
    listing = sorted([*(path.name for path in written.values()), names["summary"]])
    put(names["summary"], _dump(summary(run, listing)))
    return written
