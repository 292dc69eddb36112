"""A large file of interval values is read in pieces of whole lines: it must give exactly the
readings of the file read whole, whatever parts its bytes come in (an archived file's chunks are
cut anywhere), and a file with problems lists exactly the same problems (file, line, column,
reason) as read whole."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pytest

from lastgang.concept.load import load_site
from lastgang.errors import InvalidInput, Problem
from lastgang.ingest import csv_readings
from lastgang.ingest.csv_readings import (
    ParsedFile,
    SiteIndex,
    parse_csv_readings,
    parse_interval_pieces,
)
from lastgang.timegrid import day_slots, end_labels

DATA = Path(__file__).resolve().parent.parent / "data"
INDEX = SiteIndex(load_site(DATA / "site-basic.toml"))
TZ = "Europe/Vienna"
POINTS = {
    "top1": "AT0081000801000000000000000100011",
    "top2": "AT0081000801000000000000000100021",
    "general": "AT0081000801000000000000000100031",
}
HEADER = "end,metering_point,import_kwh,export_kwh,quality"


def _lines(point: str, days: int = 3, first: str = "2024-06-14") -> list[str]:
    """A metering point's values over ``days`` local days (Top 1 changes meter on 15 June)."""
    day = date.fromisoformat(first)
    start, _ = day_slots(day, TZ)
    _, stop = day_slots(day + timedelta(days=days - 1), TZ)
    return [
        f"{label},{point},{round(0.05 + (k % 11) * 0.017, 3)!r},0.0,{'L2' if k % 89 == 5 else 'L1'}"
        for k, label in enumerate(end_labels(start, stop, TZ))
    ]


def _file(lines: list[str], header: str = HEADER, end: str = "\n") -> bytes:
    return (header + end + end.join(lines) + end).encode()


def _read(
    content: bytes, chunk: int, monkeypatch: pytest.MonkeyPatch
) -> ParsedFile | list[Problem]:
    monkeypatch.setattr(csv_readings, "CHUNK_BYTES", chunk)
    try:
        return parse_csv_readings(content, INDEX, "file.csv")
    except InvalidInput as exc:
        return list(exc.problems)


def _same(a: ParsedFile | list[Problem], b: ParsedFile | list[Problem]) -> None:
    if isinstance(a, list) or isinstance(b, list):
        assert a == b
        return
    assert (a.kind, a.rows, a.meters, a.locations, a.factors) == (
        b.kind,
        b.rows,
        b.meters,
        b.locations,
        b.factors,
    )
    x, y = a.readings.intervals, b.readings.intervals
    assert (x.locations, x.meters, x.primary) == (y.locations, y.meters, y.primary)
    for name in ("location", "meter", "slot", "import_kwh", "export_kwh", "quality"):
        u, v = getattr(x, name), getattr(y, name)
        assert u.dtype == v.dtype
        assert np.array_equal(u, v), name


def _parts(content: bytes, size: int) -> list[bytes]:
    """``content`` cut every ``size`` bytes, wherever that falls (mid-line, mid-value, between
    the two bytes of a CRLF), as an archive's chunks are."""
    return [content[k : k + size] for k in range(0, len(content), size)]


def _check(
    content: bytes, monkeypatch: pytest.MonkeyPatch, *, pieces: bool = False
) -> ParsedFile | list[Problem]:
    """The file read whole and in pieces of several sizes; with ``pieces`` the pieces must
    have been read as such (not handed to the whole-file reader)."""
    whole = _read(content, 1 << 40, monkeypatch)
    for chunk in (97, 1000, 4096):  # pieces of a line or so up to many lines
        _same(_read(content, chunk, monkeypatch), whole)
    if pieces:
        # parts of one byte, of less than a line, of about a line, smaller and larger than a
        # piece, and the whole file as one part
        for chunk, size in [
            (1000, 1),
            (1000, 7),
            (1000, 61),
            (1000, 334),
            (1000, 3005),
            (4096, 4096),
            (4096, len(content)),
        ]:
            monkeypatch.setattr(csv_readings, "CHUNK_BYTES", chunk)
            found = parse_interval_pieces(_parts(content, size), INDEX, "file.csv")
            assert found is not None, (chunk, size)
            _same(found, whole)
    return whole


BLOCKS = [_lines(p) for p in POINTS.values()]


def test_pieces_give_the_readings_of_the_whole_file(monkeypatch: pytest.MonkeyPatch) -> None:
    whole = _check(_file([line for block in BLOCKS for line in block]), monkeypatch, pieces=True)
    assert isinstance(whole, ParsedFile)
    assert whole.rows == 3 * 3 * 96
    assert whole.locations == ("top1", "top2", "general")
    assert len(whole.meters) == 4  # Top 1's meter exchange: both meters


def test_pieces_of_a_crlf_file_with_blank_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    lines = [line for block in BLOCKS for line in block]
    lines[100:100] = ["", ""]
    whole = _check(_file(lines, end="\r\n") + b"\r\n\r\n", monkeypatch, pieces=True)
    assert isinstance(whole, ParsedFile)
    assert whole.rows == 3 * 3 * 96


def test_pieces_of_a_file_with_from_and_to(monkeypatch: pytest.MonkeyPatch) -> None:
    start, stop = day_slots(date(2024, 3, 31), TZ)
    begins = end_labels(start - 1, stop - 1, TZ)
    ends = end_labels(start, stop, TZ)
    lines = [
        f"{a},{b},top2,0.{k % 9}25,0.0" for k, (a, b) in enumerate(zip(begins, ends, strict=True))
    ]
    whole = _check(
        _file(lines, "from,to,metering_point,import_kwh,export_kwh"), monkeypatch, pieces=True
    )
    assert isinstance(whole, ParsedFile)
    assert whole.rows == 92


def test_metering_points_line_by_line_alternating(monkeypatch: pytest.MonkeyPatch) -> None:
    lines = [line for group in zip(*BLOCKS, strict=True) for line in group]
    whole = _check(_file(lines), monkeypatch)
    assert isinstance(whole, ParsedFile)
    assert whole.rows == 3 * 3 * 96


@pytest.mark.parametrize(
    ("where", "bad"),
    [
        (5, None),  # a duplicate of the line before, early
        (700, None),  # a duplicate late in the file, in another piece
        (650, "2024-06-14 00:15+02:00,{point},0.1,0.0,L1"),  # time goes backwards
        (400, "2024-06-14 00:17+02:00,{point},0.1,0.0,L1"),  # not a quarter hour
        (800, "2024-06-16 00:15+02:00,{point},abc,0.0,L1"),  # not a number
        (300, "2024-06-16 00:15+02:00,AT0081000801000000000000000999999,0.1,0.0,L1"),
        (100, "2024-06-16 00:15+02:00,{point},0.1,0.0,L7"),
        (600, "2024-06-16 00:15+02:00,{point},-0.1,0.0,L1"),
        (10, "2024-06-16,{point},0.1,0.0,L1"),
        (500, "2024-06-16 00:15+02:00,{point},0.1,0.0,L1,extra"),
    ],
)
def test_problems_are_listed_as_for_the_whole_file(
    monkeypatch: pytest.MonkeyPatch, where: int, bad: str | None
) -> None:
    lines = [line for block in BLOCKS for line in block]
    point = lines[where].split(",")[1]
    lines.insert(where + 1, lines[where] if bad is None else bad.format(point=point))
    whole = _check(_file(lines), monkeypatch)
    assert isinstance(whole, list)
    assert whole
    assert all(p.file == "file.csv" for p in whole)


def test_a_duplicate_across_pieces_names_both_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    lines = [line for block in BLOCKS for line in block]
    lines.append(lines[3])  # the fourth value of the first metering point again, at the end
    whole = _check(_file(lines), monkeypatch)
    assert isinstance(whole, list)
    assert [(p.line, p.column) for p in whole] == [(len(lines) + 1, "end")]
    assert "already on line 5" in whole[0].reason


def test_a_file_with_quotes_is_read_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    lines = [line for block in BLOCKS for line in block]
    first, point, rest = lines[7].split(",", 2)
    lines[7] = f'{first},"{point}",{rest}'
    content = _file(lines)
    whole = _check(content, monkeypatch)
    assert isinstance(whole, ParsedFile)
    assert whole.rows == 3 * 3 * 96
    monkeypatch.setattr(csv_readings, "CHUNK_BYTES", 1000)
    assert parse_interval_pieces(_parts(content, 333), INDEX, "file.csv") is None


@pytest.mark.parametrize("lines", ["blocks", "alternating"])
def test_pieces_read_without_the_rows_of_skipped_locations(
    monkeypatch: pytest.MonkeyPatch, lines: str
) -> None:
    """A rebuild of Top 1 skips the others' rows: the pieces give exactly Top 1's rows of the
    whole file (its meter exchange on 15 June included); the location names stay as found."""
    rows = (
        [line for block in BLOCKS for line in block]
        if lines == "blocks"
        else [line for group in zip(*BLOCKS, strict=True) for line in group]
    )
    content = _file(rows)
    whole = _read(content, 1 << 40, monkeypatch)
    assert isinstance(whole, ParsedFile)
    for chunk in (97, 1000, 4096):
        monkeypatch.setattr(csv_readings, "CHUNK_BYTES", chunk)
        part = parse_csv_readings(content, INDEX, "file.csv", skip={"top2", "general"})
        x = part.readings.intervals
        mine = whole.readings.intervals.location == whole.readings.intervals.locations.index("top1")
        assert x.locations == ("top1",)
        assert part.meters == ("ISK:1ISK0070001234", "ISK:1ISK0070005678")
        for name in ("slot", "import_kwh", "export_kwh", "quality"):
            assert np.array_equal(getattr(x, name), getattr(whole.readings.intervals, name)[mine])
        meters = [x.meters[m] for m in x.meter.tolist()]
        wanted = whole.readings.intervals
        assert meters == [wanted.meters[m] for m in wanted.meter[mine].tolist()]
    # read whole (a small file), nothing is skipped: the rebuild leaves those rows out itself
    monkeypatch.setattr(csv_readings, "CHUNK_BYTES", 1 << 40)
    small = parse_csv_readings(content, INDEX, "file.csv", skip={"top2", "general"})
    assert small.readings.intervals.locations == ("top1", "top2", "general")


def _names_of(lines: bytes) -> set[str]:
    """The metering point names of CSV lines (naively: the second field of each line)."""
    return {line.split(",")[1] for line in lines.decode().splitlines() if line.strip()}


@pytest.mark.parametrize("end", ["\n", "\r\n"])
def test_the_pieces_of_a_file_are_kept_with_their_bytes_and_names(
    monkeypatch: pytest.MonkeyPatch, end: str
) -> None:
    """Each piece says which bytes of the file it holds (together every byte after the header
    line, in order) and which metering point names its lines give, whatever parts the bytes
    came in."""
    content = _file([line for block in BLOCKS for line in block], end=end)
    header_end = content.index(b"\n") + 1
    monkeypatch.setattr(csv_readings, "CHUNK_BYTES", 1000)
    for size in (1, 61, 3005, len(content)):
        found = parse_interval_pieces(_parts(content, size), INDEX, "file.csv")
        assert found is not None
        if size == len(content):  # one piece, with every name: none kept
            assert found.pieces is None
            continue
        assert found.pieces is not None
        pieces = found.pieces
        assert len(pieces) > 3  # of about 1000 bytes
        assert pieces[0].start == header_end and pieces[-1].stop == len(content)
        assert all(a.stop == b.start for a, b in itertools.pairwise(pieces))
        for k, piece in enumerate(pieces):
            lines = content[piece.start : piece.stop]
            assert lines.endswith(b"\n") and piece.names == _names_of(lines)
            assert k == len(pieces) - 1 or piece.stop - piece.start >= 1000 - header_end
    # a file in memory is read in pieces as one on disk; read whole (small), it has none
    in_parts = parse_interval_pieces(_parts(content, 1000), INDEX, "file.csv")
    assert in_parts is not None
    assert parse_csv_readings(content, INDEX, "file.csv").pieces == in_parts.pieces
    monkeypatch.setattr(csv_readings, "CHUNK_BYTES", 1 << 40)
    assert parse_csv_readings(content, INDEX, "file.csv").pieces is None


@pytest.mark.parametrize("lines", ["blocks", "alternating"])
def test_only_the_pieces_holding_rows_not_skipped_give_the_rows_of_the_whole_file(
    monkeypatch: pytest.MonkeyPatch, lines: str
) -> None:
    """A rebuild of Top 1 reads the header line and the pieces with Top 1's names (adjacent
    ones as one range): the same readings as every piece read with the others skipped. In a
    file of blocks that is a third of it; in one whose lines alternate but for a last line of
    Top 1, all of it (such a file's pieces are not kept when every piece holds every name)."""
    alternating = [line for group in zip(*BLOCKS, strict=True) for line in group]
    rows = [line for block in BLOCKS for line in block] if lines == "blocks" else alternating
    monkeypatch.setattr(csv_readings, "CHUNK_BYTES", 1000)
    skip = {"top2", "general"}
    if lines == "alternating":
        every = parse_interval_pieces(_parts(_file(rows), 1000), INDEX, "f.csv", skip=skip)
        assert every is not None and every.pieces is None  # every piece, every name
        rows = [*rows, *_lines(POINTS["top1"], days=1, first="2024-06-17")]  # Top 1 alone
    content = _file(rows)
    # every piece read (alternating lines are read in pieces only with the others skipped)
    found = parse_interval_pieces(_parts(content, 1000), INDEX, "file.csv", skip=skip)
    assert found is not None and found.pieces is not None
    ranges = csv_readings.pieces_to_read(found.pieces, INDEX, skip)
    wanted = [p for p in found.pieces if POINTS["top1"] in p.names]
    assert sum(b - a for a, b in ranges) == sum(p.stop - p.start for p in wanted)
    assert all(a[1] < b[0] for a, b in itertools.pairwise(ranges))  # joined
    read = sum(b - a for a, b in ranges)
    if lines == "blocks":
        assert len(ranges) == 1 and read < len(content) / 2
    else:
        assert ranges == [(found.pieces[0].start, len(content))]
    header = content[: found.pieces[0].start]
    parts = [header, *(content[a:b] for a, b in ranges)]
    part = parse_interval_pieces(parts, INDEX, "file.csv", skip=skip)
    assert part is not None
    _same(part, found)
    assert part.readings.intervals.locations == ("top1",)
    # a name of no location is read (the file is refused, as it would be whole)
    strange = replace(found.pieces[-1], names=found.pieces[-1].names | {"AT00810008010000099"})
    with_strange = [*found.pieces[:-1], strange]
    assert csv_readings.pieces_to_read(with_strange, INDEX, skip)[-1][1] == len(content)
