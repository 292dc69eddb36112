"""Test data of the web tests: the site ``webtest`` (tests/api/site.toml) and its interval
values, worked so that every number can be checked by hand (see test_routes.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

SITE = "webtest"
FIRST_DAY = date(2024, 3, 4)
DAYS = 2
MP = {
    "hak_import": "AT0010000012000000000000000000001",
    "hak_export": "AT0010000012000000000000000000002",
    "pv": "AT0010000012000000000000000000003",
    "top1": "AT0010000012000000000000000000011",
    "top2": "AT0010000012000000000000000000012",
}
VIENNA = ZoneInfo("Europe/Vienna")


def slot_ends(first: date, days: int) -> list[datetime]:
    """The END of every quarter hour of the local days (UTC-aware, any day length)."""
    start = datetime(first.year, first.month, first.day, tzinfo=VIENNA).astimezone(UTC)
    last = first + timedelta(days=days)
    stop = datetime(last.year, last.month, last.day, tzinfo=VIENNA).astimezone(UTC)
    n = int((stop - start).total_seconds() // 900)
    return [start + timedelta(minutes=15 * (i + 1)) for i in range(n)]


def interval_csv(first: date = FIRST_DAY, days: int = DAYS, top1: float = 0.2) -> bytes:
    """Interval values of the four locations: Top 1 ``top1`` kWh and Top 2 0.1 kWh per quarter
    hour, PV 0.25 kWh from 10:00 to 14:00 local time, the HAK the balance of both."""
    rows = ["end,metering_point,import_kwh,export_kwh"]
    for end in slot_ends(first, days):
        local = end.astimezone(VIENNA)
        label = local.isoformat(timespec="minutes")
        begin = (local - timedelta(minutes=15)).hour
        pv = 0.25 if 10 <= begin < 14 else 0.0
        net = top1 + 0.1 - pv
        rows.append(f"{label},{MP['top1']},{top1!r},0")
        rows.append(f"{label},{MP['top2']},0.1,0")
        rows.append(f"{label},{MP['pv']},0,{pv!r}")
        rows.append(f"{label},{MP['hak_import']},{max(net, 0.0)!r},{max(-net, 0.0)!r}")
    return ("\n".join(rows) + "\n").encode("utf-8")
