"""The raw archive stores large chunks compressed and gives back the exact bytes as imported; DuckDB
keeps the chunks as they are (no compression of its own); stores of schema version 1 (chunks as
they are, no codec column) and 4 (chunks compressed by DuckDB) are read as they are and upgraded
when opened for writing."""

from __future__ import annotations

import hashlib
import os
import threading
import zlib
from concurrent.futures import Future
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest
from old_stores import as_version

from lastgang.errors import StoreError
from lastgang.services import apply_site
from lastgang.store import FilePiece, duckdb_store
from lastgang.store.duckdb_store import DuckDBStore

DATA = Path(__file__).resolve().parent.parent / "data"
SITE = DATA / "site-basic.toml"
WHEN = datetime(2024, 7, 1, 12, 0, tzinfo=UTC)
SITE_ID = "graz-lend-12"


def _codecs(store: DuckDBStore, batch: int) -> list[str]:
    rows = store.connection.execute(
        "SELECT codec FROM raw_chunks WHERE batch = ? ORDER BY seq", [batch]
    ).fetchall()
    return [r[0] for r in rows]


def _deflated(view: memoryview, offset: int) -> tuple[str, bytes]:
    """A chunk as archived before chunks were compressed with Zstandard: deflated."""
    raw = view[offset : offset + duckdb_store.CHUNK_BYTES]
    packed = zlib.compress(raw, 1)
    return ("zlib", packed) if len(packed) < len(raw) else ("none", bytes(raw))


@pytest.mark.parametrize("codec", ["zstd", "zlib"])  # as archived now, and before
def test_tor_7_1_archive_chunks_are_compressed_where_smaller_and_come_back_byte_exact(
    monkeypatch: pytest.MonkeyPatch, codec: str
) -> None:
    monkeypatch.setattr(duckdb_store, "CHUNK_BYTES", 64)
    if codec == "zlib":
        monkeypatch.setattr(duckdb_store, "_pack", _deflated)
    store = DuckDBStore(":memory:")
    apply_site(store, SITE, now=WHEN)
    # text that compresses, then 64 bytes that do not (every byte value once, shuffled)
    noise = bytes((i * 149 + 7) % 256 for i in range(64))
    content = (b"2024-06-15 10:15+02:00,top1,0.5\r\n" * 40)[: 64 * 20] + noise + b"tail\x00"
    digest = hashlib.sha256(content).hexdigest()
    info = store.add_batch(SITE_ID, content, digest, "x.csv", "csv/intervals", WHEN, 1, {})
    codecs = _codecs(store, info.batch)
    assert len(codecs) == 22
    assert codecs[:20] == [codec] * 20
    assert codecs[20:] == ["none", "none"]
    assert store.batch_content(info.batch) == content
    assert hashlib.sha256(store.batch_content(info.batch)).hexdigest() == info.sha256
    # part by part (more chunks than are inflated ahead), each chunk's bytes in order
    parts = list(store.batch_parts(info.batch))
    assert [len(p) for p in parts] == [64] * 21 + [5]
    assert b"".join(parts) == content
    # any range of bytes, from the chunks holding it alone
    size = len(content)
    for start, stop in [(0, 1), (0, size), (63, 65), (64, 128), (100, 1400), (1340, size + 9)]:
        got = list(store.batch_range(info.batch, start, stop))
        assert b"".join(got) == content[start:stop], (start, stop)
        assert len(got) == len(range(start // 64, (min(stop, size) - 1) // 64 + 1))
    assert list(store.batch_range(info.batch, 20, 20)) == []
    assert list(store.batch_range(info.batch, size, size + 5)) == []


def test_the_pieces_of_a_batch_are_kept_and_replaced() -> None:
    store = _store()
    content = b"end,metering_point\n" * 3
    info = store.add_batch(SITE_ID, content, "p" * 64, "p.csv", "csv/intervals", WHEN, 1, {})
    assert store.batch_pieces(info.batch) is None
    pieces = [FilePiece(19, 38, frozenset({"a", "b"})), FilePiece(38, 57, frozenset())]
    store.save_batch_pieces(info.batch, pieces[::-1])
    assert store.batch_pieces(info.batch) == pieces  # in file order
    store.save_batch_pieces(info.batch, pieces[:1])
    assert store.batch_pieces(info.batch) == pieces[:1]


def test_an_empty_file_is_archived_as_one_empty_chunk() -> None:
    store = DuckDBStore(":memory:")
    apply_site(store, SITE, now=WHEN)
    info = store.add_batch(SITE_ID, b"", "0" * 64, "empty.csv", "csv/intervals", WHEN, 1, {})
    assert _codecs(store, info.batch) == ["none"]
    assert store.batch_content(info.batch) == b""
    assert list(store.batch_parts(info.batch)) == [b""]


def test_a_version_1_store_is_read_as_it_is_and_upgraded_for_writing(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    content = b"end,metering_point,import_kwh,export_kwh\n" * 3
    with DuckDBStore(path) as store:
        apply_site(store, SITE, now=WHEN)
        store.add_batch(SITE_ID, content, "a" * 64, "a.csv", "csv/intervals", WHEN, 1, {})
    # what version 1 wrote: the chunks as they are, no codec column
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE old_chunks AS SELECT batch, seq, data FROM raw_chunks")
    con.execute("DROP TABLE raw_chunks")
    con.execute("ALTER TABLE old_chunks RENAME TO raw_chunks")
    con.execute("UPDATE raw_chunks SET data = ?::BLOB", [content])
    as_version(con, 1)
    con.close()
    with DuckDBStore(path, read_only=True) as old:
        assert old.batch_content(1) == content
    with DuckDBStore(path) as store:
        assert store.batch_content(1) == content
        version = store.connection.execute(
            "SELECT value FROM store_info WHERE key = 'schema_version'"
        ).fetchall()
        assert version == [(str(duckdb_store.SCHEMA_VERSION),)]
        info = store.add_batch(SITE_ID, content * 2, "b" * 64, "b.csv", "csv/x", WHEN, 1, {})
        assert store.batch_content(info.batch) == content * 2
        assert _codecs(store, 1) == ["none"]
    with DuckDBStore(path, read_only=True) as again:
        assert again.batch_content(1) == content
        assert again.batch_content(2) == content * 2


def _chunk_compression(con: duckdb.DuckDBPyConnection) -> set[str]:
    """How DuckDB keeps the chunks' bytes on disk (after a checkpoint)."""
    con.execute("CHECKPOINT")
    rows = con.execute(
        "SELECT DISTINCT compression FROM pragma_storage_info('raw_chunks') "
        "WHERE column_name = 'data' AND segment_type = 'BLOB'"
    ).fetchall()
    return {r[0] for r in rows}


def test_tor_7_1_duckdb_keeps_the_archived_chunks_as_they_are(tmp_path: Path) -> None:
    """The chunks are deflated already: DuckDB's own compression of the column (ZSTD a vector
    of 2,048 rows at a time) would make reading one batch's chunks inflate every chunk stored
    beside them."""
    with DuckDBStore(tmp_path / "new.duckdb") as store:
        apply_site(store, SITE, now=WHEN)
        for k in range(3):
            content = os.urandom(50_000) + b"\n" * 1000
            store.add_batch(SITE_ID, content, f"{k}" * 64, f"{k}.csv", "csv/x", WHEN, 1, {})
        assert _chunk_compression(store.connection) == {"Uncompressed"}


def test_a_version_4_store_is_read_as_it_is_and_its_chunks_kept_as_they_are_for_writing(
    tmp_path: Path,
) -> None:
    path = tmp_path / "v4.duckdb"
    contents = [os.urandom(40_000), b"end,metering_point,import_kwh,export_kwh\n" * 3000, b""]
    with DuckDBStore(path) as store:
        apply_site(store, SITE, now=WHEN)
        for k, content in enumerate(contents):
            store.add_batch(SITE_ID, content, f"{k}" * 64, f"{k}.csv", "csv/x", WHEN, 1, {})
        codecs = [_codecs(store, b) for b in (1, 2, 3)]
    # what version 4 wrote: the same rows in a column DuckDB compresses as it chooses
    con = duckdb.connect(str(path))
    con.execute(
        "CREATE TABLE old_chunks (batch BIGINT NOT NULL, seq INTEGER NOT NULL, "
        "data BLOB NOT NULL, codec VARCHAR DEFAULT 'none', PRIMARY KEY (batch, seq))"
    )
    con.execute("INSERT INTO old_chunks SELECT * FROM raw_chunks")
    con.execute("DROP TABLE raw_chunks")
    con.execute("ALTER TABLE old_chunks RENAME TO raw_chunks")
    as_version(con, 4)
    assert _chunk_compression(con) == {"ZSTD"}
    # an upgrade stopped half way left part of its copy: it copies afresh
    con.execute("CREATE TABLE raw_chunks_v5 AS SELECT * FROM raw_chunks WHERE batch = 1")
    con.execute("INSERT INTO raw_chunks_v5 VALUES (7, 0, 'left over'::BLOB, 'none')")
    con.close()
    with DuckDBStore(path, read_only=True) as old:
        assert [old.batch_content(b) for b in (1, 2, 3)] == contents
    with DuckDBStore(path) as store:
        version = store.connection.execute(
            "SELECT value FROM store_info WHERE key = 'schema_version'"
        ).fetchall()
        assert version == [(str(duckdb_store.SCHEMA_VERSION),)]
        assert [store.batch_content(b) for b in (1, 2, 3)] == contents
        assert [_codecs(store, b) for b in (1, 2, 3)] == codecs
        more = os.urandom(10_000)
        info = store.add_batch(SITE_ID, more, "9" * 64, "9.csv", "csv/x", WHEN, 1, {})
        assert _chunk_compression(store.connection) == {"Uncompressed"}
    with DuckDBStore(path, read_only=True) as again:
        assert [again.batch_content(b) for b in (1, 2, 3)] == contents
        assert again.batch_content(info.batch) == more


def test_an_upgrade_refuses_a_table_not_as_a_store_has_it() -> None:
    ddl = 'CREATE TABLE billing_run_outputs(run BIGINT, "content" VARCHAR);'
    with pytest.raises(StoreError, match="not as a lastgang store has it"):
        duckdb_store._kept_as_they_are(ddl, "billing_run_outputs", "content")
    kept = duckdb_store._kept_as_they_are(
        'CREATE TABLE t(run BIGINT, "content" BLOB NOT NULL, PRIMARY KEY(run));', "t", "content"
    )
    assert kept == (
        'CREATE TABLE t_v5(run BIGINT, "content" BLOB USING COMPRESSION uncompressed NOT NULL, '
        "PRIMARY KEY(run));"
    )


def _store() -> DuckDBStore:
    store = DuckDBStore(":memory:")
    apply_site(store, SITE, now=WHEN)
    return store


def test_tor_7_1_archive_prepared_chunks_are_the_chunks_of_the_bytes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(duckdb_store, "CHUNK_BYTES", 50)
    content = b"".join(b"2024-06-15 10:%02d+02:00,top1,0.%d\n" % (i % 60, i) for i in range(300))
    digest = hashlib.sha256(content).hexdigest()
    direct = _store()
    first = direct.add_batch(SITE_ID, content, digest, "a.csv", "csv/intervals", WHEN, 1, {})
    prepared = _store()
    prepared.prepare_batch(content, digest)
    info = prepared.add_batch(SITE_ID, content, digest, "a.csv", "csv/intervals", WHEN, 1, {})
    assert prepared.batch_content(info.batch) == content
    assert prepared.fingerprint(SITE_ID) == direct.fingerprint(SITE_ID)
    assert direct.batch_content(first.batch) == content
    # dropped before it is added (a rejected import), or stopped half way: packed again
    dropped = _store()
    dropped.prepare_batch(content, digest)
    dropped.drop_prepared()
    info = dropped.add_batch(SITE_ID, content, digest, "a.csv", "csv/intervals", WHEN, 1, {})
    assert dropped.batch_content(info.batch) == content
    half = _store()
    stopped: Future[list[tuple[str, bytes]] | None] = Future()
    whole = duckdb_store._packed_chunks(content, threading.Event())
    assert whole is not None
    stopped.set_result(whole[:3])
    half._prepared[digest] = stopped
    info = half.add_batch(SITE_ID, content, digest, "a.csv", "csv/intervals", WHEN, 1, {})
    assert half.batch_content(info.batch) == content
    assert half.fingerprint(SITE_ID) == direct.fingerprint(SITE_ID)
    for store in (direct, prepared, dropped, half):
        store.close()


def test_tor_7_1_an_archive_prepared_whole_is_stored_without_its_bytes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An import lets a file's bytes go once they are checked: the archive prepared from them
    is stored as it is, and equals the bytes. An archive not prepared, or stopped half way, is
    no archive: the bytes must be given."""
    monkeypatch.setattr(duckdb_store, "CHUNK_BYTES", 50)
    content = b"".join(b"2024-06-15 10:%02d+02:00,top1,0.%d\n" % (i % 60, i) for i in range(300))
    digest = hashlib.sha256(content).hexdigest()
    store = _store()
    assert not store.archive_prepared(digest)
    with pytest.raises(StoreError, match="not prepared whole"):
        store.add_batch(SITE_ID, None, digest, "a.csv", "csv/x", WHEN, 1, {}, size=len(content))
    assert store.batch_count(SITE_ID) == 0
    store.prepare_batch(content, digest)
    assert store.archive_prepared(digest)
    info = store.add_batch(SITE_ID, None, digest, "a.csv", "csv/x", WHEN, 1, {}, size=len(content))
    assert store.batch_content(info.batch) == content and info.size == len(content)
    # stopped by another import's drop while it was packed: not whole
    stopped = _store()
    dropped = threading.Event()
    dropped.set()
    future = Future[list[tuple[str, bytes]] | None]()
    future.set_result(duckdb_store._packed_chunks(content, dropped))
    stopped._prepared[digest] = future
    assert not stopped.archive_prepared(digest)
    with pytest.raises(StoreError):
        stopped.add_batch(SITE_ID, None, digest, "a.csv", "csv/x", WHEN, 1, {}, size=len(content))
    for s in (store, stopped):
        s.close()
