"""``to_jsonable``, which writes every run's JSON: each kind of value as the run files expect it
(decided once per type; a type's first value must not decide differently for the next)."""

from __future__ import annotations

import enum
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

import numpy as np
import pytest

from lastgang.billing.invoice import to_jsonable


class Colour(enum.Enum):
    RED = "red"
    NUMBER = 7


class Kind(enum.StrEnum):
    LOCAL = "local"


@dataclass(frozen=True)
class Inner:
    amount: Decimal
    kind: Kind

    @property
    def doubled(self) -> Decimal:  # properties are left out
        return self.amount * 2


@dataclass(frozen=True)
class Outer:
    day: date
    at: datetime
    inner: Inner
    items: tuple[Inner, ...]
    tags: frozenset[str]
    counts: dict[int, float]
    colour: Colour
    note: str | None


def test_every_kind_of_value_and_nesting() -> None:
    inner = Inner(Decimal("1.50"), Kind.LOCAL)
    outer = Outer(
        day=date(2025, 7, 20),
        at=datetime(2025, 7, 20, 8, 45, tzinfo=UTC),
        inner=inner,
        items=(inner, Inner(Decimal("-0.00"), Kind.LOCAL)),
        tags=frozenset({"b", "a", "c"}),
        counts=OrderedDict([(2, 0.5), (1, 1e-05)]),
        colour=Colour.NUMBER,
        note=None,
    )
    assert to_jsonable(outer) == {
        "day": "2025-07-20",
        "at": "2025-07-20T08:45:00+00:00",
        "inner": {"amount": "1.50", "kind": "local"},
        "items": [{"amount": "1.50", "kind": "local"}, {"amount": "-0.00", "kind": "local"}],
        "tags": ["a", "b", "c"],
        "counts": {"2": 0.5, "1": 1e-05},
        "colour": 7,
        "note": None,
    }
    # a StrEnum is a str and stays the enum itself (json writes its value); a plain Enum gives
    # its value, again for a second value of the same type
    assert to_jsonable(Kind.LOCAL) is Kind.LOCAL
    assert to_jsonable(Colour.RED) == "red" and to_jsonable(Colour.NUMBER) == 7
    assert to_jsonable(True) is True and to_jsonable(3) == 3 and to_jsonable(2.5) == 2.5
    assert to_jsonable(np.float64(0.1)) == 0.1  # a float subclass stays a number


def test_values_json_cannot_hold_are_refused_every_time() -> None:
    for _ in range(2):
        with pytest.raises(TypeError, match="cannot turn int64 into JSON"):
            to_jsonable(np.int64(3))
        with pytest.raises(TypeError, match="cannot turn type into JSON"):
            to_jsonable(Inner)  # the class, not an instance
