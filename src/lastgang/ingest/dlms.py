"""Smart meter customer interface (Kundenschnittstelle): encrypted DLMS/COSEM push telegrams.

Austrian smart meters push a DLMS/COSEM ``data-notification`` every few seconds on their customer
interface, encrypted with a per-meter key that the grid operator hands to the customer. The APDU
is a ``general-glo-ciphering`` APDU (tag ``0xDB``): system title (8 bytes), security control byte,
frame counter (4 bytes), AES-128-GCM ciphertext and, with authentication, a 12-byte tag. It
arrives in M-Bus long frames or HDLC frames (see :mod:`lastgang.ingest.mbus`), often split over
several frames.

:class:`StreamDecoder` turns a byte stream fed in chunks of any size into :class:`Telegram`
values; :func:`decode_stream` does the same for a whole byte string. Both are pure: the caller
reads the serial port, socket or file. What is accepted, the OBIS codes and units, and every error
are described in ``docs/format-dlms.md``.

Decryption: IV = system title (8 bytes) + frame counter (4 bytes). Security byte ``0x20``
(encryption only, no tag): GCM without tag, that is AES-CTR starting at counter
``IV || 00000002``. Security byte ``0x30`` (authenticated encryption): the 12-byte GCM tag is
verified with the additional data ``SC || AK`` when an authentication key ``AK`` is given.
A wrong key never yields values: the plaintext must parse completely as a data-notification, else
:class:`DecryptionError` is raised.
"""

from __future__ import annotations

import string
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Final, NamedTuple
from zoneinfo import ZoneInfo

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from lastgang.errors import InvalidInput, Problem
from lastgang.ingest.mbus import Frame, FrameKind, FrameScanner, Skipped

__all__ = [
    "DecodeResult",
    "DecryptionError",
    "MissingKeyError",
    "Reading",
    "StreamDecoder",
    "Telegram",
    "decode_stream",
    "decrypt_apdu",
    "obis_text",
]

VIENNA: Final = ZoneInfo("Europe/Vienna")

TAG_GENERAL_GLO_CIPHERING: Final = 0xDB
TAG_DATA_NOTIFICATION: Final = 0x0F
SECURITY_ENCRYPTED: Final = 0x20
SECURITY_AUTHENTICATED: Final = 0x10
TAG_LENGTH: Final = 12
#: Largest APDU reassembled from segments; anything longer is dropped as garbage.
MAX_APDU: Final = 65_536
_MAX_DEPTH: Final = 16

KeySpec = Mapping[str, bytes] | bytes


class DecryptionError(InvalidInput):
    """An encrypted telegram that cannot be decrypted with the key given for its meter.

    ``telegrams`` holds the telegrams decoded from the same input before the error was raised,
    so a streaming reader loses nothing it could decode.
    """

    def __init__(
        self,
        message: str,
        problems: Sequence[Problem] = (),
        telegrams: Sequence[Telegram] = (),
    ) -> None:
        super().__init__(message, problems)
        self.telegrams: tuple[Telegram, ...] = tuple(telegrams)


class MissingKeyError(DecryptionError):
    """An encrypted telegram from a meter for which no key was given."""


# --------------------------------------------------------------------------------------------
# Values
# --------------------------------------------------------------------------------------------

# DLMS unit codes (IEC 62056-62 / Blue Book): code -> (unit after conversion, decimal shift)
_UNITS: Final[dict[int, tuple[str, int]]] = {
    1: ("a", 0),
    2: ("mo", 0),
    3: ("wk", 0),
    4: ("d", 0),
    5: ("h", 0),
    6: ("min", 0),
    7: ("s", 0),
    8: ("°", 0),
    9: ("°C", 0),
    27: ("kW", -3),  # W
    28: ("kVA", -3),  # VA
    29: ("kvar", -3),  # var
    30: ("kWh", -3),  # Wh
    31: ("kVAh", -3),  # VAh
    32: ("kvarh", -3),  # varh
    33: ("A", 0),
    34: ("C", 0),
    35: ("V", 0),
    44: ("Hz", 0),
    255: ("", 0),  # no unit (count, power factor)
}


@dataclass(frozen=True)
class Reading:
    """One COSEM value: ``value = raw x 10^scaler``, converted to ``unit``.

    Energy arrives in Wh, power in W: lastgang states them in kWh and kW (TOR-7.2), so ``value``
    of ``1-0:1.8.0`` is kWh. ``dlms_unit`` and ``scaler`` are kept as transmitted.
    """

    obis: str
    value: float
    unit: str
    raw: int | float
    scaler: int
    dlms_unit: int | None


@dataclass(frozen=True)
class Telegram:
    """One decoded data-notification.

    ``clock`` is the meter clock as an aware datetime (``None`` when the meter sent none or an
    unspecified one); ``system_title`` the hex system title of an encrypted telegram;
    ``authenticated`` whether a GCM tag was verified.
    """

    offset: int
    link: FrameKind
    system_title: str | None
    frame_counter: int | None
    security: int | None
    authenticated: bool
    invoke_id: int
    meter_number: str | None
    clock: datetime | None
    clock_status: int | None
    readings: tuple[Reading, ...]
    texts: Mapping[str, str] = field(default_factory=dict)

    def reading(self, obis: str) -> Reading | None:
        """The reading with OBIS code ``obis`` (``1-0:1.8.0``; ``1.8.0`` means ``1-0:1.8.0``)."""
        wanted = obis if ":" in obis else f"1-0:{obis}"
        for reading in self.readings:
            if reading.obis == wanted:
                return reading
        return None

    def value(self, obis: str) -> float | None:
        reading = self.reading(obis)
        return None if reading is None else reading.value

    @property
    def import_kwh(self) -> float | None:
        """Active energy import +A register, ``1-0:1.8.0``, kWh."""
        return self.value("1-0:1.8.0")

    @property
    def export_kwh(self) -> float | None:
        """Active energy export -A register, ``1-0:2.8.0``, kWh."""
        return self.value("1-0:2.8.0")

    @property
    def import_kw(self) -> float | None:
        """Instantaneous active power import +P, ``1-0:1.7.0``, kW."""
        return self.value("1-0:1.7.0")

    @property
    def export_kw(self) -> float | None:
        """Instantaneous active power export -P, ``1-0:2.7.0``, kW."""
        return self.value("1-0:2.7.0")

    @property
    def voltage(self) -> tuple[float | None, float | None, float | None]:
        """Voltage L1, L2, L3 (``32.7.0``, ``52.7.0``, ``72.7.0``), V."""
        return (self.value("1-0:32.7.0"), self.value("1-0:52.7.0"), self.value("1-0:72.7.0"))

    @property
    def current(self) -> tuple[float | None, float | None, float | None]:
        """Current L1, L2, L3 (``31.7.0``, ``51.7.0``, ``71.7.0``), A."""
        return (self.value("1-0:31.7.0"), self.value("1-0:51.7.0"), self.value("1-0:71.7.0"))

    @property
    def power_factor(self) -> float | None:
        """Power factor (Leistungsfaktor), ``1-0:13.7.0``."""
        return self.value("1-0:13.7.0")


@dataclass(frozen=True)
class DecodeResult:
    """Telegrams of a byte stream, the bytes of an incomplete frame or APDU at its end
    (``remainder``: feed it again with the next chunk), and problems that were skipped over
    (garbage, checksum failures, incomplete APDUs), all with severity ``warning``."""

    telegrams: tuple[Telegram, ...]
    remainder: bytes
    problems: tuple[Problem, ...]


# --------------------------------------------------------------------------------------------
# Keys
# --------------------------------------------------------------------------------------------

_HEX: Final = frozenset(string.hexdigits)


def _normal_title(text: str) -> str | None:
    compact = "".join(ch for ch in text if ch not in " :-_")
    if len(compact) == 16 and all(ch in _HEX for ch in compact):
        return compact.upper()
    return None


def _check_key(name: str, key: object) -> bytes:
    if not isinstance(key, bytes | bytearray) or len(key) != 16:
        size = len(key) if isinstance(key, bytes | bytearray | str) else "?"
        raise InvalidInput(
            f"the key for {name} must be 16 bytes (AES-128), got {size}; "
            "write it as bytes.fromhex('36C66639E48A8CA4D6BC8B282A793BBB')"
        )
    return bytes(key)


class _Keys:
    """Keys by system title, by meter number, or one key for every meter."""

    def __init__(self, keys: KeySpec | None, what: str) -> None:
        self.default: bytes | None = None
        self.by_title: dict[str, bytes] = {}
        self.by_number: dict[str, bytes] = {}
        if keys is None:
            return
        if isinstance(keys, bytes | bytearray):
            self.default = _check_key(what, keys)
            return
        for name, key in keys.items():
            checked = _check_key(f"{what} {name!r}", key)
            title = _normal_title(name)
            if title is not None:
                self.by_title[title] = checked
            self.by_number[name.strip()] = checked

    def __bool__(self) -> bool:
        return self.default is not None or bool(self.by_number)


# --------------------------------------------------------------------------------------------
# A-XDR data
# --------------------------------------------------------------------------------------------


class _Node(NamedTuple):
    tag: int
    value: object


class _ParseError(ValueError):
    pass


_FIXED: Final[dict[int, tuple[int, bool]]] = {  # tag -> (size, signed)
    0x03: (1, False),  # boolean
    0x05: (4, True),  # double-long
    0x06: (4, False),  # double-long-unsigned
    0x0D: (1, False),  # bcd
    0x0F: (1, True),  # integer
    0x10: (2, True),  # long
    0x11: (1, False),  # unsigned
    0x12: (2, False),  # long-unsigned
    0x14: (8, True),  # long64
    0x15: (8, False),  # long64-unsigned
    0x16: (1, False),  # enum
}
_OCTET_STRING: Final = 0x09
_VISIBLE_STRING: Final = 0x0A
_UTF8_STRING: Final = 0x0C
_STRUCTURE: Final = 0x02
_ARRAY: Final = 0x01
_INTEGER: Final = 0x0F
_ENUM: Final = 0x16
_DATE_TIME: Final = 0x19


def _length(buf: bytes, pos: int) -> tuple[int, int]:
    """A BER/A-XDR length at ``pos``: (length, position after it)."""
    if pos >= len(buf):
        raise _ParseError("length missing")
    first = buf[pos]
    if first < 0x80:
        return first, pos + 1
    count = first & 0x7F
    if count == 0 or count > 4 or pos + 1 + count > len(buf):
        raise _ParseError(f"invalid length field 0x{first:02X}")
    return int.from_bytes(buf[pos + 1 : pos + 1 + count], "big"), pos + 1 + count


def _take(buf: bytes, pos: int, size: int) -> bytes:
    if size < 0 or pos + size > len(buf):
        raise _ParseError(f"{size} byte(s) expected at {pos}, {len(buf) - pos} left")
    return buf[pos : pos + size]


def _decode(buf: bytes, pos: int, depth: int = 0) -> tuple[_Node, int]:
    """Decode one typed A-XDR ``Data`` value at ``pos``."""
    if depth > _MAX_DEPTH:
        raise _ParseError("data nested too deeply")
    tag = _take(buf, pos, 1)[0]
    pos += 1
    if tag == 0x00:
        return _Node(tag, None), pos
    if tag in _FIXED:
        size, signed = _FIXED[tag]
        raw = _take(buf, pos, size)
        return _Node(tag, int.from_bytes(raw, "big", signed=signed)), pos + size
    if tag in (_STRUCTURE, _ARRAY):
        count, pos = _length(buf, pos)
        if count > len(buf) - pos:
            raise _ParseError(f"{count} elements cannot fit in {len(buf) - pos} bytes")
        items = []
        for _ in range(count):
            item, pos = _decode(buf, pos, depth + 1)
            items.append(item)
        return _Node(tag, tuple(items)), pos
    if tag in (_OCTET_STRING, _VISIBLE_STRING, _UTF8_STRING):
        size, pos = _length(buf, pos)
        return _Node(tag, _take(buf, pos, size)), pos + size
    if tag == 0x04:  # bit-string: length in bits
        bits, pos = _length(buf, pos)
        size = (bits + 7) // 8
        return _Node(tag, _take(buf, pos, size)), pos + size
    if tag == 0x17:  # float32
        raw = _take(buf, pos, 4)
        return _Node(tag, struct.unpack(">f", raw)[0]), pos + 4
    if tag == 0x18:  # float64
        raw = _take(buf, pos, 8)
        return _Node(tag, struct.unpack(">d", raw)[0]), pos + 8
    if tag == _DATE_TIME:
        return _Node(tag, _take(buf, pos, 12)), pos + 12
    if tag == 0x1A:  # date
        return _Node(tag, _take(buf, pos, 5)), pos + 5
    if tag == 0x1B:  # time
        return _Node(tag, _take(buf, pos, 4)), pos + 4
    raise _ParseError(f"unknown data type 0x{tag:02X}")


@dataclass(frozen=True)
class _Notification:
    invoke_id: int
    date_time: bytes | None
    body: _Node


def _parse_notification(plain: bytes) -> _Notification:
    """Parse a complete data-notification APDU; every byte must be used."""
    if not plain or plain[0] != TAG_DATA_NOTIFICATION:
        first = f"0x{plain[0]:02X}" if plain else "nothing"
        raise _ParseError(f"it starts with {first}, not with the data-notification tag 0x0F")
    invoke_id = int.from_bytes(_take(plain, 1, 4), "big")
    pos = 5
    size = _take(plain, pos, 1)[0]
    date_time: bytes | None
    if size == 0x00:
        date_time, pos = None, pos + 1
    elif size == 0x0C:
        date_time, pos = _take(plain, pos + 1, 12), pos + 13
    elif size == _OCTET_STRING and _take(plain, pos + 1, 1)[0] == 0x0C:
        date_time, pos = _take(plain, pos + 2, 12), pos + 14
    else:
        raise _ParseError(f"date-time field of length 0x{size:02X} (expected 0 or 12)")
    body, pos = _decode(plain, pos)
    if pos != len(plain):
        raise _ParseError(f"{len(plain) - pos} byte(s) left after the notification body")
    return _Notification(invoke_id, date_time, body)


# --------------------------------------------------------------------------------------------
# Interpretation: OBIS + value + scaler/unit
# --------------------------------------------------------------------------------------------

_PRINTABLE: Final = frozenset(range(0x20, 0x7F))


def _is_text(node: _Node) -> bool:
    if node.tag in (_VISIBLE_STRING, _UTF8_STRING):
        return True
    value = node.value
    return (
        node.tag == _OCTET_STRING
        and isinstance(value, bytes)
        and len(value) > 0
        and all(b in _PRINTABLE for b in value)
    )


def _is_obis(node: _Node) -> bool:
    return (
        node.tag == _OCTET_STRING
        and isinstance(node.value, bytes)
        and len(node.value) == 6
        and not _is_text(node)
    )


def _is_scaler_unit(node: _Node) -> bool:
    if node.tag != _STRUCTURE or not isinstance(node.value, tuple) or len(node.value) != 2:
        return False
    scaler, unit = node.value
    return isinstance(scaler, _Node) and scaler.tag == _INTEGER and unit.tag == _ENUM


def _is_date_time(node: _Node) -> bool:
    value = node.value
    return (
        node.tag in (_OCTET_STRING, _DATE_TIME)
        and isinstance(value, bytes)
        and len(value) == 12
        and not _is_text(node)
    )


def _flatten(node: _Node) -> list[_Node]:
    if node.tag in (_STRUCTURE, _ARRAY) and not _is_scaler_unit(node):
        assert isinstance(node.value, tuple)
        out: list[_Node] = []
        for child in node.value:
            out.extend(_flatten(child))
        return out
    return [node]


def obis_text(raw: bytes) -> str:
    """OBIS code bytes ``A B C D E F`` as ``A-B:C.D.E`` (``*F`` unless F is 255)."""
    a, b, c, d, e, f = raw
    text = f"{a}-{b}:{c}.{d}.{e}"
    return text if f == 255 else f"{text}*{f}"


def _text(value: bytes) -> str:
    return value.decode("ascii", errors="replace").strip()


def _reading(obis: str, value: _Node, scaler_unit: _Node | None) -> Reading | None:
    raw = value.value
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        return None
    scaler = 0
    dlms_unit: int | None = None
    if scaler_unit is not None:
        assert isinstance(scaler_unit.value, tuple)
        scaler_node, unit_node = scaler_unit.value
        assert isinstance(scaler_node.value, int) and isinstance(unit_node.value, int)
        scaler = scaler_node.value
        dlms_unit = unit_node.value
    unit, shift = _UNITS.get(dlms_unit, (f"unit {dlms_unit}", 0)) if dlms_unit else ("", 0)
    if isinstance(raw, int):
        number = float(Decimal(raw).scaleb(scaler + shift))
    else:
        number = float(raw) * 10.0 ** (scaler + shift)
    return Reading(obis, number, unit, raw, scaler, dlms_unit)


@dataclass(frozen=True)
class _Content:
    readings: tuple[Reading, ...]
    texts: dict[str, str]
    meter_number: str | None
    clock_bytes: bytes | None


def _interpret(body: _Node) -> _Content:
    tokens = _flatten(body)
    readings: list[Reading] = []
    texts: dict[str, str] = {}
    loose_texts: list[str] = []
    clock_bytes: bytes | None = None
    i = 0
    n = len(tokens)
    while i < n:
        token = tokens[i]
        if _is_obis(token) and i + 1 < n and not _is_obis(tokens[i + 1]):
            assert isinstance(token.value, bytes)
            obis = obis_text(token.value)
            value = tokens[i + 1]
            scaler_unit = tokens[i + 2] if i + 2 < n and _is_scaler_unit(tokens[i + 2]) else None
            if _is_text(value):
                assert isinstance(value.value, bytes)
                texts[obis] = _text(value.value)
            elif _is_date_time(value):
                assert isinstance(value.value, bytes)
                clock_bytes = clock_bytes or value.value
            else:
                reading = _reading(obis, value, scaler_unit)
                if reading is not None:
                    readings.append(reading)
            i += 3 if scaler_unit is not None else 2
            continue
        if _is_text(token):
            assert isinstance(token.value, bytes)
            loose_texts.append(_text(token.value))
        elif _is_date_time(token) and clock_bytes is None:
            assert isinstance(token.value, bytes)
            clock_bytes = token.value
        i += 1
    meter_number = (
        texts.get("0-0:96.1.0")
        or texts.get("0-0:96.1.1")
        or (loose_texts[-1] if loose_texts else None)
    )
    return _Content(tuple(readings), texts, meter_number, clock_bytes)


def _clock(raw: bytes) -> tuple[datetime | None, int | None, str | None]:
    """A DLMS date-time (12 bytes) as an aware datetime, its status, and a problem text.

    The deviation is the number of minutes from local time to UTC (UTC = local + deviation), so
    ``-120`` is UTC+02:00. With an unspecified deviation (``0x8000``) the local time is read in
    Europe/Vienna, the status bit ``0x80`` (daylight saving active) telling the two 02:00-03:00
    hours of the autumn change day apart.
    """
    year = int.from_bytes(raw[0:2], "big")
    month, day, _weekday, hour, minute, second, hundredths = raw[2:9]
    deviation = int.from_bytes(raw[9:11], "big", signed=True)
    status = raw[11]
    if year == 0xFFFF or month > 12 or day > 31 or hour > 23 or minute > 59 or second > 59:
        return None, status, "the meter clock is not specified completely"
    micro = 0 if hundredths == 0xFF else min(hundredths, 99) * 10_000
    try:
        if deviation == -0x8000:
            dst = bool(status & 0x80)
            local = datetime(
                year, month, day, hour, minute, second, micro, VIENNA, fold=0 if dst else 1
            )
            roundtrip = local.astimezone(UTC).astimezone(VIENNA)
            if roundtrip.replace(tzinfo=None) != local.replace(tzinfo=None):
                return (
                    None,
                    status,
                    f"meter clock {local.replace(tzinfo=None)} does not exist in Europe/Vienna",
                )
            return local, status, None
        if not -900 <= deviation <= 900:
            return None, status, f"meter clock deviation {deviation} min is out of range"
        zone = timezone(timedelta(minutes=-deviation))
        return datetime(year, month, day, hour, minute, second, micro, zone), status, None
    except ValueError as exc:
        return None, status, f"meter clock is not a valid date: {exc}"


# --------------------------------------------------------------------------------------------
# Decryption
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Ciphered:
    system_title: bytes
    security: int
    frame_counter: int
    ciphertext: bytes
    tag: bytes | None


def _parse_glo(apdu: bytes) -> _Ciphered:
    if len(apdu) < 2 or apdu[1] != 8:
        raise _ParseError("the system title must be 8 bytes long")
    title = _take(apdu, 2, 8)
    size, pos = _length(apdu, 10)
    if pos + size != len(apdu):
        raise _ParseError(
            f"the ciphered content is {len(apdu) - pos} byte(s) long, "
            f"but its length field says {size}"
        )
    if size < 5:
        raise _ParseError("the ciphered content is too short for security byte and frame counter")
    security = apdu[pos]
    counter = int.from_bytes(apdu[pos + 1 : pos + 5], "big")
    body = apdu[pos + 5 :]
    tag: bytes | None = None
    if security & SECURITY_AUTHENTICATED:
        if len(body) < TAG_LENGTH:
            raise _ParseError("the ciphered content is too short for its authentication tag")
        body, tag = body[:-TAG_LENGTH], body[-TAG_LENGTH:]
    return _Ciphered(title, security, counter, body, tag)


def _decrypt_ctr(key: bytes, iv: bytes, ciphertext: bytes) -> bytes:
    """GCM decryption without tag: AES-CTR from counter block ``IV || 00000002``."""
    decryptor = Cipher(algorithms.AES(key), modes.CTR(iv + b"\x00\x00\x00\x02")).decryptor()
    return decryptor.update(ciphertext) + decryptor.finalize()


def _decrypt_gcm(key: bytes, iv: bytes, ciphertext: bytes, tag: bytes, aad: bytes) -> bytes:
    decryptor = Cipher(
        algorithms.AES(key), modes.GCM(iv, tag, min_tag_length=TAG_LENGTH)
    ).decryptor()
    decryptor.authenticate_additional_data(aad)
    return decryptor.update(ciphertext) + decryptor.finalize()


def decrypt_apdu(apdu: bytes, key: bytes) -> bytes:
    """The plaintext of one ``general-glo-ciphering`` APDU, for diagnostics.

    The tag of an authenticated APDU is not checked here (use :class:`StreamDecoder` with
    ``auth_keys`` for that). Raises :class:`InvalidInput` for a malformed APDU.
    """
    if not apdu or apdu[0] != TAG_GENERAL_GLO_CIPHERING:
        raise InvalidInput("not a general-glo-ciphering APDU (tag 0xDB)")
    try:
        ciphered = _parse_glo(apdu)
    except _ParseError as exc:
        raise InvalidInput(f"malformed general-glo-ciphering APDU: {exc}") from None
    iv = ciphered.system_title + ciphered.frame_counter.to_bytes(4, "big")
    return _decrypt_ctr(_check_key("the APDU", key), iv, ciphered.ciphertext)


def _describe_title(title: bytes) -> str:
    text = title.hex().upper()
    maker = title[:3]
    if all(0x41 <= b <= 0x5A for b in maker):
        text += f" (manufacturer {maker.decode('ascii')})"
    return text


# --------------------------------------------------------------------------------------------
# The stream decoder
# --------------------------------------------------------------------------------------------


class StreamDecoder:
    """Incremental decoder: :meth:`feed` chunks of a byte stream, get telegrams back.

    ``keys``: one 16-byte key for every meter, or a mapping from system title (16 hex digits) or
    meter number to its key. ``auth_keys``: the same for authentication keys, needed only to
    verify the tag of telegrams with security byte ``0x30``. ``source`` names the stream in
    problems. Frames, APDU segments and truncated bytes are kept between calls, so splitting the
    stream anywhere gives the same telegrams as feeding it whole.

    :meth:`feed` raises :class:`DecryptionError` (after using the whole chunk; the telegrams
    decoded from it are on the exception) when a telegram cannot be decrypted. Garbage, checksum
    failures and incomplete APDUs are skipped and collected in :attr:`problems`.
    """

    def __init__(
        self,
        keys: KeySpec | None = None,
        *,
        auth_keys: KeySpec | None = None,
        source: str | None = None,
    ) -> None:
        self._keys = _Keys(keys, "key")
        self._auth_keys = _Keys(auth_keys, "authentication key")
        self._title_keys: dict[bytes, bytes] = {}
        self._source = source
        self._scanner = FrameScanner()
        self._segments: list[Frame] = []
        self.problems: list[Problem] = []

    @property
    def remainder(self) -> bytes:
        """Bytes to feed again to resume: frames of an incomplete APDU and a truncated frame."""
        return b"".join(frame.raw for frame in self._segments) + self._scanner.pending

    def feed(self, chunk: bytes | bytearray | memoryview) -> list[Telegram]:
        telegrams: list[Telegram] = []
        errors: list[Problem] = []
        for event in self._scanner.feed(chunk):
            if isinstance(event, Skipped):
                self._warn(event.reason)
                continue
            apdu = self._reassemble(event)
            if apdu is None:
                continue
            offset, link, data = apdu
            try:
                telegram = self._decode_apdu(offset, link, data)
            except DecryptionError as exc:
                errors.extend(exc.problems)
                continue
            if telegram is not None:
                telegrams.append(telegram)
        if errors:
            first = errors[0].reason
            raise (
                MissingKeyError
                if all(p.reason.startswith("no key") for p in errors)
                else DecryptionError
            )(first, errors, telegrams)
        return telegrams

    # -- problems ------------------------------------------------------------------------------

    def _warn(self, reason: str, meter: str | None = None) -> None:
        self.problems.append(Problem(reason, file=self._source, meter=meter, severity="warning"))

    def _error(self, reason: str, meter: str | None = None) -> Problem:
        return Problem(reason, file=self._source, meter=meter)

    # -- segments ------------------------------------------------------------------------------

    def _drop_segments(self, why: str) -> None:
        if self._segments:
            offsets = ", ".join(str(f.offset) for f in self._segments)
            self._warn(f"incomplete APDU dropped ({why}); its frames began at byte(s) {offsets}")
            self._segments = []

    def _reassemble(self, frame: Frame) -> tuple[int, FrameKind, bytes] | None:
        if frame.unsupported is not None:
            self._warn(f"frame at byte {frame.offset} skipped: {frame.unsupported}")
            return None
        pending = self._segments
        if pending and pending[0].kind is not frame.kind:
            self._drop_segments(f"a {frame.kind.value} frame followed")
        if frame.kind is FrameKind.MBUS:
            if frame.first:
                self._drop_segments("a new APDU began")
            elif not pending or pending[-1].sequence != ((frame.sequence or 0) - 1) % 16:
                self._drop_segments("a segment is missing")
                self._warn(
                    f"M-Bus segment {frame.sequence} at byte {frame.offset} has no preceding "
                    "segment; skipped"
                )
                return None
        elif frame.first:
            self._drop_segments("a new APDU began")
        elif not pending and frame.payload[:1] not in (b"\xdb", b"\x0f"):
            self._warn(
                f"HDLC segment at byte {frame.offset} continues an APDU whose start was not "
                "seen; skipped"
            )
            return None
        self._segments.append(frame)
        if sum(len(f.payload) for f in self._segments) > MAX_APDU:
            self._drop_segments(f"longer than {MAX_APDU} bytes")
            return None
        if not frame.last:
            return None
        segments, self._segments = self._segments, []
        return segments[0].offset, frame.kind, b"".join(f.payload for f in segments)

    # -- APDUs ---------------------------------------------------------------------------------

    def _decode_apdu(self, offset: int, link: FrameKind, apdu: bytes) -> Telegram | None:
        if not apdu:
            self._warn(f"empty APDU at byte {offset} skipped")
            return None
        if apdu[0] == TAG_DATA_NOTIFICATION:
            try:
                notification = _parse_notification(apdu)
            except _ParseError as exc:
                self._warn(f"unencrypted APDU at byte {offset} is not a data-notification: {exc}")
                return None
            return self._telegram(offset, link, notification, None, False)
        if apdu[0] != TAG_GENERAL_GLO_CIPHERING:
            self._warn(
                f"APDU at byte {offset} has tag 0x{apdu[0]:02X}; only general-glo-ciphering "
                "(0xDB) and data-notification (0x0F) are read"
            )
            return None
        try:
            ciphered = _parse_glo(apdu)
        except _ParseError as exc:
            self._warn(f"general-glo-ciphering APDU at byte {offset} is malformed: {exc}")
            return None
        title = _describe_title(ciphered.system_title)
        if (
            ciphered.security & 0x0F
            or ciphered.security & 0x80
            or not (ciphered.security & SECURITY_ENCRYPTED)
        ):
            self._warn(
                f"telegram at byte {offset} from system title {title} uses security byte "
                f"0x{ciphered.security:02X}; lastgang reads 0x20 (encrypted) and 0x30 "
                "(encrypted and authenticated)",
                meter=title,
            )
            return None
        notification, authenticated = self._decrypt(offset, ciphered, title)
        return self._telegram(offset, link, notification, ciphered, authenticated)

    def _candidate_keys(self, title: bytes) -> list[tuple[str | None, bytes]]:
        """Keys to try: (meter number the key belongs to, or None when not tied to one, key)."""
        if title in self._title_keys:
            return [(None, self._title_keys[title])]
        hex_title = title.hex().upper()
        if hex_title in self._keys.by_title:
            return [(None, self._keys.by_title[hex_title])]
        if self._keys.default is not None:
            return [(None, self._keys.default)]
        return [(name, key) for name, key in self._keys.by_number.items()]

    def _auth_key(self, title: bytes, meter_number: str | None) -> bytes | None:
        keys = self._auth_keys
        hex_title = title.hex().upper()
        if hex_title in keys.by_title:
            return keys.by_title[hex_title]
        if meter_number is not None and meter_number in keys.by_number:
            return keys.by_number[meter_number]
        return keys.default

    def _decrypt(self, offset: int, ciphered: _Ciphered, title: str) -> tuple[_Notification, bool]:
        iv = ciphered.system_title + ciphered.frame_counter.to_bytes(4, "big")
        candidates = self._candidate_keys(ciphered.system_title)
        if not candidates:
            problem = self._error(
                f"no key for system title {title} (telegram at byte {offset}); give the key of "
                "this meter (from the grid operator's customer portal)",
                meter=ciphered.system_title.hex().upper(),
            )
            raise DecryptionError(problem.reason, [problem])
        failure = ""
        for number, key in candidates:
            plain = _decrypt_ctr(key, iv, ciphered.ciphertext)
            try:
                notification = _parse_notification(plain)
            except _ParseError as exc:
                failure = str(exc)
                continue
            if number is not None:
                content = _interpret(notification.body)
                if content.meter_number != number:
                    failure = f"it decrypts to meter {content.meter_number}, not {number}"
                    continue
            self._title_keys[ciphered.system_title] = key
            authenticated = False
            if ciphered.tag is not None:
                authenticated = self._verify_tag(offset, ciphered, title, key, iv, notification)
            return notification, authenticated
        if candidates and all(number is not None for number, _ in candidates):
            reason = (
                f"no key for system title {title} (telegram at byte {offset}): none of the "
                f"{len(candidates)} key(s) given by meter number decrypts it to a telegram of "
                "that meter"
            )
        else:
            reason = (
                f"frame from system title {title} could not be decrypted with the given key: "
                f"the plaintext is not a DLMS data-notification ({failure}); check the key "
                f"(telegram at byte {offset}, frame counter {ciphered.frame_counter})"
            )
        problem = self._error(reason, meter=ciphered.system_title.hex().upper())
        raise DecryptionError(reason, [problem])

    def _verify_tag(
        self,
        offset: int,
        ciphered: _Ciphered,
        title: str,
        key: bytes,
        iv: bytes,
        notification: _Notification,
    ) -> bool:
        assert ciphered.tag is not None
        meter_number = _interpret(notification.body).meter_number
        auth_key = self._auth_key(ciphered.system_title, meter_number)
        if auth_key is None:
            self._warn(
                f"telegram at byte {offset} from system title {title} carries an authentication "
                "tag, but no authentication key was given: values are used unverified",
                meter=title,
            )
            return False
        aad = bytes([ciphered.security]) + auth_key
        try:
            _decrypt_gcm(key, iv, ciphered.ciphertext, ciphered.tag, aad)
        except InvalidTag:
            reason = (
                f"frame from system title {title} could not be authenticated: the GCM tag does "
                "not match (wrong authentication key, or the frame was altered); telegram at "
                f"byte {offset}, frame counter {ciphered.frame_counter}"
            )
            meter = ciphered.system_title.hex().upper()
            raise DecryptionError(reason, [self._error(reason, meter=meter)]) from None
        return True

    def _telegram(
        self,
        offset: int,
        link: FrameKind,
        notification: _Notification,
        ciphered: _Ciphered | None,
        authenticated: bool,
    ) -> Telegram | None:
        content = _interpret(notification.body)
        title = ciphered.system_title.hex().upper() if ciphered is not None else None
        meter = content.meter_number or title
        if not content.readings and not content.texts:
            self._warn(
                f"data-notification at byte {offset} carries no OBIS codes; this layout is not "
                "read",
                meter=meter,
            )
            return None
        clock_bytes = notification.date_time or content.clock_bytes
        clock: datetime | None = None
        status: int | None = None
        if clock_bytes is not None:
            clock, status, problem = _clock(clock_bytes)
            if problem is not None:
                self._warn(f"telegram at byte {offset}: {problem}", meter=meter)
        return Telegram(
            offset=offset,
            link=link,
            system_title=title,
            frame_counter=ciphered.frame_counter if ciphered is not None else None,
            security=ciphered.security if ciphered is not None else None,
            authenticated=authenticated,
            invoke_id=notification.invoke_id,
            meter_number=content.meter_number,
            clock=clock,
            clock_status=status,
            readings=content.readings,
            texts=content.texts,
        )


def decode_stream(
    data: bytes | bytearray | memoryview,
    keys: KeySpec | None = None,
    *,
    auth_keys: KeySpec | None = None,
    source: str | None = None,
) -> DecodeResult:
    """Decode every telegram in ``data``.

    Raises :class:`DecryptionError` (carrying every such problem and, on ``.telegrams``, what
    could be decoded) when a telegram cannot be decrypted with its key, and
    :class:`MissingKeyError` when there is no key for a meter. Everything else that is wrong with
    the bytes is skipped and listed in :attr:`DecodeResult.problems`; a truncated frame or APDU
    at the end is returned as :attr:`DecodeResult.remainder`, not an error.
    """
    decoder = StreamDecoder(keys, auth_keys=auth_keys, source=source)
    telegrams = decoder.feed(data)
    return DecodeResult(tuple(telegrams), decoder.remainder, tuple(decoder.problems))
