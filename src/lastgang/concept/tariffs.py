"""Tariffs, base fees, contracts and billing settings of a site configuration (SM-6).

These are plain pydantic models read from the site TOML (sections ``[[tariffs]]``, ``[[fees]]``,
``[[contracts]]`` and ``[billing]``). Whole-site checks (holes and overlaps of tariffs, overlapping
contracts) live in :mod:`lastgang.pricing`; the format is described in ``docs/billing.md``.

Dates are local calendar days of the site and **inclusive** at both ends: a tariff with
``valid_to = 2024-12-31`` applies up to 24:00 on 31 December, a contract with ``end = 2024-01-10``
(move-out day) is billed for the whole 10 January.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Any, NamedTuple

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    field_validator,
    model_validator,
)

__all__ = [
    "WEEKDAY_NAMES",
    "AllocationKey",
    "BillingSettings",
    "Contract",
    "Fee",
    "SourceOrder",
    "Tariff",
    "TariffKey",
    "TariffKind",
    "TimeWindow",
    "format_minute",
    "parse_weekdays",
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


#: weekday names as printed, index = ``date.weekday()`` (Monday = 0)
WEEKDAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")

_DAY_ALIASES: dict[str, int] = {}
for _i, _names in enumerate(
    [
        ("mon", "monday", "mo", "montag"),
        ("tue", "tuesday", "di", "dienstag"),
        ("wed", "wednesday", "mi", "mittwoch"),
        ("thu", "thursday", "do", "donnerstag"),
        ("fri", "friday", "fr", "freitag"),
        ("sat", "saturday", "sa", "samstag"),
        ("sun", "sunday", "so", "sonntag"),
    ]
):
    for _name in _names:
        _DAY_ALIASES[_name] = _i


def _weekday(name: str) -> int:
    key = name.strip().lower()
    if key not in _DAY_ALIASES:
        raise ValueError(f"unknown weekday {name!r}: use Mon, Tue, Wed, Thu, Fri, Sat or Sun")
    return _DAY_ALIASES[key]


def parse_weekdays(days: str | list[str]) -> frozenset[int]:
    """Weekday numbers (Monday = 0) of ``'Mon-Fri'``, ``'Sat,Sun'``, ``['Mon-Wed', 'Fri']``.

    A range runs forward through the week, so ``'Sat-Mon'`` is Saturday, Sunday and Monday.
    """
    parts = days if isinstance(days, list) else [days]
    out: set[int] = set()
    for part in parts:
        for item in part.split(","):
            if not item.strip():
                continue
            if "-" in item:
                first_text, last_text = item.split("-", 1)
                first, last = _weekday(first_text), _weekday(last_text)
                span = (last - first) % 7
                out.update((first + k) % 7 for k in range(span + 1))
            else:
                out.add(_weekday(item))
    if not out:
        raise ValueError("a time window needs at least one weekday, e.g. days = 'Mon-Fri'")
    return frozenset(out)


_TIME = re.compile(r"^(\d{1,2}):(\d{2})$")


def _minute_of(text: str) -> int:
    match = _TIME.match(text.strip())
    if not match:
        raise ValueError(f"time {text!r} is not HH:MM (for example '07:00' or '24:00')")
    hours, minutes = int(match.group(1)), int(match.group(2))
    if minutes >= 60 or hours > 24 or (hours == 24 and minutes):
        raise ValueError(f"time {text!r} is not a time of day between 00:00 and 24:00")
    total = hours * 60 + minutes
    if total % 15:
        raise ValueError(
            f"time {text!r} is not on a quarter hour; tariffs change only at :00, :15, :30 or :45 "
            "because energy is billed per quarter hour (TOR-4.2)"
        )
    return total


def format_minute(minute: int) -> str:
    """Minutes after local midnight as ``HH:MM`` (1440 -> ``'24:00'``)."""
    return f"{minute // 60:02d}:{minute % 60:02d}"


class TimeWindow(_Model):
    """Local wall-clock hours on some weekdays in which a tariff applies (Zeitfenster).

    A quarter hour belongs to the window when its local START time lies in ``[from, to)`` on one
    of ``days``. ``to = '24:00'`` runs to midnight; a window cannot run past midnight (write two
    windows). Times are on the quarter hour.
    """

    days: str | list[str] = "Mon-Sun"
    start: str = Field("00:00", validation_alias=AliasChoices("from", "start"))
    end: str = Field("24:00", validation_alias=AliasChoices("to", "end"))

    @field_validator("days")
    @classmethod
    def _days_parse(cls, value: str | list[str]) -> str | list[str]:
        parse_weekdays(value)
        return value

    @field_validator("start", "end")
    @classmethod
    def _time_parses(cls, value: str) -> str:
        _minute_of(value)
        return value

    @model_validator(mode="after")
    def _start_before_end(self) -> TimeWindow:
        if _minute_of(self.start) >= _minute_of(self.end):
            raise ValueError(
                f"time window {self.start}-{self.end} is empty or runs past midnight; "
                "write it as two windows, e.g. 22:00-24:00 and 00:00-06:00"
            )
        return self

    _weekdays: frozenset[int] = PrivateAttr(frozenset())
    _start_minute: int = PrivateAttr(0)
    _end_minute: int = PrivateAttr(1440)

    def model_post_init(self, context: Any, /) -> None:
        self._weekdays = parse_weekdays(self.days)
        self._start_minute = _minute_of(self.start)
        self._end_minute = _minute_of(self.end)

    @property
    def weekdays(self) -> frozenset[int]:
        """Weekday numbers of the window, Monday = 0."""
        return self._weekdays

    @property
    def start_minute(self) -> int:
        """Local start in minutes after midnight (inclusive)."""
        return self._start_minute

    @property
    def end_minute(self) -> int:
        """Local end in minutes after midnight (exclusive, 1440 = midnight)."""
        return self._end_minute

    def contains(self, weekday: int, minute: int) -> bool:
        """Whether a quarter hour starting ``minute`` after local midnight on ``weekday`` is in."""
        return weekday in self._weekdays and self._start_minute <= minute < self._end_minute

    def describe(self) -> str:
        days = self.days if isinstance(self.days, str) else ",".join(self.days)
        return f"{days} {self.start}-{self.end}"


class TariffKind(StrEnum):
    """What a tariff prices (SM-6).

    - ``local`` (also written ``solar``): energy from a local production meter (PV, Solarstrom)
    - ``battery``: energy from a battery or emergency power unit (Notstrom), usually on a virtual
      production meter (SM-3)
    - ``grid``: energy from the grid (Netzbezug), typically high/low tariff windows
    - ``feed-in``: credit for a producer's surplus sent to the grid (Einspeisung)
    """

    LOCAL = "local"
    BATTERY = "battery"
    GRID = "grid"
    FEED_IN = "feed-in"

    @property
    def label(self) -> str:
        return {
            TariffKind.LOCAL: "Local energy",
            TariffKind.BATTERY: "Battery energy",
            TariffKind.GRID: "Grid energy",
            TariffKind.FEED_IN: "Feed-in credit",
        }[self]


class TariffKey(NamedTuple):
    """The group of tariffs of which exactly one applies per quarter hour: a kind, and for
    ``local``, ``battery`` and ``feed-in`` the production meter."""

    kind: TariffKind
    meter: str | None

    def describe(self) -> str:
        return f"{self.kind.value}" if self.meter is None else f"{self.kind.value} ({self.meter})"


def _check_vat(value: Decimal) -> Decimal:
    if not value.is_finite() or value < 0 or value >= 1:
        raise ValueError(f"VAT rate {value} must be a fraction such as 0.20 (20 %) or 0.10")
    return value


def _check_validity(valid_from: date | None, valid_to: date | None) -> None:
    if valid_from is not None and valid_to is not None and valid_to < valid_from:
        raise ValueError(f"valid_to {valid_to} is before valid_from {valid_from}")


class Tariff(_Model):
    """A price per kWh of one kind, valid for local dates and optional time windows (SM-6).

    A tariff without ``windows`` applies at every time of its validity that no windowed tariff of
    the same kind (and meter) covers: this is the "otherwise" tariff, e.g. the low tariff next to
    a high tariff for Mon-Fri 07:00-22:00 and Sat 07:00-13:00.
    """

    id: str = Field(min_length=1)
    name: str = ""
    kind: TariffKind
    price: Decimal = Field(description="net price per kWh in the site currency")
    vat: Decimal = Field(Decimal("0.20"), description="VAT rate as a fraction, e.g. 0.20")
    valid_from: date | None = Field(None, description="first local day (None: always)")
    valid_to: date | None = Field(None, description="last local day, inclusive (None: open)")
    windows: list[TimeWindow] = Field(default_factory=list)
    meter: str | None = Field(
        None,
        description="production meter (location or virtual meter id) of a local, battery or "
        "feed-in tariff",
    )

    @field_validator("kind", mode="before")
    @classmethod
    def _solar_is_local(cls, value: Any) -> Any:
        return "local" if isinstance(value, str) and value.strip().lower() == "solar" else value

    @field_validator("price")
    @classmethod
    def _price_ok(cls, value: Decimal) -> Decimal:
        if not value.is_finite() or value < 0:
            raise ValueError(
                f"price {value} must be a non-negative number (a feed-in credit is written as a "
                "positive price of kind 'feed-in')"
            )
        return value

    @field_validator("vat")
    @classmethod
    def _vat_ok(cls, value: Decimal) -> Decimal:
        return _check_vat(value)

    @model_validator(mode="after")
    def _consistent(self) -> Tariff:
        _check_validity(self.valid_from, self.valid_to)
        if self.kind is TariffKind.GRID and self.meter is not None:
            raise ValueError("a grid tariff has no production meter; remove 'meter'")
        if self.kind is not TariffKind.GRID and self.meter is None:
            raise ValueError(
                f"a {self.kind.value} tariff needs 'meter': the production meter (location or "
                "virtual meter id) whose energy it prices"
            )
        return self

    @property
    def key(self) -> TariffKey:
        return TariffKey(self.kind, self.meter)

    @property
    def conditional(self) -> bool:
        """Whether the tariff has time windows (else it is the "otherwise" tariff)."""
        return bool(self.windows)

    def valid_on(self, day: date) -> bool:
        return (self.valid_from is None or self.valid_from <= day) and (
            self.valid_to is None or day <= self.valid_to
        )

    def label(self) -> str:
        return self.name or self.id


class Fee(_Model):
    """A base fee (Grundgebühr) per billing unit and month, prorated by days.

    For each month, a contract pays ``amount x days of the month in the contract / days of the
    month`` (days counted where the fee is also valid).
    """

    id: str = Field(min_length=1)
    name: str = ""
    amount: Decimal = Field(description="net amount per unit and month")
    vat: Decimal = Decimal("0.20")
    valid_from: date | None = None
    valid_to: date | None = None
    units: list[str] = Field(
        default_factory=list, description="billing unit ids; empty: every billing unit"
    )

    @field_validator("vat")
    @classmethod
    def _vat_ok(cls, value: Decimal) -> Decimal:
        return _check_vat(value)

    @field_validator("amount")
    @classmethod
    def _amount_ok(cls, value: Decimal) -> Decimal:
        if not value.is_finite():
            raise ValueError("fee amount must be a number")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Fee:
        _check_validity(self.valid_from, self.valid_to)
        return self

    def applies_to(self, unit: str) -> bool:
        return not self.units or unit in self.units

    def valid_on(self, day: date) -> bool:
        return (self.valid_from is None or self.valid_from <= day) and (
            self.valid_to is None or day <= self.valid_to
        )

    def label(self) -> str:
        return self.name or self.id


class Contract(_Model):
    """Who is billed for a billing unit from when to when (Mietvertrag / Liefervertrag).

    ``start`` is the move-in day (``move_in`` is accepted too), ``end`` the move-out day, both
    billed in full; ``None`` = still running. Days of a unit without a contract are vacancy
    (Leerstand), billed to ``[billing] owner``.
    """

    id: str | None = None
    unit: str = Field(min_length=1)
    customer: str = Field(min_length=1)
    start: date = Field(validation_alias=AliasChoices("start", "move_in"))
    end: date | None = Field(None, validation_alias=AliasChoices("end", "move_out"))

    @model_validator(mode="after")
    def _consistent(self) -> Contract:
        if self.end is not None and self.end < self.start:
            raise ValueError(f"contract ends ({self.end}) before it starts ({self.start})")
        return self


class AllocationKey(StrEnum):
    """How local production is shared among consumers per quarter hour (SM-5, EC-1).

    - ``smart-me``: share = min(1, available / total consumption); each consumer gets that share
      of its own consumption (SM-5)
    - ``dynamic``: EC-1 dynamic key, a_i = P x c_i / C capped at c_i; the same numbers as smart-me
    - ``static``: EC-1 static key, a_i = min(s_i x P, c_i); unused parts are surplus
    """

    SMART_ME = "smart-me"
    DYNAMIC = "dynamic"
    STATIC = "static"


class SourceOrder(StrEnum):
    """How a consumer's local energy is split over several production meters.

    - ``proportional``: in proportion to what each source offered in the quarter hour
    - ``priority``: the first source in ``[billing] sources`` first, then the next, ...
    """

    PROPORTIONAL = "proportional"
    PRIORITY = "priority"


class BillingSettings(_Model):
    """The ``[billing]`` section of a site: allocation rule and who pays for vacancy."""

    owner: str | None = Field(
        None, description="customer billed for vacancy and for units without contract"
    )
    allocation: AllocationKey = AllocationKey.SMART_ME
    balance_meter: str | None = Field(
        None,
        description="grid connection location (HAK); when set, available production = "
        "production - export measured there",
    )
    source_order: SourceOrder = SourceOrder.PROPORTIONAL
    sources: list[str] = Field(
        default_factory=list,
        description="production meters in priority order (default: order of the tariffs)",
    )
    static_shares: dict[str, Decimal] = Field(
        default_factory=dict, description="billing unit id -> fixed share of production (static)"
    )
    credit_local_sales: bool = Field(
        False,
        description="credit a producer's unit with its energy sold locally at the local tariff",
    )

    @field_validator("static_shares")
    @classmethod
    def _shares_ok(cls, value: dict[str, Decimal]) -> dict[str, Decimal]:
        for unit, share in value.items():
            if not share.is_finite() or share < 0 or share > 1:
                raise ValueError(f"static share of {unit!r} must be between 0 and 1, got {share}")
        total = sum(value.values(), Decimal(0))
        if total > 1:
            raise ValueError(f"static shares add up to {total}; they must add up to at most 1")
        return value
