"""Measurement concepts: site configuration, validation, inverted and virtual meters.

- :mod:`lastgang.concept.model`: the site file as pydantic models (:class:`Site`)
- :mod:`lastgang.concept.validate`: :func:`check_site`, every problem of a whole site at once
- :mod:`lastgang.concept.formula`: virtual meter formulas
- :mod:`lastgang.concept.evaluate`: :func:`evaluate_concept` over load profiles (SM-2, SM-3)
"""

from lastgang.concept.evaluate import ConceptResult, evaluate_concept, physical_profile
from lastgang.concept.formula import FormulaError, parse_formula
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
from lastgang.concept.validate import check_site

__all__ = [
    "BillingUnit",
    "ConceptResult",
    "Connection",
    "FormulaError",
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
    "check_site",
    "evaluate_concept",
    "parse_formula",
    "physical_profile",
]
