"""Billing runs in the store: append-only, never changed once written.

Two tables next to the store's own (created on first use, in the same DuckDB file and
transactions as the rest of the store):

- ``billing_runs``: one row per run: run number (unique in the store), site, period, version
  (1, 2, ... per site and period), status (``draft``/``final``), when, the site version, the
  fingerprint of the inputs and the inputs themselves (JSON), the whole run JSON, and the totals;
- ``billing_run_outputs``: the bytes of every file the run wrote (PDF, HTML, CSV, JSON), with
  their SHA-256; text compressed with Zstandard (``encoding``; runs stored before with zlib),
  read back as written;
- ``billing_run_invoices``: one row per invoice of a run stored with its invoice entries
  (:class:`InvoiceEntry`): what a list of invoices shows (unit, customer, period, energy,
  total, status), and the invoice's own text in the run JSON, compressed on its own.

A run whose files include its run JSON (``<key>-run.json``, as ``lastgang bill`` writes it)
keeps that JSON once, as the file: its ``run_json`` column is empty and :meth:`RunStore.run_json`
reads the file. A run of 10,000 units has 1.2 GB of run JSON; DuckDB took 14-21 s and 4.5-5.6 GB
of memory for each copy of a single value that large.

A run stored with its invoice entries keeps that file in pieces: each invoice's text in its row
of ``billing_run_invoices``, and the rest of the file (the run without its invoices: an empty
``invoices`` array) as the file's content, ``encoding = 'zstd+invoices'`` (``'zlib+invoices'``
for a run stored before the files were compressed with Zstandard). The file is put
together again when it is read whole, and must match its SHA-256; one invoice, the list of
invoices or the run without its invoices (:meth:`RunStore.invoice_json`,
:meth:`RunStore.invoices`, :meth:`RunStore.run_head`) are read without the rest, which at
10,000 units is the difference between a few milliseconds and seconds and gigabytes per page.

There is no update and no delete: billing a period again adds its next version, so an invoice
once issued can always be shown again exactly as it was.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import duckdb
import numpy as np

from lastgang.errors import StoreError
from lastgang.store import Store
from lastgang.store.compression import compress, inflate
from lastgang.store.duckdb_store import DuckDBStore, paged

__all__ = ["RUNS_SCHEMA", "InvoiceEntry", "RunOutput", "RunRecord", "RunStore"]

#: the files' and invoices' bytes (compressed text or a PDF's) are kept by DuckDB as they are:
#: its own compression (ZSTD, a vector of 2,048 rows at a time) made them no smaller, and
#: reading one file meant inflating all the files of its vector (``duckdb_store._AS_THEY_ARE``)
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
    content BLOB USING COMPRESSION uncompressed NOT NULL,
    PRIMARY KEY (run, name)
);
ALTER TABLE billing_run_outputs ADD COLUMN IF NOT EXISTS encoding VARCHAR DEFAULT '';
CREATE TABLE IF NOT EXISTS billing_run_invoices (
    run BIGINT NOT NULL,
    number VARCHAR NOT NULL,
    unit_id VARCHAR NOT NULL,
    unit_name VARCHAR NOT NULL,
    customer VARCHAR NOT NULL,
    status VARCHAR NOT NULL,
    first_day DATE NOT NULL,
    last_day DATE NOT NULL,
    consumption_kwh VARCHAR NOT NULL,
    local_kwh VARCHAR NOT NULL,
    grid_kwh VARCHAR NOT NULL,
    total VARCHAR NOT NULL,
    currency VARCHAR NOT NULL,
    json_offset BIGINT NOT NULL,
    json_length BIGINT NOT NULL,
    content BLOB USING COMPRESSION uncompressed NOT NULL,
    PRIMARY KEY (run, number)
);
"""

#: files stored compressed (``encoding = 'zstd'``, :mod:`.compression`; ``'zlib'`` in runs
#: stored before): text, which compresses about 13-fold; a PDF compresses its own streams
#: already
_TEXT_FILES = (".html", ".json", ".csv")


def _stored(name: str, content: bytes) -> tuple[bytes, str]:
    """A file's bytes as stored, and their encoding."""
    if name.endswith(_TEXT_FILES):
        return compress(content), "zstd"
    return content, ""


#: the encoding of a run JSON kept in pieces: the file without its invoices (compressed), each
#: invoice's text in ``billing_run_invoices``; ``'zlib+invoices'`` in runs stored before
_SPLIT = "zstd+invoices"
_SPLITS = (_SPLIT, "zlib+invoices")


def _unstored(content: bytes, encoding: str | None) -> bytes:
    """A stored file's bytes as the run wrote them (not for a file kept in pieces)."""
    if encoding in ("zstd", "zlib"):
        return inflate(content)
    if encoding:
        raise StoreError(f"a stored run file has the unknown encoding {encoding!r}")
    return content


def _without(content: bytes, spans: Sequence[tuple[int, int]]) -> bytes:
    """``content`` with the byte ranges ``spans`` (``(offset, length)``, ascending) cut out."""
    kept: list[bytes] = []
    view = memoryview(content)
    at = 0
    for start, length in spans:
        kept.append(view[at:start].tobytes())
        at = start + length
    kept.append(view[at:].tobytes())
    return b"".join(kept)


def _put_together(rest: bytes, pieces: Iterable[tuple[int, bytes]]) -> bytes:
    """The bytes that :func:`_without` cut ``pieces`` (``(offset, bytes)``, ascending) out of
    (the pieces taken one at a time: a run JSON of 1.2 GB is held once, and then joined)."""
    parts: list[bytes] = []
    size = used = 0  # bytes put together so far, bytes of ``rest`` among them
    for at, piece in pieces:
        take = at - size
        if take < 0 or used + take > len(rest):
            raise StoreError("a stored run JSON does not fit its invoices: the store is damaged")
        parts += (rest[used : used + take], piece)
        used += take
        size = at + len(piece)
    parts.append(rest[used:])
    return b"".join(parts)


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
class InvoiceEntry:
    """One invoice of a stored run as a list of invoices shows it, and where its text stands
    in the run JSON: ``length`` bytes from ``at``, with the separator before it (the ``,``,
    line break and indentation; see :class:`lastgang.report.invoice.RunFiles`)."""

    number: str
    unit_id: str
    unit_name: str
    customer: str
    status: str
    first_day: date
    last_day: date
    consumption_kwh: Decimal
    local_kwh: Decimal
    grid_kwh: Decimal
    total: Decimal
    currency: str
    at: int
    length: int


#: the columns of ``billing_run_invoices`` that hold an :class:`InvoiceEntry`, in its order
_ENTRY_FIELDS = (
    "number",
    "unit_id",
    "unit_name",
    "customer",
    "status",
    "first_day",
    "last_day",
    "consumption_kwh",
    "local_kwh",
    "grid_kwh",
    "total",
    "currency",
    "json_offset",
    "json_length",
)
_ENTRY_COLUMNS = ", ".join(_ENTRY_FIELDS)


def _entry_values(e: InvoiceEntry) -> tuple[Any, ...]:
    """An entry's values as stored, in the order of :data:`_ENTRY_FIELDS` (amounts and
    energies as their exact decimal text)."""
    return (
        e.number,
        e.unit_id,
        e.unit_name,
        e.customer,
        e.status,
        e.first_day,
        e.last_day,
        str(e.consumption_kwh),
        str(e.local_kwh),
        str(e.grid_kwh),
        str(e.total),
        e.currency,
        e.at,
        e.length,
    )


def _entry(row: Sequence[Any]) -> InvoiceEntry:
    return InvoiceEntry(
        number=row[0],
        unit_id=row[1],
        unit_name=row[2],
        customer=row[3],
        status=row[4],
        first_day=row[5],
        last_day=row[6],
        consumption_kwh=Decimal(row[7]),
        local_kwh=Decimal(row[8]),
        grid_kwh=Decimal(row[9]),
        total=Decimal(row[10]),
        currency=row[11],
        at=int(row[12]),
        length=int(row[13]),
    )


def _check_entries(entries: Sequence[InvoiceEntry], invoices: int, size: int) -> None:
    """``ValueError`` unless there is one entry per invoice, each number once, and their spans
    lie one after the other inside the run JSON of ``size`` bytes."""
    if len(entries) != invoices:
        raise ValueError(f"{len(entries)} invoice entries for a run of {invoices} invoice(s)")
    numbers = [e.number for e in entries]
    if len(set(numbers)) != len(numbers):
        raise ValueError("invoice entries name an invoice more than once")
    end = 0
    for e in entries:
        if e.at < end or e.length <= 0 or e.at + e.length > size:
            raise ValueError(
                f"the invoice entry of {e.number} ({e.length} bytes from {e.at}) does not lie "
                f"after the one before it inside the run JSON of {size} bytes"
            )
        end = e.at + e.length


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
        invoice_entries: Sequence[InvoiceEntry] | None = None,
    ) -> RunRecord:
        """Store a run and its files. Refuses (``StoreError``) a run number or a version of the
        period that exists already: nothing stored is ever replaced.

        ``run_json=None``: the run JSON is the one file of ``outputs`` whose name ends in
        ``-run.json``, stored once as that file. ``invoice_entries`` (one per invoice, in the
        order of the file, with ``run_json=None``): that file is kept in pieces, each invoice
        on its own (module docstring)."""
        self._ensure()
        if created_at.tzinfo is None:
            raise ValueError("naive datetime given to the store; use an aware (UTC) datetime")
        run_files = [n for n in outputs if n.endswith(_RUN_FILE)]
        if run_json is None and len(run_files) != 1:
            raise ValueError(f"run_json=None needs exactly one file '*{_RUN_FILE}' in outputs")
        entries = list(invoice_entries) if invoice_entries is not None else None
        if entries is not None:
            if run_json is not None:
                raise ValueError("invoice entries need the run JSON among the outputs")
            _check_entries(entries, invoices, len(outputs[run_files[0]]))
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
                # text compressed on two threads (Zstandard lets go of the GIL)
                names = sorted(outputs)
                split = run_files[0] if entries is not None else None

                def store_file(name: str) -> tuple[bytes, str]:
                    if name == split and entries is not None:
                        spans = [(e.at, e.length) for e in entries]
                        return compress(_without(outputs[name], spans)), _SPLIT
                    return _stored(name, bytes(outputs[name]))

                with ThreadPoolExecutor(2, thread_name_prefix="run-store") as pool:
                    stored = list(pool.map(store_file, names))
                    if split is not None and entries:
                        view = memoryview(outputs[split])
                        pieces = list(
                            pool.map(
                                lambda e: compress(view[e.at : e.at + e.length]),
                                entries,
                            )
                        )
                        self._add_entries(run, entries, pieces)
                self._insert(
                    "billing_run_outputs",
                    run,
                    {
                        "name": names,
                        "sha256": [hashlib.sha256(outputs[n]).hexdigest() for n in names],
                        "content": [content for content, _ in stored],
                        "encoding": [encoding for _, encoding in stored],
                    },
                )
        return self.get(run)

    def _add_entries(self, run: int, entries: Sequence[InvoiceEntry], pieces: list[bytes]) -> None:
        """The rows of ``billing_run_invoices`` of a run."""
        columns: dict[str, list[Any]] = {name: [] for name in _ENTRY_FIELDS}
        for e in entries:
            for name, value in zip(_ENTRY_FIELDS, _entry_values(e), strict=True):
                columns[name].append(value)
        self._insert("billing_run_invoices", run, {**columns, "content": pieces})

    def _insert(self, table: str, run: int, columns: Mapping[str, Sequence[Any]]) -> None:
        """Rows of ``run`` into ``table`` in one INSERT: the columns handed to DuckDB as arrays,
        not a statement per row (a run of 1,000 units has 1,200 files and 1,186 invoices)."""
        size = len(next(iter(columns.values())))
        rows = {"run": np.full(size, run, dtype=np.int64)}
        rows.update({name: np.array(values, dtype=object) for name, values in columns.items()})
        names = ", ".join(rows)
        self._con.register("run_rows_new", rows)
        try:
            self._con.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM run_rows_new")
        finally:
            self._con.unregister("run_rows_new")

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
            f"SELECT name, sha256, content, {self._encoding()} FROM billing_run_outputs "
            "WHERE run = ? AND suffix(name, ?)",
            [run, _RUN_FILE],
        ).fetchall()
        if len(rows) != 1:
            raise StoreError(f"billing run {run} holds no run JSON")
        return self._output(run, rows[0]).content.decode("utf-8")

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
        return [self._output(run, r) for r in rows]

    def output(self, run: int, name: str) -> RunOutput | None:
        """One file of a run (an invoice's page or PDF), without reading the others."""
        self.get(run)
        rows = self._con.execute(
            f"SELECT name, sha256, content, {self._encoding()} FROM billing_run_outputs "
            "WHERE run = ? AND name = ?",
            [run, name],
        ).fetchall()
        return self._output(run, rows[0]) if rows else None

    def _output(self, run: int, row: Sequence[Any]) -> RunOutput:
        """A stored file as the run wrote it: a run JSON kept in pieces put together again, and
        checked against its SHA-256."""
        name, sha256, content, encoding = row
        if encoding not in _SPLITS:
            return RunOutput(name, sha256, _unstored(bytes(content), encoding))
        pieces = self._con.execute(
            "SELECT json_offset, content FROM billing_run_invoices WHERE run = ? "
            "ORDER BY json_offset",
            [run],
        ).fetchall()
        whole = _put_together(inflate(bytes(content)), ((int(at), inflate(p)) for at, p in pieces))
        if hashlib.sha256(whole).hexdigest() != sha256:
            raise StoreError(
                f"the stored {name} of billing run {run} does not match its SHA-256 once put "
                "together from its invoices: the store is damaged"
            )
        return RunOutput(name, sha256, whole)

    def _split(self, run: int, column: str = "count(*)") -> Any:
        """``column`` of the stored rest of a run JSON kept in pieces (by default whether
        there is one), None for a run not kept in pieces."""
        self.get(run)
        if not self._ready and not self._has_invoices():
            return None
        rows = self._con.execute(
            f"SELECT {column} FROM billing_run_outputs WHERE run = ? AND suffix(name, ?) "
            "AND encoding IN (?, ?)",
            [run, _RUN_FILE, *_SPLITS],
        ).fetchall()
        return rows[0][0] if rows and rows[0][0] else None

    def keeps_invoices(self, run: int) -> bool:
        """Whether the run was stored with its invoice entries (its invoices can be read one
        by one: :meth:`invoices`, :meth:`invoice_json`, :meth:`run_head`)."""
        return self._split(run) is not None

    def run_head(self, run: int) -> str | None:
        """The run's JSON without its invoices (an empty ``invoices`` array; everything else
        as it stands in the file), or None for a run not stored with its invoice entries."""
        rest = self._split(run, "content")
        return None if rest is None else inflate(rest).decode("utf-8")

    def invoices(
        self, run: int, unit_id: str | None = None, *, offset: int = 0, limit: int | None = None
    ) -> list[InvoiceEntry] | None:
        """The invoice entries of a run (of one unit), in the order of the run (``limit`` of
        them from ``offset``; all by default), or None for a run not stored with them
        (``add(invoice_entries=None)``, or stored before they were kept): read its
        :meth:`run_json` instead."""
        if not self.keeps_invoices(run):
            return None
        sql = f"SELECT {_ENTRY_COLUMNS} FROM billing_run_invoices WHERE run = ?"
        params: list[object] = [run]
        if unit_id is not None:
            sql += " AND unit_id = ?"
            params.append(unit_id)
        sql = paged(sql + " ORDER BY json_offset", params, offset, limit)
        return [_entry(r) for r in self._con.execute(sql, params).fetchall()]

    def unit_invoices(self, site_id: str, unit_id: str) -> dict[int, list[InvoiceEntry]]:
        """A unit's invoice entries in every run of the site stored with its entries, by run
        (an empty list for such a run without an invoice of the unit), in two queries however
        many runs the site has. Runs stored without entries are not in it: read their
        :meth:`run_json`."""
        if not self._ready and not (self._exists() and self._has_invoices()):
            return {}
        kept = self._con.execute(
            "SELECT o.run FROM billing_run_outputs o JOIN billing_runs r ON o.run = r.run "
            "WHERE r.site_id = ? AND o.encoding IN (?, ?) AND suffix(o.name, ?)",
            [site_id, *_SPLITS, _RUN_FILE],
        ).fetchall()
        out: dict[int, list[InvoiceEntry]] = {int(run): [] for (run,) in kept}
        columns = ", ".join(f"i.{name}" for name in _ENTRY_FIELDS)
        rows = self._con.execute(
            f"SELECT i.run, {columns} FROM billing_run_invoices i JOIN billing_runs r "
            "ON i.run = r.run WHERE r.site_id = ? AND i.unit_id = ? "
            "ORDER BY i.run, i.json_offset",
            [site_id, unit_id],
        ).fetchall()
        for row in rows:
            out.setdefault(int(row[0]), []).append(_entry(row[1:]))
        return out

    def invoice_json(self, run: int, number: str) -> str | None:
        """The JSON of one invoice of a run stored with its invoice entries (its text in the
        run JSON, without the separator before it), None when the run has no such invoice.
        ``StoreError`` for a run not stored with them."""
        if not self.keeps_invoices(run):
            raise StoreError(f"billing run {run} keeps its invoices only in its run JSON")
        rows = self._con.execute(
            "SELECT content FROM billing_run_invoices WHERE run = ? AND number = ?", [run, number]
        ).fetchall()
        if not rows:
            return None
        return inflate(rows[0][0]).decode("utf-8").lstrip(",").strip()

    def _has_invoices(self) -> bool:
        """Whether the store has the table of invoice entries (a store opened read-only may
        predate it)."""
        rows = self._con.execute(
            "SELECT count(*) FROM information_schema.tables "
            "WHERE table_name = 'billing_run_invoices'"
        ).fetchall()
        return bool(rows and rows[0][0])

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
