"""A large file of interval values on disk is imported part by part: hashed, checked and
archived from parts of the file, never held whole. It must give exactly what importing the
same bytes held whole gives (archive, readings, profiles), refuse a file with problems listing
them as for the whole file, and refuse a file that changes while it is imported (TOR-7.1)."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from lastgang import services
from lastgang.errors import InvalidInput
from lastgang.ingest import csv_readings, dispatch
from lastgang.ingest.dispatch import InputFile
from lastgang.services import apply_site, import_bytes, import_files
from lastgang.store import duckdb_store
from lastgang.store.duckdb_store import DuckDBStore
from lastgang.timegrid import day_slots, end_labels

DATA = Path(__file__).resolve().parent.parent / "data"
SITE = DATA / "site-basic.toml"
SITE_ID = "graz-lend-12"
WHEN = datetime(2024, 11, 5, 8, 0, tzinfo=UTC)
TZ = "Europe/Vienna"
POINTS = ("AT0081000801000000000000000100021", "AT0081000801000000000000000100031")


def _content(days: int = 2, blank_end: bool = False, first: date = date(2024, 6, 16)) -> bytes:
    """Two metering points' values over ``days`` local days from ``first``."""
    start, _ = day_slots(first, TZ)
    _, stop = day_slots(first + timedelta(days=days - 1), TZ)
    lines = ["end,metering_point,import_kwh,export_kwh,quality"]
    for point in POINTS:
        lines += [
            f"{label},{point},{round(0.04 + (k % 13) * 0.011, 3)!r},0.0,L1"
            for k, label in enumerate(end_labels(start, stop, TZ))
        ]
    return ("\n".join(lines) + "\n" + ("\n\n" if blank_end else "")).encode()


@pytest.fixture(autouse=True)
def small_pieces(monkeypatch: pytest.MonkeyPatch) -> None:
    """Files of a few kB read as a large one is: pieces of 512 bytes, archive chunks of 100
    (so that the parts cut lines anywhere)."""
    monkeypatch.setattr(csv_readings, "CHUNK_BYTES", 512)
    monkeypatch.setattr(duckdb_store, "CHUNK_BYTES", 100)


def _store() -> DuckDBStore:
    store = DuckDBStore(":memory:")
    apply_site(store, SITE, now=WHEN)
    return store


def _held_whole(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The files read whole (``InputFile.content`` of a file on disk)."""
    seen: list[Path] = []
    read = dispatch._read_file

    def reading(path: Path) -> bytes:
        seen.append(path)
        return read(path)

    monkeypatch.setattr(dispatch, "_read_file", reading)
    return seen


@pytest.mark.parametrize("blank_end", [False, True])
def test_tor_7_1_a_large_file_imported_in_parts_is_archived_and_read_as_held_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, blank_end: bool
) -> None:
    content = _content(blank_end=blank_end)
    assert len(content) > 4 * 512  # read in pieces
    path = tmp_path / "intervals.csv"
    path.write_bytes(content)
    held = _held_whole(monkeypatch)
    parts = _store()
    monkeypatch.setattr(services, "_mb", str)  # bytes, not MB, for a file of a few kB
    said: list[tuple[str, int, int]] = []
    (result,) = import_files(parts, SITE_ID, [path], now=WHEN, progress=lambda *a: said.append(a))
    assert held == []  # never read whole
    # the check says how far it has read, after each part of the archive's 100 bytes
    reading = [what for what, _, _ in said if what.startswith(f"checking {path} (")]
    ends = [*range(100, len(content), 100), len(content)]
    assert reading == [f"checking {path} ({end} of {len(content)})" for end in ends]
    assert (result.status, result.rows) == ("imported", 2 * 2 * 96)
    whole = _store()
    import_bytes(whole, SITE_ID, content, str(path), now=WHEN)
    # the archive holds the file byte for byte, in the same chunks
    (info,) = parts.batches(SITE_ID)
    assert parts.batch_content(info.batch) == content
    assert info.sha256 == hashlib.sha256(content).hexdigest()
    assert info.size == len(content)
    assert parts.fingerprint(SITE_ID) == whole.fingerprint(SITE_ID)
    # the pieces it was read in are kept with it (cut where its parts fell), as for the bytes
    # held whole: together every line after the header, each with the names of its lines
    for store in (parts, whole):
        pieces = store.batch_pieces(info.batch)
        assert pieces is not None
        lines = content[pieces[0].start : pieces[-1].stop]
        assert pieces[0].start == content.index(b"\n") + 1
        assert lines.rstrip(b"\n") == content[pieces[0].start :].rstrip(b"\n")
        assert all(a.stop == b.start for a, b in itertools.pairwise(pieces))
        for piece in pieces:
            text = content[piece.start : piece.stop].decode()
            named = {row.split(",")[1] for row in text.splitlines() if row.strip()}
            assert piece.names - {""} == named  # "" for blank lines: such a piece is read
    # the same file again: already imported, found by its hash alone
    (again,) = import_files(parts, SITE_ID, [path], now=WHEN)
    assert again.already_imported
    assert held == []


def test_a_large_file_with_a_problem_is_refused_as_when_held_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = _content().decode().split("\n")
    lines[150] = lines[150].replace(",L1", ",L7")
    content = "\n".join(lines).encode()
    path = tmp_path / "intervals.csv"
    path.write_bytes(content)
    store = _store()
    with pytest.raises(InvalidInput) as in_parts:
        import_files(store, SITE_ID, [path], now=WHEN)
    with pytest.raises(InvalidInput) as whole:
        import_bytes(_store(), SITE_ID, content, str(path), now=WHEN)
    assert in_parts.value.problems == whole.value.problems
    assert [(p.line, p.column) for p in in_parts.value.problems] == [(151, "quality")]
    assert store.batches(SITE_ID) == []
    # nothing was left prepared for the refused bytes
    assert not store.archive_prepared(hashlib.sha256(content).hexdigest())


def test_a_file_that_changes_while_it_is_imported_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file is hashed, then read again for its check and archive: bytes that are not
    those hashed are refused, and nothing is archived."""
    content = _content()
    path = tmp_path / "intervals.csv"
    path.write_bytes(content)
    parts = InputFile.parts
    reads: list[int] = []

    def changing(self: InputFile, size: int) -> Iterator[bytes]:
        reads.append(size)
        if len(reads) == 2:  # after the hash: another value, same length
            path.write_bytes(content.replace(b",0.04,", b",0.05,", 1))
        yield from parts(self, size)

    monkeypatch.setattr(InputFile, "parts", changing)
    store = _store()
    with pytest.raises(InvalidInput, match="changed after it was checked"):
        import_files(store, SITE_ID, [path], now=WHEN)
    assert len(reads) == 2
    assert store.batches(SITE_ID) == []


def test_parts_of_a_file_are_its_bytes(tmp_path: Path) -> None:
    content = _content()
    path = tmp_path / "x.csv"
    path.write_bytes(content)
    for size in (1, 100, len(content) - 1, len(content), len(content) + 1):
        item = InputFile(str(path), lambda: b"", path)
        got = list(item.parts(size))
        assert b"".join(got) == content
        assert all(len(p) == size for p in got[:-1])
        assert 0 < len(got[-1]) <= size
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    assert list(InputFile(str(empty), lambda: b"", empty).parts(100)) == [b""]
    held = InputFile.of_bytes("held.csv", content)
    assert b"".join(held.parts(100)) == content


def test_large_files_whose_readings_wait_on_disk_are_archived_part_by_part(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Files of a folder beyond what the check keeps in memory wait on disk between their
    check and their import; their archive is then made again from parts of the file, never
    from the file held whole."""
    monkeypatch.setattr(services, "CHECKED_BYTES_KEPT", 1)
    first, second = _content(days=2), _content(days=3, first=date(2024, 7, 16))
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "a.csv").write_bytes(first)
    (folder / "b.csv").write_bytes(second)
    held = _held_whole(monkeypatch)
    store = _store()
    results = import_files(store, SITE_ID, [folder], now=WHEN)
    assert [r.status for r in results] == ["imported", "imported"]
    assert held == []
    whole = _store()
    for name in ("a.csv", "b.csv"):
        path = folder / name
        import_bytes(whole, SITE_ID, path.read_bytes(), str(path), now=WHEN)
    for info in store.batches(SITE_ID):
        assert store.batch_content(info.batch) == Path(info.source).read_bytes()
        kept = store.batch_pieces(info.batch)  # kept with the readings that waited on disk
        assert kept is not None and kept[-1].stop == info.size
    assert store.fingerprint(SITE_ID) == whole.fingerprint(SITE_ID)


def test_a_file_waiting_on_disk_that_changes_before_its_import_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(services, "CHECKED_BYTES_KEPT", 1)
    folder = tmp_path / "folder"
    folder.mkdir()
    a, b = folder / "a.csv", folder / "b.csv"
    a.write_bytes(_content())
    b.write_bytes(_content(days=3, first=date(2024, 7, 16)))
    store_batch = services._store_batch

    def storing(*args: Any, **kwargs: Any) -> int:
        # once the first file is stored, the second changes on disk (same length)
        b.write_bytes(b.read_bytes().replace(b",0.04,", b",0.05,", 1))
        return store_batch(*args, **kwargs)

    monkeypatch.setattr(services, "_store_batch", storing)
    store = _store()
    with pytest.raises(InvalidInput, match=r"changed after it was checked.*\(the 1 input"):
        import_files(store, SITE_ID, [folder], now=WHEN)
    assert [info.source for info in store.batches(SITE_ID)] == [str(a)]
