"""Minimum accuracy classes of billing meters (TOR-5.1 / table A3)."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lastgang.concept.accuracy import (
    A3,
    ClassKind,
    accuracy_problems,
    compare_accuracy,
    meets_requirement,
    parse_accuracy_class,
)
from lastgang.concept.model import Connection, Meter, Transformer
from lastgang.errors import InvalidInput


def meter(**fields: Any) -> Meter:
    return Meter(manufacturer="LGZ", serial="4711", installed=date(2024, 1, 1), **fields)


def ct(accuracy_class: str | None) -> Transformer:
    return Transformer(ratio="200/5", accuracy_class=accuracy_class)


def vt(accuracy_class: str | None) -> Transformer:
    return Transformer(ratio="20000/100", accuracy_class=accuracy_class)


# --- comparing classes ----------------------------------------------------------------------


def test_tor_5_1_order_of_active_classes() -> None:
    # 2 = A < 1 = B < 0.5 = C
    assert compare_accuracy("2", "1") == -1
    assert compare_accuracy("1", "0.5") == -1
    assert compare_accuracy("A", "B") == -1
    assert compare_accuracy("B", "C") == -1
    assert compare_accuracy("C", "A") == 1
    assert compare_accuracy("0.5", "2") == 1


@pytest.mark.parametrize(("number", "letter"), [("2", "A"), ("1", "B"), ("0.5", "C")])
def test_tor_5_1_both_spellings_are_one_class(number: str, letter: str) -> None:
    assert compare_accuracy(number, letter) == 0
    assert compare_accuracy(letter.lower(), number) == 0
    assert parse_accuracy_class(number) == parse_accuracy_class(letter.lower())
    assert meets_requirement(letter, number) and meets_requirement(number, letter)


def test_tor_5_1_labels() -> None:
    assert parse_accuracy_class("b").label == "1 (B)"
    assert parse_accuracy_class("0,5").label == "0.5 (C)"
    assert parse_accuracy_class("0.2 s").label == "0.2S"
    assert parse_accuracy_class("0,5 S", ClassKind.CT).label == "0.5S"


def test_tor_5_1_s_classes_meet_the_plain_class_and_vice_versa() -> None:
    assert meets_requirement("0.5S", "0.5", ClassKind.CT)
    assert meets_requirement("0.5", "0.5S", ClassKind.CT)
    assert meets_requirement("0.2S", "0.2", ClassKind.CT)
    assert not meets_requirement("0.5S", "0.2", ClassKind.CT)
    assert compare_accuracy("0.5S", "0.5", ClassKind.CT) == 1
    assert compare_accuracy("0.5S", "0.2", ClassKind.CT) == -1


def test_tor_5_1_iec_active_s_classes() -> None:
    assert meets_requirement("0.5S", "C")
    assert meets_requirement("0.2S", "C")
    assert compare_accuracy("0.2S", "C") == 1


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("D", ClassKind.ACTIVE),
        ("0.2", ClassKind.ACTIVE),  # no plain 0.2 class for active energy meters
        ("A", ClassKind.REACTIVE),  # letters are active energy classes only
        ("0.7", ClassKind.CT),
        ("5P10", ClassKind.CT),
        ("0.2S", ClassKind.VT),  # voltage transformers have no S classes
        ("", ClassKind.ACTIVE),
        ("class 1", ClassKind.ACTIVE),
    ],
)
def test_unknown_class_text_is_rejected(text: str, kind: ClassKind) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_accuracy_class(text, kind)
    assert "not a known class" in caught.value.problems[0].reason


def test_protection_class_gets_a_hint() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_accuracy_class("5P20", ClassKind.CT)
    assert "protection class" in caught.value.problems[0].reason


_ACTIVE = ["2", "A", "1", "B", "0.5", "C", "0.5S", "0.2S"]


@given(st.sampled_from(_ACTIVE), st.sampled_from(_ACTIVE), st.sampled_from(_ACTIVE))
def test_class_order_is_a_total_order(a: str, b: str, c: str) -> None:
    assert compare_accuracy(a, b) == -compare_accuracy(b, a)
    if compare_accuracy(a, b) <= 0 and compare_accuracy(b, c) <= 0:
        assert compare_accuracy(a, c) <= 0
    if compare_accuracy(a, b) >= 0:
        assert meets_requirement(a, b)


# --- table A3 -------------------------------------------------------------------------------


def test_tor_5_1_a3_table_rows() -> None:
    rows = {
        c: (
            r.active.label,
            r.reactive.label,
            None if r.ct is None else r.ct.label,
            None if r.vt is None else r.vt.label,
        )
        for c, r in A3.items()
    }
    assert rows == {
        Connection.LV_DIRECT: ("2 (A)", "3", None, None),
        Connection.LV_CT: ("1 (B)", "2", "0.5", None),
        Connection.MV: ("1 (B)", "2", "0.5", "0.5"),
        Connection.HV: ("0.5 (C)", "1", "0.2", "0.2"),
    }


def test_tor_5_1_a3_lv_direct_minimum_passes() -> None:
    assert accuracy_problems(meter(connection="lv-direct", accuracy_class="A")) == []
    assert accuracy_problems(meter(accuracy_class="2", reactive_class="3")) == []
    assert accuracy_problems(meter(accuracy_class="b", reactive_class="2")) == []
    assert accuracy_problems(meter(accuracy_class="C", reactive_class="1")) == []


def test_tor_5_1_a3_lv_direct_reactive_class_3_is_the_lowest() -> None:
    # Class 3 is the least accurate reactive class, so only unknown text can fail here.
    (problem,) = accuracy_problems(meter(reactive_class="4"))
    assert "reactive energy class '4'" in problem and "not a known class" in problem


def test_tor_5_1_a3_lv_ct_minimum_passes() -> None:
    good = meter(connection="lv-ct", accuracy_class="1", reactive_class="2", ct=ct("0.5"))
    assert accuracy_problems(good) == []
    assert accuracy_problems(good.model_copy(update={"ct": ct("0.5S")})) == []


def test_tor_5_1_a3_lv_ct_every_miss() -> None:
    bad = meter(connection="lv-ct", accuracy_class="A", reactive_class="3", ct=ct("1"))
    problems = accuracy_problems(bad)
    assert len(problems) == 3
    active, reactive, current = problems
    assert active.startswith("meter LGZ:4711 (lv-ct): active energy class 2 (A)")
    assert "minimum 1 (B)" in active
    assert "reactive energy class 3" in reactive and "minimum 2 " in reactive
    assert "current transformer class 1 " in current and "0.5 / 0.5S" in current


def test_tor_5_1_a3_lv_ct_needs_a_current_transformer() -> None:
    (problem,) = accuracy_problems(meter(connection="lv-ct", accuracy_class="B"))
    assert "no current transformer" in problem and "0.5 / 0.5S" in problem


def test_tor_5_1_a3_transformer_without_class_is_a_problem() -> None:
    (problem,) = accuracy_problems(meter(connection="lv-ct", accuracy_class="B", ct=ct(None)))
    assert "current transformer has no accuracy class" in problem
    assert "ct.accuracy_class" in problem


def test_tor_5_1_a3_mv_minimum_passes() -> None:
    good = meter(
        connection="mv", accuracy_class="B", reactive_class="2", ct=ct("0.5S"), vt=vt("0.5")
    )
    assert accuracy_problems(good) == []


def test_tor_5_1_a3_mv_every_miss() -> None:
    bad = meter(connection="mv", accuracy_class="2", reactive_class="3", ct=ct("1"), vt=vt("1"))
    problems = accuracy_problems(bad)
    assert len(problems) == 4
    assert "minimum 1 (B)" in problems[0]
    assert "minimum 2 " in problems[1]
    assert "current transformer class 1 " in problems[2]
    assert "voltage transformer class 1 " in problems[3] and "minimum 0.5 " in problems[3]


def test_tor_5_1_a3_mv_needs_both_transformers() -> None:
    problems = accuracy_problems(meter(connection="mv", accuracy_class="B"))
    assert len(problems) == 2
    assert "no current transformer" in problems[0]
    assert "no voltage transformer" in problems[1] and "0.5" in problems[1]


def test_tor_5_1_a3_hv_minimum_passes() -> None:
    good = meter(
        connection="hv", accuracy_class="C", reactive_class="1", ct=ct("0.2"), vt=vt("0.2")
    )
    assert accuracy_problems(good) == []
    assert accuracy_problems(good.model_copy(update={"ct": ct("0.2S")})) == []
    assert accuracy_problems(good.model_copy(update={"accuracy_class": "0.2S"})) == []


def test_tor_5_1_a3_hv_every_miss() -> None:
    bad = meter(
        connection="hv", accuracy_class="B", reactive_class="2", ct=ct("0.5S"), vt=vt("0.5")
    )
    problems = accuracy_problems(bad)
    assert len(problems) == 4
    assert "active energy class 1 (B)" in problems[0] and "minimum 0.5 (C)" in problems[0]
    assert "reactive energy class 2 " in problems[1] and "minimum 1 " in problems[1]
    assert "current transformer class 0.5S" in problems[2] and "0.2 / 0.2S" in problems[2]
    assert "voltage transformer class 0.5 " in problems[3] and "minimum 0.2 " in problems[3]


def test_tor_5_1_a3_hv_needs_both_transformers() -> None:
    problems = accuracy_problems(meter(connection="hv", accuracy_class="C"))
    assert len(problems) == 2
    assert "no current transformer" in problems[0] and "0.2 / 0.2S" in problems[0]
    assert "no voltage transformer" in problems[1]


@pytest.mark.parametrize(
    ("connection", "transformers"),
    [
        ("lv-ct", {"ct": ct("0.2S")}),
        ("lv-ct", {"ct": ct("0.1")}),
        ("mv", {"ct": ct("0.2"), "vt": vt("0.1")}),
        ("hv", {"ct": ct("0.1"), "vt": vt("0.1")}),
    ],
)
def test_tor_5_1_a3_more_accurate_transformers_pass(connection: str, transformers: Any) -> None:
    assert (
        accuracy_problems(meter(connection=connection, accuracy_class="0.2S", **transformers)) == []
    )


def test_tor_5_1_transformers_where_the_connection_has_none() -> None:
    problems = accuracy_problems(meter(accuracy_class="B", ct=ct("0.5")))
    assert len(problems) == 1
    assert "has a current transformer" in problems[0] and "'lv-ct'" in problems[0]
    problems = accuracy_problems(
        meter(connection="lv-ct", accuracy_class="B", ct=ct("0.5"), vt=vt("0.5"))
    )
    assert len(problems) == 1
    assert "has a voltage transformer" in problems[0] and "'mv' or 'hv'" in problems[0]


def test_tor_5_1_unknown_class_text_in_a_meter_is_a_problem() -> None:
    problems = accuracy_problems(
        meter(connection="mv", accuracy_class="Z", ct=ct("0.7"), vt=vt("0.5S"))
    )
    assert len(problems) == 3
    assert "active energy class 'Z' (accuracy_class) is not a known class" in problems[0]
    assert "2/A, 1/B, 0.5/C" in problems[0]
    assert "current transformer class '0.7' (ct.accuracy_class)" in problems[1]
    assert "voltage transformer class '0.5S' (vt.accuracy_class)" in problems[2]
