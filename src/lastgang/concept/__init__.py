"""Measurement concepts: site configuration, validation, inverted and virtual meters."""

from lastgang.concept.model import (
    BillingUnit,
    Connection,
    Location,
    Meter,
    MeteringPoints,
    Orientation,
    Role,
    Site,
    SiteInfo,
    Transformer,
    UnitKind,
    VirtualMeter,
)

__all__ = [
    "BillingUnit",
    "Connection",
    "Location",
    "Meter",
    "MeteringPoints",
    "Orientation",
    "Role",
    "Site",
    "SiteInfo",
    "Transformer",
    "UnitKind",
    "VirtualMeter",
]
