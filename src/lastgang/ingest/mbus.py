"""Link-layer framing of the smart meter customer interface (Kundenschnittstelle).

Austrian smart meters push DLMS/COSEM APDUs over their customer interface in one of two framings:

- **M-Bus long frames** (EN 13757-2): ``68 L L 68 C A CI STSAP DTSAP <data> CS 16``. ``L`` counts
  the bytes from ``C`` to the end of the data; ``CS`` is the sum of those bytes modulo 256. A
  ``CI`` field from ``0x00`` to ``0x1F`` carries a segment of a DLMS APDU: the low four bits are
  the segment number, bit ``0x10`` marks the last segment (``0x00`` then ``0x11`` for an APDU in
  two frames, ``0x10`` for one frame).
- **HDLC frames** (IEC 62056-46): ``7E <format 2> <dest addr> <src addr> <control> <HCS 2>
  <information> <FCS 2> 7E``, frame format type 3 (``0xA``), an 11-bit length counting the bytes
  between the flags, a segmentation bit ``0x08`` in the format field, and HCS/FCS as
  CRC-16/X.25 (least significant byte first). The first segment's information field starts with
  the LLC header ``E6 E7 00``.

:class:`FrameScanner` finds such frames in a byte stream fed in chunks of any size. It resyncs
after garbage (skips bytes until a frame start with a valid length, end marker and checksum),
reports skipped bytes and checksum failures as :class:`Skipped` events, and keeps a truncated
frame at the end of the buffer until more bytes arrive. Its decisions depend only on the bytes,
never on how they were split into chunks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

__all__ = [
    "MAX_HDLC_FRAME",
    "MAX_MBUS_FRAME",
    "Frame",
    "FrameKind",
    "FrameScanner",
    "Skipped",
    "crc16_x25",
    "mbus_checksum",
]

MBUS_START: Final = 0x68
MBUS_STOP: Final = 0x16
HDLC_FLAG: Final = 0x7E
#: Largest M-Bus long frame: L = 255 plus 6 bytes of framing.
MAX_MBUS_FRAME: Final = 255 + 6
#: Largest HDLC frame: an 11-bit length plus the two flags.
MAX_HDLC_FRAME: Final = 0x7FF + 2
#: LLC header of a DLMS APDU in an HDLC information field (response ``E7``, command ``E6``).
LLC_HEADERS: Final = (b"\xe6\xe7\x00", b"\xe6\xe6\x00")

_CANDIDATE: Final = re.compile(b"[\x68\x7e]")


def _crc_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_CRC_TABLE: Final = _crc_table()


def crc16_x25(data: bytes | bytearray | memoryview) -> int:
    """CRC-16/X.25 (reflected polynomial 0x1021, init and final XOR 0xFFFF) as used by HDLC."""
    crc = 0xFFFF
    for byte in bytes(data):
        crc = (crc >> 8) ^ _CRC_TABLE[(crc ^ byte) & 0xFF]
    return crc ^ 0xFFFF


def mbus_checksum(data: bytes | bytearray | memoryview) -> int:
    """M-Bus checksum: the sum of the bytes modulo 256."""
    return sum(bytes(data)) & 0xFF


class FrameKind(StrEnum):
    MBUS = "mbus"
    HDLC = "hdlc"


@dataclass(frozen=True)
class Frame:
    """One frame with a valid checksum.

    ``payload`` is the APDU segment it carries (after ``STSAP DTSAP`` for M-Bus, after the LLC
    header for the first HDLC segment). ``first``/``last`` tell where the segment sits in its
    APDU; ``sequence`` is the M-Bus segment number. ``unsupported`` explains why a frame with a
    valid checksum carries nothing to decode (``None`` for data frames).
    """

    kind: FrameKind
    offset: int
    raw: bytes
    payload: bytes
    first: bool
    last: bool
    sequence: int | None = None
    unsupported: str | None = None


@dataclass(frozen=True)
class Skipped:
    """Bytes skipped while resyncing: garbage, or a frame whose checksum is wrong."""

    offset: int
    length: int
    reason: str


# Results of trying to read a frame at one position.
_INCOMPLETE: Final = "incomplete"
_INVALID: Final = "invalid"


@dataclass(frozen=True)
class _BadChecksum:
    length: int
    reason: str


_Attempt = Frame | _BadChecksum | str


def _le16(buf: bytes | bytearray, pos: int) -> int:
    return buf[pos] | (buf[pos + 1] << 8)


def _try_mbus(buf: bytearray, p: int, offset: int) -> _Attempt:
    available = len(buf) - p
    if available >= 3 and buf[p + 1] != buf[p + 2]:
        return _INVALID
    if available >= 2 and buf[p + 1] < 3:
        return _INVALID
    if available >= 4 and buf[p + 3] != MBUS_START:
        return _INVALID
    if available < 4:
        return _INCOMPLETE
    length = buf[p + 1]
    total = length + 6
    if available < total:
        return _INCOMPLETE
    if buf[p + total - 1] != MBUS_STOP:
        return _INVALID
    body = buf[p + 4 : p + 4 + length]
    checksum = buf[p + 4 + length]
    computed = mbus_checksum(body)
    if computed != checksum:
        return _BadChecksum(
            total,
            f"M-Bus frame at byte {offset + p}: checksum 0x{checksum:02X} does not match the sum "
            f"of its bytes 0x{computed:02X}; frame skipped",
        )
    raw = bytes(buf[p : p + total])
    ci = body[2]
    if ci > 0x1F:
        return Frame(
            FrameKind.MBUS,
            offset + p,
            raw,
            b"",
            first=True,
            last=True,
            unsupported=f"M-Bus CI field 0x{ci:02X} does not carry a DLMS APDU segment",
        )
    if length < 5:
        return Frame(
            FrameKind.MBUS,
            offset + p,
            raw,
            b"",
            first=True,
            last=True,
            unsupported="M-Bus frame too short for STSAP and DTSAP",
        )
    sequence = ci & 0x0F
    return Frame(
        FrameKind.MBUS,
        offset + p,
        raw,
        bytes(body[5:]),
        first=sequence == 0,
        last=bool(ci & 0x10),
        sequence=sequence,
    )


def _hdlc_address_end(buf: bytearray, pos: int, limit: int) -> int | None:
    """Index after an HDLC address field (1 to 4 bytes, the last with its low bit set)."""
    for i in range(pos, min(pos + 4, limit)):
        if buf[i] & 0x01:
            return i + 1
    return None


def _try_hdlc(buf: bytearray, p: int, offset: int) -> _Attempt:
    available = len(buf) - p
    if available >= 2 and (buf[p + 1] & 0xF0) != 0xA0:
        return _INVALID
    if available < 3:
        return _INCOMPLETE
    fmt = buf[p + 1]
    length = ((fmt & 0x07) << 8) | buf[p + 2]
    if length < 7:  # format (2) + addresses (2) + control (1) + FCS (2)
        return _INVALID
    total = length + 2
    if available < total:
        return _INCOMPLETE
    if buf[p + total - 1] != HDLC_FLAG:
        return _INVALID
    end = p + 1 + length  # index of the closing flag
    dest_end = _hdlc_address_end(buf, p + 3, end)
    src_end = _hdlc_address_end(buf, dest_end, end) if dest_end is not None else None
    if src_end is None or src_end + 1 + 2 > end:
        return _INVALID
    control = buf[src_end]
    header_end = src_end + 1
    fcs = _le16(buf, end - 2)
    computed_fcs = crc16_x25(buf[p + 1 : end - 2])
    if computed_fcs != fcs:
        return _BadChecksum(
            total,
            f"HDLC frame at byte {offset + p}: FCS 0x{fcs:04X} does not match the CRC "
            f"0x{computed_fcs:04X}; frame skipped",
        )
    raw = bytes(buf[p : p + total])
    if header_end + 2 == end:
        return Frame(
            FrameKind.HDLC,
            offset + p,
            raw,
            b"",
            first=True,
            last=True,
            unsupported=f"HDLC frame (control 0x{control:02X}) carries no information field",
        )
    if header_end + 4 > end:
        return _INVALID
    hcs = _le16(buf, header_end)
    computed_hcs = crc16_x25(buf[p + 1 : header_end])
    if computed_hcs != hcs:
        return _BadChecksum(
            total,
            f"HDLC frame at byte {offset + p}: HCS 0x{hcs:04X} does not match the CRC "
            f"0x{computed_hcs:04X}; frame skipped",
        )
    info = bytes(buf[header_end + 2 : end - 2])
    is_information = (control & 0x01) == 0 or (control & 0xEF) == 0x03  # I frame or UI frame
    if not is_information:
        return Frame(
            FrameKind.HDLC,
            offset + p,
            raw,
            b"",
            first=True,
            last=True,
            unsupported=f"HDLC frame with control 0x{control:02X} is not an I or UI frame",
        )
    first = info[:3] in LLC_HEADERS
    payload = info[3:] if first else info
    return Frame(
        FrameKind.HDLC,
        offset + p,
        raw,
        payload,
        first=first,
        last=not (fmt & 0x08),
    )


def _attempt(buf: bytearray, p: int, offset: int) -> _Attempt:
    if buf[p] == MBUS_START:
        return _try_mbus(buf, p, offset)
    if buf[p] == HDLC_FLAG:
        return _try_hdlc(buf, p, offset)
    return _INVALID


class FrameScanner:
    """Finds M-Bus and HDLC frames in a byte stream fed in chunks.

    :meth:`feed` returns the frames and skip events completed by the new bytes; bytes that may
    still become a frame stay in :attr:`pending`.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self._offset = 0  # stream offset of self._buf[0]
        self._silent_until = 0  # stream offset up to which skipped bytes are not reported
        self._runs: list[tuple[int, int]] = []  # skipped runs (offset, length) not yet reported

    @property
    def pending(self) -> bytes:
        """Bytes not yet resolved: the start of a frame that is not complete yet."""
        return bytes(self._buf)

    @property
    def offset(self) -> int:
        """Stream offset of the first pending byte."""
        return self._offset

    def feed(self, chunk: bytes | bytearray | memoryview) -> list[Frame | Skipped]:
        self._buf.extend(chunk)
        events: list[Frame | Skipped] = []
        buf = self._buf
        p = 0
        n = len(buf)
        while p < n:
            attempt = _attempt(buf, p, self._offset)
            if attempt == _INCOMPLETE and self._complete_frame_after(p):
                attempt = _INVALID
            if attempt == _INCOMPLETE:
                break
            if isinstance(attempt, Frame):
                self._flush_garbage(events)
                events.append(attempt)
                length = len(attempt.raw)
                if attempt.kind is FrameKind.HDLC:
                    # the closing flag may also open the next frame
                    p += length - 1
                    self._silent_until = self._offset + p + 1
                else:
                    p += length
                continue
            if isinstance(attempt, _BadChecksum):
                self._flush_garbage(events)
                events.append(Skipped(self._offset + p, attempt.length, attempt.reason))
                self._silent_until = max(self._silent_until, self._offset + p + attempt.length)
                p += 1
                continue
            # not a frame here: skip to the next byte that may start one
            match = _CANDIDATE.search(buf, p + 1)
            nxt = match.start() if match is not None else n
            self._note_garbage(self._offset + p, self._offset + nxt)
            p = nxt
        self._flush_garbage(events)
        del buf[:p]
        self._offset += p
        return events

    def _complete_frame_after(self, p: int) -> bool:
        """Whether a complete frame with a valid checksum starts after ``p`` in the buffer.

        A real frame can contain another complete, valid frame only by a coincidence of start
        bytes, length, end marker and checksum, so the bytes at ``p`` are then garbage that
        only looks like the start of a frame.
        """
        buf = self._buf
        match = _CANDIDATE.search(buf, p + 1)
        while match is not None:
            q = match.start()
            if isinstance(_attempt(buf, q, self._offset), Frame):
                return True
            match = _CANDIDATE.search(buf, q + 1)
        return False

    def _note_garbage(self, start: int, end: int) -> None:
        """Remember skipped bytes ``[start, end)`` (stream offsets) for one report per run."""
        start = max(start, self._silent_until)
        if end <= start:
            return
        if self._runs and self._runs[-1][0] + self._runs[-1][1] == start:
            first, length = self._runs[-1]
            self._runs[-1] = (first, length + end - start)
        else:
            self._runs.append((start, end - start))

    def _flush_garbage(self, events: list[Frame | Skipped]) -> None:
        for start, length in self._runs:
            events.append(
                Skipped(start, length, f"{length} byte(s) at byte {start} are not part of a frame")
            )
        self._runs.clear()
