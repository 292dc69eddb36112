"""Vendor files: CSV, Excel (``.xlsx``) and Parquet tables of meter data with a column mapping
(``lastgang import --format vendor --mapping map.toml``; ``docs/format-vendor.md``).

Two layouts:

- **wide**: one row per time, one column per series. A series column is named by what it holds:
  ``Bezug``/``Verbrauch``/``import`` (15-minute energy drawn from the grid), ``Lieferung``/
  ``Einspeisung``/``export`` (15-minute energy fed in), an OBIS code (``1-0:1.8.0`` register,
  ``1-1:1.29.0`` interval energy), optionally for one metering point or meter
  (``columns.Bezug = "AT0081000801000000000000000100011:import"``).
- **long**: one row per value: time, metering point or meter, OBIS code or direction, value.

Headers are recognised in German and English without a mapping (``Zeitstempel``, ``Datum``,
``Zeit von``/``Zeit bis``, ``Zählpunkt``, ``Zähler``, ``OBIS``, ``Richtung``, ``Wert``,
``Bezug``, ``Lieferung``, ``Qualität``, ...); a mapping names the rest and sets the separator,
the decimal comma, the encoding, the time zone and format of times without UTC offset, whether a
time labels the END of its quarter hour (TOR-4.2, the default) or its start, and the unit.

Times without offset are legal time of the site (or the mapping's ``timezone``). In the repeated
autumn hour the first occurrence of a time in a series is summer time and the second winter time,
as a table of 100 quarter hours lists them; a time in the skipped spring hour is a problem.
Values are never rounded (TOR-7.2); a decimal comma and ``.`` as thousands separator are read
with ``decimal = ","``. Every problem of a file (unknown column, bad time, bad number, unknown
metering point, duplicate) is collected with its line and column and raised together.

Parsing is column-wise (polars and numpy); Python loops run over columns and distinct values.
"""

from __future__ import annotations

import io
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from numpy.typing import NDArray

from lastgang.errors import InvalidInput, InvalidObis, Problem
from lastgang.ingest.csv_readings import SiteIndex
from lastgang.ingest.rows import (
    ImportedFile,
    Problems,
    Target,
    build_file,
    directions_of,
    interval_rows,
    meters_at,
    register_rows,
    resolve_target,
    time_text,
)
from lastgang.obis import parse_obis
from lastgang.quality import Quality
from lastgang.store import ReadingSet
from lastgang.timegrid import SLOT_SECONDS, parse_timestamps, zone

__all__ = [
    "MAPPING_KEYS",
    "ROLES",
    "VendorMapping",
    "load_mapping",
    "read_table",
    "read_vendor",
]

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

#: keys of a mapping file besides ``columns`` (see ``docs/format-vendor.md``)
MAPPING_KEYS = (
    "layout",
    "separator",
    "decimal",
    "encoding",
    "timezone",
    "time_format",
    "time_label",
    "unit",
    "sheet",
    "skip_rows",
    "target",
)

#: column roles that are not series
ROLES = (
    "time",
    "start",
    "end",
    "date",
    "metering_point",
    "meter",
    "obis",
    "direction",
    "value",
    "quality",
    "ignore",
)

# header words recognised without a mapping (lower case, units in brackets removed)
_ALIASES: dict[str, str] = {}
for _role, _words in {
    "time": "zeitstempel timestamp zeitpunkt time datetime zeit uhrzeit datum/uhrzeit "
    "datum_uhrzeit datum_zeit",
    "start": "beginn von start from zeit_von messbeginn",
    "end": "ende bis end to zeit_bis messende",
    "date": "datum date tag",
    "metering_point": "zählpunkt zaehlpunkt zählpunktbezeichnung zählpunktnummer "
    "metering_point meteringpoint messpunkt zp",
    "meter": "zähler zaehler zählernummer zaehlernummer meter serial seriennummer",
    "obis": "obis obis-code obis_code obiscode kennzahl",
    "direction": "richtung direction energierichtung",
    "value": "wert value werte menge energie energy messwert",
    "quality": "qualität qualitaet quality mm",
    "import": "bezug verbrauch import import_kwh consumption wirkenergie_bezug",
    "export": "lieferung einspeisung export export_kwh feed-in feed_in erzeugung production "
    "wirkenergie_lieferung",
}.items():
    for _word in _words.split():
        _ALIASES[_word] = _role

_DIRECTIONS = {
    "import": "import",
    "bezug": "import",
    "verbrauch": "import",
    "+": "import",
    "in": "import",
    "export": "export",
    "lieferung": "export",
    "einspeisung": "export",
    "-": "export",
    "out": "export",
}

_OBIS_HEADER = re.compile(r"^(\d{1,3}-\d{1,3}:)?\d{1,3}\.\d{1,3}\.\d{1,3}(\*\d{1,3})?$")
_UNIT_IN_HEADER = re.compile(r"\s*[\(\[]\s*(k?wh)\s*[\)\]]\s*$", re.IGNORECASE)
_OFFSET = r"(Z|[+-]\d\d:?\d\d)$"
_FORMATS = (
    "%d.%m.%Y %H:%M:%S",
    "%d.%m.%Y %H:%M",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%dT%H:%M",
    "%d.%m.%y %H:%M",
    "%d/%m/%Y %H:%M",
    "%Y-%m-%d %H:%M:%S%.f",
)
_UNITS = {"kwh": 1.0, "wh": 0.001}
_DAY = 86_400


# ---------------------------------------------------------------------------------------------
# the mapping


@dataclass(frozen=True)
class VendorMapping:
    """A checked mapping (see ``docs/format-vendor.md``); ``columns`` maps a header to a role,
    a direction (``import``/``export``), an OBIS code, or ``TARGET:direction``/
    ``TARGET:OBIS`` with a metering point ID, location id or meter."""

    layout: str | None = None
    separator: str | None = None
    decimal: str | None = None
    encoding: str | None = None
    timezone: str | None = None
    time_format: str | None = None
    time_label: str = "end"
    unit: str = "kWh"
    sheet: str | None = None
    skip_rows: int = 0
    target: str | None = None
    columns: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, table: Mapping[str, Any] | None, source: str | None = None) -> VendorMapping:
        """Check a mapping table; every problem raised together as ``InvalidInput``."""
        table = dict(table or {})
        problems: list[Problem] = []

        def bad(reason: str, key: str) -> None:
            problems.append(Problem(reason, file=source, column=key))

        values: dict[str, Any] = {}
        for key, value in table.items():
            if key == "columns":
                if not isinstance(value, Mapping):
                    bad("columns must be a table: header = role", key)
                    continue
                cols: dict[str, str] = {}
                for name, role in value.items():
                    if not isinstance(role, str) or not role.strip():
                        bad(f"the role of column {name!r} must be a text", f"columns.{name}")
                    else:
                        cols[str(name)] = role.strip()
                values["columns"] = cols
            elif key not in MAPPING_KEYS:
                bad(f"unknown mapping key {key!r}; keys: {', '.join(MAPPING_KEYS)}, columns", key)
            elif key == "skip_rows":
                if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                    bad("skip_rows must be a whole number >= 0", key)
                else:
                    values[key] = value
            elif not isinstance(value, str):
                bad(f"{key} must be a text", key)
            else:
                values[key] = value
        checks = {
            "layout": ("wide", "long"),
            "time_label": ("end", "start"),
            "decimal": (".", ","),
        }
        for key, allowed in checks.items():
            if key in values and values[key] not in allowed:
                bad(f"{key} must be one of {', '.join(allowed)}, not {values[key]!r}", key)
        if "unit" in values and values["unit"].lower() not in _UNITS:
            bad(f"unit must be kWh or Wh, not {values['unit']!r}", "unit")
        if "separator" in values and len(values["separator"].replace("\\t", "\t")) != 1:
            bad("separator must be one character (';', ',', '\\t', '|')", "separator")
        if "timezone" in values:
            try:
                zone(values["timezone"])
            except InvalidInput as exc:
                bad(exc.message, "timezone")
        if "encoding" in values:
            try:
                b"".decode(values["encoding"])
            except LookupError:
                bad(f"unknown encoding {values['encoding']!r} (utf-8, cp1252, latin-1)", "encoding")
        if problems:
            raise InvalidInput(
                f"{source or 'the mapping'}: {len(problems)} problem(s) in the column mapping",
                problems,
            )
        if "separator" in values:
            values["separator"] = values["separator"].replace("\\t", "\t")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """The mapping as archived with a batch (only what was set)."""
        out: dict[str, Any] = {}
        default = VendorMapping()
        for key in MAPPING_KEYS:
            value = getattr(self, key)
            if value != getattr(default, key):
                out[key] = value
        if self.columns:
            out["columns"] = dict(self.columns)
        return out


def _toml_line(line: str) -> str:
    """``key=value`` with an unquoted value quoted, so ``--map layout=wide`` works."""
    key, sep, value = line.partition("=")
    if not sep:
        return line
    text = value.strip()
    if not text or text[0] in "\"'[{" or re.fullmatch(r"-?\d+", text) or text in ("true", "false"):
        return line
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'{key.strip()} = "{escaped}"'


def load_mapping(path: str | Path | None, lines: Sequence[str] = ()) -> dict[str, Any]:
    """A mapping table from a TOML file and/or ``--map`` lines (each a line of such a file;
    an unquoted value is taken as text; lines apply after the file). Checked; returned in its
    archived form."""
    table: dict[str, Any] = {}
    source = str(path) if path is not None else "--map"
    if path is not None:
        try:
            table = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InvalidInput(
                f"mapping file {path} not found", [Problem("no such file", file=str(path))]
            ) from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise InvalidInput(
                f"mapping file {path} is not valid TOML",
                [Problem(f"not valid TOML: {exc}", file=str(path))],
            ) from None
    problems: list[Problem] = []
    for line in lines:
        try:
            part = tomllib.loads(_toml_line(line))
        except tomllib.TOMLDecodeError as exc:
            problems.append(Problem(f"--map {line!r} is not a TOML line: {exc}"))
            continue
        for key, value in part.items():
            if isinstance(value, dict) and isinstance(table.get(key), dict):
                table[key] = {**table[key], **value}
            else:
                table[key] = value
    if problems:
        raise InvalidInput(f"{len(problems)} bad --map line(s)", problems)
    return VendorMapping.from_dict(table, source).to_dict()


# ---------------------------------------------------------------------------------------------
# reading the table


@dataclass
class _Table:
    frame: pl.DataFrame
    #: line (CSV, sheet row) of the first data row
    first_line: int
    container: str
    separator: str | None = None


def _decode(content: bytes, encoding: str | None) -> str:
    if encoding:
        return content.decode(encoding)
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError:
        return content.decode("cp1252")


def _read_csv(content: bytes, mapping: VendorMapping, problems: Problems) -> _Table | None:
    try:
        text = _decode(content, mapping.encoding)
    except UnicodeDecodeError as exc:
        problems.add(f"the file cannot be read as {mapping.encoding}: {exc.reason}")
        return None
    lines = text.splitlines()[mapping.skip_rows :]
    header = next((line for line in lines if line.strip()), "")
    if not header:
        problems.add("the file is empty: expected a header row and data rows")
        return None
    sep = mapping.separator or max((";", ",", "\t", "|"), key=header.count)
    body = "\n".join(lines)
    try:
        frame = pl.read_csv(
            io.StringIO(body),
            separator=sep,
            infer_schema=False,
            has_header=True,
            quote_char='"',
        )
    except (pl.exceptions.ComputeError, pl.exceptions.NoDataError) as exc:
        count = header.count(sep) + 1
        ragged = [
            (i, line.count(sep) + 1)
            for i, line in enumerate(lines[1:], start=2)
            if line.strip() and line.count(sep) + 1 > count
        ]
        for i, fields in ragged:
            problems.add(
                f"{fields} fields, the header has {count}",
                line=i + mapping.skip_rows,
                kind="ragged line",
            )
        if not ragged:
            problems.add(f"cannot read the file as CSV: {str(exc).splitlines()[0]}")
        return None
    frame = frame.rename({c: c.strip().lstrip("\ufeff").strip() for c in frame.columns})
    return _Table(frame, mapping.skip_rows + 2, "csv", sep)


def _read_xlsx(content: bytes, mapping: VendorMapping, problems: Problems) -> _Table | None:
    import openpyxl

    try:
        book = openpyxl.load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for broken workbooks
        problems.add(f"cannot read the file as an Excel workbook (.xlsx): {exc}")
        return None
    try:
        if mapping.sheet is not None:
            if mapping.sheet not in book.sheetnames:
                problems.add(
                    f"no sheet {mapping.sheet!r} in the workbook (sheets: "
                    f"{', '.join(book.sheetnames)})",
                    column="sheet",
                )
                return None
            sheet: Any = book[mapping.sheet]
        else:
            sheet = book.worksheets[0]
        rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    finally:
        book.close()
    rows = rows[mapping.skip_rows :]
    while rows and all(v is None for v in rows[0]):
        rows.pop(0)
    if not rows:
        problems.add("the sheet is empty: expected a header row and data rows")
        return None
    header = ["" if v is None else str(v).strip() for v in rows[0]]
    width = len(header)
    while width and not header[width - 1]:
        width -= 1
    data = [r[:width] + [None] * (width - len(r)) for r in rows[1:]]
    columns: dict[str, pl.Series] = {}
    for j, name in enumerate(header[:width]):
        cells = [r[j] for r in data]
        columns[name or f"column {j + 1}"] = _cells(cells)
    frame = pl.DataFrame(columns) if columns else pl.DataFrame()
    return _Table(frame, mapping.skip_rows + 2, "xlsx")


def _cells(cells: list[Any]) -> pl.Series:
    """One sheet column as a typed Series: numbers, datetimes, or text."""
    present = [c for c in cells if c is not None and c != ""]
    if present and all(isinstance(c, int | float) and not isinstance(c, bool) for c in present):
        return pl.Series([None if c in (None, "") else float(c) for c in cells], dtype=pl.Float64)
    if present and all(isinstance(c, datetime) for c in present):
        return pl.Series([c if isinstance(c, datetime) else None for c in cells])
    out: list[str | None] = []
    for c in cells:
        if c is None:
            out.append(None)
        elif isinstance(c, datetime):
            out.append(c.isoformat(sep=" "))
        elif isinstance(c, date):
            out.append(c.isoformat())
        else:
            out.append(str(c))
    return pl.Series(out, dtype=pl.String)


def _read_parquet(content: bytes, problems: Problems) -> _Table | None:
    try:
        frame = pl.read_parquet(io.BytesIO(content))
    except Exception as exc:  # polars raises several kinds for broken files
        problems.add(f"cannot read the file as Parquet: {str(exc).splitlines()[0]}")
        return None
    return _Table(frame, 1, "parquet")


def read_table(
    content: bytes, mapping: VendorMapping, problems: Problems, container: str | None = None
) -> _Table | None:
    """The table of a vendor file: ``container`` ``csv``, ``xlsx`` or ``parquet`` (None: by
    content)."""
    if container is None:
        if content.startswith(b"PAR1"):
            container = "parquet"
        elif content.startswith(b"PK\x03\x04"):
            container = "xlsx"
        else:
            container = "csv"
    if container == "parquet":
        return _read_parquet(content, problems)
    if container == "xlsx":
        return _read_xlsx(content, mapping, problems)
    return _read_csv(content, mapping, problems)


# ---------------------------------------------------------------------------------------------
# columns


@dataclass(frozen=True)
class _Series:
    """What one series column holds: interval energy of a direction or a register."""

    column: str
    target: str | None  # text naming the target (None: the row's or the default target)
    direction: str | None  # import/export for interval energy
    register: str | None  # canonical OBIS code of a register
    scale: float


def _normal(name: str) -> str:
    text = _UNIT_IN_HEADER.sub("", name).strip().lower()
    return re.sub(r"\s+", "_", text)


def _unit_scale(name: str, default: float) -> float:
    match = _UNIT_IN_HEADER.search(name)
    return _UNITS[match.group(1).lower()] if match else default


def _quantity(text: str) -> tuple[str | None, str | None, str | None]:
    """(direction, register, problem) of a quantity text: a direction word or an OBIS code."""
    word = text.strip().lower()
    if word in _DIRECTIONS:
        return _DIRECTIONS[word], None, None
    if _ALIASES.get(word) in ("import", "export"):
        return _ALIASES[word], None, None
    try:
        code = parse_obis(text.strip())
    except InvalidObis:
        return None, None, f"{text!r} is neither import/export (Bezug/Lieferung) nor an OBIS code"
    canonical = str(code)
    c, d = code.c, code.d
    if c in (1, 2) and d in (9, 29):
        return ("import" if c == 1 else "export"), None, None
    if c in (1, 2) and d == 8:
        return None, canonical, None
    return (
        None,
        None,
        (
            f"OBIS code {canonical} is not supported here: use active energy registers "
            "(1-0:1.8.x, 1-0:2.8.x) or interval energy (1-1:1.29.0, 1-1:2.29.0, 1.9.0, 2.9.0)"
        ),
    )


def _roles(
    frame: pl.DataFrame, mapping: VendorMapping, problems: Problems
) -> tuple[dict[str, str], list[_Series]]:
    """Role per non-series column and the series columns, from the mapping and the headers."""
    roles: dict[str, str] = {}
    series: list[_Series] = []
    default_scale = _UNITS[mapping.unit.lower()]
    for name in mapping.columns:
        if name not in frame.columns:
            problems.add(
                f"the mapping names column {name!r}, which the file does not have (columns: "
                f"{', '.join(frame.columns)})",
                line=1,
                column=name,
            )
    seen: set[str] = set()
    for name in frame.columns:
        if name in seen:
            problems.add(f"column {name!r} appears twice", line=1, column=name)
        seen.add(name)
        given = mapping.columns.get(name)
        scale = _unit_scale(name, default_scale)
        if given is not None:
            role = given.strip()
            if role.lower() in ROLES:
                roles[name] = role.lower()
                continue
            target, _, quantity = role.rpartition(":") if ":" in role else ("", "", role)
            direction, register, problem = _quantity(quantity)
            if problem is not None and ":" in role:
                # "LGZ:123:1-0:1.8.0" or an OBIS code with its own colon
                for cut in range(len(role)):
                    if role[cut] == ":":
                        d2, r2, p2 = _quantity(role[cut + 1 :])
                        if p2 is None:
                            target, direction, register, problem = role[:cut], d2, r2, None
                            break
                else:
                    target = ""
                if problem is not None:
                    direction, register, problem = _quantity(role)
                    target = ""
            if problem is not None:
                problems.add(
                    f"column {name!r}: {problem}; a role is one of {', '.join(ROLES)}, import, "
                    "export, an OBIS code, or TARGET:import / TARGET:export / TARGET:OBIS",
                    line=1,
                    column=name,
                )
                continue
            series.append(_Series(name, target or None, direction, register, scale))
            continue
        word = _normal(name)
        alias = _ALIASES.get(word)
        if alias in ("import", "export"):
            series.append(_Series(name, None, alias, None, scale))
        elif alias is not None:
            roles[name] = alias
        elif _OBIS_HEADER.match(name.strip()):
            direction, register, problem = _quantity(name)
            if problem is not None:
                problems.add(f"column {name!r}: {problem}", line=1, column=name)
            else:
                series.append(_Series(name, None, direction, register, scale))
        else:
            problems.add(
                f"unknown column {name!r}: name its role in the mapping (columns.{name} = "
                '"time", "import", "AT...:export", "1-0:1.8.0", ... or "ignore")',
                line=1,
                column=name,
            )
    by_role: dict[str, list[str]] = {}
    for name, role in roles.items():
        by_role.setdefault(role, []).append(name)
    for role, names in by_role.items():
        if role != "ignore" and len(names) > 1:
            problems.add(
                f"columns {', '.join(repr(n) for n in names)} all have the role {role!r}; "
                'map one of them to "ignore"',
                line=1,
                column=names[1],
            )
    return roles, series


# ---------------------------------------------------------------------------------------------
# values and times


def _text(series: pl.Series) -> pl.Series:
    """Cells as stripped text (None for empty)."""
    if series.dtype == pl.String:
        out = series.str.strip_chars()
    elif isinstance(series.dtype, pl.Datetime):
        if series.dtype.time_zone is not None:
            out = series.dt.convert_time_zone("UTC").dt.strftime("%Y-%m-%dT%H:%M:%S+00:00")
        else:
            out = series.dt.strftime("%Y-%m-%d %H:%M:%S")
    else:
        out = series.cast(pl.String)
    return out.replace("", None)


def _numbers(series: pl.Series, decimal: str) -> tuple[FloatArray, BoolArray, BoolArray]:
    """(values, bad, empty): numbers of a column; ``decimal`` ``,`` reads ``1.234,5``."""
    if series.dtype.is_numeric():
        values = np.asarray(series.cast(pl.Float64).to_numpy(), dtype=np.float64)
        empty = np.asarray(series.is_null().to_numpy(), dtype=bool)
        return values, np.zeros(len(values), dtype=bool), empty
    text = _text(series)
    empty = np.asarray(text.is_null().to_numpy(), dtype=bool)
    cleaned = text.str.replace_all(r"[\s\u00a0']", "")
    if decimal == ",":
        cleaned = cleaned.str.replace_all(".", "", literal=True).str.replace(",", ".", literal=True)
    values = np.asarray(cleaned.cast(pl.Float64, strict=False).to_numpy(), dtype=np.float64)
    bad = ~np.isfinite(values) & ~empty
    return values, bad, empty


def _walls(texts: pl.Series, fmt: str | None) -> tuple[IntArray, BoolArray]:
    """Wall-clock seconds (as if UTC) of naive times; ``24:00`` is midnight of the next day."""
    is24 = np.asarray(
        texts.str.contains(r"(^|\D)24:00(:00)?$").fill_null(False).to_numpy(), dtype=bool
    )
    fixed = texts.str.replace(r"24:00(:00)?$", "00:00")
    formats = (fmt,) if fmt else _FORMATS
    best: pl.Series | None = None
    best_missing = -1
    present = int(fixed.is_not_null().sum())
    for candidate in formats:
        parsed = fixed.str.strptime(pl.Datetime("ms"), candidate, strict=False)
        missing = present - int(parsed.is_not_null().sum())
        if best is None or missing < best_missing:
            best, best_missing = parsed, missing
        if missing == 0:
            break
    assert best is not None
    ok = np.asarray(best.is_not_null().to_numpy(), dtype=bool)
    walls = np.asarray(best.dt.epoch("s").fill_null(0).to_numpy(), dtype=np.int64)
    walls = walls + np.where(is24, _DAY, 0)
    return walls, ok


def _occurrence(group: IntArray, walls: IntArray, valid: BoolArray) -> IntArray:
    """How often the same (group, wall time) came before in file order (0 for the first)."""
    out = np.zeros(len(walls), dtype=np.int64)
    rows = np.flatnonzero(valid)
    if not len(rows):
        return out
    order = rows[np.lexsort((rows, walls[rows], group[rows]))]
    g, w = group[order], walls[order]
    new = np.concatenate(([True], (g[1:] != g[:-1]) | (w[1:] != w[:-1])))
    start = np.maximum.accumulate(np.where(new, np.arange(len(order)), 0))
    out[order] = np.arange(len(order)) - start
    return out


def _localise(walls: IntArray, fold: IntArray, tz: str) -> tuple[IntArray, BoolArray]:
    """UTC epoch seconds of wall times in ``tz``: ``fold`` 0 the first (summer-time) instant of
    a repeated wall time, 1 the second. Not ok where the wall time does not exist."""
    frame = pl.DataFrame(
        {
            "t": pl.Series(walls * 1000, dtype=pl.Int64).cast(pl.Datetime("ms")),
            "a": np.where(fold > 0, "latest", "earliest"),
        }
    )
    out = frame.select(
        pl.col("t")
        .dt.replace_time_zone(tz, ambiguous=pl.col("a"), non_existent="null")
        .dt.epoch("s")
    ).to_series()
    ok = np.asarray(out.is_not_null().to_numpy(), dtype=bool)
    return np.asarray(out.fill_null(0).to_numpy(), dtype=np.int64), ok


@dataclass
class _Times:
    epoch: IntArray  # the instant (registers) or the slot start (intervals), UTC seconds
    ok: BoolArray


def _times(
    table: pl.DataFrame,
    roles: dict[str, str],
    mapping: VendorMapping,
    tz: str,
    group: IntArray,
    problems: Problems,
    lines: IntArray,
) -> tuple[_Times, str] | None:
    """Per row: the UTC start of its quarter hour (the instant for registers is the same
    number: an end label minus 15 minutes is handled in ``_slot_of``). Returns the times and
    the kind of label (``start``/``end``/``instant``)."""
    by_role = {role: name for name, role in roles.items()}
    if "start" in by_role:
        column, label = by_role["start"], "start"
    elif "time" in by_role:
        column, label = by_role["time"], mapping.time_label
    elif "end" in by_role:
        column, label = by_role["end"], "end"
    elif "date" in by_role:
        column, label = by_role["date"], mapping.time_label
    else:
        problems.add(
            'no time column: name one in the mapping (columns.NAME = "time"), or use a '
            "header such as Zeitstempel, Datum, Zeit von or Zeit bis",
            line=1,
        )
        return None
    raw = table.get_column(column)
    n = len(raw)
    if "date" in by_role and by_role["date"] != column:
        day = _text(table.get_column(by_role["date"]))
        clock = _text(raw)
        if isinstance(raw.dtype, pl.Datetime):
            clock = raw.dt.strftime("%H:%M:%S")
        day = day.str.slice(0, 10)
        texts = pl.Series(
            [
                None if d is None or c is None else f"{d} {c}"
                for d, c in zip(day, clock, strict=True)
            ],
            dtype=pl.String,
        )
    else:
        texts = _text(raw)
    empty = np.asarray(texts.is_null().to_numpy(), dtype=bool)
    for r in np.flatnonzero(empty).tolist():
        problems.add(f"{column} is empty", line=int(lines[r]), column=column, kind="empty time")
    with_offset = np.asarray(texts.str.contains(_OFFSET).fill_null(False).to_numpy(), dtype=bool)
    epoch = np.zeros(n, dtype=np.int64)
    ok = ~empty
    if with_offset.any():
        rows = np.flatnonzero(with_offset)
        parsed, bad = parse_timestamps(texts.gather(rows))
        epoch[rows] = parsed
        for i, reason in bad:
            ok[rows[i]] = False
            problems.add(reason, line=int(lines[rows[i]]), column=column, kind="bad time")
    naive = ~with_offset & ~empty
    if naive.any():
        rows = np.flatnonzero(naive)
        walls, good = _walls(texts.gather(rows), mapping.time_format)
        for i in np.flatnonzero(~good).tolist():
            problems.add(
                f"{texts[int(rows[i])]!r} is not a time (expected e.g. 31.03.2024 02:15, "
                "2024-03-31 02:15 or ISO 8601 with offset; set time_format in the mapping)",
                line=int(lines[rows[i]]),
                column=column,
                kind="bad time",
            )
        ok[rows[~good]] = False
        rows, walls = rows[good], walls[good]
        if label == "end":
            # resolve the START wall time (end label minus 15 minutes) with the fold of its
            # occurrence; an end label right after the spring gap resolves on its own
            starts = walls - SLOT_SECONDS
            fold = _occurrence(group[rows], starts, np.ones(len(rows), dtype=bool))
            start_utc, exists = _localise(starts, fold, tz)
            end_utc, end_ok = _localise(walls, np.zeros(len(rows), dtype=np.int64), tz)
            utc = np.where(exists, start_utc, end_utc - SLOT_SECONDS)
            good_utc = exists | end_ok
        else:
            fold = _occurrence(group[rows], walls, np.ones(len(rows), dtype=bool))
            utc, good_utc = _localise(walls, fold, tz)
        for i in np.flatnonzero(~good_utc).tolist():
            problems.add(
                f"{texts[int(rows[i])]!r} does not exist in {tz} (the hour skipped when the "
                "clocks go forward); give times with their UTC offset",
                line=int(lines[rows[i]]),
                column=column,
                kind="time in the spring gap",
            )
        epoch[rows] = utc
        ok[rows[~good_utc]] = False
        if label == "end":
            # stored as the end instant; _slot_of takes it back
            epoch[rows] = utc + SLOT_SECONDS
    return _Times(epoch, ok), ("instant" if label not in ("start", "end") else label)


# ---------------------------------------------------------------------------------------------
# the reader


def read_vendor(
    content: bytes,
    source: str,
    index: SiteIndex,
    mapping: Mapping[str, Any] | None,
    *,
    container: str | None = None,
) -> ImportedFile:
    """The readings of one vendor file for the site of ``index``: interval values of
    locations and register readings of meters. Every problem raised together."""
    checked = VendorMapping.from_dict(mapping, source)
    problems = Problems(source)
    table = read_table(content, checked, problems, container)
    if table is None:
        raise InvalidInput(f"{source}: rejected, nothing imported", problems.summary())
    fmt = f"vendor/{table.container}"
    frame = table.frame
    n = frame.height
    lines = np.arange(n, dtype=np.int64) + table.first_line
    roles, series = _roles(frame, checked, problems)
    layout = checked.layout or ("long" if "value" in roles.values() else "wide")
    by_role = {role: name for name, role in roles.items()}
    decimal = checked.decimal or ("," if table.separator == ";" else None)
    if decimal is None:
        decimal = _guess_decimal(frame, [s.column for s in series] + [by_role.get("value", "")])
    tz = checked.timezone or index.tz
    fatal = False
    if layout == "long" and "value" not in by_role:
        problems.add("a long table needs a value column (Wert, value)", line=1)
        fatal = True
    if layout == "wide" and not series:
        problems.add(
            "no series column: name one (Bezug, Lieferung, an OBIS code, or map it in the "
            'mapping), or set layout = "long" with a value column',
            line=1,
        )
        fatal = True
    if fatal:  # otherwise go on: every problem of the rows is listed too
        raise InvalidInput(
            f"{source}: rejected, nothing imported ({len(problems.items)} problem(s))",
            problems.summary(),
        )

    # the row's own target (metering point / meter column)
    row_target_col = by_role.get("metering_point") or by_role.get("meter")
    row_targets = (
        _text(frame.get_column(row_target_col)) if row_target_col else pl.Series([None] * n)
    )
    target_cache: dict[str, Target | str] = {}

    def target_of(text: str) -> Target | str:
        if text not in target_cache:
            target_cache[text] = resolve_target(index, text)
        return target_cache[text]

    # entries: one per value, column-wise
    e_row: list[IntArray] = []
    e_target: list[pl.Series] = []
    e_direction: list[NDArray[np.object_]] = []
    e_register: list[NDArray[np.object_]] = []
    e_value: list[FloatArray] = []
    e_column: list[NDArray[np.object_]] = []
    quality = _quality(frame, by_role.get("quality"), lines, problems)
    if layout == "wide":
        for s in series:
            values, bad, empty = _numbers(frame.get_column(s.column), decimal)
            for r in np.flatnonzero(bad).tolist():
                problems.add(
                    f"{frame.get_column(s.column).cast(pl.String)[r]!r} is not a number"
                    + (' (decimal comma: set decimal = ",")' if decimal == "." else ""),
                    line=int(lines[r]),
                    column=s.column,
                    kind="not a number",
                )
            keep = np.flatnonzero(~bad & ~empty)
            e_row.append(keep)
            if s.target is not None:
                e_target.append(pl.Series([s.target] * len(keep), dtype=pl.String))
            else:
                e_target.append(row_targets.gather(keep))
            e_direction.append(np.full(len(keep), s.direction, dtype=object))
            e_register.append(np.full(len(keep), s.register, dtype=object))
            e_value.append(values[keep] * s.scale)
            e_column.append(np.full(len(keep), s.column, dtype=object))
    else:
        value_col = by_role["value"]
        values, bad, empty = _numbers(frame.get_column(value_col), decimal)
        for r in np.flatnonzero(bad).tolist():
            problems.add(
                f"{frame.get_column(value_col).cast(pl.String)[r]!r} is not a number",
                line=int(lines[r]),
                column=value_col,
                kind="not a number",
            )
        keep = np.flatnonzero(~bad & ~empty)
        quantity_col = by_role.get("obis") or by_role.get("direction")
        direction = np.full(len(keep), None, dtype=object)
        register = np.full(len(keep), None, dtype=object)
        if quantity_col is not None:
            texts = _text(frame.get_column(quantity_col)).gather(keep)
            for text in texts.unique().to_list():
                rows = np.flatnonzero(texts.eq_missing(text).to_numpy())
                if text is None:
                    for r in rows.tolist():
                        problems.add(
                            f"{quantity_col} is empty",
                            line=int(lines[keep[r]]),
                            column=quantity_col,
                            kind="empty quantity",
                        )
                    continue
                d, reg, problem = _quantity(text)
                if problem is not None:
                    for r in rows.tolist():
                        problems.add(
                            problem, line=int(lines[keep[r]]), column=quantity_col, kind=problem
                        )
                    continue
                direction[rows] = d
                register[rows] = reg
        e_row.append(keep)
        e_target.append(row_targets.gather(keep))
        e_direction.append(direction)
        e_register.append(register)
        e_value.append(values[keep] * _unit_scale(value_col, _UNITS[checked.unit.lower()]))
        e_column.append(np.full(len(keep), value_col, dtype=object))
    row = np.concatenate(e_row) if e_row else np.zeros(0, dtype=np.int64)
    target_text = pl.concat(e_target) if e_target else pl.Series([], dtype=pl.String)
    direction = np.concatenate(e_direction) if e_direction else np.zeros(0, dtype=object)
    register = np.concatenate(e_register) if e_register else np.zeros(0, dtype=object)
    value = np.concatenate(e_value) if e_value else np.zeros(0, dtype=np.float64)
    column = np.concatenate(e_column) if e_column else np.zeros(0, dtype=object)

    # targets: per distinct text
    default = checked.target
    target_text = target_text.fill_null(default) if default else target_text
    loc = np.full(len(row), -1, dtype=np.int64)
    meter = np.full(len(row), -1, dtype=np.int64)
    mp_direction = np.full(len(row), None, dtype=object)
    # the rows of every distinct target in one grouping (not one pass over all rows per target)
    groups = pl.DataFrame({"t": target_text}).with_row_index("r").group_by("t").agg(pl.col("r"))
    rows_of = {
        t: np.sort(np.asarray(r.to_numpy(), dtype=np.int64))
        for t, r in zip(groups.get_column("t").to_list(), groups.get_column("r"), strict=True)
    }
    for text in target_text.unique().to_list():
        rows = rows_of[text]
        if text is None:
            if len(index.locations) == 1:
                loc[rows] = 0
                continue
            for r in rows[:1].tolist():
                problems.add(
                    "no metering point or meter for these values: add a Zählpunkt/meter column, "
                    "name it in the column mapping (TARGET:import), or set target in the mapping",
                    line=int(lines[row[r]]),
                    column=str(column[r]),
                )
            continue
        found = target_of(text)
        if isinstance(found, str):
            problems.add(
                found,
                line=int(lines[row[rows[0]]]),
                column=row_target_col or str(column[rows[0]]),
                meter=text,
            )
            continue
        loc[rows] = index.location_index[found.location]
        if found.meter is not None:
            meter[rows] = index.key_index[found.meter]
        mp_direction[rows] = found.direction

    # a long row without quantity takes the direction of its metering point
    no_quantity = (direction == None) & (register == None)  # noqa: E711
    direction = np.where(no_quantity & (mp_direction != None), mp_direction, direction)  # noqa: E711
    for r in np.flatnonzero((direction == None) & (register == None) & (loc >= 0))[:1].tolist():  # noqa: E711
        problems.add(
            "no OBIS code or direction for this value: add an OBIS/Richtung column or name the "
            "metering point ID (whose direction is known)",
            line=int(lines[row[r]]),
            column=str(column[r]),
        )
    clash = np.flatnonzero(
        (direction != None) & (mp_direction != None) & (direction != mp_direction)  # noqa: E711
    )
    if layout == "wide":  # there the metering point names the location, columns directions
        clash = clash[:0]
    for r in clash.tolist():
        problems.add(
            f"a value of direction {direction[r]} for metering point {target_text[int(r)]}, which "
            f"is the {mp_direction[r]} metering point of location "
            f"{index.locations[int(loc[r])]!r}",
            line=int(lines[row[r]]),
            column=str(column[r]),
            kind="direction clash",
        )

    # times
    if layout == "wide":
        # one series of times per row target (a wide file may list several metering points)
        group_rows = np.asarray(row_targets.fill_null("").rank("dense").to_numpy(), dtype=np.int64)
    else:
        keys = [text or "" for text in target_text.to_list()]
        codes = {
            k: i for i, k in enumerate(dict.fromkeys(zip(keys, direction, register, strict=True)))
        }
        group_rows = np.zeros(n, dtype=np.int64)
        group_rows[row] = [codes[k] for k in zip(keys, direction, register, strict=True)]
    timed = _times(frame, roles, checked, tz, group_rows, problems, lines)
    if timed is None:
        raise InvalidInput(
            f"{source}: rejected, nothing imported ({len(problems.items)} problem(s))",
            problems.summary(),
        )
    times, label = timed
    epoch = times.epoch[row]
    good = times.ok[row] & (loc >= 0)

    is_interval = np.asarray([d is not None for d in direction], dtype=bool) & (
        np.asarray([r is None for r in register], dtype=bool)
    )
    is_register = np.asarray([r is not None for r in register], dtype=bool)
    readings, kinds = _assemble(
        index,
        problems,
        lines,
        row,
        loc,
        meter,
        direction,
        register,
        value,
        epoch,
        good & is_interval,
        good & is_register,
        label,
        quality,
        column,
        target_text,
    )
    if problems:
        raise InvalidInput(
            f"{source}: rejected, nothing imported ({len(problems.items)} problem(s))",
            problems.summary(),
        )
    kind = "intervals" if kinds == {"intervals"} else "registers"
    return build_file(
        source,
        kind,
        fmt,
        n,
        readings,
        index,
        options={"mapping": checked.to_dict()} if mapping else None,
        warnings=problems.warnings,
    )


def _guess_decimal(frame: pl.DataFrame, columns: Sequence[str]) -> str:
    """``,`` when value cells look like ``12,5`` and never like ``12.5``, else ``.``."""
    comma = dot = 0
    for name in columns:
        if name not in frame.columns or frame.get_column(name).dtype != pl.String:
            continue
        texts = frame.get_column(name).str.strip_chars()
        comma += int(texts.str.contains(r"^-?\d+,\d+$").sum() or 0)
        dot += int(texts.str.contains(r"^-?\d+\.\d+$").sum() or 0)
    return "," if comma and not dot else "."


def _quality(
    frame: pl.DataFrame, column: str | None, lines: IntArray, problems: Problems
) -> NDArray[np.int8]:
    out = np.full(frame.height, int(Quality.L1), dtype=np.int8)
    if column is None:
        return out
    texts = _text(frame.get_column(column))
    for text in texts.unique().to_list():
        rows = np.flatnonzero(texts.eq_missing(text).to_numpy())
        key = (text or "").strip().upper()
        if key in ("", "L1"):
            continue
        if key in ("L2", "L3"):
            out[rows] = int(Quality[key])
            continue
        for r in rows.tolist():
            problems.add(
                f"unknown quality {text!r}: use L1, L2 or L3 (empty: L1)",
                line=int(lines[r]),
                column=column,
                kind="unknown quality",
            )
    return out


def _assemble(
    index: SiteIndex,
    problems: Problems,
    lines: IntArray,
    row: IntArray,
    loc: IntArray,
    meter: IntArray,
    direction: NDArray[np.object_],
    register: NDArray[np.object_],
    value: FloatArray,
    epoch: IntArray,
    intervals: BoolArray,
    registers: BoolArray,
    label: str,
    quality: NDArray[np.int8],
    column: NDArray[np.object_],
    target_text: pl.Series,
) -> tuple[ReadingSet, set[str]]:
    kinds: set[str] = set()
    # -- interval values: one row per (location, slot) with both directions
    iv = np.flatnonzero(intervals)
    interval_part = None
    if len(iv):
        kinds.add("intervals")
        end_based = label == "end"
        start = epoch[iv] - (SLOT_SECONDS if end_based else 0)
        off = np.flatnonzero(start % SLOT_SECONDS != 0)
        for i in off.tolist():
            problems.add(
                f"not the {'end' if end_based else 'start'} of a quarter hour (:00, :15, :30, "
                ":45); interval values are 15-minute energies",
                line=int(lines[row[iv[i]]]),
                column=str(column[iv[i]]),
                time=time_text(int(epoch[iv[i]])),
                kind="off the quarter-hour grid",
            )
        negative = np.flatnonzero(value[iv] < 0)
        for i in negative.tolist():
            problems.add(
                "energy cannot be negative (give import and export as two columns)",
                line=int(lines[row[iv[i]]]),
                column=str(column[iv[i]]),
                kind="negative energy",
            )
        slot = start // SLOT_SECONDS
        is_import = np.asarray(direction[iv] == "import", dtype=bool)
        # duplicates: (location, slot, direction) twice
        key = (loc[iv] * 2 + (~is_import).astype(np.int64)) * (1 << 40) + (slot - slot.min())
        order = np.lexsort((row[iv], key))
        dup = np.flatnonzero(key[order][1:] == key[order][:-1]) + 1
        for i in dup.tolist():
            r, first = iv[order[i]], iv[order[i - 1]]
            problems.add(
                f"duplicate: an {direction[r]} value of this metering point for this quarter hour "
                f"is already on line {int(lines[row[first]])}",
                line=int(lines[row[r]]),
                column=str(column[r]),
                time=time_text(int(slot[order[i]]) * SLOT_SECONDS),
                kind="duplicate",
            )
        pair = loc[iv] * (1 << 40) + (slot - slot.min())
        uniq, inverse = np.unique(pair, return_inverse=True)
        m = len(uniq)
        has = directions_of(index.site)
        u_loc = np.zeros(m, dtype=np.int64)
        u_loc[inverse] = loc[iv]
        u_slot = np.zeros(m, dtype=np.int64)
        u_slot[inverse] = slot
        # a direction the location measures starts missing, the other is 0 (per location,
        # then spread over the rows)
        present = np.unique(u_loc).tolist()
        lut_import = np.zeros(max(present, default=0) + 1)
        lut_export = np.zeros(max(present, default=0) + 1)
        for x in present:
            lut_import[x] = np.nan if "import" in has[index.locations[int(x)]] else 0.0
            lut_export[x] = np.nan if "export" in has[index.locations[int(x)]] else 0.0
        fill_import = lut_import[u_loc]
        fill_export = lut_export[u_loc]
        imp = fill_import.astype(np.float64)
        exp = fill_export.astype(np.float64)
        imp[inverse[is_import]] = value[iv][is_import]
        exp[inverse[~is_import]] = value[iv][~is_import]
        q = np.full(m, int(Quality.L1), dtype=np.int8)
        np.maximum.at(q, inverse, quality[row[iv]])
        order = np.lexsort((u_slot, u_loc))
        interval_part = interval_rows(
            index, u_loc[order], u_slot[order], imp[order], exp[order], q[order], problems
        )
    # -- register readings of meters
    rg = np.flatnonzero(registers)
    register_part = None
    if len(rg):
        kinds.add("registers")
        t = epoch[rg]
        m_idx = meter[rg].copy()
        need = np.flatnonzero(m_idx < 0)
        if len(need):
            found, count = meters_at(index, loc[rg][need], t[need])
            for i in np.flatnonzero(count != 1).tolist():
                r = rg[need[i]]
                problems.add(
                    "no meter is installed at this metering point at this time"
                    if count[i] == 0
                    else "two meters are installed at this instant (meter exchange): name the "
                    "meter by its serial",
                    line=int(lines[row[r]]),
                    column=str(column[r]),
                    time=time_text(int(epoch[r])),
                    kind="meter at time",
                )
            m_idx[need] = np.where(count == 1, found, -1)
        names = sorted({str(x) for x in register[rg]})
        r_idx = np.array([names.index(str(x)) for x in register[rg]], dtype=np.int64)
        ok = m_idx >= 0
        for i in np.flatnonzero(ok).tolist():
            info = index.meters[index.keys[int(m_idx[i])]]
            if names[int(r_idx[i])] not in info.registers:
                problems.add(
                    f"register {names[int(r_idx[i])]} is not configured for meter {info.key} "
                    f"(registers: {', '.join(sorted(info.registers))}); add it to the meter's "
                    "registers in the site file",
                    line=int(lines[row[rg[i]]]),
                    column=str(column[rg[i]]),
                    meter=info.key,
                    kind=f"register {names[int(r_idx[i])]} not configured",
                )
                ok[i] = False
            elif t[i] < info.lo or t[i] > info.hi:
                problems.add(
                    f"reading outside the installed period of meter {info.key}",
                    line=int(lines[row[rg[i]]]),
                    column=str(column[rg[i]]),
                    meter=info.key,
                    time=time_text(int(t[i])),
                    kind="outside installed period",
                )
        for i in np.flatnonzero(value[rg] < 0).tolist():
            problems.add(
                "a register reading cannot be negative",
                line=int(lines[row[rg[i]]]),
                column=str(column[rg[i]]),
                kind="negative register",
            )
        key = (m_idx * len(names) + r_idx) * (1 << 40) + (t - t.min())
        order = np.lexsort((row[rg], key))
        for i in (np.flatnonzero(key[order][1:] == key[order][:-1]) + 1).tolist():
            r, first = rg[order[i]], rg[order[i - 1]]
            problems.add(
                f"duplicate: a reading of this register at this time is already on line "
                f"{int(lines[row[first]])}",
                line=int(lines[row[r]]),
                column=str(column[r]),
                time=time_text(int(epoch[r])),
                kind="duplicate",
            )
        register_part = register_rows(index, m_idx, names, r_idx, t, value[rg])
    del target_text
    readings = ReadingSet()
    if interval_part is not None and register_part is not None:
        readings = ReadingSet(registers=register_part, intervals=interval_part)
    elif interval_part is not None:
        readings = ReadingSet(intervals=interval_part)
    elif register_part is not None:
        readings = ReadingSet(registers=register_part)
    return readings, kinds
