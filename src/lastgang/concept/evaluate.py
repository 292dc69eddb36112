"""Evaluate a measurement concept over load profiles: inverted meters, virtual meters (SM-2, SM-3).

Load profiles are stored as the meters registered them. :func:`evaluate_concept` turns them into
the *physical* direction of every metering location and adds the virtual meters:

1. **Inverted meters (SM-2).** A meter installed upside down registers as import what flows the
   other way. Orientation belongs to the physical meter, and a location may have had an inverted
   meter and, after an exchange, a normal one (TOR-7.2.1). So each slot is swapped when the meter
   that produced it (``LoadProfile.meter`` -> ``LoadProfile.meters``, ``"manufacturer:serial"``)
   is inverted; a slot without a known meter takes the meter installed at that time in the site
   file.
2. **Virtual meters (TOR-4.1v, SM-3).** Each formula is computed per slot from the same slot of its
   operands (never across slots): a bare id stands for the operand's net energy (import -
   export), ``id.import`` / ``id.export`` for one direction. The value of a slot is then split:
   a positive value is booked as import and a negative one as export, the other way round for
   production and storage meters (:attr:`VirtualMeter.positive_direction`), so that the SM-3
   Production meter shows production as export like a PV meter and the emergency power unit's
   own draw (standby, charging from the grid) as import: below the 0 line in a chart (SM-4).
3. **Quality (Q-1).** A virtual value is as good as its worst input: the maximum of the operands'
   quality codes per slot. A missing operand value (``NaN``) gives a missing virtual value.

Worked example (SM-3, one quarter hour, whole building behind the emergency power unit): the
inverted meter *excl. solar* upstream of the unit registers the 0.5 kWh the unit takes from the
grid as export; the inverted meter *incl. solar* downstream registers the 2.5 kWh the unit and
its PV deliver to the building as export. Swapped, both are imports: 0.5 and 2.5 kWh. Production
= incl - excl = 2.5 - 0.5 = 2.0 kWh, booked as export of the Production meter.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from numpy.typing import NDArray

from lastgang.concept.formula import FormulaError, Node, Ref, evaluate, parse_formula, references
from lastgang.concept.model import Location, Role, Site, UnitKind, VirtualMeter
from lastgang.errors import ConceptError, Problem
from lastgang.profiles.types import LoadProfile
from lastgang.quality import Quality
from lastgang.timegrid import SLOT_SECONDS, to_epoch

__all__ = ["ConceptResult", "evaluate_concept", "inverted_slots", "physical_profile"]

FloatArray = NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class ConceptResult:
    """Import, export and quality of every location and virtual meter of a site, M x T.

    Row ``m`` belongs to ``ids[m]``: first the locations in the order of the site file, then the
    virtual meters. Column ``t`` is slot ``start + t``. Energies are kWh in the physical direction
    (inverted meters swapped); ``NaN`` where a value is missing.

    The arrays are read only when they are the input profiles themselves (no virtual meter, no
    inverted meter, every profile covering the period as rows of one array, as the store reads
    them): copy before changing them.
    """

    start: int
    stop: int
    ids: tuple[str, ...]
    import_kwh: FloatArray
    export_kwh: FloatArray
    quality: NDArray[np.int8]
    roles: tuple[Role, ...]
    virtual: tuple[bool, ...]
    names: tuple[str, ...] = ()
    units: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    unit_kinds: Mapping[str, UnitKind] = field(default_factory=dict)
    #: the input profiles of the locations, windowed to ``[start, stop)`` as stored (provenance)
    sources: Mapping[str, LoadProfile] = field(default_factory=dict)

    def __len__(self) -> int:
        return self.stop - self.start

    @property
    def net_kwh(self) -> FloatArray:
        """import - export per row and slot."""
        result: FloatArray = self.import_kwh - self.export_kwh
        return result

    def index(self, meter_id: str) -> int:
        """Row of a location or virtual meter id; ``KeyError`` if there is none."""
        return self._rows[meter_id]

    @cached_property
    def _rows(self) -> dict[str, int]:
        """Row by id (the first row of a repeated id), built once: ``index`` is called for
        every unit and invoice of a run."""
        rows: dict[str, int] = {}
        for m, meter_id in enumerate(self.ids):
            rows.setdefault(meter_id, m)
        return rows

    def profile(self, meter_id: str) -> LoadProfile:
        """One row as a :class:`LoadProfile` (physical direction)."""
        m = self.index(meter_id)
        source = self.sources.get(meter_id)
        if source is not None:
            return LoadProfile(
                self.start,
                self.import_kwh[m],
                self.export_kwh[m],
                self.quality[m],
                source.batch,
                source.meter,
                source.meters,
            )
        return LoadProfile(self.start, self.import_kwh[m], self.export_kwh[m], self.quality[m])

    def with_role(self, role: Role) -> tuple[str, ...]:
        """Ids of the rows of one role, in row order."""
        return tuple(i for i, r in zip(self.ids, self.roles, strict=True) if r is role)

    def role(self, meter_id: str) -> Role:
        return self.roles[self.index(meter_id)]


def inverted_slots(
    location: Location, profile: LoadProfile, timezone: str | ZoneInfo
) -> NDArray[np.bool_]:
    """Per slot of ``profile``: whether the meter that produced it is inverted (SM-2).

    The meter of a slot is ``profile.meters[profile.meter[t]]``; where that is -1 or a meter the
    location does not list, the meter installed at that time (site file) decides.
    """
    n = len(profile)
    slots = np.arange(profile.start, profile.stop, dtype=np.int64)
    mask = np.zeros(n, dtype=np.bool_)
    for meter in sorted(location.meters, key=lambda m: to_epoch(m.installed_at(timezone))):
        first = to_epoch(meter.installed_at(timezone)) // SLOT_SECONDS
        removed = meter.removed_at(timezone)
        stop = None if removed is None else to_epoch(removed) // SLOT_SECONDS
        inside = slots >= first if stop is None else (slots >= first) & (slots < stop)
        mask[inside] = meter.inverted
    if profile.meters:
        orientation = {m.key: m.inverted for m in location.meters}
        known = np.array([key in orientation for key in profile.meters], dtype=np.bool_)
        inverted = np.array([orientation.get(key, False) for key in profile.meters], dtype=np.bool_)
        idx = profile.meter.astype(np.int64)
        valid = (idx >= 0) & (idx < len(profile.meters))
        use = np.zeros(n, dtype=np.bool_)
        use[valid] = known[idx[valid]]
        mask[use] = inverted[idx[use]]
    return mask


def physical_profile(
    location: Location, profile: LoadProfile, timezone: str | ZoneInfo
) -> LoadProfile:
    """``profile`` in the physical direction: import and export swapped in every slot that an
    inverted meter produced (SM-2). Swapping twice gives the original."""
    if not any(meter.inverted for meter in location.meters):
        return profile  # no inverted meter: nothing to swap (the common case, no per-slot work)
    mask = inverted_slots(location, profile, timezone)
    if not mask.any():
        return profile
    if mask.all():
        return profile.swapped()
    return LoadProfile(
        profile.start,
        np.where(mask, profile.export_kwh, profile.import_kwh),
        np.where(mask, profile.import_kwh, profile.export_kwh),
        profile.quality,
        profile.batch,
        profile.meter,
        profile.meters,
    )


def _order(site: Site, formulas: Mapping[str, Node]) -> list[VirtualMeter]:
    """Virtual meters so that each comes after the virtual meters its formula uses."""
    by_id = {vm.id: vm for vm in site.virtual_meters}
    done: set[str] = set()
    order: list[VirtualMeter] = []
    visiting: list[str] = []

    def visit(vm_id: str) -> None:
        if vm_id in done:
            return
        if vm_id in visiting:
            cycle = " -> ".join([*visiting[visiting.index(vm_id) :], vm_id])
            raise ConceptError(
                "virtual meters depend on themselves",
                [Problem(f"cycle {cycle}", column="virtual_meters", meter=vm_id)],
            )
        visiting.append(vm_id)
        for ref in references(formulas[vm_id]):
            if ref.id in by_id:
                visit(ref.id)
        visiting.pop()
        done.add(vm_id)
        order.append(by_id[vm_id])

    for vm in site.virtual_meters:
        visit(vm.id)
    return order


def _block(rows: list[NDArray[Any]]) -> NDArray[Any] | None:
    """The 2-D array whose consecutive rows ``rows`` are (as
    :meth:`~lastgang.store.base.Store.load_profiles` returns them), as a read-only view of
    those rows; None if they are not such rows."""
    first = rows[0]
    base = first.base
    if not (
        isinstance(base, np.ndarray)
        and base.ndim == 2
        and base.dtype == first.dtype
        and base.flags.c_contiguous
        and first.ndim == 1
        and first.shape == (base.shape[1],)
    ):
        return None
    offset, rest = divmod(first.ctypes.data - base.ctypes.data, base.strides[0])
    if rest or offset < 0 or offset + len(rows) > base.shape[0]:
        return None
    step = base.strides[0]
    for k, row in enumerate(rows):
        if row.base is not base or row.shape != first.shape or row.strides != first.strides:
            return None
        if row.ctypes.data != first.ctypes.data + k * step:
            return None
    view: NDArray[Any] = base[offset : offset + len(rows)]
    view.flags.writeable = False
    return view


def _shared_rows(
    site: Site, profiles: Mapping[str, LoadProfile], start: int, stop: int
) -> tuple[FloatArray, FloatArray, NDArray[np.int8]] | None:
    """The import, export and quality arrays of the concept without a copy, when they are the
    profiles as given: a site without virtual meters and without an inverted meter whose every
    location has a profile of exactly ``[start, stop)``, the profiles being consecutive rows of
    one 2-D array per column in the order of the site file (as the store reads them). The
    result is read only (a view of the caller's arrays). None otherwise: then the rows are
    copied as always."""
    if site.virtual_meters or not site.locations:
        return None
    stored: list[LoadProfile] = []
    for loc in site.locations:
        profile = profiles.get(loc.id)
        if profile is None or (profile.start, profile.stop) != (start, stop):
            return None
        if any(meter.inverted for meter in loc.meters):
            return None
        stored.append(profile)
    imp = _block([p.import_kwh for p in stored])
    exp = _block([p.export_kwh for p in stored])
    quality = _block([p.quality for p in stored])
    if imp is None or exp is None or quality is None:
        return None
    if imp.dtype != np.float64 or exp.dtype != np.float64 or quality.dtype != np.int8:
        return None
    return imp, exp, quality


def evaluate_concept(
    site: Site, profiles: Mapping[str, LoadProfile], start: int, stop: int
) -> ConceptResult:
    """Every location (physical direction) and virtual meter of ``site`` for slots
    ``[start, stop)``.

    ``profiles`` maps location ids to their load profiles as stored; a location without one comes
    back missing (``NaN``, ``Quality.MISSING``). Raises :class:`~lastgang.errors.ConceptError` for
    a formula that cannot be evaluated (parse error, unknown operand, cycle); ``lastgang check``
    reports those with their place.
    """
    if stop < start:
        raise ValueError(f"stop {stop} is before start {start}")
    tz = ZoneInfo(site.site.timezone)
    n_loc, n_vm, n = len(site.locations), len(site.virtual_meters), stop - start
    shared = _shared_rows(site, profiles, start, stop)
    if shared is not None:  # no copy of a site-year (17 bytes per value)
        return _result(site, start, stop, *shared, {x.id: profiles[x.id] for x in site.locations})
    rows = n_loc + n_vm
    # every row is written below (a location without a profile as missing), so no fill first;
    # the export starts as zeros from the system, and a row that is all +0.0 (a consumer's,
    # mostly) is not written: its memory is never touched
    imp = np.empty((rows, n))
    exp = np.zeros((rows, n))
    quality = np.empty((rows, n), dtype=np.int8)
    index: dict[str, int] = {}
    sources: dict[str, LoadProfile] = {}

    for m, loc in enumerate(site.locations):
        index.setdefault(loc.id, m)
        stored = profiles.get(loc.id)
        if stored is None:
            imp[m] = np.nan
            exp[m] = np.nan
            quality[m] = Quality.MISSING
            continue
        same = (stored.start, stored.stop) == (start, stop)
        window = stored if same else stored.window(start, stop)  # no copy of a whole profile
        sources[loc.id] = window
        physical = physical_profile(loc, window, tz)
        imp[m] = physical.import_kwh
        if physical.export_kwh.view(np.int64).any():  # -0.0 and NaN are written
            exp[m] = physical.export_kwh
        quality[m] = physical.quality

    problems: list[Problem] = []
    formulas: dict[str, Node] = {}
    known = {*(x.id for x in site.locations), *(x.id for x in site.virtual_meters)}
    for k, vm in enumerate(site.virtual_meters):
        index.setdefault(vm.id, n_loc + k)
        try:
            formulas[vm.id] = parse_formula(vm.formula)
        except FormulaError as exc:
            problems.append(
                Problem(exc.message, column=f"virtual_meters[{k}].formula", meter=vm.id)
            )
            continue
        for ref in references(formulas[vm.id]):
            if ref.id not in known:
                problems.append(
                    Problem(
                        f"unknown meter {ref.id!r}",
                        column=f"virtual_meters[{k}].formula",
                        meter=vm.id,
                    )
                )
    if problems:
        raise ConceptError("virtual meters cannot be evaluated; run 'lastgang check'", problems)

    def operand(ref: Ref) -> FloatArray:
        r = index[ref.id]
        result: FloatArray
        if ref.selector == "import":
            result = imp[r]
        elif ref.selector == "export":
            result = exp[r]
        else:
            result = imp[r] - exp[r]
        return result

    for vm in _order(site, formulas):
        m = index[vm.id]
        node = formulas[vm.id]
        value = evaluate(node, operand, n)
        missing = np.isnan(value)
        positive = np.where(value > 0, value, 0.0)
        negative = np.where(value < 0, -value, 0.0)
        positive[missing] = np.nan
        negative[missing] = np.nan
        if vm.positive_direction == "import":
            imp[m], exp[m] = positive, negative
        else:
            imp[m], exp[m] = negative, positive
        worst = np.full(n, Quality.L1, dtype=np.int8)
        for ref in references(node):
            np.maximum(worst, quality[index[ref.id]], out=worst)
        worst[missing] = Quality.MISSING
        quality[m] = worst

    return _result(site, start, stop, imp, exp, quality, sources)


def _result(
    site: Site,
    start: int,
    stop: int,
    imp: FloatArray,
    exp: FloatArray,
    quality: NDArray[np.int8],
    sources: dict[str, LoadProfile],
) -> ConceptResult:
    return ConceptResult(
        start=start,
        stop=stop,
        ids=(*(loc.id for loc in site.locations), *(vm.id for vm in site.virtual_meters)),
        import_kwh=imp,
        export_kwh=exp,
        quality=quality,
        roles=(*(loc.role for loc in site.locations), *(vm.role for vm in site.virtual_meters)),
        virtual=(False,) * len(site.locations) + (True,) * len(site.virtual_meters),
        names=(
            *(loc.name or loc.id for loc in site.locations),
            *(vm.name or vm.id for vm in site.virtual_meters),
        ),
        units={u.id: tuple(u.meters) for u in site.units},
        unit_kinds={u.id: u.kind for u in site.units},
        sources=sources,
    )
