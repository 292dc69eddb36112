"""The canonical CSV text of a JSON push: what the raw archive keeps and what makes a push
idempotent (TOR-7.1)."""

from __future__ import annotations

import pytest
from pydantic import TypeAdapter, ValidationError

from lastgang.api.routes_data import Push, canonical_csv
from lastgang.errors import StoreError

PUSH: TypeAdapter[object] = TypeAdapter(Push)


def _csv(body: dict[str, object]) -> str:
    return canonical_csv(PUSH.validate_python(body)).decode()  # type: ignore[arg-type]


def test_registers_are_written_with_fixed_columns_and_exact_numbers() -> None:
    body = {
        "kind": "registers",
        "readings": [
            {
                "time": "2024-03-31T03:00+02:00",
                "meter": "81234567",
                "obis": "1-0:1.8.0",
                "value": 1520.1,
                "unit": "kWh",
            },
            {
                "obis": "1-0:2.8.0",
                "meter": "81234567",
                "time": "2024-03-31T03:00+02:00",
                "value": 310.0,
            },
        ],
    }
    assert _csv(body) == (
        "time,meter,obis,value,unit\n"
        "2024-03-31T03:00+02:00,81234567,1-0:1.8.0,1520.1,kWh\n"
        "2024-03-31T03:00+02:00,81234567,1-0:2.8.0,310.0,kWh\n"
    )


def test_optional_columns_appear_only_when_used() -> None:
    sample = {
        "time": "2024-01-01T00:15+01:00",
        "meter": "SME:1",
        "l1_kw": 1.0,
        "l2_kw": 0.4,
        "l3_kw": -2.0,
    }
    plain = _csv({"kind": "phases", "readings": [sample]})
    assert plain.splitlines()[0] == "time,meter,l1_kw,l2_kw,l3_kw"
    flagged = _csv({"kind": "phases", "readings": [sample, {**sample, "status": "F.F"}]})
    assert flagged.splitlines()[0] == "time,meter,l1_kw,l2_kw,l3_kw,status"
    assert flagged.splitlines()[1].endswith(",")  # no status on the first row


def test_the_same_readings_give_the_same_bytes_and_a_quoted_comma_stays_one_field() -> None:
    a = {
        "kind": "intervals",
        "readings": [{"end": "2024-03-31T03:15+02:00", "metering_point": "AT1", "import_kwh": 0.1}],
    }
    b = {
        "readings": [
            {
                "import_kwh": 0.1,
                "metering_point": "AT1",
                "export_kwh": 0,
                "end": "2024-03-31T03:15+02:00",
            }
        ],
        "kind": "intervals",
    }
    assert _csv(a) == _csv(b)
    c = {
        "kind": "registers",
        "readings": [{"time": "t", "meter": "a,b", "obis": "1.8.0", "value": 1}],
    }
    assert _csv(c).splitlines()[1] == 't,"a,b",1.8.0,1.0,kWh'


def test_a_push_must_not_be_empty_or_carry_infinite_numbers() -> None:
    with pytest.raises(ValidationError):
        PUSH.validate_python({"kind": "intervals", "readings": []})
    with pytest.raises(ValidationError):
        PUSH.validate_python(
            {
                "kind": "intervals",
                "readings": [{"end": "x", "metering_point": "AT1", "import_kwh": float("inf")}],
            }
        )


def test_the_web_application_needs_a_store_file() -> None:
    from lastgang.api.app import create_app

    with pytest.raises(StoreError, match="needs a store file"):
        create_app(":memory:")
