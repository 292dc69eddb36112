"""CSV files of meter readings -> column-wise reading rows (``docs/data-formats.md``).

Three kinds, told apart by the header row (UTF-8, comma separated):

- register readings (Zählerstände): ``time,meter,obis,value[,unit][,status]``
- phase power samples: ``time,meter,l1_kw,l2_kw,l3_kw[,status]``
- interval values (Lastgang, 15-minute energies): ``end,metering_point,import_kwh,export_kwh
  [,quality]`` or ``from,to,metering_point,import_kwh,export_kwh[,quality]``

Every timestamp carries its UTC offset. A file is checked whole before anything is stored: every
problem (bad timestamp, unknown meter or OBIS code, a value that is not a number, a duplicate, a
reading outside the meter's installed period, times that do not increase) is collected with its
file, line and column and raised together; a file with any problem is rejected whole.

Parsing is column-wise with polars and numpy: the only Python loops run over the distinct values
of a column (meters, OBIS codes, units), never over rows. A large file of interval values is read
in pieces of whole lines (:data:`CHUNK_BYTES`), so only one piece at a time is held as a table;
a file with any problem is read again whole, which lists its problems exactly as for a small file.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Any, Literal

import numpy as np
import polars as pl
from numpy.typing import NDArray

from lastgang.concept.model import Location, Meter, Site
from lastgang.errors import InvalidInput, InvalidObis, InvalidTime, Problem
from lastgang.ids import is_metering_point_id, parse_metering_point_id
from lastgang.obis import parse_obis
from lastgang.profiles.build import meter_period
from lastgang.profiles.status import status_code
from lastgang.quality import Quality
from lastgang.store import (
    FilePiece,
    IntervalRows,
    PhaseRows,
    ReadingSet,
    RegisterRows,
    StatusRows,
)
from lastgang.timegrid import SLOT_SECONDS, parse_timestamps, to_epoch

__all__ = [
    "COLUMNS",
    "MAX_PROBLEMS_PER_CHECK",
    "NO_METER",
    "SEVERAL_METERS",
    "CsvKind",
    "ParsedFile",
    "SiteIndex",
    "detect_kind",
    "parse_csv_readings",
    "parse_interval_pieces",
    "read_in_pieces",
]

CsvKind = Literal["registers", "phases", "intervals"]

#: required and optional columns of each kind (interval values: ``end`` or ``from`` + ``to``)
COLUMNS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "registers": (("time", "meter", "obis", "value"), ("unit", "status")),
    "phases": (("time", "meter", "l1_kw", "l2_kw", "l3_kw"), ("status",)),
    "intervals": (("metering_point", "import_kwh", "export_kwh"), ("end", "from", "to", "quality")),
}

#: Large files of interval values are read in pieces of about this many bytes (whole lines)
CHUNK_BYTES = 64 * 1024 * 1024

#: A check that fails on more rows than this reports the first ones and then one summary
#: problem with the count of the rest (a file with a wrong column would otherwise list millions).
MAX_PROBLEMS_PER_CHECK = 1000

_UNITS = {"kwh": 1.0, "wh": 0.001}

IntArray = NDArray[np.int64]
#: location and meter codes: int64, or int32 where they were made so
CodeArray = NDArray[np.int32] | NDArray[np.int64]
FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]


@dataclass(frozen=True, eq=False)
class ParsedFile:
    """One checked CSV file, ready to be stored."""

    source: str
    kind: CsvKind
    rows: int
    readings: ReadingSet
    #: meter keys (``manufacturer:serial``) the file has readings of
    meters: tuple[str, ...] = ()
    #: location ids the file has readings of
    locations: tuple[str, ...] = ()
    #: conversion factors in force per meter key (TOR-7.1, TOR-4.4), archived with the batch
    factors: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: the pieces a large file of interval values was read in, all of them (None for a file
    #: read whole or only in part, or whose every piece holds every name): kept with the
    #: batch for the rebuilds of a few locations
    pieces: tuple[FilePiece, ...] | None = None


#: :meth:`SiteIndex.meter_named` of a name that is no meter's key or serial
NO_METER = ""
#: :meth:`SiteIndex.meter_named` of a serial number that several meters have
SEVERAL_METERS = "?"


@dataclass(frozen=True)
class _MeterInfo:
    key: str
    location: str
    meter: Meter
    lo: int  # installed, epoch seconds (inclusive)
    hi: int  # removed, epoch seconds (inclusive); a large number while installed
    registers: frozenset[str]


_FOREVER = 2**62


class SiteIndex:
    """The facts of a site that readings are checked against: meters by key and by serial,
    metering point IDs by location, each meter's installed period and registers."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.tz = site.site.timezone
        self.meters: dict[str, _MeterInfo] = {}
        self.by_serial: dict[str, list[str]] = {}
        self.location_ids: dict[str, Location] = {loc.id: loc for loc in site.locations}
        self.by_metering_point: dict[str, str] = {}
        for loc in site.locations:
            for text in (loc.metering_points.import_, loc.metering_points.export):
                if text and is_metering_point_id(text):
                    self.by_metering_point[parse_metering_point_id(text).canonical] = loc.id
            for meter in loc.meters:
                registers: set[str] = set()
                for code in meter.registers:
                    try:
                        registers.add(str(parse_obis(code)))
                    except InvalidObis:
                        continue
                lo, hi = _period(meter, self.tz)
                info = _MeterInfo(meter.key, loc.id, meter, lo, hi, frozenset(registers))
                self.meters[meter.key] = info
                self.by_serial.setdefault(meter.serial, []).append(meter.key)
        self.keys: tuple[str, ...] = tuple(self.meters)
        self.key_index = {k: i for i, k in enumerate(self.keys)}
        self.locations: tuple[str, ...] = tuple(self.location_ids)
        self.location_index = {k: i for i, k in enumerate(self.locations)}
        #: installed period per meter index (plus a last entry for "no meter")
        self.meter_lo = np.array([m.lo for m in self.meters.values()] + [0], dtype=np.int64)
        self.meter_hi = np.array([m.hi for m in self.meters.values()] + [0], dtype=np.int64)
        #: meter indices per location index, in installation order
        self.meters_at: list[list[int]] = [[] for _ in self.locations]
        for k, info in enumerate(self.meters.values()):
            self.meters_at[self.location_index[info.location]].append(k)
        for ks in self.meters_at:
            ks.sort(key=lambda k: int(self.meter_lo[k]))
        #: per location index: its only meter, -1 for several, -2 for none (plus a last -2)
        self.single_meter = np.array(
            [ks[0] if len(ks) == 1 else (-1 if ks else -2) for ks in self.meters_at] + [-2],
            dtype=np.int64,
        )

    def meter_named(self, name: str) -> str:
        """The meter ``name`` gives as a key (``manufacturer:serial``) or a serial number: its
        key, :data:`NO_METER` for none, :data:`SEVERAL_METERS` for an ambiguous serial. The
        telegram and MQTT readers place their readings by it, and a partial rebuild compares
        what a batch's names gave with what they give now."""
        if name in self.meters:
            return name
        keys = self.by_serial.get(name, [])
        if len(keys) == 1:
            return keys[0]
        return SEVERAL_METERS if keys else NO_METER

    def meter_for(
        self, location: IntArray, begin: IntArray, end: IntArray
    ) -> tuple[IntArray, IntArray]:
        """Per row: the meter of ``location`` installed over the most of ``[begin, end]`` (the
        later one on a tie; -1 for none) and how many of its meters touch that span. An instant
        is ``begin == end`` and touches a meter installed at ``[installed, removed]``; a span
        ``begin < end`` must overlap the installed period."""
        n = len(location)
        meter = np.full(n, -1, dtype=np.int64)
        count = np.zeros(n, dtype=np.int64)
        loc = np.where(location >= 0, location, len(self.locations))
        single = self.single_meter[loc]
        # the common case, one meter at the location: no loop over meters
        one = np.flatnonzero(single >= 0)
        if len(one):
            k = single[one]
            hit = _touches(begin[one], end[one], self.meter_lo[k], self.meter_hi[k])
            meter[one[hit]] = k[hit]
            count[one[hit]] = 1
        # locations with several meters (exchanges): only their rows, meter by meter
        for li in np.unique(loc[single == -1]).tolist():
            rows = np.flatnonzero(loc == li)
            best = np.full(len(rows), -1, dtype=np.int64)
            for k in self.meters_at[li]:
                lo, hi = int(self.meter_lo[k]), int(self.meter_hi[k])
                b, e = begin[rows], end[rows]
                hit = _touches(b, e, lo, hi)
                overlap = np.minimum(e, hi) - np.maximum(b, lo)
                better = hit & (overlap >= best)
                meter[rows[better]] = k
                best[better] = overlap[better]
                count[rows[hit]] += 1
        return meter, count

    def factors(self, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Conversion factors per meter key: CT and VT ratios and the transformer constant."""
        out: dict[str, dict[str, Any]] = {}
        for key in keys:
            meter = self.meters[key].meter
            constant: Fraction = meter.transformer_constant
            out[key] = {
                "ct": None if meter.ct is None else meter.ct.ratio,
                "vt": None if meter.vt is None else meter.vt.ratio,
                "constant": str(constant),
            }
        return out

    def resolve_location(self, text: str) -> str | None:
        """A location id for a metering point ID (either form) or a location id."""
        stripped = text.strip()
        if stripped in self.location_ids:
            return stripped
        if is_metering_point_id(stripped):
            return self.by_metering_point.get(parse_metering_point_id(stripped).canonical)
        return None


def _touches(begin: IntArray, end: IntArray, lo: Any, hi: Any) -> BoolArray:
    """An instant inside ``[lo, hi]``, or a span ``[begin, end)`` overlapping ``[lo, hi)``."""
    instant = begin == end
    if not instant.any():  # spans only (interval values): no need to evaluate both cases
        spans: BoolArray = (np.minimum(end, hi) - np.maximum(begin, lo)) > 0
        return spans
    result: BoolArray = np.where(
        instant, (begin >= lo) & (begin <= hi), (np.minimum(end, hi) - np.maximum(begin, lo)) > 0
    )
    return result


def _period(meter: Meter, tz: str) -> tuple[int, int]:
    """Installed period ``[installed, removed]`` in epoch seconds, as the profile builder reads
    it (a date is local midnight; a datetime without offset is legal time of the site)."""
    try:
        lo, hi = meter_period(meter, tz)
    except InvalidTime:
        removed = meter.removed_at(tz)
        lo = to_epoch(meter.installed_at(tz))
        hi = None if removed is None else to_epoch(removed)
    return lo, _FOREVER if hi is None else hi


def detect_kind(header: Sequence[str]) -> CsvKind | None:
    """The kind of a CSV file from its (normalised) header, None when it is none of them."""
    names = set(header)
    if "obis" in names:
        return "registers"
    if names & {"l1_kw", "l2_kw", "l3_kw"}:
        return "phases"
    if names & {"metering_point", "import_kwh", "export_kwh", "end"}:
        return "intervals"
    return None


class _Problems:
    """Problems of one file, capped per check (see :data:`MAX_PROBLEMS_PER_CHECK`)."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.items: list[Problem] = []

    def file(self, reason: str, line: int | None = None, column: str | None = None) -> None:
        self.items.append(Problem(reason, file=self.source, line=line, column=column))

    def rows(
        self,
        rows: NDArray[np.int64],
        column: str,
        reason: str | Sequence[str],
        *,
        meters: Sequence[str | None] | None = None,
        times: Sequence[str | None] | None = None,
    ) -> None:
        """One problem per row index (0-based data row; line = row + 2)."""
        rows = np.asarray(rows, dtype=np.int64)
        shown = rows[:MAX_PROBLEMS_PER_CHECK].tolist()
        for i, row in enumerate(shown):
            self.items.append(
                Problem(
                    reason if isinstance(reason, str) else reason[i],
                    file=self.source,
                    line=row + 2,
                    column=column,
                    meter=None if meters is None else meters[i],
                    time=None if times is None else times[i],
                )
            )
        if len(rows) > len(shown):
            first = reason if isinstance(reason, str) else reason[0]
            self.items.append(
                Problem(
                    f"{len(rows) - len(shown)} more line(s) up to line {int(rows[-1]) + 2} with "
                    f"the same kind of problem ({first})",
                    file=self.source,
                    column=column,
                )
            )

    def __bool__(self) -> bool:
        return bool(self.items)


def _normalise(name: str) -> str:
    return name.strip().lstrip("\ufeff").strip().lower()


def _read_table(content: bytes, problems: _Problems) -> pl.DataFrame | None:
    """All columns as strings; None (with problems) when the file cannot be read as CSV."""
    if not content or content.isspace():
        problems.file("the file is empty: expected a header row and data rows")
        return None
    try:
        return pl.read_csv(io.BytesIO(content), infer_schema=False, has_header=True, quote_char='"')
    except (pl.exceptions.ComputeError, pl.exceptions.NoDataError) as exc:
        try:
            text = content.decode("utf-8")
        except UnicodeDecodeError as bad:
            line = content[: bad.start].count(b"\n") + 1
            problems.file("the file is not UTF-8 text; save it as UTF-8", line=line)
            return None
        ragged = _ragged_lines(text)
        if ragged:
            for line, count, expected in ragged[:MAX_PROBLEMS_PER_CHECK]:
                problems.file(f"{count} fields, the header has {expected}", line=line)
        else:
            problems.file(f"cannot read the file as CSV: {str(exc).splitlines()[0]}")
        return None


def _ragged_lines(text: str) -> list[tuple[int, int, int]]:
    """(line, fields, expected) of every line with more fields than the header (slow path,
    only taken after the fast reader refused the file)."""
    reader = csv.reader(io.StringIO(text))
    out: list[tuple[int, int, int]] = []
    expected = -1
    for row in reader:
        if expected < 0:
            expected = len(row)
            continue
        if row and len(row) > expected:
            out.append((reader.line_num, len(row), expected))
    return out


def _strings(df: pl.DataFrame, name: str) -> pl.Series:
    """A column as read. Cells are not stripped as a whole (that would cost a pass over every
    cell): blanks around a value are removed where each distinct value is interpreted."""
    return df.get_column(name)


def _numbers(series: pl.Series) -> tuple[FloatArray, BoolArray]:
    """Numbers of a string column and a mask of cells that are not finite numbers."""
    values = np.array(series.cast(pl.Float64, strict=False).to_numpy(), dtype=np.float64)
    retry = np.flatnonzero(np.isnan(values) & series.is_not_null().to_numpy())
    if len(retry):  # blanks around a number: read again stripped (rare, so only those cells)
        stripped = series.gather(retry).str.strip_chars().cast(pl.Float64, strict=False)
        values[retry] = np.asarray(stripped.fill_null(np.nan).to_numpy(), dtype=np.float64)
    bad = ~np.isfinite(values)
    return values, bad


def _factorize(series: pl.Series) -> tuple[IntArray, pl.Series] | None:
    """``(codes, distinct)`` with ``series[i] == distinct[codes[i]]`` (-1 for an empty cell),
    or None when most values are distinct (then working per distinct value saves nothing)."""
    n = len(series)
    if n > 4096:
        # the usual file has long runs of one value (a metering point's lines): factorize the
        # first cell of each run only
        heads = series.ne_missing(series.shift(1)).to_numpy()
        heads[0] = True
        starts = np.flatnonzero(heads)
        if len(starts) * 64 < n:
            found = _factorize(series.gather(starts))
            if found is not None:
                lengths = np.diff(np.append(starts, n))
                return np.repeat(found[0], lengths), found[1]
        periodic = _periodic(series)
        if periodic is not None:
            return periodic
    distinct = series.drop_nulls().unique()
    if len(distinct) * 4 > n + 64:
        return None
    codes = series.cast(pl.Enum(distinct)).to_physical().cast(pl.Int64).fill_null(-1)
    return np.array(codes.to_numpy(), dtype=np.int64), distinct


def _periodic(series: pl.Series) -> tuple[IntArray, pl.Series] | None:
    """:func:`_factorize` of a column that repeats one sequence of values over and over (the
    times of a file in which every metering point's block has the same quarter hours), from
    the first period alone: two comparisons of the column instead of hashing every value. None
    when the column does not repeat (or has empty cells)."""
    n = len(series)
    if series.null_count():
        return None
    hits = (series == series[0]).arg_true()
    if len(hits) < 2:
        return None
    period = int(hits[1])
    if period * 2 > n or not (series.slice(period) == series.slice(0, n - period)).all():
        return None
    # series[i] == series[i - period] for every i >= period: the first period's codes repeated
    first = series.slice(0, period)
    distinct = first.unique()
    codes = first.cast(pl.Enum(distinct)).to_physical().cast(pl.Int64).to_numpy()
    return np.resize(np.asarray(codes, dtype=np.int64), n), distinct


def _codes(series: pl.Series, mapping: Mapping[str, int]) -> IntArray:
    """Map each cell through ``mapping`` (distinct values only), -1 where absent."""
    factors = _factorize(series)
    if factors is not None:
        codes, distinct = factors
        lut = np.array([mapping.get(v, -1) for v in distinct.to_list()] + [-1], dtype=np.int64)
        result: IntArray = lut[codes]
        return result
    mapped = series.replace_strict(dict(mapping), default=-1, return_dtype=pl.Int64).fill_null(-1)
    return np.array(mapped.to_numpy(), dtype=np.int64)  # a writable copy


def _order_problems(
    problems: _Problems,
    group: IntArray,
    time: IntArray,
    valid: BoolArray,
    column: str,
    what: str,
    group_names: Sequence[str],
    time_texts: pl.Series,
) -> None:
    """Duplicates (a group and time seen before) and times that go backwards (earlier than a
    time on an earlier line of the same group), per group."""
    rows = np.flatnonzero(valid)
    if len(rows) < 2:
        return
    g, t = group[rows], time[rows]
    # the usual file: each group in one block of lines with increasing times -> nothing to find
    change = g[1:] != g[:-1]
    heads = g[np.concatenate(([0], np.flatnonzero(change) + 1))]
    if len(np.unique(heads)) == len(heads) and bool((t[1:] > t[:-1])[~change].all()):
        return
    # duplicates: equal (group, time), the first line is the original
    by_time = np.lexsort((rows, t, g))
    equal = (g[by_time][1:] == g[by_time][:-1]) & (t[by_time][1:] == t[by_time][:-1])
    starts = np.concatenate(([True], ~equal))
    run_start = np.maximum.accumulate(np.where(starts, np.arange(len(by_time)), 0))
    dup_rows = rows[by_time][1:][equal]
    dup_refs = rows[by_time[run_start]][1:][equal]
    # backwards: earlier than the latest time on an earlier line of the group (file order)
    by_line = np.lexsort((rows, g))
    gs, ts, rs = g[by_line], t[by_line], rows[by_line]
    key = (gs - gs.min()) * (1 << 40) + (ts - ts.min())
    running = np.maximum.accumulate(key)
    holder = np.maximum.accumulate(np.where(key >= running, np.arange(len(key)), 0))
    first_of_group = np.concatenate(([True], gs[1:] != gs[:-1]))
    dup_mask = np.zeros(len(group), dtype=bool)
    dup_mask[dup_rows] = True
    is_dup = dup_mask[rs]
    prev_max = np.concatenate(([0], running[:-1]))
    prev_holder = np.concatenate(([0], holder[:-1]))
    back = ~first_of_group & (key < prev_max) & ~is_dup
    back_rows, back_refs = rs[back], rs[prev_holder[back]]
    for hit, ref, text in (
        (dup_rows, dup_refs, "duplicate: {what} at this time already on line {line}"),
        (back_rows, back_refs, "time goes backwards: line {line} has a later {what}"),
    ):
        order = np.argsort(hit, kind="stable")
        hit, ref = hit[order], ref[order]
        if len(hit):
            reasons = [text.format(what=what, line=int(r) + 2) for r in ref.tolist()]
            names = [group_names[int(group[h])] for h in hit[:MAX_PROBLEMS_PER_CHECK].tolist()]
            stamps = time_texts.gather(hit[:MAX_PROBLEMS_PER_CHECK]).to_list()
            problems.rows(hit, column, reasons, meters=names, times=stamps)


def parse_csv_readings(
    content: bytes,
    site: Site | SiteIndex,
    source: str,
    *,
    skip: Collection[str] = (),
) -> ParsedFile:
    """Check and convert one CSV file of readings for ``site``.

    Raises :class:`~lastgang.errors.InvalidInput` listing every problem of the file (file, line,
    column); nothing of a file with problems is returned. The rows of the locations ``skip``
    may be left out unread (a rebuild of the others, which knows those rows are as before):
    a large file of interval values is read only for the other rows."""
    index = site if isinstance(site, SiteIndex) else SiteIndex(site)
    if read_in_pieces(len(content)):
        parsed = parse_interval_pieces(_views(content), index, source, skip=skip)
        if parsed is not None:
            return parsed
    problems = _Problems(source)
    df = _read_table(content, problems)
    if df is None:
        raise InvalidInput(f"{source}: rejected ({len(problems.items)} problem(s))", problems.items)
    df = df.rename({c: _normalise(c) for c in df.columns})
    kind = detect_kind(df.columns)
    if kind is None:
        problems.file(
            f"header {','.join(df.columns)!r} is not one of the known formats: "
            "time,meter,obis,value (registers), time,meter,l1_kw,l2_kw,l3_kw (phase powers) or "
            "end,metering_point,import_kwh,export_kwh (interval values)",
            line=1,
        )
        raise InvalidInput(f"{source}: rejected (unknown format)", problems.items)
    _check_header(df.columns, kind, problems)
    if problems:
        raise InvalidInput(f"{source}: rejected ({len(problems.items)} problem(s))", problems.items)
    # blank lines come through as rows of nulls; they keep the line numbers right
    blank = df.select(pl.all_horizontal(pl.all().is_null())).to_series().to_numpy()
    parser = {"registers": _parse_registers, "phases": _parse_phases, "intervals": _parse_intervals}
    parsed = parser[kind](df, np.asarray(blank, dtype=bool), index, problems, source)
    if problems:
        problems.items.sort(key=lambda p: p.line or 0)
        count = len(problems.items)
        raise InvalidInput(
            f"{source}: rejected, nothing imported ({count} problem(s))", problems.items
        )
    return parsed


def read_in_pieces(size: int) -> bool:
    """Whether a file of interval values of ``size`` bytes is read in pieces
    (:func:`parse_interval_pieces`): one of more than two pieces."""
    return size > 2 * CHUNK_BYTES


def _views(content: bytes) -> Iterator[memoryview]:
    """``content`` as consecutive views of :data:`CHUNK_BYTES` (no copy)."""
    view = memoryview(content)
    for offset in range(0, len(content), CHUNK_BYTES):
        yield view[offset : offset + CHUNK_BYTES]


def _after_last_break(part: bytes | memoryview) -> int:
    """The offset just after the last line break of ``part``, 0 if it has none (searched from
    the end, a little at a time: the break is usually within the last line)."""
    data = np.frombuffer(part, dtype=np.uint8)
    hi, window = len(data), 1 << 16
    while hi > 0:
        lo = max(0, hi - window)
        found = np.flatnonzero(data[lo:hi] == 0x0A)
        if len(found):
            return lo + int(found[-1]) + 1
        hi, window = lo, window * 4
    return 0


def _whole_lines(parts: Iterable[bytes | memoryview]) -> Iterator[bytes]:
    """The bytes of ``parts`` (consecutive parts of a file, cut anywhere) again, in pieces of
    about :data:`CHUNK_BYTES` or more that end with a line break (the last piece with whatever
    the file ends with), each starting with the file's first line (the header). Each piece is
    one copy of its bytes; only it and the parts it is made of are held."""
    header = b""
    held: list[bytes | memoryview] = []
    size = 0
    for part in parts:
        if not len(part):
            continue
        held.append(part)
        size += len(part)
        if size < CHUNK_BYTES:
            continue
        cut = _after_last_break(part)
        if not cut:
            continue  # a line longer than the part: keep collecting
        view = memoryview(part)
        piece = b"".join([header, *held[:-1], view[:cut]])
        if not header:
            header = piece[: piece.find(b"\n") + 1]
        yield piece
        del piece
        held = [view[cut:]] if cut < len(view) else []
        size = len(part) - cut
    if held:
        yield b"".join([header, *held])


def parse_interval_pieces(
    parts: Iterable[bytes | memoryview],
    site: Site | SiteIndex,
    source: str,
    *,
    skip: Collection[str] = (),
) -> ParsedFile | None:
    """A large file of interval values, given as consecutive parts of its bytes cut anywhere
    (an archived file's chunks as they are inflated, or a file in memory), read in pieces of
    about :data:`CHUNK_BYTES` whole lines (each with the header line): only one piece is ever
    held as a table, and the file need never be held whole. Each piece gets every check of
    :func:`_parse_intervals`; the pieces' values are joined as compact arrays and checked for
    duplicates and order across pieces. The rows of the locations ``skip`` are dropped by the
    distinct names of each piece, before their times and values are read.

    Returns None at the first sign of a problem (or of a file that is not plain interval values
    without quotes): the caller then reads the file whole with :func:`parse_csv_readings`,
    which lists every problem with its line exactly as for a small file. A file without
    problems gives the same readings either way."""
    index = site if isinstance(site, SiteIndex) else SiteIndex(site)
    columns: dict[str, list[NDArray[Any]]] = {k: [] for k in ("l", "m", "s", "i", "e", "q")}
    header = b""
    pieces: list[FilePiece] = []
    at = 0  # the bytes of the file before the piece's own lines
    for piece in _whole_lines(parts):
        if not header:
            header_end = piece.find(b"\n") + 1
            if header_end <= 0:
                return None
            header = piece[:header_end]
            at = header_end
            try:
                names = [_normalise(c) for c in header.decode("utf-8").rstrip("\r\n").split(",")]
            except UnicodeDecodeError:
                return None
            if detect_kind(names) != "intervals":
                return None
        elif len(piece) - len(header) < 1024 and piece[len(header) :].isspace():
            break  # blank lines at the end
        if b'"' in piece:
            return None  # a quoted field could hold a line break: only the whole file is safe
        lines = len(piece) - len(header)  # every piece starts with the header line
        problems = _Problems(source)
        df = _read_table(piece, problems)
        del piece
        if df is None:
            return None
        df = df.rename({c: _normalise(c) for c in df.columns})
        if detect_kind(df.columns) != "intervals":
            return None
        _check_header(df.columns, "intervals", problems)
        if problems:
            return None
        points = _strings(df, "metering_point").fill_null("")
        named = points.unique().to_list()
        pieces.append(FilePiece(at, at + lines, frozenset(named)))
        at += lines
        if skip:  # the rows of the locations skipped, by the distinct names of the piece
            left = [t for t in named if index.resolve_location(t) in skip]
            if left:
                df = df.filter(~points.is_in(left))
        blank = df.select(pl.all_horizontal(pl.all().is_null())).to_series().to_numpy()
        part = _parse_intervals(df, np.asarray(blank, dtype=bool), index, problems, source)
        del df
        if problems:
            return None
        rows = part.readings.intervals
        locations = np.array([index.location_index[k] for k in rows.locations], dtype=np.int32)
        meters = np.array([index.key_index[k] for k in rows.meters] + [-1], dtype=np.int32)
        columns["l"].append(locations[rows.location])
        columns["m"].append(meters[rows.meter])  # -1 (no meter) picks the last entry
        columns["s"].append(rows.slot)
        columns["i"].append(rows.import_kwh)
        columns["e"].append(rows.export_kwh)
        columns["q"].append(rows.quality)
    if not columns["s"]:
        return None
    joined: dict[str, NDArray[Any]] = {}
    for name in columns:
        joined[name] = np.concatenate(columns[name])
        columns[name].clear()
    # codes stay int32 (a site has fewer locations and meters than that): an int64 copy of
    # each would be 280 MB more at the end of reading a site-year of 1,000 metering points
    location, slot = joined["l"], joined["s"]
    # across pieces: each metering point in one block of lines with increasing times (the
    # usual file); anything else is left to the whole-file check, which names the lines
    if len(slot) > 1:
        change = location[1:] != location[:-1]
        heads = location[np.concatenate(([0], np.flatnonzero(change) + 1))]
        if len(np.unique(heads)) != len(heads) or not bool((slot[1:] > slot[:-1])[~change].all()):
            return None
    parsed = _interval_file(
        source,
        index,
        location,
        joined["m"],
        slot,
        joined["i"],
        joined["e"],
        joined["q"],
    )
    # kept only where they can spare a rebuild some reading: not when every piece holds every
    # name (a file whose metering points' lines alternate)
    every = frozenset().union(*(p.names for p in pieces))
    return replace(parsed, pieces=tuple(pieces) if any(p.names != every for p in pieces) else None)


def pieces_to_read(
    pieces: Sequence[FilePiece], site: Site | SiteIndex, skip: Collection[str]
) -> list[tuple[int, int]]:
    """The byte ranges of a file's ``pieces`` (:attr:`ParsedFile.pieces`) that hold rows not of
    the locations ``skip``, adjacent ones joined: read after the header line, they give
    :func:`parse_interval_pieces` with ``skip`` the rows that the whole file gives. A piece is
    left out only when every name in it gives a location skipped (a name of no location is
    read, so the file is refused as it would be whole)."""
    index = site if isinstance(site, SiteIndex) else SiteIndex(site)
    ranges: list[tuple[int, int]] = []
    for piece in pieces:
        if all(index.resolve_location(name) in skip for name in piece.names):
            continue
        if ranges and ranges[-1][1] == piece.start:
            ranges[-1] = (ranges[-1][0], piece.stop)
        else:
            ranges.append((piece.start, piece.stop))
    return ranges


def _check_header(columns: Sequence[str], kind: CsvKind, problems: _Problems) -> None:
    required, optional = COLUMNS[kind]
    known = set(required) | set(optional)
    for name in columns:
        if name not in known:
            problems.file(
                f"unknown column {name!r} in a {kind} file; columns are "
                f"{', '.join(required)} and optionally {', '.join(optional)}",
                line=1,
                column=name,
            )
    seen: set[str] = set()
    for name in columns:
        if name in seen:
            problems.file(f"column {name!r} appears twice", line=1, column=name)
        seen.add(name)
    for name in required:
        if name not in columns:
            problems.file(f"required column {name!r} is missing", line=1, column=name)
    if kind == "intervals":
        has_end = "end" in columns
        has_span = "from" in columns or "to" in columns
        if has_end == has_span:
            problems.file(
                "interval values need either an 'end' column (period-end label) or the two "
                "columns 'from' and 'to'",
                line=1,
            )
        elif has_span and not ("from" in columns and "to" in columns):
            problems.file("columns 'from' and 'to' go together", line=1)


def _times(
    df: pl.DataFrame, name: str, usable: BoolArray, problems: _Problems
) -> tuple[IntArray, BoolArray]:
    texts = _strings(df, name)
    factors = _factorize(texts)
    if factors is None:
        epochs, bad = parse_timestamps(texts)
    else:
        # labels repeat across metering points: parse each distinct text once
        codes, distinct = factors
        distinct_epochs, distinct_bad = parse_timestamps(distinct)
        epochs = np.append(distinct_epochs, 0)[codes]
        reason_of = dict(distinct_bad)
        where = np.flatnonzero(np.isin(codes, np.array(list(reason_of), dtype=np.int64)))
        bad = [(int(i), reason_of[int(codes[i])]) for i in where.tolist()]
    empty = texts.is_null().to_numpy() | texts.eq("").fill_null(True).to_numpy()
    ok = usable & ~empty
    rows = np.array([i for i, _ in bad], dtype=np.int64)
    reasons = [r for _, r in bad]
    keep = ok[rows] if len(rows) else np.zeros(0, dtype=bool)
    if keep.any():
        problems.rows(
            rows[keep], name, [r for r, k in zip(reasons, keep.tolist(), strict=True) if k]
        )
    ok[rows] = False
    return np.asarray(epochs, dtype=np.int64), ok


def _missing(
    df: pl.DataFrame, names: Sequence[str], usable: BoolArray, problems: _Problems
) -> None:
    for name in names:
        column = df.get_column(name)
        if not column.null_count() and not column.eq("").any():
            continue  # the usual column: nothing empty, no per-row mask needed
        empty = column.is_null().to_numpy() | column.eq("").fill_null(True).to_numpy()
        rows = np.flatnonzero(np.asarray(empty, dtype=bool) & usable)
        if len(rows):
            problems.rows(rows, name, f"{name} is empty")


def _resolve_meters(
    df: pl.DataFrame,
    time: IntArray,
    ok_time: BoolArray,
    usable: BoolArray,
    index: SiteIndex,
    problems: _Problems,
) -> IntArray:
    """Meter index (into ``index.keys``) per row, -1 where unresolved (problems recorded)."""
    texts = _strings(df, "meter").fill_null("")
    distinct = [t for t in texts.unique().to_list() if t]
    direct: dict[str, int] = {}
    by_location: dict[str, int] = {}
    unknown: dict[str, str] = {}
    for raw in distinct:
        text = raw.strip()
        if not text:
            unknown[raw] = "meter is empty"
        elif text in index.meters:
            direct[raw] = index.key_index[text]
        elif is_metering_point_id(text):
            owner = index.by_metering_point.get(parse_metering_point_id(text).canonical)
            if owner is None:
                unknown[raw] = (
                    f"metering point {text} is not in site {index.site.site.id!r}; "
                    "add it to a location's metering_points"
                )
            else:
                by_location[raw] = index.location_index[owner]
        elif ":" in text:
            unknown[raw] = (
                f"unknown meter {text!r}: no meter with this manufacturer:serial in the site "
                "configuration"
            )
        else:
            keys = index.by_serial.get(text, [])
            if len(keys) == 1:
                direct[raw] = index.key_index[keys[0]]
            elif keys:
                unknown[raw] = (
                    f"serial {text!r} is ambiguous ({', '.join(keys)}): write manufacturer:serial"
                )
            else:
                unknown[raw] = (
                    f"unknown meter {text!r}: no meter with this serial number in the site "
                    "configuration (write the serial, manufacturer:serial or a metering point ID)"
                )
    meter = _codes(texts, direct)
    location = _codes(texts, by_location)
    for text, reason in unknown.items():
        rows = np.flatnonzero(texts.eq(text).to_numpy() & usable)
        problems.rows(rows, "meter", reason)
    # metering point IDs: the meter installed at that time
    need = np.flatnonzero((location >= 0) & ok_time & usable)
    if len(need):
        t = time[need]
        found, count = index.meter_for(location[need], t, t)
        none, many = need[count == 0], need[count > 1]
        if len(none):
            problems.rows(
                none,
                "meter",
                "no meter is installed at this metering point at this time "
                "(see installed/removed of its meters)",
                times=texts.gather(none).to_list(),
            )
        if len(many):
            problems.rows(
                many,
                "meter",
                "two meters are installed at this metering point at this instant (meter "
                "exchange): name the meter by its serial",
            )
        meter[need] = np.where(count == 1, found, -1)
    return meter


def _installed_problems(
    meter: IntArray,
    time: IntArray,
    valid: BoolArray,
    index: SiteIndex,
    problems: _Problems,
    time_texts: pl.Series,
) -> BoolArray:
    """Rows whose time lies outside the installed period of their meter."""
    m = np.where(meter >= 0, meter, len(index.keys))
    outside = valid & ((time < index.meter_lo[m]) | (time > index.meter_hi[m]))
    rows = np.flatnonzero(outside)
    if len(rows):
        shown = rows[:MAX_PROBLEMS_PER_CHECK]
        reasons = []
        for r in shown.tolist():
            info = index.meters[index.keys[int(meter[r])]]
            removed = info.meter.removed_at(index.tz)
            until = f" to {removed.isoformat()}" if removed is not None else " on"
            reasons.append(
                f"reading outside the installed period of meter {info.key} "
                f"({info.meter.installed_at(index.tz).isoformat()}{until})"
            )
        problems.rows(
            rows,
            "time",
            reasons,
            meters=[index.keys[int(meter[r])] for r in shown.tolist()],
            times=time_texts.gather(shown).to_list(),
        )
    return outside


def _check_status(df: pl.DataFrame, usable: BoolArray, problems: _Problems) -> None:
    """Status codes must be known (TOR-6.2: a status that affects the values is evaluated)."""
    if "status" not in df.columns:
        return
    texts = _strings(df, "status").fill_null("")
    for text in texts.unique().to_list():
        if text.strip() and status_code(text) is None:
            problems.rows(
                np.flatnonzero(texts.eq(text).to_numpy() & usable),
                "status",
                f"unknown status code {text!r} (see docs/data-formats.md for the known codes, "
                "or write dlms:0x.. for a DLMS status byte)",
            )


def _status_rows(df: pl.DataFrame, meter: IntArray, time: IntArray, index: SiteIndex) -> StatusRows:
    if "status" not in df.columns:
        return StatusRows()
    texts = _strings(df, "status").fill_null("")
    rows = np.flatnonzero(texts.str.strip_chars().ne("").to_numpy())
    if not len(rows):
        return StatusRows()
    codes = texts.gather(rows)
    distinct = sorted(codes.unique().to_list())
    code = _codes(codes, {c: i for i, c in enumerate(distinct)})
    distinct = [c.strip() for c in distinct]
    used, local = np.unique(meter[rows], return_inverse=True)
    return StatusRows(
        meters=tuple(index.keys[int(u)] for u in used),
        codes=tuple(distinct),
        meter=local.astype(np.int32),
        code=code.astype(np.int32),
        time=time[rows],
    )


def _parse_registers(
    df: pl.DataFrame, blank: BoolArray, index: SiteIndex, problems: _Problems, source: str
) -> ParsedFile:
    usable = ~blank
    _missing(df, ("time", "meter", "obis", "value"), usable, problems)
    time, ok_time = _times(df, "time", usable, problems)
    meter = _resolve_meters(df, time, ok_time, usable, index, problems)
    # OBIS codes: parse each distinct text once
    obis_texts = _strings(df, "obis").fill_null("")
    canonical: dict[str, str] = {}
    for text in obis_texts.unique().to_list():
        if not text:
            continue
        try:
            canonical[text] = str(parse_obis(text))
        except InvalidObis as exc:
            reason = exc.problems[0].reason if exc.problems else exc.message
            problems.rows(np.flatnonzero(obis_texts.eq(text).to_numpy() & usable), "obis", reason)
    registers = tuple(sorted(set(canonical.values())))
    reg_index = {c: i for i, c in enumerate(registers)}
    register = _codes(obis_texts, {t: reg_index[c] for t, c in canonical.items()})
    known = (meter >= 0) & (register >= 0) & usable
    if known.any():
        allowed = np.zeros((len(index.keys) + 1, len(registers) + 1), dtype=bool)
        for i, key in enumerate(index.keys):
            for c, j in reg_index.items():
                allowed[i, j] = c in index.meters[key].registers
        bad = known & ~allowed[meter, register]
        for r in np.flatnonzero(bad)[:MAX_PROBLEMS_PER_CHECK].tolist():
            info = index.meters[index.keys[int(meter[r])]]
            problems.rows(
                np.array([r]),
                "obis",
                f"register {registers[int(register[r])]} is not configured for meter {info.key} "
                f"(registers: {', '.join(sorted(info.registers))}); add it to the meter's "
                "registers in the site file",
                meters=[info.key],
            )
        extra = int(bad.sum()) - MAX_PROBLEMS_PER_CHECK
        if extra > 0:
            problems.file(f"{extra} more line(s) with registers not configured", column="obis")
    # values and units
    value, bad_value = _numbers(_strings(df, "value"))
    value_text = _strings(df, "value").fill_null("")
    nonempty = value_text.ne("").to_numpy()
    rows = np.flatnonzero(bad_value & usable & nonempty)
    if len(rows):
        problems.rows(
            rows,
            "value",
            [
                f"{v!r} is not a number (use '.' as decimal point)"
                for v in value_text.gather(rows[:MAX_PROBLEMS_PER_CHECK]).to_list()
            ],
        )
    negative = np.flatnonzero((value < 0) & ~bad_value & usable)
    if len(negative):
        problems.rows(negative, "value", "a register reading cannot be negative")
    factor = np.ones(len(df), dtype=np.float64)
    if "unit" in df.columns:
        units = _strings(df, "unit").fill_null("")
        for text in units.unique().to_list():
            if not text:
                continue
            scale = _UNITS.get(text.strip().lower())
            rows = np.flatnonzero(units.eq(text).to_numpy() & usable)
            if scale is None:
                problems.rows(rows, "unit", f"unknown unit {text!r}: use kWh or Wh")
            else:
                factor[rows] = scale
    _check_status(df, usable, problems)
    valid = usable & ok_time & (meter >= 0)
    time_texts = _strings(df, "time")
    _installed_problems(meter, time, valid, index, problems, time_texts)
    group_names = [k for k in index.keys for _ in registers]
    group = meter * max(len(registers), 1) + register
    _order_problems(
        problems,
        group,
        time,
        valid & (register >= 0),
        "time",
        "reading of this register",
        group_names,
        time_texts,
    )
    if problems:
        return ParsedFile(source, "registers", int(usable.sum()), ReadingSet())
    rows = np.flatnonzero(usable)
    used, local = np.unique(meter[rows], return_inverse=True)
    keys = tuple(index.keys[int(u)] for u in used)
    regs = RegisterRows(
        meters=keys,
        registers=registers,
        meter=local.astype(np.int32),
        register=register[rows].astype(np.int32),
        time=time[rows],
        value=value[rows] * factor[rows],
    )
    status = _status_rows(df.filter(pl.Series(usable)), meter[rows], time[rows], index)
    return ParsedFile(
        source,
        "registers",
        len(rows),
        ReadingSet(registers=regs, status=status),
        meters=keys,
        locations=tuple(sorted({index.meters[k].location for k in keys})),
        factors=index.factors(keys),
    )


def _parse_phases(
    df: pl.DataFrame, blank: BoolArray, index: SiteIndex, problems: _Problems, source: str
) -> ParsedFile:
    usable = ~blank
    names = ("l1_kw", "l2_kw", "l3_kw")
    _missing(df, ("time", "meter", *names), usable, problems)
    time, ok_time = _times(df, "time", usable, problems)
    meter = _resolve_meters(df, time, ok_time, usable, index, problems)
    powers: list[FloatArray] = []
    for name in names:
        values, bad = _numbers(_strings(df, name))
        texts = _strings(df, name).fill_null("")
        rows = np.flatnonzero(bad & usable & texts.ne("").to_numpy())
        if len(rows):
            problems.rows(
                rows,
                name,
                [
                    f"{v!r} is not a number (kW, '.' as decimal point)"
                    for v in texts.gather(rows[:MAX_PROBLEMS_PER_CHECK]).to_list()
                ],
            )
        powers.append(values)
    _check_status(df, usable, problems)
    valid = usable & ok_time & (meter >= 0)
    time_texts = _strings(df, "time")
    _installed_problems(meter, time, valid, index, problems, time_texts)
    _order_problems(
        problems, meter, time, valid, "time", "sample of this meter", index.keys, time_texts
    )
    if problems:
        return ParsedFile(source, "phases", int(usable.sum()), ReadingSet())
    rows = np.flatnonzero(usable)
    used, local = np.unique(meter[rows], return_inverse=True)
    keys = tuple(index.keys[int(u)] for u in used)
    phases = PhaseRows(
        meters=keys,
        meter=local.astype(np.int32),
        time=time[rows],
        l1=powers[0][rows],
        l2=powers[1][rows],
        l3=powers[2][rows],
    )
    status = _status_rows(df.filter(pl.Series(usable)), meter[rows], time[rows], index)
    return ParsedFile(
        source,
        "phases",
        len(rows),
        ReadingSet(phases=phases, status=status),
        meters=keys,
        locations=tuple(sorted({index.meters[k].location for k in keys})),
        factors=index.factors(keys),
    )


def _parse_intervals(
    df: pl.DataFrame, blank: BoolArray, index: SiteIndex, problems: _Problems, source: str
) -> ParsedFile:
    usable = ~blank
    span = "from" in df.columns
    time_columns = ("from", "to") if span else ("end",)
    _missing(df, (*time_columns, "metering_point", "import_kwh", "export_kwh"), usable, problems)
    if span:
        begin, ok_begin = _times(df, "from", usable, problems)
        end, ok_end = _times(df, "to", usable, problems)
        ok_time = ok_begin & ok_end
        off = np.flatnonzero(ok_time & (begin % SLOT_SECONDS != 0))
        if len(off):
            problems.rows(off, "from", "not the start of a quarter hour (:00, :15, :30, :45)")
        wrong = np.flatnonzero(
            ok_time & (begin % SLOT_SECONDS == 0) & (end - begin != SLOT_SECONDS)
        )
        if len(wrong):
            problems.rows(wrong, "to", "a period must last exactly 15 minutes (TOR-4.2)")
        ok_time &= (begin % SLOT_SECONDS == 0) & (end - begin == SLOT_SECONDS)
        slot = begin // SLOT_SECONDS
        time_column = "from"
    else:
        end, ok_time = _times(df, "end", usable, problems)
        off = np.flatnonzero(ok_time & (end % SLOT_SECONDS != 0))
        if len(off):
            problems.rows(off, "end", "not the end of a quarter hour (:00, :15, :30, :45)")
        ok_time &= end % SLOT_SECONDS == 0
        slot = end // SLOT_SECONDS - 1
        time_column = "end"
    # metering points: an ID (either form) of a location, or a location id
    points = _strings(df, "metering_point").fill_null("")
    mapping: dict[str, int] = {}
    for text in points.unique().to_list():
        if not text:
            continue
        owner = index.resolve_location(text.strip())
        if owner is None:
            reason = (
                f"unknown metering point {text!r}: not an ID or location id of site "
                f"{index.site.site.id!r}"
            )
            problems.rows(
                np.flatnonzero(points.eq(text).to_numpy() & usable), "metering_point", reason
            )
        else:
            mapping[text] = index.location_index[owner]
    location = _codes(points, mapping)
    energies: list[FloatArray] = []
    for name in ("import_kwh", "export_kwh"):
        values, bad = _numbers(_strings(df, name))
        texts = _strings(df, name).fill_null("")
        rows = np.flatnonzero(bad & usable & texts.ne("").to_numpy())
        if len(rows):
            problems.rows(
                rows,
                name,
                [
                    f"{v!r} is not a number (kWh, '.' as decimal point)"
                    for v in texts.gather(rows[:MAX_PROBLEMS_PER_CHECK]).to_list()
                ],
            )
        negative = np.flatnonzero(usable & ~bad & (values < 0))
        if len(negative):
            problems.rows(negative, name, "energy cannot be negative (give import and export)")
        energies.append(values)
    quality = np.full(len(df), int(Quality.L1), dtype=np.int8)
    if "quality" in df.columns:
        texts = _strings(df, "quality").fill_null("")
        for text in texts.unique().to_list():
            rows = np.flatnonzero(texts.eq(text).to_numpy() & usable)
            key = text.strip().upper()
            if key in ("", "L1", "L2", "L3"):
                quality[rows] = int(Quality.L1) if not key else int(Quality[key])
            else:
                problems.rows(rows, "quality", f"unknown quality {text!r}: use L1, L2 or L3")
    # the meter installed in each slot (none if the location has no meter at all)
    valid = usable & ok_time & (location >= 0)
    time_texts = _strings(df, time_column)
    slot_begin = slot * SLOT_SECONDS
    meter, _ = index.meter_for(np.where(valid, location, -1), slot_begin, slot_begin + SLOT_SECONDS)
    with_meters = index.single_meter != -2
    orphan = np.flatnonzero(
        valid & (meter < 0) & with_meters[np.where(location >= 0, location, -1)]
    )
    if len(orphan):
        problems.rows(
            orphan,
            time_column,
            [
                f"no meter of location {index.locations[int(location[r])]!r} is installed in "
                "this quarter hour (see installed/removed of its meters)"
                for r in orphan[:MAX_PROBLEMS_PER_CHECK].tolist()
            ],
            times=time_texts.gather(orphan[:MAX_PROBLEMS_PER_CHECK]).to_list(),
        )
    _order_problems(
        problems,
        location,
        slot,
        valid,
        time_column,
        "value of this metering point",
        index.locations,
        time_texts,
    )
    if problems:
        return ParsedFile(source, "intervals", int(usable.sum()), ReadingSet())
    keep = None if usable.all() else np.flatnonzero(usable)

    def kept(values: NDArray[Any]) -> NDArray[Any]:
        return values if keep is None else values[keep]

    return _interval_file(
        source,
        index,
        kept(location),
        kept(meter),
        kept(slot),
        kept(energies[0]),
        kept(energies[1]),
        kept(quality),
    )


def _used(codes: CodeArray, count: int) -> tuple[IntArray, NDArray[np.int32]]:
    """``np.unique(codes, return_inverse=True)`` for codes in ``[0, count)`` without a sort:
    the used codes in increasing order and each code's position among them (int32)."""
    used = np.flatnonzero(np.bincount(codes, minlength=count))
    lut = np.zeros(count, dtype=np.int32)
    lut[used] = np.arange(len(used), dtype=np.int32)
    return used, lut[codes]


def _interval_file(
    source: str,
    index: SiteIndex,
    location: CodeArray,
    meter: CodeArray,
    slot: IntArray,
    import_kwh: FloatArray,
    export_kwh: FloatArray,
    quality: NDArray[np.int8],
) -> ParsedFile:
    """The checked interval values of a file (location and meter as indices into the site's
    ``index``, -1 for no meter) as stored: locations and meters named once, in index order."""
    used_loc, local_loc = _used(location, len(index.locations))
    has = meter >= 0
    used_meter, local = _used(np.where(has, meter, len(index.keys)), len(index.keys) + 1)
    if len(used_meter) and used_meter[-1] == len(index.keys):  # the "no meter" code
        used_meter = used_meter[:-1]
    meter_keys = tuple(index.keys[int(u)] for u in used_meter)
    # the "no meter" code is the last of those used: -1 again, in place (int32 throughout)
    local[~has] = -1
    intervals = IntervalRows(
        locations=tuple(index.locations[int(u)] for u in used_loc),
        meters=meter_keys,
        location=local_loc,
        meter=local,
        slot=slot,
        import_kwh=import_kwh,
        export_kwh=export_kwh,
        quality=quality,
        primary=True,
    )
    return ParsedFile(
        source,
        "intervals",
        len(slot),
        ReadingSet(intervals=intervals),
        meters=meter_keys,
        locations=intervals.locations,
        factors=index.factors(meter_keys),
    )
