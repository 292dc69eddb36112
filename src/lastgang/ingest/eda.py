"""ebUtilities ConsumptionRecord (``DATEN_CRMSG``): Austrian market messages with energy data.

Grid operators send 15-minute and daily energy values of a metering point (Zählpunkt) through the
EDA platform as ebUtilities *ConsumptionRecord* XML messages (EC-2). Energy communities receive
the consumption, production and community allocation values of their participants this way.

:func:`parse_consumption_record` turns the bytes of one such message into a
:class:`ConsumptionRecord` of whole numpy arrays (one :class:`EnergySeries` per ``EnergyData``
block). It is pure: no file system, no store. It validates the message against the XSD of its
schema version (01.30 to 01.41; see :data:`SUPPORTED_VERSIONS` and ``docs/format-eda.md``), then
checks what a schema cannot: every position is exactly one quarter hour (``QH``), one hour
(``H``) or one local day (``D``) long, positions do not overlap, ``NumberOfMeteringIntervall``
matches the number of positions and the metering period, timestamps carry Austrian legal time.
Every problem found is raised together in one :class:`~lastgang.errors.InvalidInput`.

Times are UTC epoch seconds (``int64``); quantities are ``float64`` kWh (kvarh for reactive
energy), unrounded (TOR-7.2); quality is a :class:`~lastgang.quality.Quality` code per position
(Q-1).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Final
from zoneinfo import ZoneInfo

import numpy as np
from lxml import etree
from numpy.typing import NDArray

from lastgang.errors import InvalidInput, Problem
from lastgang.quality import Quality

if TYPE_CHECKING:
    from lxml.etree._docloader import _InputDocument

__all__ = [
    "SUPPORTED_VERSIONS",
    "ConsumptionRecord",
    "EnergyDirection",
    "EnergySeries",
    "MeterCode",
    "MeterCodeRole",
    "parse_consumption_record",
    "parse_meter_code",
]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
QualityArray = NDArray[np.int8]

VIENNA: Final = ZoneInfo("Europe/Vienna")

CR_NAMESPACE_PREFIX: Final = (
    "http://www.ebutilities.at/schemata/customerprocesses/consumptionrecord/"
)
COMMON_NAMESPACE_PREFIX: Final = (
    "http://www.ebutilities.at/schemata/customerprocesses/common/types/"
)
_CR_NAMESPACE = re.compile(re.escape(CR_NAMESPACE_PREFIX) + r"01p(\d\d)")
_COMMON_NAMESPACE = re.compile(re.escape(COMMON_NAMESPACE_PREFIX) + r"01p\d\d")

#: Schema versions this parser accepts (``SchemaVersion`` attribute ``01.30`` .. ``01.41``).
SUPPORTED_VERSIONS: Final = tuple(f"01.{minor}" for minor in range(30, 42))

# The XSD each version is validated with. 01.40 and 01.41 are shipped as published; older
# versions are validated with the 01.40 schema where MM (Ableseart) is optional, because 01.40
# made it mandatory ("Metering Method verpflichtend") and added only optional elements (ECID).
_SCHEMA_FILES: Final = {
    40: "ConsumptionRecord_01p40.xsd",
    41: "ConsumptionRecord_01p41.xsd",
}
_COMMON_TYPES_FILE: Final = "CPCommonTypes_01p20.xsd"
_COMMON_TYPES_NS: Final = COMMON_NAMESPACE_PREFIX + "01p20"
_XSD_NS: Final = "http://www.w3.org/2001/XMLSchema"

#: Most problems of one kind reported per series before summarising the rest.
_MAX_REPORTED: Final = 20

# Interval lengths in seconds for the fixed-length metering intervals.
_FIXED_INTERVAL_SECONDS: Final = {"QH": 900, "H": 3600}

# UOM -> (unit after conversion, factor)
_UNITS: Final = {
    "KWH": ("kWh", 1.0),
    "MWH": ("kWh", 1_000.0),
    "GWH": ("kWh", 1_000_000.0),
    "KVARH": ("kvarh", 1.0),
    "MVARH": ("kvarh", 1_000.0),
}

_QUALITY_CODES: Final = {"L1": Quality.L1, "L2": Quality.L2, "L3": Quality.L3}
# MM values 01..05 are reading-method codes (Ableseart) of the schema, not quality flags of
# 15-minute values; their meaning for interval values is not confirmed, so they are taken as L3.
_READING_METHOD_CODES: Final = frozenset({"01", "02", "03", "04", "05"})


class EnergyDirection(StrEnum):
    """Energy flow direction of the OBIS quantity ``C`` of a meter code (TOR-4.3).

    ``IMPORT``: ``C = 1``, delivered to the customer (Lieferung an Endkunden, consumption).
    ``EXPORT``: ``C = 2``, taken from the customer (Bezug vom Endkunden, feed-in/production).
    """

    IMPORT = "import"
    EXPORT = "export"
    OTHER = "other"


class MeterCodeRole(StrEnum):
    """What the values under a meter code mean (see the table in ``docs/format-eda.md``)."""

    #: ``1-1:1.9.0 G.01``: consumption as measured (Verbrauch lt. Messung)
    CONSUMPTION = "consumption"
    #: ``1-1:1.9.0 G.01T``: consumption by participation factor (Verbrauch nach Teilnahmefaktor)
    CONSUMPTION_PARTICIPATION = "consumption_participation"
    #: ``1-1:2.9.0 G.01``: production/feed-in as measured (Erzeugung lt. Messung)
    PRODUCTION = "production"
    #: ``1-1:2.9.0 G.01T``: production by participation factor (Erzeugung nach Teilnahmefaktor)
    PRODUCTION_PARTICIPATION = "production_participation"
    #: ``1-1:2.9.0 G.02``: share of community production allocated (Anteil an der Erzeugung)
    COMMUNITY_SHARE = "community_share"
    #: ``1-1:2.9.0 G.03``: community energy received, capped by consumption (Eigendeckung)
    COMMUNITY_RECEIVED = "community_received"
    #: ``1-1:2.9.0 G.03R``: community energy received from renewable sources
    COMMUNITY_RECEIVED_RENEWABLE = "community_received_renewable"
    #: ``1-1:2.9.0 P.01``: production not taken by the community (Gemeinschaftsüberschuss)
    COMMUNITY_SURPLUS = "community_surplus"
    #: ``1-1:2.9.0 P.01T``: residual surplus to the grid (Restnetzüberschuss)
    RESIDUAL_SURPLUS = "residual_surplus"
    #: any other meter code: kept as text, direction from the OBIS ``C`` value
    OTHER = "other"


_ROLE_TABLE: Final[dict[tuple[str, str | None], MeterCodeRole]] = {
    ("1-1:1.9.0", "G.01"): MeterCodeRole.CONSUMPTION,
    ("1-1:1.9.0", "G.01T"): MeterCodeRole.CONSUMPTION_PARTICIPATION,
    ("1-1:2.9.0", "G.01"): MeterCodeRole.PRODUCTION,
    ("1-1:2.9.0", "G.01T"): MeterCodeRole.PRODUCTION_PARTICIPATION,
    ("1-1:2.9.0", "G.02"): MeterCodeRole.COMMUNITY_SHARE,
    ("1-1:2.9.0", "G.03"): MeterCodeRole.COMMUNITY_RECEIVED,
    ("1-1:2.9.0", "G.03R"): MeterCodeRole.COMMUNITY_RECEIVED_RENEWABLE,
    ("1-1:2.9.0", "P.01"): MeterCodeRole.COMMUNITY_SURPLUS,
    ("1-1:2.9.0", "P.01T"): MeterCodeRole.RESIDUAL_SURPLUS,
}

_METER_CODE = re.compile(
    r"^(?P<obis>(?P<a>\d{1,3})-(?P<b>\d{1,3}):(?P<c>\d{1,3})\.(?P<d>\d{1,3})\.(?P<e>\d{1,3})"
    r"(?:\*(?P<f>\d{1,3}))?)(?:\s+(?P<suffix>[A-Za-z][A-Za-z0-9.]*))?$"
)


@dataclass(frozen=True)
class MeterCode:
    """A ConsumptionRecord meter code such as ``1-1:2.9.0 P.01``: OBIS part and EDA suffix."""

    text: str
    obis: str
    suffix: str | None
    role: MeterCodeRole
    direction: EnergyDirection

    def __str__(self) -> str:
        return self.text


def parse_meter_code(text: str) -> MeterCode:
    """Split a meter code into its OBIS part and suffix and look up its meaning.

    Raises :class:`ValueError` for text that is not ``A-B:C.D.E[*F][ SUFFIX]``.
    """
    normalized = " ".join(text.split())
    match = _METER_CODE.match(normalized)
    if match is None:
        raise ValueError(
            f"meter code {text!r} is not an OBIS code A-B:C.D.E with an optional suffix "
            "such as '1-1:1.9.0 G.01'"
        )
    obis = match["obis"]
    suffix = match["suffix"]
    c_value = int(match["c"])
    direction = {1: EnergyDirection.IMPORT, 2: EnergyDirection.EXPORT}.get(
        c_value, EnergyDirection.OTHER
    )
    role = _ROLE_TABLE.get((obis, suffix.upper() if suffix else None), MeterCodeRole.OTHER)
    return MeterCode(normalized, obis, suffix, role, direction)


@dataclass(frozen=True, eq=False)
class EnergySeries:
    """The positions (``EP``) of one ``EnergyData`` block, as arrays sorted by start.

    ``start``/``end``: UTC epoch seconds of ``DTF``/``DTT``; ``quantity``: ``BQ`` converted to
    ``unit`` (kWh, or kvarh for reactive energy); ``quality``: :class:`Quality` codes from ``MM``.
    ``interval`` is the ``MeteringIntervall`` of the enclosing ``Energy`` block (``QH``, ``H``,
    ``D`` or ``V``), ``period_start``/``period_end`` its metering period (UTC epoch seconds).
    """

    meter_code: MeterCode
    uom: str
    unit: str
    interval: str
    period_start: int
    period_end: int
    declared_count: int
    metering_reason: str | None
    start: IntArray
    end: IntArray
    quantity: FloatArray
    quality: QualityArray
    line: int | None = None

    def __len__(self) -> int:
        return len(self.start)

    @property
    def total(self) -> float:
        """Sum of all quantities (kWh or kvarh)."""
        return float(self.quantity.sum())


@dataclass(frozen=True)
class ConsumptionRecord:
    """One parsed ``ConsumptionRecord`` message.

    ``schema_version`` is the version the message declares; ``validated_with`` names the XSD it
    was validated with (the nearest shipped one for versions without their own XSD).
    ``warnings`` holds problems that did not stop parsing (see ``docs/format-eda.md``).
    """

    source: str
    schema_version: str
    validated_with: str
    message_code: str
    message_id: str
    conversation_id: str
    sender: str
    receiver: str
    document_created: datetime | None
    document_mode: str
    duplicate: bool
    process_date: date | None
    metering_point: str
    ec_id: str | None
    series: tuple[EnergySeries, ...]
    warnings: tuple[Problem, ...] = field(default=())

    def by_meter_code(self, code: str) -> tuple[EnergySeries, ...]:
        """All series whose meter code text equals ``code`` (whitespace-normalised)."""
        wanted = " ".join(code.split())
        return tuple(s for s in self.series if s.meter_code.text == wanted)


# --------------------------------------------------------------------------------------------
# XML parsing and schema validation
# --------------------------------------------------------------------------------------------


def _schema_bytes(name: str) -> bytes:
    return (resources.files("lastgang.ingest") / "schemas" / "eda" / name).read_bytes()


class _SchemaResolver(etree.Resolver):
    """Resolves the import of the common types XSD from the package, never from the network."""

    def resolve(
        self, system_url: str | None, public_id: str | None, context: object
    ) -> _InputDocument | None:
        if system_url is not None and system_url.rsplit("/", 1)[-1] == _COMMON_TYPES_FILE:
            return self.resolve_string(_schema_bytes(_COMMON_TYPES_FILE), context)
        return None


@cache
def _schema(minor: int) -> tuple[etree.XMLSchema, str]:
    """The compiled XSD for schema version ``01.<minor>`` and the file name it came from."""
    target = minor if minor in _SCHEMA_FILES else 40
    name = _SCHEMA_FILES[target]
    parser = etree.XMLParser(no_network=True, resolve_entities=False)
    parser.resolvers.add(_SchemaResolver())
    doc = etree.fromstring(_schema_bytes(name), parser, base_url=name).getroottree()
    if target != minor:
        # Before 01.40 the reading method (MM) was optional.
        for element in doc.iter(f"{{{_XSD_NS}}}element"):
            if element.get("name") == "MM":
                element.set("minOccurs", "0")
        name = f"{name} (MM optional, as before 01.40)"
    return etree.XMLSchema(doc), name


def _input_parser() -> etree.XMLParser:
    """A parser for untrusted bytes: no DTD loading, no entity expansion, no network."""
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )


def _short(message: str) -> str:
    """An lxml message without the long namespace URIs."""
    return re.sub(r"\{[a-z][a-z0-9+.-]*:[^}]*\}", "", message)


def _local(tag: object) -> str:
    return etree.QName(tag).localname if isinstance(tag, str) else ""


# --------------------------------------------------------------------------------------------
# Time helpers
# --------------------------------------------------------------------------------------------


def _parse_u_times(texts: Sequence[str]) -> tuple[IntArray, IntArray, list[int]]:
    """``DateTimeU`` strings (``YYYY-MM-DDTHH:MM:SS+HH:MM``) to UTC epoch seconds and offsets.

    Returns epochs, offsets in seconds, and the indices of strings that could not be read. The
    schema pattern has been checked before, so the strings normally take the vectorised path;
    anything unusual falls back to one string at a time.
    """
    n = len(texts)
    epochs = np.zeros(n, dtype=np.int64)
    offsets = np.zeros(n, dtype=np.int64)
    if n == 0:
        return epochs, offsets, []
    arr = np.asarray(texts, dtype=np.str_)
    if arr.dtype.itemsize == 25 * 4 and bool((np.char.str_len(arr) == 25).all()):
        try:
            chars = np.char.encode(arr, "ascii").view(np.uint8).reshape(n, 25).copy()
        except UnicodeEncodeError:
            chars = None
        if chars is not None:
            fast = _parse_u_chars(chars)
            if fast is not None:
                return fast[0], fast[1], []
    bad: list[int] = []
    for i, text in enumerate(texts):
        parsed = _parse_one_u_time(text)
        if parsed is None:
            bad.append(i)
        else:
            epochs[i], offsets[i] = parsed
    return epochs, offsets, bad


def _parse_u_chars(chars: NDArray[np.uint8]) -> tuple[IntArray, IntArray] | None:
    """The vectorised path of :func:`_parse_u_times` over an ``(n, 25)`` array of ASCII codes."""
    digit = (chars >= ord("0")) & (chars <= ord("9"))
    sign = chars[:, 19]
    if not (
        bool(np.isin(sign, [ord("+"), ord("-")]).all())
        and bool((chars[:, 22] == ord(":")).all())
        and bool(digit[:, [20, 21, 23, 24]].all())
    ):
        return None
    value = chars.astype(np.int64) - ord("0")
    offset = (value[:, 20] * 10 + value[:, 21]) * 3600 + (value[:, 23] * 10 + value[:, 24]) * 60
    offset = np.where(sign == ord("-"), -offset, offset)
    # xsd:dateTime allows 24:00:00 for the end of a day
    hour24 = (chars[:, 11] == ord("2")) & (chars[:, 12] == ord("4"))
    if bool(hour24.any()):
        if not bool((chars[hour24, 13:19] == np.frombuffer(b":00:00", np.uint8)).all()):
            return None
        chars[hour24, 11:13] = ord("0")
    local_text = np.ascontiguousarray(chars[:, :19]).view("S19").ravel()
    try:
        local = local_text.astype("datetime64[s]").astype(np.int64)
    except ValueError:
        return None
    local = local + np.where(hour24, 86_400, 0)
    return (local - offset).astype(np.int64), offset.astype(np.int64)


def _parse_one_u_time(text: str) -> tuple[int, int] | None:
    extra = 0
    if len(text) >= 19 and text[10:11] == "T" and text[11:13] == "24":
        if text[13:19] != ":00:00":
            return None
        text = text[:11] + "00" + text[13:]
        extra = 86_400
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    offset = value.utcoffset()
    if offset is None:
        return None
    return int(value.timestamp()) + extra, int(offset.total_seconds())


def _parse_u_time(text: str) -> tuple[int, int] | None:
    epochs, offsets, bad = _parse_u_times([text])
    if bad:
        return None
    return int(epochs[0]), int(offsets[0])


def _vienna_offsets(epochs: IntArray) -> IntArray:
    """UTC offset (seconds) of Austrian legal time at each instant (via tzdata)."""
    if len(epochs) == 0:
        return np.zeros(0, dtype=np.int64)
    hours = epochs // 3600
    unique, inverse = np.unique(hours, return_inverse=True)
    per_hour = np.array(
        [
            int(datetime.fromtimestamp(int(h) * 3600, VIENNA).utcoffset().total_seconds())  # type: ignore[union-attr]
            for h in unique.tolist()
        ],
        dtype=np.int64,
    )
    return per_hour[inverse]


def _local_text(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, VIENNA).isoformat()


def _local_day_bounds(epoch: int) -> tuple[int, int] | None:
    """``(midnight, next midnight)`` of the local day starting at ``epoch``, or ``None`` when
    ``epoch`` is not a local midnight."""
    local = datetime.fromtimestamp(epoch, VIENNA)
    if (local.hour, local.minute, local.second) != (0, 0, 0):
        return None
    next_day = datetime.combine(local.date() + timedelta(days=1), time(0), VIENNA)
    return epoch, int(next_day.timestamp())


def _count_local_days(start: int, end: int) -> int | None:
    """Number of whole local days between two local midnights, else ``None``."""
    a = datetime.fromtimestamp(start, VIENNA)
    b = datetime.fromtimestamp(end, VIENNA)
    if (a.hour, a.minute, a.second) != (0, 0, 0) or (b.hour, b.minute, b.second) != (0, 0, 0):
        return None
    return (b.date() - a.date()).days


# --------------------------------------------------------------------------------------------
# The parser
# --------------------------------------------------------------------------------------------


class _Problems:
    """Problems of one message, errors and warnings, with the source filled in."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.items: list[Problem] = []

    def error(
        self,
        reason: str,
        line: int | None = None,
        *,
        meter: str | None = None,
        column: str | None = None,
    ) -> None:
        self.items.append(Problem(reason, self.source, line, column, meter))

    def warn(self, reason: str, line: int | None = None, *, meter: str | None = None) -> None:
        self.items.append(Problem(reason, self.source, line, meter=meter, severity="warning"))

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.items if p.severity == "error"]

    @property
    def warnings(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.items if p.severity == "warning")

    def raise_if_errors(self, message: str) -> None:
        errors = self.errors
        if errors:
            raise InvalidInput(f"{message} ({len(errors)} problem(s))", tuple(self.items))


def _summarise(problems: _Problems, reasons: Iterable[tuple[str, int | None]], meter: str) -> None:
    """Report the first few of many similar problems, then one line with the count."""
    items = list(reasons)
    for reason, line in items[:_MAX_REPORTED]:
        problems.error(reason, line, meter=meter)
    if len(items) > _MAX_REPORTED:
        problems.error(
            f"... and {len(items) - _MAX_REPORTED} more such problems", None, meter=meter
        )


def parse_consumption_record(data: bytes, source: str) -> ConsumptionRecord:
    """Parse one ebUtilities ConsumptionRecord message (schema versions 01.30 to 01.41).

    ``source`` names the input in problems (usually the file name). Raises
    :class:`~lastgang.errors.InvalidInput` carrying every problem found (with line numbers) when
    the bytes are not well-formed XML, not a ConsumptionRecord of a supported version, not valid
    against its schema, or break the rules listed in ``docs/format-eda.md``.
    """
    problems = _Problems(source)
    raw = bytes(data)
    if not raw.strip():
        problems.error("the file is empty: expected an ebUtilities ConsumptionRecord XML message")
        problems.raise_if_errors(f"{source} is not a ConsumptionRecord")
    parser = _input_parser()
    try:
        root = etree.fromstring(raw, parser)
    except etree.XMLSyntaxError as exc:
        entries = list(parser.error_log) or []  # this parse's errors only (exc's log is global)
        if entries:
            for entry in entries:
                problems.error(f"not well-formed XML: {entry.message}", entry.line or None)
        else:
            problems.error(f"not well-formed XML: {exc.msg}", exc.lineno or None)
        problems.raise_if_errors(f"{source} is not well-formed XML")
        raise AssertionError("unreachable") from exc  # pragma: no cover

    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:
        problems.error(
            "the document has a DOCTYPE declaration; ConsumptionRecord messages have none and "
            "lastgang refuses DTDs in untrusted input",
            1,
        )
        problems.raise_if_errors(f"{source} is not a ConsumptionRecord")

    minor = _check_root(root, problems)
    problems.raise_if_errors(f"{source} is not a supported ConsumptionRecord")
    assert minor is not None

    ns = CR_NAMESPACE_PREFIX + "01p40" if minor not in _SCHEMA_FILES else _namespace(root)
    if minor not in _SCHEMA_FILES:
        _rewrite_to_01p40(root)
    schema, schema_name = _schema(minor)
    if not schema.validate(root):
        for entry in schema.error_log:
            column = str(entry.column) if entry.column else None
            problems.error(
                f"schema {schema_name}: {_short(entry.message)}", entry.line, column=column
            )
        problems.raise_if_errors(f"{source} does not match the ConsumptionRecord schema")

    record = _extract(root, ns, minor, schema_name, problems)
    problems.raise_if_errors(f"{source}: the ConsumptionRecord has errors")
    return record


def _namespace(root: etree._Element) -> str:
    return etree.QName(root).namespace or ""


def _check_root(root: etree._Element, problems: _Problems) -> int | None:
    """The minor schema version of the message, after checking namespace and SchemaVersion."""
    qname = etree.QName(root)
    ns = qname.namespace or ""
    match = _CR_NAMESPACE.fullmatch(ns)
    if qname.localname != "ConsumptionRecord" or match is None:
        problems.error(
            f"root element is {qname.localname!r} in namespace {ns or '(none)'!r}: expected "
            f"ConsumptionRecord in namespace {CR_NAMESPACE_PREFIX}01pNN",
            root.sourceline,
        )
        return None
    minor = int(match.group(1))
    supported = f"{SUPPORTED_VERSIONS[0]} to {SUPPORTED_VERSIONS[-1]}"
    if f"01.{minor:02d}" not in SUPPORTED_VERSIONS:
        problems.error(
            f"ConsumptionRecord schema version 01.{minor:02d} is not supported ({supported})",
            root.sourceline,
        )
        return None
    directory = root.find(f"{{{ns}}}MarketParticipantDirectory")
    declared = directory.get("SchemaVersion") if directory is not None else None
    if declared is not None and declared.strip() != f"01.{minor:02d}":
        problems.error(
            f"SchemaVersion {declared!r} does not match the namespace version 01.{minor:02d}",
            directory.sourceline if directory is not None else None,
        )
        return None
    return minor


def _rewrite_to_01p40(root: etree._Element) -> None:
    """Move an older message into the 01.40 namespaces so the 01.40 XSD can validate it."""
    target = CR_NAMESPACE_PREFIX + "01p40"
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue
        qname = etree.QName(element)
        namespace = qname.namespace or ""
        if _CR_NAMESPACE.fullmatch(namespace):
            element.tag = f"{{{target}}}{qname.localname}"
        elif _COMMON_NAMESPACE.fullmatch(namespace):
            element.tag = f"{{{_COMMON_TYPES_NS}}}{qname.localname}"
        if qname.localname == "MarketParticipantDirectory" and element.get("SchemaVersion"):
            element.set("SchemaVersion", "01.40")
    etree.cleanup_namespaces(root)


def _text(element: etree._Element | None) -> str:
    if element is None or element.text is None:
        return ""
    return " ".join(element.text.split())


def _child(element: etree._Element, local: str) -> etree._Element | None:
    for child in element:
        if _local(child.tag) == local:
            return child
    return None


def _descendant(element: etree._Element, *path: str) -> etree._Element | None:
    current: etree._Element | None = element
    for local in path:
        if current is None:
            return None
        current = _child(current, local)
    return current


def _parse_datetime(text: str) -> datetime | None:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=VIENNA)
    return value.astimezone(UTC)


def _extract(
    root: etree._Element, ns: str, minor: int, schema_name: str, problems: _Problems
) -> ConsumptionRecord:
    directory = _child(root, "MarketParticipantDirectory")
    process = _child(root, "ProcessDirectory")
    assert directory is not None and process is not None  # guaranteed by the schema

    message_code = _text(_child(directory, "MessageCode"))
    if message_code != "DATEN_CRMSG":
        problems.warn(
            f"MessageCode is {message_code!r}, not DATEN_CRMSG; the energy data is read anyway",
            _child(directory, "MessageCode").sourceline,  # type: ignore[union-attr]
        )
    created_text = _text(_descendant(directory, "RoutingHeader", "DocumentCreationDateTime"))
    process_date_text = _text(_child(process, "ProcessDate"))
    try:
        process_date: date | None = date.fromisoformat(process_date_text[:10])
    except ValueError:
        process_date = None

    metering_point = _text(_child(process, "MeteringPoint"))
    series: list[EnergySeries] = []
    for energy in process:
        if _local(energy.tag) == "Energy":
            series.extend(_energy_block(energy, metering_point, problems))

    _check_cross_series_overlap(series, metering_point, problems)

    return ConsumptionRecord(
        source=problems.source,
        schema_version=f"01.{minor:02d}",
        validated_with=schema_name,
        message_code=message_code,
        message_id=_text(_child(process, "MessageId")),
        conversation_id=_text(_child(process, "ConversationId")),
        sender=_text(_descendant(directory, "RoutingHeader", "Sender", "MessageAddress")),
        receiver=_text(_descendant(directory, "RoutingHeader", "Receiver", "MessageAddress")),
        document_created=_parse_datetime(created_text),
        document_mode=(directory.get("DocumentMode") or "").strip(),
        duplicate=(directory.get("Duplicate") or "").strip() in ("true", "1"),
        process_date=process_date,
        metering_point=metering_point,
        ec_id=_text(_child(process, "ECID")) or None,
        series=tuple(series),
        warnings=problems.warnings,
    )


def _energy_block(
    energy: etree._Element, metering_point: str, problems: _Problems
) -> list[EnergySeries]:
    reason = _text(_child(energy, "MeteringReason")) or None
    start_el = _child(energy, "MeteringPeriodStart")
    end_el = _child(energy, "MeteringPeriodEnd")
    interval = _text(_child(energy, "MeteringIntervall"))
    count_el = _child(energy, "NumberOfMeteringIntervall")
    declared = int(_text(count_el))

    period_start = _parse_u_time(_text(start_el))
    period_end = _parse_u_time(_text(end_el))
    line = energy.sourceline
    if period_start is None or period_end is None:
        problems.error(
            "MeteringPeriodStart/End is not a date-time with offset", line, meter=metering_point
        )
        return []
    ps, pe = period_start[0], period_end[0]
    if pe <= ps:
        problems.error(
            f"MeteringPeriodEnd {_text(end_el)} is not after MeteringPeriodStart {_text(start_el)}",
            end_el.sourceline if end_el is not None else line,
            meter=metering_point,
        )
        return []
    _check_period_count(interval, ps, pe, declared, count_el, metering_point, problems)

    out: list[EnergySeries] = []
    for data in energy:
        if _local(data.tag) == "EnergyData":
            built = _energy_data(data, interval, ps, pe, declared, reason, metering_point, problems)
            if built is not None:
                out.append(built)
    return out


def _check_period_count(
    interval: str,
    ps: int,
    pe: int,
    declared: int,
    count_el: etree._Element | None,
    meter: str,
    problems: _Problems,
) -> None:
    line = count_el.sourceline if count_el is not None else None
    span = f"{_local_text(ps)} to {_local_text(pe)}"
    if interval in _FIXED_INTERVAL_SECONDS:
        step = _FIXED_INTERVAL_SECONDS[interval]
        if (pe - ps) % step or ps % step:
            problems.error(
                f"metering period {span} is not a whole number of {interval} intervals",
                line,
                meter=meter,
            )
        elif (pe - ps) // step != declared:
            problems.error(
                f"NumberOfMeteringIntervall is {declared}, but the metering period {span} has "
                f"{(pe - ps) // step} {interval} intervals",
                line,
                meter=meter,
            )
    elif interval == "D":
        days = _count_local_days(ps, pe)
        if days is None:
            problems.error(
                f"metering period {span} does not start and end at local midnight, as daily "
                "(D) values must",
                line,
                meter=meter,
            )
        elif days != declared:
            problems.error(
                f"NumberOfMeteringIntervall is {declared}, but the metering period {span} has "
                f"{days} days",
                line,
                meter=meter,
            )


def _energy_data(
    data: etree._Element,
    interval: str,
    ps: int,
    pe: int,
    declared: int,
    reason: str | None,
    metering_point: str,
    problems: _Problems,
) -> EnergySeries | None:
    code_text = data.get("MeterCode") or ""
    uom = (data.get("UOM") or "").strip()
    line = data.sourceline
    meter = f"{metering_point} {code_text}".strip()
    ok = True
    try:
        meter_code = parse_meter_code(code_text)
    except ValueError as exc:
        problems.error(str(exc), line, meter=metering_point)
        meter_code = MeterCode(code_text, "", None, MeterCodeRole.OTHER, EnergyDirection.OTHER)
        ok = False
    if uom not in _UNITS:
        problems.error(
            f"UOM {uom!r} is not an energy unit lastgang reads (KWH, MWH, GWH, KVARH, MVARH)",
            line,
            meter=meter,
        )
        ok = False
    unit, factor = _UNITS.get(uom, ("", 1.0))

    dtf, dtt, mm, bq, lines = _positions(data)
    n = len(dtf)
    line_arr = np.array(lines, dtype=np.int64)
    if n != declared:
        problems.error(
            f"NumberOfMeteringIntervall is {declared}, but the block has {n} positions (EP)",
            line,
            meter=meter,
        )

    start, start_off, bad_start = _parse_u_times(dtf)
    end, end_off, bad_end = _parse_u_times(dtt)
    bad = sorted(set(bad_start) | set(bad_end))
    if bad:
        _summarise(
            problems,
            (
                (f"DTF/DTT {dtf[i]!r}/{dtt[i]!r} is not a date-time with offset", lines[i])
                for i in bad
            ),
            meter,
        )
        return None

    try:
        quantity = np.array(bq, dtype=np.float64) * factor
    except ValueError:
        problems.error("BQ holds a value that is not a decimal number", line, meter=meter)
        return None
    quality = _quality(mm, lines, meter, problems)

    ok &= _check_positions(interval, start, end, line_arr, meter, problems)
    ok &= _check_inside_period(start, end, ps, pe, line_arr, meter, problems)
    _check_offsets(start, start_off, end, end_off, line_arr, meter, problems)
    negative = np.flatnonzero(quantity < 0)
    if len(negative):
        _summarise(
            problems,
            (
                (
                    f"negative quantity {bq[i]} {uom} at {dtf[i]}: energy per period is never "
                    "negative; ask the sender for corrected data",
                    lines[i],
                )
                for i in negative.tolist()
            ),
            meter,
        )
        ok = False
    if not ok:
        return None

    order = np.argsort(start, kind="stable")
    return EnergySeries(
        meter_code=meter_code,
        uom=uom,
        unit=unit,
        interval=interval,
        period_start=ps,
        period_end=pe,
        declared_count=declared,
        metering_reason=reason,
        start=start[order],
        end=end[order],
        quantity=quantity[order],
        quality=quality[order],
        line=line,
    )


def _positions(
    data: etree._Element,
) -> tuple[list[str], list[str], list[str], list[str], list[int]]:
    """The DTF, DTT, MM and BQ texts and the line of every ``EP`` of an ``EnergyData`` block.

    One XPath per field does the work in C; a block where a field is missing in some position
    (MM before 01.40) is read position by position.
    """
    ns = etree.QName(data).namespace or ""
    ep_tag = f"{{{ns}}}EP"
    eps = data.findall(ep_tag)
    lines = [ep.sourceline or 0 for ep in eps]
    nsmap = {"cr": ns}
    fields: list[list[str]] = []
    for name in ("DTF", "DTT", "MM", "BQ"):
        found = data.xpath(f"cr:EP/cr:{name}/text()", namespaces=nsmap)
        assert isinstance(found, list)
        fields.append([str(text).strip() for text in found])
    if all(len(values) == len(eps) for values in fields):
        return fields[0], fields[1], fields[2], fields[3], lines
    columns: dict[str, list[str]] = {"DTF": [], "DTT": [], "MM": [], "BQ": []}
    for ep in eps:
        values = dict.fromkeys(columns, "")
        for child in ep:
            name = _local(child.tag)
            if name in values:
                values[name] = _text(child)
        for name, column in columns.items():
            column.append(values[name])
    return columns["DTF"], columns["DTT"], columns["MM"], columns["BQ"], lines


def _quality(mm: list[str], lines: list[int], meter: str, problems: _Problems) -> QualityArray:
    codes = np.asarray(mm, dtype=np.str_)
    out = np.full(len(mm), int(Quality.L3), dtype=np.int8)
    known = np.zeros(len(mm), dtype=bool)
    for text, quality in _QUALITY_CODES.items():
        hit = codes == text
        out[hit] = int(quality)
        known |= hit
    unknown = np.flatnonzero(~known)
    if not len(unknown):
        return out
    first_line = lines[int(unknown[0])]
    missing = int((codes[unknown] == "").sum())
    if missing:
        problems.warn(
            f"{missing} position(s) carry no MM quality code (allowed before schema 01.40); "
            "they are taken as L3 (not billable) until the grid operator confirms them",
            first_line,
            meter=meter,
        )
    values, counts = np.unique(codes[unknown], return_counts=True)
    for code, count in zip(values.tolist(), counts.tolist(), strict=True):
        if code == "":
            continue
        if code in _READING_METHOD_CODES:
            problems.warn(
                f"{count} position(s) carry MM {code!r}, a reading-method code (Ableseart), not "
                "a quality flag L1/L2/L3; they are taken as L3 (not billable)",
                first_line,
                meter=meter,
            )
        else:  # pragma: no cover - the schema only allows the codes above
            problems.error(
                f"MM {code!r} is not a quality code (L1, L2, L3)", first_line, meter=meter
            )
    return out


def _check_positions(
    interval: str,
    start: IntArray,
    end: IntArray,
    lines: IntArray,
    meter: str,
    problems: _Problems,
) -> bool:
    ok = True
    if interval in _FIXED_INTERVAL_SECONDS:
        step = _FIXED_INTERVAL_SECONDS[interval]
        wrong = np.flatnonzero((end - start != step) | (start % step != 0))
        if len(wrong):
            name = "15 minutes" if interval == "QH" else "one hour"
            _summarise(
                problems,
                (
                    (
                        f"position {_local_text(int(start[i]))} to {_local_text(int(end[i]))} "
                        f"is not exactly {name} on the {interval} grid",
                        int(lines[i]),
                    )
                    for i in wrong.tolist()
                ),
                meter,
            )
            ok = False
    elif interval == "D":
        reasons: list[tuple[str, int | None]] = []
        for i in range(len(start)):
            bounds = _local_day_bounds(int(start[i]))
            if bounds is None or bounds[1] != int(end[i]):
                reasons.append(
                    (
                        f"position {_local_text(int(start[i]))} to {_local_text(int(end[i]))} "
                        "is not exactly one local day (midnight to midnight, Europe/Vienna)",
                        int(lines[i]),
                    )
                )
        if reasons:
            _summarise(problems, reasons, meter)
            ok = False
    else:
        wrong = np.flatnonzero(end <= start)
        if len(wrong):
            _summarise(
                problems,
                (
                    (
                        f"position {_local_text(int(start[i]))} to {_local_text(int(end[i]))} "
                        "does not end after it starts",
                        int(lines[i]),
                    )
                    for i in wrong.tolist()
                ),
                meter,
            )
            ok = False

    order = np.argsort(start, kind="stable")
    s, e, ln = start[order], end[order], lines[order]
    overlap = np.flatnonzero(s[1:] < e[:-1])
    if len(overlap):
        _summarise(
            problems,
            (
                (
                    f"position {_local_text(int(s[i + 1]))} to {_local_text(int(e[i + 1]))} "
                    f"(line {int(ln[i + 1])}) overlaps position {_local_text(int(s[i]))} to "
                    f"{_local_text(int(e[i]))} (line {int(ln[i])})",
                    int(ln[i + 1]),
                )
                for i in overlap.tolist()
            ),
            meter,
        )
        ok = False
    return ok


def _check_inside_period(
    start: IntArray,
    end: IntArray,
    ps: int,
    pe: int,
    lines: IntArray,
    meter: str,
    problems: _Problems,
) -> bool:
    outside = np.flatnonzero((start < ps) | (end > pe))
    if not len(outside):
        return True
    _summarise(
        problems,
        (
            (
                f"position {_local_text(int(start[i]))} to {_local_text(int(end[i]))} lies "
                f"outside the metering period {_local_text(ps)} to {_local_text(pe)}",
                int(lines[i]),
            )
            for i in outside.tolist()
        ),
        meter,
    )
    return False


def _check_offsets(
    start: IntArray,
    start_off: IntArray,
    end: IntArray,
    end_off: IntArray,
    lines: IntArray,
    meter: str,
    problems: _Problems,
) -> None:
    """Warn when a timestamp's offset is not Austrian legal time at that instant (TOR-4.2).

    The instant itself is unambiguous either way, so this is a warning. An end instant on a
    clock change may carry the offset of either side.
    """
    legal_start = _vienna_offsets(start)
    legal_end_before = _vienna_offsets(end - 1)
    legal_end_after = _vienna_offsets(end)
    wrong = np.flatnonzero(
        (start_off != legal_start) | ((end_off != legal_end_before) & (end_off != legal_end_after))
    )
    if len(wrong):
        i = int(wrong[0])
        problems.warn(
            f"{len(wrong)} position(s) carry a UTC offset that is not Austrian legal time "
            f"(first: {_local_text(int(start[i]))}); the instants are used as given",
            int(lines[i]),
            meter=meter,
        )


def _check_cross_series_overlap(
    series: list[EnergySeries], metering_point: str, problems: _Problems
) -> None:
    """Two blocks with the same meter code must not cover the same time twice."""
    by_code: dict[str, list[EnergySeries]] = {}
    for s in series:
        by_code.setdefault(s.meter_code.text, []).append(s)
    for code, group in by_code.items():
        if len(group) < 2:
            continue
        start = np.concatenate([s.start for s in group])
        end = np.concatenate([s.end for s in group])
        order = np.argsort(start, kind="stable")
        s_sorted, e_sorted = start[order], end[order]
        overlap = np.flatnonzero(s_sorted[1:] < e_sorted[:-1])
        if len(overlap):
            i = int(overlap[0])
            lines = sorted({s.line for s in group if s.line is not None})
            problems.error(
                f"meter code {code} appears in {len(group)} blocks (lines "
                f"{', '.join(map(str, lines))}) that overlap, first at "
                f"{_local_text(int(s_sorted[i + 1]))}: the same period would be counted twice",
                lines[0] if lines else None,
                meter=f"{metering_point} {code}",
            )
