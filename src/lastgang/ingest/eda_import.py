"""EDA ConsumptionRecord messages -> readings of a site (``lastgang import --format eda``).

:func:`read_eda` parses one message with :func:`~lastgang.ingest.eda.parse_consumption_record`
and maps it onto the site (``docs/format-eda.md``, "Importing"):

- The message's ``MeteringPoint`` (33 characters, TOR-4.1) must be the import or the export
  metering point ID of one location of the site.
- Measured flows, ``1-1:1.9.0 G.01`` (consumption) and ``1-1:2.9.0 G.01`` (production), in
  quarter hours (``QH``) and kWh become the location's interval values (primary kWh, quality
  from ``MM``). Consumption must come for the location's import metering point, production for
  its export metering point. The direction the message does not speak about is 0 kWh when the
  location has no metering point for it. A location with both (a prosumer) gets its two
  directions in two messages: each is also kept as an EDA series, and a quarter hour becomes
  an interval value once both directions are stored (see :func:`read_eda`).
- Every other series (community codes ``G.01T``, ``G.02``, ``G.03``, ``G.03R``, ``P.01``,
  ``P.01T``, unknown codes, hourly and daily values, reactive energy) is not a measured flow of
  the location. It is stored as an *EDA series* of the location, named
  ``eda <interval> <metering point> <meter code>`` (see :func:`eda_series_key`), which the load
  profile never reads; :func:`eda_series` reads it back. Nothing is dropped.

A later message for the same quarter hours replaces the stored values when its quality is at
least as good (the store keeps the best quality, then the latest batch); the replaced profile
values move to the history table (Q-2).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
from numpy.typing import NDArray

from lastgang.concept.model import Site
from lastgang.errors import InvalidInput
from lastgang.ids import is_metering_point_id, parse_metering_point_id
from lastgang.ingest.csv_readings import SiteIndex
from lastgang.ingest.eda import (
    EnergyDirection,
    EnergySeries,
    MeterCodeRole,
    parse_consumption_record,
)
from lastgang.ingest.rows import (
    ImportedFile,
    Problems,
    build_file,
    directions_of,
    interval_rows,
    metering_points_of,
)
from lastgang.profiles.readings import IntervalSeries
from lastgang.store import IntervalRows, ReadingSet, Store
from lastgang.timegrid import SLOT_SECONDS

__all__ = [
    "EDA_FORMAT",
    "FLOW_ROLES",
    "SERIES_LOCATION_PREFIX",
    "SeriesLookup",
    "eda_series",
    "eda_series_key",
    "read_eda",
]

SeriesLookup = Callable[[Sequence[str], int, int], Mapping[str, IntervalSeries]]
"""``lookup(keys, start_slot, stop_slot)``: stored interval series by key (per slot the best
quality, then the latest batch), as :meth:`lastgang.store.Store.readings` gives them."""

#: the format name of EDA batches in the raw archive
EDA_FORMAT = "eda"

#: EDA series are stored under the location id with this prefix (not a location of the site)
SERIES_LOCATION_PREFIX = "eda:"

#: meter code roles that are measured flows of a location (-> its interval values)
FLOW_ROLES = {
    MeterCodeRole.CONSUMPTION: "import",
    MeterCodeRole.PRODUCTION: "export",
}


def eda_series_key(metering_point: str, meter_code: str, interval: str = "QH") -> str:
    """The name an EDA series that is not a measured flow is stored under (in the ``meter``
    column of the interval values; never a meter key of a site, which has no spaces around an
    OBIS code): ``eda QH AT0099990000000000000000000100001 1-1:2.9.0 G.03``."""
    mp = metering_point.strip()
    if is_metering_point_id(mp):
        mp = parse_metering_point_id(mp).canonical
    return f"eda {interval} {mp} {' '.join(meter_code.split())}"


def eda_series(
    store: Store,
    site_id: str,
    metering_point: str,
    meter_code: str,
    start_slot: int,
    stop_slot: int,
    *,
    interval: str = "QH",
) -> IntervalSeries | None:
    """A stored EDA series (community share ``G.02``, received ``G.03``, surplus ``P.01``,
    ...) over the slots ``[start_slot, stop_slot)``: ``slot`` is the start of each period,
    the quantity is in ``import_kwh`` for ``1-1:1.9.0`` codes and in ``export_kwh`` for
    ``1-1:2.9.0`` codes. Per slot the best quality, then the latest batch. None when nothing
    is stored."""
    key = eda_series_key(metering_point, meter_code, interval)
    found = store.readings(site_id, [key], start_slot * SLOT_SECONDS, stop_slot * SLOT_SECONDS)
    readings = found.get(key)
    return None if readings is None else readings.intervals


def read_eda(
    content: bytes, source: str, index: SiteIndex, lookup: SeriesLookup | None = None
) -> ImportedFile:
    """The readings of one ConsumptionRecord message for the site of ``index``; every problem
    (of the message itself and of its mapping onto the site) raised together.

    ``lookup`` reads stored EDA series (see :data:`SeriesLookup`); it joins the two directions
    of a location with an import and an export metering point, which arrive in two messages:
    each message's flow is stored as an EDA series too, and the quarter hours for which the
    other direction is already stored become interval values of the location (the quality is
    the worse of the two). Without ``lookup`` (a check before importing) no such values come
    out."""
    record = parse_consumption_record(content, source)
    problems = Problems(source)
    site = index.site
    points = metering_points_of(site)
    mp_text = record.metering_point
    canonical = parse_metering_point_id(mp_text).canonical if is_metering_point_id(mp_text) else ""
    found = points.get(canonical)
    if found is None:
        problems.add(
            f"metering point {mp_text} of the message is not a metering point of site "
            f"{site.site.id!r}; add it as the import or export ID of a location "
            "(metering_points)",
            meter=mp_text,
        )
        raise InvalidInput(f"{source}: rejected, nothing imported", problems.summary())
    location, mp_direction = found
    loc_index = index.location_index[location]
    has = directions_of(site)[location]

    flow: list[tuple[str, EnergySeries]] = []
    other: list[EnergySeries] = []
    for series in record.series:
        code = series.meter_code
        direction = FLOW_ROLES.get(code.role)
        if direction is not None and direction != mp_direction:
            what = "consumption" if direction == "import" else "production"
            problems.add(
                f"meter code {code} ({what}, {direction}) in a message for metering point "
                f"{mp_text}, which is the {mp_direction} metering point of location "
                f"{location!r}; check the metering point IDs of the location",
                line=series.line,
                meter=str(code),
            )
            continue
        if direction is not None and series.interval == "QH" and series.unit == "kWh":
            flow.append((direction, series))
            continue
        off = np.flatnonzero(np.asarray(series.start) % SLOT_SECONDS != 0)
        if len(off):
            problems.add(
                f"{len(off)} period(s) of {code} ({series.interval}) do not start on a quarter "
                "hour; such values cannot be stored",
                line=series.line,
                meter=str(code),
            )
            continue
        other.append(series)

    # measured flows -> interval values of the location
    slots: list[np.ndarray] = []
    imports: list[np.ndarray] = []
    exports: list[np.ndarray] = []
    qualities: list[np.ndarray] = []
    for direction, series in flow:
        slot = np.asarray(series.start, dtype=np.int64) // SLOT_SECONDS
        quantity = np.asarray(series.quantity, dtype=np.float64)
        quality = np.asarray(series.quality, dtype=np.int8)
        other_side = "export" if direction == "import" else "import"
        if other_side in has:
            # a prosumer: the other direction comes with the message of its own metering
            # point; this direction is kept as a series and joined with the stored other one
            other.append(series)
            slot, quantity, quality, filler = _join_other(
                slot, quantity, quality, site, location, other_side, lookup
            )
        else:
            filler = np.zeros(len(slot), dtype=np.float64)
        slots.append(slot)
        imports.append(quantity if direction == "import" else filler)
        exports.append(filler if direction == "import" else quantity)
        qualities.append(quality)
    if slots:
        slot_all = np.concatenate(slots)
        flows = interval_rows(
            index,
            np.full(len(slot_all), loc_index, dtype=np.int64),
            slot_all,
            np.concatenate(imports),
            np.concatenate(exports),
            np.concatenate(qualities),
            problems,
        )
    else:
        flows = IntervalRows()
    if problems:
        raise InvalidInput(
            f"{source}: rejected, nothing imported ({len(problems.items)} problem(s))",
            problems.summary(),
        )
    intervals = _with_series(flows, location, other, canonical)
    rows = sum(len(s) for s in record.series)
    return build_file(
        source,
        "intervals",
        EDA_FORMAT,
        rows,
        ReadingSet(intervals=intervals),
        index,
        warnings=record.warnings,
        extra_locations=(location,),
    )


def _with_series(
    flows: IntervalRows, location: str, series: list[EnergySeries], metering_point: str
) -> IntervalRows:
    """``flows`` plus the EDA series stored under their own names (not profile meters)."""
    if not series:
        return flows
    # kept beside the location (SERIES_LOCATION_PREFIX + id): they are not values of the
    # location, so storing them rebuilds no profile
    beside = SERIES_LOCATION_PREFIX + location
    locations = (*flows.locations, beside)
    loc_local = len(locations) - 1
    keys = [eda_series_key(metering_point, str(s.meter_code), s.interval) for s in series]
    meters = tuple(dict.fromkeys([*flows.meters, *keys]))
    parts_loc = [flows.location]
    parts_meter = [flows.meter]
    parts_slot = [flows.slot]
    parts_imp = [flows.import_kwh]
    parts_exp = [flows.export_kwh]
    parts_q = [flows.quality]
    for key, s in zip(keys, series, strict=True):
        n = len(s)
        quantity = np.asarray(s.quantity, dtype=np.float64)
        zero = np.zeros(n, dtype=np.float64)
        to_export = s.meter_code.direction is EnergyDirection.EXPORT
        parts_loc.append(np.full(n, loc_local, dtype=np.int32))
        parts_meter.append(np.full(n, meters.index(key), dtype=np.int32))
        parts_slot.append(np.asarray(s.start, dtype=np.int64) // SLOT_SECONDS)
        parts_imp.append(zero if to_export else quantity)
        parts_exp.append(quantity if to_export else zero)
        parts_q.append(np.asarray(s.quality, dtype=np.int8))
    return IntervalRows(
        locations=locations,
        meters=meters,
        location=np.concatenate(parts_loc).astype(np.int32),
        meter=np.concatenate(parts_meter).astype(np.int32),
        slot=np.concatenate(parts_slot).astype(np.int64),
        import_kwh=np.concatenate(parts_imp).astype(np.float64),
        export_kwh=np.concatenate(parts_exp).astype(np.float64),
        quality=np.concatenate(parts_q).astype(np.int8),
        primary=True,
    )


def _join_other(
    slot: NDArray[np.int64],
    quantity: NDArray[np.float64],
    quality: NDArray[np.int8],
    site: Site,
    location: str,
    other_side: str,
    lookup: SeriesLookup | None,
) -> tuple[NDArray[np.int64], NDArray[np.float64], NDArray[np.int8], NDArray[np.float64]]:
    """The slots of a flow whose other direction is stored, with that direction's values and
    the worse quality of the two."""
    empty = (
        np.zeros(0, dtype=np.int64),
        np.zeros(0, dtype=np.float64),
        np.zeros(0, dtype=np.int8),
        np.zeros(0, dtype=np.float64),
    )
    if lookup is None or not len(slot):
        return empty
    loc = site.location(location)
    text = loc.metering_points.export if other_side == "export" else loc.metering_points.import_
    assert text is not None
    code = "1-1:2.9.0 G.01" if other_side == "export" else "1-1:1.9.0 G.01"
    key = eda_series_key(text, code, "QH")
    stored = lookup([key], int(slot.min()), int(slot.max()) + 1).get(key)
    if stored is None or not len(stored.slot):
        return empty
    values = stored.export_kwh if other_side == "export" else stored.import_kwh
    pos = np.clip(np.searchsorted(stored.slot, slot), 0, len(stored.slot) - 1)
    found = stored.slot[pos] == slot
    return (
        slot[found],
        quantity[found],
        np.maximum(quality[found], stored.quality[pos[found]]).astype(np.int8),
        np.asarray(values, dtype=np.float64)[pos[found]],
    )
