"""Persistence: the raw archive, readings, load profiles and site versions.

The rest of lastgang talks to a :class:`Store`, a small protocol, so that a server database can be
added next to the embedded default (:mod:`lastgang.store.duckdb_store`). :func:`open_store` opens
the file named by ``--db``, the environment variable ``LASTGANG_DB`` or ``./lastgang.duckdb``.

Everything crosses this boundary column-wise: readings go in as numpy arrays (one row object per
value never exists), load profiles come back as :class:`~lastgang.profiles.types.LoadProfile`.
Times are UTC: epoch seconds for readings, quarter-hour slot numbers for profiles (DESIGN.md).
See ``docs/store.md`` for the tables and the guarantees.
"""

from __future__ import annotations

import os
from collections.abc import (
    Callable,
    Collection,
    Generator,
    Iterable,
    Mapping,
    Sequence,
)
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from lastgang.concept.model import Site
from lastgang.profiles.readings import MeterReadings
from lastgang.profiles.types import LoadProfile

__all__ = [
    "DB_ENV",
    "DEFAULT_DB",
    "BatchInfo",
    "FilePiece",
    "IntervalRows",
    "PhaseRows",
    "ProfileHistory",
    "ReadingSet",
    "RegisterRows",
    "SiteVersion",
    "StatusRows",
    "Store",
    "open_store",
    "resolve_db_path",
]

#: environment variable naming the store file when ``--db`` is not given
DB_ENV = "LASTGANG_DB"
#: the store file used when neither ``--db`` nor ``LASTGANG_DB`` is given
DEFAULT_DB = "lastgang.duckdb"

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]
IndexArray = NDArray[np.int32]


def _ints(n: int = 0) -> IntArray:
    return np.zeros(n, dtype=np.int64)


def _index(n: int = 0) -> IndexArray:
    return np.zeros(n, dtype=np.int32)


def _floats(n: int = 0) -> FloatArray:
    return np.zeros(n, dtype=np.float64)


@dataclass(frozen=True)
class SiteVersion:
    """One applied version of a site configuration (the TOML text exactly as applied)."""

    site_id: str
    version: int
    text: str
    source: str
    applied_at: datetime
    #: first instant whose meter facts this version changes (``None``: no meter fact changed)
    effective_from: datetime | None
    site: Site


@dataclass(frozen=True)
class BatchInfo:
    """One entry of the raw archive (TOR-7.1): a file's bytes as received, kept unchanged."""

    batch: int
    site_id: str
    sha256: str
    source: str
    format: str
    imported_at: datetime
    size: int
    site_version: int
    #: conversion factors in force per meter key when the batch was imported (TOR-7.1, TOR-4.4)
    factors: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FilePiece:
    """A piece of whole lines of a large file of interval values, as the piecewise reader read
    it: its bytes ``[start, stop)`` in the file (the header line not among them) and the
    distinct metering point names its rows give, as written. Kept with the batch
    (:meth:`Store.save_batch_pieces`), so that a rebuild of a few locations reads only the
    pieces holding their rows (:meth:`Store.batch_range`)."""

    start: int
    stop: int
    names: frozenset[str]


@dataclass(frozen=True, eq=False)
class RegisterRows:
    """Register readings of one batch, column-wise (kWh as read, secondary for CT meters).

    ``meter`` indexes ``meters`` (keys ``manufacturer:serial``), ``register`` indexes ``registers``
    (OBIS codes such as ``1-0:1.8.0``); ``time`` is UTC epoch seconds."""

    meters: tuple[str, ...] = ()
    registers: tuple[str, ...] = ()
    meter: IndexArray = field(default_factory=_index)
    register: IndexArray = field(default_factory=_index)
    time: IntArray = field(default_factory=_ints)
    value: FloatArray = field(default_factory=_floats)

    def __len__(self) -> int:
        return len(self.time)


@dataclass(frozen=True, eq=False)
class PhaseRows:
    """Per-phase active power samples of one batch (kW as read, positive = import)."""

    meters: tuple[str, ...] = ()
    meter: IndexArray = field(default_factory=_index)
    time: IntArray = field(default_factory=_ints)
    l1: FloatArray = field(default_factory=_floats)
    l2: FloatArray = field(default_factory=_floats)
    l3: FloatArray = field(default_factory=_floats)

    def __len__(self) -> int:
        return len(self.time)


@dataclass(frozen=True, eq=False)
class IntervalRows:
    """15-minute energies of one batch per metering location (primary kWh unless ``primary`` is
    false). ``meter`` indexes ``meters`` (-1: no meter known at that slot)."""

    locations: tuple[str, ...] = ()
    meters: tuple[str, ...] = ()
    location: IndexArray = field(default_factory=_index)
    meter: IndexArray = field(default_factory=_index)
    slot: IntArray = field(default_factory=_ints)
    import_kwh: FloatArray = field(default_factory=_floats)
    export_kwh: FloatArray = field(default_factory=_floats)
    quality: NDArray[np.int8] = field(default_factory=lambda: np.zeros(0, dtype=np.int8))
    primary: bool = True

    def __len__(self) -> int:
        return len(self.slot)


@dataclass(frozen=True, eq=False)
class StatusRows:
    """Status events of one batch (TOR-6.2): ``code`` indexes ``codes``."""

    meters: tuple[str, ...] = ()
    codes: tuple[str, ...] = ()
    meter: IndexArray = field(default_factory=_index)
    code: IndexArray = field(default_factory=_index)
    time: IntArray = field(default_factory=_ints)

    def __len__(self) -> int:
        return len(self.time)


@dataclass(frozen=True, eq=False)
class ReadingSet:
    """Everything one batch contributes to the readings tables."""

    registers: RegisterRows = field(default_factory=RegisterRows)
    phases: PhaseRows = field(default_factory=PhaseRows)
    intervals: IntervalRows = field(default_factory=IntervalRows)
    status: StatusRows = field(default_factory=StatusRows)

    def __len__(self) -> int:
        return len(self.registers) + len(self.phases) + len(self.intervals) + len(self.status)

    @property
    def nbytes(self) -> int:
        """The bytes of its arrays: what holding the batch in memory costs."""
        rows = (self.registers, self.phases, self.intervals, self.status)
        return sum(v.nbytes for r in rows for v in vars(r).values() if isinstance(v, np.ndarray))

    def without(self, meters: Collection[str], locations: Collection[str]) -> ReadingSet:
        """The rows of the set but those of ``meters`` (register readings, phase samples,
        status events) and of ``locations`` (interval values): what a rebuild of the other
        locations stores of the batch. The name lists stay as they are."""
        intervals = self.intervals
        keep = _not_named(intervals.location, intervals.locations, locations)
        return ReadingSet(
            registers=_rows_where(self.registers, self.registers.meters, meters),
            phases=_rows_where(self.phases, self.phases.meters, meters),
            intervals=intervals if keep is None else _take(intervals, keep),
            status=_rows_where(self.status, self.status.meters, meters),
        )


def _not_named(
    codes: IndexArray, names: Sequence[str], dropped: Collection[str]
) -> NDArray[np.bool_] | None:
    """Which rows' name (``names[code]``) is not in ``dropped``; None: all of them."""
    hit = [k for k, name in enumerate(names) if name in dropped]
    if not hit or not len(codes):
        return None
    keep: NDArray[np.bool_] = ~np.isin(codes, np.array(hit, dtype=codes.dtype))
    return keep


_Rows = TypeVar("_Rows", RegisterRows, PhaseRows, IntervalRows, StatusRows)


def _take(rows: _Rows, keep: NDArray[np.bool_]) -> _Rows:
    """``rows`` with the rows ``keep`` marks (every array column filtered alike)."""
    columns: dict[str, Any] = {
        name: value[keep] for name, value in vars(rows).items() if isinstance(value, np.ndarray)
    }
    return replace(rows, **columns)


def _rows_where(rows: _Rows, names: Sequence[str], dropped: Collection[str]) -> _Rows:
    keep = _not_named(rows.meter, names, dropped)
    return rows if keep is None else _take(rows, keep)


@dataclass(frozen=True, eq=False)
class ProfileHistory:
    """Superseded load profile values of one location (Q-2: substitutes replaced later),
    column-wise, oldest replacement first."""

    slot: IntArray
    import_kwh: FloatArray
    export_kwh: FloatArray
    quality: NDArray[np.int8]
    batch: IntArray
    meter: tuple[str | None, ...]
    replaced_at: tuple[datetime, ...]
    replaced_by_batch: IntArray

    def __len__(self) -> int:
        return len(self.slot)


@runtime_checkable
class Store(Protocol):
    """What lastgang needs from a database. Every method is one statement or a few; the
    business rules live in :mod:`lastgang.services`.

    Writes made inside :meth:`transaction` become visible together or not at all."""

    @property
    def location(self) -> str:
        """Where the store lives (file path or URL), for messages."""
        ...

    def close(self) -> None: ...

    def transaction(self) -> AbstractContextManager[None]:
        """Everything inside is committed together, or rolled back on any exception. Nests."""
        ...

    # -- site versions and the metering point ID registry -----------------------------------

    def save_site_version(
        self,
        site: Site,
        text: str,
        source: str,
        metering_points: Mapping[str, tuple[str, str]],
        applied_at: datetime,
        effective_from: datetime | None,
    ) -> SiteVersion:
        """Store ``site`` as its next version and register its metering point IDs
        (canonical ID -> (location id, direction)). Raises ``StoreError`` naming every ID that
        is registered to another location (TOR-4.1: never moved, never reused)."""
        ...

    def check_metering_points(
        self, site_id: str, metering_points: Mapping[str, tuple[str, str]]
    ) -> None:
        """Raise the ``StoreError`` :meth:`save_site_version` would raise for these metering
        point IDs, without storing anything."""
        ...

    def site_version(self, site_id: str, version: int | None = None) -> SiteVersion:
        """A stored version (the latest by default); ``StoreError`` for an unknown site."""
        ...

    def site_versions(self, site_id: str) -> list[SiteVersion]: ...

    def site_ids(self) -> list[str]: ...

    def metering_point_registry(self) -> dict[str, tuple[str, str, str]]:
        """Every ID ever registered: canonical ID -> (site id, location id, direction)."""
        ...

    # -- raw archive ---------------------------------------------------------------------------

    def find_batch(self, site_id: str, sha256: str) -> BatchInfo | None: ...

    def add_batch(
        self,
        site_id: str,
        content: bytes | None,
        sha256: str,
        source: str,
        format: str,
        imported_at: datetime,
        site_version: int,
        factors: Mapping[str, Any],
        *,
        size: int | None = None,
    ) -> BatchInfo:
        """Archive the exact bytes of one input and give it the next batch number. Without
        ``content`` the archive :meth:`prepare_batch` prepared for ``sha256`` is stored (it
        must be whole: :meth:`archive_prepared`), and ``size`` says how many bytes it holds."""
        ...

    def archive_prepared(self, sha256: str) -> bool:
        """Whether the archive of ``sha256`` is prepared whole (waits for its preparation), so
        that :meth:`add_batch` needs no bytes for it."""
        ...

    def prepare_batch(self, content: bytes, sha256: str) -> None:
        """Start preparing, in the background, what :meth:`add_batch` of ``content`` will store
        (its compressed chunks), so that the work overlaps the checking of the file.
        :meth:`add_batch` with the same ``sha256`` takes it; nothing is stored here."""
        ...

    def prepare_parts(
        self, sha256: str, parts: Callable[[int], Iterable[bytes]]
    ) -> Generator[bytes, None, None]:
        """:meth:`prepare_batch` of a file read part by part, never held whole: ``parts(size)``
        gives its bytes in consecutive parts of ``size`` bytes (the last one shorter), the size
        of the archive's chunks; each part is given on unchanged while it is compressed in the
        background, and the archive of ``sha256`` is prepared once the last part has passed
        (not if the parts are left before). A part shorter than ``size`` before the last one
        raises :class:`~lastgang.errors.StoreError`. ``sha256`` is the caller's hash of the
        bytes: check it against what passed."""
        ...

    def drop_prepared(self, sha256: str | None = None) -> None:
        """Forget what :meth:`prepare_batch` prepared and no :meth:`add_batch` took (only that
        of ``sha256`` when given)."""
        ...

    def batches(
        self,
        site_id: str,
        *,
        newest_first: bool = False,
        offset: int = 0,
        limit: int | None = None,
    ) -> list[BatchInfo]:
        """The site's archive entries in import order (or the newest first), ``limit`` of
        them from ``offset`` (all by default)."""
        ...

    def batch_count(self, site_id: str) -> int:
        """How many entries the site's archive holds."""
        ...

    def change_stamp(self, site_id: str) -> str | None:
        """A random text drawn again whenever the site's configuration or its load profiles
        change (a version applied, an import, a rebuild), so what is computed from both may be
        kept while it stays the same; stamps of two stores never match. ``None`` for an
        unknown site, or a store opened read only that was written before stamps were kept."""
        ...

    def batches_numbered(self, site_id: str, numbers: Iterable[int]) -> list[BatchInfo]:
        """The site's archive entries with these numbers, in import order (numbers of other
        sites or of no entry are left out)."""
        ...

    def batch_content(self, batch: int) -> bytes:
        """The archived bytes of a batch, exactly as imported (TOR-7.1)."""
        ...

    def batch_parts(self, batch: int) -> Generator[bytes, None, None]:
        """The archived bytes of a batch as consecutive parts (joined: :meth:`batch_content`),
        given one after the other while the next few are made, so that a large file need not
        be held whole."""
        ...

    def batch_range(self, batch: int, start: int, stop: int) -> Generator[bytes, None, None]:
        """The archived bytes ``[start, stop)`` of a batch as consecutive parts; only the
        chunks holding them are read."""
        ...

    def save_batch_pieces(self, batch: int, pieces: Sequence[FilePiece]) -> None:
        """Keep the pieces a large file of interval values was read in (replacing those kept
        before)."""
        ...

    def batch_pieces(self, batch: int) -> list[FilePiece] | None:
        """:meth:`save_batch_pieces` of a batch, in file order; None when none were kept."""
        ...

    # -- readings --------------------------------------------------------------------------------

    def add_readings(self, site_id: str, batch: int, rows: ReadingSet) -> None: ...

    def reading_spans(self, site_id: str, batch: int) -> dict[str, tuple[int, int]]:
        """Per meter key (and per location id for interval values, keyed ``@location``): the
        UTC time span ``[first, last]`` (epoch seconds) the readings of ``batch`` change,
        widened to the neighbouring readings of other batches that they are differenced with."""
        ...

    def readings(
        self, site_id: str, meters: Sequence[str], start: int, stop: int
    ) -> dict[str, MeterReadings]:
        """Readings of ``meters`` for the UTC epoch-second window ``[start, stop]``: register
        readings and phase samples inside it plus the nearest one on either side, interval values
        of the slots inside it, status events inside it. Where several batches hold a value for
        the same time, the latest batch wins (interval values: best quality, then latest)."""
        ...

    def interval_readings(
        self, site_id: str, location_ids: Sequence[str], start_slot: int, stop_slot: int
    ) -> dict[str, MeterReadings]:
        """Interval values of locations without a meter key, keyed by location id."""
        ...

    def has_other_readings(
        self, site_id: str, batch: int, meters: Sequence[str], location_ids: Sequence[str]
    ) -> bool:
        """Whether the store holds readings of ``meters`` (any kind) or interval values of
        ``location_ids`` from another batch than ``batch``, or register readings, phase samples
        or status events of ``meters`` from any batch."""
        ...

    # -- load profiles ---------------------------------------------------------------------------

    def save_profiles(
        self,
        site_id: str,
        profiles: Mapping[str, LoadProfile],
        replaced_at: datetime,
        *,
        history: bool = True,
    ) -> int:
        """Replace the stored values of each location over the profile's slots. Values that
        change go to the history table (with ``history``). Returns the count moved there."""
        ...

    def load_profiles(
        self, site_id: str, location_ids: Sequence[str], start: int, stop: int
    ) -> dict[str, LoadProfile]:
        """Stored profiles over the slots ``[start, stop)``, one per requested location; slots
        without a stored value come back missing."""
        ...

    def profile_extent(
        self, site_id: str, location_ids: Sequence[str]
    ) -> dict[str, tuple[int, int]]:
        """First and one-past-last stored slot per location (locations without values absent)."""
        ...

    def profile_history(
        self, site_id: str, location_id: str, start: int, stop: int
    ) -> ProfileHistory: ...

    def save_batch_names(self, batch: int, names: Mapping[str, str]) -> None:
        """Keep the names a batch's reader looked meters up by, with the meter each gave
        (replacing those kept before)."""
        ...

    def batch_names(self, site_id: str) -> dict[int, dict[str, str]]:
        """:meth:`save_batch_names` of every batch of the site that has them."""
        ...

    def mark_rebuild_pending(self, site_id: str, locations: Collection[str] | None) -> None:
        """Record that the applied configuration reads the stored readings of ``locations``
        (``None``: of every location) otherwise than the one they were built with."""
        ...

    def rebuild_pending(self, site_id: str) -> frozenset[str] | None:
        """The locations :meth:`mark_rebuild_pending` recorded since the site's last rebuild
        (``None``: every location; empty: none)."""
        ...

    def begin_rebuild(
        self,
        site_id: str,
        *,
        keep_locations: Collection[str] = (),
        keep_meters: Collection[str] = (),
    ) -> frozenset[int]:
        """Set the profile values of the locations not in ``keep_locations`` aside and clear
        them, their interval values, and the register readings, phase samples and status
        events of the meters not in ``keep_meters`` (by default everything of the site).
        Returns the batches whose readings were cleared."""
        ...

    def finish_rebuild(self, site_id: str, replaced_at: datetime) -> int:
        """Compare the rebuilt profiles with the values set aside; changed or vanished values go
        to the history table. Returns how many did. No rebuild is pending afterwards."""
        ...

    def exclusive(self) -> AbstractContextManager[None]:
        """No other thread of the process uses the store inside (as inside a transaction), but
        the transactions inside commit one by one. Nests, with transactions too."""
        ...

    def begin_stand_in(self, site_id: str) -> str:
        """The id of a new stand-in for the site, under which a whole rebuild stores its
        readings and profiles batch by batch (committed, unseen by the site's readers) until
        :meth:`replace_by_stand_in`. Every other stand-in of the site is dropped first: what a
        stopped rebuild left, or that of a rebuild still running on another connection, whose
        swap then refuses."""
        ...

    def replace_by_stand_in(self, site_id: str, stand_in: str, replaced_at: datetime) -> int:
        """Replace the site's readings and profiles by those of its stand-in, in one
        transaction: profile values that changed or vanished go to the history table, and
        every reading and profile of the site is the stand-in's afterwards. Returns how many
        values went to the history. No rebuild is pending afterwards. Raises ``StoreError``
        when the stand-in was dropped meanwhile (another rebuild of the site began) or another
        connection's change of the site's rows conflicts."""
        ...

    def drop_stand_in(self, stand_in: str) -> None:
        """Drop everything stored under a stand-in (a rebuild refused or stopped)."""
        ...

    def counts(self, site_id: str | None = None) -> dict[str, int]:
        """Row count of every table (of one site), for summaries and tests."""
        ...


def resolve_db_path(path: str | os.PathLike[str] | None = None) -> Path:
    """``path`` if given, else ``$LASTGANG_DB``, else ``./lastgang.duckdb``."""
    if path is not None and str(path):
        return Path(path)
    env = os.environ.get(DB_ENV, "").strip()
    return Path(env) if env else Path(DEFAULT_DB)


def open_store(
    path: str | os.PathLike[str] | None = None,
    *,
    read_only: bool = False,
    notice: Callable[[str], None] | None = None,
) -> Store:
    """Open (and create if needed) the embedded store. ``StoreError`` when the file is locked by
    another process or is not a lastgang store. ``notice`` is told of a one-time upgrade of an
    older store before it starts."""
    from lastgang.store.duckdb_store import DuckDBStore

    return DuckDBStore(resolve_db_path(path), read_only=read_only, notice=notice)
