"""Per-phase active power -> 15-minute import and export (TOR-5.0b, instantaneous phase balancing).

A meter that balances its phases sums the signed active power of L1, L2 and L3 at every instant
(saldierende Zählung) and registers a positive sum as import and a negative sum as export. It never
nets import against export over a period, so one quarter hour can hold both (TOR-A2: 0.1 kWh
export and 0.1 kWh import in one quarter hour, not 0 kWh).

From sampled phase powers this module rebuilds the same registration: each sample holds until the
next sample; the held sum is split at the slot boundaries; positive pieces go to import, negative
pieces to export.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
from numpy.typing import ArrayLike, NDArray

from lastgang.errors import MeterDataError, Problem
from lastgang.timegrid import SLOT_SECONDS

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

__all__ = ["phases_to_slots"]


def _utc(seconds: int | np.integer) -> str:
    return datetime.fromtimestamp(int(seconds), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def phases_to_slots(
    time: ArrayLike,
    l1: ArrayLike,
    l2: ArrayLike,
    l3: ArrayLike,
    start: int,
    stop: int,
    *,
    max_hold_seconds: int = SLOT_SECONDS,
    constant: float = 1.0,
    meter: str | None = None,
) -> tuple[FloatArray, FloatArray, IntArray]:
    """Import kWh, export kWh and covered seconds per slot ``[start, stop)`` from phase powers.

    ``l1``, ``l2``, ``l3`` are signed active powers in kW as the meter delivered them (positive =
    import); ``constant`` is the transformer constant (primary = secondary x constant, TOR-4.4).

    - Sample ``i`` holds from ``time[i]`` until ``time[i+1]``. A hold longer than
      ``max_hold_seconds`` is a gap: that whole stretch is not covered (the sample says nothing
      about so long a time). A sample with a non-finite phase value covers nothing either. The
      last sample only ends the series.
    - At every instant the three phases are summed (times ``constant``); the held sum over a piece
      of ``s`` seconds is ``sum x s / 3600`` kWh, and it goes to import when the sum is positive,
      to export when it is negative. Pieces are cut at the slot boundaries, so each slot gets the
      import and the export of its own pieces; nothing is netted.

    Whole arrays throughout: the pieces are the sorted union of sample times and slot boundaries,
    summed per slot with ``np.bincount``.
    """
    t = np.asarray(time, dtype=np.int64)
    p1 = np.asarray(l1, dtype=np.float64)
    p2 = np.asarray(l2, dtype=np.float64)
    p3 = np.asarray(l3, dtype=np.float64)
    if not (t.shape == p1.shape == p2.shape == p3.shape) or t.ndim != 1:
        raise ValueError("time, l1, l2 and l3 must be one-dimensional arrays of the same length")
    if stop < start:
        raise ValueError(f"stop {stop} is before start {start}")
    if not np.isfinite(constant) or constant <= 0:
        raise ValueError(f"transformer constant must be a positive number, got {constant!r}")
    n = stop - start
    imp = np.zeros(n)
    exp = np.zeros(n)
    covered = np.zeros(n, dtype=np.int64)
    bad = np.flatnonzero(np.diff(t) <= 0)
    if len(bad):
        problems = [
            Problem(
                f"phase power sample at {_utc(t[i + 1])} does not come after the previous one at "
                f"{_utc(t[i])}; samples must be sorted and unique",
                meter=meter,
                time=_utc(t[i + 1]),
            )
            for i in bad
        ]
        raise MeterDataError(f"phase powers of meter {meter}: samples out of order", problems)
    if len(t) < 2 or n == 0:
        return imp, exp, covered

    finite = np.isfinite(p1) & np.isfinite(p2) & np.isfinite(p3)
    holds = (np.diff(t) <= max_hold_seconds) & finite[:-1]

    lo, hi = start * SLOT_SECONDS, stop * SLOT_SECONDS
    bounds = np.arange(start, stop + 1, dtype=np.int64) * SLOT_SECONDS
    points = np.union1d(np.clip(t, lo, hi), bounds)
    piece_start = points[:-1]
    seconds = np.diff(points)
    sample = np.searchsorted(t, piece_start, side="right") - 1
    inside = (sample >= 0) & (sample < len(t) - 1)
    ok = inside & (seconds > 0)
    ok[ok] = holds[sample[ok]]
    slot = piece_start[ok] // SLOT_SECONDS - start
    held = sample[ok]
    s = seconds[ok].astype(np.float64)
    # kW x s per phase first, then the sum: the products are whole numbers in the TOR-A2 example
    # (0.4 kW x 600 s = 240 kWs), so the example comes out exactly, 0.1 kWh each way.
    kws = (p1[held] * s + p2[held] * s + p3[held] * s) * constant
    energy = kws / 3600.0
    imp_out = np.bincount(slot, weights=np.where(kws > 0, energy, 0.0), minlength=n)
    exp_out = np.bincount(slot, weights=np.where(kws < 0, -energy, 0.0), minlength=n)
    covered_out = np.bincount(slot, weights=seconds[ok], minlength=n)
    return (
        imp_out.astype(np.float64),
        exp_out.astype(np.float64),
        covered_out.astype(np.int64),
    )
