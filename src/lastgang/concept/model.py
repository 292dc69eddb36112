"""The site configuration (measurement concept, Messkonzept): one TOML file per site.

This module is the single source of truth for meter facts used anywhere in lastgang: transformer
ratios (TOR-4.4), register digits (TOR-5.0a), installation and removal (meter exchange, TOR-7.2.1),
orientation (SM-2), accuracy classes (TOR-5.1/A3), calibration (TOR-6.1), metering point IDs
(TOR-4.0, TOR-4.1) and wiring. The models are plain pydantic data; checks that look across the
whole site live in :mod:`lastgang.concept.validate`.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from fractions import Fraction
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from lastgang.concept.tariffs import Contract, Tariff


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Orientation(StrEnum):
    """How a meter is wired (SM-2). ``inverted`` meters ("upside down", marked -1 in a concept
    drawing) register as import what flows the other way; lastgang swaps import and export."""

    NORMAL = "normal"
    INVERTED = "inverted"


class Connection(StrEnum):
    """Kind of connection, which sets the minimum accuracy classes (TOR-5.1 / A3)."""

    LV_DIRECT = "lv-direct"
    LV_CT = "lv-ct"
    MV = "mv"
    HV = "hv"


class Role(StrEnum):
    """What a metering location measures (SM-1)."""

    GRID = "grid"  # grid connection / balance meter (Hausanschluss, HAK)
    CONSUMER = "consumer"
    PRODUCTION = "production"
    STORAGE = "storage"
    TECHNICAL = "technical"


class Transformer(_Model):
    """A current or voltage transformer (Wandler) in front of a meter (TOR-4.4)."""

    ratio: Annotated[str, Field(description="primary/secondary, e.g. '200/5' or '20000/100'")]
    accuracy_class: str | None = Field(None, description="e.g. '0.5', '0.5S', '0.2'")
    verified: int | None = Field(None, description="year of verification (Eichjahr), TOR-6.1")
    validity_years: int | None = Field(
        None, description="calibration validity period in years (Eichgültigkeitsdauer)"
    )

    @field_validator("ratio")
    @classmethod
    def _ratio_is_a_fraction(cls, value: str) -> str:
        parts = value.replace(" ", "").split("/")
        if len(parts) != 2:
            raise ValueError("ratio must be 'primary/secondary', e.g. '200/5'")
        try:
            primary, secondary = (Fraction(p) for p in parts)
        except ValueError as exc:
            raise ValueError(f"ratio {value!r} is not two numbers") from exc
        if primary <= 0 or secondary <= 0:
            raise ValueError("ratio values must be positive")
        return value

    @property
    def factor(self) -> Fraction:
        """primary / secondary as an exact fraction (200/5 -> 40)."""
        primary, secondary = (Fraction(p) for p in self.ratio.replace(" ", "").split("/"))
        return primary / secondary


class Meter(_Model):
    """A physical meter installed at a metering location for a time (TOR-4.1m: manufacturer and
    serial identify it; every reading is linked to them)."""

    manufacturer: str = Field(min_length=1)
    serial: str = Field(min_length=1)
    orientation: Orientation = Orientation.NORMAL
    connection: Connection = Connection.LV_DIRECT
    accuracy_class: str = Field("A", description="active energy class: 2/A, 1/B, 0.5/C")
    reactive_class: str | None = Field(None, description="reactive energy class, if measured")
    ct: Transformer | None = None
    vt: Transformer | None = None
    register_digits: int | None = Field(
        None, ge=1, le=12, description="integer digits of the energy registers (overflow)"
    )
    max_power_kw: float | None = Field(
        None, gt=0, description="primary kW bound used to detect a second register overflow"
    )
    registers: list[str] = Field(default_factory=lambda: ["1-0:1.8.0", "1-0:2.8.0"])
    installed: datetime | date
    removed: datetime | date | None = None
    verified: int | None = Field(None, description="year of verification (Eichjahr)")
    validity_years: int | None = Field(None, description="calibration validity in years")

    @property
    def key(self) -> str:
        """``manufacturer:serial``, how readings name their meter."""
        return f"{self.manufacturer}:{self.serial}"

    @property
    def transformer_constant(self) -> Fraction:
        """CT ratio x VT ratio (1 without transformers): primary = secondary x constant."""
        constant = Fraction(1)
        if self.ct is not None:
            constant *= self.ct.factor
        if self.vt is not None:
            constant *= self.vt.factor
        return constant


class MeteringPoints(_Model):
    """Metering point IDs of a location, one per energy direction (TOR-4.0)."""

    import_: str | None = Field(None, alias="import")
    export: str | None = None


class Location(_Model):
    """A metering location (Zählstelle): where energy is measured, by one meter at a time."""

    id: str = Field(min_length=1, pattern=r"^[A-Za-z][A-Za-z0-9_\-]*$")
    name: str = ""
    role: Role
    upstream: str | None = Field(None, description="id of the location upstream (wiring)")
    metering_points: MeteringPoints = MeteringPoints()
    standard_load_profile: str = Field("H0", description="SLP for substitute values (Q-2)")
    meters: list[Meter] = Field(default_factory=list)


class VirtualMeter(_Model):
    """A virtual meter (TOR-4.1v, SM-3): a formula over other meters, evaluated per slot."""

    id: str = Field(min_length=1, pattern=r"^[A-Za-z][A-Za-z0-9_\-]*$")
    name: str = ""
    formula: str = Field(min_length=1)
    parent: str = Field(description="the real parent metering location (TOR-4.1v)")
    role: Role = Role.PRODUCTION


class UnitKind(StrEnum):
    APARTMENT = "apartment"
    GENERAL = "general"
    HEATING = "heating"
    HEAT_PUMP = "heat-pump"
    EV_CHARGING = "ev-charging"
    COMMERCIAL = "commercial"


class BillingUnit(_Model):
    """Something that receives an invoice: an apartment, the common areas, heating, ..."""

    id: str = Field(min_length=1, pattern=r"^[A-Za-z][A-Za-z0-9_\-]*$")
    name: str = ""
    kind: UnitKind = UnitKind.APARTMENT
    meters: list[str] = Field(default_factory=list, description="location or virtual meter ids")


class SiteInfo(_Model):
    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_\-]*$")
    name: str = ""
    timezone: str = "Europe/Vienna"
    currency: str = "EUR"


class Site(_Model):
    """A whole site configuration as read from its TOML file."""

    site: SiteInfo
    locations: list[Location] = Field(default_factory=list)
    virtual_meters: list[VirtualMeter] = Field(default_factory=list)
    units: list[BillingUnit] = Field(default_factory=list)
    tariffs: list[Tariff] = Field(default_factory=list)
    contracts: list[Contract] = Field(default_factory=list)

    def location(self, location_id: str) -> Location:
        for loc in self.locations:
            if loc.id == location_id:
                return loc
        raise KeyError(location_id)
