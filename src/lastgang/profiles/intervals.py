"""15-minute interval values (Lastgang, ``1-1:1.29.0``/``1-1:2.29.0``, market data) -> profile."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from lastgang.errors import MeterDataError, Problem
from lastgang.profiles.readings import IntervalSeries
from lastgang.profiles.types import LoadProfile
from lastgang.quality import Quality
from lastgang.timegrid import SLOT_SECONDS

__all__ = ["intervals_to_profile"]


def _slot_text(slot: int) -> str:
    begin = datetime.fromtimestamp(slot * SLOT_SECONDS, UTC)
    end = datetime.fromtimestamp((slot + 1) * SLOT_SECONDS, UTC)
    return f"slot {slot} ({begin:%Y-%m-%dT%H:%M}Z-{end:%H:%M}Z)"


def intervals_to_profile(
    series: IntervalSeries,
    start: int,
    stop: int,
    *,
    constant: float = 1.0,
    meter: str | None = None,
) -> LoadProfile:
    """The slots ``[start, stop)`` of an interval series as a :class:`LoadProfile`.

    - Values are multiplied by the transformer ``constant`` unless ``series.primary`` (market data
      already are primary values, TOR-4.4); they are never rounded (TOR-7.2).
    - A slot given twice in one series is an error naming the slot; so is a negative energy
      (import and export are two non-negative numbers). All such problems are raised together as
      :class:`~lastgang.errors.MeterDataError`.
    - A slot whose import or export is not a number, or whose quality is ``MISSING``, is missing
      (NaN in both directions): a profile value needs both directions, so deliver 0.0 for a
      direction the metering point does not have. Slots the series does not name are missing.
    - ``meter`` (``manufacturer:serial``) becomes the profile's only meter key (TOR-4.1m); the
      batch of each value is kept per slot.
    """
    if stop < start:
        raise ValueError(f"stop {stop} is before start {start}")
    slots = np.asarray(series.slot, dtype=np.int64)
    imp = np.asarray(series.import_kwh, dtype=np.float64)
    exp = np.asarray(series.export_kwh, dtype=np.float64)
    quality = np.asarray(series.quality, dtype=np.int8)
    problems: list[Problem] = []

    unique, counts = np.unique(slots, return_counts=True)
    for slot in unique[counts > 1]:
        problems.append(
            Problem(
                f"{_slot_text(int(slot))} is given {int(counts[unique == slot][0])} times in one "
                "interval series; remove the duplicates (a correction is a new batch)",
                meter=meter,
                time=datetime.fromtimestamp(int(slot) * SLOT_SECONDS, UTC).isoformat(),
            )
        )
    for i in np.flatnonzero((imp < 0) | (exp < 0)):
        problems.append(
            Problem(
                f"{_slot_text(int(slots[i]))}: negative energy (import {imp[i]!r} kWh, export "
                f"{exp[i]!r} kWh); import and export are each non-negative",
                meter=meter,
                time=datetime.fromtimestamp(int(slots[i]) * SLOT_SECONDS, UTC).isoformat(),
            )
        )
    bad_quality = ~np.isin(quality, [q.value for q in Quality])
    for i in np.flatnonzero(bad_quality):
        problems.append(
            Problem(
                f"{_slot_text(int(slots[i]))}: unknown quality code {int(quality[i])} "
                "(expected 1 = L1, 2 = L2, 3 = L3, 4 = missing)",
                meter=meter,
            )
        )
    if problems:
        raise MeterDataError(
            f"interval values of meter {meter}: {len(problems)} problem(s)", problems
        )

    out = LoadProfile.empty(start, stop)
    inside = (slots >= start) & (slots < stop)
    valued = inside & np.isfinite(imp) & np.isfinite(exp) & (quality != Quality.MISSING)
    pos = slots[valued] - start
    factor = 1.0 if series.primary else float(constant)
    out.import_kwh[pos] = imp[valued] * factor
    out.export_kwh[pos] = exp[valued] * factor
    out.quality[pos] = quality[valued]
    out.batch[pos] = np.asarray(series.batch, dtype=np.int64)[valued]
    meters: tuple[str, ...] = ()
    if meter is not None:
        out.meter[pos] = 0
        meters = (meter,)
    return LoadProfile(
        start, out.import_kwh, out.export_kwh, out.quality, out.batch, out.meter, meters
    )
