"""Metering point IDs (Zählpunktbezeichnung, TOR-4.1).

A metering point ID has 33 characters in four fixed-width segments:

========================  =====  ==========================================================
segment                   width  content
========================  =====  ==========================================================
country (Landeskennung)       2  ISO 3166-1 alpha-2 code, e.g. ``AT``, ``DE``
network operator number       6  digits (Netzbetreibernummer), e.g. ``008100``
postal code                   5  digits (Postleitzahl), ``00000`` where not used
metering point number        20  ``A``-``Z`` and ``0``-``9`` only (Zählpunktnummer)
========================  =====  ==========================================================

Data exchange always uses all 33 characters (the *canonical* form,
``AT008100080100O6G56M11SN51G21M24S``); printed documents separate the segments with ``.`` (the
*dotted* form, ``AT.008100.08010.0O6G56M11SN51G21M24S``). TOR-4.1 says every field is
right-aligned and left-padded with zeros, so in the dotted form a segment shorter than its width
is padded with leading zeros (``AT.8100.8010.123`` is ``AT.008100.08010.00000000000000000123``).
The canonical form has no separators and therefore no padding: it must have exactly 33
characters. Surrounding whitespace is stripped; nothing else is forgiven (no lowercase, no inner
spaces, no other separators), because an ID that is silently "repaired" may name another metering
point.

A virtual metering point (TOR-4.1v) has an ID of the same shape; it has no meter-internal
identification and is attached to its real parent metering point in the site configuration.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lastgang.errors import InvalidId, Problem

__all__ = [
    "COUNTRY_CODES",
    "ID_LENGTH",
    "MeteringPointId",
    "check_metering_point_id",
    "is_metering_point_id",
    "parse_metering_point_id",
]

#: length of the canonical form (TOR-4.1)
ID_LENGTH = 33

#: widths of the four segments, in order
COUNTRY_WIDTH = 2
OPERATOR_WIDTH = 6
POSTAL_CODE_WIDTH = 5
NUMBER_WIDTH = 20

_COUNTRY_TABLE = """
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ
    BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ
    CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ
    DE DJ DK DM DO DZ
    EC EE EG EH ER ES ET
    FI FJ FK FM FO FR
    GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY
    HK HM HN HR HT HU
    ID IE IL IM IN IO IQ IR IS IT
    JE JM JO JP
    KE KG KH KI KM KN KP KR KW KY KZ
    LA LB LC LI LK LR LS LT LU LV LY
    MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ
    NA NC NE NF NG NI NL NO NP NR NU NZ
    OM
    PA PE PF PG PH PK PL PM PN PR PS PT PW PY
    QA
    RE RO RS RU RW
    SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ
    TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ
    UA UG UM US UY UZ
    VA VC VE VG VI VN VU
    WF WS
    YE YT
    ZA ZM ZW
"""
#: every officially assigned ISO 3166-1 alpha-2 country code (249 codes). User-assigned codes
#: such as ``XK`` and the EU's own abbreviations (``EL``, ``UK``) are not in it.
COUNTRY_CODES: frozenset[str] = frozenset(_COUNTRY_TABLE.split())

# Codes people write by habit that ISO 3166-1 assigns differently.
_COUNTRY_HINTS = {"UK": "GB", "EL": "GR"}

_DIGITS = frozenset("0123456789")
_UPPER = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_NUMBER_CHARS = _DIGITS | _UPPER

_EXAMPLE = "AT.008100.08010.0O6G56M11SN51G21M24S"

#: an ID at full width whose segments have the allowed characters (the country code is still to
#: be looked up): the common case, decided without the checks that explain a bad ID
_FULL_WIDTH = re.compile(
    f"[A-Z]{{{COUNTRY_WIDTH}}}[0-9]{{{OPERATOR_WIDTH}}}[0-9]{{{POSTAL_CODE_WIDTH}}}"
    f"[A-Z0-9]{{{NUMBER_WIDTH}}}"
)


@dataclass(frozen=True)
class MeteringPointId:
    """A valid metering point ID (Zählpunktbezeichnung, TOR-4.1), segments at full width.

    Build one with :func:`parse_metering_point_id`; the constructor accepts only segments that
    are already at full width and raises :class:`~lastgang.errors.InvalidId` otherwise.
    """

    country: str
    operator: str
    postal_code: str
    number: str

    def __post_init__(self) -> None:
        if _valid_full_width(self.country, self.operator, self.postal_code, self.number):
            return
        problems = _check_segments(self.country, self.operator, self.postal_code, self.number)
        if problems:
            text = ".".join((self.country, self.operator, self.postal_code, self.number))
            raise InvalidId(_message(text, problems), problems)

    @property
    def canonical(self) -> str:
        """The 33-character form used in data exchange: ``AT008100080100O6G56M11SN51G21M24S``."""
        return f"{self.country}{self.operator}{self.postal_code}{self.number}"

    @property
    def dotted(self) -> str:
        """The printed form, ``.`` between segments: ``AT.008100.08010.0O6G56M11SN51G21M24S``."""
        return f"{self.country}.{self.operator}.{self.postal_code}.{self.number}"

    def __str__(self) -> str:
        return self.canonical


def parse_metering_point_id(text: str) -> MeteringPointId:
    """Parse a metering point ID in the canonical (33 characters) or the dotted form.

    Raises :class:`~lastgang.errors.InvalidId` carrying every problem of the ID.

    >>> parse_metering_point_id("AT.008100.08010.0O6G56M11SN51G21M24S").canonical
    'AT008100080100O6G56M11SN51G21M24S'
    """
    segments, problems = _split(text)
    if problems or segments is None:
        raise InvalidId(_message(text, problems), problems)
    return MeteringPointId(*segments)


def check_metering_point_id(
    text: str,
    *,
    file: str | None = None,
    line: int | None = None,
    column: str | None = None,
    meter: str | None = None,
) -> list[Problem]:
    """Every problem of a metering point ID (empty when it is valid).

    The optional ``file``, ``line``, ``column`` and ``meter`` are copied into each
    :class:`~lastgang.errors.Problem`, so callers that validate a file can report the place.
    """
    _, problems = _split(text)
    if not any((file, line, column, meter)):
        return problems
    return [
        Problem(p.reason, file=file, line=line, column=column, meter=meter, severity=p.severity)
        for p in problems
    ]


def is_metering_point_id(text: str) -> bool:
    """True if ``text`` is a valid metering point ID in the canonical or the dotted form."""
    segments, problems = _split(text)
    return segments is not None and not problems


# --- implementation -------------------------------------------------------------------------


def _message(text: str, problems: list[Problem]) -> str:
    return f"invalid metering point ID {text!r} ({len(problems)} problem(s))"


def _split(text: str) -> tuple[tuple[str, str, str, str] | None, list[Problem]]:
    """The four full-width segments of ``text`` (or None) and every problem found."""
    stripped = text.strip()
    if not stripped:
        return None, [Problem(f"the ID is empty; expected 33 characters such as {_EXAMPLE}")]
    if "." in stripped:
        return _split_dotted(stripped)
    return _split_canonical(stripped)


def _split_canonical(text: str) -> tuple[tuple[str, str, str, str] | None, list[Problem]]:
    if len(text) != ID_LENGTH:
        # The segments cannot be told apart; report what is certain: the length, the country
        # code at the start, and characters that cannot appear anywhere in an ID.
        problems = [
            Problem(
                f"total length: {len(text)} characters, expected {ID_LENGTH} (country 2 + network "
                f"operator number 6 + postal code 5 + metering point number 20); in the dotted "
                f"form ({_EXAMPLE}) shorter segments are padded with zeros"
            )
        ]
        problems.extend(_check_country(text[:COUNTRY_WIDTH]))
        bad = [(i, ch) for i, ch in _bad_characters(text, _NUMBER_CHARS) if i > COUNTRY_WIDTH]
        if bad:
            problems.append(
                Problem(
                    f"invalid {_list_bad(bad)} of the ID: only A-Z and 0-9 can appear in a "
                    f"metering point ID{_lowercase_hint(bad)}{_space_hint(bad)}"
                )
            )
        return None, problems
    a = COUNTRY_WIDTH
    b = a + OPERATOR_WIDTH
    c = b + POSTAL_CODE_WIDTH
    segments = (text[:a], text[a:b], text[b:c], text[c:])
    if _valid_full_width(*segments):
        return segments, []
    problems = _check_segments(*segments)
    return (None if problems else segments), problems


def _split_dotted(text: str) -> tuple[tuple[str, str, str, str] | None, list[Problem]]:
    parts = text.split(".")
    if len(parts) != 4:
        return None, [
            Problem(
                f"dotted form: {len(parts)} segments separated by '.', expected 4 "
                f"(country.operator.postal code.metering point number, e.g. {_EXAMPLE})"
            )
        ]
    country, operator, postal_code, number = parts
    problems = _check_segments(country, operator, postal_code, number, padded=True)
    if problems:
        return None, problems
    return (
        country,
        operator.rjust(OPERATOR_WIDTH, "0"),
        postal_code.rjust(POSTAL_CODE_WIDTH, "0"),
        number.rjust(NUMBER_WIDTH, "0"),
    ), []


def _valid_full_width(country: str, operator: str, postal_code: str, number: str) -> bool:
    """Whether four full-width segments are valid: :func:`_check_segments` finds no problem
    (the same answer, without building its messages; a site of 10,000 locations has 20,000
    IDs)."""
    return (
        len(country) == COUNTRY_WIDTH
        and len(operator) == OPERATOR_WIDTH
        and len(postal_code) == POSTAL_CODE_WIDTH
        and len(number) == NUMBER_WIDTH
        and _FULL_WIDTH.fullmatch(country + operator + postal_code + number) is not None
        and country in COUNTRY_CODES
    )


def _check_segments(
    country: str, operator: str, postal_code: str, number: str, *, padded: bool = False
) -> list[Problem]:
    """Problems of the four segments, in order. ``padded``: segments may be shorter than their
    width (dotted form, zeros are added on the left)."""
    return [
        *_check_country(country),
        *_check_field("network operator number", operator, OPERATOR_WIDTH, _DIGITS, padded),
        *_check_field("postal code", postal_code, POSTAL_CODE_WIDTH, _DIGITS, padded),
        *_check_field("metering point number", number, NUMBER_WIDTH, _NUMBER_CHARS, padded),
    ]


def _check_field(
    name: str, value: str, width: int, allowed: frozenset[str], padded: bool
) -> list[Problem]:
    kind = "digits" if allowed is _DIGITS else "characters A-Z and 0-9"
    problems: list[Problem] = []
    if not value:
        return [Problem(f"{name}: the segment is empty, expected {width} {kind}")]
    if padded and len(value) > width:
        problems.append(
            Problem(f"{name} {value!r}: {len(value)} characters, at most {width} {kind} allowed")
        )
    elif not padded and len(value) != width:
        problems.append(
            Problem(f"{name} {value!r}: {len(value)} characters, expected {width} {kind}")
        )
    bad = _bad_characters(value, allowed)
    if bad:
        problems.append(
            Problem(
                f"{name} {value!r}: invalid {_list_bad(bad)}; only {kind} are allowed"
                f"{_lowercase_hint(bad) if allowed is _NUMBER_CHARS else ''}{_space_hint(bad)}"
            )
        )
    return problems


def _check_country(country: str) -> list[Problem]:
    ascii_letters = _UPPER | frozenset(ch.lower() for ch in _UPPER)
    if len(country) != COUNTRY_WIDTH or not set(country) <= ascii_letters:
        return [
            Problem(
                f"country code {country!r}: expected 2 letters A-Z, an ISO 3166-1 alpha-2 code "
                "such as AT or DE"
            )
        ]
    if not set(country) <= _UPPER:
        upper = country.upper()
        if upper in COUNTRY_CODES:
            return [Problem(f"country code {country!r}: write it in capital letters ({upper})")]
        return [
            Problem(
                f"country code {country!r}: write it in capital letters, and {upper!r} is not an "
                "ISO 3166-1 alpha-2 code either"
            )
        ]
    if country not in COUNTRY_CODES:
        hint = _COUNTRY_HINTS.get(country)
        extra = f"; ISO 3166-1 writes {hint}" if hint else ""
        return [Problem(f"country code {country!r} is not an ISO 3166-1 alpha-2 code{extra}")]
    return []


def _bad_characters(value: str, allowed: frozenset[str]) -> list[tuple[int, str]]:
    """(1-based position, character) of every character of ``value`` not in ``allowed``."""
    return [(i, ch) for i, ch in enumerate(value, start=1) if ch not in allowed]


def _list_bad(bad: list[tuple[int, str]]) -> str:
    noun = "character" if len(bad) == 1 else "characters"
    return f"{noun} " + ", ".join(f"{ch!r} at position {pos}" for pos, ch in bad)


def _lowercase_hint(bad: list[tuple[int, str]]) -> str:
    if any(ch.islower() for _, ch in bad):
        return " (lowercase letters are not allowed: write them in capitals)"
    return ""


def _space_hint(bad: list[tuple[int, str]]) -> str:
    if any(ch.isspace() for _, ch in bad):
        return " (no spaces inside an ID: use the 33-character form or '.' between segments)"
    return ""
