"""ebUtilities ConsumptionRecord (EC-2): schema versions, DST days, quality, every error."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lastgang.errors import InvalidInput
from lastgang.ingest.eda import (
    ConsumptionRecord,
    EnergyDirection,
    MeterCodeRole,
    parse_consumption_record,
    parse_meter_code,
)
from lastgang.quality import Quality

DATA = Path(__file__).resolve().parents[1] / "data" / "eda"
EXAMPLES = DATA / "ebutilities"


def _utc(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp())  # type: ignore[misc]


def _parse(name: str) -> ConsumptionRecord:
    path = DATA / name
    return parse_consumption_record(path.read_bytes(), path.name)


def _errors(data: bytes, source: str = "test.xml") -> InvalidInput:
    with pytest.raises(InvalidInput) as info:
        parse_consumption_record(data, source)
    return info.value


def _reference_bq(path: Path) -> list[float]:
    """Quantities read with the standard library, as an independent reference."""
    return [float(el.text or "") for el in ET.parse(path).iter() if el.tag.endswith("}BQ")]


# -- the published examples ------------------------------------------------------------------


@pytest.mark.parametrize("version", ["01p40", "01p41"])
def test_ec2_published_example_quarter_hourly(version: str) -> None:
    path = EXAMPLES / f"example_{version}_quater-hourly.xml"
    record = parse_consumption_record(path.read_bytes(), path.name)

    assert record.schema_version == f"01.{version[-2:]}"
    assert record.validated_with == f"ConsumptionRecord_{version}.xsd"
    assert record.message_code == "DATEN_CRMSG"
    assert record.sender == "ATXXXXXX"
    assert record.receiver == "EPXXXXXX"
    assert record.metering_point == "ATXXXXXX00000000000000000XXXXXXXX"
    assert record.message_id == "ATXXXXXX202404030752132560263752458"
    assert record.document_created == datetime(2024, 4, 3, 5, 52, 15, 539143, tzinfo=UTC)
    assert record.warnings == ()
    (series,) = record.series
    assert series.meter_code.text == "1-1:2.9.0 P.01"
    assert series.meter_code.obis == "1-1:2.9.0"
    assert series.meter_code.suffix == "P.01"
    assert series.meter_code.role is MeterCodeRole.COMMUNITY_SURPLUS
    assert series.meter_code.direction is EnergyDirection.EXPORT
    assert (series.uom, series.unit, series.interval) == ("KWH", "kWh", "QH")
    assert len(series) == 96
    # 2024-04-01 00:00+02:00 is 2024-03-31 22:00 UTC
    assert series.start[0] == _utc(2024, 3, 31, 22)
    assert series.end[-1] == _utc(2024, 4, 1, 22)
    assert np.all(series.end - series.start == 900)
    assert np.all(series.start[1:] == series.end[:-1])
    assert series.quantity.tolist() == _reference_bq(path)
    assert series.total == pytest.approx(0.719, abs=1e-12)
    # 07:45-08:00 local (05:45 UTC) holds 0.026 kWh in the file
    assert series.quantity[np.flatnonzero(series.start == _utc(2024, 4, 1, 5, 45))[0]] == 0.026
    assert np.all(series.quality == Quality.L1)


@pytest.mark.parametrize("version", ["01p40", "01p41"])
def test_ec2_published_example_daily(version: str) -> None:
    path = EXAMPLES / f"example_{version}_daily.xml"
    record = parse_consumption_record(path.read_bytes(), path.name)
    (series,) = record.series
    assert series.interval == "D"
    assert series.declared_count == 1
    # 2024-03-30 00:00+01:00 .. 2024-03-31 00:00+01:00
    assert series.start.tolist() == [_utc(2024, 3, 29, 23)]
    assert series.end.tolist() == [_utc(2024, 3, 30, 23)]
    assert series.quantity.tolist() == [36.77]
    assert series.quality.tolist() == [Quality.L1]


# -- days with 92 and 100 quarter hours ------------------------------------------------------


def test_tor_4_2_spring_day_has_92_quarter_hours() -> None:
    record = _parse("spring_2024-03-31_92qh_01p41.xml")
    assert record.ec_id == "AT00999900000RC100130000000000000"
    codes = [s.meter_code.text for s in record.series]
    assert codes == ["1-1:1.9.0 G.01", "1-1:2.9.0 G.02", "1-1:2.9.0 G.03"]
    roles = [s.meter_code.role for s in record.series]
    assert roles == [
        MeterCodeRole.CONSUMPTION,
        MeterCodeRole.COMMUNITY_SHARE,
        MeterCodeRole.COMMUNITY_RECEIVED,
    ]
    for series in record.series:
        assert len(series) == 92
        # local midnight +01:00 is 23:00 UTC the day before; the next midnight +02:00 is 22:00
        assert series.start[0] == _utc(2024, 3, 30, 23)
        assert series.end[-1] == _utc(2024, 3, 31, 22)
        # UTC runs on without a gap: 01:45-02:00+01:00 is followed by 03:00-03:15+02:00
        assert np.all(series.start[1:] == series.end[:-1])
    consumption, share, received = record.series
    assert consumption.total == pytest.approx(92 * 0.25)
    assert share.total == pytest.approx(92 * 0.15)
    assert received.total == pytest.approx(92 * 0.10)
    # L2 at 03:00 and 03:15 local summer time (01:00, 01:15 UTC); L3 at 12:00 local (10:00 UTC)
    l2 = consumption.start[consumption.quality == Quality.L2].tolist()
    l3 = consumption.start[consumption.quality == Quality.L3].tolist()
    assert l2 == [_utc(2024, 3, 31, 1), _utc(2024, 3, 31, 1, 15)]
    assert l3 == [_utc(2024, 3, 31, 10)]
    assert int((consumption.quality == Quality.L1).sum()) == 89


def test_tor_4_2_autumn_day_has_100_quarter_hours() -> None:
    record = _parse("autumn_2024-10-27_100qh_01p40.xml")
    production, surplus = record.series
    assert production.meter_code.role is MeterCodeRole.PRODUCTION
    assert production.meter_code.direction is EnergyDirection.EXPORT
    assert surplus.meter_code.role is MeterCodeRole.COMMUNITY_SURPLUS
    for series in record.series:
        assert len(series) == 100
        assert series.start[0] == _utc(2024, 10, 26, 22)
        assert series.end[-1] == _utc(2024, 10, 27, 23)
        assert np.all(series.start[1:] == series.end[:-1])
        # 02:00+02:00 (00:00 UTC) and 02:00+01:00 (01:00 UTC) are both there, an hour apart
        assert _utc(2024, 10, 27, 0) in series.start
        assert _utc(2024, 10, 27, 1) in series.start
    assert production.total == pytest.approx(100 * 0.5)
    assert surplus.total == pytest.approx(100 * 0.2)
    assert surplus.quality.tolist().count(Quality.L2) == 1


def test_daily_values_over_the_spring_change_day() -> None:
    (series,) = _parse("daily_over_spring_change_01p41.xml").series
    assert (series.end - series.start).tolist() == [86_400, 82_800, 86_400]
    assert series.total == pytest.approx(10.5 + 9.75 + 11.0)


# -- quality ---------------------------------------------------------------------------------


def test_q1_quality_codes_map_to_quality() -> None:
    text = (EXAMPLES / "example_01p41_quater-hourly.xml").read_text(encoding="utf-8")
    text = text.replace("<ns0:MM>L1</ns0:MM>", "<ns0:MM>L2</ns0:MM>", 3)
    text = text.replace("<ns0:MM>L1</ns0:MM>", "<ns0:MM>L3</ns0:MM>", 1)
    (series,) = parse_consumption_record(text.encode(), "q.xml").series
    assert series.quality[:5].tolist() == [2, 2, 2, 3, 1]
    assert Quality(int(series.quality[0])) is Quality.L2
    assert not Quality(int(series.quality[3])).billable


def test_numeric_reading_method_codes_are_taken_as_l3_with_a_warning() -> None:
    text = (EXAMPLES / "example_01p41_quater-hourly.xml").read_text(encoding="utf-8")
    text = text.replace("<ns0:MM>L1</ns0:MM>", "<ns0:MM>01</ns0:MM>", 2)
    record = parse_consumption_record(text.encode(), "q.xml")
    assert record.series[0].quality[:3].tolist() == [3, 3, 1]
    (warning,) = record.warnings
    assert warning.severity == "warning"
    assert "'01'" in warning.reason and "L3" in warning.reason


def test_older_schema_version_is_validated_with_the_nearest_schema() -> None:
    record = _parse("old_version_01p30_without_mm.xml")
    assert record.schema_version == "01.30"
    assert "ConsumptionRecord_01p40.xsd" in record.validated_with
    (series,) = record.series
    assert series.quantity.tolist() == [0.3, 0.3, 0.3, 0.3]
    assert np.all(series.quality == Quality.L3)
    assert [w.line for w in record.warnings] == [29]


# -- meter codes (EC-2) ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "obis", "suffix", "role", "direction"),
    [
        ("1-1:1.9.0 G.01", "1-1:1.9.0", "G.01", MeterCodeRole.CONSUMPTION, "import"),
        (
            "1-1:1.9.0 G.01T",
            "1-1:1.9.0",
            "G.01T",
            MeterCodeRole.CONSUMPTION_PARTICIPATION,
            "import",
        ),
        ("1-1:2.9.0 G.01", "1-1:2.9.0", "G.01", MeterCodeRole.PRODUCTION, "export"),
        ("1-1:2.9.0 G.01T", "1-1:2.9.0", "G.01T", MeterCodeRole.PRODUCTION_PARTICIPATION, "export"),
        ("1-1:2.9.0 G.02", "1-1:2.9.0", "G.02", MeterCodeRole.COMMUNITY_SHARE, "export"),
        ("1-1:2.9.0 G.03", "1-1:2.9.0", "G.03", MeterCodeRole.COMMUNITY_RECEIVED, "export"),
        ("1-1:2.9.0  P.01", "1-1:2.9.0", "P.01", MeterCodeRole.COMMUNITY_SURPLUS, "export"),
        ("1-1:2.9.0 P.01T", "1-1:2.9.0", "P.01T", MeterCodeRole.RESIDUAL_SURPLUS, "export"),
        ("1-1:1.29.0", "1-1:1.29.0", None, MeterCodeRole.OTHER, "import"),
        ("1-1:3.9.0 G.01", "1-1:3.9.0", "G.01", MeterCodeRole.OTHER, "other"),
    ],
)
def test_ec2_meter_codes(
    text: str, obis: str, suffix: str | None, role: MeterCodeRole, direction: str
) -> None:
    code = parse_meter_code(text)
    assert (code.obis, code.suffix, code.role, code.direction.value) == (
        obis,
        suffix,
        role,
        direction,
    )


def test_meter_code_that_is_no_obis_code_is_refused() -> None:
    with pytest.raises(ValueError, match="not an OBIS code"):
        parse_meter_code("Verbrauch")


# -- errors ----------------------------------------------------------------------------------


def test_wrong_number_of_positions_is_an_error_with_its_line() -> None:
    error = _errors((DATA / "wrong_count_01p41.xml").read_bytes())
    (problem,) = error.problems
    assert problem.line == 29  # the EnergyData element
    assert "96" in problem.reason and "95" in problem.reason
    assert problem.meter == "AT0099990000000000000000000100001 1-1:1.9.0 G.01"


def test_overlapping_positions_are_errors() -> None:
    error = _errors((DATA / "overlapping_positions_01p41.xml").read_bytes())
    reasons = [p.reason for p in error.problems]
    overlaps = [r for r in reasons if "overlaps" in r]
    assert len(overlaps) == 2
    # 09:50-10:05 overlaps 09:45-10:00, and 12:00-12:15 is there twice
    assert any("09:50" in r and "09:45" in r for r in overlaps)
    assert any(r.count("12:00:00+02:00") == 2 for r in overlaps)
    # the shifted position is also off the quarter-hour grid
    assert any("not exactly 15 minutes" in r for r in reasons)
    assert all(p.line is not None for p in error.problems)


def test_file_that_is_not_xml_is_refused_with_a_line() -> None:
    error = _errors((DATA / "not_xml.csv").read_bytes(), "not_xml.csv")
    (problem,) = error.problems
    assert problem.line == 1
    assert problem.file == "not_xml.csv"
    assert "not well-formed XML" in problem.reason


def test_empty_file_is_refused() -> None:
    assert "empty" in _errors(b"  \n").problems[0].reason


def test_schema_violations_are_all_reported_with_lines() -> None:
    error = _errors((DATA / "schema_violation_01p41.xml").read_bytes())
    by_line = {p.line: p.reason for p in error.problems}
    assert set(by_line) == {39, 46}
    assert "L4" in by_line[39]
    assert "abc" in by_line[46]
    assert "http://" not in by_line[39]  # namespaces are left out of messages


def test_unsupported_schema_version_is_refused() -> None:
    text = (EXAMPLES / "example_01p41_daily.xml").read_text(encoding="utf-8")
    text = text.replace("consumptionrecord/01p41", "consumptionrecord/01p50")
    text = text.replace('SchemaVersion="01.41"', 'SchemaVersion="01.50"')
    assert "01.50 is not supported" in _errors(text.encode()).problems[0].reason


def test_schema_version_must_match_the_namespace() -> None:
    text = (EXAMPLES / "example_01p41_daily.xml").read_text(encoding="utf-8")
    text = text.replace('SchemaVersion="01.41"', 'SchemaVersion="01.40"')
    assert "does not match the namespace" in _errors(text.encode()).problems[0].reason


def test_other_xml_is_refused() -> None:
    reason = _errors(b"<invoice><total>1</total></invoice>").problems[0].reason
    assert "expected ConsumptionRecord" in reason


@pytest.mark.parametrize(
    "doctype",
    [
        b'<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>',
        b'<!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>',
    ],
)
def test_dtds_and_entities_in_untrusted_input_are_refused(doctype: bytes) -> None:
    text = (EXAMPLES / "example_01p41_daily.xml").read_bytes()
    head, rest = text.split(b"\n", 1)
    error = _errors(head + b"\n" + doctype + b"\n" + rest)
    assert "DOCTYPE" in error.problems[0].reason


def test_negative_quantity_is_an_error() -> None:
    text = (EXAMPLES / "example_01p41_quater-hourly.xml").read_text(encoding="utf-8")
    text = text.replace("<ns0:BQ>0.001000</ns0:BQ>", "<ns0:BQ>-0.001000</ns0:BQ>", 1)
    (problem,) = _errors(text.encode()).problems
    assert "negative quantity -0.001000" in problem.reason
    assert problem.line == 29  # the first EP element


def test_non_energy_unit_is_an_error() -> None:
    text = (EXAMPLES / "example_01p41_daily.xml").read_text(encoding="utf-8")
    text = text.replace('UOM="KWH"', 'UOM="EUR"')
    assert "not an energy unit" in _errors(text.encode()).problems[0].reason


def test_megawatt_hours_are_converted_to_kwh() -> None:
    text = (EXAMPLES / "example_01p41_daily.xml").read_text(encoding="utf-8")
    text = text.replace('UOM="KWH"', 'UOM="MWH"')
    (series,) = parse_consumption_record(text.encode(), "mwh.xml").series
    assert series.unit == "kWh"
    assert series.quantity.tolist() == [36_770.0]


def test_daily_position_must_be_one_local_day() -> None:
    text = (EXAMPLES / "example_01p41_daily.xml").read_text(encoding="utf-8")
    text = text.replace(
        "<ns0:DTT>2024-03-31T00:00:00+01:00</ns0:DTT>",
        "<ns0:DTT>2024-03-30T23:00:00+01:00</ns0:DTT>",
    )
    reasons = [p.reason for p in _errors(text.encode()).problems]
    assert any("not exactly one local day" in r for r in reasons)


def test_count_must_match_the_metering_period() -> None:
    text = (EXAMPLES / "example_01p41_quater-hourly.xml").read_text(encoding="utf-8")
    text = text.replace(
        "<ns0:MeteringPeriodEnd>2024-04-02T00:00:00+02:00",
        "<ns0:MeteringPeriodEnd>2024-04-02T01:00:00+02:00",
    )
    (problem,) = _errors(text.encode()).problems
    assert "has 100 QH intervals" in problem.reason


def test_position_outside_the_metering_period_is_an_error() -> None:
    text = (EXAMPLES / "example_01p41_quater-hourly.xml").read_text(encoding="utf-8")
    text = text.replace(
        "<ns0:MeteringPeriodStart>2024-04-01T00:00:00+02:00",
        "<ns0:MeteringPeriodStart>2024-04-01T00:15:00+02:00",
    ).replace(
        "<ns0:MeteringPeriodEnd>2024-04-02T00:00:00+02:00",
        "<ns0:MeteringPeriodEnd>2024-04-02T00:15:00+02:00",
    )
    reasons = [p.reason for p in _errors(text.encode()).problems]
    assert any("outside the metering period" in r for r in reasons)


def test_offset_that_is_not_legal_time_is_a_warning() -> None:
    text = (EXAMPLES / "example_01p41_daily.xml").read_text(encoding="utf-8")
    # 2024-03-30 00:00+01:00 is the same instant as 2024-03-30 01:00+02:00 (not legal in March)
    text = text.replace(
        "<ns0:DTF>2024-03-30T00:00:00+01:00", "<ns0:DTF>2024-03-30T01:00:00+02:00"
    ).replace(
        "<ns0:MeteringPeriodStart>2024-03-30T00:00:00+01:00",
        "<ns0:MeteringPeriodStart>2024-03-30T01:00:00+02:00",
    )
    record = parse_consumption_record(text.encode(), "offset.xml")
    assert record.series[0].start.tolist() == [_utc(2024, 3, 29, 23)]
    (warning,) = record.warnings
    assert "not Austrian legal time" in warning.reason


def test_same_meter_code_twice_over_the_same_period_is_an_error() -> None:
    text = (EXAMPLES / "example_01p41_daily.xml").read_text(encoding="utf-8")
    start = text.index("        <ns0:Energy>")
    end = text.index("        </ns0:Energy>") + len("        </ns0:Energy>\n")
    doubled = text[:end] + text[start:end] + text[end:]
    reasons = [p.reason for p in _errors(doubled.encode()).problems]
    assert any("counted twice" in r for r in reasons)


# -- untrusted bytes -------------------------------------------------------------------------

_SEED = (EXAMPLES / "example_01p41_daily.xml").read_bytes()


@given(
    st.lists(st.tuples(st.integers(0, len(_SEED) - 1), st.integers(0, 255)), min_size=1, max_size=8)
)
def test_corrupted_bytes_give_invalid_input_or_a_record(edits: list[tuple[int, int]]) -> None:
    data = bytearray(_SEED)
    for position, value in edits:
        data[position] = value
    try:
        record = parse_consumption_record(bytes(data), "fuzz.xml")
    except InvalidInput as exc:
        assert exc.problems
        assert all(p.file == "fuzz.xml" for p in exc.problems)
    else:
        assert all(len(s.start) == len(s.quantity) == len(s.quality) for s in record.series)
