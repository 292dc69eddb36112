"""Frozen dataclass instances made in bulk.

The ``__init__`` that :func:`dataclasses.dataclass` writes for a frozen class sets every field
through ``object.__setattr__``: about 3 µs for a record of a dozen fields. A billing run of a
site-year makes about 40,000 of them (bill lines, invoice lines, month rows), so the lines of a
run are made by :func:`record` instead: the same object (the same fields in the same order, equal,
same hash and repr), without the per-field calls.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

__all__ = ["record", "record_of"]

T = TypeVar("T")

_FIELDS: dict[type[Any], tuple[str, ...]] = {}


def record(cls: type[T], **values: Any) -> T:
    """``cls(**values)`` for a frozen dataclass without ``__post_init__`` or slots, when
    ``values`` names every field (in field order); otherwise ``cls(**values)`` itself (defaults
    filled in, unknown or missing fields refused as the class does)."""
    return record_of(cls, values)  # the keyword arguments are a fresh dict already


def _plain_fields(cls: type[Any]) -> tuple[str, ...]:
    """The field names of a frozen dataclass whose ``__init__`` only sets them (no
    ``__post_init__``, no slots, no ``init=False`` field); ``()`` for any other class."""
    if not dataclasses.is_dataclass(cls) or not cls.__dataclass_params__.frozen:  # type: ignore[attr-defined]
        return ()
    if hasattr(cls, "__post_init__") or hasattr(cls, "__slots__"):
        return ()
    fields = dataclasses.fields(cls)
    if not all(f.init for f in fields):
        return ()
    return tuple(f.name for f in fields)


def record_of(cls: type[T], values: dict[str, Any]) -> T:
    """``cls(**values)`` for a frozen dataclass that :func:`record` makes directly, ``values``
    naming every field in field order: the dict itself becomes the instance's ``__dict__``
    (hand over a fresh one, e.g. a copy of a template with the varying fields set)."""
    names = _FIELDS.get(cls)
    if names is None:
        names = _FIELDS[cls] = _plain_fields(cls)
    if tuple(values) != names:
        return cls(**values)
    obj = object.__new__(cls)
    object.__setattr__(obj, "__dict__", values)
    return obj
