"""The invoice data model: what a billing run produces, as plain immutable values.

Every invoice document (PDF, HTML), the CSV of lines and the run JSON are rendered from these
dataclasses. :func:`to_jsonable` turns any of them into JSON-ready data: ``Decimal`` amounts,
prices and billed quantities become strings (``"12.30"``, ``"3.600"``) so they stay exact, dates
ISO strings, unrounded energies plain numbers. Nothing here rounds: amounts and quantities arrive
rounded by :mod:`lastgang.money` (the one place that rounds).

Vocabulary (``docs/invoices.md``):

- a **run** bills one site for whole local days ``first_day`` .. ``last_day``; it has a run
  number (unique in the store), a version (1, 2, ... per site and period: billing the same period
  again gives the next version) and a status, ``draft`` or ``final``;
- an **invoice** is one contract period (or vacancy) of one billing unit, numbered
  ``<site>-R<run>-V<version>-<nn>``;
- the **reconciliation** compares the grid connection (HAK) with the sum of the meters behind it.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

__all__ = [
    "DataQuality",
    "Invoice",
    "InvoiceLine",
    "MeterUsed",
    "MonthRow",
    "QualityIssue",
    "ReconciliationReport",
    "ReconciliationRow",
    "Run",
    "RunStatus",
    "VatAmount",
    "invoice_number",
    "to_jsonable",
]

RunStatus = Literal["draft", "final"]


def invoice_number(site_id: str, run: int, version: int, index: int) -> str:
    """``<site>-R<run>-V<version>-<nn>``: site, run number, version of the period, and the
    invoice's place in the run (01, 02, ...). Unique in a store, never reused."""
    return f"{site_id}-R{run}-V{version}-{index:02d}"


@dataclass(frozen=True)
class InvoiceLine:
    """One line of an invoice (see :class:`lastgang.pricing.Line`).

    Energy lines: ``quantity`` kWh with 3 decimals (the unrounded ``energy_kwh`` billed to the
    Wh) x ``price`` per kWh = ``amount``. Base-fee lines: ``quantity`` days of a month of
    ``days_in_month`` days x ``price`` per month. Credits have negative amounts. ``item`` is the
    tariff or fee id (provenance of the price).
    """

    kind: str
    item: str
    description: str
    first_day: date
    last_day: date
    quantity: Decimal
    unit: str
    price: Decimal
    price_unit: str
    amount: Decimal
    vat_rate: Decimal
    meter: str | None = None
    days_in_month: int | None = None
    energy_kwh: float | None = None


@dataclass(frozen=True)
class VatAmount:
    """VAT of one rate: ``vat = rate x net`` rounded to the cent, ``net`` = sum of line amounts."""

    rate: Decimal
    net: Decimal
    vat: Decimal


@dataclass(frozen=True)
class MonthRow:
    """One calendar month (or its part inside the invoice) of an invoice: kWh as billed (3
    decimals) and the share of local energy in percent (1 decimal)."""

    month: str
    first_day: date
    last_day: date
    consumption_kwh: Decimal
    local_kwh: Decimal
    grid_kwh: Decimal
    feed_in_kwh: Decimal
    substitute_kwh: Decimal
    local_share_percent: Decimal | None


@dataclass(frozen=True)
class MeterUsed:
    """A meter whose values an invoice uses, with its metering point IDs (dotted, TOR-4.1), the
    physical meters that measured it in the period (TOR-4.1m), the raw batches its values came
    from (TOR-7.1) and how many quarter hours had which quality (Q-1).

    ``meter_periods`` is filled when more than one physical meter measured in the period (a
    meter exchange, Zählertausch, TOR-7.2.1): for each of ``physical_meters``, the labels (end of
    period, legal time, TOR-4.2) of the first and last quarter hour it measured. It is empty when
    one meter measured the whole period."""

    id: str
    name: str
    role: str
    purpose: str
    virtual: bool
    formula: str | None
    metering_points: tuple[str, ...]
    physical_meters: tuple[str, ...]
    batches: tuple[int, ...]
    quality_slots: Mapping[str, int]
    meter_periods: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class DataQuality:
    """How much of an invoice's energy rests on substitute values (Q-1).

    ``energy_kwh`` is the contract's energy (consumption, and for a producer its production);
    ``substitute_kwh`` the part of it in quarter hours where any value the invoice depends on
    (the unit's meters, the production meters and the balance meter that decide the split) was
    a substitute value (L2 or L3); ``l3_kwh`` the part of that with an L3 value (provisional).
    ``missing_slots`` quarter hours had no value at all and were counted as 0 kWh (drafts only).
    """

    energy_kwh: Decimal
    substitute_kwh: Decimal
    l2_kwh: Decimal
    l3_kwh: Decimal
    missing_slots: int
    statement: str


@dataclass(frozen=True)
class Invoice:
    """One invoice: a billing unit's contract period (or vacancy) within a run."""

    number: str
    site_id: str
    site_name: str
    issuer: str
    timezone: str
    currency: str
    unit_id: str
    unit_name: str
    unit_kind: str
    customer: str
    vacancy: bool
    contract_id: str | None
    first_day: date
    last_day: date
    first_label: str
    last_label: str
    period_label: str
    lines: tuple[InvoiceLine, ...]
    vat: tuple[VatAmount, ...]
    net: Decimal
    vat_total: Decimal
    total: Decimal
    consumption_kwh: Decimal
    local_kwh: Decimal
    grid_kwh: Decimal
    local_share_percent: Decimal | None
    explanation: tuple[str, ...]
    months: tuple[MonthRow, ...]
    meters: tuple[MeterUsed, ...]
    quality: DataQuality
    status: RunStatus = "draft"

    @property
    def draft(self) -> bool:
        return self.status == "draft"


@dataclass(frozen=True)
class ReconciliationRow:
    """One month of the reconciliation: the grid connection (HAK) against the meters behind it.

    ``expected_net_kwh = consumers_kwh - production_kwh`` is what the HAK should register as
    import minus export; ``difference_kwh = grid_net_kwh - expected_net_kwh`` and
    ``difference_percent`` = difference / ``consumers_kwh`` x 100 (of ``grid_import_kwh`` when
    nothing was consumed). ``flagged`` when its absolute value exceeds the threshold.
    """

    month: str
    first_day: date
    last_day: date
    grid_import_kwh: Decimal
    grid_export_kwh: Decimal
    grid_net_kwh: Decimal
    consumers_kwh: Decimal
    production_kwh: Decimal
    expected_net_kwh: Decimal
    difference_kwh: Decimal
    difference_percent: Decimal | None
    flagged: bool
    missing_slots: int


@dataclass(frozen=True)
class ReconciliationReport:
    """The reconciliation of a run: which meters were compared and one row per month."""

    threshold_percent: Decimal
    grid_meters: tuple[str, ...]
    consumer_meters: tuple[str, ...]
    production_meters: tuple[str, ...]
    rows: tuple[ReconciliationRow, ...]
    note: str = ""

    @property
    def flagged(self) -> tuple[ReconciliationRow, ...]:
        return tuple(row for row in self.rows if row.flagged)


@dataclass(frozen=True)
class QualityIssue:
    """A metering location with values a final invoice must not use: L3 or missing (Q-1)."""

    location: str
    name: str
    metering_points: tuple[str, ...]
    l3_slots: int
    missing_slots: int
    first_label: str
    last_label: str

    def counts(self) -> str:
        """``'4 quarter hour(s) with L3 substitute values and 96 quarter hour(s) without a
        value'``."""
        parts = []
        if self.l3_slots:
            parts.append(f"{self.l3_slots} quarter hour(s) with L3 substitute values")
        if self.missing_slots:
            parts.append(f"{self.missing_slots} quarter hour(s) without a value")
        return " and ".join(parts)

    def describe(self) -> str:
        """The whole issue in one sentence: location, metering point IDs, counts, labels."""
        ids = ", ".join(self.metering_points) or "no metering point ID"
        return f"{self.name} ({ids}): {self.counts()}, from {self.first_label} to {self.last_label}"


@dataclass(frozen=True)
class Run:
    """A whole billing run: its invoices, reconciliation and provenance.

    ``inputs`` is the fingerprint of everything the run read (site version, raw batches with
    their SHA-256, tariffs and fees, a digest of the load profiles) and ``fingerprint`` the
    SHA-256 of it. ``batches`` lists, per metering location, the raw batches whose values the
    run used. ``quality_issues`` are the locations a final run refuses (L3, missing).
    """

    site_id: str
    site_name: str
    currency: str
    run: int
    version: int
    status: RunStatus
    created_at: datetime
    first_day: date
    last_day: date
    first_label: str
    last_label: str
    period_label: str
    slots: int
    invoices: tuple[Invoice, ...]
    reconciliation: ReconciliationReport
    net: Decimal
    vat_total: Decimal
    total: Decimal
    batches: tuple[Mapping[str, Any], ...]
    quality_issues: tuple[QualityIssue, ...]
    inputs: Mapping[str, Any] = field(default_factory=dict)
    fingerprint: str = ""

    @property
    def key(self) -> str:
        """``<site>-R<run>-V<version>``: the prefix of the run's file names."""
        return f"{self.site_id}-R{self.run}-V{self.version}"


def to_jsonable(value: Any) -> Any:
    """``value`` as JSON-ready data: dataclasses to dicts (properties left out), ``Decimal`` to
    its exact string, dates and datetimes to ISO strings, enums to their values, tuples to
    lists. Floats stay numbers.

    What to do with a value is decided once per type (:func:`_converter`): a run's JSON has
    millions of values of a dozen types."""
    convert = _CONVERTERS.get(type(value))
    if convert is None:
        convert = _CONVERTERS[type(value)] = _converter(type(value))
    return convert(value)


def _same(value: Any) -> Any:
    return value


def _converter(cls: type) -> Callable[[Any], Any]:
    """How :func:`to_jsonable` turns a value of type ``cls`` (the checks in this order: a
    ``StrEnum`` is a str and stays as it is, a plain ``Enum`` gives its value)."""
    if issubclass(cls, Decimal):
        return str
    if issubclass(cls, bool | int | str) or cls is type(None) or issubclass(cls, float):
        return _same
    if issubclass(cls, enum.Enum):
        return lambda v: to_jsonable(v.value)
    if issubclass(cls, datetime | date):
        return lambda v: v.isoformat()
    if dataclasses.is_dataclass(cls):
        names = tuple(f.name for f in dataclasses.fields(cls))
        return lambda v: {name: to_jsonable(getattr(v, name)) for name in names}
    if issubclass(cls, Mapping):
        return lambda v: {str(k): to_jsonable(x) for k, x in v.items()}
    if issubclass(cls, set | frozenset):
        return lambda v: [to_jsonable(x) for x in sorted(v)]
    if issubclass(cls, list | tuple):
        return lambda v: [to_jsonable(x) for x in v]

    def refuse(value: Any) -> Any:
        raise TypeError(f"cannot turn {type(value).__name__} into JSON")

    return refuse


_CONVERTERS: dict[type, Callable[[Any], Any]] = {}
