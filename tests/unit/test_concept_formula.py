"""Virtual meter formulas: parsing and per-slot evaluation (TOR-4.1v, SM-3)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lastgang.concept.formula import (
    BinOp,
    FormulaError,
    Neg,
    Num,
    Ref,
    evaluate,
    parse_formula,
    references,
    to_text,
)


def test_sm_3_production_formula() -> None:
    node = parse_formula("incl-solar - excl-solar")
    assert node == BinOp("-", Ref("incl-solar"), Ref("excl-solar"))


def test_selectors_constants_and_parentheses() -> None:
    node = parse_formula("hak.import - 0.5 * (apt-1 + apt_2.export)")
    assert node == BinOp(
        "-",
        Ref("hak", "import"),
        BinOp("*", Num(0.5), BinOp("+", Ref("apt-1"), Ref("apt_2", "export"))),
    )
    assert [(r.id, r.selector) for r in references(node)] == [
        ("hak", "import"),
        ("apt-1", "net"),
        ("apt_2", "export"),
    ]


def test_precedence_and_unary_minus() -> None:
    assert parse_formula("-a + 2 * b - c") == BinOp(
        "-", BinOp("+", Neg(Ref("a")), BinOp("*", Num(2.0), Ref("b"))), Ref("c")
    )
    assert parse_formula("a - (b - c)") == BinOp("-", Ref("a"), BinOp("-", Ref("b"), Ref("c")))
    assert parse_formula("a*3") == BinOp("*", Ref("a"), Num(3.0))


def test_hyphen_between_letters_belongs_to_the_id() -> None:
    assert parse_formula("a-b") == Ref("a-b")
    assert parse_formula("a - b") == BinOp("-", Ref("a"), Ref("b"))
    assert parse_formula("a -b") == BinOp("-", Ref("a"), Ref("b"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty formula"),
        ("a *", "ends too early"),
        ("a * b", "multiply a meter by a constant only"),
        ("(a + b) * (c - 1)", "multiply a meter by a constant only"),
        ("a.consumption", "unknown selector '.consumption'"),
        ("(a + b", "missing ')'"),
        ("a b", "unexpected 'b'"),
        ("a / 2", "unexpected character '/'"),
        ("a + )", "unexpected ')'"),
    ],
)
def test_errors_say_what_and_where(text: str, message: str) -> None:
    with pytest.raises(FormulaError) as info:
        parse_formula(text)
    assert message in str(info.value)
    assert "at position" in str(info.value)


def test_evaluate_per_slot_with_hand_numbers() -> None:
    """Three slots: a = (1.0 - 0.2, 0.0 - 0.5, NaN), b = (0.3, 0.1, 1.0) import only.
    a - 0.5 * b.import = (0.8 - 0.15, -0.5 - 0.05, NaN) = (0.65, -0.55, NaN)."""
    values = {
        ("a", "net"): np.array([0.8, -0.5, np.nan]),
        ("b", "import"): np.array([0.3, 0.1, 1.0]),
    }
    out = evaluate(
        parse_formula("a - 0.5 * b.import"), lambda ref: values[(ref.id, ref.selector)], 3
    )
    np.testing.assert_allclose(out[:2], [0.65, -0.55])
    assert np.isnan(out[2])


_ids = st.sampled_from(["a", "b-1", "pv_roof", "x2"])
_refs = st.builds(Ref, _ids, st.sampled_from(["net", "import", "export"]))
_nums = st.builds(Num, st.integers(0, 100).map(lambda n: n / 4))


def _nodes(children: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    return st.one_of(
        st.builds(Neg, children),
        st.builds(BinOp, st.sampled_from(["+", "-"]), children, children),
        st.builds(BinOp, st.just("*"), _nums, children),
    )


@given(st.recursive(st.one_of(_refs, _nums), _nodes, max_leaves=8))
def test_text_round_trip(node: object) -> None:
    """Writing a formula back as text and parsing it gives the same value on any data."""
    rng = np.random.default_rng(1)
    data = {
        (i, s): rng.normal(size=4)
        for i in ["a", "b-1", "pv_roof", "x2"]
        for s in ["net", "import", "export"]
    }
    text = to_text(node)  # type: ignore[arg-type]
    if not references(node):  # type: ignore[arg-type]
        return
    again = parse_formula(text)
    first = evaluate(node, lambda r: data[(r.id, r.selector)], 4)  # type: ignore[arg-type]
    second = evaluate(again, lambda r: data[(r.id, r.selector)], 4)
    np.testing.assert_allclose(first, second)
