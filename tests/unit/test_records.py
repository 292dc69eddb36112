"""record(): frozen dataclass instances without the generated __init__ are the same objects."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

import pytest

from lastgang.billing.invoice import InvoiceLine, MonthRow
from lastgang.pricing import Line, LineKind
from lastgang.records import record, record_of


def _line_fields() -> dict[str, object]:
    return {
        "kind": LineKind.GRID,
        "item": "grid-ht",
        "description": "Grid energy",
        "first_day": date(2025, 1, 1),
        "last_day": date(2025, 12, 31),
        "quantity": Decimal("1234.567"),
        "unit": "kWh",
        "price": Decimal("0.25"),
        "amount": Decimal("308.64"),
        "vat_rate": Decimal("0.20"),
        "meter": None,
        "days_in_month": None,
        "energy_kwh": 1234.5671,
    }


def test_a_record_of_every_field_equals_the_dataclass() -> None:
    values = _line_fields()
    made, plain = record(Line, **values), Line(**values)  # type: ignore[arg-type]
    assert made == plain and hash(made) == hash(plain) and repr(made) == repr(plain)
    assert list(vars(made).items()) == list(vars(plain).items())
    assert type(made) is Line
    with pytest.raises(AttributeError):
        made.item = "other"  # type: ignore[misc]
    row = {
        "month": "2025-01",
        "first_day": date(2025, 1, 1),
        "last_day": date(2025, 1, 31),
        "consumption_kwh": Decimal("1.000"),
        "local_kwh": Decimal("0.250"),
        "grid_kwh": Decimal("0.750"),
        "feed_in_kwh": Decimal("0.000"),
        "substitute_kwh": Decimal("0.000"),
        "local_share_percent": Decimal("25.0"),
    }
    assert vars(record(MonthRow, **row)) == vars(MonthRow(**row))  # type: ignore[arg-type]


def test_fields_left_out_or_in_another_order_go_through_the_dataclass() -> None:
    values = _line_fields()
    del values["days_in_month"]  # a default: filled in as the class does
    made = record(Line, **values)
    assert made.days_in_month is None and made == Line(**values)  # type: ignore[arg-type]
    shuffled = dict(reversed(list(_line_fields().items())))
    assert list(vars(record(Line, **shuffled))) == list(vars(Line(**_line_fields())))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        record(InvoiceLine, **_line_fields())  # no price_unit: refused as the class refuses it


@dataclass(frozen=True)
class _Checked:
    value: int
    double: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        if self.value < 0:
            raise ValueError("negative")
        object.__setattr__(self, "double", 2 * self.value)


def test_classes_whose_init_does_more_are_made_by_it() -> None:
    assert record(_Checked, value=3).double == 6
    with pytest.raises(ValueError, match="negative"):
        record(_Checked, value=-1)


def test_record_of_takes_the_dict_as_the_instance_s_fields() -> None:
    """record_of(cls, values): the same object as cls(**values), the dict taken over as it is
    (a template's copy with the varying fields set)."""
    values = _line_fields()
    made = record_of(Line, values)
    plain = Line(**_line_fields())  # type: ignore[arg-type]
    assert made == plain and hash(made) == hash(plain) and repr(made) == repr(plain)
    assert list(vars(made).items()) == list(vars(plain).items())
    assert vars(made) is values
    with pytest.raises(AttributeError):
        made.item = "other"  # type: ignore[misc]
    shuffled = dict(reversed(list(_line_fields().items())))  # not in field order
    assert list(vars(record_of(Line, shuffled))) == list(vars(plain))
    short = _line_fields()
    del short["days_in_month"]
    assert record_of(Line, short) == plain
    assert record_of(_Checked, {"value": 4}).double == 8
    with pytest.raises(ValueError, match="negative"):
        record_of(_Checked, {"value": -1})
