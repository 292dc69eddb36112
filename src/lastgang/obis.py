"""OBIS codes (OBIS-Kennzahlen, TOR-4.3) and market meter codes.

An OBIS code ``A-B:C.D.E*F`` names what a value is (IEC 62056-61):

- **A** medium: 1 = electricity (0 = abstract objects such as the clock).
- **B** channel: 0 on a meter display, 1 in market data (``1-1:1.29.0``).
- **C** quantity: 1 active import (A+), 2 active export (A-), 3/4 reactive R+/R-, 5-8 reactive
  quadrants, 9/10 apparent; 21-40, 41-60, 61-80 the same per phase L1, L2, L3 (``C - 20``,
  ``C - 40``, ``C - 60``), so 21/41/61 is per-phase A+, 31/51/71 current, 32/52/72 voltage;
  13 power factor, 14 frequency, 16 signed active power (A+ - A-).
- **D** processing: 7 instantaneous, 8 register (time integral since the start, Zählwerk),
  9 energy in a period, 29 load-profile interval (Lastgang), 6 maximum demand.
- **E** tariff: 0 = total, 1 = tariff 1 (HT), 2 = tariff 2 (NT), ...
- **F** billing period (Vorwert): 255 = current.

:func:`parse_obis` accepts ``A-B:C.D.E*F``, ``A-B:C.D.E``, ``C.D.E`` and ``C.D.E*F``; the short
forms mean A = 1, B = 0, and a missing F means 255. Some meters print ``&`` instead of ``*``
before F; both are accepted. Letter abbreviations of a display (``C.1.0``, ``F.F``) are not.

A *meter code* of the Austrian market messages is an OBIS code followed by a suffix, e.g.
``1-1:1.9.0 G.01`` (EC-2); :func:`parse_meter_code` reads it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import Enum, IntEnum
from typing import Literal

from lastgang.errors import InvalidObis, Problem

__all__ = [
    "ACTIVE_POWER_EXPORT",
    "ACTIVE_POWER_IMPORT",
    "CURRENT",
    "EXPORT_REGISTER",
    "EXPORT_REGISTER_T1",
    "EXPORT_REGISTER_T2",
    "FREQUENCY",
    "IMPORT_REGISTER",
    "IMPORT_REGISTER_T1",
    "IMPORT_REGISTER_T2",
    "INTERVAL_EXPORT",
    "INTERVAL_IMPORT",
    "KNOWN_METER_CODE_SUFFIXES",
    "PERIOD_EXPORT",
    "PERIOD_IMPORT",
    "PHASE_POWER_EXPORT",
    "PHASE_POWER_IMPORT",
    "PHASE_POWER_SIGNED",
    "POWER_FACTOR",
    "REACTIVE_EXPORT_REGISTER",
    "REACTIVE_IMPORT_REGISTER",
    "SIGNED_ACTIVE_POWER",
    "VOLTAGE",
    "Direction",
    "MeterCode",
    "ObisCode",
    "Processing",
    "Quantity",
    "parse_meter_code",
    "parse_obis",
]

Direction = Literal["import", "export"]
Phase = Literal[1, 2, 3]


class Quantity(Enum):
    """What an electricity OBIS code measures (value group C, phase taken out).

    The value is the symbol used on meters and in TOR documents. The per-phase codes (C = 21-80)
    map to the same member as the total with :attr:`ObisCode.phase` set, so ``1-0:21.7.0`` is
    ``ACTIVE_IMPORT`` on phase 1.
    """

    ACTIVE_IMPORT = "A+"  # Wirkenergie/-leistung Bezug
    ACTIVE_EXPORT = "A-"  # Wirkenergie/-leistung Lieferung
    REACTIVE_IMPORT = "R+"  # Blindenergie Bezug
    REACTIVE_EXPORT = "R-"  # Blindenergie Lieferung
    REACTIVE_Q1 = "Q1"
    REACTIVE_Q2 = "Q2"
    REACTIVE_Q3 = "Q3"
    REACTIVE_Q4 = "Q4"
    APPARENT_IMPORT = "S+"
    APPARENT_EXPORT = "S-"
    CURRENT = "I"
    VOLTAGE = "U"
    POWER_FACTOR = "PF"
    FREQUENCY = "f"
    ACTIVE_ABSOLUTE = "|A|"  # |A+| + |A-|
    ACTIVE_SIGNED = "A+-A-"  # signed sum, positive = import (phase balancing, TOR-5.0b)
    NEUTRAL_CURRENT = "IN"
    OTHER = "other"


class Processing(IntEnum):
    """How a value is processed (value group D)."""

    OTHER = -1
    MAXIMUM = 6  # maximum demand in the billing period (Maximum)
    INSTANTANEOUS = 7  # Momentanwert
    REGISTER = 8  # time integral since the start (Zählerstand)
    PERIOD_ENERGY = 9  # energy in a period (e.g. 15 minutes in market messages)
    INTERVAL = 29  # load-profile interval energy (Lastgang)

    @classmethod
    def of(cls, d: int) -> Processing:
        return cls(d) if d in _PROCESSING_VALUES else cls.OTHER


_PROCESSING_VALUES = frozenset(p.value for p in Processing if p is not Processing.OTHER)

# C (within one phase block, 1..16) -> quantity
_BLOCK: dict[int, Quantity] = {
    1: Quantity.ACTIVE_IMPORT,
    2: Quantity.ACTIVE_EXPORT,
    3: Quantity.REACTIVE_IMPORT,
    4: Quantity.REACTIVE_EXPORT,
    5: Quantity.REACTIVE_Q1,
    6: Quantity.REACTIVE_Q2,
    7: Quantity.REACTIVE_Q3,
    8: Quantity.REACTIVE_Q4,
    9: Quantity.APPARENT_IMPORT,
    10: Quantity.APPARENT_EXPORT,
    11: Quantity.CURRENT,
    12: Quantity.VOLTAGE,
    13: Quantity.POWER_FACTOR,
    14: Quantity.FREQUENCY,
    15: Quantity.ACTIVE_ABSOLUTE,
    16: Quantity.ACTIVE_SIGNED,
}

# Quadrants are counted to the active direction they belong to: Q1 and Q4 carry active import,
# Q2 and Q3 active export.
_DIRECTION: dict[Quantity, Direction] = {
    Quantity.ACTIVE_IMPORT: "import",
    Quantity.ACTIVE_EXPORT: "export",
    Quantity.REACTIVE_IMPORT: "import",
    Quantity.REACTIVE_EXPORT: "export",
    Quantity.REACTIVE_Q1: "import",
    Quantity.REACTIVE_Q2: "export",
    Quantity.REACTIVE_Q3: "export",
    Quantity.REACTIVE_Q4: "import",
    Quantity.APPARENT_IMPORT: "import",
    Quantity.APPARENT_EXPORT: "export",
}

_NAMES: dict[Quantity, tuple[str, str | None]] = {
    # quantity -> (name, unit family) where the family picks "energy"/"power" by D
    Quantity.ACTIVE_IMPORT: ("active {} import (A+)", "e"),
    Quantity.ACTIVE_EXPORT: ("active {} export (A-)", "e"),
    Quantity.REACTIVE_IMPORT: ("reactive {} import (R+)", "e"),
    Quantity.REACTIVE_EXPORT: ("reactive {} export (R-)", "e"),
    Quantity.REACTIVE_Q1: ("reactive {} quadrant I (Q1)", "e"),
    Quantity.REACTIVE_Q2: ("reactive {} quadrant II (Q2)", "e"),
    Quantity.REACTIVE_Q3: ("reactive {} quadrant III (Q3)", "e"),
    Quantity.REACTIVE_Q4: ("reactive {} quadrant IV (Q4)", "e"),
    Quantity.APPARENT_IMPORT: ("apparent {} import (S+)", "e"),
    Quantity.APPARENT_EXPORT: ("apparent {} export (S-)", "e"),
    Quantity.CURRENT: ("current", None),
    Quantity.VOLTAGE: ("voltage", None),
    Quantity.POWER_FACTOR: ("power factor", None),
    Quantity.FREQUENCY: ("frequency", None),
    Quantity.ACTIVE_ABSOLUTE: ("absolute active {} (|A+| + |A-|)", "e"),
    Quantity.ACTIVE_SIGNED: ("signed active {} (A+ - A-)", "e"),
    Quantity.NEUTRAL_CURRENT: ("neutral current", None),
}

_PROCESSING_TEXT = {
    Processing.MAXIMUM: "maximum demand",
    Processing.INSTANTANEOUS: "instantaneous",
    Processing.REGISTER: "register",
    Processing.PERIOD_ENERGY: "energy in period",
    Processing.INTERVAL: "load-profile interval",
}

_ENERGY_PROCESSING = frozenset({Processing.REGISTER, Processing.PERIOD_ENERGY, Processing.INTERVAL})
_TARIFF_PROCESSING = _ENERGY_PROCESSING | {Processing.MAXIMUM}


@dataclass(frozen=True, order=True)
class ObisCode:
    """An OBIS code ``A-B:C.D.E*F`` (each group 0-255). Build one with :func:`parse_obis`."""

    a: int
    b: int
    c: int
    d: int
    e: int
    f: int = 255

    def __post_init__(self) -> None:
        problems = [
            Problem(f"group {name} = {value!r} is not a number from 0 to 255")
            for name, value in zip("ABCDEF", self.groups, strict=True)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 255
        ]
        if problems:
            raise InvalidObis(f"invalid OBIS code {self.groups!r}", problems)

    @property
    def groups(self) -> tuple[int, int, int, int, int, int]:
        return (self.a, self.b, self.c, self.d, self.e, self.f)

    def format(self, full: bool = False) -> str:
        """``1-0:1.8.0``; ``full`` always adds F (``1-0:1.8.0*255``). F other than 255 is always
        written, so the short form loses nothing."""
        text = f"{self.a}-{self.b}:{self.c}.{self.d}.{self.e}"
        return f"{text}*{self.f}" if full or self.f != 255 else text

    def __str__(self) -> str:
        return self.format()

    # --- meaning for electricity (A = 1) --------------------------------------------------

    @property
    def is_electricity(self) -> bool:
        return self.a == 1

    @property
    def quantity(self) -> Quantity:
        """What is measured (C without its phase); ``OTHER`` for anything not in the table."""
        if not self.is_electricity:
            return Quantity.OTHER
        if 1 <= self.c <= 80:
            return _BLOCK.get((self.c - 1) % 20 + 1, Quantity.OTHER)
        if self.c == 91:
            return Quantity.NEUTRAL_CURRENT
        return Quantity.OTHER

    @property
    def phase(self) -> Phase | None:
        """1, 2 or 3 for the per-phase codes (C = 21-80), else None (total or not a phase)."""
        if not self.is_electricity or self.quantity is Quantity.OTHER or not 21 <= self.c <= 80:
            return None
        phase = (self.c - 1) // 20
        return 1 if phase == 1 else 2 if phase == 2 else 3

    @property
    def direction(self) -> Direction | None:
        """``"import"`` (Bezug) or ``"export"`` (Lieferung), None for quantities without one."""
        return _DIRECTION.get(self.quantity)

    @property
    def processing(self) -> Processing:
        if not self.is_electricity:
            return Processing.OTHER
        return Processing.of(self.d)

    @property
    def tariff(self) -> int:
        """Value group E: the tariff register (0 = total, 1 = tariff 1, ...)."""
        return self.e

    @property
    def is_register(self) -> bool:
        """A cumulative register (D = 8): consecutive values are subtracted."""
        return self.processing is Processing.REGISTER

    @property
    def is_interval(self) -> bool:
        """Energy of one period (D = 29 load profile or D = 9 period energy): values are summed,
        never subtracted."""
        return self.processing in (Processing.INTERVAL, Processing.PERIOD_ENERGY)

    @property
    def is_instantaneous(self) -> bool:
        """An instantaneous value (D = 7), such as a phase power."""
        return self.processing is Processing.INSTANTANEOUS

    @property
    def description(self) -> str:
        """English text, e.g. ``active energy import (A+), register, tariff 1``."""
        quantity = self.quantity
        if quantity is Quantity.OTHER:
            medium = "electricity" if self.is_electricity else f"medium {self.a}"
            return f"OBIS {self.format()} ({medium}), no meaning known to lastgang"
        name, family = _NAMES[quantity]
        processing = self.processing
        if family is not None:
            name = name.format("energy" if processing in _ENERGY_PROCESSING else "power")
        if self.phase is not None:
            name = f"{name} L{self.phase}"
        parts = [name, _PROCESSING_TEXT.get(processing, f"processing D={self.d}")]
        if processing in _TARIFF_PROCESSING:
            parts.append("total" if self.e == 0 else f"tariff {self.e}")
        elif self.e != 0:
            parts.append(f"E={self.e}")
        if self.b != 0:
            parts.append(f"channel {self.b}")
        if self.f != 255:
            parts.append(f"billing period {self.f}")
        return ", ".join(parts)


_GROUP = r"(\d{1,3})"
_OBIS_RE = re.compile(
    rf"^(?:{_GROUP}-{_GROUP}:)?{_GROUP}\.{_GROUP}\.{_GROUP}(?:[*&]{_GROUP})?$", re.ASCII
)
_FORMS = "A-B:C.D.E*F, A-B:C.D.E, C.D.E or C.D.E*F (e.g. 1-0:1.8.0, 1.8.0, 1-0:1.8.0*255)"


def parse_obis(text: str) -> ObisCode:
    """Parse an OBIS code; surrounding whitespace is ignored.

    >>> parse_obis("1.8.1")
    ObisCode(a=1, b=0, c=1, d=8, e=1, f=255)

    Raises :class:`~lastgang.errors.InvalidObis` for anything else.
    """
    stripped = text.strip()
    match = _OBIS_RE.match(stripped)
    if match is None:
        reason = f"OBIS code {text!r} is not in the form {_FORMS}"
        if stripped.count(".") == 1:
            reason += "; value group E (tariff, 0 = total) is missing"
        raise InvalidObis(f"invalid OBIS code {text!r}", [Problem(reason)])
    a, b, c, d, e, f = match.groups()
    values = [
        1 if a is None else int(a),
        0 if b is None else int(b),
        int(c),
        int(d),
        int(e),
        255 if f is None else int(f),
    ]
    problems = [
        Problem(f"OBIS code {text!r}: group {name} = {value} is out of range 0-255")
        for name, value in zip("ABCDEF", values, strict=True)
        if value > 255
    ]
    if problems:
        raise InvalidObis(f"invalid OBIS code {text!r}", problems)
    return ObisCode(*values)


# --- market meter codes ---------------------------------------------------------------------

#: meter code suffixes of Austrian market messages that lastgang knows (EC-2)
KNOWN_METER_CODE_SUFFIXES: dict[tuple[str, str], str] = {
    ("1-1:1.9.0", "G.01"): "consumption",
    ("1-1:2.9.0", "G.03"): "energy received from the energy community",
    ("1-1:2.9.0", "P.01"): "surplus (production not taken by the community)",
}

_METER_CODE_RE = re.compile(r"^(\S+)(?:\s+([A-Z0-9][A-Z0-9.]*))?$", re.ASCII)


@dataclass(frozen=True)
class MeterCode:
    """A market meter code: an OBIS code with an optional suffix, e.g. ``1-1:1.9.0 G.01``."""

    text: str = field(compare=False)  # as written in the source, for messages and provenance
    obis: ObisCode
    suffix: str | None = None

    @property
    def canonical(self) -> str:
        """``1-1:1.9.0 G.01``: the OBIS code in its short form, one space, the suffix."""
        return str(self.obis) if self.suffix is None else f"{self.obis} {self.suffix}"

    @property
    def meaning(self) -> str | None:
        """What the market message means with this code (EC-2), if lastgang knows it."""
        if self.suffix is None:
            return None
        return KNOWN_METER_CODE_SUFFIXES.get((str(self.obis), self.suffix))

    def __str__(self) -> str:
        return self.canonical


def parse_meter_code(text: str) -> MeterCode:
    """Parse a meter code such as ``1-1:1.9.0 G.01`` (OBIS code, whitespace, suffix of capital
    letters, digits and dots) or a bare OBIS code. The original text is kept in ``.text``.

    Raises :class:`~lastgang.errors.InvalidObis` if the OBIS part or the suffix is malformed.
    """
    match = _METER_CODE_RE.match(text.strip())
    if match is None:
        reason = (
            f"meter code {text!r} is not an OBIS code followed by an optional suffix "
            "(capital letters, digits and dots), e.g. '1-1:1.9.0 G.01'"
        )
        raise InvalidObis(f"invalid meter code {text!r}", [Problem(reason)])
    obis_text, suffix = match.groups()
    try:
        obis = parse_obis(obis_text)
    except InvalidObis as exc:
        raise InvalidObis(f"meter code {text!r}: {exc.message}", exc.problems) from exc
    return MeterCode(text=text, obis=obis, suffix=suffix)


# --- codes the system uses ------------------------------------------------------------------

#: active energy import register (A+, Zählerstand Bezug), total
IMPORT_REGISTER = ObisCode(1, 0, 1, 8, 0)
#: active energy export register (A-, Zählerstand Lieferung), total
EXPORT_REGISTER = ObisCode(1, 0, 2, 8, 0)
IMPORT_REGISTER_T1 = ObisCode(1, 0, 1, 8, 1)
IMPORT_REGISTER_T2 = ObisCode(1, 0, 1, 8, 2)
EXPORT_REGISTER_T1 = ObisCode(1, 0, 2, 8, 1)
EXPORT_REGISTER_T2 = ObisCode(1, 0, 2, 8, 2)
REACTIVE_IMPORT_REGISTER = ObisCode(1, 0, 3, 8, 0)
REACTIVE_EXPORT_REGISTER = ObisCode(1, 0, 4, 8, 0)
#: instantaneous active power, import and export, all phases
ACTIVE_POWER_IMPORT = ObisCode(1, 0, 1, 7, 0)
ACTIVE_POWER_EXPORT = ObisCode(1, 0, 2, 7, 0)
#: signed instantaneous active power, sum of the phases (positive = import)
SIGNED_ACTIVE_POWER = ObisCode(1, 0, 16, 7, 0)
#: per-phase instantaneous active power, index 0 = L1 (21.7.0, 41.7.0, 61.7.0)
PHASE_POWER_IMPORT = (ObisCode(1, 0, 21, 7, 0), ObisCode(1, 0, 41, 7, 0), ObisCode(1, 0, 61, 7, 0))
#: (22.7.0, 42.7.0, 62.7.0)
PHASE_POWER_EXPORT = (ObisCode(1, 0, 22, 7, 0), ObisCode(1, 0, 42, 7, 0), ObisCode(1, 0, 62, 7, 0))
#: signed per-phase active power for phase balancing, TOR-5.0b (36.7.0, 56.7.0, 76.7.0)
PHASE_POWER_SIGNED = (ObisCode(1, 0, 36, 7, 0), ObisCode(1, 0, 56, 7, 0), ObisCode(1, 0, 76, 7, 0))
#: per-phase current (31.7.0, 51.7.0, 71.7.0)
CURRENT = (ObisCode(1, 0, 31, 7, 0), ObisCode(1, 0, 51, 7, 0), ObisCode(1, 0, 71, 7, 0))
#: per-phase voltage (32.7.0, 52.7.0, 72.7.0)
VOLTAGE = (ObisCode(1, 0, 32, 7, 0), ObisCode(1, 0, 52, 7, 0), ObisCode(1, 0, 72, 7, 0))
POWER_FACTOR = ObisCode(1, 0, 13, 7, 0)
FREQUENCY = ObisCode(1, 0, 14, 7, 0)
#: 15-minute load-profile energy in market data (Lastgang), import and export
INTERVAL_IMPORT = ObisCode(1, 1, 1, 29, 0)
INTERVAL_EXPORT = ObisCode(1, 1, 2, 29, 0)
#: energy per period in market messages (ConsumptionRecord, EC-2)
PERIOD_IMPORT = ObisCode(1, 1, 1, 9, 0)
PERIOD_EXPORT = ObisCode(1, 1, 2, 9, 0)
