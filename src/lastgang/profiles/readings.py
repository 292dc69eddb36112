"""Readings of one physical meter, as arrays: the input of load-profile building.

Times are UTC epoch seconds (``int64``), strictly increasing within a series. Values are as the
meter delivered them (secondary values for transformer-rated meters, TOR-4.4/TOR-7.1); the
transformer constant is applied when profiles are built. ``batch`` names, per value, the raw
archive batch it came from (TOR-7.1).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


def _check_lengths(n: int, *arrays: NDArray[np.generic]) -> None:
    if any(len(a) != n for a in arrays):
        raise ValueError("all arrays of a series must have the same length")


@dataclass(frozen=True, eq=False)
class RegisterSeries:
    """Cumulative readings of one energy register (e.g. ``1-0:1.8.0``), kWh as read."""

    obis: str
    time: IntArray
    value: FloatArray
    batch: IntArray

    def __post_init__(self) -> None:
        _check_lengths(len(self.time), self.value, self.batch)


@dataclass(frozen=True, eq=False)
class PhaseSeries:
    """Signed active power per phase in kW as read (positive = import as the meter sees it).

    Each sample holds until the next one (TOR-5.0b)."""

    time: IntArray
    l1: FloatArray
    l2: FloatArray
    l3: FloatArray
    batch: IntArray

    def __post_init__(self) -> None:
        _check_lengths(len(self.time), self.l1, self.l2, self.l3, self.batch)


@dataclass(frozen=True, eq=False)
class IntervalSeries:
    """15-minute energies given directly: ``slot`` is the UTC slot of each period.

    ``primary`` tells whether the values already are primary values (market data usually are);
    otherwise the transformer constant is applied like for registers."""

    slot: IntArray
    import_kwh: FloatArray
    export_kwh: FloatArray
    quality: NDArray[np.int8]
    batch: IntArray
    primary: bool = True

    def __post_init__(self) -> None:
        _check_lengths(len(self.slot), self.import_kwh, self.export_kwh, self.quality, self.batch)


@dataclass(frozen=True, eq=False)
class StatusSeries:
    """Status events reported by a meter (TOR-6.2): time and code (see ``profiles.status``)."""

    time: IntArray
    code: tuple[str, ...]
    batch: IntArray

    def __post_init__(self) -> None:
        if len(self.code) != len(self.time) or len(self.batch) != len(self.time):
            raise ValueError("all arrays of a series must have the same length")


@dataclass(frozen=True, eq=False)
class MeterReadings:
    """Everything read from one physical meter (key ``manufacturer:serial``, TOR-4.1m)."""

    meter: str
    registers: dict[str, RegisterSeries] = field(default_factory=dict)
    phases: PhaseSeries | None = None
    intervals: IntervalSeries | None = None
    status: StatusSeries | None = None

    @staticmethod
    def empty_ints() -> IntArray:
        return np.zeros(0, dtype=np.int64)
