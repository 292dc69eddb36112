"""Money and billed quantities: the one place where lastgang rounds.

Energy stays an unrounded float from the meter to the invoice line (TOR-7.2). Only when a line is
written does it become a :class:`~decimal.Decimal`, and every rounding rule lives here:

- **Billed quantity** (:func:`to_decimal_kwh`): the energy of a line in kWh, rounded half-up to
  :data:`KWH_PLACES` decimals (0.001 kWh = 1 Wh). This is exactly the number printed on the
  invoice, so a tenant can recompute every line as *printed quantity x price*. The float is read
  through its shortest round-trip text (``repr``), so ``2.0005`` becomes ``Decimal('2.0005')``
  and rounds to ``2.001``, and not to ``2.000`` as its binary expansion
  ``2.000499999999999989...`` would. Rounding a line to the Wh changes it by at most 0.0005 kWh,
  far below a cent at any retail price.
- **Amounts** (:func:`round_money`): every line amount and every VAT amount is rounded to the cent
  (:data:`CENT`) with ``ROUND_HALF_UP`` (kaufmännisches Runden: 0.005 -> 0.01, -0.005 -> -0.01).
  Totals are sums of rounded amounts and are never rounded again.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "CENT",
    "KWH_PLACES",
    "PERCENT_STEP",
    "WH",
    "format_kwh",
    "format_money",
    "format_price",
    "format_rate",
    "percent",
    "percents",
    "priced_kwhs",
    "round_money",
    "to_decimal_kwh",
    "to_decimal_kwhs",
]

#: the smallest amount on an invoice
CENT = Decimal("0.01")
#: decimals of a billed or printed kWh quantity (3 = whole Wh)
KWH_PLACES = 3
#: one Wh in kWh, the resolution of billed quantities
WH = Decimal(1).scaleb(-KWH_PLACES)
#: resolution of a printed percentage (shares of local energy, reconciliation differences)
PERCENT_STEP = Decimal("0.1")

_ZERO = Decimal(0)


def _no_negative_zero(value: Decimal) -> Decimal:
    return value.copy_abs() if value.is_zero() else value


def round_money(value: Decimal) -> Decimal:
    """``value`` rounded to the cent, half away from zero (ROUND_HALF_UP).

    >>> round_money(Decimal("2.645")), round_money(Decimal("2.6449"))
    (Decimal('2.65'), Decimal('2.64'))
    >>> round_money(Decimal("-0.005"))
    Decimal('-0.01')
    """
    if not isinstance(value, Decimal):
        raise TypeError(f"round_money needs a Decimal, got {type(value).__name__}")
    if not value.is_finite():
        raise ValueError(f"cannot round the amount {value}: it is not a finite number")
    return _no_negative_zero(value.quantize(CENT, rounding=ROUND_HALF_UP))


def to_decimal_kwh(x: float) -> Decimal:
    """A float energy in kWh as the billed quantity: ``Decimal`` with :data:`KWH_PLACES` decimals.

    The float is converted through ``repr`` (its shortest exact decimal text) and rounded half-up
    to the Wh. ``NaN`` and infinities raise ``ValueError``.

    >>> to_decimal_kwh(3.6), to_decimal_kwh(0.1 + 0.2), to_decimal_kwh(2.0005), to_decimal_kwh(-0.0)
    (Decimal('3.600'), Decimal('0.300'), Decimal('2.001'), Decimal('0.000'))
    """
    value = float(x)
    if not math.isfinite(value):
        raise ValueError(f"cannot bill the energy {value!r} kWh: it is not a finite number")
    wh = value * 1000.0
    if -_FAST_LIMIT < wh < _FAST_LIMIT:
        whole = math.floor(wh)
        rest = wh - whole  # exact
        if abs(rest - 0.5) > _FAST_MARGIN:
            # Far from a half Wh, the text of ``value`` rounds to the nearest Wh as the float
            # itself does: the same Decimal, without the text (a billing run has 100,000 lines
            # and month rows). Near a half Wh the text decides, as always.
            return Decimal(whole + (rest > 0.5)).scaleb(-KWH_PLACES)
    return _no_negative_zero(Decimal(repr(value)).quantize(WH, rounding=ROUND_HALF_UP))


def _wh_steps(x: np.ndarray) -> tuple[list[bool], list[int]]:
    """For every float kWh of ``x``: whether :func:`to_decimal_kwh` may round it directly, and
    then its Wh (the float arithmetic of that function, for all values at once)."""
    wh = x * 1000.0
    direct = np.abs(wh) < _FAST_LIMIT  # False for NaN and infinities: they go the long way
    whole = np.floor(np.where(direct, wh, 0.0))
    rest = wh - whole  # exact
    direct &= np.abs(rest - 0.5) > _FAST_MARGIN
    return direct.tolist(), (whole + (rest > 0.5)).astype(np.int64).tolist()


def _kwh_decimals(x: np.ndarray, direct: list[bool], steps: list[int]) -> list[Decimal]:
    """:func:`to_decimal_kwh` of every value of ``x`` from its :func:`_wh_steps`."""
    return [
        Decimal(n).scaleb(-KWH_PLACES) if ok else to_decimal_kwh(v)
        for v, ok, n in zip(x.tolist(), direct, steps, strict=True)
    ]


def to_decimal_kwhs(values: ArrayLike) -> list[Decimal]:
    """:func:`to_decimal_kwh` of every value (flattened), the float arithmetic of its direct
    rounding done for all of them at once: the same Decimals (month rows of a thousand
    invoices)."""
    x = np.asarray(values, dtype=np.float64).reshape(-1)
    return _kwh_decimals(x, *_wh_steps(x))


def _price_integer(price: Decimal) -> tuple[int, int] | None:
    """``price`` as ``coefficient x 10**exponent`` when the cents of a direct quantity times it
    can be worked out in 64-bit integers (|coefficient| < 2**31, exponent -17 .. 1), else None."""
    if not price.is_finite():
        return None
    sign, digits, exponent = price.as_tuple()
    assert isinstance(exponent, int)  # a finite Decimal
    coefficient = int("".join(map(str, digits)) or "0")
    if coefficient >= 2**31 or not -17 <= exponent <= 1:
        return None
    return (-coefficient if sign else coefficient), exponent


def priced_kwhs(
    values: ArrayLike, prices: Sequence[Decimal]
) -> tuple[list[Decimal], list[Decimal]]:
    """For a ``[rows, columns]`` array of kWh and a price per column: every value's
    :func:`to_decimal_kwh` quantity and ``round_money(quantity x price)``, row by row; the same
    Decimals as those functions give, the amounts worked out in integers for all values at once.

    A quantity of ``n`` Wh at ``c x 10**e`` per kWh is ``n x c x 10**(e - 3)``, so its cents are
    ``n x c / 10**(1 - e)`` rounded half away from zero, exact in 64 bits for a direct quantity
    (``|n| < 2**30``) and a price of :func:`_price_integer`; any other value or price is rounded
    by :func:`round_money` itself.

    >>> priced_kwhs([[2.0005, 1.0], [0.004, -0.001]], [Decimal("0.2345"), Decimal("0.10")])
    ([Decimal('2.001'), Decimal('1.000'), Decimal('0.004'), Decimal('-0.001')], \
[Decimal('0.47'), Decimal('0.10'), Decimal('0.00'), Decimal('0.00')])
    """
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != len(prices):
        raise ValueError(f"priced_kwhs needs a [rows, {len(prices)}] array, got {x.shape}")
    rows, columns = x.shape
    flat = x.reshape(-1)
    direct, steps = _wh_steps(flat)
    quantities = _kwh_decimals(flat, direct, steps)
    exact = np.zeros((rows, columns), dtype=bool)
    cents = np.zeros((rows, columns), dtype=np.int64)
    wh = np.asarray(steps, dtype=np.int64).reshape(rows, columns)
    usable = np.asarray(direct, dtype=bool).reshape(rows, columns)
    for c, price in enumerate(prices):
        found = _price_integer(price)
        if found is None:
            continue
        coefficient, exponent = found
        product = wh[:, c] * coefficient  # below 2**61
        if exponent == 1:
            cents[:, c] = product
        else:
            step = 10 ** (1 - exponent)
            size = (np.abs(product) + step // 2) // step
            cents[:, c] = np.where(product < 0, -size, size)
        exact[:, c] = usable[:, c]
    amounts = [
        Decimal(n).scaleb(-2) if ok else round_money(q * prices[k % columns])
        for k, (q, ok, n) in enumerate(
            zip(quantities, exact.reshape(-1).tolist(), cents.reshape(-1).tolist(), strict=True)
        )
    ]
    return quantities, amounts


#: |kWh x 1000| below which :func:`to_decimal_kwh` may round the float directly: there the
#: float, its shortest text and ``value * 1000.0`` differ by less than 2^-21 Wh, so a float more
#: than :data:`_FAST_MARGIN` from a half Wh rounds to the same Wh as its text
_FAST_LIMIT = float(2**30)
_FAST_MARGIN = 1e-6


def format_kwh(value: float | Decimal) -> str:
    """An energy as printed on an invoice: kWh with 3 decimals (``'3.600'``)."""
    quantity = value if isinstance(value, Decimal) else to_decimal_kwh(value)
    return f"{_no_negative_zero(quantity.quantize(WH, rounding=ROUND_HALF_UP)):.{KWH_PLACES}f}"


def format_money(value: Decimal, currency: str | None = None) -> str:
    """An amount with two decimals (``'12.30'``), followed by the currency if one is given."""
    text = f"{round_money(value):.2f}"
    return f"{text} {currency}" if currency else text


def format_price(value: Decimal) -> str:
    """A unit price as configured, with at least two decimals (``0.2`` -> ``'0.20'``,
    ``0.1845`` -> ``'0.1845'``)."""
    exponent = value.as_tuple().exponent
    places = max(2, -exponent) if isinstance(exponent, int) else 2
    return f"{value:.{places}f}"


def format_rate(value: Decimal) -> str:
    """A VAT rate given as a fraction, in percent (``Decimal('0.20')`` -> ``'20 %'``,
    ``Decimal('0.055')`` -> ``'5.5 %'``)."""
    percent = (value * 100).normalize()
    if percent == percent.to_integral_value():
        percent = percent.quantize(Decimal(1))
    return f"{percent:f} %"


def percent(part: float, whole: float) -> Decimal | None:
    """``part / whole`` in percent with one decimal, half-up (``None`` when ``whole`` is 0 or not
    finite): shares of local energy and reconciliation differences as printed.

    >>> percent(3.6, 6.0), percent(1, 3), percent(-0.02, 1.0), percent(1.0, 0.0)
    (Decimal('60.0'), Decimal('33.3'), Decimal('-2.0'), None)
    """
    part, whole = float(part), float(whole)
    if whole == 0 or not math.isfinite(whole) or not math.isfinite(part):
        return None
    share = part / whole * 100
    tenths = share * 10.0
    if -_FAST_LIMIT < tenths < _FAST_LIMIT:
        whole_tenths = math.floor(tenths)
        rest = tenths - whole_tenths
        if abs(rest - 0.5) > _FAST_MARGIN:  # as in to_decimal_kwh: the text rounds the same
            return Decimal(whole_tenths + (rest > 0.5)).scaleb(-1)
    value = Decimal(repr(share))
    return _no_negative_zero(value.quantize(PERCENT_STEP, rounding=ROUND_HALF_UP))


def percents(parts: ArrayLike, wholes: ArrayLike) -> Sequence[Decimal | None]:
    """:func:`percent` of every pair (flattened), the float arithmetic done for all of them at
    once: the same Decimals and Nones."""
    p = np.asarray(parts, dtype=np.float64).reshape(-1)
    w = np.asarray(wholes, dtype=np.float64).reshape(-1)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        tenths = p / w * 100 * 10.0
    direct = (w != 0) & np.isfinite(w) & np.isfinite(p) & (np.abs(tenths) < _FAST_LIMIT)
    whole = np.floor(np.where(direct, tenths, 0.0))
    rest = tenths - whole
    direct &= np.abs(rest - 0.5) > _FAST_MARGIN
    steps = (whole + (rest > 0.5)).astype(np.int64).tolist()
    return [
        Decimal(n).scaleb(-1) if ok else percent(a, b)
        for a, b, ok, n in zip(p.tolist(), w.tolist(), direct.tolist(), steps, strict=True)
    ]
