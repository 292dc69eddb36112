"""Meter status information (Statusinformationen, TOR-6.2) -> quality floor per slot.

TOR-6.2 asks that status information a meter produces is evaluated where it affects the values.
lastgang knows a table of status codes; each code sets a *quality floor*: the best quality a value
touched by the status can still have (``Quality`` codes grow worse upwards, so a floor is applied
with ``np.maximum``). Codes whose values cannot be trusted (``unreliable``) push the values to L3:
they are not billable and have to be replaced (Q-1).

Codes are the names below (case-insensitive) or a DLMS/COSEM AMR profile status byte written
``dlms:0x84`` (hex) or ``dlms:132`` (decimal): the worst floor of its set bits applies.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from numpy.typing import ArrayLike, NDArray

from lastgang.errors import InvalidInput, Problem
from lastgang.profiles.readings import StatusSeries
from lastgang.quality import Quality
from lastgang.timegrid import SLOT_SECONDS

__all__ = [
    "DLMS_PROFILE_STATUS_BITS",
    "STATUS_CODES",
    "StatusCode",
    "status_code",
    "status_quality",
]


@dataclass(frozen=True)
class StatusCode:
    """One status a meter can report, and what it does to the values it touches."""

    code: str
    floor: Quality
    unreliable: bool
    description: str
    german: str


def _c(code: str, floor: Quality, description: str, german: str) -> StatusCode:
    return StatusCode(code, floor, floor >= Quality.L3, description, german)


_TABLE = (
    _c("ok", Quality.L1, "no fault", "kein Fehler"),
    _c(
        "daylight-saving",
        Quality.L1,
        "summer time in force when the value was stored (information only)",
        "Sommerzeit aktiv",
    ),
    _c(
        "parameter-change",
        Quality.L1,
        "a parameter of the meter was changed; the values are not affected (documented, TOR-6.2)",
        "Parametrierung geändert",
    ),
    _c(
        "power-failure",
        Quality.L2,
        "supply interrupted during the period: the registers kept their count, but the period's "
        "split over quarter hours is not measured",
        "Spannungsausfall (Netzausfall)",
    ),
    _c(
        "recovered-value",
        Quality.L2,
        "the meter restored the value after an interruption",
        "wiederhergestellter Wert",
    ),
    _c(
        "clock-set",
        Quality.L2,
        "the meter clock was set during the period: the period is longer or shorter than 15 "
        "minutes; the energy is right, its time is not exact",
        "Uhr gestellt",
    ),
    _c(
        "clock-invalid",
        Quality.L3,
        "the meter clock was not valid: the values cannot be placed in time",
        "Uhrzeit ungültig",
    ),
    _c(
        "voltage-missing",
        Quality.L3,
        "a phase voltage was missing: energy of that phase was not registered",
        "Phasenausfall (Spannung fehlt)",
    ),
    _c(
        "measurement-error",
        Quality.L3,
        "the meter reported a measurement fault",
        "Messfehler",
    ),
    _c(
        "data-not-valid",
        Quality.L3,
        "the meter marked the values as not valid",
        "Daten ungültig",
    ),
    _c(
        "critical-error",
        Quality.L3,
        "the meter reported a critical internal error",
        "kritischer Gerätefehler",
    ),
    _c(
        "tamper",
        Quality.L3,
        "manipulation detected (terminal cover opened, magnetic field)",
        "Manipulation (Klemmendeckel, Magnetfeld)",
    ),
    _c("fraud", Quality.L3, "energy theft suspected by the meter", "Betrugsverdacht"),
)

#: Every named status code, by code.
STATUS_CODES: dict[str, StatusCode] = {c.code: c for c in _TABLE}

#: Bits of the DLMS/COSEM AMR profile status byte (status word of a load-profile entry) and the
#: named code each one stands for; bit 4 is not used.
DLMS_PROFILE_STATUS_BITS: dict[int, str] = {
    0: "critical-error",
    1: "clock-invalid",
    2: "data-not-valid",
    3: "daylight-saving",
    5: "clock-set",
    6: "recovered-value",
    7: "power-failure",
}


def _dlms(code: str) -> StatusCode | None:
    text = code[5:].strip()
    try:
        value = int(text, 16) if text.lower().startswith("0x") else int(text, 10)
    except ValueError:
        return None
    if not 0 <= value <= 255:
        return None
    named = [
        STATUS_CODES[DLMS_PROFILE_STATUS_BITS[b]]
        for b in DLMS_PROFILE_STATUS_BITS
        if value >> b & 1
    ]
    floor = max((c.floor for c in named), default=Quality.L1)
    text_bits = ", ".join(c.code for c in named) or "no bit set"
    return StatusCode(
        f"dlms:0x{value:02x}",
        Quality(floor),
        floor >= Quality.L3,
        f"DLMS profile status: {text_bits}",
        "DLMS-Profilstatus",
    )


def status_code(code: str) -> StatusCode | None:
    """The :class:`StatusCode` of a code as a meter reported it, or None when unknown."""
    key = code.strip().lower()
    if key.startswith("dlms:"):
        return _dlms(key)
    return STATUS_CODES.get(key)


def _utc(seconds: int | np.integer) -> str:
    return datetime.fromtimestamp(int(seconds), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def status_quality(
    status: StatusSeries,
    start: int,
    stop: int,
    *,
    reading_times: ArrayLike | None = None,
    meter: str | None = None,
) -> NDArray[np.int8]:
    """Per slot ``[start, stop)``, the quality floor the status events impose (``L1`` = none).

    A status belongs to the reading it was reported with and lowers every slot touched by the
    reading period that ENDS at that reading: with ``reading_times`` (the meter's reading times,
    sorted) that is the period from the previous reading before the status time to the first
    reading at or after it (an event between two readings lowers the period it happened in);
    without them, or before the first reading, the period is the 15 minutes before the status time
    (the status word of a load-profile entry, which is labelled at its period's end).

    Unknown codes are an :class:`~lastgang.errors.InvalidInput` listing each of them with the time
    it was first reported.
    """
    if stop < start:
        raise ValueError(f"stop {stop} is before start {start}")
    n = stop - start
    out = np.full(n, Quality.L1, dtype=np.int8)
    t = np.asarray(status.time, dtype=np.int64)
    if len(t) == 0:
        return out
    codes = np.array([c.strip().lower() for c in status.code], dtype=object)
    unique, first_index, inverse = np.unique(codes, return_index=True, return_inverse=True)
    floors = np.empty(len(unique), dtype=np.int8)
    problems: list[Problem] = []
    for k, code in enumerate(unique.tolist()):
        known = status_code(str(code))
        if known is None:
            problems.append(
                Problem(
                    f"unknown meter status code {status.code[int(first_index[k])]!r}; known codes: "
                    f"{', '.join(STATUS_CODES)} or dlms:0xNN (AMR profile status byte)",
                    meter=meter,
                    time=_utc(t[int(first_index[k])]),
                )
            )
            floors[k] = Quality.L1
        else:
            floors[k] = known.floor
    if problems:
        raise InvalidInput(f"meter status of {meter}: {len(problems)} unknown code(s)", problems)
    floor = floors[inverse.ravel()]

    begin = t - SLOT_SECONDS
    end = t.copy()
    if reading_times is not None:
        r = np.asarray(reading_times, dtype=np.int64)
        if len(r):
            pos = np.searchsorted(r, t, side="left")
            has_prev = pos > 0
            begin[has_prev] = r[pos[has_prev] - 1]
            has_next = pos < len(r)
            end[has_next] = r[pos[has_next]]
    lo = np.clip(begin // SLOT_SECONDS - start, 0, n)
    hi = np.clip(-(-end // SLOT_SECONDS) - start, 0, n)
    for level in (Quality.L2, Quality.L3):
        pick = floor >= level
        if not pick.any():
            continue
        marks = np.zeros(n + 1, dtype=np.int64)
        np.add.at(marks, lo[pick], 1)
        np.add.at(marks, hi[pick], -1)
        out[np.cumsum(marks[:-1]) > 0] = level
    return out
