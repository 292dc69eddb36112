"""The invoices' quality is taken from the slots that are not L1 of all consumers at once
(billing.run._marks); per consumer and period they must be the slots a comparison of the whole
quality row finds."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from lastgang.billing.run import _marks
from lastgang.quality import Quality

L1, L2, L3, MISSING = (int(q) for q in Quality)


def _straight(consumer: np.ndarray, split: np.ndarray, row: int, lo: int, hi: int):  # type: ignore[no-untyped-def]
    quality = np.maximum(consumer[row, lo:hi], split[lo:hi])
    at = np.flatnonzero(quality != L1)
    return at, quality[at]


def test_marks_of_a_worked_case() -> None:
    """Three consumers over 8 slots; the split is L2 in slot 5 and missing in slot 7."""
    consumer = np.array(
        [
            [L1, L1, L2, L1, L1, L1, L1, L1],
            [L1, L1, L1, L1, L1, L1, L1, L1],
            [L3, MISSING, L1, L1, L2, L3, L1, L1],
        ],
        dtype=np.int8,
    )
    split = np.array([L1, L1, L1, L1, L1, L2, L1, MISSING], dtype=np.int8)
    marks = _marks(consumer, split)
    columns, codes = marks.of(0, 0, 8)
    assert columns.tolist() == [2, 5, 7] and codes.tolist() == [L2, L2, MISSING]
    columns, codes = marks.of(1, 0, 8)
    assert columns.tolist() == [5, 7] and codes.tolist() == [L2, MISSING]
    columns, codes = marks.of(2, 0, 8)
    assert columns.tolist() == [0, 1, 4, 5, 7]
    assert codes.tolist() == [L3, MISSING, L2, L3, MISSING]
    # a period of slots 1..5, counted from its first slot
    columns, codes = marks.of(2, 1, 6)
    assert columns.tolist() == [0, 3, 4] and codes.tolist() == [MISSING, L2, L3]
    columns, codes = marks.of(1, 0, 5)
    assert columns.tolist() == [] and codes.tolist() == []


@settings(max_examples=60, deadline=None)
@given(
    st.integers(min_value=1, max_value=150),
    st.integers(min_value=1, max_value=40),
    st.integers(min_value=0, max_value=2**32 - 1),
)
def test_marks_are_the_slots_a_comparison_finds(rows: int, slots: int, seed: int) -> None:
    """Any quality (every code, long stretches of L1, more rows than one block), any period."""
    rng = np.random.default_rng(seed)
    codes = np.array([L1, L1, L1, L1, L2, L3, MISSING], dtype=np.int8)
    consumer = rng.choice(codes, size=(rows, slots))
    split = rng.choice(codes, size=slots)
    marks = _marks(consumer, split)
    for row in {0, rows // 2, rows - 1}:
        lo = int(rng.integers(0, slots))
        hi = int(rng.integers(lo, slots + 1))
        for a, b in ((0, slots), (lo, hi)):
            got_at, got_codes = marks.of(row, a, b)
            want_at, want_codes = _straight(consumer, split, row, a, b)
            assert got_at.tolist() == want_at.tolist()
            assert got_codes.tolist() == want_codes.tolist()
