"""The embedded store: one DuckDB file (the default backend of :class:`lastgang.store.Store`).

Values cross the boundary as numpy arrays: inserts register a dict of arrays with DuckDB and run
one ``INSERT ... SELECT`` (never one Python call per value); reads use ``fetchnumpy``. Strings
that repeat per row (meter keys, location ids) travel as small lookup tables joined in SQL, so no
array of Python strings per value is ever built. Tables and guarantees: ``docs/store.md``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
import uuid
from collections import deque
from collections.abc import (
    Callable,
    Collection,
    Generator,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
from numpy.typing import NDArray

from lastgang.cache import SizedCache
from lastgang.concept.model import Site
from lastgang.errors import Problem, StoreError
from lastgang.profiles.readings import (
    IntervalSeries,
    MeterReadings,
    PhaseSeries,
    RegisterSeries,
    StatusSeries,
)
from lastgang.profiles.types import LoadProfile
from lastgang.quality import Quality
from lastgang.store import (
    BatchInfo,
    FilePiece,
    ProfileHistory,
    ReadingSet,
    SiteVersion,
)
from lastgang.store._arrow import arrow_chunks
from lastgang.store.compression import compress, inflate, inflate_prefix

__all__ = ["CHUNK_BYTES", "SCHEMA", "SCHEMA_VERSION", "DuckDBStore", "paged"]

SCHEMA_VERSION = 7

#: the raw archive's chunks as DuckDB keeps them: their bytes as they are (they are compressed
#: already). Left to itself DuckDB compresses a BLOB column with ZSTD a vector of 2,048 rows at
#: a time, so reading one batch's chunks inflated every chunk of the vector: 0.37-0.41 s and
#: 212 MB for any one of twelve monthly files of 1,000 metering points (0.05 s now), and every
#: import paid for compressing bytes that do not compress. The files and invoices of billing
#: runs (:mod:`lastgang.store.runs`) are kept the same way.
_RAW_CHUNKS = """
CREATE TABLE IF NOT EXISTS {name} (
    batch BIGINT NOT NULL,
    seq INTEGER NOT NULL,
    data BLOB USING COMPRESSION uncompressed NOT NULL,
    codec VARCHAR DEFAULT 'none',
    PRIMARY KEY (batch, seq)
);
"""

#: the interval value rows (a template: the upgrade to version 6 creates the table anew)
_INTERVAL_VALUES = """
CREATE TABLE IF NOT EXISTS interval_values (
    key INTEGER NOT NULL,
    slot BIGINT NOT NULL,
    import_kwh DOUBLE NOT NULL,
    export_kwh DOUBLE NOT NULL,
    quality TINYINT NOT NULL,
    is_primary BOOLEAN NOT NULL,
    batch BIGINT NOT NULL
);
"""

#: interval value rows inserted at a time (their key column is made for that many at once)
_INSERT_ROWS = 1 << 22

#: every (site, location, meter) a site's load profiles ever held, by a number of the store
#: (the value rows carry that one number instead of three strings, as the interval rows do).
#: A template: the upgrade to version 7 creates the table anew. Before version 7 the numbers
#: ran per site, with DuckDB's hash of location and meter beside them (``h``), which the rows
#: written before version 4 (without a number) are read by.
_PROFILE_PAIRS = """
CREATE TABLE IF NOT EXISTS profile_pairs (
    pair INTEGER PRIMARY KEY,
    site_id VARCHAR NOT NULL,
    location_id VARCHAR NOT NULL,
    meter VARCHAR
);
"""

#: the load profile value rows, a quarter hour of a location each (a template, as above)
_PROFILE_VALUES = """
CREATE TABLE IF NOT EXISTS profile_values (
    pair INTEGER NOT NULL,
    slot BIGINT NOT NULL,
    import_kwh DOUBLE,
    export_kwh DOUBLE,
    quality TINYINT NOT NULL,
    batch BIGINT NOT NULL
);
"""

#: stores of these earlier schema versions are upgraded when opened for writing (and read as they
#: are when opened read-only): version 1 had no ``codec`` column in ``raw_chunks``, version 2 no
#: ``profile_pairs``, version 3 no ``pair`` numbers, version 4 let DuckDB compress the archive's
#: chunks and the billing runs' files and invoices (each such table is copied once into one
#: that keeps them as they are, :func:`_copy_as_they_are`, and swapped for it), version 5 kept
#: the site, location and meter of every interval value row as strings (rewritten with their
#: numbers from ``interval_keys``: :data:`_KEYED_INTERVALS`), version 6 those of every profile
#: value row, numbered per site or not at all (rewritten with the numbers of ``profile_pairs``,
#: which every pair of the store gets anew: :data:`_KEYED_PROFILES`; this also numbers the
#: rows of versions 2 and 3).
_UPGRADES: dict[int, tuple[str, ...]] = {
    1: ("ALTER TABLE raw_chunks ADD COLUMN codec VARCHAR DEFAULT 'none'",),
    2: (),  # profile_pairs made from the value rows (_KEYED_PROFILES)
    3: (),  # every value row numbered (_KEYED_PROFILES)
    4: (),  # the tables of _AS_THEY_ARE, copied by _copy_as_they_are, are swapped in
    5: (),  # interval_values rewritten with its keys (_KEYED_INTERVALS)
    6: (),  # profile_values rewritten with its pairs' numbers (_KEYED_PROFILES)
}

#: rewrite ``interval_values`` of a store before version 6 (site, location and meter as strings
#: in every row) with the numbers of ``interval_keys``, in the upgrade's transaction
_KEYED_INTERVALS = (
    """
    INSERT INTO interval_keys
    SELECT (row_number() OVER (ORDER BY site_id, location_id, meter NULLS FIRST))::INTEGER,
        site_id, location_id, meter
    FROM (SELECT DISTINCT site_id, location_id, meter FROM interval_values)
    """,
    "ALTER TABLE interval_values RENAME TO interval_values_v5",
    _INTERVAL_VALUES,
    """
    INSERT INTO interval_values
    SELECT k.key, v.slot, v.import_kwh, v.export_kwh, v.quality, v.is_primary, v.batch
    FROM interval_values_v5 v JOIN interval_keys k ON v.site_id = k.site_id
        AND v.location_id = k.location_id AND v.meter IS NOT DISTINCT FROM k.meter
    """,
    "DROP TABLE interval_values_v5",
)

#: rewrite ``profile_values`` of a store before version 7 (site, location and meter as strings
#: in every row, the pair's number per site or none) with numbers of the store: every pair the
#: site's ``profile_pairs`` named or a value row holds is numbered anew, by site, location and
#: meter, in the upgrade's transaction. (A version 2 store has no ``profile_pairs``: the schema
#: has just made an empty one.)
_KEYED_PROFILES = (
    "ALTER TABLE profile_values RENAME TO profile_values_v6",
    "ALTER TABLE profile_pairs RENAME TO profile_pairs_v6",
    _PROFILE_PAIRS,
    _PROFILE_VALUES,
    """
    INSERT INTO profile_pairs
    SELECT (row_number() OVER (ORDER BY site_id, location_id, meter NULLS FIRST))::INTEGER,
        site_id, location_id, meter
    FROM (
        SELECT site_id, location_id, meter FROM profile_pairs_v6
        UNION SELECT site_id, location_id, meter FROM profile_values_v6
    )
    """,
    """
    INSERT INTO profile_values
    SELECT k.pair, v.slot, v.import_kwh, v.export_kwh, v.quality, v.batch
    FROM profile_values_v6 v JOIN profile_pairs k ON v.site_id = k.site_id
        AND v.location_id = k.location_id AND v.meter IS NOT DISTINCT FROM k.meter
    """,
    "DROP TABLE profile_values_v6",
    "DROP TABLE profile_pairs_v6",
)

#: ``profile_values`` as the readers see it, one row per value with its site, location and
#: meter, in the columns of a store before version 7 (which, read as it is, has them in the row)
_PROFILE_ROWS = """(
    SELECT k.site_id, k.location_id, v.slot, v.import_kwh, v.export_kwh, v.quality, v.batch,
        k.meter, v.pair
    FROM profile_values v JOIN profile_pairs k ON v.pair = k.pair
)"""

#: ``interval_values`` as the readers see it, one row per value with its site, location and
#: meter (a store of schema 6 and later; one before it, read as it is, has them in the row)
_INTERVAL_ROWS = """(
    SELECT k.site_id, k.location_id, k.meter, v.slot, v.import_kwh, v.export_kwh, v.quality,
        v.is_primary, v.batch
    FROM interval_values v JOIN interval_keys k ON v.key = k.key
)"""

#: the tables whose BLOB column DuckDB keeps as it is since schema version 5 (``raw_chunks``
#: here, the others of :mod:`lastgang.store.runs`: compressed text and PDF files, which DuckDB's
#: ZSTD made no smaller; one PDF of 9,900 took 120 ms to read, 1 ms as they are)
_AS_THEY_ARE = {
    "raw_chunks": "data",
    "billing_run_outputs": "content",
    "billing_run_invoices": "content",
}

#: an upgraded store's tables are copied in transactions of about this many bytes: DuckDB holds
#: a transaction's rows in memory until its commit
_COPY_BYTES = 64 * 2**20


def _copy_as_they_are(con: duckdb.DuckDBPyConnection, version: int) -> list[str]:
    """Copy each table of ``_AS_THEY_ARE`` of a store of schema ``version`` (before 5) into
    ``<table>_v5``, whose BLOB column DuckDB keeps as it is; the tables copied, for the upgrade
    to swap in (in its transaction).

    One pass over each table: reading any of its rows inflates DuckDB's whole vector of them,
    for the archive of a site-year of 10,000 metering points in monthly files 2.1 GB and 3.7 s
    each time. The copy is committed a part at a time, so the new rows are never all held; an
    upgrade stopped half way copies afresh."""
    copied = []
    for table, column in _AS_THEY_ARE.items():
        found = con.execute(
            "SELECT sql FROM duckdb_tables() WHERE schema_name = 'main' AND table_name = ?",
            [table],
        ).fetchall()
        if not found:
            continue
        new = f"{table}_v5"
        con.execute(f"DROP TABLE IF EXISTS {new}")
        if table == "raw_chunks":  # version 1 had no codec (added in the upgrade's transaction)
            con.execute(_RAW_CHUNKS.format(name=new))
            codec = "codec" if version >= 2 else "'none'"
            select = f"SELECT batch, seq, data, {codec} FROM raw_chunks"
        else:
            con.execute(_kept_as_they_are(found[0][0], table, column))
            select = f"SELECT * FROM {table}"
        _copy_rows(con, select, new)
        copied.append(table)
    return copied


def _kept_as_they_are(ddl: str, table: str, column: str) -> str:
    """``ddl`` of ``table`` (as DuckDB gives it) made that of ``<table>_v5`` whose BLOB
    ``column`` DuckDB keeps as it is."""
    made, found = re.subn(rf"^CREATE TABLE {table}\(", f"CREATE TABLE {table}_v5(", ddl)
    made, kept = re.subn(
        rf'("?{column}"?) BLOB NOT NULL', r"\1 BLOB USING COMPRESSION uncompressed NOT NULL", made
    )
    if (found, kept) != (1, 1):
        raise StoreError(f"the table {table} is not as a lastgang store has it: {ddl}")
    return made


def _copy_rows(con: duckdb.DuckDBPyConnection, select: str, into: str) -> None:
    """The rows of ``select`` into the table ``into``, committed about every _COPY_BYTES."""
    reader = con.cursor()
    try:
        reader.execute(select)
        marks = ", ".join("?" * len(reader.description or ()))
        held = 0
        con.execute("BEGIN TRANSACTION")
        while rows := reader.fetchmany(16):
            con.executemany(f"INSERT INTO {into} VALUES ({marks})", rows)
            held += sum(len(v) for row in rows for v in row if isinstance(v, bytes))
            if held >= _COPY_BYTES:
                con.execute("COMMIT")
                con.execute("BEGIN TRANSACTION")
                held = 0
        con.execute("COMMIT")
    finally:
        reader.close()


#: raw bytes are archived in chunks of this size (no limit on the size of an input file)
CHUNK_BYTES = 16 * 1024 * 1024

#: chunks are stored compressed with Zstandard (``codec = 'zstd'``, :mod:`.compression`) where
#: that makes them smaller; ``'none'`` is the bytes as they are. Chunks archived before are
#: deflated (``'zlib'``) and read as they are.
_COMPRESSED = ("zstd", "zlib")

#: parsed site configurations by their stored JSON, shared by every store of the process: a
#: version never changes once applied, and parsing one of 10,000 units (6.6 MB of JSON, about
#: 50 MB parsed) takes half a second, which every page of the site would pay again. Keyed by
#: the text itself, so a different store or a different version is never mistaken for it.
_SITES: SizedCache[str, Site] = SizedCache(32 * 2**20)


def _parsed_site(model_json: str) -> Site:
    """The :class:`Site` of a stored ``model_json`` (frozen, so one object may serve all)."""
    return _SITES.get_or_make(
        model_json, lambda: Site.model_validate_json(model_json), lambda _: len(model_json)
    )


#: The whole schema; ``docs/store.md`` explains every table. Times of readings are UTC epoch
#: seconds, profile slots are UTC quarter-hour numbers (slot * 900 = epoch seconds of its start).
SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS store_info (
    key VARCHAR PRIMARY KEY,
    value VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS sites (
    site_id VARCHAR PRIMARY KEY,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS site_versions (
    site_id VARCHAR NOT NULL,
    version INTEGER NOT NULL,
    source VARCHAR NOT NULL,
    toml_text VARCHAR NOT NULL,
    model_json VARCHAR NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL,
    effective_from TIMESTAMPTZ,
    PRIMARY KEY (site_id, version)
);
CREATE TABLE IF NOT EXISTS metering_point_ids (
    metering_point_id VARCHAR PRIMARY KEY,
    site_id VARCHAR NOT NULL,
    location_id VARCHAR NOT NULL,
    direction VARCHAR NOT NULL,
    first_version INTEGER NOT NULL,
    registered_at TIMESTAMPTZ NOT NULL
);
CREATE SEQUENCE IF NOT EXISTS batch_numbers START 1;
CREATE TABLE IF NOT EXISTS raw_batches (
    batch BIGINT PRIMARY KEY,
    site_id VARCHAR NOT NULL,
    sha256 VARCHAR NOT NULL,
    source VARCHAR NOT NULL,
    format VARCHAR NOT NULL,
    imported_at TIMESTAMPTZ NOT NULL,
    site_version INTEGER NOT NULL,
    size BIGINT NOT NULL,
    factors VARCHAR NOT NULL,
    UNIQUE (site_id, sha256)
);
"""
    + _RAW_CHUNKS.format(name="raw_chunks")
    + """
CREATE TABLE IF NOT EXISTS register_readings (
    site_id VARCHAR NOT NULL,
    meter VARCHAR NOT NULL,
    obis VARCHAR NOT NULL,
    time BIGINT NOT NULL,
    value DOUBLE NOT NULL,
    batch BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS phase_samples (
    site_id VARCHAR NOT NULL,
    meter VARCHAR NOT NULL,
    time BIGINT NOT NULL,
    l1_kw DOUBLE NOT NULL,
    l2_kw DOUBLE NOT NULL,
    l3_kw DOUBLE NOT NULL,
    batch BIGINT NOT NULL
);
-- the (site, location, meter) of interval value rows, by a number of the store (the value
-- rows carry that one number instead of three strings: a third less time for their insert)
CREATE TABLE IF NOT EXISTS interval_keys (
    key INTEGER PRIMARY KEY,
    site_id VARCHAR NOT NULL,
    location_id VARCHAR NOT NULL,
    meter VARCHAR
);
"""
    + _INTERVAL_VALUES
    + """
CREATE TABLE IF NOT EXISTS status_events (
    site_id VARCHAR NOT NULL,
    meter VARCHAR NOT NULL,
    time BIGINT NOT NULL,
    code VARCHAR NOT NULL,
    batch BIGINT NOT NULL
);
"""
    + _PROFILE_PAIRS
    + _PROFILE_VALUES
    + """CREATE TABLE IF NOT EXISTS profile_history (
    site_id VARCHAR NOT NULL,
    location_id VARCHAR NOT NULL,
    slot BIGINT NOT NULL,
    import_kwh DOUBLE,
    export_kwh DOUBLE,
    quality TINYINT NOT NULL,
    batch BIGINT NOT NULL,
    meter VARCHAR,
    replaced_at TIMESTAMPTZ NOT NULL,
    replaced_by_batch BIGINT
);
-- a random stamp per site, drawn again whenever its configuration or its load profiles change
-- (what is computed from both, such as a chart, may be kept while the stamp stays)
CREATE TABLE IF NOT EXISTS site_changes (
    site_id VARCHAR NOT NULL,
    stamp VARCHAR NOT NULL,
    changed_at TIMESTAMPTZ NOT NULL
);
-- the names a batch's reader looked meters up by, with the meter each gave then ('': none,
-- '?': several); kept for the formats whose readers say them (telegrams, MQTT captures)
CREATE TABLE IF NOT EXISTS batch_names (
    batch BIGINT NOT NULL,
    name VARCHAR NOT NULL,
    meter VARCHAR NOT NULL
);
-- the pieces of whole lines a large file of interval values was read in: its bytes
-- [start, stop) and the distinct metering point names of its rows
CREATE TABLE IF NOT EXISTS batch_pieces (
    batch BIGINT NOT NULL,
    start BIGINT NOT NULL,
    stop BIGINT NOT NULL,
    names VARCHAR[] NOT NULL
);
-- locations whose stored readings and profiles were built under an earlier configuration
-- that reads them otherwise than the applied one (NULL: every location of the site); a rebuild
-- of the site empties it
CREATE TABLE IF NOT EXISTS rebuild_pending (
    site_id VARCHAR NOT NULL,
    location_id VARCHAR
);
-- the stand-ins whole rebuilds are storing a site's rows under until they replace the site's
CREATE TABLE IF NOT EXISTS rebuild_stand_ins (
    stand_in VARCHAR PRIMARY KEY,
    site_id VARCHAR NOT NULL,
    began_at TIMESTAMPTZ NOT NULL
);
"""
)

#: tables holding per-site rows, for :meth:`DuckDBStore.counts`
_SITE_TABLES = (
    "site_versions",
    "metering_point_ids",
    "raw_batches",
    "register_readings",
    "phase_samples",
    "interval_values",
    "status_events",
    "profile_values",
    "profile_history",
)

_SNAPSHOT = "rebuild_snapshot"

#: the start of the id a whole rebuild stores a site's rows under until they replace the site's
#: (:meth:`DuckDBStore.begin_stand_in`: ``~rebuild:<site>:<random>``): no site id can start so
_STAND_IN = "~rebuild:"

#: replaced profile rows compared with the new ones at a time (:meth:`DuckDBStore._keep_replaced`)
_HISTORY_ROWS = 1 << 22

#: the value rows of a site in a period (parameters ``$site``, ``$start``, ``$stop``)
_PERIOD_ROWS = "site_id = $site AND slot >= $start AND slot < $stop"


def _utc(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC)


def _require_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("naive datetime given to the store; use an aware (UTC) datetime")
    return value.astimezone(UTC)


class DuckDBStore:
    """:class:`lastgang.store.Store` in one DuckDB file (``:memory:`` for a throwaway store)."""

    def __init__(
        self,
        path: str | Path,
        *,
        read_only: bool = False,
        notice: Callable[[str], None] | None = None,
    ) -> None:
        """``notice`` is told, before it starts, of an upgrade of an older store (which may
        take a while: its raw archive is copied once)."""
        self._path = str(path)
        self._notice = notice
        self._lock = threading.RLock()
        self._depth = 0
        self._failed = False
        if self._path != ":memory:":
            parent = Path(self._path).parent
            if not parent.exists():
                raise StoreError(
                    f"cannot open the store {self._path}: the folder {parent} does not exist"
                )
        try:
            self._con = duckdb.connect(self._path, read_only=read_only)
        except duckdb.IOException as exc:
            raise StoreError(_open_message(self._path, str(exc))) from None
        except duckdb.Error as exc:
            raise StoreError(
                f"cannot open the store {self._path}: it is not a lastgang store ({exc}); "
                "name another file with --db or LASTGANG_DB"
            ) from None
        self._version = SCHEMA_VERSION
        self._prepared: dict[str, Future[list[tuple[str, bytes]] | None]] = {}
        self._preparer: ThreadPoolExecutor | None = None
        self._dropped = threading.Event()
        if not read_only:
            self._create_schema()
        self._check_version(upgrade=not read_only)

    # -- basics ------------------------------------------------------------------------------

    @property
    def location(self) -> str:
        return self._path

    @property
    def connection(self) -> duckdb.DuckDBPyConnection:
        """The DuckDB connection of the store, for tables kept beside its own in the same file
        and transactions (billing runs: :mod:`lastgang.store.runs`)."""
        return self._con

    def close(self) -> None:
        self.drop_prepared()
        if self._preparer is not None:
            self._preparer.shutdown(wait=True)
            self._preparer = None
        self._con.close()

    def __enter__(self) -> DuckDBStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _create_schema(self) -> None:
        self._con.execute("BEGIN TRANSACTION")
        try:
            pending_kept = self._has_table("rebuild_pending")
            self._con.execute(SCHEMA)
            if not pending_kept:
                # a store written before pending rebuilds were kept cannot say whether an
                # earlier version was applied without its rebuild: a site with data and more
                # than one version is rebuilt whole the next time
                self._con.execute(
                    "INSERT INTO rebuild_pending SELECT site_id, NULL FROM site_versions "
                    "WHERE site_id IN (SELECT site_id FROM raw_batches) "
                    "GROUP BY site_id HAVING count(*) > 1"
                )
            # sites of a store written before their changes were stamped get a stamp now
            self._con.execute(
                "INSERT INTO site_changes SELECT site_id, uuid()::VARCHAR, now() FROM sites "
                "WHERE site_id NOT IN (SELECT site_id FROM site_changes)"
            )
            self._con.execute(
                "INSERT INTO store_info VALUES ('schema_version', ?) ON CONFLICT DO NOTHING",
                [str(SCHEMA_VERSION)],
            )
            self._con.execute("COMMIT")
        except BaseException:
            self._con.execute("ROLLBACK")
            raise

    def _check_version(self, *, upgrade: bool) -> None:
        try:
            # drained (fetchone would leave the result open, and DuckDB then refuses to register
            # an array for the next query of a store opened read-only)
            row = self._one("SELECT value FROM store_info WHERE key = 'schema_version'")
        except duckdb.CatalogException:
            row = None
        if row is not None and int(row[0]) in _UPGRADES:
            self._version = int(row[0])
            if upgrade:
                if self._notice is not None:
                    what = "its profile values are numbered"
                    if self._version < 6:
                        what = "its interval and profile values are numbered"
                    if self._version < 5:
                        what = "its raw archive and billing runs' files are copied (about 20 s "
                        what += "per GB) and its interval and profile values numbered"
                    self._notice(
                        f"upgrading the store {self._path} from schema version {self._version} "
                        f"to {SCHEMA_VERSION}, once: {what}"
                    )
                copied = _copy_as_they_are(self._con, self._version) if self._version < 5 else []
                with self.transaction():
                    for version in range(self._version, SCHEMA_VERSION):
                        for sql in _UPGRADES[version]:
                            self._con.execute(sql)
                    if self._has_column("interval_values", "location_id"):
                        for sql in _KEYED_INTERVALS:
                            self._con.execute(sql)
                    if self._has_column("profile_values", "location_id"):
                        for sql in _KEYED_PROFILES:
                            self._con.execute(sql)
                    for table in copied:
                        self._con.execute(f"DROP TABLE {table}")
                        self._con.execute(f"ALTER TABLE {table}_v5 RENAME TO {table}")
                    self._con.execute(
                        "UPDATE store_info SET value = ? WHERE key = 'schema_version'",
                        [str(SCHEMA_VERSION)],
                    )
                self._version = SCHEMA_VERSION
            return
        if row is None or int(row[0]) != SCHEMA_VERSION:
            found = "none" if row is None else row[0]
            raise StoreError(
                f"the store {self._path} has schema version {found}, this lastgang needs "
                f"{SCHEMA_VERSION}; open it with a matching lastgang version"
            )

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self._lock:
            outer = self._depth == 0
            if outer:
                self._con.execute("BEGIN TRANSACTION")
                self._failed = False
            self._depth += 1
            try:
                yield
            except BaseException:
                self._failed = True
                raise
            finally:
                self._depth -= 1
                if outer:
                    if self._failed:
                        self._con.execute("ROLLBACK")
                    else:
                        self._commit()

    def _commit(self) -> None:
        try:
            self._con.execute("COMMIT")
        except duckdb.Error as exc:
            raise StoreError(f"the store {self._path} could not save the changes: {exc}") from None

    def _one(
        self, sql: str, params: Sequence[object] | Mapping[str, object] = ()
    ) -> tuple[Any, ...] | None:
        """The first row of ``sql`` (positional or named ``params``), or None."""
        given = dict(params) if isinstance(params, Mapping) else list(params)
        rows = self._con.execute(sql, given).fetchall()  # drained: DuckDB wants that
        return rows[0] if rows else None

    @contextmanager
    def _registered(self, **tables: Mapping[str, Any]) -> Iterator[None]:
        """Make dicts of numpy arrays visible to SQL under the given names."""
        names = list(tables)
        try:
            for name, columns in tables.items():
                self._con.register(name, dict(columns))
            yield
        finally:
            for name in names:
                self._con.unregister(name)

    # -- site versions and metering point IDs --------------------------------------------------

    def check_metering_points(
        self, site_id: str, metering_points: Mapping[str, tuple[str, str]]
    ) -> None:
        self._checked_registry(site_id, metering_points)

    def _checked_registry(
        self, site_id: str, metering_points: Mapping[str, tuple[str, str]]
    ) -> dict[str, tuple[str, str, str]]:
        """The metering point registry, after checking the site's IDs against it."""
        registry = self.metering_point_registry()
        problems: list[Problem] = []
        for mp_id, (location_id, _direction) in sorted(metering_points.items()):
            owner = registry.get(mp_id)
            if owner is not None and (owner[0], owner[1]) != (site_id, location_id):
                problems.append(
                    Problem(
                        f"metering point ID {mp_id} belongs to location {owner[1]!r} of "
                        f"site {owner[0]!r}; an ID is never moved to another location or "
                        "reused (TOR-4.1): give this location its own ID",
                        column=f"location {location_id!r}",
                    )
                )
        if problems:
            raise StoreError(
                f"site {site_id!r} not applied: {len(problems)} metering point ID(s) "
                "already belong to other locations",
                problems,
            )
        return registry

    def save_site_version(
        self,
        site: Site,
        text: str,
        source: str,
        metering_points: Mapping[str, tuple[str, str]],
        applied_at: datetime,
        effective_from: datetime | None,
    ) -> SiteVersion:
        site_id = site.site.id
        applied_at = _require_utc(applied_at)
        effective = None if effective_from is None else _require_utc(effective_from)
        with self.transaction():
            registry = self._checked_registry(site_id, metering_points)
            row = self._one(
                "SELECT coalesce(max(version), 0) FROM site_versions WHERE site_id = ?", [site_id]
            )
            version = int(row[0]) + 1 if row else 1
            if version == 1:
                self._con.execute("INSERT INTO sites VALUES (?, ?)", [site_id, applied_at])
            self._con.execute(
                "INSERT INTO site_versions VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    site_id,
                    version,
                    source,
                    text,
                    site.model_dump_json(by_alias=True),
                    applied_at,
                    effective,
                ],
            )
            new = [
                (mp_id, site_id, loc, direction, version, applied_at)
                for mp_id, (loc, direction) in sorted(metering_points.items())
                if mp_id not in registry
            ]
            if new:
                self._con.executemany(
                    "INSERT INTO metering_point_ids VALUES (?, ?, ?, ?, ?, ?)", new
                )
            self._changed(site_id)
        return SiteVersion(site_id, version, text, source, applied_at, effective, site)

    def _has_table(self, name: str) -> bool:
        row = self._one(
            "SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'main' AND table_name = ?",
            [name],
        )
        return bool(row and row[0])

    def _has_column(self, table: str, column: str) -> bool:
        row = self._one(
            "SELECT count(*) FROM duckdb_columns() WHERE schema_name = 'main' "
            "AND table_name = ? AND column_name = ?",
            [table, column],
        )
        return bool(row and row[0])

    @property
    def _intervals(self) -> str:
        """What to read the interval value rows from: each with its site, location and meter."""
        return _INTERVAL_ROWS if self._version >= 6 else "interval_values"

    @property
    def _profiles(self) -> str:
        """What to read the profile value rows from: each with its site, location and meter."""
        return _PROFILE_ROWS if self._version >= 7 else "profile_values"

    def _changed(self, site_id: str) -> None:
        """A new stamp for the site (inside the transaction of its change)."""
        self._con.execute("DELETE FROM site_changes WHERE site_id = ?", [site_id])
        self._con.execute("INSERT INTO site_changes VALUES (?, uuid()::VARCHAR, now())", [site_id])

    def change_stamp(self, site_id: str) -> str | None:
        row = None
        with contextlib.suppress(duckdb.CatalogException):  # read only, written before stamps
            # min: two connections that stamped an older store at once left two rows, each
            # standing for the same data until the next change replaces both
            row = self._one("SELECT min(stamp) FROM site_changes WHERE site_id = ?", [site_id])
        return None if row is None or row[0] is None else str(row[0])

    def _versions(self, site_id: str, version: int | None) -> list[SiteVersion]:
        sql = (
            "SELECT site_id, version, toml_text, source, epoch_ms(applied_at), "
            "epoch_ms(effective_from), model_json FROM site_versions WHERE site_id = ?"
        )
        params: list[object] = [site_id]
        if version is not None:
            sql += " AND version = ?"
            params.append(version)
        rows = self._con.execute(sql + " ORDER BY version", params).fetchall()
        out: list[SiteVersion] = []
        for sid, ver, text, source, applied, effective, model in rows:
            applied_at = _utc(applied)
            assert applied_at is not None
            out.append(
                SiteVersion(
                    sid,
                    ver,
                    text,
                    source,
                    applied_at,
                    _utc(effective),
                    _parsed_site(model),
                )
            )
        return out

    def site_version(self, site_id: str, version: int | None = None) -> SiteVersion:
        if version is None:
            row = self._one("SELECT max(version) FROM site_versions WHERE site_id = ?", [site_id])
            version = None if row is None else row[0]
        found = [] if version is None else self._versions(site_id, version)
        if not found:
            known = ", ".join(self.site_ids()) or "none yet"
            what = f"site {site_id!r}" + ("" if version is None else f" version {version}")
            raise StoreError(
                f"{what} is not in the store {self._path} (sites: {known}); "
                "apply its configuration first: lastgang site apply SITE.toml"
            )
        return found[0]

    def site_versions(self, site_id: str) -> list[SiteVersion]:
        return self._versions(site_id, None)

    def site_ids(self) -> list[str]:
        return [r[0] for r in self._con.execute("SELECT site_id FROM sites ORDER BY 1").fetchall()]

    def metering_point_registry(self) -> dict[str, tuple[str, str, str]]:
        rows = self._con.execute(
            "SELECT metering_point_id, site_id, location_id, direction FROM metering_point_ids"
        ).fetchall()
        return {r[0]: (r[1], r[2], r[3]) for r in rows}

    # -- raw archive -----------------------------------------------------------------------------

    _BATCH_COLUMNS = (
        "batch, site_id, sha256, source, format, epoch_ms(imported_at), size, site_version, factors"
    )

    @staticmethod
    def _batch(row: tuple[Any, ...]) -> BatchInfo:
        imported = _utc(row[5])
        assert imported is not None
        return BatchInfo(
            batch=int(row[0]),
            site_id=row[1],
            sha256=row[2],
            source=row[3],
            format=row[4],
            imported_at=imported,
            size=int(row[6]),
            site_version=int(row[7]),
            factors=json.loads(row[8]),
        )

    def find_batch(self, site_id: str, sha256: str) -> BatchInfo | None:
        row = self._one(
            f"SELECT {self._BATCH_COLUMNS} FROM raw_batches WHERE site_id = ? AND sha256 = ?",
            [site_id, sha256],
        )
        return None if row is None else self._batch(row)

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
        if content is None and (size is None or not self.archive_prepared(sha256)):
            raise StoreError(
                f"{source}: its archive was not prepared whole (size {size}); give its bytes"
            )
        length = len(content) if content is not None else size
        assert length is not None
        with self.transaction():
            row = self._one("SELECT nextval('batch_numbers')")
            assert row is not None
            batch = int(row[0])
            self._con.execute(
                "INSERT INTO raw_batches VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    batch,
                    site_id,
                    sha256,
                    source,
                    format,
                    _require_utc(imported_at),
                    site_version,
                    length,
                    json.dumps(factors, sort_keys=True),
                ],
            )
            prepared = self._prepared.pop(sha256, None)
            packed = None if prepared is None or prepared.cancelled() else prepared.result()
            # a preparation stopped by drop_prepared (another import) is not whole: pack again
            if packed is not None and len(packed) == _chunk_count(length):
                chunks: Iterator[tuple[str, bytes]] = iter(packed)
            elif content is None:
                raise StoreError(f"{source}: its prepared archive is not of {length} bytes")
            else:
                chunks = _archive_chunks(content)
            for seq, (codec, data) in enumerate(chunks):
                self._con.execute(
                    "INSERT INTO raw_chunks VALUES (?, ?, ?, ?)", [batch, seq, data, codec]
                )
        found = self.find_batch(site_id, sha256)
        assert found is not None
        return found

    def archive_prepared(self, sha256: str) -> bool:
        prepared = self._prepared.get(sha256)
        return prepared is not None and not prepared.cancelled() and prepared.result() is not None

    def prepare_batch(self, content: bytes, sha256: str) -> None:
        if sha256 in self._prepared:
            return
        if self._preparer is None:
            self._preparer = ThreadPoolExecutor(1, thread_name_prefix="lastgang-archive")
        self._prepared[sha256] = self._preparer.submit(_packed_chunks, content, self._dropped)

    def prepare_parts(
        self, sha256: str, parts: Callable[[int], Iterable[bytes]]
    ) -> Generator[bytes, None, None]:
        if sha256 in self._prepared:
            yield from parts(CHUNK_BYTES)
            return
        if self._preparer is None:
            self._preparer = ThreadPoolExecutor(1, thread_name_prefix="lastgang-archive")
        preparer = self._preparer
        packing: list[Future[tuple[str, bytes]]] = []
        last = CHUNK_BYTES
        try:
            for part in parts(CHUNK_BYTES):
                if last != CHUNK_BYTES:
                    raise StoreError(
                        f"a part of {last} bytes before the last one: parts of {CHUNK_BYTES} "
                        "bytes are archived"
                    )
                last = len(part)
                packing.append(preparer.submit(_pack, memoryview(part), 0))
                yield part
        except BaseException:
            for future in packing:
                future.cancel()
            raise
        if not packing:  # an empty file: one empty chunk
            packing.append(preparer.submit(_pack, memoryview(b""), 0))
        # after the chunks on the same thread: done when they are
        self._prepared[sha256] = preparer.submit(lambda: [f.result() for f in packing])

    def drop_prepared(self, sha256: str | None = None) -> None:
        if sha256 is not None:
            future = self._prepared.pop(sha256, None)
            if future is None or future.cancel() or future.done():
                return  # not prepared, not started yet, or done (its chunks let go now)
        self._dropped.set()  # a compression under way stops at its next chunk
        if self._preparer is not None:
            self._preparer.submit(self._dropped.clear)  # after it, the next one runs again
        if sha256 is None:
            for future in self._prepared.values():
                future.cancel()
            self._prepared.clear()

    def batches(
        self,
        site_id: str,
        *,
        newest_first: bool = False,
        offset: int = 0,
        limit: int | None = None,
    ) -> list[BatchInfo]:
        sql = f"SELECT {self._BATCH_COLUMNS} FROM raw_batches WHERE site_id = ? ORDER BY batch"
        sql += " DESC" if newest_first else ""
        params: list[object] = [site_id]
        sql = paged(sql, params, offset, limit)
        return [self._batch(r) for r in self._con.execute(sql, params).fetchall()]

    def batches_numbered(self, site_id: str, numbers: Iterable[int]) -> list[BatchInfo]:
        wanted = sorted({int(n) for n in numbers})
        if not wanted:
            return []
        rows = self._con.execute(
            f"SELECT {self._BATCH_COLUMNS} FROM raw_batches WHERE site_id = ? "
            "AND batch IN (SELECT unnest(?::BIGINT[])) ORDER BY batch",
            [site_id, wanted],
        ).fetchall()
        return [self._batch(r) for r in rows]

    def batch_count(self, site_id: str) -> int:
        row = self._one("SELECT count(*) FROM raw_batches WHERE site_id = ?", [site_id])
        return 0 if row is None else int(row[0])

    def batch_content(self, batch: int) -> bytes:
        return b"".join(self.batch_parts(batch))

    def batch_parts(self, batch: int) -> Generator[bytes, None, None]:
        rows = self._archived_chunks(batch)
        if len(rows) == 1:
            yield _unpack(bytes(rows[0][0]), rows[0][1])
            return
        # zstd and zlib let go of the GIL while they inflate: on every core, a few chunks ahead
        # of the one given (each is let go of here once given; only the compressed archive is
        # held whole)
        with ThreadPoolExecutor(_UNPACKERS, thread_name_prefix="lastgang-unpack") as pool:
            ahead = 2 * _UNPACKERS
            pending = deque(pool.submit(_unpack, bytes(d), c) for d, c in rows[:ahead])
            for data, codec in rows[ahead:]:
                yield pending.popleft().result()
                pending.append(pool.submit(_unpack, bytes(data), codec))
            while pending:
                yield pending.popleft().result()

    def batch_range(self, batch: int, start: int, stop: int) -> Generator[bytes, None, None]:
        size = CHUNK_BYTES
        found = self._con.execute(
            "SELECT b.size, count(*) FROM raw_batches b JOIN raw_chunks c USING (batch) "
            "WHERE b.batch = ? GROUP BY b.size",
            [batch],
        ).fetchall()
        if not found:
            raise StoreError(f"batch {batch} is not in the raw archive of {self._path}")
        length, count = int(found[0][0]), int(found[0][1])
        stop = min(stop, length)
        if start >= stop:
            return
        if count != _chunk_count(length):  # chunks of another size: read them all
            yield b"".join(self.batch_parts(batch))[start:stop]
            return
        codec = "codec" if self._version >= 2 else "'none'"
        rows = self._con.execute(
            f"SELECT seq, data, {codec} FROM raw_chunks WHERE batch = ? AND seq >= ? AND seq <= ? "
            "ORDER BY seq",
            [batch, start // size, (stop - 1) // size],
        ).fetchall()
        for seq, data, codec_of in rows:
            at = int(seq) * size
            end = min(size, length - at, stop - at)  # a chunk is inflated up to the range's end
            if codec_of in _COMPRESSED:
                part = inflate_prefix(bytes(data), end)
            else:
                part = _unpack(bytes(data), codec_of)[:end]
            if len(part) != end:
                raise StoreError(f"batch {batch}: archive chunk {seq} is not of its size")
            yield part[max(start - at, 0) :]

    def save_batch_pieces(self, batch: int, pieces: Sequence[FilePiece]) -> None:
        with self.transaction():
            self._con.execute("DELETE FROM batch_pieces WHERE batch = ?", [batch])
            if pieces:
                self._con.executemany(
                    "INSERT INTO batch_pieces VALUES (?, ?, ?, ?)",
                    [(batch, p.start, p.stop, sorted(p.names)) for p in pieces],
                )

    def batch_pieces(self, batch: int) -> list[FilePiece] | None:
        rows = []
        with contextlib.suppress(duckdb.CatalogException):  # read only, written before
            rows = self._con.execute(
                "SELECT start, stop, names FROM batch_pieces WHERE batch = ? ORDER BY start",
                [batch],
            ).fetchall()
        if not rows:
            return None
        return [FilePiece(int(a), int(b), frozenset(names)) for a, b, names in rows]

    def _archived_chunks(self, batch: int) -> list[tuple[Any, str | None]]:
        """The compressed chunks of a batch in order, with their codecs."""
        codec = "codec" if self._version >= 2 else "'none'"
        rows = self._con.execute(
            f"SELECT data, {codec} FROM raw_chunks WHERE batch = ? ORDER BY seq", [batch]
        ).fetchall()
        if not rows:
            raise StoreError(f"batch {batch} is not in the raw archive of {self._path}")
        return [(data, codec) for data, codec in rows]

    # -- readings --------------------------------------------------------------------------------

    def add_readings(self, site_id: str, batch: int, rows: ReadingSet) -> None:
        with self.transaction():
            self._add_registers(site_id, batch, rows)
            self._add_phases(site_id, batch, rows)
            self._add_intervals(site_id, batch, rows)
            self._add_status(site_id, batch, rows)

    @staticmethod
    def _keys(keys: Sequence[str]) -> dict[str, Any]:
        return {
            "idx": np.arange(len(keys), dtype=np.int32),
            "name": np.array(list(keys), dtype=object),
        }

    def _add_registers(self, site_id: str, batch: int, rows: ReadingSet) -> None:
        r = rows.registers
        if not len(r):
            return
        src = {"m": r.meter, "o": r.register, "t": r.time, "v": r.value}
        with self._registered(src=src, mk=self._keys(r.meters), ok=self._keys(r.registers)):
            self._con.execute(
                "INSERT INTO register_readings SELECT ?, mk.name, ok.name, src.t, src.v, ? "
                "FROM src JOIN mk ON src.m = mk.idx JOIN ok ON src.o = ok.idx",
                [site_id, batch],
            )

    def _add_phases(self, site_id: str, batch: int, rows: ReadingSet) -> None:
        p = rows.phases
        if not len(p):
            return
        src = {"m": p.meter, "t": p.time, "a": p.l1, "b": p.l2, "c": p.l3}
        with self._registered(src=src, mk=self._keys(p.meters)):
            self._con.execute(
                "INSERT INTO phase_samples SELECT ?, mk.name, src.t, src.a, src.b, src.c, ? "
                "FROM src JOIN mk ON src.m = mk.idx",
                [site_id, batch],
            )

    def _add_intervals(self, site_id: str, batch: int, rows: ReadingSet) -> None:
        v = rows.intervals
        if not len(v):
            return
        location = np.asarray(v.location)
        meter = np.asarray(v.meter)
        columns = {"s": v.slot, "i": v.import_kwh, "e": v.export_kwh, "q": v.quality}
        if location.min() < 0 or location.max() >= len(v.locations):
            # a row of no location named is not stored (as a join with the names left it out)
            kept = (location >= 0) & (location < len(v.locations))
            location, meter = location[kept], meter[kept]
            columns = {name: np.asarray(values)[kept] for name, values in columns.items()}
            if not len(location):
                return
        # the rows come in runs of one location and meter: one key per run, spread over it
        n = len(location)
        found = [np.zeros(1, dtype=np.intp)]
        for a in range(1, n, _INSERT_ROWS):  # compared a block at a time, as the rows are inserted
            b = min(a + _INSERT_ROWS, n)
            change = location[a:b] != location[a - 1 : b - 1]
            change |= meter[a:b] != meter[a - 1 : b - 1]
            found.append(np.flatnonzero(change) + a)
        heads = np.concatenate(found)
        ends = np.append(heads[1:], n)
        # a meter index out of range is no meter (-1), as a NULL meter; 0 stands for it here
        at_heads = meter[heads]
        codes = np.where((at_heads >= 0) & (at_heads < len(v.meters)), at_heads + 1, 0)
        width = len(v.meters) + 1
        distinct, which = np.unique(
            location[heads].astype(np.int64) * width + codes, return_inverse=True
        )
        named: list[tuple[str, str | None]] = []
        for code in distinct.tolist():
            at, m = divmod(code, width)
            named.append((v.locations[at], v.meters[m - 1] if m else None))
        keys = self._interval_keys(site_id, named)
        run_keys = np.array([keys[pair] for pair in named], dtype=np.int32)[which]
        # the key column made and inserted a block of rows at a time (35 M rows: 140 MB at once)
        for a in range(0, n, _INSERT_ROWS):
            b = min(a + _INSERT_ROWS, n)
            first, last = np.searchsorted(heads, [a, b], side="right").tolist()
            first -= 1  # the run holding row a
            lengths = np.minimum(ends[first:last], b) - np.maximum(heads[first:last], a)
            src = {"k": np.repeat(run_keys[first:last], lengths)}
            src.update((name, np.asarray(values)[a:b]) for name, values in columns.items())
            with self._registered(src=src):
                self._con.execute(
                    "INSERT INTO interval_values SELECT src.k, src.s, src.i, src.e, src.q, ?, ? "
                    "FROM src",
                    [v.primary, batch],
                )

    def _interval_keys(
        self, site_id: str, pairs: Sequence[tuple[str, str | None]]
    ) -> dict[tuple[str, str | None], int]:
        """The number of every (location, meter) pair of the site in ``interval_keys``, those
        new to it numbered on from the store's highest (in the caller's transaction)."""
        frame = {
            "l": np.array([loc for loc, _ in pairs], dtype=object),
            "m": np.array([m for _, m in pairs], dtype=object),
        }
        with self._registered(wanted=frame):
            rows = self._con.execute(
                "SELECT k.location_id, k.meter, k.key FROM interval_keys k JOIN wanted w "
                "ON k.location_id = w.l AND k.meter IS NOT DISTINCT FROM w.m "
                "WHERE k.site_id = ?",
                [site_id],
            ).fetchall()
        out: dict[tuple[str, str | None], int] = {(loc, m): int(k) for loc, m, k in rows}
        new = [pair for pair in dict.fromkeys(pairs) if pair not in out]
        if new:
            row = self._one("SELECT coalesce(max(key), 0) FROM interval_keys")
            first = (int(row[0]) if row else 0) + 1
            for k, pair in enumerate(new):
                out[pair] = first + k
            # as one registered table (a row per statement: 3.8 s for the 10,000 pairs of a
            # large site's first import)
            added = {
                "k": np.arange(first, first + len(new), dtype=np.int32),
                "l": np.array([loc for loc, _ in new], dtype=object),
                "m": np.array([m for _, m in new], dtype=object),
            }
            with self._registered(added=added):
                self._con.execute(
                    "INSERT INTO interval_keys SELECT added.k, ?, added.l, added.m FROM added",
                    [site_id],
                )
        return out

    def _add_status(self, site_id: str, batch: int, rows: ReadingSet) -> None:
        s = rows.status
        if not len(s):
            return
        src = {"m": s.meter, "c": s.code, "t": s.time}
        with self._registered(src=src, mk=self._keys(s.meters), ck=self._keys(s.codes)):
            self._con.execute(
                "INSERT INTO status_events SELECT ?, mk.name, src.t, ck.name, ? "
                "FROM src JOIN mk ON src.m = mk.idx JOIN ck ON src.c = ck.idx",
                [site_id, batch],
            )

    def reading_spans(self, site_id: str, batch: int) -> dict[str, tuple[int, int]]:
        spans: dict[str, tuple[int, int]] = {}

        def widen(key: str, lo: int, hi: int) -> None:
            old = spans.get(key)
            spans[key] = (lo, hi) if old is None else (min(old[0], lo), max(old[1], hi))

        # registers and phase samples are differenced with (or held until) their neighbours
        for table, group in (("register_readings", "meter, obis"), ("phase_samples", "meter")):
            join = " AND ".join(f"a.{c.strip()} = b.{c.strip()}" for c in group.split(","))
            rows = self._con.execute(
                f"""
                WITH b AS (
                    SELECT {group}, min(time) AS lo, max(time) AS hi FROM {table}
                    WHERE site_id = $site AND batch = $batch GROUP BY {group}
                )
                SELECT b.meter,
                    coalesce(max(a.time) FILTER (WHERE a.time < b.lo), b.lo),
                    coalesce(min(a.time) FILTER (WHERE a.time > b.hi), b.hi)
                FROM b JOIN {table} a ON {join} AND a.site_id = $site
                GROUP BY b.meter, {", ".join("b." + c.strip() for c in group.split(","))},
                    b.lo, b.hi
                """,
                {"site": site_id, "batch": batch},
            ).fetchall()
            for meter, lo, hi in rows:
                widen(meter, int(lo), int(hi))
        rows = self._con.execute(
            f"SELECT location_id, min(slot), max(slot) FROM {self._intervals} "
            "WHERE site_id = ? AND batch = ? GROUP BY location_id",
            [site_id, batch],
        ).fetchall()
        for location, lo, hi in rows:
            widen("@" + location, int(lo) * 900, (int(hi) + 1) * 900)
        rows = self._con.execute(
            "SELECT meter, min(time), max(time) FROM status_events "
            "WHERE site_id = ? AND batch = ? GROUP BY meter",
            [site_id, batch],
        ).fetchall()
        for meter, lo, hi in rows:
            widen(meter, int(lo), int(hi))
        return spans

    def readings(
        self, site_id: str, meters: Sequence[str], start: int, stop: int
    ) -> dict[str, MeterReadings]:
        keys = list(dict.fromkeys(meters))
        if not keys:
            return {}
        params = {"site": site_id, "start": start, "stop": stop}
        registers: dict[str, dict[str, RegisterSeries]] = {k: {} for k in keys}
        phases: dict[str, PhaseSeries] = {}
        intervals: dict[str, IntervalSeries] = {}
        status: dict[str, StatusSeries] = {}
        obis_names = [
            r[0]
            for r in self._con.execute(
                "SELECT DISTINCT obis FROM register_readings WHERE site_id = ? ORDER BY 1",
                [site_id],
            ).fetchall()
        ]
        with self._registered(mk=self._keys(keys), ok=self._keys(obis_names)):
            # register readings: inside the window plus the nearest reading on either side
            reg = _first_of_runs(
                self._con.execute(
                    """
                    WITH r AS (
                        SELECT mk.idx AS m, ok.idx AS o, r.time, r.value, r.batch
                        FROM register_readings r JOIN mk ON r.meter = mk.name
                        JOIN ok ON r.obis = ok.name WHERE r.site_id = $site
                    ), b AS (
                        SELECT m, o,
                            coalesce(max(time) FILTER (WHERE time <= $start), min(time)) AS lo,
                            coalesce(min(time) FILTER (WHERE time >= $stop), max(time)) AS hi
                        FROM r GROUP BY ALL
                    )
                    SELECT r.m, r.o, r.time, r.value, r.batch FROM r JOIN b USING (m, o)
                    WHERE r.time BETWEEN b.lo AND b.hi ORDER BY r.m, r.o, r.time, r.batch DESC
                    """,
                    params,
                ).fetchnumpy(),
                ("m", "o", "time"),
            )
            for (m, o), sl in _groups(reg["m"], reg["o"]):
                obis = obis_names[o]
                registers[keys[m]][obis] = RegisterSeries(
                    obis,
                    np.ascontiguousarray(reg["time"][sl], dtype=np.int64),
                    np.ascontiguousarray(reg["value"][sl], dtype=np.float64),
                    np.ascontiguousarray(reg["batch"][sl], dtype=np.int64),
                )
            ph = _first_of_runs(
                self._con.execute(
                    """
                    WITH p AS (
                        SELECT mk.idx AS m, p.time, p.l1_kw AS l1, p.l2_kw AS l2, p.l3_kw AS l3,
                            p.batch
                        FROM phase_samples p JOIN mk ON p.meter = mk.name
                        WHERE p.site_id = $site
                    ), b AS (
                        SELECT m,
                            coalesce(max(time) FILTER (WHERE time <= $start), min(time)) AS lo,
                            coalesce(min(time) FILTER (WHERE time >= $stop), max(time)) AS hi
                        FROM p GROUP BY ALL
                    )
                    SELECT p.m, p.time, p.l1, p.l2, p.l3, p.batch FROM p JOIN b USING (m)
                    WHERE p.time BETWEEN b.lo AND b.hi ORDER BY p.m, p.time, p.batch DESC
                    """,
                    params,
                ).fetchnumpy(),
                ("m", "time"),
            )
            for (m,), sl in _groups(ph["m"]):
                phases[keys[m]] = PhaseSeries(
                    np.ascontiguousarray(ph["time"][sl], dtype=np.int64),
                    np.ascontiguousarray(ph["l1"][sl], dtype=np.float64),
                    np.ascontiguousarray(ph["l2"][sl], dtype=np.float64),
                    np.ascontiguousarray(ph["l3"][sl], dtype=np.float64),
                    np.ascontiguousarray(ph["batch"][sl], dtype=np.int64),
                )
            # interval values: per slot the best quality, then the latest batch
            iv = _first_of_runs(
                self._con.execute(
                    f"""
                    SELECT mk.idx AS m, v.slot, v.import_kwh AS i, v.export_kwh AS e,
                        v.quality AS q, v.batch, v.is_primary AS prim
                    FROM {self._intervals} v JOIN mk ON v.meter = mk.name
                    WHERE v.site_id = $site AND v.slot >= $start // 900
                        AND v.slot < $stop // 900
                    ORDER BY m, v.slot, v.quality, v.batch DESC
                    """,
                    params,
                ).fetchnumpy(),
                ("m", "slot"),
            )
            for (m,), sl in _groups(iv["m"]):
                intervals[keys[m]] = _interval_series(iv, sl)
            st = self._con.execute(
                """
                SELECT mk.idx AS m, s.time, s.code, s.batch
                FROM status_events s JOIN mk ON s.meter = mk.name
                WHERE s.site_id = $site AND s.time BETWEEN $start AND $stop
                ORDER BY m, s.time, s.batch, s.code
                """,
                params,
            ).fetchnumpy()
            for (m,), sl in _groups(st["m"]):
                status[keys[m]] = StatusSeries(
                    np.ascontiguousarray(st["time"][sl], dtype=np.int64),
                    tuple(str(c) for c in st["code"][sl]),
                    np.ascontiguousarray(st["batch"][sl], dtype=np.int64),
                )
        return {
            k: MeterReadings(
                k,
                registers=registers[k],
                phases=phases.get(k),
                intervals=intervals.get(k),
                status=status.get(k),
            )
            for k in keys
            if registers[k] or k in phases or k in intervals or k in status
        }

    def interval_readings(
        self, site_id: str, location_ids: Sequence[str], start_slot: int, stop_slot: int
    ) -> dict[str, MeterReadings]:
        keys = list(dict.fromkeys(location_ids))
        if not keys:
            return {}
        with self._registered(lk=self._keys(keys)):
            iv = _first_of_runs(
                self._con.execute(
                    f"""
                    SELECT lk.idx AS m, v.slot, v.import_kwh AS i, v.export_kwh AS e,
                        v.quality AS q, v.batch, v.is_primary AS prim
                    FROM {self._intervals} v JOIN lk ON v.location_id = lk.name
                    WHERE v.site_id = ? AND v.meter IS NULL AND v.slot >= ? AND v.slot < ?
                    ORDER BY m, v.slot, v.quality, v.batch DESC
                    """,
                    [site_id, start_slot, stop_slot],
                ).fetchnumpy(),
                ("m", "slot"),
            )
        return {
            keys[m]: MeterReadings(keys[m], intervals=_interval_series(iv, sl))
            for (m,), sl in _groups(iv["m"])
        }

    def has_other_readings(
        self, site_id: str, batch: int, meters: Sequence[str], location_ids: Sequence[str]
    ) -> bool:
        params = {"site": site_id, "batch": batch, "keys": list(meters)}
        params["locs"] = list(location_ids)
        if len(meters) + len(location_ids) <= _FEW_NAMES:
            # a few names (a listener's batch, a rebuild of a few locations): compared in the
            # scan, which stops at the first row found
            keys, locs = (
                "list_contains($keys::VARCHAR[], {})",
                "list_contains($locs::VARCHAR[], {})",
            )
        else:  # many: a hash join with the names
            keys = "{} IN (SELECT unnest($keys::VARCHAR[]))"
            locs = "{} IN (SELECT unnest($locs::VARCHAR[]))"
        found = " UNION ALL ".join(
            f"(SELECT 1 FROM {table} WHERE site_id = $site AND {where} LIMIT 1)"
            for table, where in (
                ("register_readings", keys.format("meter")),
                ("phase_samples", keys.format("meter")),
                ("status_events", keys.format("meter")),
                (
                    self._intervals,
                    f"batch <> $batch AND ({keys.format('meter')} OR {locs.format('location_id')})",
                ),
            )
        )
        row = self._con.execute(f"SELECT count(*) FROM ({found})", params).fetchall()
        return bool(row[0][0]) if row else False

    # -- load profiles ---------------------------------------------------------------------------

    @staticmethod
    def _profile_columns(
        profiles: Mapping[str, LoadProfile],
        numbers: Mapping[tuple[str, str | None], int],
    ) -> tuple[dict[str, NDArray[Any]], dict[str, NDArray[Any]], list[str]]:
        """All profiles as one set of columns (``l`` the location as an index into the
        returned list, ``p`` the number of its pair of location and meter from ``numbers``)
        and their slot ranges."""
        locations = list(profiles)
        parts: dict[str, list[NDArray[Any]]] = {k: [] for k in "lsieqbp"}
        ranges: dict[str, list[int]] = {"l": [], "a": [], "z": []}
        for i, name in enumerate(locations):
            p = profiles[name]
            n = len(p)
            ranges["l"].append(i)
            ranges["a"].append(p.start)
            ranges["z"].append(p.stop)
            pair = np.array([numbers[(name, k)] for k in (*p.meters, None)], dtype=np.int32)
            parts["l"].append(np.full(n, i, dtype=np.int32))
            parts["s"].append(np.arange(p.start, p.stop, dtype=np.int64))
            parts["i"].append(np.asarray(p.import_kwh, dtype=np.float64))
            parts["e"].append(np.asarray(p.export_kwh, dtype=np.float64))
            parts["q"].append(np.asarray(p.quality, dtype=np.int8))
            parts["b"].append(np.asarray(p.batch, dtype=np.int64))
            parts["p"].append(pair[np.where(p.meter < 0, len(p.meters), p.meter)])
        dtypes = {"l": np.int32, "s": np.int64, "i": np.float64, "e": np.float64}
        dtypes |= {"q": np.int8, "b": np.int64, "p": np.int32}
        src = {
            k: (np.concatenate(v) if v else np.zeros(0, dtype=dtypes[k])) for k, v in parts.items()
        }
        rng = {k: np.array(v, dtype=np.int64) for k, v in ranges.items()}
        return src, rng, locations

    #: the value rows of :meth:`_profile_columns` as they are stored
    _NEW_VALUES = """
        SELECT src.p AS pair, src.s AS slot,
            nullif(src.i, 'NaN'::DOUBLE) AS import_kwh,
            nullif(src.e, 'NaN'::DOUBLE) AS export_kwh,
            src.q AS quality, src.b AS batch
        FROM src
    """

    def save_profiles(
        self,
        site_id: str,
        profiles: Mapping[str, LoadProfile],
        replaced_at: datetime,
        *,
        history: bool = True,
    ) -> int:
        if not profiles:
            return 0
        replaced_at = _require_utc(replaced_at)
        with self.transaction():
            self._changed(site_id)
            # the pairs new to the site numbered first: every row carries its pair's number
            self._add_pairs(site_id, profiles)
            numbers = {
                (loc, m): int(n)
                for loc, m, n in self._con.execute(
                    "SELECT location_id, meter, pair FROM profile_pairs WHERE site_id = ?",
                    [site_id],
                ).fetchall()
            }
            src, rng, locations = self._profile_columns(profiles, numbers)
            return self._save_values(site_id, src, rng, locations, replaced_at, history)

    def _save_values(
        self,
        site_id: str,
        src: Mapping[str, NDArray[Any]],
        rng: Mapping[str, NDArray[Any]],
        locations: Sequence[str],
        replaced_at: datetime,
        history: bool,
    ) -> int:
        """Write the columns of :meth:`_profile_columns` over the stored rows of their ranges,
        the values they change to the history first (``history``); how many did."""
        moved = 0
        with self._registered(src=src, rng=rng, lk=self._keys(locations)):
            # the ranges for every pair of their location (the stored rows of a range are
            # those of any meter the location ever had)
            self._con.execute("DROP TABLE IF EXISTS staged_ranges")
            self._con.execute(
                "CREATE TEMP TABLE staged_ranges AS SELECT k.pair, rng.l, rng.a AS start, "
                "rng.z AS stop FROM rng JOIN lk ON rng.l = lk.idx JOIN profile_pairs k "
                "ON k.site_id = ? AND k.location_id = lk.name",
                [site_id],
            )
            # the slots of all ranges as constants too: DuckDB then skips the row groups of
            # other periods by their minimum and maximum slot instead of joining every stored
            # row with the ranges (a store with a year of 10,000 locations holds 350 M rows)
            lo = int(min(rng["a"])) if len(rng["a"]) else 0
            hi = int(max(rng["z"])) if len(rng["z"]) else 0
            bounds = {"lo": lo, "hi": hi}
            row = self._one(
                """
                SELECT count(*) FROM profile_values o JOIN staged_ranges r
                    ON o.pair = r.pair AND o.slot >= r.start AND o.slot < r.stop
                WHERE o.slot >= $lo AND o.slot < $hi
                """,
                bounds,
            )
            if row is not None and row[0]:
                # values are replaced: the ones they change go to the history first
                if history:
                    row = self._one(
                        """
                        INSERT INTO profile_history
                        SELECT k.site_id, k.location_id, o.slot, o.import_kwh, o.export_kwh,
                            o.quality, o.batch, k.meter, $at, n.b
                        FROM profile_values o
                            JOIN staged_ranges r ON o.pair = r.pair
                                AND o.slot >= r.start AND o.slot < r.stop
                            JOIN profile_pairs k ON o.pair = k.pair
                            JOIN src n ON n.l = r.l AND n.s = o.slot
                        WHERE o.slot >= $lo AND o.slot < $hi
                            AND (o.import_kwh IS DISTINCT FROM nullif(n.i, 'NaN'::DOUBLE)
                            OR o.export_kwh IS DISTINCT FROM nullif(n.e, 'NaN'::DOUBLE)
                            OR o.quality IS DISTINCT FROM n.q
                            OR o.batch IS DISTINCT FROM n.b
                            OR o.pair IS DISTINCT FROM n.p)
                        """,
                        {**bounds, "at": replaced_at},
                    )
                    moved = int(row[0]) if row else 0
                self._con.execute(
                    """
                    DELETE FROM profile_values o USING staged_ranges r
                    WHERE o.pair = r.pair AND o.slot >= r.start AND o.slot < r.stop
                        AND o.slot >= $lo AND o.slot < $hi
                    """,
                    bounds,
                )
            self._con.execute(f"INSERT INTO profile_values {self._NEW_VALUES}")
            self._con.execute("DROP TABLE staged_ranges")
        return moved

    def _add_pairs(self, site_id: str, profiles: Mapping[str, LoadProfile]) -> None:
        """Record the (location, meter) pairs of ``profiles`` new to the site in
        ``profile_pairs``, numbered on from the store's highest number (the value rows name
        their site, location and meter by it)."""
        pairs = {(loc, m) for loc, p in profiles.items() for m in (*p.meters, None)}
        frame = {
            "l": np.array([loc for loc, _ in pairs], dtype=object),
            "m": np.array([m for _, m in pairs], dtype=object),
        }
        with self._registered(pairs_new=frame):
            self._con.execute(
                """
                INSERT INTO profile_pairs (pair, site_id, location_id, meter)
                SELECT (SELECT coalesce(max(pair), 0) FROM profile_pairs)
                    + row_number() OVER (ORDER BY n.l, n.m NULLS FIRST), $site, n.l, n.m
                FROM (SELECT DISTINCT l, m FROM pairs_new) n
                WHERE NOT EXISTS (SELECT 1 FROM profile_pairs o WHERE o.site_id = $site
                    AND o.location_id = n.l AND o.meter IS NOT DISTINCT FROM n.m)
                """,
                {"site": site_id},
            )

    def load_profiles(
        self, site_id: str, location_ids: Sequence[str], start: int, stop: int
    ) -> dict[str, LoadProfile]:
        keys = list(dict.fromkeys(location_ids))
        if not keys or stop <= start:
            return {k: LoadProfile.empty(start, stop) for k in keys}
        params = {"site": site_id, "start": start, "stop": stop}
        with self.transaction(), self._unordered():  # one snapshot for every statement
            # Which location and meter each value row belongs to, by the number of the pair
            # (the value rows carry that one number instead of two strings), or for rows
            # written before version 4 by DuckDB's hash of the pair. The pairs, their numbers
            # and hashes are those save_profiles recorded in profile_pairs (a few thousand
            # rows); which of them hold values in the period is seen while the rows are read.
            read = None
            if self._version >= 7:
                # every row carries the number of its pair, a number of the store
                known = self._con.execute(
                    "SELECT location_id, meter, pair FROM profile_pairs WHERE site_id = ?",
                    [site_id],
                ).fetchall()
                read = self._read_values(keys, known, params, key="pair")
                if read is None:  # the read refuses a row of no pair named (none is)
                    raise StoreError(f"site {site_id}: a profile row has no pair of the site")
            elif self._version >= 3:
                number = "pair" if self._version >= 4 else "NULL"
                known = self._con.execute(
                    f"SELECT location_id, meter, h, {number} FROM profile_pairs WHERE site_id = ?",
                    [site_id],
                ).fetchall()
                # a few of many locations (profiles built a few hundred locations at a time):
                # only their rows leave DuckDB; for most of them a filter would cost more
                # (0.18 s at M = 1,000 x a year) than the rows it leaves out
                stored = {loc for loc, _, _, _ in known}
                only = 2 * len(stored.intersection(keys)) < len(stored)
                if self._numbered(params, known):
                    named = [(loc, m, n) for loc, m, _, n in known]
                    read = self._read_values(keys, named, params, only=only, key="pair")
                if read is None:
                    hashed = [(loc, m, h) for loc, m, h, _ in known]
                    read = self._read_values(keys, hashed, params, only=only)
            if read is None:
                # a value row of a pair profile_pairs does not name (a store of schema 2 read as
                # it is): the pairs from a grouping of the value rows by their hash
                grouped = self._con.execute(
                    "SELECT any_value(location_id), any_value(meter), h FROM ("
                    f"SELECT hash(location_id, meter) AS h, location_id, meter FROM profile_values "
                    f"WHERE {_PERIOD_ROWS}) GROUP BY h",
                    params,
                ).fetchall()
                read = self._read_values(keys, grouped, params)
                if read is None:  # the grouping names every hash of the same snapshot
                    raise StoreError(f"site {site_id}: the profile rows changed while read")
        index, (imp, exp, quality, batch, meter), written = read
        out: dict[str, LoadProfile] = {}
        for k, key in enumerate(keys):
            if not written[k].all():
                # a row without any value (a location before its first, a view beyond the data)
                # is filled as a whole, not through a mask
                hole: slice | NDArray[np.bool_] = ~written[k] if written[k].any() else slice(None)
                imp[k, hole] = np.nan
                exp[k, hole] = np.nan
                quality[k, hole] = Quality.MISSING
                batch[k, hole] = 0
                meter[k, hole] = -1
            lut = index.renumbering(k)
            if lut is not None:
                meter[k] = lut[meter[k] + 1]
            out[key] = LoadProfile(
                start,
                imp[k],
                exp[k],
                quality[k],
                batch[k],
                meter[k],
                index.present(k),
            )
        return out

    def _numbered(self, params: Mapping[str, Any], known: Sequence[tuple[Any, ...]]) -> bool:
        """Whether every value row of the period has a pair number (rows written before
        version 4 have none) and every pair of the site one of its own."""
        if self._version < 4 or any(n is None for *_, n in known):
            return False
        if len({n for *_, n in known}) != len(known):
            return False
        rows = self._con.execute(
            f"SELECT count(*) FROM profile_values WHERE {_PERIOD_ROWS} AND pair IS NULL", params
        ).fetchall()
        return bool(rows) and rows[0][0] == 0

    def _read_values(
        self,
        keys: Sequence[str],
        pairs: Sequence[tuple[Any, ...]],
        params: Mapping[str, Any],
        *,
        only: bool = False,
        key: str = "hash(location_id, meter)",
    ) -> tuple[_PairIndex, tuple[NDArray[Any], ...], NDArray[np.bool_]] | None:
        """The value rows of the period scattered into one ``[keys, slots]`` array per column,
        with ``pairs`` (location, meter, key) naming the rows by ``key``: their pair number
        (``pair``) or hash (the default); None when a row's key is none of them (or two pairs
        share one). ``only``: read the rows of ``keys`` only (else every row of the period,
        those of other locations skipped as they come); a store of version 7 reads only those
        of ``keys``, by their pairs' numbers, always."""
        index = _PairIndex.of(keys, pairs)
        if index is None:
            return None
        n = params["stop"] - params["start"]
        shape = (len(keys), n)
        if self._version >= 7:
            # the rows of the pairs of the locations asked for, by their numbers (one range of
            # them for every location of a site whose pairs were numbered together)
            wanted = set(keys)
            numbers = sorted(int(k) for loc, _, k in pairs if loc in wanted)
            if not numbers:
                numbers = [0]  # no pair: no row (numbers start at 1)
            where = "slot >= $start AND slot < $stop AND pair BETWEEN $first AND $last"
            args = {"start": params["start"], "stop": params["stop"]}
            args |= {"first": numbers[0], "last": numbers[-1]}
            if numbers[-1] - numbers[0] + 1 != len(numbers):
                where += " AND pair IN (SELECT unnest($pairs))"
                args["pairs"] = numbers
        else:
            where = _PERIOD_ROWS
            args = dict(params)
            if only:
                where += " AND location_id IN (SELECT unnest($locations))"
                args["locations"] = list(keys)
        low, high = self._con.execute(
            f"SELECT coalesce(min(batch), 0), coalesce(max(batch), 0) FROM profile_values "
            f"WHERE {where}",
            args,
        ).fetchall()[0]
        narrow = low >= -(2**31) and high < 2**31
        # Not filled first: the rows read are written once, and only the slots no row was read
        # for are filled afterwards (missing), which saves a pass over a GB for a site-year.
        # The export is the exception: it starts as zeros from the system (pages that are
        # never written take no memory) and only runs of rows with an export other than +0.0
        # are written, so the export of the consumers (mostly 0) costs no memory at all.
        # Batches and meter numbers are kept in the narrowest type that holds them (4 and 2
        # bytes instead of 8 and 4: 0.2 GB less for a site-year of 1,000 metering points).
        imp = np.empty(shape)
        exp = np.zeros(shape)
        quality = np.empty(shape, dtype=np.int8)
        batch = np.empty(shape, dtype=np.int32 if narrow else np.int64)
        meter = np.empty(shape, dtype=np.int16 if index.meters_fit(np.int16) else np.int32)
        written = np.zeros(shape, dtype=np.bool_)  # zeroed lazily by the system: no pass
        targets = {"i": imp, "e": exp, "q": quality, "b": batch, "m": meter}
        # The rows leave DuckDB in the narrowest types that hold them (the export of a
        # site-year is about a third faster with 4-byte batches and 2-byte slots); numpy widens
        # them as they are scattered. A slot below 65535 also keeps a step of the slots from
        # wrapping around to +1.
        batch_type = "INTEGER" if narrow else "BIGINT"
        slot_type = "USMALLINT" if n <= 2**16 - 1 else "INTEGER"
        # The export in a query of its own, of the rows whose export is not +0.0 (NULL, NaN,
        # -0.0 and every other number): the consumers' exports are zeros that DuckDB keeps
        # as constant segments and skips without handing them over (bench/README.md).
        queries = (
            (
                f"""
                SELECT {key} AS h,
                    (slot - $start)::{slot_type} AS t,
                    coalesce(import_kwh, 'NaN'::DOUBLE) AS i,
                    quality AS q, batch::{batch_type} AS b
                FROM profile_values WHERE {where}
                """,
                ("i", "q", "b"),
                True,
            ),
            (
                f"""
                SELECT {key} AS h,
                    (slot - $start)::{slot_type} AS t,
                    coalesce(export_kwh, 'NaN'::DOUBLE) AS e
                FROM profile_values WHERE {where}
                    AND (export_kwh IS NULL OR export_kwh <> 0 OR signbit(export_kwh))
                """,
                ("e",),  # into zeros; the cells were marked by the rows of the first query
                False,
            ),
        )
        for sql, names, mark in queries:
            chunks = arrow_chunks(self._con.sql(sql, params=args))
            try:
                for chunk in chunks:
                    if not index.scatter(chunk, targets, written, names, mark=mark):
                        return None
            finally:
                chunks.close()  # the rest of the query, if it stopped early
        return index, (imp, exp, quality, batch, meter), written

    @contextmanager
    def _unordered(self) -> Iterator[None]:
        """Results in any order (DuckDB then produces them in parallel without reordering)."""
        self._con.execute("SET preserve_insertion_order = false")
        try:
            yield
        finally:
            self._con.execute("RESET preserve_insertion_order")

    def profile_extent(
        self, site_id: str, location_ids: Sequence[str]
    ) -> dict[str, tuple[int, int]]:
        keys = list(dict.fromkeys(location_ids))
        if not keys:
            return {}
        with self._registered(lk=self._keys(keys)):
            rows = self._con.execute(
                f"SELECT p.location_id, min(p.slot), max(p.slot) + 1 FROM {self._profiles} p "
                "JOIN lk ON p.location_id = lk.name WHERE p.site_id = ? GROUP BY 1",
                [site_id],
            ).fetchall()
        return {r[0]: (int(r[1]), int(r[2])) for r in rows}

    def profile_history(
        self, site_id: str, location_id: str, start: int, stop: int
    ) -> ProfileHistory:
        rows = self._con.execute(
            """
            SELECT slot, coalesce(import_kwh, 'NaN'::DOUBLE), coalesce(export_kwh, 'NaN'::DOUBLE),
                quality, batch, meter, epoch_ms(replaced_at), coalesce(replaced_by_batch, 0)
            FROM profile_history
            WHERE site_id = ? AND location_id = ? AND slot >= ? AND slot < ?
            ORDER BY replaced_at, slot
            """,
            [site_id, location_id, start, stop],
        ).fetchall()
        when = [_utc(r[6]) for r in rows]
        return ProfileHistory(
            slot=np.array([r[0] for r in rows], dtype=np.int64),
            import_kwh=np.array([r[1] for r in rows], dtype=np.float64),
            export_kwh=np.array([r[2] for r in rows], dtype=np.float64),
            quality=np.array([r[3] for r in rows], dtype=np.int8),
            batch=np.array([r[4] for r in rows], dtype=np.int64),
            meter=tuple(r[5] for r in rows),
            replaced_at=tuple(w for w in when if w is not None),
            replaced_by_batch=np.array([r[7] for r in rows], dtype=np.int64),
        )

    def mark_rebuild_pending(self, site_id: str, locations: Collection[str] | None) -> None:
        with self.transaction():
            if locations is None:
                self._con.execute("INSERT INTO rebuild_pending VALUES (?, NULL)", [site_id])
            elif locations:
                self._con.executemany(
                    "INSERT INTO rebuild_pending VALUES (?, ?)",
                    [(site_id, loc) for loc in sorted(set(locations))],
                )

    def save_batch_names(self, batch: int, names: Mapping[str, str]) -> None:
        with self.transaction():
            self._con.execute("DELETE FROM batch_names WHERE batch = ?", [batch])
            if names:
                self._con.executemany(
                    "INSERT INTO batch_names VALUES (?, ?, ?)",
                    [(batch, name, meter) for name, meter in sorted(names.items())],
                )

    def batch_names(self, site_id: str) -> dict[int, dict[str, str]]:
        rows = []
        with contextlib.suppress(duckdb.CatalogException):  # read only, written before
            rows = self._con.execute(
                "SELECT n.batch, n.name, n.meter FROM batch_names n "
                "JOIN raw_batches b ON b.batch = n.batch WHERE b.site_id = ?",
                [site_id],
            ).fetchall()
        out: dict[int, dict[str, str]] = {}
        for batch, name, meter in rows:
            out.setdefault(int(batch), {})[str(name)] = str(meter)
        return out

    def rebuild_pending(self, site_id: str) -> frozenset[str] | None:
        rows = []
        with contextlib.suppress(duckdb.CatalogException):  # read only, written before
            rows = self._con.execute(
                "SELECT DISTINCT location_id FROM rebuild_pending WHERE site_id = ?", [site_id]
            ).fetchall()
        names = [r[0] for r in rows]
        if any(n is None for n in names):
            return None
        return frozenset(names)

    def begin_rebuild(
        self,
        site_id: str,
        *,
        keep_locations: Collection[str] = (),
        keep_meters: Collection[str] = (),
    ) -> frozenset[int]:
        with self.transaction():
            self._drop_stand_ins(site_id)  # what a stopped whole rebuild left
            self._con.execute(f"DROP TABLE IF EXISTS {_SNAPSHOT}")
            # the locations and meters kept, as tables to join with (a list parameter of
            # 10,000 names would be compared row by row)
            for table, names in (
                ("rebuild_keep_locations", keep_locations),
                ("rebuild_keep_meters", keep_meters),
            ):
                self._con.execute(f"CREATE OR REPLACE TEMP TABLE {table} (name VARCHAR)")
                if names:
                    self._con.execute(
                        f"INSERT INTO {table} SELECT unnest($names)",
                        {"names": sorted(set(names))},
                    )
            rebuilt = (
                "site_id = $site AND location_id NOT IN (SELECT name FROM rebuild_keep_locations)"
            )
            other_meters = "site_id = $site AND meter NOT IN (SELECT name FROM rebuild_keep_meters)"
            site = {"site": site_id}
            held = self._con.execute(
                f"SELECT DISTINCT batch FROM {self._intervals} WHERE {rebuilt} UNION "
                + " UNION ".join(
                    f"SELECT DISTINCT batch FROM {table} WHERE {other_meters}"
                    for table in ("register_readings", "phase_samples", "status_events")
                ),
                site,
            ).fetchall()
            # the rows rebuilt as they are (DuckDB holds a temporary table in memory: 1.4 GB
            # for a site-year of 1,000 metering points, 2.9 GB with their three strings)
            pairs = f"pair IN (SELECT pair FROM profile_pairs WHERE {rebuilt})"
            self._con.execute(
                f"CREATE TEMP TABLE {_SNAPSHOT} AS SELECT * FROM profile_values WHERE {pairs}",
                site,
            )
            self._con.execute(f"DELETE FROM profile_values WHERE {pairs}", site)
            self._con.execute(
                "DELETE FROM interval_values WHERE key IN "
                f"(SELECT key FROM interval_keys WHERE {rebuilt})",
                site,
            )
            for table in ("register_readings", "phase_samples", "status_events"):
                self._con.execute(f"DELETE FROM {table} WHERE {other_meters}", site)
            for table in ("rebuild_keep_locations", "rebuild_keep_meters"):
                self._con.execute(f"DROP TABLE {table}")
            self._changed(site_id)
        return frozenset(int(r[0]) for r in held)

    def finish_rebuild(self, site_id: str, replaced_at: datetime) -> int:
        replaced_at = _require_utc(replaced_at)
        with self.transaction():
            # the site's pairs with a number for their location: a rebuilt row is compared
            # with the new row of its location and slot, whatever the meters of the two
            self._con.execute(
                "CREATE OR REPLACE TEMP TABLE rebuild_pairs AS SELECT pair, site_id, "
                "location_id, meter, dense_rank() OVER (ORDER BY location_id) AS loc "
                "FROM profile_pairs WHERE site_id = ?",
                [site_id],
            )
            moved = self._keep_replaced(site_id, _SNAPSHOT, "TRUE", "TRUE", replaced_at)
            self._con.execute(f"DROP TABLE {_SNAPSHOT}")
            self._con.execute("DROP TABLE rebuild_pairs")
            self._con.execute("DELETE FROM rebuild_pending WHERE site_id = ?", [site_id])
        return moved

    def _keep_replaced(
        self, site_id: str, old: str, old_pairs: str, new_pairs: str, replaced_at: datetime
    ) -> int:
        """Insert into ``profile_history`` the rows of the table ``old`` (of the pairs in the
        temporary table ``rebuild_pairs``, numbered ``loc`` by location, that ``old_pairs``
        takes, a condition on ``k``) that the new rows of ``profile_values`` (of the pairs
        ``new_pairs`` takes, a condition on ``p``) no longer hold, or hold otherwise (a value,
        the quality, the batch or the meter), compared by location and slot; each with the
        batch that replaced it (0: none). A few million old rows at a time, by their slots: a
        join of all of a site-year's rows at once took 4.4 GB more at its peak. Returns how
        many went to the history."""
        pairs = f"{old} o JOIN rebuild_pairs k ON o.pair = k.pair AND {old_pairs}"
        moved = 0
        for start, stop in self._slot_ranges(f"SELECT o.slot FROM {pairs}"):
            row = self._one(
                f"""
                INSERT INTO profile_history
                SELECT $site, k.location_id, o.slot, o.import_kwh, o.export_kwh,
                    o.quality, o.batch, k.meter, $at, n.batch
                FROM {pairs}
                LEFT JOIN (
                    SELECT p.loc, p.meter, v.* FROM profile_values v JOIN rebuild_pairs p
                        ON v.pair = p.pair AND {new_pairs}
                    WHERE v.slot >= $start AND v.slot < $stop
                ) n ON n.loc = k.loc AND n.slot = o.slot
                WHERE o.slot >= $start AND o.slot < $stop AND (n.slot IS NULL
                    OR o.import_kwh IS DISTINCT FROM n.import_kwh
                    OR o.export_kwh IS DISTINCT FROM n.export_kwh
                    OR o.quality IS DISTINCT FROM n.quality
                    OR o.batch IS DISTINCT FROM n.batch
                    OR k.meter IS DISTINCT FROM n.meter)
                """,
                {"site": site_id, "at": replaced_at, "start": start, "stop": stop},
            )
            moved += int(row[0]) if row else 0
        return moved

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._lock:
            yield

    def begin_stand_in(self, site_id: str) -> str:
        stand_in = f"{_STAND_IN}{site_id}:{uuid.uuid4().hex}"
        with self.transaction():
            self._drop_stand_ins(site_id)
            self._con.execute(
                "INSERT INTO rebuild_stand_ins VALUES (?, ?, now())", [stand_in, site_id]
            )
        return stand_in

    def _drop_stand_ins(self, site_id: str) -> None:
        """Drop every stand-in of the site: those a stopped rebuild left (their rows carry an
        id that begins with the site's prefix) and those of rebuilds still running."""
        found = self._con.execute(
            "SELECT site_id FROM profile_pairs WHERE starts_with(site_id, $p) UNION "
            "SELECT site_id FROM interval_keys WHERE starts_with(site_id, $p) UNION "
            "SELECT stand_in FROM rebuild_stand_ins WHERE site_id = $site",
            {"p": f"{_STAND_IN}{site_id}:", "site": site_id},
        ).fetchall()
        for (stand_in,) in found:
            self.drop_stand_in(stand_in)

    def drop_stand_in(self, stand_in: str) -> None:
        if not stand_in.startswith(_STAND_IN):
            raise ValueError(f"{stand_in!r} is not the id of a stand-in")
        with self.transaction():
            self._drop_rows(stand_in)
            for table in ("profile_pairs", "interval_keys", "site_changes"):
                self._con.execute(f"DELETE FROM {table} WHERE site_id = ?", [stand_in])
            self._con.execute("DELETE FROM rebuild_stand_ins WHERE stand_in = ?", [stand_in])

    def _drop_rows(self, site_id: str) -> None:
        """Delete the site's profile and interval values, register readings, phase samples
        and status events (their pairs and keys stay)."""
        self._con.execute(
            "DELETE FROM profile_values WHERE pair IN "
            "(SELECT pair FROM profile_pairs WHERE site_id = ?)",
            [site_id],
        )
        self._con.execute(
            "DELETE FROM interval_values WHERE key IN "
            "(SELECT key FROM interval_keys WHERE site_id = ?)",
            [site_id],
        )
        for table in ("register_readings", "phase_samples", "status_events"):
            self._con.execute(f"DELETE FROM {table} WHERE site_id = ?", [site_id])

    def replace_by_stand_in(self, site_id: str, stand_in: str, replaced_at: datetime) -> int:
        if not stand_in.startswith(_STAND_IN):
            raise ValueError(f"{stand_in!r} is not the id of a stand-in")
        replaced_at = _require_utc(replaced_at)
        try:
            return self._replace_by_stand_in(site_id, stand_in, replaced_at)
        except duckdb.TransactionException as exc:  # another connection wrote the same rows
            raise StoreError(
                f"site {site_id!r} changed while it was rebuilt (through another connection): {exc}"
            ) from None

    def _replace_by_stand_in(self, site_id: str, stand_in: str, replaced_at: datetime) -> int:
        names = {"site": site_id, "stand_in": stand_in}
        with self.transaction():
            marked = self._one(
                "SELECT count(*) FROM rebuild_stand_ins WHERE stand_in = ?", [stand_in]
            )
            if not marked or not marked[0]:
                raise StoreError(
                    f"site {site_id!r}: its rebuild's stand-in was dropped by another rebuild of "
                    "the site that began meanwhile; nothing was rebuilt by this one"
                )
            # the pairs of both, with a number for their location: a stored row is compared with
            # the stand-in's row of its location and slot, whatever the meters of the two
            self._con.execute(
                "CREATE OR REPLACE TEMP TABLE rebuild_pairs AS SELECT pair, "
                "site_id = $stand_in AS new, location_id, meter, "
                "dense_rank() OVER (ORDER BY location_id) AS loc "
                "FROM profile_pairs WHERE site_id IN ($site, $stand_in)",
                names,
            )
            moved = self._keep_replaced(
                site_id, "profile_values", "NOT k.new", "p.new", replaced_at
            )
            self._con.execute("DROP TABLE rebuild_pairs")
            self._drop_rows(site_id)
            for table in ("profile_pairs", "interval_keys"):
                self._con.execute(f"DELETE FROM {table} WHERE site_id = ?", [site_id])
            for table in (
                "profile_pairs",
                "interval_keys",
                "register_readings",
                "phase_samples",
                "status_events",
            ):
                self._con.execute(
                    f"UPDATE {table} SET site_id = $site WHERE site_id = $stand_in", names
                )
            self._con.execute("DELETE FROM site_changes WHERE site_id = ?", [stand_in])
            self._con.execute("DELETE FROM rebuild_stand_ins WHERE stand_in = ?", [stand_in])
            self._con.execute("DELETE FROM rebuild_pending WHERE site_id = ?", [site_id])
            self._changed(site_id)
        return moved

    def _slot_ranges(self, rows: str) -> list[tuple[int, int]]:
        """Slot ranges ``[start, stop)`` covering the rows of the query ``rows`` (a ``slot``
        column), each holding about :data:`_HISTORY_ROWS` of them (more where one slot holds
        more)."""
        found = self._con.execute(
            f"SELECT slot, count(*) AS rows FROM ({rows}) GROUP BY slot ORDER BY slot"
        ).fetchnumpy()
        slots = np.asarray(found["slot"], dtype=np.int64)
        if not len(slots):
            return []
        counts = np.asarray(found["rows"], dtype=np.int64)
        block = (np.cumsum(counts) - counts) // _HISTORY_ROWS  # by the rows before each slot
        cuts = np.flatnonzero(np.diff(block, prepend=0) > 0)
        starts = [int(slots[0]), *(int(slots[c]) for c in cuts)]
        return list(zip(starts, [*starts[1:], int(slots[-1]) + 1], strict=True))

    def counts(self, site_id: str | None = None) -> dict[str, int]:
        out: dict[str, int] = {}
        for table in ("sites", *_SITE_TABLES, "raw_chunks"):
            source = table
            if table == "raw_chunks":
                source = "raw_chunks JOIN raw_batches USING (batch)"
            elif table == "interval_values":
                source = self._intervals
            elif table == "profile_values":
                source = self._profiles
            sql = f"SELECT count(*) FROM {source}"
            params: list[object] = []
            if site_id is not None:
                sql += " WHERE site_id = ?"
                params.append(site_id)
            row = self._one(sql, params)
            out[table] = int(row[0]) if row else 0
        return out

    def fingerprint(self, site_id: str) -> dict[str, str]:
        """A content hash of every table of a site (order-independent), for tests and audits:
        equal fingerprints mean equal rows. The pair numbers of the profile values are left
        out: they name location and meter in the order the pairs were first stored, which is
        not part of the content (profiles built a few locations at a time number them
        otherwise than all at once)."""
        out: dict[str, str] = {}
        for table in ("sites", *_SITE_TABLES, "raw_chunks"):
            source = f"{table} t"
            if table == "raw_chunks":
                source = "raw_chunks t JOIN raw_batches b ON t.batch = b.batch"
            elif table == "interval_values":  # the rows as they were before version 6
                source = f"{self._intervals} t"
            elif table == "profile_values":  # the rows as they were before version 7
                source = f"{self._profiles} t"
            rows = "t"
            if table == "profile_values":
                rows = "struct_pack(site_id, location_id, slot, import_kwh, export_kwh, quality, "
                rows += "batch, meter)"
            row = self._one(
                f"SELECT count(*), coalesce(sum(hash({rows})::HUGEINT), 0)::VARCHAR FROM {source} "
                "WHERE site_id = ?",
                [site_id],
            )
            out[table] = f"{row[0]}:{row[1]}" if row else ""
        return out


class _PairIndex:
    """Rows of :meth:`DuckDBStore.load_profiles` by a number that stands for their location id
    and meter key: the pair's number (``profile_pairs.pair``: in the store since version 7, in
    the site before), or for rows written before version 4 DuckDB's hash of the two
    (``hash(location_id, meter)``). Which row of the result (``-1``: a location not asked
    for) and which meter a number stands for. A location's meters are numbered in the order of
    their keys among all the pairs named for it; :meth:`present` and :meth:`renumbering` give
    the meters that held values in the rows scattered and their numbers among those alone.

    Two pairs with the same number could not be told apart: :meth:`of` refuses them. Since
    version 7 a number is the primary key of ``profile_pairs``; versions 3 to 6 refused to
    store a pair whose hash another pair of the site had."""

    def __init__(self, keys: Sequence[str], pairs: Sequence[tuple[Any, ...]]) -> None:
        row = {k: i for i, k in enumerate(keys)}
        names: list[set[str]] = [set() for _ in keys]
        for loc, m, _ in pairs:
            if loc in row and m is not None:
                names[row[loc]].add(m)
        #: every meter named for each row, by key
        self.names: list[list[str]] = [sorted(n) for n in names]
        number = [{m: g for g, m in enumerate(n)} for n in self.names]
        ordered = sorted(int(key) for _, _, key in pairs)
        position = {key: p for p, key in enumerate(ordered)}
        #: per key (number or hash): (result row, meter number, position in the sorted keys)
        self.pair: dict[int, tuple[int, int, int]] = {}
        pair_of: list[tuple[int, str | None]] = [(-1, None)] * len(ordered)
        for loc, m, key in pairs:
            r = row.get(loc, -1)
            g = -1 if r < 0 or m is None else number[r][m]
            self.pair[int(key)] = (r, g, position[int(key)])
            pair_of[position[int(key)]] = (r, m)
        self._pair_of = pair_of
        # pair numbers (INTEGER: the rows bring them as int32) as signed integers, hashes
        # (UBIGINT) unsigned, so that numpy compares the rows' keys with them exactly
        small = not ordered or ordered[-1] < 2**31
        self._keys = np.array(ordered, dtype=np.int64 if small else np.uint64)
        self._rows = np.array([self.pair[key][0] for key in ordered], np.int64)
        self._meter_ids = np.array([self.pair[key][1] for key in ordered], np.int32)
        #: which pairs (by position in the sorted keys) had a row among those scattered
        self.seen = np.zeros(len(ordered), dtype=np.bool_)
        self._present: list[tuple[str, ...]] | None = None

    @classmethod
    def of(cls, keys: Sequence[str], pairs: Sequence[tuple[Any, ...]]) -> _PairIndex | None:
        """The index of ``pairs``, or None when two of them share a number."""
        if len({int(key) for _, _, key in pairs}) != len(pairs):
            return None
        return cls(keys, pairs)

    def present(self, row: int) -> tuple[str, ...]:
        """The meter keys of a result row that held a value in the rows scattered, by key."""
        if self._present is None:
            used: list[set[str]] = [set() for _ in self.names]
            for position in np.flatnonzero(self.seen).tolist():
                r, m = self._pair_of[position]
                if r >= 0 and m is not None:
                    used[r].add(m)
            self._present = [
                tuple(m for m in named if m in u) for named, u in zip(self.names, used, strict=True)
            ]
        return self._present[row]

    def meters_fit(self, dtype: type[np.signedinteger[Any]]) -> bool:
        """Whether every meter number (and -1) fits in ``dtype``."""
        most = max((len(n) for n in self.names), default=0)
        return most <= np.iinfo(dtype).max

    def renumbering(self, row: int) -> NDArray[np.int32] | None:
        """``lut`` with ``lut[g + 1]`` the number among :meth:`present` of the meter numbered
        ``g`` among all those named for the row (``lut[0] = -1``: no meter); None when every
        named meter is present (the numbers stay)."""
        named = self.names[row]
        present = self.present(row)
        if len(present) == len(named):
            return None
        lut = np.full(len(named) + 1, -1, dtype=np.int32)
        for g, m in enumerate(present):
            lut[named.index(m) + 1] = g
        return lut

    def scatter(
        self,
        chunk: Mapping[str, NDArray[Any]],
        targets: Mapping[str, Any],
        written: NDArray[np.bool_],
        names: Sequence[str],
        *,
        mark: bool,
    ) -> bool:
        """Write the columns ``names`` of one chunk of rows (with ``h``, their pair's number or
        hash, and ``t``, their slot) into the 2-D arrays of ``targets``; ``mark``: also the
        meter numbers (``m``), the cells in ``written`` and which pairs were seen. False (and
        nothing written) when a row's key is not in the index. Runs of rows of one location
        and meter in consecutive slots (the usual order of a table) are copied as slices,
        other rows one by one."""
        h, t = chunk["h"], chunk["t"]
        count = len(t)
        if not count:
            return True
        views = {name: array.reshape(-1) for name, array in targets.items()}
        done = written.reshape(-1)
        width = written.shape[1]
        change = (h[1:] != h[:-1]) | (np.diff(t) != 1)
        breaks = np.flatnonzero(change) + 1
        if len(breaks) * 64 < count:
            bounds = [0, *breaks.tolist(), count]
            heads = bounds[:-1]
            found = [self.pair.get(pair) for pair in h[heads].tolist()]
            if None in found:
                return False
            firsts = t[heads].tolist()
            for a, b, pair, first in zip(heads, bounds[1:], found, firsts, strict=True):
                assert pair is not None
                row, number, position = pair
                if mark:
                    self.seen[position] = True
                if row < 0:
                    continue
                cells = slice(row * width + first, row * width + first + b - a)
                for name in names:
                    views[name][cells] = chunk[name][a:b]
                if mark:
                    views["m"][cells] = number
                    done[cells] = True
            return True
        if not len(self._keys):
            return False
        at = np.minimum(np.searchsorted(self._keys, h), len(self._keys) - 1)
        if (self._keys[at] != h).any():
            return False
        where = self._rows[at]
        keep = where >= 0
        flat = where[keep] * width + t[keep]
        for name in names:
            views[name][flat] = chunk[name][keep]
        if mark:
            self.seen[at] = True
            views["m"][flat] = self._meter_ids[at[keep]]
            done[flat] = True
        return True


def paged(sql: str, params: list[object], offset: int, limit: int | None) -> str:
    """``sql`` (ordered) with ``LIMIT``/``OFFSET`` for ``limit`` rows from ``offset`` (all when
    ``limit`` is None); their values are appended to ``params``."""
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    if offset:
        sql += " OFFSET ?"
        params.append(offset)
    return sql


def _pack(view: memoryview, offset: int) -> tuple[str, bytes]:
    """``(codec, data)`` of the chunk of ``view`` at ``offset``: compressed where that is
    smaller, else as it is."""
    raw = view[offset : offset + CHUNK_BYTES]
    packed = compress(raw)
    return ("zstd", packed) if len(packed) < len(raw) else ("none", bytes(raw))


def _chunk_count(size: int) -> int:
    """How many chunks of :data:`CHUNK_BYTES` the archive of ``size`` bytes has (an empty
    file has one, empty)."""
    return len(range(0, max(size, 1), CHUNK_BYTES))


def _packed_chunks(content: bytes, dropped: threading.Event) -> list[tuple[str, bytes]] | None:
    """Every chunk of ``content`` packed, one after the other (in a background thread while
    the file is checked: see :meth:`DuckDBStore.prepare_batch`); stops early, with ``None``,
    once ``dropped`` is set."""
    view = memoryview(content)
    out: list[tuple[str, bytes]] = []
    for offset in range(0, max(len(content), 1), CHUNK_BYTES):
        if dropped.is_set():
            return None
        out.append(_pack(view, offset))
    return out


def _archive_chunks(content: bytes) -> Iterator[tuple[str, bytes]]:
    """``(codec, data)`` of each chunk of :data:`CHUNK_BYTES` of ``content`` (see
    :func:`_pack`). The chunks are compressed on every core (zstd releases the GIL) and given in
    order, a few at a time, so the whole file is never held twice."""
    view = memoryview(content)
    offsets = range(0, max(len(content), 1), CHUNK_BYTES)

    def pack(offset: int) -> tuple[str, bytes]:
        return _pack(view, offset)

    if len(offsets) == 1:
        yield pack(0)
        return
    workers = max(1, min(len(offsets), os.cpu_count() or 1))
    with ThreadPoolExecutor(workers) as pool:
        pending = [pool.submit(pack, offset) for offset in offsets[: 2 * workers]]
        for following in offsets[2 * workers :]:
            yield pending.pop(0).result()
            pending.append(pool.submit(pack, following))
        for future in pending:
            yield future.result()


#: up to how many names :meth:`DuckDBStore.has_other_readings` compares row by row
_FEW_NAMES = 64

#: threads that inflate the chunks of one archived batch
_UNPACKERS = max(1, min(4, os.cpu_count() or 1))


def _unpack(data: bytes, codec: str | None) -> bytes:
    if codec in _COMPRESSED:
        return inflate(data)
    if codec in (None, "none"):
        return data
    raise StoreError(f"raw archive chunk with unknown codec {codec!r}")


def _interval_series(rows: Mapping[str, Any], sl: slice) -> IntervalSeries:
    prim = np.asarray(rows["prim"][sl], dtype=bool)
    return IntervalSeries(
        np.ascontiguousarray(rows["slot"][sl], dtype=np.int64),
        np.ascontiguousarray(rows["i"][sl], dtype=np.float64),
        np.ascontiguousarray(rows["e"][sl], dtype=np.float64),
        np.ascontiguousarray(rows["q"][sl], dtype=np.int8),
        np.ascontiguousarray(rows["batch"][sl], dtype=np.int64),
        primary=bool(prim.all()) if len(prim) else True,
    )


def _first_of_runs(rows: dict[str, Any], keys: Sequence[str]) -> dict[str, Any]:
    """Rows sorted by ``keys`` (then by preference): keep the first row of each run of equal
    keys, i.e. the preferred one where several batches hold a value for the same key."""
    n = len(rows[keys[0]])
    if n < 2:
        return rows
    new = np.zeros(n, dtype=bool)
    new[0] = True
    for key in keys:
        col = np.asarray(rows[key])
        new[1:] |= col[1:] != col[:-1]
    if new.all():
        return rows
    return {name: np.asarray(col)[new] for name, col in rows.items()}


def _groups(*columns: Any) -> Iterator[tuple[tuple[Any, ...], slice]]:
    """Runs of equal keys in sorted columns: ``((key values), slice)`` per run."""
    if not len(columns[0]):
        return
    n = len(columns[0])
    change = np.zeros(n, dtype=bool)
    change[0] = True
    for col in columns:
        arr = np.asarray(col)
        change[1:] |= arr[1:] != arr[:-1]
    starts = np.flatnonzero(change)
    ends = np.append(starts[1:], n)
    for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
        yield tuple(_py(np.asarray(col)[a]) for col in columns), slice(a, b)


def _py(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _open_message(path: str, detail: str) -> str:
    if "lock" in detail.lower():
        holder = ""
        marker = "(PID "
        if marker in detail:
            pid = detail.split(marker, 1)[1].split(")", 1)[0]
            holder = f" (process {pid})"
        return (
            f"the store {path} is in use by another lastgang process{holder}; wait until it "
            "has finished, or name another store with --db PATH or LASTGANG_DB"
        )
    return f"cannot open the store {path}: {detail}"
