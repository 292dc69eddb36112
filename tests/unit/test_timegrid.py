"""The quarter-hour grid, legal time and period-end labels (TOR-4.2).

Expected values are written out by hand or come from a one-slot-at-a-time reference built on
``zoneinfo`` (never from the vectorized code under test).
"""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lastgang.errors import InvalidInput, InvalidTime
from lastgang.timegrid import (
    DAY,
    DEFAULT_TIMEZONE,
    HOUR,
    MONTH,
    QUARTER_HOUR,
    SLOT_SECONDS,
    DayType,
    Resolution,
    aggregate,
    austrian_holidays,
    day_slots,
    day_type,
    day_types,
    disaggregate,
    easter_sunday,
    end_label,
    end_labels,
    is_on_grid,
    local_date_of_slots,
    local_days,
    local_start_minutes,
    local_weekday,
    month_slots,
    parse_end_label,
    parse_resolution,
    parse_timestamp,
    parse_timestamps,
    period_boundaries,
    period_slots,
    slot_of,
    slot_start,
    slot_start_epoch,
    slots_of,
    to_epoch,
    utc_offsets,
    zone,
)

VIENNA = "Europe/Vienna"
SPRING = date(2024, 3, 31)  # CET -> CEST at 01:00 UTC (02:00 -> 03:00 local)
NORMAL = date(2024, 1, 15)
AUTUMN = date(2024, 10, 27)  # CEST -> CET at 01:00 UTC (03:00 -> 02:00 local)


def utc_slot(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> int:
    """Slot starting at a UTC wall time, computed with the standard library."""
    seconds = int(datetime(year, month, day, hour, minute, tzinfo=UTC).timestamp())
    assert seconds % 900 == 0
    return seconds // 900


def reference_local(slot: int, tz: str) -> datetime:
    """Local time at the start of one slot, straight from zoneinfo."""
    return datetime.fromtimestamp(slot * 900, ZoneInfo(tz))


# ---------------------------------------------------------------------------------------------
# slots


def test_tor_4_2_slot_is_a_quarter_hour_from_the_epoch() -> None:
    assert SLOT_SECONDS == 900
    assert DEFAULT_TIMEZONE == "Europe/Vienna"
    assert slot_of(0) == 0
    assert slot_of(899) == 0
    assert slot_of(900) == 1
    assert slot_of(-1) == -1
    assert slot_start_epoch(4) == 3600
    assert slot_start(4) == datetime(1970, 1, 1, 1, 0, tzinfo=UTC)
    assert slot_start(4).tzinfo is not None
    assert is_on_grid(1800)
    assert not is_on_grid(1801)
    assert slots_of(np.array([0, 899, 900, -1])).tolist() == [0, 0, 1, -1]
    assert slot_of(int(datetime(2024, 1, 15, 2, 30, tzinfo=UTC).timestamp())) == utc_slot(
        2024, 1, 15, 2, 30
    )


def test_zone_is_cached_and_unknown_zone_has_a_hint() -> None:
    assert zone(VIENNA) is zone(VIENNA)
    assert zone(VIENNA).key == VIENNA
    with pytest.raises(InvalidTime, match="Europe/Vienna"):
        zone("Europe/Viena")
    with pytest.raises(InvalidTime, match="unknown time zone"):
        zone("Mars/Olympus")
    with pytest.raises(InvalidTime):
        zone("../etc/passwd")


# ---------------------------------------------------------------------------------------------
# local days


@pytest.mark.parametrize(
    ("day", "first_utc", "stop_utc", "count"),
    [
        (NORMAL, (2024, 1, 14, 23), (2024, 1, 15, 23), 96),
        (SPRING, (2024, 3, 30, 23), (2024, 3, 31, 22), 92),
        (AUTUMN, (2024, 10, 26, 22), (2024, 10, 27, 23), 100),
    ],
)
def test_tor_4_2_day_has_96_92_100_slots_in_vienna(
    day: date, first_utc: tuple[int, ...], stop_utc: tuple[int, ...], count: int
) -> None:
    start, stop = day_slots(day, VIENNA)
    assert (start, stop) == (utc_slot(*first_utc), utc_slot(*stop_utc))
    assert stop - start == count


@pytest.mark.parametrize(
    ("tz", "day", "count"),
    [
        ("America/New_York", date(2024, 3, 10), 92),
        ("America/New_York", date(2024, 11, 3), 100),
        ("America/New_York", date(2024, 7, 4), 96),
        ("Asia/Kolkata", date(2024, 3, 31), 96),
        ("Asia/Kolkata", date(2024, 10, 27), 96),
        ("Australia/Lord_Howe", date(2024, 4, 7), 98),  # clocks go back by 30 minutes
        ("Australia/Lord_Howe", date(2024, 10, 6), 94),
    ],
)
def test_tor_4_2_day_lengths_in_other_zones(tz: str, day: date, count: int) -> None:
    start, stop = day_slots(day, tz)
    assert stop - start == count


def test_day_slots_in_kolkata_start_at_half_past_utc() -> None:
    assert day_slots(NORMAL, "Asia/Kolkata") == (
        utc_slot(2024, 1, 14, 18, 30),
        utc_slot(2024, 1, 15, 18, 30),
    )


def test_day_slots_accepts_zoneinfo_and_defaults_to_vienna() -> None:
    assert day_slots(AUTUMN, ZoneInfo(VIENNA)) == day_slots(AUTUMN, VIENNA) == day_slots(AUTUMN)


def test_period_slots_is_inclusive_of_the_last_day() -> None:
    start, stop = period_slots(date(2024, 3, 30), date(2024, 4, 1), VIENNA)
    assert start == utc_slot(2024, 3, 29, 23)
    assert stop == utc_slot(2024, 4, 1, 22)
    assert stop - start == 96 + 92 + 96
    assert period_slots(NORMAL, NORMAL) == day_slots(NORMAL)
    with pytest.raises(InvalidTime, match="ends before it starts"):
        period_slots(date(2024, 1, 2), date(2024, 1, 1))


def test_month_slots() -> None:
    assert month_slots(2024, 3, VIENNA) == (utc_slot(2024, 2, 29, 23), utc_slot(2024, 3, 31, 22))
    lengths = {m: np.subtract(*month_slots(2024, m, VIENNA)[::-1]) for m in (1, 2, 3, 10, 12)}
    assert lengths == {1: 31 * 96, 2: 29 * 96, 3: 31 * 96 - 4, 10: 31 * 96 + 4, 12: 31 * 96}
    assert month_slots(2024, 12, VIENNA)[1] == utc_slot(2024, 12, 31, 23)
    year = [month_slots(2024, m) for m in range(1, 13)]
    assert all(a[1] == b[0] for a, b in itertools.pairwise(year))
    assert year[-1][1] - year[0][0] == 366 * 96
    with pytest.raises(InvalidTime, match="month 13"):
        month_slots(2024, 13)


def test_local_days_clips_to_the_range() -> None:
    spring_start, spring_stop = day_slots(SPRING)
    days = local_days(spring_start - 3, spring_stop + 2, VIENNA)
    assert days == [
        (date(2024, 3, 30), spring_start - 3, spring_start),
        (SPRING, spring_start, spring_stop),
        (date(2024, 4, 1), spring_stop, spring_stop + 2),
    ]
    assert local_days(spring_start + 5, spring_start + 6) == [
        (SPRING, spring_start + 5, spring_start + 6)
    ]
    assert local_days(10, 10) == []


def test_local_days_of_a_year_cover_it_once() -> None:
    start, stop = period_slots(date(2024, 1, 1), date(2024, 12, 31))
    days = local_days(start, stop)
    assert len(days) == 366
    assert days[0][0] == date(2024, 1, 1)
    assert days[-1][0] == date(2024, 12, 31)
    assert all(a[2] == b[1] for a, b in itertools.pairwise(days))
    counts = {d: hi - lo for d, lo, hi in days}
    assert counts[SPRING] == 92 and counts[AUTUMN] == 100
    assert sum(counts.values()) == 366 * 96


@pytest.mark.parametrize(
    "tz",
    [VIENNA, "America/New_York", "Asia/Kolkata", "America/Santiago", "America/Havana", "UTC"],
)
@given(day=st.dates(min_value=date(1990, 1, 1), max_value=date(2040, 12, 31)))
def test_day_slots_match_a_slot_by_slot_reference(tz: str, day: date) -> None:
    """A day is the slots whose local start date is that day (zoneinfo, one slot at a time)."""
    start, stop = day_slots(day, tz)
    lo = utc_slot(day.year, day.month, day.day) - 2 * 96
    mine = [s for s in range(lo, lo + 5 * 96) if reference_local(s, tz).date() == day]
    assert mine == list(range(start, stop))


# ---------------------------------------------------------------------------------------------
# vectorized local time


@pytest.mark.parametrize("day", [SPRING, NORMAL, AUTUMN])
@pytest.mark.parametrize("tz", [VIENNA, "America/New_York", "Asia/Kolkata"])
def test_local_fields_match_zoneinfo_slot_by_slot(day: date, tz: str) -> None:
    start, stop = day_slots(day, tz)
    slots = np.arange(start - 10, stop + 10, dtype=np.int64)
    ref = [reference_local(s, tz) for s in slots.tolist()]
    assert local_date_of_slots(slots, tz).tolist() == [r.date() for r in ref]
    assert local_start_minutes(slots, tz).tolist() == [r.hour * 60 + r.minute for r in ref]
    assert local_weekday(slots, tz).tolist() == [r.weekday() for r in ref]


def test_local_start_minutes_on_the_autumn_day_by_hand() -> None:
    start, _ = day_slots(AUTUMN)
    minutes = local_start_minutes(np.arange(start + 7, start + 14), VIENNA).tolist()
    # 01:45, 02:00 .. 02:45 CEST, 02:00 CET, 02:15 CET
    assert minutes == [105, 120, 135, 150, 165, 120, 135]
    assert local_weekday(np.array([start]), VIENNA).tolist() == [6]  # Sunday
    assert local_date_of_slots(np.array([start - 1, start]), VIENNA).tolist() == [
        date(2024, 10, 26),
        AUTUMN,
    ]
    assert local_date_of_slots(np.array([start])).dtype == np.dtype("datetime64[D]")


@pytest.mark.parametrize(
    "tz", [VIENNA, "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe", "Europe/London"]
)
@given(
    epochs=st.lists(
        st.integers(min_value=1_500_000_000, max_value=2_000_000_000), min_size=1, max_size=30
    )
)
def test_utc_offsets_match_zoneinfo(tz: str, epochs: list[int]) -> None:
    expected = [
        int(datetime.fromtimestamp(e, ZoneInfo(tz)).utcoffset().total_seconds())  # type: ignore[union-attr]
        for e in epochs
    ]
    assert utc_offsets(np.array(epochs, dtype=np.int64), tz).tolist() == expected


def test_utc_offsets_at_the_transition_instants() -> None:
    change = utc_slot(2024, 3, 31, 1) * 900
    assert utc_offsets(np.array([change - 1, change, change + 1]), VIENNA).tolist() == [
        3600,
        7200,
        7200,
    ]
    change = utc_slot(2024, 10, 27, 1) * 900
    assert utc_offsets(np.array([change - 1, change]), VIENNA).tolist() == [7200, 3600]
    assert utc_offsets(np.array([], dtype=np.int64), VIENNA).tolist() == []


# ---------------------------------------------------------------------------------------------
# period-end labels


def test_tor_4_2_label_is_the_end_of_the_period() -> None:
    # 03:15-03:30 local = 02:15-02:30 UTC in winter
    assert end_label(utc_slot(2024, 1, 15, 2, 15), VIENNA) == "2024-01-15 03:30+01:00"
    assert end_label(utc_slot(2024, 1, 15, 2, 15), VIENNA, offset="never") == "2024-01-15 03:30"
    assert end_label(utc_slot(2024, 1, 15, 2, 15), VIENNA, offset="ambiguous") == (
        "2024-01-15 03:30"
    )


def test_tor_4_2_last_quarter_of_the_day_is_24_00() -> None:
    _, stop = day_slots(NORMAL)
    assert end_labels(stop - 2, stop + 1, VIENNA) == [
        "2024-01-15 23:45+01:00",
        "2024-01-15 24:00+01:00",
        "2024-01-16 00:15+01:00",
    ]
    _, stop = day_slots(AUTUMN)
    assert end_label(stop - 1) == "2024-10-27 24:00+01:00"
    _, stop = day_slots(date(2024, 7, 1))
    assert end_label(stop - 1) == "2024-07-01 24:00+02:00"
    assert end_label(stop - 1, offset="ambiguous") == "2024-07-01 24:00"
    # 31 December: 24:00 of the old year, not 00:00 of the new
    assert end_label(utc_slot(2024, 12, 31, 22, 45)) == "2024-12-31 24:00+01:00"


def test_tor_4_2_labels_of_the_autumn_change_day() -> None:
    start, _ = day_slots(AUTUMN)
    # slots 6.. of the day: 01:30-01:45 CEST onwards
    assert end_labels(start + 6, start + 17, VIENNA) == [
        "2024-10-27 01:45+02:00",
        "2024-10-27 02:00+02:00",
        "2024-10-27 02:15+02:00",
        "2024-10-27 02:30+02:00",
        "2024-10-27 02:45+02:00",
        "2024-10-27 02:00+01:00",  # ends at 03:00 CEST = 02:00 CET
        "2024-10-27 02:15+01:00",
        "2024-10-27 02:30+01:00",
        "2024-10-27 02:45+01:00",
        "2024-10-27 03:00+01:00",
        "2024-10-27 03:15+01:00",
    ]
    assert end_labels(start + 6, start + 17, VIENNA, offset="ambiguous") == [
        "2024-10-27 01:45",
        "2024-10-27 02:00+02:00",
        "2024-10-27 02:15+02:00",
        "2024-10-27 02:30+02:00",
        "2024-10-27 02:45+02:00",
        "2024-10-27 02:00+01:00",
        "2024-10-27 02:15+01:00",
        "2024-10-27 02:30+01:00",
        "2024-10-27 02:45+01:00",
        "2024-10-27 03:00",
        "2024-10-27 03:15",
    ]
    assert end_label(utc_slot(2024, 10, 27, 0, 45)) == "2024-10-27 02:00+01:00"


def test_tor_4_2_labels_of_the_spring_change_day() -> None:
    start, stop = day_slots(SPRING)
    assert end_labels(start + 6, start + 10, VIENNA) == [
        "2024-03-31 01:45+01:00",
        "2024-03-31 03:00+02:00",  # 01:45-02:00 CET ends at 02:00 CET = 03:00 CEST
        "2024-03-31 03:15+02:00",
        "2024-03-31 03:30+02:00",
    ]
    labels = end_labels(start, stop, VIENNA, offset="never")
    assert len(labels) == 92
    assert labels[0] == "2024-03-31 00:15"
    assert labels[-1] == "2024-03-31 24:00"
    assert not any(" 02:" in label for label in labels)


def test_tor_4_2_labels_in_new_york_and_kolkata() -> None:
    # New York: EDT -> EST at 06:00 UTC on 2024-11-03 (02:00 EDT -> 01:00 EST)
    assert end_labels(
        utc_slot(2024, 11, 3, 4, 45), utc_slot(2024, 11, 3, 6, 15), "America/New_York"
    ) == [
        "2024-11-03 01:00-04:00",
        "2024-11-03 01:15-04:00",
        "2024-11-03 01:30-04:00",
        "2024-11-03 01:45-04:00",
        "2024-11-03 01:00-05:00",
        "2024-11-03 01:15-05:00",
    ]
    assert end_label(utc_slot(2024, 1, 15, 0, 0), "Asia/Kolkata") == "2024-01-15 05:45+05:30"
    assert end_label(utc_slot(2024, 1, 15, 18, 15), "Asia/Kolkata") == "2024-01-15 24:00+05:30"
    assert end_label(utc_slot(2024, 1, 15, 18, 15), "Asia/Kolkata", offset="ambiguous") == (
        "2024-01-15 24:00"
    )


def test_end_labels_of_a_whole_autumn_day_are_distinct() -> None:
    start, stop = day_slots(AUTUMN)
    for style in ("always", "ambiguous"):
        labels = end_labels(start, stop, offset=style)
        assert len(labels) == 100
        assert len(set(labels)) == 100
    plain = end_labels(start, stop, offset="never")
    assert len(set(plain)) == 96  # 02:00, 02:15, 02:30, 02:45 twice
    assert end_labels(5, 5) == []
    with pytest.raises(ValueError, match="offset"):
        end_labels(0, 1, offset="sometimes")  # type: ignore[arg-type]


@pytest.mark.parametrize("day", [SPRING, NORMAL, AUTUMN])
@pytest.mark.parametrize("tz", [VIENNA, "America/New_York", "Asia/Kolkata"])
def test_tor_4_2_every_label_parses_back_to_its_slot(day: date, tz: str) -> None:
    start, stop = day_slots(day, tz)
    for style in ("always", "ambiguous"):
        labels = end_labels(start, stop, tz, offset=style)
        assert [parse_end_label(label, tz) for label in labels] == list(range(start, stop))
        for slot in (start, start + 7, stop - 1):
            assert end_label(slot, tz, offset=style) == labels[slot - start]


def test_parse_end_label_variants() -> None:
    slot = utc_slot(2024, 1, 15, 2, 15)
    for text in (
        "2024-01-15 03:30+01:00",
        "2024-01-15T03:30+01:00",
        "2024-01-15 03:30:00+01:00",
        "2024-01-15 03:30+0100",
        "2024-01-15 03:30",
        " 2024-01-15 03:30 ",
    ):
        assert parse_end_label(text, VIENNA) == slot, text
    last = utc_slot(2024, 1, 15, 22, 45)
    assert parse_end_label("2024-01-15 24:00+01:00") == last
    assert parse_end_label("2024-01-15 24:00") == last
    assert parse_end_label("2024-01-16 00:00+01:00") == last
    assert parse_end_label("2024-01-15 03:30Z", "UTC") == utc_slot(2024, 1, 15, 3, 15)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2024-10-27 02:15", "ambiguous.*02:15\\+02:00 or 2024-10-27 02:15\\+01:00"),
        ("2024-10-27 02:00", "ambiguous"),
        ("2024-03-31 02:15", "does not exist"),
        ("2024-03-31 02:00", "does not exist"),
        ("2024-03-31 02:30+01:00", "not legal time.*write 2024-03-31 03:30\\+02:00"),
        ("2024-01-15 03:30+02:00", "not legal time.*\\+01:00"),
        ("2024-01-15 03:30Z", "not legal time"),
        ("2024-01-15 03:20+01:00", "not the end of a quarter hour"),
        ("2024-01-15 03:20", "not the end of a quarter hour"),
        ("2024-01-15 24:15", "not a valid date and time"),
        ("2024-01-15 25:00", "not a valid date and time"),
        ("2024-02-30 12:00", "not a valid date and time"),
        ("2024-01-15", "not a period-end label"),
        ("15.01.2024 03:30", "not a period-end label"),
        ("2024-01-15 03:30+25:00", "out of range"),
    ],
)
def test_tor_4_2_parse_end_label_refuses(text: str, message: str) -> None:
    with pytest.raises(InvalidTime, match=message):
        parse_end_label(text, VIENNA)


# ---------------------------------------------------------------------------------------------
# timestamps


def test_parse_timestamp_forms() -> None:
    cet = timezone(timedelta(hours=1))
    expected = datetime(2024, 3, 31, 2, 15, tzinfo=cet)
    for text in (
        "2024-03-31T02:15:00+01:00",
        "2024-03-31 02:15+01:00",
        "2024-03-31T02:15+0100",
        "2024-03-31T02:15+01",
        "2024-03-31T02:15:00.000+01:00",
        "2024-03-31t01:15:00z",
        "2024-03-31T01:15:00Z",
        "2024-03-31 02:15 +01:00",
    ):
        assert parse_timestamp(text) == expected, text
    assert parse_timestamp("2024-03-31T02:15:00.5+01:00").microsecond == 500_000
    assert parse_timestamp("2024-03-31T02:15:00,123456789+01:00").microsecond == 123_456
    assert to_epoch(parse_timestamp("2024-03-31T01:15:00Z")) == 1_711_847_700
    assert to_epoch(parse_timestamp("1970-01-01T00:00:00.999Z")) == 0
    assert to_epoch(parse_timestamp("1969-12-31T23:59:59.5Z")) == -1


def test_parse_timestamp_24_00_is_next_midnight() -> None:
    assert parse_timestamp("2024-03-31T24:00:00+02:00") == datetime(
        2024, 4, 1, 0, 0, tzinfo=timezone(timedelta(hours=2))
    )
    assert parse_timestamp("2024-12-31 24:00Z") == datetime(2025, 1, 1, tzinfo=UTC)
    with pytest.raises(InvalidTime, match="24:00"):
        parse_timestamp("2024-03-31T24:15:00+02:00")


@pytest.mark.parametrize(
    "text", ["2024-03-31T02:15:00", "2024-03-31 02:15", "2024-03-31T02:15:00.000"]
)
def test_tor_4_2_naive_timestamp_is_refused(text: str) -> None:
    with pytest.raises(InvalidTime, match=r"has no UTC offset; write e\.g\. 2024-03-31T02:15:00"):
        parse_timestamp(text)


def test_naive_datetime_is_refused() -> None:
    with pytest.raises(InvalidTime, match="no time zone"):
        to_epoch(datetime(2024, 1, 1))
    assert to_epoch(datetime(2024, 1, 1, tzinfo=ZoneInfo(VIENNA))) == 1_704_063_600


@pytest.mark.parametrize(
    "text",
    [
        "2024-13-01T00:00Z",
        "2024-02-30T00:00Z",
        "2023-02-29T00:00Z",
        "2024-01-01T23:60Z",
        "2024-01-01T00:00:60Z",
        "2024-01-01T00:00+24:00",
        "2024-01-01",
        "",
        "yesterday",
        "2024-01-01T00:00+01:00 extra",
        "２０２４-01-01T00:00Z",
        "9999-12-31T24:00Z",
    ],
)
def test_parse_timestamp_refuses(text: str) -> None:
    with pytest.raises(InvalidTime):
        parse_timestamp(text)


def test_parse_timestamps_reports_every_problem() -> None:
    texts = [
        "2024-03-31T02:15:00+01:00",
        "2024-03-31T02:15:00",
        "2024-03-31 02:15Z",
        "nonsense",
        "2024-03-31T24:00:00+02:00",
        "2024-02-30T00:00:00+01:00",
    ]
    epochs, problems = parse_timestamps(texts)
    assert epochs.dtype == np.int64
    assert [i for i, _ in problems] == [1, 3, 5]
    assert "has no UTC offset" in problems[0][1]
    assert epochs.tolist() == [1_711_847_700, 0, 1_711_851_300, 0, 1_711_922_400, 0]


def test_parse_timestamps_accepts_polars_numpy_and_missing_values() -> None:
    texts = ["2024-01-01T00:00:00+01:00", None, "2024-01-01T00:15:00+01:00", "x"]
    expected = [1_704_063_600, 0, 1_704_064_500, 0]
    for given_texts in (pl.Series(texts), np.array(texts, dtype=object), texts):
        epochs, problems = parse_timestamps(given_texts)  # type: ignore[arg-type]
        assert epochs.tolist() == expected
        assert [i for i, _ in problems] == [1, 3]
        assert problems[0][1] == "timestamp is missing"
    epochs, problems = parse_timestamps([])
    assert epochs.tolist() == [] and problems == []
    epochs, problems = parse_timestamps(pl.Series([], dtype=pl.String))
    assert epochs.tolist() == [] and problems == []


def test_parse_timestamps_uniform_column_by_hand() -> None:
    # 2024-10-27 in Vienna, as ebUtilities DTT values: 02:45+02:00, 02:00+01:00, 02:15+01:00
    texts = ["2024-10-27T02:45:00+02:00", "2024-10-27T02:00:00+01:00", "2024-10-27T02:15:00+01:00"]
    epochs, problems = parse_timestamps(texts)
    assert problems == []
    assert (epochs // 900).tolist() == [
        utc_slot(2024, 10, 27, 0, 45),
        utc_slot(2024, 10, 27, 1, 0),
        utc_slot(2024, 10, 27, 1, 15),
    ]


_digits2 = st.integers(min_value=0, max_value=99).map(lambda v: f"{v:02d}")


@st.composite
def timestamp_texts(draw: st.DrawFn) -> str:
    """ISO-like timestamps: mostly valid, some with bad fields, some odd layouts."""
    year = draw(st.integers(min_value=1, max_value=9999))
    month = draw(st.one_of(st.integers(1, 12), st.integers(0, 99)))
    day = draw(st.one_of(st.integers(1, 28), st.integers(0, 99)))
    hour = draw(st.one_of(st.integers(0, 24), st.integers(0, 99)))
    minute = draw(st.one_of(st.integers(0, 59), st.sampled_from([0, 60, 99])))
    text = f"{year:04d}-{month:02d}-{day:02d}{draw(st.sampled_from('T t'))}{hour:02d}:{minute:02d}"
    if draw(st.booleans()):
        text += f":{draw(st.one_of(st.integers(0, 59), st.just(60))):02d}"
        if draw(st.booleans()):
            digits = draw(st.sampled_from([1, 3, 6, 9]))
            text += draw(st.sampled_from(".,")) + draw(
                st.text("0123456789", min_size=digits, max_size=digits)
            )
    off_h, off_m = draw(st.integers(0, 25)), draw(st.sampled_from([0, 30, 45, 60]))
    sign = draw(st.sampled_from("+-"))
    text += draw(
        st.sampled_from(
            [
                "Z",
                "z",
                "",
                f"{sign}{off_h:02d}:{off_m:02d}",
                f"{sign}{off_h:02d}{off_m:02d}",
                f"{sign}{off_h:02d}",
                f" {sign}{off_h:02d}:{off_m:02d}",
            ]
        )
    )
    return text


def _reference(texts: list[str]) -> tuple[list[int], list[int]]:
    epochs, bad = [], []
    for i, text in enumerate(texts):
        try:
            epochs.append(to_epoch(parse_timestamp(text)))
        except InvalidTime:
            epochs.append(0)
            bad.append(i)
    return epochs, bad


@given(st.lists(timestamp_texts(), max_size=40))
def test_parse_timestamps_agrees_with_parse_timestamp(texts: list[str]) -> None:
    epochs, bad = _reference(texts)
    for given_texts in (texts, pl.Series(texts, dtype=pl.String)):
        got, problems = parse_timestamps(given_texts)
        assert got.tolist() == epochs
        assert [i for i, _ in problems] == bad


@given(
    st.lists(st.integers(min_value=-2_000_000_000, max_value=4_000_000_000), min_size=1),
    st.sampled_from([0, 3600, 7200, -18000, 19800, 20700]),
    st.sampled_from(["%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S.%f"]),
    st.sampled_from(["colon", "plain", "z"]),
)
def test_parse_timestamps_of_uniform_columns(
    seconds: list[int], offset: int, layout: str, style: str
) -> None:
    """A whole column in one layout (the fast path) gives the instants it was written from."""
    tzinfo = UTC if style == "z" else timezone(timedelta(seconds=offset))
    stamps = [datetime.fromtimestamp(s, tzinfo) for s in seconds]
    suffix = {"colon": lambda d: d.isoformat()[-6:], "plain": lambda d: d.strftime("%z")}
    texts = [d.strftime(layout) + ("Z" if style == "z" else suffix[style](d)) for d in stamps]
    epochs, problems = parse_timestamps(texts)
    assert problems == []
    truncate = 60 if "%S" not in layout else 1
    assert epochs.tolist() == [s - s % truncate for s in seconds]


# ---------------------------------------------------------------------------------------------
# resolutions


@pytest.mark.parametrize(
    ("text", "minutes", "months", "name", "iso"),
    [
        ("15min", 15, 0, "15min", "PT15M"),
        ("15 min", 15, 0, "15min", "PT15M"),
        ("quarter-hour", 15, 0, "15min", "PT15M"),
        ("30min", 30, 0, "30min", "PT30M"),
        ("45min", 45, 0, "45min", "PT45M"),
        ("1h", 60, 0, "1h", "PT1H"),
        ("60min", 60, 0, "1h", "PT1H"),
        ("hour", 60, 0, "1h", "PT1H"),
        ("2h", 120, 0, "2h", "PT2H"),
        ("PT90M", 90, 0, "90min", "PT1H30M"),
        ("PT1H30M", 90, 0, "90min", "PT1H30M"),
        ("12h", 720, 0, "12h", "PT12H"),
        ("day", 1440, 0, "day", "P1D"),
        ("1d", 1440, 0, "day", "P1D"),
        ("P1D", 1440, 0, "day", "P1D"),
        ("PT24H", 1440, 0, "day", "P1D"),
        ("PT15M", 15, 0, "15min", "PT15M"),
        ("pt1h", 60, 0, "1h", "PT1H"),
        ("month", 0, 1, "month", "P1M"),
        ("P1M", 0, 1, "month", "P1M"),
        ("quarter", 0, 3, "quarter", "P3M"),
        ("P1Y", 0, 12, "year", "P1Y"),
        ("year", 0, 12, "year", "P1Y"),
    ],
)
def test_tor_4_2_parse_resolution(
    text: str, minutes: int, months: int, name: str, iso: str
) -> None:
    res = parse_resolution(text)
    assert (res.minutes, res.months) == (minutes, months)
    assert str(res) == res.name == name
    assert res.iso == iso
    assert parse_resolution(res.iso) == res


@pytest.mark.parametrize(
    "text", ["20min", "7min", "0min", "50min", "2d", "P1W", "PT", "P", "P1MT1H", "weekly", "5y"]
)
def test_tor_4_2_resolutions_off_the_grid_are_refused(text: str) -> None:
    with pytest.raises(InvalidTime):
        parse_resolution(text)


def test_resolution_constants() -> None:
    assert QUARTER_HOUR.slots == 1 and HOUR.slots == 4 and DAY.slots == 96
    assert MONTH.slots is None
    assert QUARTER_HOUR.clock_aligned and HOUR.clock_aligned
    assert not DAY.clock_aligned and not Resolution(minutes=120).clock_aligned
    with pytest.raises(InvalidTime):
        Resolution(minutes=15, months=1)
    with pytest.raises(InvalidTime):
        Resolution(months=5)


# ---------------------------------------------------------------------------------------------
# aggregation


def _ramp(n: int) -> np.ndarray:
    return np.arange(1, n + 1, dtype=np.float64)


def test_aggregate_autumn_day_by_hand() -> None:
    start, stop = day_slots(AUTUMN)
    values = _ramp(100)  # 1, 2, ..., 100
    bounds, sums = aggregate(values, start, HOUR, VIENNA)
    assert len(sums) == 25
    assert sums.tolist() == [16 * k + 10 for k in range(25)]  # 4k+1 + ... + 4k+4
    assert bounds.tolist() == list(range(start, stop + 1, 4))
    bounds, sums = aggregate(values, start, parse_resolution("30min"), VIENNA)
    assert sums.tolist() == [4 * k + 3 for k in range(50)]
    bounds, sums = aggregate(values, start, DAY, VIENNA)
    assert bounds.tolist() == [start, stop] and sums.tolist() == [5050.0]
    # 2 h periods: 00-02 (8 slots), 02-04 holds the repeated hour (12 slots), then 8 each
    bounds, sums = aggregate(values, start, parse_resolution("2h"), VIENNA)
    assert np.diff(bounds).tolist() == [8, 12] + [8] * 10
    assert sums[:3].tolist() == [36.0, 174.0, 196.0]  # 1..8, 9..20, 21..28
    # 45 min: 00:00, 00:45, 01:30, then 02:15 CEST .. 03:00 CET holds 02:15-02:45 CEST and the
    # whole repeated hour 02:00-02:59 CET (7 slots), then 3 slots each
    bounds, sums = aggregate(values, start, parse_resolution("45min"), VIENNA)
    assert np.diff(bounds).tolist() == [3, 3, 3, 7] + [3] * 28
    assert sums[3] == 10 + 11 + 12 + 13 + 14 + 15 + 16


def test_aggregate_spring_and_normal_day_by_hand() -> None:
    start, _ = day_slots(SPRING)
    values = _ramp(92)
    _, sums = aggregate(values, start, HOUR, VIENNA)
    assert len(sums) == 23 and sums[:3].tolist() == [10.0, 26.0, 42.0]
    _, sums = aggregate(values, start, parse_resolution("30min"), VIENNA)
    assert len(sums) == 46 and sums[-1] == 91 + 92
    bounds, sums = aggregate(values, start, parse_resolution("2h"), VIENNA)
    assert np.diff(bounds).tolist() == [8, 4] + [8] * 10  # 02:00-04:00 lacks its first hour
    assert sums[:2].tolist() == [36.0, 42.0]
    _, sums = aggregate(values, start, DAY, VIENNA)
    assert sums.tolist() == [92 * 93 / 2]
    start, _ = day_slots(NORMAL)
    _, sums = aggregate(np.ones(96), start, parse_resolution("45min"), VIENNA)
    assert sums.tolist() == [3.0] * 32
    _, sums = aggregate(np.ones(96), start, parse_resolution("6h"), VIENNA)
    assert sums.tolist() == [24.0] * 4


def test_aggregate_months_and_two_dimensional() -> None:
    start, stop = period_slots(date(2024, 2, 1), date(2024, 4, 30), VIENNA)
    values = np.vstack([np.ones(stop - start), 2 * np.ones(stop - start)])
    bounds, sums = aggregate(values, start, MONTH, VIENNA)
    assert sums.shape == (2, 3)
    assert sums[0].tolist() == [29 * 96, 31 * 96 - 4, 30 * 96]
    assert sums[1].tolist() == [2 * 29 * 96, 2 * (31 * 96 - 4), 2 * 30 * 96]
    assert bounds.tolist() == [start, month_slots(2024, 3)[0], month_slots(2024, 4)[0], stop]
    _, year = aggregate(
        np.ones(366 * 96),
        period_slots(date(2024, 1, 1), date(2024, 12, 31))[0],
        parse_resolution("quarter"),
        VIENNA,
    )
    assert year.tolist() == [91 * 96 - 4, 91 * 96, 92 * 96, 92 * 96 + 4]


def test_aggregate_nan_stays_in_its_period() -> None:
    start, _ = day_slots(NORMAL)
    values = np.ones(96)
    values[5] = np.nan
    _, sums = aggregate(values, start, HOUR)
    assert np.isnan(sums[1]) and np.isfinite(np.delete(sums, 1)).all()


def test_period_boundaries_keep_partial_periods() -> None:
    start, _ = day_slots(NORMAL)
    bounds = period_boundaries(start + 2, start + 11, HOUR, VIENNA)
    assert bounds.tolist() == [start + 2, start + 4, start + 8, start + 11]
    assert period_boundaries(start, start, DAY).tolist() == [start]
    with pytest.raises(InvalidTime):
        period_boundaries(start, start - 1, DAY)
    # Kolkata: local full hours are UTC half hours
    s = utc_slot(2024, 1, 15, 0, 0)
    assert period_boundaries(s, s + 8, HOUR, "Asia/Kolkata").tolist() == [s, s + 2, s + 6, s + 8]
    _, sums = aggregate(np.ones(96), day_slots(NORMAL, "Asia/Kolkata")[0], DAY, "Asia/Kolkata")
    assert sums.tolist() == [96.0]


def test_aggregate_empty() -> None:
    bounds, sums = aggregate(np.zeros((3, 0)), 100, HOUR)
    assert bounds.tolist() == [100] and sums.shape == (3, 0)


def test_disaggregate_uniform_and_weighted_by_hand() -> None:
    bounds = np.array([10, 14, 16])
    assert disaggregate(np.array([4.0, 1.0]), bounds).tolist() == [1, 1, 1, 1, 0.5, 0.5]
    weights = np.array([1.0, 3.0, 0.0, 0.0, 0.0, 0.0])
    assert disaggregate(np.array([4.0, 1.0]), bounds, weights).tolist() == [
        1,
        3,
        0,
        0,
        0.5,
        0.5,
    ]
    two = disaggregate(np.array([[4.0, 1.0], [8.0, 2.0]]), bounds, weights)
    assert two.tolist() == [[1, 3, 0, 0, 0.5, 0.5], [2, 6, 0, 0, 1, 1]]
    with pytest.raises(InvalidInput, match="non-negative"):
        disaggregate(np.array([4.0, 1.0]), bounds, -weights)
    with pytest.raises(InvalidInput, match="one total per period"):
        disaggregate(np.array([4.0]), bounds)
    with pytest.raises(InvalidInput, match="weights for"):
        disaggregate(np.array([4.0, 1.0]), bounds, np.ones(3))


RESOLUTIONS = ["15min", "30min", "45min", "1h", "2h", "3h", "day", "month"]


@given(
    start=st.integers(min_value=utc_slot(2023, 1, 1), max_value=utc_slot(2026, 1, 1)),
    n=st.integers(min_value=1, max_value=3000),
    res=st.sampled_from(RESOLUTIONS),
    tz=st.sampled_from([VIENNA, "America/New_York", "Asia/Kolkata"]),
    weighted=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_aggregate_then_disaggregate_keeps_totals(
    start: int, n: int, res: str, tz: str, weighted: bool, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    values = rng.uniform(0, 10, size=(2, n))
    resolution = parse_resolution(res)
    bounds, sums = aggregate(values, start, resolution, tz)
    assert bounds[0] == start and bounds[-1] == start + n
    assert (np.diff(bounds) > 0).all()
    np.testing.assert_allclose(sums.sum(axis=-1), values.sum(axis=-1), rtol=1e-12)
    weights = rng.uniform(0, 1, size=n) * (rng.uniform(size=n) > 0.3) if weighted else None
    spread = disaggregate(sums, bounds, weights)
    assert spread.shape == values.shape
    again_bounds, again = aggregate(spread, start, resolution, tz)
    assert again_bounds.tolist() == bounds.tolist()
    np.testing.assert_allclose(again, sums, rtol=1e-9)


@given(
    start=st.integers(min_value=utc_slot(2020, 1, 1), max_value=utc_slot(2030, 1, 1)),
    n=st.integers(min_value=1, max_value=2000),
    minutes=st.sampled_from([15, 30, 60]),
    tz=st.sampled_from([VIENNA, "America/New_York", "Asia/Kolkata"]),
)
def test_clock_aligned_periods_start_at_local_multiples(
    start: int, n: int, minutes: int, tz: str
) -> None:
    """Reference: a period starts at every slot whose local start is a multiple (zoneinfo)."""
    bounds = period_boundaries(start, start + n, Resolution(minutes=minutes), tz)
    expected = [start] + [
        s
        for s in range(start + 1, start + n)
        if (reference_local(s, tz).hour * 60 + reference_local(s, tz).minute) % minutes == 0
    ]
    assert bounds.tolist() == [*expected, start + n]


@given(
    start=st.integers(min_value=utc_slot(2020, 1, 1), max_value=utc_slot(2030, 1, 1)),
    n=st.integers(min_value=1, max_value=3000),
    tz=st.sampled_from([VIENNA, "America/New_York", "Asia/Kolkata"]),
)
def test_day_and_month_periods_match_local_dates(start: int, n: int, tz: str) -> None:
    """Reference: a day (month) starts where the local date (month) of a slot changes."""
    dates = [reference_local(s, tz).date() for s in range(start, start + n)]
    days = [start] + [start + i for i in range(1, n) if dates[i] != dates[i - 1]]
    months = [start] + [start + i for i in range(1, n) if dates[i].month != dates[i - 1].month]
    assert period_boundaries(start, start + n, DAY, tz).tolist() == [*days, start + n]
    assert period_boundaries(start, start + n, MONTH, tz).tolist() == [*months, start + n]


@given(
    start=st.integers(min_value=utc_slot(2020, 1, 1), max_value=utc_slot(2030, 1, 1)),
    n=st.integers(min_value=1, max_value=2000),
    minutes=st.sampled_from([45, 90, 120, 180, 360, 720]),
    tz=st.sampled_from([VIENNA, "America/New_York", "Asia/Kolkata"]),
)
def test_long_periods_are_spans_of_wall_time(start: int, n: int, minutes: int, tz: str) -> None:
    """Reference: a period begins at the first slot whose local start reaches its wall-time
    span (local date, local start minute // length), that is where the running maximum of
    that key grows; the repeated autumn hour never reaches a new span."""
    keys = []
    for s in range(start, start + n):
        local = reference_local(s, tz)
        keys.append((local.date(), (local.hour * 60 + local.minute) // minutes))
    expected = [start]
    reached = keys[0]
    for i in range(1, n):
        if keys[i] > reached:
            expected.append(start + i)
            reached = keys[i]
    bounds = period_boundaries(start, start + n, Resolution(minutes=minutes), tz)
    assert bounds.tolist() == [*expected, start + n]


@pytest.mark.parametrize(
    "tz", [VIENNA, "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe", "UTC"]
)
@given(slot=st.integers(min_value=utc_slot(2015, 1, 1), max_value=utc_slot(2035, 1, 1)))
def test_tor_4_2_labels_round_trip_anywhere(tz: str, slot: int) -> None:
    for style in ("always", "ambiguous"):
        assert parse_end_label(end_label(slot, tz, offset=style), tz) == slot
    plain = end_label(slot, tz, offset="never")
    if end_label(slot, tz, offset="ambiguous") == plain:
        assert parse_end_label(plain, tz) == slot
    else:
        with pytest.raises(InvalidTime, match="ambiguous"):
            parse_end_label(plain, tz)
    # the label names the END instant of the slot in local time (zoneinfo reference)
    end = datetime.fromtimestamp((slot + 1) * 900, ZoneInfo(tz))
    date_part, clock = end_label(slot, tz, offset="never").split(" ")
    if clock == "24:00":
        assert (end.hour, end.minute) == (0, 0)
        assert date.fromisoformat(date_part) == end.date() - timedelta(days=1)
    else:
        assert clock == f"{end.hour:02d}:{end.minute:02d}"
        assert date.fromisoformat(date_part) == end.date()


# ---------------------------------------------------------------------------------------------
# day types (comparable days for substitute values)


def test_q_2_austrian_holidays_2024() -> None:
    assert austrian_holidays(2024) == {
        date(2024, 1, 1): "Neujahr",
        date(2024, 1, 6): "Heilige Drei Könige",
        date(2024, 4, 1): "Ostermontag",
        date(2024, 5, 1): "Staatsfeiertag",
        date(2024, 5, 9): "Christi Himmelfahrt",
        date(2024, 5, 20): "Pfingstmontag",
        date(2024, 5, 30): "Fronleichnam",
        date(2024, 8, 15): "Mariä Himmelfahrt",
        date(2024, 10, 26): "Nationalfeiertag",
        date(2024, 11, 1): "Allerheiligen",
        date(2024, 12, 8): "Mariä Empfängnis",
        date(2024, 12, 25): "Christtag",
        date(2024, 12, 26): "Stefanitag",
    }


def test_q_2_austrian_holidays_2025() -> None:
    days = austrian_holidays(2025)
    assert len(days) == 13
    assert days[date(2025, 4, 21)] == "Ostermontag"
    assert days[date(2025, 5, 29)] == "Christi Himmelfahrt"
    assert days[date(2025, 6, 9)] == "Pfingstmontag"
    assert days[date(2025, 6, 19)] == "Fronleichnam"
    assert date(2025, 4, 18) not in days  # Karfreitag is no general public holiday
    assert date(2025, 12, 24) not in days


@pytest.mark.parametrize(
    ("year", "easter"),
    [
        (1818, date(1818, 3, 22)),
        (1943, date(1943, 4, 25)),
        (2000, date(2000, 4, 23)),
        (2019, date(2019, 4, 21)),
        (2024, date(2024, 3, 31)),
        (2025, date(2025, 4, 20)),
        (2038, date(2038, 4, 25)),
        (2285, date(2285, 3, 22)),
    ],
)
def test_easter_sunday(year: int, easter: date) -> None:
    assert easter_sunday(year) == easter


def test_q_2_day_types() -> None:
    assert day_type(date(2024, 1, 15)) is DayType.WORKDAY  # Monday
    assert day_type(date(2024, 1, 13)) is DayType.SATURDAY
    assert day_type(date(2024, 1, 14)) is DayType.SUNDAY_HOLIDAY
    assert day_type(date(2024, 4, 1)) is DayType.SUNDAY_HOLIDAY  # Ostermontag
    assert day_type(date(2024, 10, 26)) is DayType.SUNDAY_HOLIDAY  # Saturday and holiday
    assert day_type(date(2024, 12, 24)) is DayType.WORKDAY  # Heiliger Abend, a Tuesday
    days = np.array(
        ["2024-01-15", "2024-01-13", "2024-01-14", "2024-04-01", "2025-04-21"],
        dtype="datetime64[D]",
    )
    assert day_types(days).tolist() == [0, 1, 2, 2, 2]
    assert day_types(np.array([], dtype="datetime64[D]")).tolist() == []


@given(st.dates(min_value=date(1900, 1, 1), max_value=date(2100, 12, 31)))
def test_day_types_vectorized_agrees(day: date) -> None:
    assert day_types(np.array([day], dtype="datetime64[D]")).tolist() == [int(day_type(day))]
