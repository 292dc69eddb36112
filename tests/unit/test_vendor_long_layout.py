"""Vendor tables in the long layout (one row per metering point ID and quarter hour), read
column-wise, against the same rows read one by one in plain Python: decimal comma with
thousands separator, local end labels over the autumn change (TOR-4.2, the repeated hour listed
twice per series), unmeasured and missing directions, qualities, problems with line and column."""

from __future__ import annotations

import io
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl
import pytest

from lastgang.concept.load import load_site
from lastgang.errors import InvalidInput
from lastgang.ingest import vendor
from lastgang.ingest.csv_readings import SiteIndex
from lastgang.ingest.vendor import read_vendor

SITE = Path(__file__).resolve().parents[1] / "data" / "site-basic.toml"
VIENNA = ZoneInfo("Europe/Vienna")

#: metering point ID -> (location, direction) of site-basic.toml
POINTS = {
    "AT0081000801000000000000000100001": ("hak", "import"),
    "AT0081000801000000000000000100002": ("hak", "export"),
    "AT0081000801000000000000000100011": ("top1", "import"),
    "AT0081000801000000000000000100021": ("top2", "import"),
    "AT0081000801000000000000000100041": ("pv", "export"),
}
#: the directions each location has a metering point for
MEASURED = {"hak": {"import", "export"}, "top1": {"import"}, "top2": {"import"}, "pv": {"export"}}
#: the meter installed in October 2024 (top1's was exchanged in June)
METER = {
    "hak": "LGZ:81234567",
    "top1": "ISK:1ISK0070005678",
    "top2": "SME:22000123",
    "pv": "FRO:PV0001",
}
ORDER = ("hak", "top1", "top2", "general", "pv")  # the site's order of locations
QUALITY = {"": 1, "L1": 1, "L2": 2, "L3": 3}
FOLD_DAY_START = datetime(2024, 10, 27, 0, 0, tzinfo=UTC)  # 02:00 CEST, the repeated hour
DAY_START = int(datetime(2024, 10, 26, 22, 0, tzinfo=UTC).timestamp())  # 27 October 00:00


def _german(value: float) -> str:
    """``1234.5`` as a German table writes it: ``1.234,500``."""
    whole, _, decimals = f"{value:.3f}".partition(".")
    groups: list[str] = []
    while len(whole) > 3:
        groups.insert(0, whole[-3:])
        whole = whole[:-3]
    return ".".join([whole, *groups]) + "," + decimals


def _label(end: datetime) -> datetime:
    """The wall-clock label of a period end as a vendor writes it: its start's local time plus
    15 minutes (so the last summer quarter hour ends at 03:00, and 02:15 .. 03:00 are listed
    twice on the day of the change)."""
    start = (end - timedelta(minutes=15)).astimezone(VIENNA).replace(tzinfo=None)
    return start + timedelta(minutes=15)


def _rows() -> list[tuple[datetime, str, float | None, str]]:
    """(period end, metering point ID, value or None for an empty cell, quality) of three days
    around the autumn change, time-major like a vendor export. The end instants are known in
    UTC here; the file only shows them as local wall times (:func:`_label`)."""
    rng = np.random.default_rng(20241027)
    start = datetime(2024, 10, 25, 22, 0, tzinfo=UTC)  # 26 October 00:00 CEST
    stop = datetime(2024, 10, 28, 23, 0, tzinfo=UTC)  # 29 October 00:00 CET
    rows: list[tuple[datetime, str, float | None, str]] = []
    t = start
    while t < stop:
        end = t + timedelta(minutes=15)
        in_repeated_hour = FOLD_DAY_START <= t < FOLD_DAY_START + timedelta(hours=2)
        for mp in POINTS:
            if mp.endswith("02") and not in_repeated_hour and rng.random() < 0.1:
                continue  # the export of the grid connection missing (the row left out)
            value: float | None = float(rng.integers(0, 2_000_000)) / 1000
            if in_repeated_hour and mp.endswith("11") and t == FOLD_DAY_START:
                value = None  # an empty cell in the first 02:15 of top1: still a listed time
            quality = str(rng.choice(["L1", "L1", "L1", "L2", "L3", ""]))
            rows.append((end, mp, value, quality))
        t = end
    return rows


def _expected(rows: list[tuple[datetime, str, float | None, str]]) -> dict[str, list[Any]]:
    """The interval rows the reader must give, computed one row at a time."""
    table: dict[tuple[str, int], list[float]] = {}
    for end, mp, value, quality in rows:
        if value is None:
            continue
        location, direction = POINTS[mp]
        slot = int((end - timedelta(minutes=15)).timestamp()) // 900
        entry = table.setdefault(
            (location, slot),
            [
                math.nan if "import" in MEASURED[location] else 0.0,
                math.nan if "export" in MEASURED[location] else 0.0,
                1,
            ],
        )
        entry[0 if direction == "import" else 1] = value
        entry[2] = max(entry[2], QUALITY[quality])
    keys = sorted(table, key=lambda k: (ORDER.index(k[0]), k[1]))
    return {
        "location": [k[0] for k in keys],
        "meter": [METER[k[0]] for k in keys],
        "slot": [k[1] for k in keys],
        "import": [table[k][0] for k in keys],
        "export": [table[k][1] for k in keys],
        "quality": [table[k][2] for k in keys],
    }


def _csv(rows: list[tuple[datetime, str, float | None, str]]) -> bytes:
    lines = ["Zeitstempel;Zählpunkt;Wert;Qualität"]
    for end, mp, value, quality in rows:
        wall = _label(end).strftime("%d.%m.%Y %H:%M")
        lines.append(f"{wall};{mp};{'' if value is None else _german(value)};{quality}")
    return ("\n".join(lines) + "\n").encode("utf-8")


def _parquet(rows: list[tuple[datetime, str, float | None, str]]) -> bytes:
    frame = pl.DataFrame(
        {
            "Zeitstempel": [_label(end) for end, *_ in rows],
            "Zählpunkt": [mp for _, mp, _, _ in rows],
            "Wert": [value for _, _, value, _ in rows],
            "Qualität": [quality or None for *_, quality in rows],
        }
    )
    buffer = io.BytesIO()
    frame.write_parquet(buffer)
    return buffer.getvalue()


def _read(content: bytes, name: str) -> dict[str, list[Any]]:
    index = SiteIndex(load_site(SITE))
    file = read_vendor(content, name, index, None)
    assert file.kind == "intervals"
    rows = file.readings.intervals
    return {
        "location": [rows.locations[i] for i in rows.location.tolist()],
        "meter": [rows.meters[i] for i in rows.meter.tolist()],
        "slot": rows.slot.tolist(),
        "import": rows.import_kwh.tolist(),
        "export": rows.export_kwh.tolist(),
        "quality": rows.quality.tolist(),
    }


def _same(got: dict[str, list[Any]], expected: dict[str, list[Any]]) -> None:
    assert got.keys() == expected.keys()
    for key in ("location", "meter", "slot", "quality"):
        assert got[key] == expected[key], key
    for key in ("import", "export"):  # bit for bit, missing values (NaN) in the same places
        a = np.asarray(got[key], dtype=np.float64)
        b = np.asarray(expected[key], dtype=np.float64)
        assert a.tobytes() == b.tobytes(), key


@pytest.mark.parametrize("container", ["csv", "parquet"])
def test_tor_4_2_long_table_equals_a_row_by_row_reading(container: str) -> None:
    rows = _rows()
    content = _csv(rows) if container == "csv" else _parquet(rows)
    got = _read(content, f"long.{container}")
    expected = _expected(rows)
    _same(got, expected)
    # the day of the change has 100 quarter hours at every location with values
    day = [
        s
        for loc, s in zip(got["location"], got["slot"], strict=True)
        if loc == "top2" and DAY_START <= s * 900 < DAY_START + 25 * 3600
    ]
    assert len(day) == 100
    # the grid connection's export is missing (NaN) where its row was left out, the
    # unmeasured directions of the consumers and the PV are 0
    hak_export = [x for loc, x in zip(got["location"], got["export"], strict=True) if loc == "hak"]
    assert any(math.isnan(x) for x in hak_export)
    assert all(
        x == 0.0 for loc, x in zip(got["location"], got["export"], strict=True) if loc == "top1"
    )
    assert all(
        x == 0.0 for loc, x in zip(got["location"], got["import"], strict=True) if loc == "pv"
    )


def test_tor_4_2_a_series_without_a_value_in_the_repeated_hour_keeps_its_count() -> None:
    # top1's first 02:15 (summer time) is an empty cell: its second 02:15 is still winter time
    rows = _rows()
    got = _read(_csv(rows), "long.csv")
    top1 = {s for loc, s in zip(got["location"], got["slot"], strict=True) if loc == "top1"}
    summer = int(FOLD_DAY_START.timestamp()) // 900  # 02:00-02:15 CEST
    winter = summer + 4  # 02:00-02:15 CET
    assert summer not in top1
    assert winter in top1


def test_the_table_and_the_sort_number_the_quarter_hours_alike(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    content = _csv(_rows())
    by_table = _read(content, "long.csv")
    monkeypatch.setattr(vendor, "_DENSE_ROWS", 0)
    monkeypatch.setattr(vendor, "_DENSE_MIN", 0)
    _same(_read(content, "long.csv"), by_table)


def test_every_problem_of_a_long_table_with_line_and_column() -> None:
    lines = ["Zeitstempel;Zählpunkt;OBIS;Wert;Qualität"]
    for k in range(3):
        wall = (datetime(2024, 5, 2) + timedelta(minutes=15 * (k + 1))).strftime("%d.%m.%Y %H:%M")
        lines += [
            f"{wall};AT0081000801000000000000000100011;1-1:2.29.0;1,5;L1",  # clash
            f"{wall};AT0081000801000000000000000999999;1-1:1.29.0;1,5;L1",  # unknown
            f"{wall};AT0081000801000000000000000100021;1-1:1.29.0;1,5;X9",  # quality
            f"{wall};AT0081000801000000000000000100021;1-1:1.29.0;2,5;L1",  # duplicate
            f"{wall};AT0081000801000000000000000100041;9-9:9.9.9;2,5;L1",  # quantity
            f"{wall};AT0081000801000000000000000100041;1-1:2.29.0;zwei;L1",  # number
        ]
    index = SiteIndex(load_site(SITE))
    with pytest.raises(InvalidInput) as caught:
        read_vendor(("\n".join(lines) + "\n").encode(), "bad.csv", index, None)
    found = {(p.line, p.column): p.reason for p in caught.value.problems}
    assert all(p.file == "bad.csv" for p in caught.value.problems)
    for k in range(3):
        first = 2 + 6 * k
        assert "direction export for metering point" in found[(first, "Wert")]
        if k == 0:
            assert "is not in site" in found[(first + 1, "Zählpunkt")]
        assert "unknown quality 'X9'" in found[(first + 2, "Qualität")]
        assert f"already on line {first + 2}" in found[(first + 3, "Wert")]
        assert "OBIS code 9-9:9.9.9 is not supported" in found[(first + 4, "OBIS")]
        assert "'zwei' is not a number" in found[(first + 5, "Wert")]
    # an unknown metering point is named once, at its first row
    assert [p.line for p in caught.value.problems if "is not in site" in p.reason] == [3]
