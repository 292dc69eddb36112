"""Rounding of money and billed quantities (lastgang.money), worked by hand."""

from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lastgang.money import (
    format_kwh,
    format_money,
    format_price,
    format_rate,
    round_money,
    to_decimal_kwh,
)


def test_round_money_is_half_up_to_the_cent() -> None:
    """0.125 -> 0.13 (half-even would give 0.12); 2.645 -> 2.65; just below half stays down."""
    assert round_money(Decimal("0.125")) == Decimal("0.13")
    assert round_money(Decimal("2.645")) == Decimal("2.65")
    assert round_money(Decimal("2.6449999")) == Decimal("2.64")
    assert round_money(Decimal("7")) == Decimal("7.00")
    assert str(round_money(Decimal("7"))) == "7.00"


def test_round_money_credits_round_away_from_zero() -> None:
    """A credit of -0.005 is -0.01, the mirror of 0.005 -> 0.01; -0.004 is 0.00, never -0.00."""
    assert round_money(Decimal("-0.005")) == Decimal("-0.01")
    assert round_money(Decimal("-1.235")) == Decimal("-1.24")
    assert str(round_money(Decimal("-0.004"))) == "0.00"


def test_round_money_refuses_floats_and_nan() -> None:
    with pytest.raises(TypeError):
        round_money(0.125)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not a finite number"):
        round_money(Decimal("NaN"))


def test_to_decimal_kwh_reads_the_float_as_written() -> None:
    """2.0005 is stored as 2.000499999999999989...; read as its text '2.0005' it rounds half-up
    to 2.001. 0.1 + 0.2 = 0.30000000000000004 bills as 0.300."""
    assert to_decimal_kwh(2.0005) == Decimal("2.001")
    assert to_decimal_kwh(0.1 + 0.2) == Decimal("0.300")
    assert to_decimal_kwh(3.6) == Decimal("3.600")
    assert to_decimal_kwh(0.0004999) == Decimal("0.000")
    assert to_decimal_kwh(1234.5675) == Decimal("1234.568")
    assert str(to_decimal_kwh(-0.0)) == "0.000"
    assert to_decimal_kwh(1e-20) == Decimal("0.000")


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_to_decimal_kwh_refuses_non_finite(bad: float) -> None:
    with pytest.raises(ValueError, match="not a finite number"):
        to_decimal_kwh(bad)


def test_formatting_helpers() -> None:
    assert format_kwh(1234.5678) == "1234.568"
    assert format_kwh(Decimal("2.5")) == "2.500"
    assert format_kwh(-0.0) == "0.000"
    assert format_money(Decimal("12.3")) == "12.30"
    assert format_money(Decimal("12.345"), "EUR") == "12.35 EUR"
    assert format_price(Decimal("0.2")) == "0.20"
    assert format_price(Decimal("0.1845")) == "0.1845"
    assert format_price(Decimal("3")) == "3.00"
    assert format_rate(Decimal("0.20")) == "20 %"
    assert format_rate(Decimal("0.1")) == "10 %"
    assert format_rate(Decimal("0.055")) == "5.5 %"
    assert format_rate(Decimal("0")) == "0 %"


@given(st.decimals(min_value=-(10**9), max_value=10**9, allow_nan=False, places=6))
def test_round_money_is_within_half_a_cent(value: Decimal) -> None:
    rounded = round_money(value)
    assert rounded.as_tuple().exponent == -2
    assert abs(rounded - value) <= Decimal("0.005")
    if abs(rounded - value) == Decimal("0.005"):
        assert abs(rounded) > abs(value)  # ties go away from zero


@given(st.floats(min_value=0, max_value=1e9, allow_nan=False))
def test_to_decimal_kwh_is_within_half_a_wh(value: float) -> None:
    quantity = to_decimal_kwh(value)
    assert quantity.as_tuple().exponent == -3
    assert abs(quantity - Decimal(repr(value))) <= Decimal("0.0005")


def _through_text(value: float) -> Decimal:
    """The billed quantity by its definition: the float's shortest text, half-up to the Wh."""
    from decimal import ROUND_HALF_UP

    out = Decimal(repr(value)).quantize(Decimal("0.001"), rounding=ROUND_HALF_UP)
    return out.copy_abs() if out.is_zero() else out


@given(
    st.one_of(
        st.floats(min_value=-2e6, max_value=2e6, allow_nan=False),
        st.integers(min_value=-(10**9), max_value=10**9).map(lambda n: n / 2000),  # half Wh
        st.integers(min_value=-(10**9), max_value=10**9).map(lambda n: n / 1000 + 0.0005),
    )
)
def test_to_decimal_kwh_is_the_text_rounded_to_the_wh(value: float) -> None:
    """Rounded from the float where it is far from a half Wh, from its text near one: always
    the same Decimal (value, digits and exponent) as rounding the text."""
    got, want = to_decimal_kwh(value), _through_text(value)
    assert got == want and got.as_tuple() == want.as_tuple()


def test_to_decimal_kwh_near_a_half_wh_follows_the_text() -> None:
    """2.0005 is stored as 2.000499999...; its text says 2.0005, which rounds up."""
    assert to_decimal_kwh(2.0005) == Decimal("2.001")
    assert to_decimal_kwh(-2.0005) == Decimal("-2.001")
    assert to_decimal_kwh(1073741.8235) == _through_text(1073741.8235)
    assert str(to_decimal_kwh(0.0004)) == "0.000" and str(to_decimal_kwh(-0.0004)) == "0.000"


@given(
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False),
    st.floats(min_value=1e-3, max_value=1e6, allow_nan=False),
)
def test_percent_is_the_text_of_the_share_rounded_half_up(part: float, whole: float) -> None:
    """Rounded from the float away from a half tenth, from its text near one: the same Decimal
    as rounding the text of part / whole x 100."""
    from decimal import ROUND_HALF_UP

    from lastgang.money import percent

    want = Decimal(repr(part / whole * 100)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
    want = want.copy_abs() if want.is_zero() else want
    got = percent(part, whole)
    assert got is not None and got == want and got.as_tuple() == want.as_tuple()


def test_percent_at_a_half_tenth_follows_the_text() -> None:
    """1 / 2000 = 0.05 %: exactly half a tenth in the text, so half-up gives 0.1."""
    from lastgang.money import percent

    assert percent(1.0, 2000.0) == Decimal("0.1")
    assert percent(-1.0, 2000.0) == Decimal("-0.1")
    assert str(percent(-0.0001, 1000.0)) == "0.0"


_KWH_VALUES = st.one_of(
    st.floats(min_value=-2e6, max_value=2e6, allow_nan=False),
    st.floats(min_value=-1e15, max_value=1e15),  # beyond the direct rounding too
    st.integers(min_value=-(10**9), max_value=10**9).map(lambda n: n / 2000),  # half Wh
    st.integers(min_value=-(10**9), max_value=10**9).map(lambda n: n / 1000 + 0.0005),
)


@given(st.lists(_KWH_VALUES, max_size=40))
def test_to_decimal_kwhs_are_to_decimal_kwh_of_each_value(values: list[float]) -> None:
    """Many values at once give exactly the Decimals (digits and exponent) one by one gives."""
    from lastgang.money import to_decimal_kwhs

    got = to_decimal_kwhs(values)
    want = [to_decimal_kwh(v) for v in values]
    assert [d.as_tuple() for d in got] == [d.as_tuple() for d in want]


def test_to_decimal_kwhs_worked_values_and_non_finite() -> None:
    from lastgang.money import to_decimal_kwhs

    got = to_decimal_kwhs([3.6, 0.1 + 0.2, 2.0005, -2.0005, -0.0, -0.0004, 1e12])
    assert [str(d) for d in got] == [
        "3.600",
        "0.300",
        "2.001",
        "-2.001",
        "0.000",
        "0.000",
        "1000000000000.000",
    ]
    assert to_decimal_kwhs([]) == []
    with pytest.raises(ValueError, match="not a finite number"):
        to_decimal_kwhs([1.0, float("nan")])


@given(
    st.lists(
        st.tuples(
            st.one_of(st.floats(min_value=-1e6, max_value=1e6), st.just(1.0)),
            st.one_of(
                st.floats(min_value=1e-3, max_value=1e6),
                st.sampled_from([0.0, -0.0, 2000.0, float("inf"), float("nan")]),
            ),
        ),
        max_size=40,
    )
)
def test_percents_are_percent_of_each_pair(pairs: list[tuple[float, float]]) -> None:
    from lastgang.money import percent, percents

    got = percents([p for p, _ in pairs], [w for _, w in pairs])
    want = [percent(p, w) for p, w in pairs]
    assert [None if d is None else d.as_tuple() for d in got] == [
        None if d is None else d.as_tuple() for d in want
    ]


def test_percents_worked_values() -> None:
    from lastgang.money import percents

    got = percents([3.6, 1, -0.02, 1.0, 1.0, -1.0, 1.0], [6.0, 3, 1.0, 0.0, 2000.0, 2000.0, 0.1])
    assert [None if d is None else str(d) for d in got] == [
        "60.0",
        "33.3",
        "-2.0",
        None,
        "0.1",
        "-0.1",
        "1000.0",
    ]


_PRICES = st.one_of(
    st.decimals(min_value=-10, max_value=10, places=4, allow_nan=False, allow_infinity=False),
    st.sampled_from(
        [
            Decimal("0.2345"),
            Decimal("0"),
            Decimal("-0.08"),
            Decimal("1E+1"),  # exponent 1: cents = Wh x coefficient
            Decimal("1E+2"),  # exponent 2: rounded by round_money
            Decimal("0.123456789012345678"),  # beyond 64-bit arithmetic
            Decimal("2147483647E-6"),
            Decimal("2147483648E-6"),
        ]
    ),
)


@given(
    st.integers(min_value=0, max_value=5).flatmap(
        lambda columns: st.tuples(
            st.lists(st.lists(_KWH_VALUES, min_size=columns, max_size=columns), max_size=6),
            st.lists(_PRICES, min_size=columns, max_size=columns),
        )
    )
)
def test_priced_kwhs_are_the_quantities_and_amounts_line_by_line(
    case: tuple[list[list[float]], list[Decimal]],
) -> None:
    """Quantities and amounts of a [rows, columns] array at once: exactly (digits and exponent)
    to_decimal_kwh and round_money(quantity x price) of each value, row by row."""
    from lastgang.money import priced_kwhs

    rows, prices = case
    values = np.array(rows, dtype=np.float64).reshape(len(rows), len(prices))
    quantities, amounts = priced_kwhs(values, prices)
    want_q = [to_decimal_kwh(v) for row in rows for v in row]
    want_a = [round_money(q * prices[k % len(prices)]) for k, q in enumerate(want_q)]
    assert [d.as_tuple() for d in quantities] == [d.as_tuple() for d in want_q]
    assert [d.as_tuple() for d in amounts] == [d.as_tuple() for d in want_a]


def test_priced_kwhs_worked_values() -> None:
    """By hand: 2.0005 kWh is billed as 2.001 kWh, x 0.2345 = 0.4692345 -> 0.47; 0.020 x 0.25 =
    0.005 -> 0.01 (half up); 0.019 x 0.25 = 0.00475 -> 0.00; -0.020 x 0.2345 = -0.00469 -> 0.00
    (no negative zero); 0.003 x 0.25 = 0.00075 -> 0.00; 1.234 x 0.25 = 0.3085 -> 0.31. Then
    -0.020 x 0.25 = -0.005 -> -0.01 (half away from zero); 0.003 x -0.08 = -0.00024 -> 0.00;
    1.234 kWh x 10 (1E+1) = 12.34."""
    from lastgang.money import priced_kwhs

    values = [[2.0005, 0.020, 0.019], [-0.020, 0.003, 1.234]]
    prices = [Decimal("0.2345"), Decimal("0.25"), Decimal("0.25")]
    quantities, amounts = priced_kwhs(values, prices)
    assert [str(q) for q in quantities] == ["2.001", "0.020", "0.019", "-0.020", "0.003", "1.234"]
    assert [str(a) for a in amounts] == ["0.47", "0.01", "0.00", "0.00", "0.00", "0.31"]
    _, amounts = priced_kwhs(
        [[-0.020, 0.003, 1.234]], [Decimal("0.25"), Decimal("-0.08"), Decimal("1E+1")]
    )
    assert [str(a) for a in amounts] == ["-0.01", "0.00", "12.34"]
    with pytest.raises(ValueError, match=r"\[rows, 2\] array"):
        priced_kwhs([[1.0, 2.0, 3.0]], prices[:2])
    with pytest.raises(ValueError, match="not a finite number"):
        priced_kwhs([[float("nan")]], prices[:1])
