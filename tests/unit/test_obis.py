"""OBIS codes (TOR-4.3) and market meter codes (EC-2)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lastgang import obis
from lastgang.errors import InvalidInput, InvalidObis
from lastgang.obis import (
    MeterCode,
    ObisCode,
    Processing,
    Quantity,
    parse_meter_code,
    parse_obis,
)


def test_tor_4_3_import_register() -> None:
    code = parse_obis("1-0:1.8.0")
    assert code == ObisCode(1, 0, 1, 8, 0, 255)
    assert code.quantity is Quantity.ACTIVE_IMPORT
    assert code.direction == "import"
    assert code.phase is None
    assert code.processing is Processing.REGISTER
    assert code.tariff == 0
    assert code.is_register and not code.is_interval and not code.is_instantaneous
    assert code.description == "active energy import (A+), register, total"
    assert code == obis.IMPORT_REGISTER


def test_tor_4_3_export_register() -> None:
    code = parse_obis("1-0:2.8.0")
    assert code.quantity is Quantity.ACTIVE_EXPORT
    assert code.direction == "export"
    assert code.is_register
    assert code.description == "active energy export (A-), register, total"
    assert code == obis.EXPORT_REGISTER


def test_tor_4_3_tariff_registers() -> None:
    t1 = parse_obis("1-0:1.8.1")
    t2 = parse_obis("1.8.2")
    assert (t1.tariff, t2.tariff) == (1, 2)
    assert t1.description == "active energy import (A+), register, tariff 1"
    assert t2.description == "active energy import (A+), register, tariff 2"
    assert (t1, t2) == (obis.IMPORT_REGISTER_T1, obis.IMPORT_REGISTER_T2)


def test_tor_4_3_interval_import_energy() -> None:
    code = parse_obis("1-1:1.29.0")
    assert (code.a, code.b, code.c, code.d, code.e, code.f) == (1, 1, 1, 29, 0, 255)
    assert code.processing is Processing.INTERVAL
    assert code.is_interval and not code.is_register
    assert code.direction == "import"
    assert code == obis.INTERVAL_IMPORT
    assert parse_obis("1-1:2.29.0") == obis.INTERVAL_EXPORT
    assert code.description == (
        "active energy import (A+), load-profile interval, total, channel 1"
    )


def test_tor_4_3_period_energy_is_an_interval_value() -> None:
    code = parse_obis("1-1:1.9.0")
    assert code.processing is Processing.PERIOD_ENERGY
    assert code.is_interval and not code.is_register


def test_tor_4_3_reactive_and_quadrants() -> None:
    assert parse_obis("3.8.0").quantity is Quantity.REACTIVE_IMPORT
    assert parse_obis("3.8.0").direction == "import"
    assert parse_obis("4.8.0").quantity is Quantity.REACTIVE_EXPORT
    assert parse_obis("4.8.0").direction == "export"
    quadrants = [parse_obis(f"1-0:{c}.8.0") for c in (5, 6, 7, 8)]
    assert [q.quantity for q in quadrants] == [
        Quantity.REACTIVE_Q1,
        Quantity.REACTIVE_Q2,
        Quantity.REACTIVE_Q3,
        Quantity.REACTIVE_Q4,
    ]
    # Q1 and Q4 lie on the active-import side, Q2 and Q3 on the export side.
    assert [q.direction for q in quadrants] == ["import", "export", "export", "import"]
    assert quadrants[0].description == "reactive energy quadrant I (Q1), register, total"


@pytest.mark.parametrize(
    ("text", "quantity", "phase", "direction"),
    [
        ("1-0:21.7.0", Quantity.ACTIVE_IMPORT, 1, "import"),
        ("1-0:41.7.0", Quantity.ACTIVE_IMPORT, 2, "import"),
        ("1-0:61.7.0", Quantity.ACTIVE_IMPORT, 3, "import"),
        ("1-0:22.7.0", Quantity.ACTIVE_EXPORT, 1, "export"),
        ("1-0:42.7.0", Quantity.ACTIVE_EXPORT, 2, "export"),
        ("1-0:62.7.0", Quantity.ACTIVE_EXPORT, 3, "export"),
        ("1-0:31.7.0", Quantity.CURRENT, 1, None),
        ("1-0:51.7.0", Quantity.CURRENT, 2, None),
        ("1-0:71.7.0", Quantity.CURRENT, 3, None),
        ("1-0:32.7.0", Quantity.VOLTAGE, 1, None),
        ("1-0:52.7.0", Quantity.VOLTAGE, 2, None),
        ("1-0:72.7.0", Quantity.VOLTAGE, 3, None),
        ("1-0:36.7.0", Quantity.ACTIVE_SIGNED, 1, None),
        ("1-0:56.7.0", Quantity.ACTIVE_SIGNED, 2, None),
        ("1-0:76.7.0", Quantity.ACTIVE_SIGNED, 3, None),
        ("1-0:13.7.0", Quantity.POWER_FACTOR, None, None),
        ("1-0:14.7.0", Quantity.FREQUENCY, None, None),
        ("1-0:16.7.0", Quantity.ACTIVE_SIGNED, None, None),
        ("1-0:1.7.0", Quantity.ACTIVE_IMPORT, None, "import"),
        ("1-0:2.7.0", Quantity.ACTIVE_EXPORT, None, "export"),
        ("1-0:9.7.0", Quantity.APPARENT_IMPORT, None, "import"),
        ("1-0:91.7.0", Quantity.NEUTRAL_CURRENT, None, None),
    ],
)
def test_tor_4_3_quantities_and_phases(
    text: str, quantity: Quantity, phase: int | None, direction: str | None
) -> None:
    code = parse_obis(text)
    assert code.quantity is quantity
    assert code.phase == phase
    assert code.direction == direction
    assert code.is_instantaneous
    assert code.processing is Processing.INSTANTANEOUS


def test_tor_4_3_descriptions_of_instantaneous_values() -> None:
    assert parse_obis("1-0:21.7.0").description == "active power import (A+) L1, instantaneous"
    assert parse_obis("1-0:52.7.0").description == "voltage L2, instantaneous"
    assert parse_obis("1-0:13.7.0").description == "power factor, instantaneous"
    assert parse_obis("1-0:1.6.0").description == (
        "active power import (A+), maximum demand, total"
    )


def test_tor_4_3_phase_constants() -> None:
    assert [str(c) for c in obis.PHASE_POWER_IMPORT] == ["1-0:21.7.0", "1-0:41.7.0", "1-0:61.7.0"]
    assert [str(c) for c in obis.PHASE_POWER_EXPORT] == ["1-0:22.7.0", "1-0:42.7.0", "1-0:62.7.0"]
    assert [str(c) for c in obis.PHASE_POWER_SIGNED] == ["1-0:36.7.0", "1-0:56.7.0", "1-0:76.7.0"]
    assert [c.phase for c in obis.CURRENT] == [1, 2, 3]
    assert [c.c for c in obis.VOLTAGE] == [32, 52, 72]


def test_tor_4_3_billing_period_f() -> None:
    assert parse_obis("1-0:1.8.0*255").f == 255
    previous = parse_obis("1-0:1.8.0*3")
    assert previous.f == 3
    assert previous.description.endswith("billing period 3")
    assert parse_obis("1-0:1.8.0&3") == previous
    assert parse_obis("1.8.0&3") == previous
    assert parse_obis("1.8.0*03") == previous


def test_tor_4_3_short_forms_default_a1_b0_f255() -> None:
    assert parse_obis("1.8.0") == ObisCode(1, 0, 1, 8, 0, 255)
    assert parse_obis("2.8.1*255") == ObisCode(1, 0, 2, 8, 1, 255)
    assert parse_obis("  1-0:1.8.0 \n") == ObisCode(1, 0, 1, 8, 0, 255)


def test_tor_4_3_format() -> None:
    code = ObisCode(1, 0, 1, 8, 0)
    assert code.format() == "1-0:1.8.0"
    assert code.format(full=True) == "1-0:1.8.0*255"
    assert str(code) == "1-0:1.8.0"
    # A billing period other than 255 is never dropped.
    assert str(ObisCode(1, 0, 1, 8, 0, 12)) == "1-0:1.8.0*12"


def test_non_electricity_codes_have_no_electric_meaning() -> None:
    clock = parse_obis("0-0:1.0.0")
    assert clock.quantity is Quantity.OTHER
    assert clock.processing is Processing.OTHER
    assert clock.direction is None and clock.phase is None
    assert "medium 0" in clock.description
    assert parse_obis("1-0:99.1.0").quantity is Quantity.OTHER


@pytest.mark.parametrize(
    "text",
    [
        "",
        "1-0:1.8",
        "1.8",
        "1-0:1.8.0*",
        "1-0:1:8:0",
        "A-B:C.D.E",
        "1-0:1.8.0.0",
        "-1.8.0",
        "1 .8.0",
    ],
)
def test_tor_4_3_malformed_codes_are_rejected(text: str) -> None:
    with pytest.raises(InvalidObis) as caught:
        parse_obis(text)
    assert isinstance(caught.value, InvalidInput)
    (problem,) = caught.value.problems
    assert "A-B:C.D.E*F" in problem.reason


def test_tor_4_3_missing_tariff_group_gets_a_hint() -> None:
    with pytest.raises(InvalidObis) as caught:
        parse_obis("1-0:1.8")
    assert "value group E" in caught.value.problems[0].reason


def test_tor_4_3_groups_above_255_are_rejected() -> None:
    with pytest.raises(InvalidObis) as caught:
        parse_obis("1-0:300.8.256")
    reasons = [p.reason for p in caught.value.problems]
    assert len(reasons) == 2
    assert "group C = 300" in reasons[0] and "group E = 256" in reasons[1]
    with pytest.raises(InvalidObis):
        ObisCode(1, 0, 1, 8, -1)


def test_ec_2_meter_codes_with_suffix() -> None:
    code = parse_meter_code("1-1:1.9.0 G.01")
    assert code.text == "1-1:1.9.0 G.01"
    assert code.obis == ObisCode(1, 1, 1, 9, 0)
    assert code.suffix == "G.01"
    assert code.meaning == "consumption"
    assert str(code) == "1-1:1.9.0 G.01"
    community = parse_meter_code("1-1:2.9.0 G.03")
    assert community.obis.direction == "export" and community.suffix == "G.03"
    surplus = parse_meter_code("1-1:2.9.0  P.01")
    assert surplus.suffix == "P.01"
    assert surplus.text == "1-1:2.9.0  P.01"
    assert surplus == MeterCode("1-1:2.9.0 P.01", ObisCode(1, 1, 2, 9, 0), "P.01")


def test_meter_code_without_suffix() -> None:
    code = parse_meter_code("1-1:1.29.0")
    assert code.suffix is None and code.meaning is None
    assert code.obis == obis.INTERVAL_IMPORT


@pytest.mark.parametrize("text", ["", "1-1:1.9.0 g.01", "1-1:1.9.0 G.01 X", "1-1:1.9 G.01"])
def test_malformed_meter_codes_are_rejected(text: str) -> None:
    with pytest.raises(InvalidObis):
        parse_meter_code(text)


# --- properties -----------------------------------------------------------------------------

groups = st.integers(0, 255)
codes = st.builds(ObisCode, groups, groups, groups, groups, groups, groups)


@given(codes)
def test_tor_4_3_round_trip_through_text(code: ObisCode) -> None:
    assert parse_obis(code.format(full=True)) == code
    assert parse_obis(code.format()) == code
    assert parse_obis(str(code).replace("*", "&")) == code


@given(groups, groups, groups)
def test_tor_4_3_short_form_is_electricity_meter_channel_0(c: int, d: int, e: int) -> None:
    assert parse_obis(f"{c}.{d}.{e}") == ObisCode(1, 0, c, d, e, 255)


@given(st.integers(1, 80), st.sampled_from([7, 8, 9, 29]), st.integers(0, 9))
def test_phase_blocks_repeat_the_total_block(c: int, d: int, e: int) -> None:
    code = ObisCode(1, 0, c, d, e)
    base = ObisCode(1, 0, (c - 1) % 20 + 1, d, e)
    assert code.quantity is base.quantity
    assert code.direction == base.direction
    if code.quantity is not Quantity.OTHER:
        assert code.phase == (None if c <= 20 else (c - 1) // 20)
