"""Accuracy classes of billing meters and instrument transformers (Genauigkeitsklassen,
TOR-5.1 / table A3).

Minimum classes per kind of connection (TOR Stromzähler, annex A3)::

    connection                    active    reactive  current transf.  voltage transf.
    lv-direct  low voltage direct 2 or A    3         -                -
    lv-ct      low voltage, CT    1 or B    2         0.5 / 0.5S       -
    mv         medium voltage     1 or B    2         0.5 / 0.5S       0.5
    hv         110 kV and up      0.5 or C  1         0.2 / 0.2S       0.2

A class is written as its number (the limit of error in percent) or, for active energy, as the
MID letter: 2 = A, 1 = B, 0.5 = C. Text is read case-insensitively, with ``.`` or the German
``,`` as decimal mark and an optional space before ``S`` (``0,5 S`` = ``0.5S``). An ``S`` class
(extended current range) meets the requirement of the plain class with the same number, and the
table accepts either (``0.5 / 0.5S``); a class with a smaller number always meets a requirement
with a larger one. Active-energy meters of class 0.5S and 0.2S (IEC 62053-22, the usual classes
of transformer-rated meters) are accepted: 0.5S meets C, 0.2S is better than C.

The functions here are pure; :func:`accuracy_problems` checks one meter of the site configuration.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from fractions import Fraction
from types import MappingProxyType

from lastgang.concept.model import Connection, Meter, Transformer
from lastgang.errors import InvalidInput, Problem

__all__ = [
    "A3",
    "AccuracyClass",
    "AccuracyRequirement",
    "ClassKind",
    "accuracy_problems",
    "compare_accuracy",
    "known_classes",
    "meets_requirement",
    "parse_accuracy_class",
]


class ClassKind(StrEnum):
    """What an accuracy class applies to."""

    ACTIVE = "active energy"  # Wirkenergie
    REACTIVE = "reactive energy"  # Blindenergie
    CT = "current transformer"  # Stromwandler
    VT = "voltage transformer"  # Spannungswandler


_LETTERS = {"A": Fraction(2), "B": Fraction(1), "C": Fraction(1, 2)}
_LETTER_OF = {value: letter for letter, value in _LETTERS.items()}

# The classes each kind can have: (limit of error in percent, S class).
_KNOWN: dict[ClassKind, frozenset[tuple[Fraction, bool]]] = {
    # IEC 62053-21 (2, 1) / MID (A, B, C), IEC 62053-22 (0.5S, 0.2S)
    ClassKind.ACTIVE: frozenset(
        {
            (Fraction(2), False),
            (Fraction(1), False),
            (Fraction(1, 2), False),
            (Fraction(1, 2), True),
            (Fraction(1, 5), True),
        }
    ),
    # IEC 62053-23 (3, 2), IEC 62053-24 (1, 1S, 0.5S)
    ClassKind.REACTIVE: frozenset(
        {
            (Fraction(3), False),
            (Fraction(2), False),
            (Fraction(1), False),
            (Fraction(1), True),
            (Fraction(1, 2), True),
        }
    ),
    # IEC 61869-2 measuring classes
    ClassKind.CT: frozenset(
        {
            (Fraction(5), False),
            (Fraction(3), False),
            (Fraction(1), False),
            (Fraction(1, 2), False),
            (Fraction(1, 2), True),
            (Fraction(1, 5), False),
            (Fraction(1, 5), True),
            (Fraction(1, 10), False),
        }
    ),
    # IEC 61869-3 measuring classes
    ClassKind.VT: frozenset(
        {
            (Fraction(3), False),
            (Fraction(1), False),
            (Fraction(1, 2), False),
            (Fraction(1, 5), False),
            (Fraction(1, 10), False),
        }
    ),
}

_NUMBER_RE = re.compile(r"^(\d+(?:[.,]\d+)?) ?(S?)$", re.ASCII)
_PROTECTION_RE = re.compile(r"^\d+(?:[.,]\d+)? ?P(?:R|X|XR)?(?:\d+)?$", re.ASCII)


def _number(value: Fraction) -> str:
    """0.5 for 1/2, 2 for 2: the way classes are printed."""
    return f"{float(value):g}"


@dataclass(frozen=True)
class AccuracyClass:
    """One accuracy class (Genauigkeitsklasse) of a meter or transformer.

    ``percent`` is the class index (the limit of error in percent, 2 for class 2 = A);
    ``extended`` marks an ``S`` class. Two spellings of one class are equal:
    ``parse_accuracy_class("2") == parse_accuracy_class("a")``.
    """

    kind: ClassKind
    percent: Fraction
    extended: bool = False

    @property
    def label(self) -> str:
        """``1 (B)`` for active energy classes with a MID letter, else ``0.5S``, ``2``, ..."""
        text = _number(self.percent) + ("S" if self.extended else "")
        if self.kind is ClassKind.ACTIVE and not self.extended and self.percent in _LETTER_OF:
            return f"{text} ({_LETTER_OF[self.percent]})"
        return text

    @property
    def rank(self) -> tuple[Fraction, bool]:
        """Sort key from least to most accurate: 2 < 1 < 0.5 < 0.5S < 0.2 < 0.2S < 0.1."""
        return (-self.percent, self.extended)

    def meets(self, required: AccuracyClass) -> bool:
        """True if this class is at least as accurate as ``required`` demands (TOR-5.1/A3):
        its number is not larger. ``S`` or not does not matter (the table accepts both)."""
        if required.kind is not self.kind:
            raise ValueError(f"cannot compare a {self.kind} class with a {required.kind} class")
        return self.percent <= required.percent

    def __str__(self) -> str:
        return self.label


def parse_accuracy_class(text: str, kind: ClassKind = ClassKind.ACTIVE) -> AccuracyClass:
    """Read a class such as ``A``, ``2``, ``0.5``, ``0,5 S``, ``0.2s`` for ``kind``.

    Raises :class:`~lastgang.errors.InvalidInput` for text that is no class of that kind.
    """
    cleaned = text.strip().upper()
    if kind is ClassKind.ACTIVE and cleaned in _LETTERS:
        return AccuracyClass(kind, _LETTERS[cleaned])
    match = _NUMBER_RE.match(cleaned)
    if match is not None:
        number, s = match.groups()
        value = (Fraction(number.replace(",", ".")), s == "S")
        if value in _KNOWN[kind]:
            return AccuracyClass(kind, value[0], value[1])
    reason = f"{kind} class {text!r} is not a known class; use one of {known_classes(kind)}"
    if _PROTECTION_RE.match(cleaned):
        reason += " (this looks like a protection class, which is not for billing)"
    raise InvalidInput(reason, [Problem(reason)])


def known_classes(kind: ClassKind) -> str:
    """The classes of ``kind`` as text, least accurate first: ``2/A, 1/B, 0.5/C, 0.5S, 0.2S``."""
    classes = sorted((AccuracyClass(kind, p, s) for p, s in _KNOWN[kind]), key=lambda c: c.rank)
    names = []
    for cls in classes:
        text = _number(cls.percent) + ("S" if cls.extended else "")
        if kind is ClassKind.ACTIVE and not cls.extended and cls.percent in _LETTER_OF:
            text += f"/{_LETTER_OF[cls.percent]}"
        names.append(text)
    return ", ".join(names)


def compare_accuracy(a: str, b: str, kind: ClassKind = ClassKind.ACTIVE) -> int:
    """-1 if class ``a`` is less accurate than ``b``, 0 if they are the same class, 1 if more.

    >>> compare_accuracy("A", "1"), compare_accuracy("2", "a"), compare_accuracy("C", "B")
    (-1, 0, 1)
    """
    ra = parse_accuracy_class(a, kind).rank
    rb = parse_accuracy_class(b, kind).rank
    return (ra > rb) - (ra < rb)


def meets_requirement(actual: str, required: str, kind: ClassKind = ClassKind.ACTIVE) -> bool:
    """True if class ``actual`` meets the minimum class ``required`` (both as text)."""
    return parse_accuracy_class(actual, kind).meets(parse_accuracy_class(required, kind))


@dataclass(frozen=True)
class AccuracyRequirement:
    """One row of table A3: the minimum classes for one kind of connection."""

    connection: Connection
    description: str
    active: AccuracyClass
    reactive: AccuracyClass
    ct: AccuracyClass | None
    vt: AccuracyClass | None


def _req(
    connection: Connection, description: str, active: str, reactive: str, ct: str, vt: str
) -> AccuracyRequirement:
    return AccuracyRequirement(
        connection=connection,
        description=description,
        active=parse_accuracy_class(active, ClassKind.ACTIVE),
        reactive=parse_accuracy_class(reactive, ClassKind.REACTIVE),
        ct=parse_accuracy_class(ct, ClassKind.CT) if ct else None,
        vt=parse_accuracy_class(vt, ClassKind.VT) if vt else None,
    )


#: TOR-5.1 / table A3: minimum accuracy classes of billing meters per connection
A3: Mapping[Connection, AccuracyRequirement] = MappingProxyType(
    {
        r.connection: r
        for r in (
            _req(Connection.LV_DIRECT, "a low-voltage direct connection", "2", "3", "", ""),
            _req(Connection.LV_CT, "a low-voltage CT-rated connection", "1", "2", "0.5", ""),
            _req(Connection.MV, "a medium-voltage connection", "1", "2", "0.5", "0.5"),
            _req(
                Connection.HV, "a high-voltage connection (110 kV and up)", "0.5", "1", "0.2", "0.2"
            ),
        )
    }
)


def _required_text(required: AccuracyClass) -> str:
    """How A3 writes a requirement: ``1 (B)``, and both plain and S class for transformers."""
    if required.kind is ClassKind.CT:
        number = _number(required.percent)
        return f"{number} / {number}S"
    return required.label


def accuracy_problems(meter: Meter) -> list[str]:
    """Every requirement of TOR-5.1 / table A3 that ``meter`` misses for its ``connection``.

    Checks the active energy class, the reactive energy class (only if the meter has one), the
    current transformer (required for ``lv-ct``, ``mv`` and ``hv``) and the voltage transformer
    (required for ``mv`` and ``hv``). A transformer where the connection has none (a CT on an
    ``lv-direct`` meter, a VT on a low-voltage meter) is reported too, since the connection then
    understates the requirements. Unknown class text is a problem. Empty when the meter complies.
    """
    req = A3[meter.connection]
    name = f"meter {meter.key} ({meter.connection.value})"
    where = f"TOR-5.1/A3 for {req.description}"
    problems: list[str] = []

    def check(text: str, kind: ClassKind, required: AccuracyClass, field: str) -> None:
        try:
            have = parse_accuracy_class(text, kind)
        except InvalidInput:
            problems.append(
                f"{name}: {kind} class {text!r} ({field}) is not a known class; "
                f"use one of {known_classes(kind)}"
            )
            return
        if not have.meets(required):
            problems.append(
                f"{name}: {kind} class {have.label} is below the minimum "
                f"{_required_text(required)} of {where}; use class "
                f"{_required_text(required)} or better"
            )

    check(meter.accuracy_class, ClassKind.ACTIVE, req.active, "accuracy_class")
    if meter.reactive_class is not None:
        check(meter.reactive_class, ClassKind.REACTIVE, req.reactive, "reactive_class")

    for kind, transformer, required, field in (
        (ClassKind.CT, meter.ct, req.ct, "ct"),
        (ClassKind.VT, meter.vt, req.vt, "vt"),
    ):
        problems.extend(
            _transformer_problems(
                name, meter.connection.value, where, kind, transformer, required, field
            )
        )
        if required is not None and transformer is not None and transformer.accuracy_class:
            check(transformer.accuracy_class, kind, required, f"{field}.accuracy_class")
    return problems


def _transformer_problems(
    name: str,
    connection: str,
    where: str,
    kind: ClassKind,
    transformer: Transformer | None,
    required: AccuracyClass | None,
    field: str,
) -> list[str]:
    """Presence of a transformer and a stated class (the class itself is checked elsewhere)."""
    if required is None:
        if transformer is None:
            return []
        needs = "'lv-ct', 'mv' or 'hv'" if kind is ClassKind.CT else "'mv' or 'hv'"
        return [
            f"{name}: has a {kind} ({field}), but a {connection} connection has none; a meter "
            f"behind a {kind} is connected {needs}: set connection accordingly (TOR-5.1/A3 "
            "then requires stricter classes)"
        ]
    if transformer is None:
        return [
            f"{name}: no {kind} is configured, but {where} needs one of class "
            f"{_required_text(required)} or better; add {field} with its ratio and accuracy_class"
        ]
    if not transformer.accuracy_class:
        return [
            f"{name}: the {kind} has no accuracy class; {where} requires "
            f"{_required_text(required)} or better; set {field}.accuracy_class"
        ]
    return []
