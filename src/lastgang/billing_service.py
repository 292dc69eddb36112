"""Billing use-cases for the CLI (and later an API): bill a site for a period, list runs.

:func:`bill` loads the site's latest configuration and its load profiles from the store, runs the
pure billing computation (:mod:`lastgang.billing.run`), writes the invoices (PDF and HTML from
one template), the CSV and JSON of all lines, the reconciliation and the run summary
(:mod:`lastgang.report.invoice`), and stores the run with its inputs' fingerprint, its JSON and
every file it wrote (:mod:`lastgang.store.runs`). Runs are never changed: billing the same period
again stores its next version.

A run is a draft unless ``final=True``; a final run is refused
(:class:`~lastgang.billing.run.FinalRefused`, exit code 1) while a value it depends on is L3 or
missing (Q-1), and nothing is written or stored then. See ``docs/invoices.md``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

from lastgang.billing.invoice import Run, to_jsonable
from lastgang.billing.run import (
    DEFAULT_THRESHOLD_PERCENT,
    RunInputs,
    compute_period,
    make_run,
    used_batches,
)
from lastgang.errors import InvalidInput
from lastgang.report.invoice import write_run_files
from lastgang.store import Store
from lastgang.store.runs import InvoiceEntry, RunRecord, RunStore
from lastgang.timegrid import period_slots

__all__ = [
    "DEFAULT_OUT",
    "BillResult",
    "bill",
    "list_runs",
    "parse_threshold",
]

Progress = Callable[[str, int, int], None]
"""``progress(what, done, total)``: called while a run is computed and rendered."""

#: folder under which a run's files go when no ``--out`` is given (one subfolder per run)
DEFAULT_OUT = Path("bills")


@dataclass(frozen=True)
class BillResult:
    """What :func:`bill` did: the run, its stored record and the files written."""

    run: Run
    record: RunRecord
    out_dir: Path
    files: dict[str, Path]


def parse_threshold(text: str | float | Decimal) -> Decimal:
    """A reconciliation threshold in percent (``"1"``, ``"0.5"``); :class:`InvalidInput` when it
    is not a non-negative number."""
    try:
        value = Decimal(str(text).strip().rstrip("%").strip())
    except InvalidOperation:
        raise InvalidInput(
            f"threshold {text!r} is not a number: give a percentage such as 1 or 0.5"
        ) from None
    if not value.is_finite() or value < 0:
        raise InvalidInput(f"threshold {text!r} must be a percentage of 0 or more, such as 1")
    return value


def bill(
    store: Store,
    site_id: str,
    first_day: date,
    last_day: date,
    *,
    out_dir: Path | None = None,
    final: bool = False,
    threshold_percent: Decimal = DEFAULT_THRESHOLD_PERCENT,
    pdf: bool = True,
    now: datetime | None = None,
    progress: Progress | None = None,
) -> BillResult:
    """Bill ``site_id`` for the local days ``first_day`` .. ``last_day`` (inclusive).

    Uses the site's latest configuration version and the stored load profiles of all its
    locations. Writes the run's files into ``out_dir`` (default ``bills/<site>-R<run>-V<version>``;
    existing files are never overwritten) and stores the run. Raises
    :class:`~lastgang.errors.InvalidInput` for a bad period or input that cannot be billed,
    :class:`~lastgang.billing.run.FinalRefused` for a final run over L3 or missing values, and
    :class:`~lastgang.errors.StoreError` for an unknown site or a store that refuses."""
    if last_day < first_day:
        raise InvalidInput(f"the period {first_day} to {last_day} ends before it starts")

    def report(what: str, done: int, total: int) -> None:
        if progress is not None:
            progress(what, done, total)

    version = store.site_version(site_id)
    site = version.site
    runs = RunStore(store)
    run_no, run_version = runs.next_numbers(site_id, first_day, last_day)
    start, stop = period_slots(first_day, last_day, site.site.timezone)
    report("loading load profiles", 0, 1)
    profiles = store.load_profiles(site_id, [loc.id for loc in site.locations], start, stop)
    report("loading load profiles", 1, 1)
    result = compute_period(site, profiles, first_day, last_day, progress=progress)
    # the facts of the batches the run read, not of the whole archive (a listener archives a
    # batch a minute)
    batches = {
        b.batch: {
            "sha256": b.sha256,
            "source": b.source,
            "format": b.format,
            "imported_at": b.imported_at.isoformat(),
        }
        for b in store.batches_numbered(site_id, used_batches(result))
    }
    run = make_run(
        result,
        run=run_no,
        version=run_version,
        status="final" if final else "draft",
        created_at=now or datetime.now(UTC),
        threshold_percent=threshold_percent,
        inputs=RunInputs(
            site_version=version.version,
            site_sha256=hashlib.sha256(version.text.encode("utf-8")).hexdigest(),
            batches=batches,
        ),
    )
    target = Path(out_dir) if out_dir is not None else DEFAULT_OUT / run.key
    files = write_run_files(run, target, pdf=pdf, progress=progress)
    try:
        report("storing the run", 0, 1)
        outputs = {path.name: path.read_bytes() for path in files.values()}
        record = runs.add(
            run=run.run,
            site_id=run.site_id,
            first_day=run.first_day,
            last_day=run.last_day,
            version=run.version,
            status=run.status,
            created_at=run.created_at,
            site_version=version.version,
            fingerprint=run.fingerprint,
            inputs_json=json.dumps(to_jsonable(run.inputs), sort_keys=True),
            run_json=None,  # the run's JSON file among the outputs, stored once
            invoices=len(run.invoices),
            currency=run.currency,
            net=run.net,
            vat=run.vat_total,
            total=run.total,
            outputs=outputs,
            invoice_entries=[
                InvoiceEntry(
                    number=invoice.number,
                    unit_id=invoice.unit_id,
                    unit_name=invoice.unit_name,
                    customer=invoice.customer,
                    status=invoice.status,
                    first_day=invoice.first_day,
                    last_day=invoice.last_day,
                    consumption_kwh=invoice.consumption_kwh,
                    local_kwh=invoice.local_kwh,
                    grid_kwh=invoice.grid_kwh,
                    total=invoice.total,
                    currency=invoice.currency,
                    at=at,
                    length=length,
                )
                for invoice, (at, length) in zip(run.invoices, files.invoice_spans, strict=True)
            ],
        )
        report("storing the run", 1, 1)
    except BaseException:
        for path in files.values():  # a run that is not stored leaves no files behind
            path.unlink(missing_ok=True)
        raise
    return BillResult(run=run, record=record, out_dir=target, files=files)


def list_runs(store: Store, site_id: str | None = None) -> list[RunRecord]:
    """The stored runs (of one site), oldest first. ``StoreError`` for an unknown site."""
    if site_id is not None:
        store.site_version(site_id)
    return RunStore(store).runs(site_id)
