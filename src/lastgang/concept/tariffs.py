"""Tariffs and contracts of a site configuration (SM-6). Extended by the billing work."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Tariff(_Model):
    """A price per kWh of one kind, valid for a date range and optional time windows."""

    id: str = Field(min_length=1)
    kind: str
    price: Decimal


class Contract(_Model):
    """Who is billed for a billing unit from when to when."""

    unit: str
    customer: str
    start: date
    end: date | None = None
