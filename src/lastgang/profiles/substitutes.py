"""Substitute values (Ersatzwerte, Q-1, Q-2) for missing slots, and merging later measurements.

The Austrian rule (ElWG section 55, Q-2) in the order lastgang applies it, per energy direction:

1. **Known totals.** Where a register gives the energy of a stretch but not its distribution (a
   reading period of 2 hours or more), the total is measured: the stretch gets a shape (rules 2-4
   below, whichever applies first) scaled so it sums exactly to the total. Flagged **L2**: the
   energy is measured, only its split over quarter hours is estimated.
2. **Short gaps** (fewer than 8 slots, i.e. shorter than 2 hours) with a value on both sides are
   interpolated linearly between the two neighbouring values. **L2** (reliable: the neighbours
   bound the values closely).
3. **Comparable days** (Vergleichstage): each slot takes the value of the same local quarter hour
   on the nearest day BEFORE and the nearest day AFTER it with the same day type (workday,
   Saturday, Sunday/holiday) within 28 days that has a measured (L1) value there, from the profile
   itself or from ``history``; with both, their mean, else the one found. **L3** (unreliable: the
   day's real consumption is unknown; the value will change when a measurement arrives).
4. **Standard load profile** assigned to the location (H0, G0, flat, PV; :mod:`.slp`; a
   production location has PV unless another is set), scaled to the metering point's typical
   level: the sum of its measured (L1/L2) values divided by the sum of the profile over the
   same slots. **L3**. Without any measured value the level comes from ``annual_kwh`` if given
   (as import, export then 0; with PV as export, import then 0), otherwise the slots stay
   missing.

Gaps at the very start or end of the data have a neighbour on one side only: they always take
rules 3 and 4, never a line extrapolated from one side. Substitute values are flagged by their
quality and carry no meter and no batch (except known totals, which keep the batch and meter of
the reading that measured them). A later measurement replaces a substitute with
:func:`merge_measured`; the store keeps the history.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from lastgang.errors import InvalidInput, Problem
from lastgang.profiles.slp import standard_load_profile
from lastgang.profiles.types import LoadProfile
from lastgang.quality import Quality
from lastgang.timegrid import day_types, local_date_of_slots, local_start_minutes

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]

__all__ = [
    "COMPARABLE_DAYS",
    "SHORT_GAP_SLOTS",
    "KnownTotal",
    "distribute_totals",
    "fill_gaps",
    "merge_measured",
]

#: A gap of fewer slots than this (shorter than 2 hours) is interpolated linearly (Q-2).
SHORT_GAP_SLOTS = 8
#: Comparable days are searched this many days before and after a missing day.
COMPARABLE_DAYS = 28

_DIRECTIONS = ("import_kwh", "export_kwh")


@dataclass(frozen=True)
class KnownTotal:
    """Measured energy of the slots ``[first, stop)`` whose split over the slots is unknown.

    ``import_kwh``/``export_kwh`` are NaN for a direction whose total is not known. ``batch`` and
    ``meter`` (index into the profile's ``meters``) name the reading that measured the total.
    """

    first: int
    stop: int
    import_kwh: float = math.nan
    export_kwh: float = math.nan
    batch: int = 0
    meter: int = -1


# --------------------------------------------------------------------------------------------
# shapes: comparable days and the standard load profile


class _Shapes:
    """Comparable-day values and level-scaled standard load profile for one profile + history."""

    def __init__(
        self, profile: LoadProfile, history: LoadProfile | None, tz: str, slp: str
    ) -> None:
        self.profile = profile
        self.tz = tz
        self.slp = slp
        sources = [profile] if history is None else [profile, history]
        keys: list[IntArray] = []
        values: dict[str, list[FloatArray]] = {d: [] for d in _DIRECTIONS}
        level_slots: list[IntArray] = []
        level_values: dict[str, list[FloatArray]] = {d: [] for d in _DIRECTIONS}
        for src in sources:
            slots = np.arange(src.start, src.stop, dtype=np.int64)
            finite = np.isfinite(src.import_kwh) & np.isfinite(src.export_kwh)
            measured = finite & (src.quality == Quality.L1)
            keys.append(self._keys(slots[measured]))
            usable = finite & (src.quality <= Quality.L2)
            level_slots.append(slots[usable])
            for d in _DIRECTIONS:
                values[d].append(getattr(src, d)[measured])
                level_values[d].append(getattr(src, d)[usable])
        all_keys = np.concatenate(keys)
        # first occurrence wins: the profile before history, the first of a repeated autumn hour
        self.keys, first = np.unique(all_keys, return_index=True)
        self.values = {d: np.concatenate(values[d])[first] for d in _DIRECTIONS}
        # the level: measured slots, each counted once (the profile before history)
        lslots, lfirst = np.unique(np.concatenate(level_slots), return_index=True)
        self.level_slots = lslots
        self.level_values = {d: np.concatenate(level_values[d])[lfirst] for d in _DIRECTIONS}
        self._slp_level: dict[str, float] | None = None

    def _keys(self, slots: IntArray) -> IntArray:
        days = local_date_of_slots(slots, self.tz).astype(np.int64)
        quarter = local_start_minutes(slots, self.tz) // 15
        result: IntArray = days * 96 + quarter
        return result

    def comparable(self, slots: IntArray) -> dict[str, FloatArray]:
        """Comparable-day values per direction at ``slots`` (NaN where none is found)."""
        n = len(slots)
        out = {d: np.full(n, np.nan) for d in _DIRECTIONS}
        if n == 0 or len(self.keys) == 0:
            return out
        days = local_date_of_slots(slots, self.tz).astype(np.int64)
        quarter = local_start_minutes(slots, self.tz) // 15
        lo = int(days.min()) - COMPARABLE_DAYS
        hi = int(days.max()) + COMPARABLE_DAYS
        kinds = day_types(np.arange(lo, hi + 1, dtype=np.int64).astype("datetime64[D]"))
        target_kind = kinds[days - lo]
        found: list[IntArray] = []
        for sign in (-1, 1):
            pick = np.full(n, -1, dtype=np.int64)
            for k in range(1, COMPARABLE_DAYS + 1):
                todo = pick < 0
                if not todo.any():
                    break
                cand_day = days + sign * k
                key = cand_day * 96 + quarter
                pos = np.minimum(np.searchsorted(self.keys, key), len(self.keys) - 1)
                hit = todo & (self.keys[pos] == key) & (kinds[cand_day - lo] == target_kind)
                pick[hit] = pos[hit]
            found.append(pick)
        before, after = found
        for d in _DIRECTIONS:
            src = self.values[d]
            vb = np.where(before >= 0, src[np.maximum(before, 0)], np.nan)
            va = np.where(after >= 0, src[np.maximum(after, 0)], np.nan)
            both = (before >= 0) & (after >= 0)
            out[d] = np.where(both, 0.5 * (vb + va), np.where(before >= 0, vb, va))
        return out

    def slp_shape(self, slots: IntArray) -> FloatArray:
        """The standard load profile at ``slots`` for 1,000 kWh a year (shape only)."""
        if len(slots) == 0:
            return np.zeros(0)
        lo, hi = int(slots.min()), int(slots.max()) + 1
        values = standard_load_profile(self.slp, lo, hi, self.tz)
        result: FloatArray = values[slots - lo]
        return result

    def levels(self, annual_kwh: float | None) -> dict[str, float] | None:
        """kWh a year per direction that the SLP shape is scaled to (None: no level known)."""
        if self._slp_level is None:
            if len(self.level_slots):
                shape_sum = float(self.slp_shape(self.level_slots).sum())
                self._slp_level = {
                    d: (float(self.level_values[d].sum()) * 1000.0 / shape_sum)
                    if shape_sum > 0
                    else math.nan
                    for d in _DIRECTIONS
                }
            else:
                self._slp_level = {}
        if self._slp_level:
            return self._slp_level
        if annual_kwh is not None:
            if self.slp.strip().upper() == "PV":  # a production profile: the energy is export
                return {"import_kwh": 0.0, "export_kwh": float(annual_kwh)}
            return {"import_kwh": float(annual_kwh), "export_kwh": 0.0}
        return None


# --------------------------------------------------------------------------------------------
# known totals


def _copy(profile: LoadProfile) -> dict[str, NDArray[np.generic]]:
    return {
        "import_kwh": profile.import_kwh.copy(),
        "export_kwh": profile.export_kwh.copy(),
        "quality": profile.quality.copy(),
        "batch": profile.batch.copy(),
        "meter": profile.meter.copy(),
    }


def _profile(start: int, a: dict[str, NDArray[np.generic]], meters: tuple[str, ...]) -> LoadProfile:
    return LoadProfile(
        start,
        a["import_kwh"].astype(np.float64),
        a["export_kwh"].astype(np.float64),
        a["quality"].astype(np.int8),
        a["batch"].astype(np.int64),
        a["meter"].astype(np.int32),
        meters,
    )


def _short_shape(values: FloatArray, a: int, b: int) -> FloatArray | None:
    """Linear interpolation between the neighbours of ``[a, b)`` when both exist, else None."""
    if b - a >= SHORT_GAP_SLOTS or a == 0 or b >= len(values):
        return None
    left, right = values[a - 1], values[b]
    if not (np.isfinite(left) and np.isfinite(right)):
        return None
    result: FloatArray = np.interp(
        np.arange(a, b, dtype=np.float64), [a - 1.0, float(b)], [left, right]
    )
    return result


def distribute_totals(
    profile: LoadProfile,
    totals: Sequence[KnownTotal],
    tz: str,
    *,
    slp: str = "H0",
    history: LoadProfile | None = None,
) -> LoadProfile:
    """Spread each known total over its slots with the first shape that applies (linear between
    the neighbours for fewer than 8 slots, comparable days, the standard load profile), scaled to
    sum exactly to the total (an even split where the shape sums to 0). Quality **L2**.

    Each span must lie inside the profile; its values in a direction with a known total are
    replaced. A slot is valued (not missing) once both directions are numbers.
    """
    problems: list[Problem] = []
    for t in totals:
        if not (profile.start <= t.first < t.stop <= profile.stop):
            problems.append(
                Problem(
                    f"known total for slots [{t.first}, {t.stop}) lies outside the profile "
                    f"[{profile.start}, {profile.stop}) or is empty"
                )
            )
        for name, value in (("import", t.import_kwh), ("export", t.export_kwh)):
            if not math.isnan(value) and (value < 0 or math.isinf(value)):
                problems.append(
                    Problem(f"known {name} total {value!r} kWh for slots [{t.first}, {t.stop})")
                )
    if problems:
        raise InvalidInput("known totals cannot be distributed", problems)
    if not totals:
        return profile
    shapes = _Shapes(profile, history, tz, slp)
    out = _copy(profile)
    before = {d: getattr(profile, d) for d in _DIRECTIONS}
    # comparable-day values and the SLP for every slot of the profile that a total covers, once
    covered = np.zeros(len(profile), dtype=np.bool_)
    for t in totals:
        covered[t.first - profile.start : t.stop - profile.start] = True
    slots = np.flatnonzero(covered).astype(np.int64) + profile.start
    comparable_all = {d: np.full(len(profile), np.nan) for d in _DIRECTIONS}
    for d, values in shapes.comparable(slots).items():
        comparable_all[d][slots - profile.start] = values
    slp_all = np.full(len(profile), np.nan)
    slp_all[slots - profile.start] = shapes.slp_shape(slots)
    for t in totals:
        a, b = t.first - profile.start, t.stop - profile.start
        filled = False
        for d, total in (("import_kwh", t.import_kwh), ("export_kwh", t.export_kwh)):
            if math.isnan(total):
                continue
            shape = _short_shape(before[d], a, b)
            if shape is None:
                shape = comparable_all[d][a:b]
                if not np.isfinite(shape).all():
                    shape = slp_all[a:b]
            shape_sum = float(shape.sum())
            if shape_sum > 0:
                out[d][a:b] = shape * (total / shape_sum)
            else:
                out[d][a:b] = total / (b - a)
            filled = True
        if filled:
            out["batch"][a:b] = t.batch
            out["meter"][a:b] = t.meter
            q = out["quality"][a:b]
            out["quality"][a:b] = np.where(
                q == Quality.MISSING, Quality.L2, np.maximum(q, Quality.L2)
            )
    _mark_missing(out)
    return _profile(profile.start, out, profile.meters)


def _mark_missing(a: dict[str, NDArray[np.generic]]) -> None:
    """A slot with a NaN in either direction is missing."""
    missing = np.isnan(a["import_kwh"].astype(np.float64)) | np.isnan(
        a["export_kwh"].astype(np.float64)
    )
    a["quality"][missing] = Quality.MISSING


# --------------------------------------------------------------------------------------------
# gaps


def _runs(mask: BoolArray) -> tuple[IntArray, IntArray]:
    """Starts and ends of the runs of True in ``mask``."""
    edges = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)


def fill_gaps(
    profile: LoadProfile,
    tz: str,
    *,
    slp: str = "H0",
    history: LoadProfile | None = None,
    known_totals: Sequence[KnownTotal] | None = None,
    annual_kwh: float | None = None,
) -> LoadProfile:
    """Substitute values for the missing slots of ``profile`` (Q-2, see the module doc).

    ``tz`` is the legal time of the site (local days and quarter hours of comparable days and the
    standard load profile); ``slp`` the location's standard load profile; ``history`` earlier
    data of the same metering point for comparable days and the level; ``known_totals`` measured
    totals of stretches (distributed first, L2); ``annual_kwh`` the yearly consumption for the
    standard load profile when the metering point has no measured value at all.

    Per direction, each run of missing values is filled by the first rule that applies: linear
    interpolation (fewer than 8 slots with values on both sides, L2), comparable days (L3), the
    standard load profile at the metering point's level (L3). A filled slot's quality is the worst
    of its directions; slots no rule can fill stay missing. Existing values are never changed.
    """
    if known_totals:
        profile = distribute_totals(profile, known_totals, tz, slp=slp, history=history)
    n = len(profile)
    missing = {d: np.isnan(getattr(profile, d)) for d in _DIRECTIONS}
    if n == 0 or not (missing["import_kwh"].any() or missing["export_kwh"].any()):
        return profile
    shapes = _Shapes(profile, history, tz, slp)
    out = _copy(profile)
    method = np.full(n, Quality.L1, dtype=np.int8)  # worst substitute quality used per slot
    positions = np.arange(n, dtype=np.float64)
    for d in _DIRECTIONS:
        values = getattr(profile, d)
        gap = missing[d]
        if not gap.any():
            continue
        starts, ends = _runs(gap)
        short = (ends - starts < SHORT_GAP_SLOTS) & (starts > 0) & (ends < n)
        in_short = np.zeros(n, dtype=np.bool_)
        if short.any():
            marks = np.zeros(n + 1, dtype=np.int64)
            np.add.at(marks, starts[short], 1)
            np.add.at(marks, ends[short], -1)
            in_short = np.cumsum(marks[:-1]) > 0
            known = ~gap
            out[d][in_short] = np.interp(positions[in_short], positions[known], values[known])
            method[in_short] = np.maximum(method[in_short], Quality.L2)
        rest = gap & ~in_short
        if rest.any():
            idx = np.flatnonzero(rest)
            slots = idx.astype(np.int64) + profile.start
            comparable = shapes.comparable(slots)[d]
            has = np.isfinite(comparable)
            out[d][idx[has]] = comparable[has]
            method[idx[has]] = Quality.L3
            left = idx[~has]
            levels = shapes.levels(annual_kwh)
            if len(left) and levels is not None and np.isfinite(levels[d]):
                shape = shapes.slp_shape(left.astype(np.int64) + profile.start)
                out[d][left] = shape * (levels[d] / 1000.0)
                method[left] = Quality.L3
    was_missing = profile.quality == Quality.MISSING
    out["quality"][was_missing] = method[was_missing]
    out["batch"][was_missing] = 0
    out["meter"][was_missing] = -1
    _mark_missing(out)
    return _profile(profile.start, out, profile.meters)


# --------------------------------------------------------------------------------------------
# later measurements


def merge_measured(old: LoadProfile, new: LoadProfile) -> LoadProfile:
    """``old`` updated by ``new`` slot by slot, over the union of their slots.

    A slot takes the new value when it is at least as good as the old one (quality code not
    worse: a measured L1 value replaces an L2/L3 substitute, between equal qualities the newer
    wins); a missing new value never replaces anything, and a worse new value does not replace a
    better old one. Meter keys are merged (old first) and the slot indices remapped.
    """
    start, stop = min(old.start, new.start), max(old.stop, new.stop)
    o, n = old.window(start, stop), new.window(start, stop)
    meters = list(old.meters)
    for key in new.meters:
        if key not in meters:
            meters.append(key)
    remap = np.array([meters.index(k) for k in new.meters] + [-1], dtype=np.int32)
    new_meter = np.where(n.meter >= 0, remap[np.where(n.meter >= 0, n.meter, -1)], -1)
    take = (n.quality != Quality.MISSING) & (n.quality <= o.quality)
    return LoadProfile(
        start,
        np.where(take, n.import_kwh, o.import_kwh),
        np.where(take, n.export_kwh, o.export_kwh),
        np.where(take, n.quality, o.quality).astype(np.int8),
        np.where(take, n.batch, o.batch).astype(np.int64),
        np.where(take, new_meter, o.meter).astype(np.int32),
        tuple(meters),
    )
