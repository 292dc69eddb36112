"""MQTT payloads of meter gateways -> register readings and phase samples
(``lastgang listen --mqtt``, ``lastgang import --format mqtt``; ``docs/format-mqtt.md``).

A listener archives what it receives as an *MQTT capture*: JSON Lines, one message per line,
``{"topic": ..., "received": "2024-05-01T10:00:00.123456+00:00", "payload": ...}`` with the
payload exactly as received (``payload`` as text when it is UTF-8, else ``payload_base64``), so
the raw archive holds every payload byte unchanged (TOR-7.1) and a capture reads the same on
every rebuild.

Payload forms (recognised per message, or fixed with ``payload`` in the options):

- ``tasmota``: Tasmota SML ``{"Time": "2024-05-01T12:00:00", "SML": {"Total_in": 1234.5,
  "Total_out": 12.3, "Power_curr": 456}}`` (any sensor name instead of ``SML``; energy fields
  ``Total_in``/``E_in``/``1_8_0`` and ``Total_out``/``E_out``/``2_8_0`` in kWh). ``Time`` is
  the device's local time without offset: it is read in the site's time zone, and in the
  repeated autumn hour the instant nearest the time the message was received is taken.
- ``generic``: ``{"meter": "LGZ:81234567", "time": "2024-05-01T12:00:00+02:00",
  "1-0:1.8.0": 1234.5, "1-0:2.8.0": 12.3}`` (OBIS codes as keys, or under ``"obis"`` or
  ``"values"``; ``"unit": "Wh"`` for Wh; ``time`` ISO 8601 with offset or epoch seconds).
- ``smartme``: the device object of the smart-me API, ``{"Serial": 123456, "ValueDate":
  "2024-05-01T10:00:00Z", "CounterReadingImport": 1234.5, "CounterReadingExport": 12.3,
  "CounterReadingUnit": "kWh", "ActivePowerL1": 0.4, "ActivePowerL2": ..., "ActivePowerL3":
  ...}`` (powers in kW).
- ``shelly``: a Shelly Pro 3EM (Gen2) status notification, ``{"src": "shellypro3em-...",
  "method": "NotifyStatus", "params": {"ts": 1714557600.0, "emdata:0": {"total_act": 1234500,
  "total_act_ret": 12300}, "em:0": {"a_act_power": 400.0, "b_act_power": ..., "c_act_power":
  ...}}}`` (Wh and W).

The meter is the payload's meter (``meter``, ``Serial``, ``src``, a ``Meter_number`` field of
the sensor), else the first topic level that is the serial or key of a meter of the site, else
the ``meter`` option. Only registers the meter lists in the site configuration are stored;
instantaneous total power has no table in the store and is not stored.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from lastgang.errors import InvalidInput, InvalidObis, InvalidTime
from lastgang.ingest.csv_readings import NO_METER, SEVERAL_METERS, SiteIndex
from lastgang.ingest.rows import (
    ImportedFile,
    Problems,
    build_file,
    register_rows,
    time_text,
)
from lastgang.obis import parse_obis
from lastgang.store import PhaseRows, ReadingSet
from lastgang.timegrid import parse_timestamp, to_epoch, zone

__all__ = [
    "MQTT_FORMAT",
    "PAYLOAD_FORMATS",
    "Message",
    "PayloadReading",
    "decode_capture",
    "encode_message",
    "parse_payload",
    "read_capture",
    "resolve_reading",
]

#: the format name of MQTT captures in the raw archive
MQTT_FORMAT = "mqtt"

#: payload forms that are recognised
PAYLOAD_FORMATS = ("auto", "tasmota", "generic", "smartme", "shelly")

_TASMOTA_FIELDS = {
    "total_in": "1-0:1.8.0",
    "e_in": "1-0:1.8.0",
    "1_8_0": "1-0:1.8.0",
    "import": "1-0:1.8.0",
    "total_out": "1-0:2.8.0",
    "e_out": "1-0:2.8.0",
    "2_8_0": "1-0:2.8.0",
    "export": "1-0:2.8.0",
}
_METER_FIELDS = ("meter_number", "meter_id", "meter", "serial", "sn", "zaehlernummer")
_OBIS_KEY = re.compile(r"^(\d{1,3}-\d{1,3}:)?\d{1,3}\.\d{1,3}\.\d{1,3}(\*\d{1,3})?$")


@dataclass(frozen=True)
class Message:
    """One MQTT message as received: topic, payload bytes, receive time (UTC)."""

    topic: str
    payload: bytes
    received: datetime


def encode_message(message: Message) -> bytes:
    """One line of an MQTT capture (JSON, ends with a newline)."""
    record: dict[str, Any] = {
        "topic": message.topic,
        "received": message.received.astimezone(UTC).isoformat(),
    }
    try:
        record["payload"] = message.payload.decode("utf-8")
    except UnicodeDecodeError:
        record["payload_base64"] = base64.b64encode(message.payload).decode("ascii")
    return (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")


def decode_capture(content: bytes, problems: Problems) -> list[tuple[int, Message]]:
    """The messages of a capture with their line numbers; bad lines add to ``problems``."""
    out: list[tuple[int, Message]] = []
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as exc:
        problems.add(f"an MQTT capture is UTF-8 JSON Lines; byte {exc.start} is not UTF-8")
        return out
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            topic = record["topic"]
            received = parse_timestamp(record["received"])
            if "payload" in record:
                payload = str(record["payload"]).encode("utf-8")
            else:
                payload = base64.b64decode(record["payload_base64"], validate=True)
        except (ValueError, KeyError, TypeError, InvalidTime) as exc:
            problems.add(
                f"not a capture line {{topic, received, payload}}: {exc}",
                line=number,
                kind="bad capture line",
            )
            continue
        out.append((number, Message(str(topic), payload, received)))
    return out


@dataclass(frozen=True)
class PayloadReading:
    """What one payload says: the meter as named in it (or None), the reading time (UTC epoch
    seconds), register values in kWh by OBIS code, per-phase active power in kW (or None)."""

    form: str
    meter: str | None
    time: int
    registers: tuple[tuple[str, float], ...]
    phases: tuple[float, float, float] | None = None


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.replace(",", "."))
        except ValueError:
            return None
    return None


def _time(value: Any, received: datetime, tz: str) -> int:
    """A payload time: epoch seconds (number), ISO 8601 with offset, or local time without
    offset read in ``tz`` (in a repeated hour: the instant nearest ``received``)."""
    if value is None:
        return to_epoch(received)
    number = _number(value) if not isinstance(value, str) else None
    if number is not None:
        return int(number // 1) if number < 1e11 else int(number // 1000)
    text = str(value).strip()
    try:
        return to_epoch(parse_timestamp(text))
    except InvalidTime:
        pass
    try:
        naive = datetime.fromisoformat(text.replace(" ", "T", 1))
    except ValueError:
        raise ValueError(f"time {text!r} is not ISO 8601") from None
    if naive.tzinfo is not None:
        return to_epoch(naive)
    zi = zone(tz)
    candidates = []
    for fold in (0, 1):
        local = naive.replace(tzinfo=zi, fold=fold)
        back = local.astimezone(UTC).astimezone(zi).replace(tzinfo=None)
        if back == naive:
            candidates.append(to_epoch(local))
    if not candidates:
        raise ValueError(f"time {text!r} does not exist in {tz} (skipped spring hour)")
    target = to_epoch(received)
    return min(candidates, key=lambda c: abs(c - target))


def _detect(data: Mapping[str, Any]) -> str:
    if "params" in data and isinstance(data.get("params"), Mapping) and "src" in data:
        return "shelly"
    if any(k in data for k in ("CounterReading", "CounterReadingImport", "ValueDate")):
        return "smartme"
    if "Time" in data and any(isinstance(v, Mapping) for v in data.values()):
        return "tasmota"
    return "generic"


def parse_payload(
    payload: bytes, received: datetime, tz: str, form: str = "auto"
) -> PayloadReading:
    """What a payload says; ``ValueError`` with the reason when it says nothing usable."""
    try:
        data = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"the payload is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError("the payload is not a JSON object")
    kind = _detect(data) if form == "auto" else form
    if kind == "tasmota":
        return _tasmota(data, received, tz)
    if kind == "smartme":
        return _smartme(data, received, tz)
    if kind == "shelly":
        return _shelly(data, received, tz)
    if kind == "generic":
        return _generic(data, received, tz)
    raise ValueError(f"unknown payload form {form!r}: use {', '.join(PAYLOAD_FORMATS)}")


def _tasmota(data: Mapping[str, Any], received: datetime, tz: str) -> PayloadReading:
    registers: dict[str, float] = {}
    meter: str | None = None
    for value in data.values():
        if not isinstance(value, Mapping):
            continue
        for name, item in value.items():
            key = str(name).lower()
            if key in _TASMOTA_FIELDS:
                number = _number(item)
                if number is not None:
                    registers.setdefault(_TASMOTA_FIELDS[key], number)
            elif key in _METER_FIELDS and item not in (None, ""):
                meter = str(item)
    if not registers:
        raise ValueError(
            "a Tasmota payload without energy fields (Total_in, Total_out, E_in, E_out, 1_8_0, "
            "2_8_0)"
        )
    return PayloadReading(
        "tasmota", meter, _time(data.get("Time"), received, tz), tuple(sorted(registers.items()))
    )


def _generic(data: Mapping[str, Any], received: datetime, tz: str) -> PayloadReading:
    scale = 0.001 if str(data.get("unit", "kWh")).lower() == "wh" else 1.0
    values: dict[str, Any] = {}
    for nested in ("obis", "values"):
        if isinstance(data.get(nested), Mapping):
            values.update(data[nested])
    values.update({k: v for k, v in data.items() if isinstance(k, str) and _OBIS_KEY.match(k)})
    registers: dict[str, float] = {}
    for key, value in values.items():
        try:
            code = parse_obis(str(key))
        except InvalidObis:
            continue
        number = _number(value)
        if number is not None and code.c in (1, 2) and code.d == 8:
            registers[str(code)] = number * scale
    if not registers:
        raise ValueError(
            'no energy register in the payload: give OBIS codes such as "1-0:1.8.0" as keys'
        )
    meter = data.get("meter", data.get("serial"))
    return PayloadReading(
        "generic",
        None if meter in (None, "") else str(meter),
        _time(data.get("time", data.get("timestamp")), received, tz),
        tuple(sorted(registers.items())),
    )


def _smartme(data: Mapping[str, Any], received: datetime, tz: str) -> PayloadReading:
    unit = str(data.get("CounterReadingUnit", "kWh")).lower()
    scale = 0.001 if unit == "wh" else 1.0
    registers: dict[str, float] = {}
    for field_name, obis in (
        ("CounterReadingImport", "1-0:1.8.0"),
        ("CounterReading", "1-0:1.8.0"),
        ("CounterReadingExport", "1-0:2.8.0"),
    ):
        number = _number(data.get(field_name))
        if number is not None:
            registers.setdefault(obis, number * scale)
    if not registers:
        raise ValueError("a smart-me payload without CounterReading/CounterReadingImport")
    phases = tuple(_number(data.get(f"ActivePowerL{i}")) for i in (1, 2, 3))
    serial = data.get("Serial")
    return PayloadReading(
        "smartme",
        None if serial in (None, "") else str(serial),
        _time(data.get("ValueDate"), received, tz),
        tuple(sorted(registers.items())),
        None if any(p is None for p in phases) else phases,  # type: ignore[arg-type]
    )


def _shelly(data: Mapping[str, Any], received: datetime, tz: str) -> PayloadReading:
    params = data["params"]
    registers: dict[str, float] = {}
    phases: tuple[float, float, float] | None = None
    for key, value in params.items():
        if not isinstance(value, Mapping):
            continue
        if str(key).startswith("emdata"):
            for field_name, obis in (("total_act", "1-0:1.8.0"), ("total_act_ret", "1-0:2.8.0")):
                number = _number(value.get(field_name))
                if number is not None:
                    registers[obis] = number / 1000.0
        if str(key).startswith("em:") or str(key) == "em":
            powers = [_number(value.get(f"{p}_act_power")) for p in "abc"]
            if all(p is not None for p in powers):
                phases = (powers[0] / 1000.0, powers[1] / 1000.0, powers[2] / 1000.0)  # type: ignore[operator]
    if not registers:
        raise ValueError("a Shelly notification without emdata total_act/total_act_ret")
    return PayloadReading(
        "shelly",
        str(data.get("src")) if data.get("src") else None,
        _time(params.get("ts"), received, tz),
        tuple(sorted(registers.items())),
        phases,
    )


def names_of(reading: PayloadReading, topic: str) -> list[str]:
    """The names a message's meter is looked up by, in order: the payload's meter, then the
    topic's levels."""
    names = [reading.meter] if reading.meter else []
    names.extend(part for part in topic.split("/") if part)
    return names


def resolve_reading(
    index: SiteIndex, reading: PayloadReading, topic: str, default_meter: str | None
) -> tuple[str | None, str | None]:
    """(meter key, None) for a payload reading, or (None, reason)."""
    for name in names_of(reading, topic):
        key = index.meter_named(name)
        if key not in (NO_METER, SEVERAL_METERS):
            return key, None
    if default_meter:
        key = index.meter_named(default_meter)
        if key not in (NO_METER, SEVERAL_METERS):
            return key, None
        return None, f"the default meter {default_meter!r} is not a meter of the site"
    named = (
        f"meter {reading.meter!r} of the payload" if reading.meter else "no meter in the payload"
    )
    return None, (
        f"{named} and no topic level of {topic!r} is the serial or manufacturer:serial of a meter "
        f"of site {index.site.site.id!r}; add the meter or give --meter"
    )


def read_capture(
    content: bytes, source: str, index: SiteIndex, options: Mapping[str, Any] | None
) -> ImportedFile:
    """The readings of an MQTT capture for the site of ``index``; every problem raised
    together."""
    opts = dict(options or {})
    form = str(opts.get("payload", "auto"))
    default_meter = opts.get("meter")
    problems = Problems(source)
    messages = decode_capture(content, problems)
    m_list: list[int] = []
    t_list: list[int] = []
    regs: list[tuple[str, float]] = []
    reg_owner: list[int] = []
    ph: list[tuple[int, int, tuple[float, float, float]]] = []
    seen: dict[tuple[int, int], tuple[tuple[str, float], ...]] = {}
    named: dict[str, str] = {}
    if default_meter:
        named[str(default_meter)] = index.meter_named(str(default_meter))
    for line, message in messages:
        try:
            reading = parse_payload(message.payload, message.received, index.tz, form)
        except (ValueError, KeyError, TypeError) as exc:
            problems.add(str(exc), line=line, column=message.topic, kind="bad payload")
            continue
        for name in names_of(reading, message.topic):
            named.setdefault(name, index.meter_named(name))
        key, reason = resolve_reading(index, reading, message.topic, default_meter)
        if key is None:
            problems.add(reason or "unknown meter", line=line, column=message.topic, kind=reason)
            continue
        info = index.meters[key]
        m = index.key_index[key]
        t = reading.time
        if t < info.lo or t > info.hi:
            problems.add(
                f"reading outside the installed period of meter {key}",
                line=line,
                meter=key,
                time=time_text(t),
                kind="outside installed period",
            )
            continue
        values = tuple((o, v) for o, v in reading.registers if o in info.registers)
        previous = seen.get((m, t))
        if previous is not None:
            if previous != values:
                problems.add(
                    f"a second message of meter {key} at the same time with other values",
                    line=line,
                    meter=key,
                    time=time_text(t),
                    kind="conflicting messages",
                )
            continue  # a message delivered twice (QoS 1) is read once
        seen[(m, t)] = values
        for obis, value in values:
            reg_owner.append(len(m_list))
            regs.append((obis, value))
        m_list.append(m)
        t_list.append(t)
        if reading.phases is not None:
            ph.append((m, t, reading.phases))
    if not messages and not problems:
        problems.add("the capture has no messages")
    if problems:
        raise InvalidInput(
            f"{source}: rejected, nothing imported ({len(problems.items)} problem(s))",
            problems.summary(),
        )
    names = sorted({o for o, _ in regs})
    owner = np.asarray(reg_owner, dtype=np.int64)
    meters = np.asarray(m_list, dtype=np.int64)
    times = np.asarray(t_list, dtype=np.int64)
    registers = register_rows(
        index,
        meters[owner] if len(owner) else np.zeros(0, dtype=np.int64),
        names,
        np.asarray([names.index(o) for o, _ in regs], dtype=np.int64),
        times[owner] if len(owner) else np.zeros(0, dtype=np.int64),
        np.asarray([v for _, v in regs], dtype=np.float64),
    )
    phases = PhaseRows()
    if ph:
        pm = np.asarray([p[0] for p in ph], dtype=np.int64)
        pt = np.asarray([p[1] for p in ph], dtype=np.int64)
        pv = np.asarray([p[2] for p in ph], dtype=np.float64)
        order = np.lexsort((pt, pm))
        used, local = np.unique(pm[order], return_inverse=True)
        phases = PhaseRows(
            meters=tuple(index.keys[int(u)] for u in used),
            meter=local.astype(np.int32),
            time=pt[order],
            l1=pv[order, 0],
            l2=pv[order, 1],
            l3=pv[order, 2],
        )
    return build_file(
        source,
        "registers",
        MQTT_FORMAT,
        len(messages),
        ReadingSet(registers=registers, phases=phases),
        index,
        options={"mapping": opts} if opts else None,
        warnings=problems.warnings,
        names=named,
    )
