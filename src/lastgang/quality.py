"""Quality of 15-minute values (Q-1).

Codes are ordered from best to worst, so the quality of a value computed from several inputs is the
``max`` of their codes (a virtual meter is as good as its worst input).
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np
from numpy.typing import NDArray


class Quality(IntEnum):
    """Quality flag of one 15-minute value (Austrian market rules, ``MM`` in ebUtilities).

    - ``L1`` measured (Messwert)
    - ``L2`` reliable substitute value (Ersatzwert), billable
    - ``L3`` unreliable substitute value (vorläufiger Ersatzwert): not for final bills, will change
    - ``MISSING`` no value at all
    """

    L1 = 1
    L2 = 2
    L3 = 3
    MISSING = 4

    @property
    def label(self) -> str:
        return "missing" if self is Quality.MISSING else self.name

    @property
    def billable(self) -> bool:
        """Whether a final invoice may use a value of this quality (Q-1: L1 and L2 only)."""
        return self in (Quality.L1, Quality.L2)

    @property
    def substitute(self) -> bool:
        return self in (Quality.L2, Quality.L3)

    @classmethod
    def parse(cls, text: str) -> Quality:
        """``L1``/``L2``/``L3``/``missing`` (case-insensitive) to a :class:`Quality`."""
        key = text.strip().upper()
        if key in ("L1", "L2", "L3"):
            return cls[key]
        if key in ("MISSING", "", "-"):
            return cls.MISSING
        raise ValueError(f"unknown quality {text!r}: expected L1, L2, L3 or missing")


QualityArray = NDArray[np.int8]


def worst(*qualities: QualityArray) -> QualityArray:
    """Element-wise worst quality of several arrays of the same shape."""
    if not qualities:
        raise ValueError("worst() needs at least one quality array")
    out = qualities[0].copy()
    for q in qualities[1:]:
        np.maximum(out, q, out=out)
    return out
