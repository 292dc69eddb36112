"""Smart meter customer interface: M-Bus and HDLC framing, AES-GCM, DLMS data-notifications."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given
from hypothesis import strategies as st

from lastgang.errors import InvalidInput
from lastgang.ingest.dlms import (
    DecryptionError,
    MissingKeyError,
    StreamDecoder,
    Telegram,
    decode_stream,
    decrypt_apdu,
)
from lastgang.ingest.mbus import crc16_x25

DATA = Path(__file__).resolve().parents[1] / "data" / "dlms"
TELEGRAM = bytes.fromhex((DATA / "netz-noe-telegram.hex").read_text().strip())
PLAINTEXT = bytes.fromhex((DATA / "netz-noe-plaintext.hex").read_text().strip())
KEY = bytes.fromhex("36C66639E48A8CA4D6BC8B282A793BBB")
TITLE = "4B464D6750000009"


# -- independent reference helpers -----------------------------------------------------------


def _crc_x25_bitwise(data: bytes) -> int:
    """CRC-16/X.25 bit by bit, straight from its definition (reflected 0x1021)."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
    return crc ^ 0xFFFF


def _mbus_frame(ci: int, payload: bytes) -> bytes:
    body = bytes([0x53, 0xFF, ci, 0x01, 0x67]) + payload
    return bytes([0x68, len(body), len(body), 0x68]) + body + bytes([sum(body) % 256, 0x16])


def _hdlc_frame(info: bytes, *, segmented: bool = False) -> bytes:
    header_len = 2 + 2 + 1 + 1 + 2  # format, dest (2), src (1), control, HCS
    length = header_len + len(info) + 2
    fmt = 0xA0 | (0x08 if segmented else 0) | (length >> 8)
    header = bytes([fmt, length & 0xFF, 0xCE, 0xFF, 0x03, 0x13])
    hcs = _crc_x25_bitwise(header).to_bytes(2, "little")
    body = header + hcs + info
    fcs = _crc_x25_bitwise(body).to_bytes(2, "little")
    return b"\x7e" + body + fcs + b"\x7e"


def _obis(a: int, b: int, c: int, d: int, e: int) -> bytes:
    return bytes([0x09, 0x06, a, b, c, d, e, 0xFF])


def _value(obis: bytes, tag: int, raw: bytes, scaler: int, unit: int) -> bytes:
    return obis + bytes([tag]) + raw + bytes([0x02, 0x02, 0x0F, scaler & 0xFF, 0x16, unit])


def _date_time(
    year: int, month: int, day: int, hour: int, minute: int, second: int, dev: int, status: int
) -> bytes:
    return (
        year.to_bytes(2, "big")
        + bytes([month, day, 0xFF, hour, minute, second, 0x00])
        + dev.to_bytes(2, "big", signed=True)
        + bytes([status])
    )


def _notification(clock: bytes, meter_number: bytes = b"1KFM0200204") -> bytes:
    """A data-notification laid out like the Netz NÖ telegram, with our own values."""
    elements = [
        bytes([0x09, 0x0C]) + clock,
        _value(_obis(1, 0, 1, 8, 0), 0x06, (123_456).to_bytes(4, "big"), 0, 30),
        _value(_obis(1, 0, 2, 8, 0), 0x06, (7_890).to_bytes(4, "big"), 0, 30),
        _value(_obis(1, 0, 1, 7, 0), 0x06, (1_500).to_bytes(4, "big"), 0, 27),
        _value(_obis(1, 0, 2, 7, 0), 0x06, (0).to_bytes(4, "big"), 0, 27),
        _value(_obis(1, 0, 32, 7, 0), 0x12, (2_301).to_bytes(2, "big"), -1, 35),
        _value(_obis(1, 0, 31, 7, 0), 0x12, (652).to_bytes(2, "big"), -2, 33),
        _value(_obis(1, 0, 13, 7, 0), 0x12, (950).to_bytes(2, "big"), -3, 255),
        bytes([0x09, len(meter_number)]) + meter_number,
    ]
    count = 1 + 3 * 7 + 1
    body = bytes([0x02, count]) + b"".join(elements)
    return bytes([0x0F, 0x00, 0x00, 0x00, 0x01, 0x0C]) + clock + body


def _encrypt(
    plain: bytes, key: bytes, title: bytes, counter: int, *, auth_key: bytes | None = None
) -> bytes:
    """A general-glo-ciphering APDU made with the ``cryptography`` AEAD API."""
    iv = title + counter.to_bytes(4, "big")
    if auth_key is None:
        security = 0x20
        sealed = AESGCM(key).encrypt(iv, plain, None)
        content = sealed[:-16]  # GCM ciphertext without its tag
    else:
        security = 0x30
        sealed = AESGCM(key).encrypt(iv, plain, bytes([security]) + auth_key)
        content = sealed[:-16] + sealed[-16:-4]  # ciphertext + tag truncated to 12 bytes
    inner = bytes([security]) + counter.to_bytes(4, "big") + content
    length = bytes([len(inner)]) if len(inner) < 0x80 else bytes([0x81, len(inner)])
    return bytes([0xDB, 0x08]) + title + length + inner


OWN_KEY = bytes(range(16))
OWN_AUTH = bytes(range(16, 32))
OWN_TITLE = bytes.fromhex("4B464D1020000123")


def _own_hdlc(clock: bytes, *, auth_key: bytes | None = None, counter: int = 7) -> bytes:
    apdu = _encrypt(_notification(clock), OWN_KEY, OWN_TITLE, counter, auth_key=auth_key)
    return _hdlc_frame(b"\xe6\xe7\x00" + apdu)


SUMMER = _date_time(2024, 7, 1, 12, 0, 0, -120, 0x80)


# -- the published example -------------------------------------------------------------------


def test_netz_noe_published_example_decodes_exactly() -> None:
    result = decode_stream(TELEGRAM, KEY)

    assert result.remainder == b""
    assert result.problems == ()
    (telegram,) = result.telegrams
    assert telegram.system_title == TITLE
    assert telegram.frame_counter == 0x23
    assert telegram.security == 0x20
    assert telegram.meter_number == "181220000009"
    # 09:47:15, deviation -120 min (UTC = local - 2 h), status 0x80 (summer time)
    assert telegram.clock == datetime(2021, 9, 27, 9, 47, 15, tzinfo=timezone(timedelta(hours=2)))
    assert telegram.clock is not None
    assert telegram.clock.astimezone(UTC) == datetime(2021, 9, 27, 7, 47, 15, tzinfo=UTC)
    assert telegram.clock_status == 0x80
    # 12937 Wh = 12.937 kWh; powers in kW
    assert telegram.import_kwh == 12.937
    assert telegram.export_kwh == 0.0
    assert telegram.import_kw == 0.0
    assert telegram.export_kw == 0.0
    assert telegram.voltage == (233.7, 0.0, 0.0)
    assert telegram.current == (0.0, 0.0, 0.0)
    assert telegram.power_factor == 1.0
    units = {r.obis: r.unit for r in telegram.readings}
    assert units == {
        "1-0:1.8.0": "kWh",
        "1-0:2.8.0": "kWh",
        "1-0:1.7.0": "kW",
        "1-0:2.7.0": "kW",
        "1-0:32.7.0": "V",
        "1-0:52.7.0": "V",
        "1-0:72.7.0": "V",
        "1-0:31.7.0": "A",
        "1-0:51.7.0": "A",
        "1-0:71.7.0": "A",
        "1-0:13.7.0": "",
    }
    voltage = telegram.reading("32.7.0")
    assert voltage is not None
    assert (voltage.raw, voltage.scaler, voltage.dlms_unit) == (2337, -1, 35)


def test_netz_noe_example_plaintext_matches_the_published_one() -> None:
    # frame 1 is 256 bytes (L = 0xFA), frame 2 the remaining 26; data starts after CI STSAP DTSAP
    first, second = TELEGRAM[:256], TELEGRAM[256:]
    assert sum(first[4:-2]) % 256 == first[-2] and first[-1] == 0x16
    assert sum(second[4:-2]) % 256 == second[-2] and second[-1] == 0x16
    apdu = first[9:-2] + second[9:-2]
    assert len(apdu) == 2 + 8 + 2 + 248
    assert decrypt_apdu(apdu, KEY) == PLAINTEXT


@pytest.mark.parametrize(
    "keys",
    [
        KEY,
        {TITLE: KEY},
        {"4b:46:4d:67:50:00:00:09": KEY},
        {"181220000009": KEY},
        {"other meter": bytes(16), "181220000009": KEY},
    ],
)
def test_keys_by_system_title_meter_number_or_one_for_all(keys: object) -> None:
    (telegram,) = decode_stream(TELEGRAM, keys).telegrams  # type: ignore[arg-type]
    assert telegram.import_kwh == 12.937


# -- errors ----------------------------------------------------------------------------------


def test_wrong_key_is_a_clear_error_and_never_values() -> None:
    with pytest.raises(DecryptionError) as info:
        decode_stream(TELEGRAM, bytes.fromhex("00112233445566778899AABBCCDDEEFF"))
    error = info.value
    assert isinstance(error, InvalidInput)
    assert str(error).startswith(
        f"frame from system title {TITLE} (manufacturer KFM) could not be decrypted with the "
        "given key: the plaintext is not a DLMS data-notification"
    )
    assert error.telegrams == ()
    assert error.problems[0].meter == TITLE


def test_missing_key_is_named() -> None:
    with pytest.raises(MissingKeyError, match=f"no key for system title {TITLE}"):
        decode_stream(TELEGRAM, {"0000000000000001": KEY})
    with pytest.raises(MissingKeyError, match="none of the 1 key"):
        decode_stream(TELEGRAM, {"999999999999": KEY})


def test_key_of_wrong_length_is_refused() -> None:
    with pytest.raises(InvalidInput, match="16 bytes"):
        decode_stream(TELEGRAM, KEY[:15])


def test_corrupted_checksum_skips_the_frame_and_says_so() -> None:
    data = bytearray(TELEGRAM)
    data[254] ^= 0x01  # checksum byte of frame 1
    result = decode_stream(bytes(data), KEY)
    assert result.telegrams == ()
    reasons = [p.reason for p in result.problems]
    assert any("checksum" in r and "byte 0" in r for r in reasons)
    assert any("segment 1" in r and "no preceding segment" in r for r in reasons)
    assert all(p.severity == "warning" for p in result.problems)


def test_corrupted_data_byte_fails_the_checksum() -> None:
    data = bytearray(TELEGRAM) + TELEGRAM
    data[100] ^= 0x40
    result = decode_stream(bytes(data), KEY)
    (telegram,) = result.telegrams  # the second, intact copy
    assert telegram.offset == len(TELEGRAM)
    assert any("checksum" in p.reason for p in result.problems)


def test_garbage_before_and_between_frames_is_skipped() -> None:
    garbage = b"\x00\x68\x01\xff\x7e\x16" + b"\x68\xfa\xfa\x68"  # includes false frame starts
    data = garbage + TELEGRAM + b"\x68\x10\x10\x68garbage" + TELEGRAM + b"\x7e\xa0"
    result = decode_stream(data, KEY)
    assert [t.offset for t in result.telegrams] == [
        len(garbage),
        len(garbage) + len(TELEGRAM) + 11,
    ]
    assert all(t.import_kwh == 12.937 for t in result.telegrams)
    skipped = [p.reason for p in result.problems]
    assert any(f"{len(garbage)} byte(s) at byte 0" in r for r in skipped)
    assert any(f"11 byte(s) at byte {len(garbage) + len(TELEGRAM)}" in r for r in skipped)
    assert result.remainder == b"\x7e\xa0"  # may still become an HDLC frame


def test_truncated_frame_at_the_end_is_a_remainder_not_an_error() -> None:
    result = decode_stream(TELEGRAM + TELEGRAM[:100], KEY)
    assert len(result.telegrams) == 1
    assert result.remainder == TELEGRAM[:100]
    assert result.problems == ()

    # an APDU whose second frame is missing waits as well
    result = decode_stream(TELEGRAM[:-3], KEY)
    assert result.telegrams == ()
    assert result.remainder == TELEGRAM[:-3]
    again = decode_stream(result.remainder + TELEGRAM[-3:], KEY)
    assert len(again.telegrams) == 1


def test_unencrypted_data_notification_needs_no_key() -> None:
    frame = _mbus_frame(0x10, _notification(SUMMER))
    (telegram,) = decode_stream(frame).telegrams
    assert telegram.system_title is None
    assert telegram.import_kwh == 123.456


# -- HDLC ------------------------------------------------------------------------------------


def test_crc16_x25_check_value() -> None:
    assert crc16_x25(b"123456789") == 0x906E == _crc_x25_bitwise(b"123456789")


def test_hdlc_frame_with_own_key_decodes() -> None:
    frame = _own_hdlc(SUMMER)
    (telegram,) = decode_stream(frame, {OWN_TITLE.hex(): OWN_KEY}).telegrams
    assert telegram.link.value == "hdlc"
    assert telegram.meter_number == "1KFM0200204"
    assert telegram.clock == datetime(2024, 7, 1, 10, 0, tzinfo=UTC)
    assert telegram.import_kwh == 123.456  # 123456 Wh
    assert telegram.export_kwh == 7.89  # 7890 Wh
    assert telegram.import_kw == 1.5  # 1500 W
    assert telegram.voltage[0] == 230.1
    assert telegram.current[0] == 6.52
    assert telegram.power_factor == 0.95
    assert not telegram.authenticated


def test_hdlc_segmented_apdu_is_reassembled() -> None:
    apdu = _encrypt(_notification(SUMMER), OWN_KEY, OWN_TITLE, 9)
    info = b"\xe6\xe7\x00" + apdu
    data = _hdlc_frame(info[:60], segmented=True) + _hdlc_frame(info[60:])
    (telegram,) = decode_stream(data, OWN_KEY).telegrams
    assert telegram.frame_counter == 9
    assert telegram.import_kwh == 123.456


def test_hdlc_segment_without_its_start_is_skipped() -> None:
    apdu = _encrypt(_notification(SUMMER), OWN_KEY, OWN_TITLE, 9)
    info = b"\xe6\xe7\x00" + apdu
    second = _hdlc_frame(info[60:])
    result = decode_stream(second + _own_hdlc(SUMMER, counter=10), OWN_KEY)
    assert [t.frame_counter for t in result.telegrams] == [10]
    assert any("whose start was not seen" in p.reason for p in result.problems)


def test_hdlc_frames_may_share_their_flag() -> None:
    one = _own_hdlc(SUMMER, counter=1)
    two = _own_hdlc(SUMMER, counter=2)
    result = decode_stream(one + two[1:], OWN_KEY)  # closing flag of one opens two
    assert [t.frame_counter for t in result.telegrams] == [1, 2]
    assert result.problems == ()


def test_hdlc_bad_fcs_is_skipped() -> None:
    data = bytearray(_own_hdlc(SUMMER))
    data[-3] ^= 0xFF
    result = decode_stream(bytes(data), OWN_KEY)
    assert result.telegrams == ()
    assert any("FCS" in p.reason for p in result.problems)


def test_authentication_tag_is_verified_with_the_authentication_key() -> None:
    frame = _own_hdlc(SUMMER, auth_key=OWN_AUTH)
    (telegram,) = decode_stream(frame, OWN_KEY, auth_keys=OWN_AUTH).telegrams
    assert telegram.security == 0x30
    assert telegram.authenticated
    assert telegram.import_kwh == 123.456

    with pytest.raises(DecryptionError, match="could not be authenticated"):
        decode_stream(frame, OWN_KEY, auth_keys=bytes(16))

    unverified = decode_stream(frame, OWN_KEY)
    assert not unverified.telegrams[0].authenticated
    assert any("no authentication key" in p.reason for p in unverified.problems)


def test_altered_ciphertext_fails_authentication() -> None:
    frame = bytearray(_own_hdlc(SUMMER, auth_key=OWN_AUTH))
    # flip one ciphertext bit and repair the FCS, as a clever attacker would
    position = 40
    frame[position] ^= 0x01
    body = bytes(frame[1:-3])
    frame[-3:-1] = _crc_x25_bitwise(body).to_bytes(2, "little")
    with pytest.raises(DecryptionError):
        decode_stream(bytes(frame), OWN_KEY, auth_keys=OWN_AUTH)


# -- meter clock -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "utc_hour"),
    [(0x80, 0), (0x00, 1)],  # 02:30 summer time is 00:30 UTC, 02:30 winter time 01:30 UTC
)
def test_clock_without_deviation_uses_the_dst_bit_on_the_autumn_change_day(
    status: int, utc_hour: int
) -> None:
    clock = _date_time(2024, 10, 27, 2, 30, 0, -0x8000, status)
    (telegram,) = decode_stream(_own_hdlc(clock), OWN_KEY).telegrams
    assert telegram.clock is not None
    assert telegram.clock.astimezone(UTC) == datetime(2024, 10, 27, utc_hour, 30, tzinfo=UTC)


def test_clock_deviation_sign() -> None:
    clock = _date_time(2024, 1, 15, 8, 0, 0, -60, 0x00)  # -60 min: UTC+01:00
    (telegram,) = decode_stream(_own_hdlc(clock), OWN_KEY).telegrams
    assert telegram.clock == datetime(2024, 1, 15, 7, 0, tzinfo=UTC)


def test_unspecified_clock_is_none_with_a_warning() -> None:
    clock = _date_time(0xFFFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, -0x8000, 0xFF)
    result = decode_stream(_own_hdlc(clock), OWN_KEY)
    assert result.telegrams[0].clock is None
    assert any("clock" in p.reason for p in result.problems)


# -- streaming -------------------------------------------------------------------------------


def _feed_in_chunks(data: bytes, cuts: list[int], keys: bytes) -> tuple[list[Telegram], bytes]:
    decoder = StreamDecoder(keys)
    telegrams: list[Telegram] = []
    previous = 0
    for cut in [*sorted(cuts), len(data)]:
        telegrams.extend(decoder.feed(data[previous:cut]))
        previous = cut
    return telegrams, decoder.remainder


def test_feeding_byte_by_byte_gives_the_telegram_at_the_last_byte() -> None:
    decoder = StreamDecoder(KEY)
    results = [decoder.feed(TELEGRAM[i : i + 1]) for i in range(len(TELEGRAM))]
    assert all(r == [] for r in results[:-1])
    assert results[-1][0].import_kwh == 12.937


@given(st.lists(st.integers(0, len(TELEGRAM)), max_size=6))
def test_splitting_the_example_anywhere_gives_the_same_readings(cuts: list[int]) -> None:
    whole = decode_stream(TELEGRAM, KEY)
    telegrams, remainder = _feed_in_chunks(TELEGRAM, cuts, KEY)
    assert telegrams == list(whole.telegrams)
    assert remainder == whole.remainder == b""


_FRAGMENTS = st.builds(
    lambda frame, a, b: frame[min(a, b) : max(a, b)],
    st.sampled_from([TELEGRAM, _own_hdlc(SUMMER)]),
    st.integers(0, len(TELEGRAM)),
    st.integers(0, len(TELEGRAM)),
)
#: garbage: random bytes, pieces of real frames (false starts), or both
_GARBAGE = st.lists(st.one_of(st.binary(max_size=40), _FRAGMENTS), max_size=3).map(b"".join)


@given(
    garbage=st.lists(_GARBAGE, min_size=3, max_size=3),
    tail=st.integers(0, len(TELEGRAM) - 1),
    cuts=st.lists(st.integers(0, 3 * len(TELEGRAM) + 200), max_size=8),
)
def test_splitting_a_stream_with_garbage_anywhere_gives_the_same_readings(
    garbage: list[bytes], tail: int, cuts: list[int]
) -> None:
    hdlc = _own_hdlc(SUMMER)
    data = garbage[0] + TELEGRAM + garbage[1] + hdlc + garbage[2] + TELEGRAM + TELEGRAM[:tail]
    keys = {TITLE: KEY, OWN_TITLE.hex(): OWN_KEY}
    whole = StreamDecoder(keys)
    expected = whole.feed(data)
    decoder = StreamDecoder(keys)
    telegrams: list[Telegram] = []
    previous = 0
    for cut in [*sorted(c for c in cuts if c <= len(data)), len(data)]:
        telegrams.extend(decoder.feed(data[previous:cut]))
        previous = cut
    assert telegrams == expected
    assert decoder.remainder == whole.remainder
    # every intact telegram comes out (pieces in the garbage may add more, never fewer)
    numbers = [t.meter_number for t in expected]
    assert numbers.count("1KFM0200204") >= 1 and numbers.count("181220000009") >= 2


@given(st.lists(st.tuples(st.integers(0, len(TELEGRAM) - 1), st.integers(0, 255)), max_size=6))
def test_corrupted_stream_raises_nothing_but_decryption_errors(
    edits: list[tuple[int, int]],
) -> None:
    data = bytearray(TELEGRAM)
    for position, value in edits:
        data[position] = value
    try:
        result = decode_stream(bytes(data), KEY)
    except DecryptionError as exc:
        assert exc.problems
        return
    # without an authentication tag (security 0x20) only the checksums guard the ciphertext,
    # so what comes out is the example unless a change kept both checksums intact
    assert len(result.telegrams) <= 1
    assert result.remainder or result.telegrams or result.problems
