"""The CSV reader works per distinct value of a column (`_factorize`): its codes must give back
every cell, whichever shortcut finds them (runs of one value, a column repeating one sequence,
or hashing every cell)."""

from __future__ import annotations

import numpy as np
import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from lastgang.ingest.csv_readings import _factorize, _periodic


def _cells(series: pl.Series) -> list[str | None]:
    found = _factorize(series)
    if found is None:  # only when most values are distinct: then the cells are read one by one
        assert len(set(series.to_list())) * 4 > len(series) + 64
        return series.to_list()
    codes, distinct = found
    values = distinct.to_list()
    assert len(set(values)) == len(values)
    return [values[c] if c >= 0 else None for c in codes.tolist()]


def _times(count: int, first: int = 0) -> list[str]:
    return [
        f"2025-01-01 {(first + k) // 4 % 24:02d}:{(first + k) % 4 * 15:02d}+01:00"
        for k in range(count)
    ]


def test_a_column_repeating_one_sequence_is_found_from_its_first_period() -> None:
    # 60 metering points' blocks of the same 96 quarter hours, the file cut mid-block
    column = (_times(96) * 60)[37:]
    series = pl.Series(column)
    periodic = _periodic(series)
    assert periodic is not None
    assert len(periodic[1]) == 96
    assert _cells(series) == column


def test_a_column_that_breaks_its_period_once_is_factorized_whole() -> None:
    column = _times(96) * 60
    column[3000] = "2025-01-02 00:00+01:00"  # one block with another time
    series = pl.Series(column)
    assert _periodic(series) is None
    assert _cells(series) == column


def test_a_column_with_an_empty_cell_is_not_taken_as_periodic() -> None:
    column: list[str | None] = list(_times(96) * 60)
    column[5000] = None
    series = pl.Series(column, dtype=pl.String)
    assert _periodic(series) is None
    assert _cells(series) == column


@settings(max_examples=60, deadline=None)
@given(
    period=st.integers(1, 300),
    repeats=st.integers(1, 40),
    offset=st.integers(0, 299),
    alphabet=st.integers(1, 400),
    seed=st.integers(0, 2**31 - 1),
)
def test_codes_give_back_every_cell(
    period: int, repeats: int, offset: int, alphabet: int, seed: int
) -> None:
    """Random sequences repeated (values may repeat inside the period too): the codes give the
    column back, periodic or not, long enough for the shortcuts or not."""
    rng = np.random.default_rng(seed)
    base = [f"v{v}" for v in rng.integers(0, alphabet, size=period).tolist()]
    column = (base * (repeats + 2))[offset % period :][: period * repeats + 5000]
    assert _cells(pl.Series(column)) == column
