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
A value is held as fixed-width codes (its row, target, direction, register and column as
integers into the distinct texts of the file), never as a Python object: each distinct metering
point is resolved once, and a table of 35 million values fits in a few GB.
"""

from __future__ import annotations

import io
import re
import tomllib
from collections.abc import Callable, Iterator, Mapping, Sequence
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
    build_file,
    directions_of,
    interval_rows,
    metering_points_of,
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
#: codes into a list of distinct texts (targets, registers, columns), -1 for none
CodeArray = NDArray[np.int32]
#: a direction per value: _IMPORT, _EXPORT or _NONE
DirArray = NDArray[np.int8]

_NONE, _IMPORT, _EXPORT = -1, 0, 1
_DIRECTION_CODE: dict[str | None, int] = {None: _NONE, "import": _IMPORT, "export": _EXPORT}
_DIRECTION_NAME = ("import", "export")
#: pairs of (location, slot) are numbered in a table while it has at most this many entries
#: per value or at most _DENSE_MIN entries (a sort otherwise)
_DENSE_ROWS = 8
_DENSE_MIN = 1 << 22

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
#: times of a column a format is tried on before the whole column
_SAMPLE = 1000
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


#: line breaks of ``str.splitlines`` besides ``\n`` and ``\r\n``
_OTHER_BREAKS = "\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"


def _body(text: str, skip: int) -> str:
    """``"\\n".join(text.splitlines()[skip:])`` without a Python string per line: the lines of
    the text after the first ``skip``, each ended by ``\\n`` but the last."""
    joined = text.replace("\r\n", "\n") if "\r" in text else text
    if any(c in joined for c in _OTHER_BREAKS):  # rare line breaks: as splitlines reads them
        return "\n".join(text.splitlines()[skip:])
    text = joined
    start = 0
    for _ in range(skip):
        end = text.find("\n", start)
        if end < 0:
            return ""
        start = end + 1
    return text[start:-1] if text.endswith("\n") else text[start:]


def _first_line(body: str) -> str:
    """The first line of the body that is not blank ("" for none)."""
    start = 0
    while start <= len(body):
        end = body.find("\n", start)
        end = len(body) if end < 0 else end
        if body[start:end].strip():
            return body[start:end]
        start = end + 1
    return ""


def _read_csv(content: bytes, mapping: VendorMapping, problems: Problems) -> _Table | None:
    try:
        text = _decode(content, mapping.encoding)
    except UnicodeDecodeError as exc:
        problems.add(f"the file cannot be read as {mapping.encoding}: {exc.reason}")
        return None
    body = _body(text, mapping.skip_rows)
    del text
    header = _first_line(body)
    if not header:
        problems.add("the file is empty: expected a header row and data rows")
        return None
    sep = mapping.separator or max((";", ",", "\t", "|"), key=header.count)
    try:
        frame = pl.read_csv(
            body.encode("utf-8"),
            separator=sep,
            infer_schema=False,
            has_header=True,
            quote_char='"',
        )
    except (pl.exceptions.ComputeError, pl.exceptions.NoDataError) as exc:
        count = header.count(sep) + 1
        ragged = [
            (i, line.count(sep) + 1)
            for i, line in enumerate(body.split("\n")[1:], start=2)
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


#: roles of columns whose cells name things (read as codes of their distinct texts)
_NAMING = ("metering_point", "meter", "obis", "direction", "quality")


def _read_parquet(content: bytes, mapping: VendorMapping, problems: Problems) -> _Table | None:
    try:
        schema = pl.read_parquet_schema(io.BytesIO(content))
        # text columns naming metering points, quantities or qualities are read as categorical
        # (a code per row instead of a text per row: 4 instead of about 50 bytes)
        roles, _ = _roles(list(schema), mapping, Problems(""))
        naming = [
            name for name, role in roles.items() if role in _NAMING and schema[name] == pl.String
        ]
        frame = (
            pl.scan_parquet(io.BytesIO(content))
            .with_columns(pl.col(name).cast(pl.Categorical) for name in naming)
            .collect()
        )
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
        return _read_parquet(content, mapping, problems)
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
    columns: Sequence[str], mapping: VendorMapping, problems: Problems
) -> tuple[dict[str, str], list[_Series]]:
    """Role per non-series column and the series columns, from the mapping and the headers."""
    roles: dict[str, str] = {}
    series: list[_Series] = []
    default_scale = _UNITS[mapping.unit.lower()]
    for name in mapping.columns:
        if name not in columns:
            problems.add(
                f"the mapping names column {name!r}, which the file does not have (columns: "
                f"{', '.join(columns)})",
                line=1,
                column=name,
            )
    seen: set[str] = set()
    for name in columns:
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
    formats: tuple[str, ...] = (fmt,) if fmt else _FORMATS
    best: pl.Series | None = None
    best_missing = -1
    present = int(fixed.is_not_null().sum())
    if len(formats) > 1 and len(fixed) > _SAMPLE:
        # the first format that reads a sample of the times whole: when it reads every time,
        # it is the one the loop below would take (every earlier format fails a sampled time)
        sample = fixed.head(_SAMPLE).drop_nulls()
        for candidate in formats:
            if sample.str.strptime(pl.Datetime("ms"), candidate, strict=False).null_count():
                continue
            parsed = fixed.str.strptime(pl.Datetime("ms"), candidate, strict=False)
            if present - int(parsed.is_not_null().sum()) == 0:
                formats, best, best_missing = (), parsed, 0
            break
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


def _hours(walls: IntArray) -> tuple[IntArray, IntArray]:
    """The distinct wall-clock hours (ascending) of wall times and each time's index among
    them."""
    hours = walls // 3600
    if not len(hours):
        return hours, hours
    low = int(hours.min())
    span = int(hours.max()) - low + 1
    if span > 4 * len(hours) + 1_000_000:  # sparse: a sort is cheaper than a table
        distinct, inverse = np.unique(hours, return_inverse=True)
        return distinct, inverse.astype(np.int64)
    present = np.zeros(span, dtype=bool)
    present[hours - low] = True
    rank = np.cumsum(present, dtype=np.int64) - 1
    return np.flatnonzero(present) + low, rank[hours - low]


def _replace_zone(walls: IntArray, tz: str, ambiguous: str) -> tuple[IntArray, BoolArray]:
    """polars' reading of wall times in ``tz`` (``earliest``/``latest`` instant of a repeated
    wall time); not ok where the wall time does not exist."""
    out = (
        pl.Series(walls * 1000, dtype=pl.Int64)
        .cast(pl.Datetime("ms"))
        .dt.replace_time_zone(tz, ambiguous=ambiguous, non_existent="null")  # type: ignore[arg-type]
        .dt.epoch("s")
    )
    ok = np.array(out.is_not_null().to_numpy(), dtype=bool)
    return np.array(out.fill_null(0).to_numpy(), dtype=np.int64), ok


def _localise(
    walls: IntArray, series: Callable[[IntArray], IntArray] | None, tz: str
) -> tuple[IntArray, BoolArray]:
    """UTC epoch seconds of wall times in ``tz``. A repeated wall time is the first (summer-time)
    instant at its first occurrence in its series (``series`` gives the series of the times at
    some indexes; file order) and the second at any later one (``series`` None: always the
    first). Not ok where the wall time does not exist.

    The zone is asked per distinct hour, not per row: an hour with the same offset at its start
    and end for both readings of a repeated time is the wall time minus that offset; only the
    rows of the other hours (the clock changes) are read one by one."""
    utc = np.zeros(len(walls), dtype=np.int64)
    ok = np.zeros(len(walls), dtype=bool)
    if not len(walls):
        return utc, ok
    distinct, inverse = _hours(walls)
    probes = np.concatenate((distinct * 3600, distinct * 3600 + 3599))
    early, early_ok = _replace_zone(probes, tz, "earliest")
    late, late_ok = _replace_zone(probes, tz, "latest")
    offset = probes - early
    m = len(distinct)
    plain = early_ok & late_ok & (early == late)
    plain = plain[:m] & plain[m:] & (offset[:m] == offset[m:])
    row_plain = plain[inverse]
    utc = walls - offset[:m][inverse]
    ok = row_plain.copy()
    rest = np.flatnonzero(~row_plain)
    if len(rest):
        here = walls[rest]
        fold = (
            np.zeros(len(rest), dtype=np.int64)
            if series is None
            else _occurrence(series(rest), here, np.ones(len(rest), dtype=bool))
        )
        first, first_ok = _replace_zone(here, tz, "earliest")
        later = np.flatnonzero(fold > 0)
        if len(later):
            second, second_ok = _replace_zone(here[later], tz, "latest")
            first[later], first_ok[later] = second, second_ok
        utc[rest] = first
        ok[rest] = first_ok
    return np.where(ok, utc, 0), ok


@dataclass
class _Times:
    epoch: IntArray  # the instant (registers) or the slot start (intervals), UTC seconds
    ok: BoolArray


class _Lines:
    """The line of a data row of the file: its index plus the line of the first data row."""

    def __init__(self, first: int) -> None:
        self.first = first

    def __getitem__(self, row: int | np.integer[Any]) -> int:
        return int(row) + self.first


def _listed(problems: Problems, kind: str, rows: IntArray) -> Iterator[int]:
    """The rows of one kind of problem that are listed (the first ones, up to the cap of
    :class:`Problems`); the others are only counted, without a loop over them."""
    room = problems.room(kind)
    yield from rows[:room].tolist()
    problems.skip(kind, len(rows) - room)


def _times(
    table: pl.DataFrame,
    roles: dict[str, str],
    mapping: VendorMapping,
    tz: str,
    group: Callable[[IntArray], IntArray],
    problems: Problems,
    lines: _Lines,
) -> tuple[_Times, str] | None:
    """Per row: the UTC start of its quarter hour (the instant for registers is the same
    number: an end label minus 15 minutes is handled in ``_slot_of``). Returns the times and
    the kind of label (``start``/``end``/``instant``). ``group`` numbers the series of some
    rows (asked only for the rows of a clock change)."""
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
    texts: pl.Series | None = None
    seconds = np.zeros(0, dtype=np.int64)
    if "date" in by_role and by_role["date"] != column:
        day = _text(table.get_column(by_role["date"]))
        clock = _text(raw)
        if isinstance(raw.dtype, pl.Datetime):
            clock = raw.dt.strftime("%H:%M:%S")
        day = day.str.slice(0, 10)
        texts = pl.Series(
            pl.select(pl.concat_str([pl.lit(day), pl.lit(clock)], separator=" ")).to_series(),
            dtype=pl.String,
        )
    elif isinstance(raw.dtype, pl.Datetime):
        # a typed time column (Parquet, Excel): its seconds as they are, no text in between
        seconds = np.asarray(raw.dt.epoch("s").fill_null(0).to_numpy(), dtype=np.int64)
    else:
        texts = _text(raw)

    def shown(r: int) -> object:
        return texts[r] if texts is not None else _text(raw.gather([r]))[0]

    if texts is None:
        empty = np.asarray(raw.is_null().to_numpy(), dtype=bool)
        zoned = isinstance(raw.dtype, pl.Datetime) and raw.dtype.time_zone is not None
        with_offset = ~empty if zoned else np.zeros(n, dtype=bool)
    else:
        empty = np.asarray(texts.is_null().to_numpy(), dtype=bool)
        with_offset = np.asarray(
            texts.str.contains(_OFFSET).fill_null(False).to_numpy(), dtype=bool
        )
    for r in _listed(problems, "empty time", np.flatnonzero(empty)):
        problems.add(f"{column} is empty", line=lines[r], column=column, kind="empty time")
    epoch = np.zeros(n, dtype=np.int64)
    ok = ~empty
    if with_offset.any():
        if texts is None:
            epoch = seconds if with_offset.all() else np.where(with_offset, seconds, epoch)
        else:
            rows = np.flatnonzero(with_offset)
            parsed, bad = parse_timestamps(texts.gather(rows))
            epoch[rows] = parsed
            for i, reason in bad:
                ok[rows[i]] = False
                problems.add(reason, line=lines[rows[i]], column=column, kind="bad time")
    naive = ~with_offset & ~empty
    if naive.any():
        rows = np.flatnonzero(naive)
        if texts is None:
            walls, good = seconds[rows], np.ones(len(rows), dtype=bool)
        else:
            walls, good = _walls(texts.gather(rows), mapping.time_format)
        for i in _listed(problems, "bad time", np.flatnonzero(~good)):
            problems.add(
                f"{shown(int(rows[i]))!r} is not a time (expected e.g. 31.03.2024 02:15, "
                "2024-03-31 02:15 or ISO 8601 with offset; set time_format in the mapping)",
                line=lines[rows[i]],
                column=column,
                kind="bad time",
            )
        ok[rows[~good]] = False
        rows, walls = rows[good], walls[good]
        if label == "end":
            # resolve the START wall time (end label minus 15 minutes) with the fold of its
            # occurrence; an end label right after the spring gap resolves on its own
            utc, exists = _localise(walls - SLOT_SECONDS, lambda i: group(rows[i]), tz)
            good_utc = exists.copy()
            gap = np.flatnonzero(~exists)
            if len(gap):
                end_utc, end_ok = _localise(walls[gap], None, tz)
                utc[gap] = end_utc - SLOT_SECONDS
                good_utc[gap] = end_ok
        else:
            utc, good_utc = _localise(walls, lambda i: group(rows[i]), tz)
        for i in _listed(problems, "time in the spring gap", np.flatnonzero(~good_utc)):
            problems.add(
                f"{shown(int(rows[i]))!r} does not exist in {tz} (the hour skipped when the "
                "clocks go forward); give times with their UTC offset",
                line=lines[rows[i]],
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
    lines = _Lines(table.first_line)
    roles, series = _roles(frame.columns, checked, problems)
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

    # the row's own target (metering point / meter column), as codes: the index of the row's
    # text among the distinct texts of the column (-1: none); each distinct text resolved once
    row_target_col = by_role.get("metering_point") or by_role.get("meter")
    if row_target_col:
        row_code, names = _factor(frame.get_column(row_target_col))
    else:
        row_code, names = np.full(n, -1, dtype=np.int32), []
    codes = {text: i for i, text in enumerate(names)}

    def code_of(text: str) -> int:
        if text not in codes:
            codes[text] = len(names)
            names.append(text)
        return codes[text]

    columns: list[str] = []
    registers: list[str] = []

    def column_code(name: str) -> int:
        if name not in columns:
            columns.append(name)
        return columns.index(name)

    def register_code(code: str | None) -> int:
        if code is None:
            return -1
        if code not in registers:
            registers.append(code)
        return registers.index(code)

    # entries: one per value, column-wise, every attribute a fixed-width code
    e_row: list[IntArray] = []
    e_target: list[CodeArray] = []
    e_direction: list[DirArray] = []
    e_register: list[CodeArray] = []
    e_value: list[FloatArray] = []
    e_column: list[CodeArray] = []
    quality = _quality(frame, by_role.get("quality"), lines, problems)
    quantity_col: str | None = None  # long: the column of the row's own quantity
    row_direction = _same(_NONE, n, np.int8)
    row_register = _same(-1, n, np.int32)
    if layout == "wide":
        for s in series:
            values, bad, empty = _numbers(frame.get_column(s.column), decimal)
            for r in _listed(problems, "not a number", np.flatnonzero(bad)):
                problems.add(
                    f"{frame.get_column(s.column).cast(pl.String)[r]!r} is not a number"
                    + (' (decimal comma: set decimal = ",")' if decimal == "." else ""),
                    line=lines[r],
                    column=s.column,
                    kind="not a number",
                )
            keep = np.flatnonzero(~bad & ~empty)
            e_row.append(keep)
            if s.target is not None:
                e_target.append(np.full(len(keep), code_of(s.target), dtype=np.int32))
            else:
                e_target.append(row_code[keep])
            e_direction.append(_same(_DIRECTION_CODE[s.direction], len(keep), np.int8))
            e_register.append(_same(register_code(s.register), len(keep), np.int32))
            e_value.append(values[keep] * s.scale)
            e_column.append(_same(column_code(s.column), len(keep), np.int32))
            del values, bad, empty
    else:
        value_col = by_role["value"]
        values, bad, empty = _numbers(frame.get_column(value_col), decimal)
        for r in _listed(problems, "not a number", np.flatnonzero(bad)):
            problems.add(
                f"{frame.get_column(value_col).cast(pl.String)[r]!r} is not a number",
                line=lines[r],
                column=value_col,
                kind="not a number",
            )
        keep = np.flatnonzero(~bad & ~empty)
        del bad, empty
        quantity_col = by_role.get("obis") or by_role.get("direction")
        if quantity_col is not None:
            q_code, q_texts = _factor(frame.get_column(quantity_col))
            # per distinct text (the last entry: an empty cell)
            q_direction = np.full(len(q_texts) + 1, _NONE, dtype=np.int8)
            q_register = np.full(len(q_texts) + 1, -1, dtype=np.int32)
            q_problem: list[str | None] = []
            for i, text in enumerate(q_texts):
                d, reg, problem = _quantity(text)
                q_problem.append(problem)
                if problem is None:
                    q_direction[i] = _DIRECTION_CODE[d]
                    q_register[i] = register_code(reg)
            row_direction = q_direction[q_code]
            row_register = q_register[q_code]
            kept = q_code[keep]
            for r in _listed(problems, "empty quantity", np.flatnonzero(kept < 0)):
                problems.add(
                    f"{quantity_col} is empty",
                    line=lines[keep[r]],
                    column=quantity_col,
                    kind="empty quantity",
                )
            for i, problem in enumerate(q_problem):
                if problem is not None:
                    for r in _listed(problems, problem, np.flatnonzero(kept == i)):
                        problems.add(
                            problem, line=lines[keep[r]], column=quantity_col, kind=problem
                        )
            del q_code, kept
        scale = _unit_scale(value_col, _UNITS[checked.unit.lower()])
        e_row.append(keep)
        if len(keep) == n:  # every row has a value: the row arrays are the entries' own
            e_target.append(row_code)
            e_direction.append(row_direction)
            e_register.append(row_register)
            e_value.append(values if scale == 1.0 else values * scale)
        else:
            e_target.append(row_code[keep])
            e_direction.append(row_direction[keep])
            e_register.append(row_register[keep])
            e_value.append(values[keep] * scale)
        e_column.append(_same(column_code(value_col), len(keep), np.int32))
        del values
    row = _joined(e_row, np.int64)
    target = _joined(e_target, np.int32)
    direction = _joined(e_direction, np.int8)
    register = _joined(e_register, np.int32)
    value = _joined(e_value, np.float64)
    column = _joined(e_column, np.int32)
    del e_row, e_target, e_direction, e_register, e_value, e_column

    # targets: each distinct text resolved once, spread over the entries by lookup tables
    default = checked.target
    if default:
        target = np.where(target < 0, code_of(default), target).astype(np.int32)
    points = metering_points_of(index.site)
    k = len(names)
    loc_of = np.full(k + 1, -1, dtype=np.int32)  # the last entry: no target
    meter_of = np.full(k + 1, -1, dtype=np.int32)
    direction_of = np.full(k + 1, _NONE, dtype=np.int8)
    used = np.zeros(k + 1, dtype=bool)
    used[target] = True
    failed: dict[int, str | None] = {}
    for code in np.flatnonzero(used).tolist():
        if code == k:
            if len(index.locations) == 1:
                loc_of[k] = 0
            else:
                failed[-1] = None
            continue
        found = resolve_target(index, names[code], points)
        if isinstance(found, str):
            failed[code] = found
            continue
        loc_of[code] = index.location_index[found.location]
        if found.meter is not None:
            meter_of[code] = index.key_index[found.meter]
        direction_of[code] = _DIRECTION_CODE[found.direction]
    if failed:
        # the first entry of every target that cannot be resolved
        is_failed = np.zeros(k + 1, dtype=bool)
        is_failed[list(failed)] = True
        at = np.flatnonzero(is_failed[target])
        _, first = np.unique(target[at], return_index=True)
        for r in np.sort(at[first]).tolist():
            code = int(target[r])
            reason = failed[code]
            if reason is None:
                problems.add(
                    "no metering point or meter for these values: add a Zählpunkt/meter column, "
                    "name it in the column mapping (TARGET:import), or set target in the mapping",
                    line=lines[row[r]],
                    column=columns[column[r]],
                )
            else:
                problems.add(
                    reason,
                    line=lines[row[r]],
                    column=row_target_col or columns[column[r]],
                    meter=names[code],
                )
    loc = loc_of[target]
    mp_direction = direction_of[target]

    # a long row without quantity takes the direction of its metering point
    if quantity_col is None and layout == "long":  # no row has one: decided per target
        direction = mp_direction
        unknown = (direction_of == _NONE) & (loc_of >= 0)
        missing = unknown[target] if unknown.any() else np.zeros(0, dtype=bool)
    else:
        no_quantity = (direction == _NONE) & (register < 0)
        direction = np.where(no_quantity & (mp_direction != _NONE), mp_direction, direction)
        missing = (direction == _NONE) & (register < 0) & (loc >= 0)
        del no_quantity
    for r in np.flatnonzero(missing)[:1].tolist():
        problems.add(
            "no OBIS code or direction for this value: add an OBIS/Richtung column or name the "
            "metering point ID (whose direction is known)",
            line=lines[row[r]],
            column=columns[column[r]],
        )
    if layout != "wide" and quantity_col is not None:  # in a wide table the metering point
        # names the location and columns the directions; without quantities nothing clashes
        clash = (direction != _NONE) & (mp_direction != _NONE) & (direction != mp_direction)
        for r in _listed(problems, "direction clash", np.flatnonzero(clash)):
            problems.add(
                f"a value of direction {_DIRECTION_NAME[direction[r]]} for metering point "
                f"{names[target[r]]}, which is the {_DIRECTION_NAME[mp_direction[r]]} metering "
                f"point of location {index.locations[int(loc[r])]!r}",
                line=lines[row[r]],
                column=columns[column[r]],
                kind="direction clash",
            )
    del missing, mp_direction

    # times: the repeated autumn hour counts occurrences per series of the file
    group = _grouping(
        layout,
        row_code,
        codes[default] if default else None,
        row_direction,
        row_register,
        direction_of,
        len(registers),
    )
    del row_code, row_direction, row_register
    timed = _times(frame, roles, checked, tz, group, problems, lines)
    del group
    if timed is None:
        raise InvalidInput(
            f"{source}: rejected, nothing imported ({len(problems.items)} problem(s))",
            problems.summary(),
        )
    del frame, table  # the file's columns are not needed any more: free them before assembling
    times, label = timed
    # a long table where every row has a value: the entries are the rows, in order
    every_row = layout == "long" and len(row) == n
    epoch = times.epoch if every_row else times.epoch[row]
    good = (times.ok if every_row else times.ok[row]) & (loc >= 0)
    quality = quality if every_row else quality[row]  # per entry
    del times, timed
    is_register = register >= 0
    is_interval = (direction != _NONE) & ~is_register
    # the meter named per value matters for register readings only
    meter = meter_of[target] if is_register.any() else _same(-1, len(target), np.int32)
    readings, kinds = _assemble(
        index,
        problems,
        lines,
        row,
        loc,
        meter,
        direction,
        register,
        registers,
        value,
        epoch,
        good & is_interval,
        good & is_register,
        label,
        quality,
        column,
        columns,
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


def _grouping(
    layout: str,
    row_code: CodeArray,
    default: int | None,
    row_direction: DirArray,
    row_register: CodeArray,
    direction_of: DirArray,
    registers: int,
) -> Callable[[IntArray], IntArray]:
    """A number per series for some rows: in a wide file the row's target (a wide file may list
    several metering points), in a long one its target and quantity (a row without one has the
    direction of its metering point). Every row counts, also one without a value."""

    def group(rows: IntArray) -> IntArray:
        if layout == "wide":
            return row_code[rows].astype(np.int64)
        target = row_code[rows]
        if default is not None:
            target = np.where(target < 0, default, target)
        quantity, register = row_direction[rows], row_register[rows]
        filled = np.where((quantity == _NONE) & (register < 0), direction_of[target], quantity)
        out = (target.astype(np.int64) + 1) * 3 + (filled.astype(np.int64) + 1)
        return out * (registers + 1) + (register + 1)

    return group


def _same(value: int, count: int, dtype: type[Any]) -> Any:
    """``count`` times ``value`` as a read-only array of no size (a broadcast view)."""
    return np.broadcast_to(np.asarray(value, dtype=dtype), (count,))


def _joined(parts: list[Any], dtype: type[Any]) -> Any:
    """The parts as one array (no copy for one part)."""
    if len(parts) == 1:
        return np.asarray(parts[0], dtype=dtype)
    return np.concatenate(parts).astype(dtype, copy=False) if parts else np.zeros(0, dtype=dtype)


def _factor(series: pl.Series) -> tuple[CodeArray, list[str]]:
    """A column as codes: per row the index of its stripped text among the distinct texts
    (-1 for an empty or missing cell) and those texts in order of appearance. Each distinct
    cell is stripped and looked at once, not each row."""
    if isinstance(series.dtype, pl.Categorical):
        distinct = series.unique(maintain_order=True).drop_nulls()
        ids = np.asarray(distinct.to_physical().to_numpy(), dtype=np.int64)
        if len(ids) and int(ids.max()) > 4 * len(series) + 1_000_000:  # a huge global table
            return _factor(series.cast(pl.String))
        # the categories are shared by the process: number the file's own ones from 0
        local = np.full(int(ids.max(initial=-1)) + 2, len(ids), dtype=np.int64)
        local[ids] = np.arange(len(ids))
        physical = series.to_physical()
        distinct = distinct.cast(pl.String)
    else:
        raw = series if series.dtype == pl.String else _text(series)
        distinct = raw.unique(maintain_order=True).drop_nulls()
        local = None
        physical = raw.cast(pl.Enum(distinct)).to_physical() if len(distinct) else raw
    if not len(distinct):
        return np.full(len(series), -1, dtype=np.int32), []
    names: list[str] = []
    position: dict[str, int] = {}
    remap = np.full(len(distinct) + 1, -1, dtype=np.int32)  # the last entry: a missing cell
    for i, text in enumerate(_text(distinct).to_list()):
        if text is not None:
            if text not in position:
                position[text] = len(names)
                names.append(text)
            remap[i] = position[text]
    if local is not None:
        remap = remap[local]  # by category id (the last: a missing cell)
    if physical.null_count():
        return remap[physical.cast(pl.Int64).fill_null(-1).to_numpy()], names
    return remap[physical.to_numpy()], names


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
    frame: pl.DataFrame, column: str | None, lines: _Lines, problems: Problems
) -> NDArray[np.int8]:
    if column is None:
        return np.full(frame.height, int(Quality.L1), dtype=np.int8)
    code, texts = _factor(frame.get_column(column))
    of = np.full(len(texts) + 1, int(Quality.L1), dtype=np.int8)  # the last: empty, L1
    unknown = np.zeros(len(texts) + 1, dtype=bool)
    for i, text in enumerate(texts):
        key = text.strip().upper()
        if key in ("L2", "L3"):
            of[i] = int(Quality[key])
        elif key != "L1":
            unknown[i] = True
    for r in _listed(problems, "unknown quality", np.flatnonzero(unknown[code])):
        problems.add(
            f"unknown quality {texts[code[r]]!r}: use L1, L2 or L3 (empty: L1)",
            line=lines[r],
            column=column,
            kind="unknown quality",
        )
    return of[code]


def _assemble(
    index: SiteIndex,
    problems: Problems,
    lines: _Lines,
    row: IntArray,
    loc: CodeArray,
    meter: CodeArray,
    direction: DirArray,
    register: CodeArray,
    register_names: Sequence[str],
    value: FloatArray,
    epoch: IntArray,
    intervals: BoolArray,
    registers: BoolArray,
    label: str,
    quality: NDArray[np.int8],
    column: CodeArray,
    columns: Sequence[str],
) -> tuple[ReadingSet, set[str]]:
    kinds: set[str] = set()
    # -- interval values: one row per (location, slot) with both directions
    # the interval values among the entries (usually all of them: then no copies)
    every = bool(intervals.all())
    iv = np.zeros(0, dtype=np.int64) if every else np.flatnonzero(intervals)

    def take(a: Any) -> Any:
        return a if every else a[iv]

    def entry(i: int) -> int:
        return i if every else int(iv[i])

    interval_part = None
    if len(intervals) if every else len(iv):
        kinds.add("intervals")
        end_based = label == "end"
        slot = epoch.copy() if every else epoch[iv]  # the slot's start, then its number
        if end_based:
            slot -= SLOT_SECONDS
        off = np.flatnonzero(slot % SLOT_SECONDS != 0)
        for i in _listed(problems, "off the quarter-hour grid", off):
            problems.add(
                f"not the {'end' if end_based else 'start'} of a quarter hour (:00, :15, :30, "
                ":45); interval values are 15-minute energies",
                line=lines[row[entry(i)]],
                column=columns[column[entry(i)]],
                time=time_text(int(epoch[entry(i)])),
                kind="off the quarter-hour grid",
            )
        iv_value = take(value)
        negative = np.flatnonzero(iv_value < 0)
        for i in _listed(problems, "negative energy", negative):
            problems.add(
                "energy cannot be negative (give import and export as two columns)",
                line=lines[row[entry(i)]],
                column=columns[column[entry(i)]],
                kind="negative energy",
            )
        slot //= SLOT_SECONDS
        low = int(slot.min())
        span = int(slot.max()) - low + 1
        slot -= low  # from here: the slot relative to the first
        is_import = take(direction) == _IMPORT
        locations = len(index.locations)
        # (location, slot) pairs numbered in a table when it is small against the rows, else
        # by a sort: the same pairs in the same (location, slot) order either way
        dense = 2 * locations * span <= max(_DENSE_ROWS * len(slot), _DENSE_MIN)
        stride = span if dense else 1 << 40
        # duplicates: (location, direction, slot) twice
        iv_loc = take(loc)
        key = iv_loc.astype(np.int64)
        key *= 2
        key += ~is_import
        key *= stride
        key += slot
        if dense:
            seen = np.zeros(2 * locations * span, dtype=bool)
            seen[key] = True
            twice = int(np.count_nonzero(seen)) != len(key)
            del seen
        else:
            twice = True
        if twice:
            order = _file_order(key, take(row))
            dup = np.flatnonzero(key[order][1:] == key[order][:-1]) + 1
            for i in _listed(problems, "duplicate", dup):
                r, first = entry(int(order[i])), entry(int(order[i - 1]))
                problems.add(
                    f"duplicate: an {_DIRECTION_NAME[direction[r]]} value of this metering point "
                    f"for this quarter hour is already on line {lines[row[first]]}",
                    line=lines[row[r]],
                    column=columns[column[r]],
                    time=time_text((int(slot[order[i]]) + low) * SLOT_SECONDS),
                    kind="duplicate",
                )
            del order, dup
        del key
        pair = iv_loc.astype(np.int64)
        del iv_loc
        pair *= stride
        pair += slot
        del slot
        if dense:
            present = np.zeros(locations * span, dtype=bool)
            present[pair] = True
            # the pairs in (location, slot) order: the places of the table, row and column
            u_loc, u_slot = np.nonzero(present.reshape(locations, span))
            rank: NDArray[np.signedinteger[Any]] = np.cumsum(
                present, dtype=np.int32 if len(present) < 1 << 31 else np.int64
            )
            del present
            inverse = rank[pair]
            inverse -= 1
            del rank
        else:
            uniq, inverse = np.unique(pair, return_inverse=True)
            u_loc, u_slot = np.divmod(uniq, stride)
            del uniq
        u_slot += low
        del pair
        m = len(u_loc)
        has = directions_of(index.site)
        # a direction the location measures starts missing, the other is 0 (per location,
        # then spread over the rows)
        lut_import = np.zeros(locations)
        lut_export = np.zeros(locations)
        for x, name in enumerate(index.locations):
            lut_import[x] = np.nan if "import" in has[name] else 0.0
            lut_export[x] = np.nan if "export" in has[name] else 0.0
        imp = lut_import[u_loc]
        exp = lut_export[u_loc]
        imp[inverse[is_import]] = iv_value[is_import]
        exp[inverse[~is_import]] = iv_value[~is_import]
        del iv_value, is_import
        q = np.full(m, int(Quality.L1), dtype=np.int8)
        # the worst quality of a pair's values (L1 is the best: only the others count)
        entry_quality = take(quality)
        worse = np.flatnonzero(entry_quality > int(Quality.L1))
        np.maximum.at(q, inverse[worse], entry_quality[worse])
        del entry_quality, worse
        del inverse
        interval_part = interval_rows(index, u_loc, u_slot, imp, exp, q, problems)
        del u_loc, u_slot, imp, exp, q
    # -- register readings of meters
    rg = np.flatnonzero(registers)
    register_part = None
    if len(rg):
        kinds.add("registers")
        t = epoch[rg]
        m_idx = meter[rg].astype(np.int64)
        need = np.flatnonzero(m_idx < 0)
        if len(need):
            found, count = meters_at(index, loc[rg][need].astype(np.int64), t[need])
            for i in _listed(problems, "meter at time", np.flatnonzero(count != 1)):
                r = rg[need[i]]
                problems.add(
                    "no meter is installed at this metering point at this time"
                    if count[i] == 0
                    else "two meters are installed at this instant (meter exchange): name the "
                    "meter by its serial",
                    line=lines[row[r]],
                    column=columns[column[r]],
                    time=time_text(int(epoch[r])),
                    kind="meter at time",
                )
            m_idx[need] = np.where(count == 1, found, -1)
        used = np.zeros(len(register_names), dtype=bool)
        used[register[rg]] = True
        codes = np.flatnonzero(used).tolist()
        names = sorted(register_names[c] for c in codes)
        to_name = np.zeros(len(register_names), dtype=np.int64)
        for c in codes:
            to_name[c] = names.index(register_names[c])
        r_idx = to_name[register[rg]]
        ok = m_idx >= 0
        meters = len(index.keys)
        on = np.where(ok, m_idx, meters)  # the last: no meter
        configured = np.ones((meters + 1, len(names)), dtype=bool)
        for meter_key, info in index.meters.items():
            for j, name in enumerate(names):
                configured[index.key_index[meter_key], j] = name in info.registers
        unconfigured = ok & ~configured[on, r_idx]
        outside = ok & ~unconfigured & ((t < index.meter_lo[on]) | (t > index.meter_hi[on]))
        for j, name in enumerate(names):
            kind = f"register {name} not configured"
            for i in _listed(problems, kind, np.flatnonzero(unconfigured & (r_idx == j))):
                info = index.meters[index.keys[int(m_idx[i])]]
                problems.add(
                    f"register {name} is not configured for meter {info.key} "
                    f"(registers: {', '.join(sorted(info.registers))}); add it to the meter's "
                    "registers in the site file",
                    line=lines[row[rg[i]]],
                    column=columns[column[rg[i]]],
                    meter=info.key,
                    kind=kind,
                )
        for i in _listed(problems, "outside installed period", np.flatnonzero(outside)):
            info = index.meters[index.keys[int(m_idx[i])]]
            problems.add(
                f"reading outside the installed period of meter {info.key}",
                line=lines[row[rg[i]]],
                column=columns[column[rg[i]]],
                meter=info.key,
                time=time_text(int(t[i])),
                kind="outside installed period",
            )
        for i in _listed(problems, "negative register", np.flatnonzero(value[rg] < 0)):
            problems.add(
                "a register reading cannot be negative",
                line=lines[row[rg[i]]],
                column=columns[column[rg[i]]],
                kind="negative register",
            )
        key = (m_idx * len(names) + r_idx) * (1 << 40) + (t - t.min())
        order = _file_order(key, row[rg])
        dup = np.flatnonzero(key[order][1:] == key[order][:-1]) + 1
        for i in _listed(problems, "duplicate", dup):
            r, first = rg[order[i]], rg[order[i - 1]]
            problems.add(
                f"duplicate: a reading of this register at this time is already on line "
                f"{lines[row[first]]}",
                line=lines[row[r]],
                column=columns[column[r]],
                time=time_text(int(epoch[r])),
                kind="duplicate",
            )
        register_part = register_rows(index, m_idx, names, r_idx, t, value[rg])
    readings = ReadingSet()
    if interval_part is not None and register_part is not None:
        readings = ReadingSet(registers=register_part, intervals=interval_part)
    elif interval_part is not None:
        readings = ReadingSet(intervals=interval_part)
    elif register_part is not None:
        readings = ReadingSet(registers=register_part)
    return readings, kinds


def _file_order(key: IntArray, row: IntArray) -> IntArray:
    """The order of ``np.lexsort((row, key))``: by key, equal keys in file order. Stable sorts
    (runs of a file in key order cost little), the rows' sort skipped when they are in file
    order already (a long table)."""
    if len(row) < 2 or bool(np.all(row[1:] >= row[:-1])):
        return np.argsort(key, kind="stable")
    by_row = np.argsort(row, kind="stable")
    return by_row[np.argsort(key[by_row], kind="stable")]
