"""Billing runs: load profiles -> concept -> allocation -> pricing -> invoices (pure).

- :mod:`lastgang.billing.run`: :func:`bill_site_period`, the pure computation of one site and
  period, with the reconciliation and the Q-1 check of final runs;
- :mod:`lastgang.billing.invoice`: the invoice data model (immutable dataclasses, JSON-ready).

Storing, numbering and rendering are at the edges: :mod:`lastgang.billing_service`,
:mod:`lastgang.store.runs`, :mod:`lastgang.report.invoice`. See ``docs/invoices.md``.
"""

from lastgang.billing.invoice import Invoice, ReconciliationReport, Run, to_jsonable
from lastgang.billing.run import (
    DEFAULT_THRESHOLD_PERCENT,
    FinalRefused,
    RunInputs,
    bill_site_period,
    compute_period,
    make_run,
    reconcile,
)

__all__ = [
    "DEFAULT_THRESHOLD_PERCENT",
    "FinalRefused",
    "Invoice",
    "ReconciliationReport",
    "Run",
    "RunInputs",
    "bill_site_period",
    "compute_period",
    "make_run",
    "reconcile",
    "to_jsonable",
]
