"""Which reader an input goes to, and how folders and zip archives become inputs.

``lastgang import --format FORMAT`` names the format of its files, or ``auto`` (the default)
to recognise each file by its content:

- ``csv``: lastgang's own CSV (``docs/data-formats.md``), :mod:`.csv_readings`;
- ``eda``: ebUtilities ConsumptionRecord XML (``docs/format-eda.md``), :mod:`.eda_import`;
- ``dlms``: captured smart meter telegrams, binary or hex (``docs/format-dlms.md``),
  :mod:`.dlms_import`;
- ``vendor``: CSV, Excel or Parquet with a column mapping (``docs/format-vendor.md``),
  :mod:`.vendor`; ``xlsx`` and ``parquet`` are ``vendor`` for an Excel or Parquet file;
- ``mqtt``: an MQTT capture as ``lastgang listen`` archives it (``docs/format-mqtt.md``),
  :mod:`.mqtt`.

Recognition (``auto``): a zip archive is expanded (an ``.xlsx`` workbook is a zip with
``xl/workbook.xml`` and is read as Excel), ``PAR1`` starts Parquet, XML with a
``ConsumptionRecord`` root is EDA, a line of JSON with a ``topic`` is an MQTT capture, bytes
that start an M-Bus (``68 L L 68``) or HDLC (``7E A0``) frame, as binary or hex text, are smart
meter telegrams, a CSV whose header is lastgang's own is ``csv``, and any other text table is
``vendor``.

Folders are read recursively in name order (hidden files skipped); every member of a zip archive
is its own input named ``archive.zip!member`` (nested archives ``a.zip!b.zip!c.xml``), so each
is archived as its own raw batch. A file, or a member of a zip archive on disk, is read only
when its turn comes (:class:`InputFile`), so a folder or an archive of large files is never
held in memory at once.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from lastgang.errors import InvalidInput, Problem
from lastgang.ingest.csv_readings import (
    CsvKind,
    ParsedFile,
    SiteIndex,
    detect_kind,
    parse_csv_readings,
)
from lastgang.ingest.dlms import KeySpec
from lastgang.ingest.eda_import import SeriesLookup
from lastgang.ingest.rows import OPTIONS_KEY, ImportedFile

__all__ = [
    "FORMATS",
    "MAX_MEMBER_BYTES",
    "ImportOptions",
    "InputFile",
    "csv_imported",
    "csv_kind",
    "detect_format",
    "expand_bytes",
    "expand_paths",
    "import_options",
    "options_from_factors",
    "parse_input",
]

#: formats ``--format`` accepts
FORMATS = ("auto", "csv", "eda", "dlms", "vendor", "xlsx", "parquet", "mqtt")

#: largest uncompressed zip member read (a guard against zip bombs)
MAX_MEMBER_BYTES = 1 << 30
_MAX_DEPTH = 4
_ZIP = b"PK\x03\x04"


@dataclass(frozen=True)
class ImportOptions:
    """What a reader needs besides the bytes: smart meter ``keys`` (``dlms``, ``mqtt`` with
    telegrams) and the vendor column ``mapping`` (a dict in the form of the mapping TOML file,
    see ``docs/format-vendor.md``). Both are archived with each batch they were used for."""

    keys: KeySpec | None = None
    mapping: Mapping[str, Any] | None = None


def import_options(
    format: str,
    keys: Sequence[str] = (),
    mapping: str | Path | None = None,
    map_lines: Sequence[str] = (),
) -> ImportOptions:
    """Options from the command line: ``--key`` specs, a ``--mapping`` file and ``--map``
    lines (each one line of a mapping file, applied after the file). Every problem is raised
    together as :class:`~lastgang.errors.InvalidInput`."""
    from lastgang.ingest.dlms_import import parse_key_specs

    if format.split("/", 1)[0] not in FORMATS:
        raise InvalidInput(
            f"unknown format {format!r}",
            [Problem(f"unknown --format {format!r}: use one of {', '.join(FORMATS)}")],
        )
    parsed_keys = parse_key_specs(keys) if keys else None
    table: dict[str, Any] | None = None
    if mapping is not None or map_lines:
        from lastgang.ingest.vendor import load_mapping

        table = load_mapping(mapping, map_lines)
    return ImportOptions(keys=parsed_keys, mapping=table)


def options_from_factors(factors: Mapping[str, Any]) -> ImportOptions:
    """The options a batch was imported with, as archived in its ``factors``."""
    from lastgang.ingest.dlms_import import keys_from_options

    stored = factors.get(OPTIONS_KEY) or {}
    mapping = stored.get("mapping")
    return ImportOptions(keys=keys_from_options(stored), mapping=mapping)


# ---------------------------------------------------------------------------------------------
# files, folders, zip archives


def _is_workbook(path: Path) -> bool:
    """Whether the zip archive at ``path`` is an Excel workbook (read as one input)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return "xl/workbook.xml" in archive.namelist()
    except zipfile.BadZipFile:
        return False


def _is_xlsx(content: bytes) -> bool:
    if not content.startswith(_ZIP):
        return False
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            return "xl/workbook.xml" in archive.namelist()
    except zipfile.BadZipFile:
        return False


def expand_bytes(
    source: str, content: bytes, problems: list[Problem], depth: int = 0
) -> list[InputFile]:
    """``[content]`` as the input ``source``, or the members of a zip archive as
    ``source!member`` (nested archives expanded too). Unreadable archives and members add to
    ``problems``."""
    if not content.startswith(_ZIP) or _is_xlsx(content):
        return [InputFile.of_bytes(source, content)]
    return _expand_archive(
        source, partial(zipfile.ZipFile, io.BytesIO(content)), problems, depth, on_disk=False
    )


def _expand_archive(
    source: str,
    opener: Callable[[], zipfile.ZipFile],
    problems: list[Problem],
    depth: int,
    *,
    on_disk: bool,
) -> list[InputFile]:
    """The members of the zip archive ``opener`` opens. Of an archive ``on_disk`` a member is
    read when its :meth:`InputFile.content` is asked for (from the archive each time), unless
    it is an archive itself; any other member is read here."""
    if depth >= _MAX_DEPTH:
        problems.append(Problem("zip archives nested too deep (at most 4 levels)", file=source))
        return []
    out: list[InputFile] = []
    known = len(problems)  # the problems of the inputs before this one
    try:
        with opener() as archive:
            for info in sorted(archive.infolist(), key=lambda i: i.filename):
                name = info.filename
                if info.is_dir() or _hidden(name):
                    continue
                member = f"{source}!{name}"
                if info.file_size > MAX_MEMBER_BYTES:
                    problems.append(
                        Problem(
                            f"member is {info.file_size} bytes uncompressed, more than the "
                            f"{MAX_MEMBER_BYTES} bytes read from an archive; unpack it first",
                            file=member,
                        )
                    )
                    continue
                try:
                    if on_disk:
                        with archive.open(info) as handle:
                            head = handle.read(len(_ZIP))
                        if head != _ZIP:
                            reader = partial(_read_member, opener, name, member)
                            out.append(InputFile(member, reader))
                            continue
                    data = archive.read(info)
                except (zipfile.BadZipFile, NotImplementedError, RuntimeError) as exc:
                    problems.append(Problem(f"cannot read the archive member: {exc}", file=member))
                    continue
                out.extend(expand_bytes(member, data, problems, depth + 1))
    except zipfile.BadZipFile as exc:
        problems.append(Problem(f"not a readable zip archive: {exc}", file=source))
    if not out and len(problems) == known:
        problems.append(Problem("the zip archive has no files", file=source))
    return out


def _read_member(opener: Callable[[], zipfile.ZipFile], name: str, member: str) -> bytes:
    try:
        with opener() as archive:
            return archive.read(name)
    except (OSError, KeyError, zipfile.BadZipFile, NotImplementedError, RuntimeError) as exc:
        reason = "no such file" if isinstance(exc, FileNotFoundError) else str(exc)
        raise InvalidInput(
            f"{member}: cannot be read any more ({reason})",
            [Problem(f"cannot read the archive member: {reason}", file=member)],
        ) from None


def _hidden(name: str) -> bool:
    return any(part.startswith(".") or part == "__MACOSX" for part in Path(name).parts)


@dataclass(frozen=True)
class InputFile:
    """One input of an import: its name (``archive.zip!member`` for a member of an archive)
    and its bytes, read by :meth:`content` when they are needed: from the file, or from the
    archive on disk, each time; held only for a member of an archive that was itself inside
    an archive, and for bytes given as they are (:meth:`of_bytes`)."""

    source: str
    reader: Callable[[], bytes]
    #: the file on disk, when the input is one (it can then be read in parts: :meth:`parts`)
    path: Path | None = None

    def content(self) -> bytes:
        return self.reader()

    def parts(self, size: int) -> Iterator[bytes]:
        """The bytes in consecutive parts of ``size`` bytes (the last one shorter; one empty
        part for an empty file): a file on disk is read part by part, never held whole."""
        if self.path is None:
            content = self.content()
            for offset in range(0, max(len(content), 1), size):
                yield content[offset : offset + size]
            return
        try:
            with self.path.open("rb") as file:
                part = file.read(size)
                yield part
                while len(part) == size:
                    part = file.read(size)
                    if part:
                        yield part
        except OSError as exc:
            raise _unreadable(self.path, exc) from None

    def head(self, size: int) -> bytes:
        """The first ``size`` bytes (or fewer)."""
        if self.path is None:
            return self.content()[:size]
        try:
            with self.path.open("rb") as file:
                return file.read(size)
        except OSError as exc:
            raise _unreadable(self.path, exc) from None

    def size(self) -> int:
        """How many bytes the input has (a file on disk: as it is now)."""
        if self.path is None:
            return len(self.content())
        try:
            return self.path.stat().st_size
        except OSError as exc:
            raise _unreadable(self.path, exc) from None

    @classmethod
    def of_bytes(cls, source: str, content: bytes) -> InputFile:
        return cls(source, partial(bytes, content))


def _read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise _unreadable(path, exc) from None


def _unreadable(path: Path, exc: OSError) -> InvalidInput:
    reason = "no such file" if isinstance(exc, FileNotFoundError) else exc.strerror
    return InvalidInput(
        f"{path}: cannot be read any more ({reason})",
        [Problem(f"cannot read the file: {reason}", file=str(path))],
    )


def expand_paths(paths: Sequence[str | Path]) -> list[InputFile]:
    """The inputs named by files, folders (recursively, in name order, hidden files skipped)
    and zip archives (each member its own input, ``archive.zip!member``). Every file that
    cannot be read is listed in one :class:`~lastgang.errors.InvalidInput`. The members of zip
    archives are listed here; the bytes of a file or a member are read only when its
    :meth:`InputFile.content` is asked for."""
    inputs: list[InputFile] = []
    problems: list[Problem] = []
    for path in paths:
        root = Path(path)
        if root.is_dir():
            files = sorted(
                p for p in root.rglob("*") if p.is_file() and not _hidden(str(p.relative_to(root)))
            )
            if not files:
                problems.append(Problem("the folder has no files", file=str(root)))
        else:
            files = [root]
        for file in files:
            try:
                with file.open("rb") as handle:
                    head = handle.read(len(_ZIP))
                workbook = head == _ZIP and _is_workbook(file)
            except FileNotFoundError:
                problems.append(Problem("no such file: check the path", file=str(file)))
                continue
            except OSError as exc:
                problems.append(Problem(f"cannot read the file: {exc.strerror}", file=str(file)))
                continue
            if head == _ZIP and not workbook:
                opener = partial(zipfile.ZipFile, file)
                inputs.extend(_expand_archive(str(file), opener, problems, 0, on_disk=True))
            else:
                inputs.append(InputFile(str(file), partial(_read_file, file), file))
    if problems:
        raise InvalidInput(f"{len(problems)} input(s) cannot be read; nothing imported", problems)
    return inputs


# ---------------------------------------------------------------------------------------------
# recognising and reading one input


def _looks_like_telegrams(content: bytes) -> bool:
    from lastgang.ingest.dlms_import import capture_bytes

    data = capture_bytes(content[:65536]) if content[:1].isalnum() else content
    if len(data) >= 4 and data[0] == 0x68 and data[3] == 0x68 and data[1] == data[2]:
        return True
    return len(data) >= 2 and data[0] == 0x7E and data[1] & 0xF0 == 0xA0


def _text_head(content: bytes) -> str:
    head = content[:8192]
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return head.decode(encoding)
        except UnicodeDecodeError:
            continue
    return ""


def detect_format(content: bytes, source: str) -> str:
    """The format of an input from its content (see the module docs); ``InvalidInput`` when
    it is none of them."""
    if content.startswith(_ZIP):
        if _is_xlsx(content):
            return "xlsx"
        raise InvalidInput(
            f"{source}: a zip archive inside an input that is not expanded",
            [Problem("zip archives are expanded only when imported as files", file=source)],
        )
    if content.startswith(b"PAR1"):
        return "parquet"
    if _looks_like_telegrams(content):
        return "dlms"
    text = _text_head(content).lstrip("\ufeff \t\r\n")
    if text.startswith("<"):
        if "ConsumptionRecord" in text:
            return "eda"
        raise InvalidInput(
            f"{source}: an XML file that is not an EDA ConsumptionRecord message",
            [Problem("XML without a ConsumptionRecord root: not a supported format", file=source)],
        )
    if text.startswith("{") and '"topic"' in text.split("\n", 1)[0]:
        return "mqtt"
    first = text.split("\n", 1)[0].strip()
    if not first:
        raise InvalidInput(f"{source}: empty file", [Problem("the file is empty", file=source)])
    return "csv" if _header_kind(first) is not None else "vendor"


def _header_kind(first: str) -> CsvKind | None:
    """The kind of CSV file of readings a header line names (None: not one)."""
    if ";" in first:
        return None
    return detect_kind([name.strip().strip('"').lower() for name in first.split(",")])


def csv_kind(content: bytes, source: str) -> CsvKind | None:
    """The kind of CSV file of readings an input is, from its first bytes (enough for its
    header line); None when it is another format or none."""
    try:
        if detect_format(content, source) != "csv":
            return None
    except InvalidInput:
        return None
    return _header_kind(_text_head(content).lstrip("\ufeff \t\r\n").split("\n", 1)[0].strip())


def csv_imported(file: ParsedFile) -> ImportedFile:
    """A checked CSV file as an import (format ``csv/<kind>``)."""
    return ImportedFile(
        file.source,
        file.kind,
        file.rows,
        file.readings,
        meters=file.meters,
        locations=file.locations,
        factors=file.factors,
        pieces=file.pieces,
        format=f"csv/{file.kind}",
    )


def parse_input(
    content: bytes,
    source: str,
    index: SiteIndex,
    format: str = "auto",
    options: ImportOptions | None = None,
    lookup: SeriesLookup | None = None,
    skip: Collection[str] = (),
) -> ImportedFile:
    """Read one input with the reader of ``format`` (``auto``: recognised by content; an
    archived format such as ``csv/registers`` or ``vendor/xlsx`` is read as it was).
    ``lookup`` reads stored series for readers that join an input with stored data (EDA
    messages of a prosumer's two metering points); give it when the result is stored.
    ``skip``: locations whose rows may be left out unread (see
    :func:`~lastgang.ingest.csv_readings.parse_csv_readings`)."""
    opts = options or ImportOptions()
    fmt = format.split("/", 1)[0] if format else "auto"
    if fmt not in FORMATS:
        raise InvalidInput(
            f"unknown format {format!r}",
            [Problem(f"unknown format {format!r}: use one of {', '.join(FORMATS)}", file=source)],
        )
    if fmt == "auto":
        fmt = detect_format(content, source)
    if fmt == "csv":
        return csv_imported(parse_csv_readings(content, index, source, skip=skip))
    if fmt == "eda":
        from lastgang.ingest.eda_import import read_eda

        return read_eda(content, source, index, lookup)
    if fmt == "dlms":
        from lastgang.ingest.dlms_import import read_dlms

        return read_dlms(content, source, index, opts.keys)
    if fmt == "mqtt":
        from lastgang.ingest.mqtt import read_capture

        return read_capture(content, source, index, opts.mapping)
    from lastgang.ingest.vendor import read_vendor

    container = fmt if fmt in ("xlsx", "parquet") else None
    if fmt == "vendor" and "/" in format:
        container = format.split("/", 1)[1]
    return read_vendor(content, source, index, opts.mapping, container=container)
