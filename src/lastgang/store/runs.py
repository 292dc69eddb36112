"""Billing runs in the store: append-only, never changed once written.

Two tables next to the store's own (created on first use, in the same DuckDB file and
transactions as the rest of the store):

- ``billing_runs``: one row per run: run number (unique in the store), site, period, version
  (1, 2, ... per site and period), status (``draft``/``final``), when, the site version, the
  fingerprint of the inputs and the inputs themselves (JSON), the whole run JSON, and the totals;
- ``billing_run_outputs``: the bytes of every file the run wrote (PDF, HTML, CSV, JSON), with
  their SHA-256; text compressed with zlib (``encoding``), read back as written.

A run whose files include its run JSON (``<key>-run.json``, as ``lastgang bill`` writes it)
keeps that JSON once, as the file: its ``run_json`` column is empty and :meth:`RunStore.run_json`
reads the file. A run of 10,000 units has 1.2 GB of run JSON; DuckDB took 14-21 s and 4.5-5.6 GB
of memory for each copy of a single value that large.

There is no update and no delete: billing a period again adds its next version, so an invoice
once issued can always be shown again exactly as it was.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import duckdb
import numpy as np

from lastgang.errors import StoreError
from lastgang.store import Store
from lastgang.store.duckdb_store import DuckDBStore

__all__ = ["RUNS_SCHEMA", "RunOutput", "RunRecord", "RunStore"]

RUNS_SCHEMA = """
CREATE TABLE IF NOT EXISTS billing_runs (
    run BIGINT PRIMARY KEY,
    site_id VARCHAR NOT NULL,
    first_day DATE NOT NULL,
    last_day DATE NOT NULL,
    version INTEGER NOT NULL,
    status VARCHAR NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    site_version INTEGER,
    fingerprint VARCHAR NOT NULL,
    inputs_json VARCHAR NOT NULL,
    run_json VARCHAR NOT NULL,
    invoices INTEGER NOT NULL,
    currency VARCHAR NOT NULL,
    net VARCHAR NOT NULL,
    vat VARCHAR NOT NULL,
    total VARCHAR NOT NULL,
    UNIQUE (site_id, first_day, last_day, version)
);
CREATE TABLE IF NOT EXISTS billing_run_outputs (
    run BIGINT NOT NULL,
    name VARCHAR NOT NULL,
    sha256 VARCHAR NOT NULL,
    content BLOB NOT NULL,
    PRIMARY KEY (run, name)
);
ALTER TABLE billing_run_outputs ADD COLUMN IF NOT EXISTS encoding VARCHAR DEFAULT '';
"""

#: files stored compressed (``encoding = 'zlib'``): text, which compresses about 13-fold; a PDF
#: compresses its own streams already
_TEXT_FILES = (".html", ".json", ".csv")
#: zlib's level for them: the fastest (0.09 s for the 30 MB run JSON of 1,000 units)
_ZLIB_LEVEL = 1


def _stored(name: str, content: bytes) -> tuple[bytes, str]:
    """A file's bytes as stored, and their encoding."""
    if name.endswith(_TEXT_FILES):
        return zlib.compress(content, _ZLIB_LEVEL), "zlib"
    return content, ""


def _unstored(content: bytes, encoding: str | None) -> bytes:
    """A stored file's bytes as the run wrote them."""
    if encoding == "zlib":
        return zlib.decompress(content)
    if encoding:
        raise StoreError(f"a stored run file has the unknown encoding {encoding!r}")
    return content


_COLUMNS = (
    "run, site_id, first_day, last_day, version, status, epoch_ms(created_at), site_version, "
    "fingerprint, invoices, currency, net, vat, total"
)


@dataclass(frozen=True)
class RunRecord:
    """One stored run (without its JSON and files; see :meth:`RunStore.run_json`)."""

    run: int
    site_id: str
    first_day: date
    last_day: date
    version: int
    status: str
    created_at: datetime
    site_version: int | None
    fingerprint: str
    invoices: int
    currency: str
    net: Decimal
    vat: Decimal
    total: Decimal


@dataclass(frozen=True)
class RunOutput:
    """One file a run wrote, as stored."""

    name: str
    sha256: str
    content: bytes


def _connection(store: Store) -> duckdb.DuckDBPyConnection:
    """The DuckDB connection of the embedded store (runs share its file and transactions)."""
    if not isinstance(store, DuckDBStore):
        raise StoreError(
            f"the store {store.location} cannot hold billing runs (not the embedded store)"
        )
    return store.connection


#: the end of the name of a run's JSON file among its outputs
_RUN_FILE = "-run.json"


class RunStore:
    """Billing runs of a :class:`~lastgang.store.Store` (the embedded DuckDB store)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._con = _connection(store)
        self._ready = False

    def _ensure(self) -> None:
        if self._ready:
            return
        with self._store.transaction():
            self._con.execute(RUNS_SCHEMA)
        self._ready = True

    def _exists(self) -> bool:
        rows = self._con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'billing_runs'"
        ).fetchall()
        return bool(rows and rows[0][0])

    def next_numbers(self, site_id: str, first_day: date, last_day: date) -> tuple[int, int]:
        """The run number the next run gets, and its version for this site and period."""
        self._ensure()
        row = self._con.execute("SELECT coalesce(max(run), 0) FROM billing_runs").fetchall()
        run = int(row[0][0]) + 1
        row = self._con.execute(
            "SELECT coalesce(max(version), 0) FROM billing_runs WHERE site_id = ? "
            "AND first_day = ? AND last_day = ?",
            [site_id, first_day, last_day],
        ).fetchall()
        return run, int(row[0][0]) + 1

    def add(
        self,
        *,
        run: int,
        site_id: str,
        first_day: date,
        last_day: date,
        version: int,
        status: str,
        created_at: datetime,
        site_version: int | None,
        fingerprint: str,
        inputs_json: str,
        run_json: str | None,
        invoices: int,
        currency: str,
        net: Decimal,
        vat: Decimal,
        total: Decimal,
        outputs: Mapping[str, bytes],
    ) -> RunRecord:
        """Store a run and its files. Refuses (``StoreError``) a run number or a version of the
        period that exists already: nothing stored is ever replaced.

        ``run_json=None``: the run JSON is the one file of ``outputs`` whose name ends in
        ``-run.json``, stored once as that file."""
        self._ensure()
        if created_at.tzinfo is None:
            raise ValueError("naive datetime given to the store; use an aware (UTC) datetime")
        if run_json is None and len([n for n in outputs if n.endswith(_RUN_FILE)]) != 1:
            raise ValueError(f"run_json=None needs exactly one file '*{_RUN_FILE}' in outputs")
        with self._store.transaction():
            taken = self._con.execute(
                "SELECT run, version FROM billing_runs WHERE run = ? OR (site_id = ? AND "
                "first_day = ? AND last_day = ? AND version = ?)",
                [run, site_id, first_day, last_day, version],
            ).fetchall()
            if taken:
                raise StoreError(
                    f"run {run} (version {version} of {site_id} {first_day} to {last_day}) "
                    "exists already; stored runs are never replaced: bill again for a new "
                    "version"
                )
            self._con.execute(
                "INSERT INTO billing_runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    run,
                    site_id,
                    first_day,
                    last_day,
                    version,
                    status,
                    created_at.astimezone(UTC),
                    site_version,
                    fingerprint,
                    inputs_json,
                    "" if run_json is None else run_json,
                    invoices,
                    currency,
                    str(net),
                    str(vat),
                    str(total),
                ],
            )
            if outputs:
                # one INSERT of all files (a run of 1,000 units has 1,200), not one per file;
                # text compressed on two threads (zlib lets go of the GIL)
                names = sorted(outputs)
                with ThreadPoolExecutor(2, thread_name_prefix="run-store") as pool:
                    stored = list(pool.map(lambda n: _stored(n, bytes(outputs[n])), names))
                files = {
                    "run": np.full(len(names), run, dtype=np.int64),
                    "name": np.array(names, dtype=object),
                    "sha256": np.array(
                        [hashlib.sha256(outputs[n]).hexdigest() for n in names], dtype=object
                    ),
                    "content": np.array([content for content, _ in stored], dtype=object),
                    "encoding": np.array([encoding for _, encoding in stored], dtype=object),
                }
                self._con.register("run_outputs_new", files)
                try:
                    self._con.execute(
                        "INSERT INTO billing_run_outputs (run, name, sha256, content, encoding) "
                        "SELECT run, name, sha256, content, encoding FROM run_outputs_new"
                    )
                finally:
                    self._con.unregister("run_outputs_new")
        return self.get(run)

    @staticmethod
    def _record(row: Sequence[Any]) -> RunRecord:
        return RunRecord(
            run=int(row[0]),
            site_id=row[1],
            first_day=row[2],
            last_day=row[3],
            version=int(row[4]),
            status=row[5],
            created_at=datetime.fromtimestamp(row[6] / 1000, UTC),
            site_version=None if row[7] is None else int(row[7]),
            fingerprint=row[8],
            invoices=int(row[9]),
            currency=row[10],
            net=Decimal(row[11]),
            vat=Decimal(row[12]),
            total=Decimal(row[13]),
        )

    def runs(self, site_id: str | None = None) -> list[RunRecord]:
        """Stored runs (of one site), oldest first."""
        if not self._ready and not self._exists():
            return []
        sql = f"SELECT {_COLUMNS} FROM billing_runs"
        params: list[object] = []
        if site_id is not None:
            sql += " WHERE site_id = ?"
            params.append(site_id)
        rows = self._con.execute(sql + " ORDER BY run", params).fetchall()
        return [self._record(r) for r in rows]

    def get(self, run: int) -> RunRecord:
        """One stored run; ``StoreError`` when there is none."""
        rows = (
            self._con.execute(
                f"SELECT {_COLUMNS} FROM billing_runs WHERE run = ?", [run]
            ).fetchall()
            if self._ready or self._exists()
            else []
        )
        if not rows:
            raise StoreError(f"there is no billing run {run} in the store {self._store.location}")
        return self._record(rows[0])

    def _text(self, run: int, column: str) -> str:
        self.get(run)
        rows = self._con.execute(
            f"SELECT {column} FROM billing_runs WHERE run = ?", [run]
        ).fetchall()
        return str(rows[0][0])

    def run_json(self, run: int) -> str:
        """The run's JSON exactly as stored: in its own column, or as the run's file
        ``<key>-run.json`` (``add(run_json=None)``)."""
        text = self._text(run, "run_json")
        if text:
            return text
        rows = self._con.execute(
            f"SELECT content, {self._encoding()} FROM billing_run_outputs "
            "WHERE run = ? AND suffix(name, ?)",
            [run, _RUN_FILE],
        ).fetchall()
        if len(rows) != 1:
            raise StoreError(f"billing run {run} holds no run JSON")
        return _unstored(bytes(rows[0][0]), rows[0][1]).decode("utf-8")

    def inputs_json(self, run: int) -> str:
        """The fingerprinted inputs of the run (JSON) exactly as stored."""
        return self._text(run, "inputs_json")

    def outputs(self, run: int) -> list[RunOutput]:
        """The files of a run, by name."""
        self.get(run)
        rows = self._con.execute(
            f"SELECT name, sha256, content, {self._encoding()} FROM billing_run_outputs "
            "WHERE run = ? ORDER BY name",
            [run],
        ).fetchall()
        return [RunOutput(r[0], r[1], _unstored(bytes(r[2]), r[3])) for r in rows]

    def output(self, run: int, name: str) -> RunOutput | None:
        """One file of a run (an invoice's page or PDF), without reading the others."""
        self.get(run)
        rows = self._con.execute(
            f"SELECT name, sha256, content, {self._encoding()} FROM billing_run_outputs "
            "WHERE run = ? AND name = ?",
            [run, name],
        ).fetchall()
        if not rows:
            return None
        r = rows[0]
        return RunOutput(r[0], r[1], _unstored(bytes(r[2]), r[3]))

    def _encoding(self) -> str:
        """The column of a stored file's encoding, or ``''`` in a store opened read-only whose
        files were stored before files were compressed (it has no such column)."""
        if self._ready:
            return "encoding"
        rows = self._con.execute(
            "SELECT count(*) FROM information_schema.columns "
            "WHERE table_name = 'billing_run_outputs' AND column_name = 'encoding'"
        ).fetchall()
        return "encoding" if rows and rows[0][0] else "''"
