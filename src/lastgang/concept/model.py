"""The site configuration (measurement concept, Messkonzept): one TOML file per site.

This module is the single source of truth for meter facts used anywhere in lastgang: transformer
ratios (TOR-4.4), register digits (TOR-5.0a), installation and removal (meter exchange, TOR-7.2.1),
orientation (SM-2), accuracy classes (TOR-5.1/A3), calibration (TOR-6.1), metering point IDs
(TOR-4.0, TOR-4.1) and wiring. The models are plain pydantic data; checks that look across the
whole site live in :mod:`lastgang.concept.validate`.
"""

from __future__ import annotations

import functools
from datetime import date, datetime, time
from enum import StrEnum
from fractions import Fraction
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator

from lastgang.concept.tariffs import BillingSettings, Contract, Fee, Tariff


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def to_instant(value: datetime | date, timezone: str | ZoneInfo) -> datetime:
    """An aware datetime for a date or datetime of the site file.

    A date means 00:00 legal time of that day; a datetime without offset is legal time of the
    site (``fold=0`` in the repeated autumn hour: write the offset there); a datetime with offset
    is taken as it is.
    """
    tz = timezone if isinstance(timezone, ZoneInfo) else ZoneInfo(timezone)
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=tz)
    return datetime.combine(value, time(0), tzinfo=tz)


def calibration_valid_until(verified: int | None, validity_years: int | None) -> date | None:
    """Last day of calibration validity (TOR-6.1), or None when not known.

    The validity period (Nacheichfrist) counts in calendar years from the end of the year of
    verification: a meter verified in 2016 with 8 years is valid up to 31 December 2024.
    """
    if verified is None or validity_years is None:
        return None
    return date(verified + validity_years, 12, 31)


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
    """What a metering location or virtual meter measures (SM-1).

    - ``grid``: grid connection and balance meter (Hausanschluss, HAK), a grid billing meter
      (TOR-5.4)
    - ``consumer``: apartments, common areas, heating, heat pump, EV charging; billed to units
    - ``production``: PV, or the virtual production meter of an emergency power unit (SM-3);
      shows its production as export
    - ``storage``: a battery with its own meter; import = charging, export = discharging
    - ``technical``: measured only to compute virtual meters or for monitoring, never billed
    """

    GRID = "grid"  # grid connection / balance meter (Hausanschluss, HAK)
    CONSUMER = "consumer"  # apartments, common areas, heating, heat pump, EV charging
    PRODUCTION = "production"  # PV, emergency power production (SM-3)
    STORAGE = "storage"  # battery (import = charging, export = discharging)
    TECHNICAL = "technical"  # measured only to compute virtual meters, never billed itself


class Transformer(_Model):
    """A current or voltage transformer (Wandler) in front of a meter (TOR-4.4)."""

    ratio: Annotated[str, Field(description="primary/secondary, e.g. '200/5' or '20000/100'")]
    accuracy_class: str | None = Field(None, description="e.g. '0.5', '0.5S', '0.2'")
    verified: int | None = Field(None, description="year of verification (Eichjahr), TOR-6.1")
    validity_years: int | None = Field(
        None, ge=1, description="calibration validity period in years (Eichgültigkeitsdauer)"
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

    @property
    def valid_until(self) -> date | None:
        """Last day of calibration validity (TOR-6.1), None when not given."""
        return calibration_valid_until(self.verified, self.validity_years)


class Meter(_Model):
    """A physical meter installed at a metering location for a time (TOR-4.1m: manufacturer and
    serial identify it; every reading is linked to them)."""

    manufacturer: str = Field(min_length=1, description="manufacturer (Hersteller), e.g. 'LGZ'")
    serial: str = Field(min_length=1, description="serial number (Seriennummer / Zählernummer)")
    orientation: Orientation = Field(
        Orientation.NORMAL,
        description="'normal', or 'inverted' when IN and OUT are swapped (SM-2, '-1' in a drawing)",
    )
    connection: Connection = Field(
        Connection.LV_DIRECT,
        description="'lv-direct', 'lv-ct', 'mv' or 'hv'; sets the minimum classes (TOR-5.1/A3)",
    )
    accuracy_class: str = Field("A", description="active energy class: 2/A, 1/B, 0.5/C")
    reactive_class: str | None = Field(None, description="reactive energy class, if measured")
    ct: Transformer | None = Field(None, description="current transformer (Stromwandler)")
    vt: Transformer | None = Field(None, description="voltage transformer (Spannungswandler)")
    register_digits: int | None = Field(
        None, ge=1, le=12, description="integer digits of the energy registers (overflow)"
    )
    max_power_kw: float | None = Field(
        None, gt=0, description="primary kW bound used to detect a second register overflow"
    )
    registers: list[str] = Field(
        default_factory=lambda: ["1-0:1.8.0", "1-0:2.8.0"],
        description="OBIS codes of the registers read (TOR-4.3), e.g. '1-0:1.8.0' import",
    )
    installed: datetime | date = Field(
        description="when the meter was installed (a date means 00:00 legal time)"
    )
    removed: datetime | date | None = Field(
        None, description="when the meter was removed (meter exchange, TOR-7.2.1); empty if in use"
    )
    verified: int | None = Field(None, description="year of verification (Eichjahr), TOR-6.1")
    validity_years: int | None = Field(
        None, ge=1, description="calibration validity period in years (Eichgültigkeitsdauer)"
    )

    @property
    def key(self) -> str:
        """``manufacturer:serial``, how readings name their meter."""
        return f"{self.manufacturer}:{self.serial}"

    @property
    def inverted(self) -> bool:
        """Whether the meter is installed upside down (SM-2)."""
        return self.orientation is Orientation.INVERTED

    @property
    def valid_until(self) -> date | None:
        """Last day of calibration validity (TOR-6.1), None when not given."""
        return calibration_valid_until(self.verified, self.validity_years)

    def installed_at(self, timezone: str | ZoneInfo) -> datetime:
        """Installation as an aware datetime (see :func:`to_instant`)."""
        return to_instant(self.installed, timezone)

    def removed_at(self, timezone: str | ZoneInfo) -> datetime | None:
        """Removal as an aware datetime, None while the meter is in use."""
        return None if self.removed is None else to_instant(self.removed, timezone)

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
    """Metering point IDs (Zählpunktbezeichnung) of a location, one per energy direction
    (TOR-4.0), each 33 characters (TOR-4.1), e.g. ``AT0081000801000000000000000123456``."""

    import_: str | None = Field(
        None, alias="import", description="metering point ID of the import direction (Bezug)"
    )
    export: str | None = Field(
        None, description="metering point ID of the export direction (Einspeisung)"
    )


class Location(_Model):
    """A metering location (Zählstelle): where energy is measured, by one meter at a time."""

    id: str = Field(
        min_length=1,
        pattern=r"^[A-Za-z][A-Za-z0-9_\-]*$",
        description="id used by formulas, units and profiles (letters, digits, '_', '-')",
    )
    name: str = Field("", description="name shown on invoices and charts")
    role: Role = Field(
        description="'grid' (HAK, balance meter), 'consumer', 'production', 'storage', 'technical'"
    )
    upstream: str | None = Field(None, description="id of the location upstream (wiring)")
    metering_points: MeteringPoints = Field(
        MeteringPoints(), description="metering point IDs per direction (TOR-4.0)"
    )
    standard_load_profile: str | None = Field(
        None,
        description="standard load profile for substitute values (Q-2): H0, G0, FLAT or PV; "
        "not set: PV for a production location, H0 for any other",
    )
    meters: list[Meter] = Field(
        default_factory=list,
        description="the physical meters installed here over time, one at a time (exchanges)",
    )

    @field_validator("standard_load_profile")
    @classmethod
    def _known_profile(cls, value: str | None) -> str | None:
        from lastgang.profiles.slp import PROFILES  # here: the profiles import this module

        if value is not None and value.strip().upper() not in PROFILES:
            raise ValueError(
                f"unknown standard load profile {value!r}: lastgang has {', '.join(PROFILES)} "
                "(the other BDEW profiles, G1-G6 and L0-L2, are not built in; G0 is the nearest "
                "for a business)"
            )
        return value

    @property
    def slp(self) -> str:
        """The standard load profile of the location's substitute values (Q-2): the one set,
        else ``PV`` for a production location and ``H0`` for any other."""
        if self.standard_load_profile is not None:
            return self.standard_load_profile
        return "PV" if self.role is Role.PRODUCTION else "H0"


class VirtualMeter(_Model):
    """A virtual meter (TOR-4.1v, SM-3): a formula over other meters, evaluated per slot.

    The formula's value per slot is booked as import when positive and export when negative,
    or the other way round for production and storage meters (``positive``), so that a
    production meter shows its production as export like a physical one (SM-3: "Production =
    incl. solar - excl. solar" is positive while the unit produces)."""

    id: str = Field(
        min_length=1,
        pattern=r"^[A-Za-z][A-Za-z0-9_\-]*$",
        description="id used by formulas, units and tariffs (letters, digits, '_', '-')",
    )
    name: str = Field("", description="name shown on invoices and charts")
    formula: str = Field(
        min_length=1,
        description="e.g. 'incl-solar - excl-solar': ids, numbers, + - * ( ), .import/.export",
    )
    parent: str = Field(description="the real parent metering location (TOR-4.1v)")
    role: Role = Field(Role.PRODUCTION, description="role of the result, as for a location")
    positive: Literal["import", "export"] | None = Field(
        None,
        description="direction a positive formula value is booked as; "
        "empty = 'export' for production and storage, 'import' otherwise",
    )

    @property
    def positive_direction(self) -> Literal["import", "export"]:
        """Where a positive formula value goes: ``positive``, or by role when it is empty."""
        if self.positive is not None:
            return self.positive
        return "export" if self.role in (Role.PRODUCTION, Role.STORAGE) else "import"


class UnitKind(StrEnum):
    """What a billing unit is (SM-1); it names the unit on invoices, billing is the same.

    - ``apartment``: a flat (Wohnung, Top)
    - ``general``: general / common areas (Allgemeinstrom: stairs, lift, cellar)
    - ``heating``: central heating
    - ``heat-pump``: a heat pump (Wärmepumpe)
    - ``ev-charging``: EV charging (Ladestation, wallbox)
    - ``commercial``: a shop, office or business, or a member of an energy community
    """

    APARTMENT = "apartment"
    GENERAL = "general"
    HEATING = "heating"
    HEAT_PUMP = "heat-pump"
    EV_CHARGING = "ev-charging"
    COMMERCIAL = "commercial"


class BillingUnit(_Model):
    """Something that receives an invoice: an apartment, the common areas, heating, ..."""

    id: str = Field(
        min_length=1,
        pattern=r"^[A-Za-z][A-Za-z0-9_\-]*$",
        description="id of the unit, used by contracts",
    )
    name: str = Field("", description="name shown on invoices, e.g. 'Top 1'")
    kind: UnitKind = Field(
        UnitKind.APARTMENT,
        description="'apartment', 'general', 'heating', 'heat-pump', 'ev-charging', 'commercial'",
    )
    meters: list[str] = Field(default_factory=list, description="location or virtual meter ids")


class SiteInfo(_Model):
    """The ``[site]`` table: what the site is and where it is (legal time, currency)."""

    id: str = Field(
        min_length=1,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_\-]*$",
        description="short id of the site (letters, digits, '_', '-'), used in file names",
    )
    name: str = Field("", description="name of the building or energy community")
    timezone: str = Field(
        "Europe/Vienna", description="IANA time zone of the site's legal time (TOR-4.2)"
    )
    currency: str = Field("EUR", description="ISO 4217 currency of prices and invoices")


class Site(_Model):
    """A whole site configuration as read from its TOML file."""

    site: SiteInfo = Field(description="the site itself")
    locations: list[Location] = Field(
        default_factory=list, description="metering locations with their meters"
    )
    virtual_meters: list[VirtualMeter] = Field(
        default_factory=list, description="meters computed from others (TOR-4.1v, SM-3)"
    )
    units: list[BillingUnit] = Field(
        default_factory=list, description="billing units and the meters billed to them"
    )
    tariffs: list[Tariff] = Field(default_factory=list, description="prices (SM-6)")
    contracts: list[Contract] = Field(
        default_factory=list, description="who is billed for which unit when (SM-6)"
    )
    fees: list[Fee] = Field(
        default_factory=list, description="base fees per unit and month, prorated by days (SM-6)"
    )
    billing: BillingSettings = Field(
        default_factory=BillingSettings,
        description="allocation rule, source order and the owner billed for vacancy (SM-5, SM-6)",
    )

    def location(self, location_id: str) -> Location:
        """The location ``location_id`` (the first of that id); ``KeyError`` if there is none."""
        built, by_id = self._locations_by_id
        if built is not self.locations:  # a copy with other locations (model_copy(update=...))
            del self.__dict__["_locations_by_id"]
            built, by_id = self._locations_by_id
        return by_id[location_id]

    @functools.cached_property
    def _locations_by_id(self) -> tuple[list[Location], dict[str, Location]]:
        """Every location by id, built once (a site of 10,000 locations asks for each), with
        the list it was built from: ``model_copy`` copies this cache along with the fields."""
        out: dict[str, Location] = {}
        for loc in self.locations:
            out.setdefault(loc.id, loc)
        return self.locations, out

    def virtual_meter(self, meter_id: str) -> VirtualMeter:
        for vm in self.virtual_meters:
            if vm.id == meter_id:
                return vm
        raise KeyError(meter_id)

    def meter_ids(self) -> dict[str, Location | VirtualMeter]:
        """Every id a formula, unit or tariff can name: locations first, then virtual meters
        (the first of a duplicated id wins; ``lastgang check`` reports duplicates)."""
        out: dict[str, Location | VirtualMeter] = {}
        for loc in self.locations:
            out.setdefault(loc.id, loc)
        for vm in self.virtual_meters:
            out.setdefault(vm.id, vm)
        return out

    def role_of(self, meter_id: str) -> Role:
        """The role of a location or virtual meter; ``KeyError`` for an unknown id."""
        return self.meter_ids()[meter_id].role
