"""Captured smart meter telegrams (DLMS/COSEM push, customer interface) -> register readings of a
site (``lastgang import --format dlms --key HEX``, and ``lastgang listen --serial``).

:func:`read_dlms` decodes a byte stream with :func:`~lastgang.ingest.dlms.decode_stream` and maps
every telegram onto the site (``docs/format-dlms.md``, "Importing"):

- the telegram's meter number (``0-0:96.1.0`` or the meter's printable number) is the serial of
  one meter of the site; the meter's clock is the reading time (TOR-4.1m);
- the energy registers ``1-0:1.8.0``/``1-0:2.8.0`` (and tariff registers ``1-0:1.8.e``/
  ``1-0:2.8.e``) in kWh become register readings, for the registers the meter lists in the site
  configuration (others are not stored);
- per-phase active power (``21.7.0``/``22.7.0``, ``41.7.0``/``42.7.0``, ``61.7.0``/``62.7.0``,
  import minus export per phase) becomes phase samples when the telegram has all three phases;
- voltage, current, power factor and total power have no table in the store: they are not
  stored as readings, but stay in the raw archive with the telegram.

Captures are binary (the bytes as read from the port) or hex text (hex digits, whitespace
ignored). The keys are archived with the batch so that a rebuild can decrypt it again.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from lastgang.errors import InvalidInput
from lastgang.ingest.csv_readings import NO_METER, SEVERAL_METERS, SiteIndex
from lastgang.ingest.dlms import KeySpec, Telegram, decode_stream
from lastgang.ingest.rows import ImportedFile, Problems, build_file, register_rows, time_text
from lastgang.obis import parse_obis
from lastgang.store import PhaseRows, ReadingSet
from lastgang.timegrid import to_epoch

__all__ = [
    "DLMS_FORMAT",
    "capture_bytes",
    "keys_from_options",
    "keys_to_options",
    "parse_key_specs",
    "read_dlms",
    "telegram_readings",
]

#: the format name of smart meter telegram batches in the raw archive
DLMS_FORMAT = "dlms"

_REGISTER = re.compile(r"^1-0:[12]\.8\.\d+$")
_PHASES = (("1-0:21.7.0", "1-0:22.7.0"), ("1-0:41.7.0", "1-0:42.7.0"), ("1-0:61.7.0", "1-0:62.7.0"))
_HEX_TEXT = frozenset((string.hexdigits + string.whitespace).encode())
_ANY = "*"


def parse_key_specs(specs: Sequence[str]) -> KeySpec:
    """Keys from the command line: ``HEX`` (one key for every meter) or ``SYSTEMTITLE=HEX`` /
    ``METERNUMBER=HEX`` (repeatable). Raises :class:`InvalidInput` naming every bad one."""
    single: bytes | None = None
    mapping: dict[str, bytes] = {}
    bad: list[str] = []
    for spec in specs:
        name, _, text = spec.rpartition("=")
        try:
            key = bytes.fromhex(text.strip())
        except ValueError:
            bad.append(f"{spec!r}: the key is not hex")
            continue
        if len(key) != 16:
            bad.append(f"{spec!r}: a key has 32 hex digits (16 bytes), this one {len(key)} bytes")
            continue
        if name.strip():
            mapping[name.strip()] = key
        elif single is None:
            single = key
        else:
            bad.append(f"{spec!r}: a second key without a system title; write TITLE=HEX")
    if single is not None and mapping:
        bad.append("give either one key for every meter (HEX) or one per meter (TITLE=HEX)")
    if bad:
        raise InvalidInput("bad --key: " + "; ".join(bad))
    return single if single is not None else mapping


def keys_to_options(keys: KeySpec | None) -> dict[str, Any]:
    """Keys as archived with a batch: ``{"keys": {"4B46...": "36C6..."}}`` (``*``: any meter)."""
    if keys is None:
        return {}
    if isinstance(keys, bytes | bytearray):
        return {"keys": {_ANY: bytes(keys).hex().upper()}}
    return {"keys": {name: bytes(key).hex().upper() for name, key in keys.items()}}


def keys_from_options(options: Mapping[str, Any] | None) -> KeySpec | None:
    """The inverse of :func:`keys_to_options`."""
    if not options or "keys" not in options:
        return None
    keys = {str(k): bytes.fromhex(str(v)) for k, v in dict(options["keys"]).items()}
    if set(keys) == {_ANY}:
        return keys[_ANY]
    return keys


def capture_bytes(content: bytes) -> bytes:
    """The bytes of a capture: hex text (digits and whitespace only) is decoded, anything else
    is taken as the binary stream."""
    if content and all(b in _HEX_TEXT for b in content[:4096]) and set(content) <= _HEX_TEXT:
        digits = bytes(b for b in content if chr(b) in string.hexdigits)
        if len(digits) % 2 == 0 and digits:
            return bytes.fromhex(digits.decode("ascii"))
    return content


def telegram_readings(
    telegrams: Sequence[Telegram], index: SiteIndex, problems: Problems
) -> tuple[ReadingSet, int]:
    """Register readings and phase samples of decoded telegrams; problems for telegrams that
    cannot be placed (unknown meter number, no clock, outside the meter's installed period,
    two telegrams of one meter at one time with different values). Returns the readings and
    the number of telegrams used."""
    meter_of: dict[str, int] = {}
    unknown: dict[str, list[int]] = {}
    for number in sorted({t.meter_number for t in telegrams if t.meter_number}):
        key = index.meter_named(number)
        if key in (NO_METER, SEVERAL_METERS):
            unknown[number] = []
        else:
            meter_of[number] = index.key_index[key]
    reg_names: list[str] = []
    reg_index: dict[str, int] = {}
    m_list: list[int] = []
    r_list: list[int] = []
    t_list: list[int] = []
    v_list: list[float] = []
    ph_m: list[int] = []
    ph_t: list[int] = []
    ph_v: list[tuple[float, float, float]] = []
    seen: dict[tuple[int, int], tuple[tuple[str, float], ...]] = {}
    used = 0
    for tel in telegrams:
        where = f"telegram at byte {tel.offset}"
        if not tel.meter_number:
            problems.add(f"{where} has no meter number", kind="no meter number")
            continue
        if tel.meter_number in unknown:
            unknown[tel.meter_number].append(tel.offset)
            continue
        if tel.clock is None:
            problems.add(
                f"{where} has no valid meter clock; its readings cannot be placed in time",
                meter=tel.meter_number,
                kind="no clock",
            )
            continue
        m = meter_of[tel.meter_number]
        info = index.meters[index.keys[m]]
        t = to_epoch(tel.clock)
        if t < info.lo or t > info.hi:
            problems.add(
                f"{where}: reading outside the installed period of meter {info.key}",
                meter=info.key,
                time=time_text(t),
                kind="outside installed period",
            )
            continue
        values = tuple(
            (r.obis, float(r.value))
            for r in tel.readings
            if _REGISTER.match(r.obis)
            and r.unit == "kWh"
            and str(parse_obis(r.obis)) in info.registers
        )
        previous = seen.get((m, t))
        if previous is not None:
            if previous != values:
                problems.add(
                    f"{where}: a second telegram of meter {info.key} at the same time with other "
                    "register values",
                    meter=info.key,
                    time=time_text(t),
                    kind="conflicting telegrams",
                )
            continue
        seen[(m, t)] = values
        used += 1
        for obis, value in values:
            canonical = str(parse_obis(obis))
            if canonical not in reg_index:
                reg_index[canonical] = len(reg_names)
                reg_names.append(canonical)
            m_list.append(m)
            r_list.append(reg_index[canonical])
            t_list.append(t)
            v_list.append(value)
        phase = [(tel.value(a), tel.value(b)) for a, b in _PHASES]
        if all(a is not None for a, _ in phase):
            ph_m.append(m)
            ph_t.append(t)
            l1, l2, l3 = ((a or 0.0) - (b or 0.0) for a, b in phase)
            ph_v.append((l1, l2, l3))
    for number, offsets in unknown.items():
        keys = index.by_serial.get(number, [])
        reason = (
            f"meter number {number} is ambiguous ({', '.join(keys)})"
            if keys
            else f"meter number {number} is not the serial of a meter of site "
            f'{index.site.site.id!r}; add the meter (serial = "{number}") to its location'
        )
        problems.add(
            f"{reason} ({len(offsets)} telegram(s), the first at byte {offsets[0]})",
            meter=number,
        )
    registers = register_rows(
        index,
        np.asarray(m_list, dtype=np.int64),
        reg_names,
        np.asarray(r_list, dtype=np.int64),
        np.asarray(t_list, dtype=np.int64),
        np.asarray(v_list, dtype=np.float64),
    )
    return ReadingSet(registers=registers, phases=_phase_rows(index, ph_m, ph_t, ph_v)), used


def _phase_rows(
    index: SiteIndex, meters: list[int], times: list[int], values: list[tuple[float, float, float]]
) -> PhaseRows:
    if not meters:
        return PhaseRows()
    m = np.asarray(meters, dtype=np.int64)
    t = np.asarray(times, dtype=np.int64)
    v = np.asarray(values, dtype=np.float64).reshape(-1, 3)
    order = np.lexsort((t, m))
    used, local = np.unique(m[order], return_inverse=True)
    return PhaseRows(
        meters=tuple(index.keys[int(u)] for u in used),
        meter=local.astype(np.int32),
        time=t[order],
        l1=v[order, 0],
        l2=v[order, 1],
        l3=v[order, 2],
    )


def read_dlms(content: bytes, source: str, index: SiteIndex, keys: KeySpec | None) -> ImportedFile:
    """The register readings of a captured telegram stream for the site of ``index``. A wrong
    or missing key raises :class:`~lastgang.ingest.dlms.DecryptionError` (an
    :class:`~lastgang.errors.InvalidInput`); every other problem is raised together."""
    data = capture_bytes(content)
    result = decode_stream(data, keys, source=source)
    problems = Problems(source)
    readings, used = telegram_readings(result.telegrams, index, problems)
    warnings = list(result.problems)
    if result.remainder:
        problems.warn(
            f"the last {len(result.remainder)} byte(s) are an incomplete frame or telegram "
            "(the capture ended inside it); they are archived but give no reading"
        )
    if not result.telegrams:
        problems.add(
            "no smart meter telegram found in the file (expected M-Bus or HDLC frames with "
            "DLMS data-notifications, as bytes or hex text)"
        )
    if problems:
        raise InvalidInput(
            f"{source}: rejected, nothing imported ({len(problems.items)} problem(s))",
            problems.summary(),
        )
    numbers = sorted({t.meter_number for t in result.telegrams if t.meter_number})
    return build_file(
        source,
        "registers",
        DLMS_FORMAT,
        used,
        readings,
        index,
        options=keys_to_options(keys),
        warnings=[*warnings, *problems.warnings],
        names={number: index.meter_named(number) for number in numbers},
    )
