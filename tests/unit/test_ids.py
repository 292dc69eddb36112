"""Metering point IDs (Zählpunktbezeichnung, TOR-4.1)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lastgang.errors import InvalidId, InvalidInput, Problem
from lastgang.ids import (
    COUNTRY_CODES,
    MeteringPointId,
    check_metering_point_id,
    is_metering_point_id,
    parse_metering_point_id,
)

# The TOR-4.1 example, typed out segment by segment (2 + 6 + 5 + 20 characters).
TOR_DOTTED = "AT.008100.08010.0O6G56M11SN51G21M24S"
TOR_CANONICAL = "AT008100080100O6G56M11SN51G21M24S"


def reasons(text: str) -> list[str]:
    return [p.reason for p in check_metering_point_id(text)]


def test_tor_4_1_example_dotted() -> None:
    mp = parse_metering_point_id(TOR_DOTTED)
    assert mp == MeteringPointId("AT", "008100", "08010", "0O6G56M11SN51G21M24S")
    assert mp.canonical == TOR_CANONICAL
    assert len(mp.canonical) == 33
    assert mp.dotted == TOR_DOTTED
    assert str(mp) == TOR_CANONICAL


def test_tor_4_1_example_canonical() -> None:
    mp = parse_metering_point_id(TOR_CANONICAL)
    assert (mp.country, mp.operator, mp.postal_code, mp.number) == (
        "AT",
        "008100",
        "08010",
        "0O6G56M11SN51G21M24S",
    )
    assert mp.dotted == TOR_DOTTED
    assert is_metering_point_id(TOR_CANONICAL)
    assert check_metering_point_id(TOR_DOTTED) == []


def test_tor_4_1_surrounding_whitespace_is_stripped() -> None:
    assert parse_metering_point_id(f"  {TOR_CANONICAL}\n").canonical == TOR_CANONICAL
    assert parse_metering_point_id(f"\t{TOR_DOTTED} ").canonical == TOR_CANONICAL


def test_tor_4_1_dotted_segments_are_left_padded_with_zeros() -> None:
    mp = parse_metering_point_id("AT.8100.8010.0O6G56M11SN51G21M24S")
    assert mp.canonical == TOR_CANONICAL
    short = parse_metering_point_id("DE.1.0.123")
    assert short.dotted == "DE.000001.00000.00000000000000000123"
    assert len(short.canonical) == 33


def test_tor_4_1_postal_code_00000_is_allowed() -> None:
    assert is_metering_point_id("AT.008100.00000.0O6G56M11SN51G21M24S")


def test_tor_4_1_total_length() -> None:
    problems = reasons(TOR_CANONICAL[:-1])
    assert len(problems) == 1
    assert "total length: 32 characters, expected 33" in problems[0]
    assert "total length: 34" in reasons(TOR_CANONICAL + "0")[0]
    assert not is_metering_point_id(TOR_CANONICAL[:-1])


def test_tor_4_1_empty_text() -> None:
    assert "empty" in reasons("   ")[0]
    with pytest.raises(InvalidId):
        parse_metering_point_id("")


def test_tor_4_1_country_must_be_iso_3166() -> None:
    (problem,) = reasons("XX" + TOR_CANONICAL[2:])
    assert "country code 'XX' is not an ISO 3166-1 alpha-2 code" in problem
    (problem,) = reasons("UK" + TOR_CANONICAL[2:])
    assert "GB" in problem
    (problem,) = reasons("A1" + TOR_CANONICAL[2:])
    assert "country code 'A1'" in problem and "2 letters" in problem
    assert is_metering_point_id("DE" + TOR_CANONICAL[2:])


def test_tor_4_1_country_lowercase_gets_a_hint() -> None:
    (problem,) = reasons("at" + TOR_CANONICAL[2:])
    assert "capital letters (AT)" in problem
    (problem,) = reasons("xx" + TOR_CANONICAL[2:])
    assert "capital letters" in problem and "'XX' is not an ISO 3166-1 alpha-2 code" in problem


def test_country_list_is_iso_3166_1_alpha_2() -> None:
    assert len(COUNTRY_CODES) == 249
    assert {"AT", "DE", "CH", "IT", "SI", "HU", "CZ", "SK", "LI", "GB", "GR"} <= COUNTRY_CODES
    assert not {"UK", "EL", "XK", "EU", "ZZ"} & COUNTRY_CODES


def test_tor_4_1_network_operator_number_must_be_digits() -> None:
    (problem,) = reasons("AT00810X080100O6G56M11SN51G21M24S")
    assert problem.startswith("network operator number '00810X'")
    assert "'X' at position 6" in problem
    (problem,) = reasons("AT.1234567.08010.1")
    assert "network operator number '1234567': 7 characters, at most 6" in problem


def test_tor_4_1_postal_code_must_be_digits() -> None:
    (problem,) = reasons("AT.008100.8O1O.1")
    assert problem.startswith("postal code '8O1O'")
    assert "'O' at position 2" in problem and "'O' at position 4" in problem
    (problem,) = reasons("AT.008100.123456.1")
    assert "postal code '123456': 6 characters, at most 5" in problem


def test_tor_4_1_metering_point_number_names_characters_and_positions() -> None:
    (problem,) = reasons("AT.008100.08010.0O6G56-11SN51G21M_4S")
    assert problem.startswith("metering point number '0O6G56-11SN51G21M_4S'")
    assert "'-' at position 7" in problem
    assert "'_' at position 18" in problem


def test_tor_4_1_metering_point_number_lowercase_gets_a_hint() -> None:
    (problem,) = reasons("AT008100080100o6G56M11SN51G21M24S")
    assert "'o' at position 2" in problem
    assert "lowercase" in problem and "capitals" in problem


def test_tor_4_1_umlauts_are_not_allowed() -> None:
    (problem,) = reasons("AT.008100.08010.MÜLLER1")
    assert "'Ü' at position 2" in problem


def test_tor_4_1_inner_space_is_not_forgiven() -> None:
    problems = reasons("AT 008100080100O6G56M11SN51G21M24S")
    assert len(problems) == 2
    assert "total length: 34" in problems[0]
    assert "' ' at position 3" in problems[1]
    assert not is_metering_point_id("AT.008100.08010. 0O6G56M11SN51G21M24S")


def test_tor_4_1_other_separators_are_not_forgiven() -> None:
    assert not is_metering_point_id("AT-008100-08010-0O6G56M11SN51G21M24S")
    assert not is_metering_point_id("AT.008100.08010.0O6G56M11SN51G21M24S.")
    (problem,) = reasons("AT.008100.080100O6G56M11SN51G21M24S")
    assert "3 segments" in problem


def test_tor_4_1_empty_dotted_segment() -> None:
    (problem,) = reasons("AT..08010.1")
    assert problem == "network operator number: the segment is empty, expected 6 digits"


def test_tor_4_1_all_problems_of_one_id_at_once() -> None:
    text = "xx.12a.1234567.abc-d"
    with pytest.raises(InvalidId) as caught:
        parse_metering_point_id(text)
    error = caught.value
    assert isinstance(error, InvalidInput)
    assert isinstance(error, ValueError)
    assert "xx.12a.1234567.abc-d" in error.message
    segments = [p.reason.split(" '")[0] for p in error.problems]
    assert segments == [
        "country code",
        "network operator number",
        "postal code",
        "metering point number",
    ]
    assert all(isinstance(p, Problem) for p in error.problems)
    assert "4 problem(s)" in error.message


def test_check_carries_the_place() -> None:
    (problem,) = check_metering_point_id("XX" + TOR_CANONICAL[2:], file="site.toml", line=7)
    assert (problem.file, problem.line) == ("site.toml", 7)
    assert str(problem).startswith("site.toml:7: country code 'XX'")


def test_constructor_requires_full_width_segments() -> None:
    with pytest.raises(InvalidId) as caught:
        MeteringPointId("AT", "8100", "08010", "0O6G56M11SN51G21M24S")
    (problem,) = caught.value.problems
    assert "network operator number '8100': 4 characters, expected 6" in problem.reason


# --- properties -----------------------------------------------------------------------------

_DIGIT = "0123456789"
_NUMBER = _DIGIT + "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

valid_ids = st.builds(
    MeteringPointId,
    country=st.sampled_from(sorted(COUNTRY_CODES)),
    operator=st.text(_DIGIT, min_size=6, max_size=6),
    postal_code=st.text(_DIGIT, min_size=5, max_size=5),
    number=st.text(_NUMBER, min_size=20, max_size=20),
)


@given(valid_ids)
def test_tor_4_1_round_trip_canonical_and_dotted(mp: MeteringPointId) -> None:
    assert len(mp.canonical) == 33
    assert mp.dotted.replace(".", "") == mp.canonical
    assert parse_metering_point_id(mp.canonical) == mp
    assert parse_metering_point_id(mp.dotted) == mp
    assert parse_metering_point_id(parse_metering_point_id(mp.dotted).canonical).dotted == (
        mp.dotted
    )


@given(valid_ids)
def test_tor_4_1_dotted_without_leading_zeros_is_the_same_id(mp: MeteringPointId) -> None:
    stripped = ".".join(
        [mp.country] + [s.lstrip("0") or "0" for s in (mp.operator, mp.postal_code, mp.number)]
    )
    assert parse_metering_point_id(stripped) == mp


@given(valid_ids, st.integers(0, 32), st.sampled_from("abz-_/ .äÖ#"))
def test_tor_4_1_a_wrong_character_is_always_found(
    mp: MeteringPointId, position: int, char: str
) -> None:
    text = mp.canonical[:position] + char + mp.canonical[position + 1 :]
    assert not is_metering_point_id(text)
    with pytest.raises(InvalidId):
        parse_metering_point_id(text)


# characters an ID may or may not hold: ASCII letters and digits, lower case, digits of other
# scripts (which a regular expression's \d would accept), letters with diacritics, separators
_ID_ALPHABET = "ATDEGBXKZ0123456789az\u0663\u00b2ÄÖ .-_"


@st.composite
def near_valid_segments(draw: st.DrawFn) -> tuple[str, str, str, str]:
    """The segments of a valid ID, often with one segment changed: a character replaced, one
    added or one left out."""
    mp = draw(valid_ids)
    segments = [mp.country, mp.operator, mp.postal_code, mp.number]
    if draw(st.booleans()):
        k = draw(st.integers(0, 3))
        at = draw(st.integers(0, len(segments[k]) - 1))
        change = draw(st.sampled_from(["replace", "insert", "delete"]))
        ch = draw(st.sampled_from(_ID_ALPHABET))
        seg = segments[k]
        if change == "replace":
            segments[k] = seg[:at] + ch + seg[at + 1 :]
        elif change == "insert":
            segments[k] = seg[:at] + ch + seg[at:]
        else:
            segments[k] = seg[:at] + seg[at + 1 :]
    return segments[0], segments[1], segments[2], segments[3]


@given(near_valid_segments())
def test_tor_4_1_the_quick_check_agrees_with_the_explained_one(
    segments: tuple[str, str, str, str],
) -> None:
    """A valid ID is recognised without building the problems that explain an invalid one: the
    quick check says valid exactly when the full check finds no problem, and the constructor and
    the parser accept exactly those IDs."""
    from lastgang.ids import _check_segments, _valid_full_width

    explained = not _check_segments(*segments)
    assert _valid_full_width(*segments) == explained
    if explained:
        assert MeteringPointId(*segments).country == segments[0]
    else:
        with pytest.raises(InvalidId):
            MeteringPointId(*segments)
    text = "".join(segments)
    if "." not in text and text == text.strip():
        # the canonical form: valid when at full width and the segments it splits into are
        parts = (text[:2], text[2:8], text[8:13], text[13:])
        assert is_metering_point_id(text) == (len(text) == 33 and not _check_segments(*parts))


def test_tor_4_1_quick_check_country_must_be_listed() -> None:
    # full width and the right characters, but XK is no ISO 3166-1 code
    assert not is_metering_point_id("XK" + TOR_CANONICAL[2:])
    assert is_metering_point_id("DE" + TOR_CANONICAL[2:])


@pytest.mark.parametrize("ch", ["\u0663", "\u00b2", "\uff11", "a", "Ä", " ", "."])
@pytest.mark.parametrize("at", [0, 2, 5, 8, 12, 13, 32])
def test_tor_4_1_quick_check_takes_only_ascii(ch: str, at: int) -> None:
    """Digits of other scripts (Arabic-Indic 3, superscript 2, full-width 1) and other
    characters are refused in every segment, by the quick check as by the full one."""
    text = TOR_CANONICAL[:at] + ch + TOR_CANONICAL[at + 1 :]
    assert not is_metering_point_id(text)
    with pytest.raises(InvalidId):
        parse_metering_point_id(text)
