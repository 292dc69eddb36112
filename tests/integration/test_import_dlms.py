"""``lastgang import --format dlms --key ...`` and ``lastgang listen --serial``: smart meter
telegrams into a site (TOR-4.1m meter numbers, TOR-7.1 raw archive, TOR-4.3 registers)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import serial
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

import lastgang.cli.commands  # noqa: F401  (registers the commands)
from lastgang.cli import app
from lastgang.concept.load import parse_site
from lastgang.errors import InvalidInput
from lastgang.ingest.csv_readings import SiteIndex
from lastgang.ingest.dispatch import ImportOptions
from lastgang.ingest.dlms import DecryptionError
from lastgang.ingest.dlms_import import read_dlms
from lastgang.listen import SerialListener, StreamCapture
from lastgang.services import apply_site_text, export_profile, import_files, rebuild_profiles
from lastgang.store.duckdb_store import DuckDBStore

DATA = Path(__file__).resolve().parent.parent / "data" / "dlms"
NOE_HEX = DATA / "netz-noe-telegram.hex"
NOE_KEY = "36C66639E48A8CA4D6BC8B282A793BBB"
NOE_TITLE = "4B464D6750000009"
WHEN = datetime(2024, 11, 5, 8, 0, tzinfo=UTC)
OWN_KEY = bytes(range(16))
OWN_TITLE = bytes.fromhex("4B464D1020000123")

SITE = """
[site]
id = "home"
timezone = "Europe/Vienna"

[[locations]]
id = "house"
role = "grid"
metering_points = { import = "AT0020000000000000000000000100001" }

[[locations.meters]]
manufacturer = "KFM"
serial = "181220000009"
installed = 2021-01-01

[[locations]]
id = "flat"
role = "consumer"
upstream = "house"

[[locations.meters]]
manufacturer = "KFM"
serial = "1KFM0200204"
registers = ["1-0:1.8.0"]
installed = 2024-01-01

[[units]]
id = "flat"
meters = ["flat"]
"""


@pytest.fixture
def store() -> DuckDBStore:
    s = DuckDBStore(":memory:")
    apply_site_text(s, SITE, "site.toml", now=WHEN)
    return s


# -- telegrams of our own (HDLC, encrypted with our key) -----------------------------------


def _crc(data: bytes) -> int:
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
    return crc ^ 0xFFFF


def _hdlc(info: bytes) -> bytes:
    length = 8 + len(info) + 2
    header = bytes([0xA0 | (length >> 8), length & 0xFF, 0xCE, 0xFF, 0x03, 0x13])
    body = header + _crc(header).to_bytes(2, "little") + info
    return b"\x7e" + body + _crc(body).to_bytes(2, "little") + b"\x7e"


def _value(c: int, d: int, raw: int, unit: int) -> bytes:
    obis = bytes([0x09, 0x06, 1, 0, c, d, 0, 0xFF])
    return obis + b"\x06" + raw.to_bytes(4, "big") + bytes([0x02, 0x02, 0x0F, 0x00, 0x16, unit])


def telegram(
    local: datetime, import_wh: int, export_wh: int, *, counter: int, meter: bytes = b"1KFM0200204"
) -> bytes:
    """One encrypted data-notification: the meter clock in Austrian legal time (deviation
    -60 in winter), import and export registers in Wh, our key and system title."""
    dev = -120 if local.month in (4, 5, 6, 7, 8, 9) else -60
    clock = (
        local.year.to_bytes(2, "big")
        + bytes([local.month, local.day, 0xFF, local.hour, local.minute, local.second, 0])
        + dev.to_bytes(2, "big", signed=True)
        + bytes([0x80 if dev == -120 else 0x00])
    )
    elements = [
        bytes([0x09, 0x0C]) + clock,
        _value(1, 8, import_wh, 30),
        _value(2, 8, export_wh, 30),
        _value(1, 7, 1500, 27),
        bytes([0x09, len(meter)]) + meter,
    ]
    plain = bytes([0x0F, 0, 0, 0, 1, 0x0C]) + clock + bytes([0x02, 1 + 3 * 3 + 1])
    plain += b"".join(elements)
    iv = OWN_TITLE + counter.to_bytes(4, "big")
    content = AESGCM(OWN_KEY).encrypt(iv, plain, None)[:-16]
    inner = bytes([0x20]) + counter.to_bytes(4, "big") + content
    apdu = bytes([0xDB, 0x08]) + OWN_TITLE + bytes([len(inner)]) + inner
    return _hdlc(b"\xe6\xe7\x00" + apdu)


def quarter_hour_stream(first: datetime, count: int) -> bytes:
    """``count`` telegrams 15 minutes apart; the import register advances 250 Wh each time."""
    return b"".join(
        telegram(
            datetime.fromtimestamp(first.timestamp() + 900 * i),
            1_000_000 + 250 * i,
            0,
            counter=100 + i,
        )
        for i in range(count)
    )


# -- the published example -----------------------------------------------------------------


def test_netz_noe_published_example_becomes_register_readings(store: DuckDBStore) -> None:
    (result,) = import_files(
        store,
        "home",
        [NOE_HEX],
        format="dlms",
        options=ImportOptions(keys=bytes.fromhex(NOE_KEY)),
        now=WHEN,
    )
    assert (result.kind, result.rows, result.locations) == ("dlms", 1, ("house",))
    found = store.readings("home", ["KFM:181220000009"], 0, 2**40)["KFM:181220000009"]
    # the published values: 12937 Wh import, 0 Wh export, meter clock 2021-09-27 09:47:15
    # at UTC+02:00 (= 07:47:15 UTC) as the reading time of meter number 181220000009
    at = int(datetime(2021, 9, 27, 7, 47, 15, tzinfo=UTC).timestamp())
    assert found.registers["1-0:1.8.0"].time.tolist() == [at]
    assert found.registers["1-0:1.8.0"].value.tolist() == [12.937]
    assert found.registers["1-0:2.8.0"].value.tolist() == [0.0]
    # TOR-7.1: the capture is archived byte for byte, with the key to read it again
    (batch,) = store.batches("home")
    assert store.batch_content(batch.batch) == NOE_HEX.read_bytes()
    assert batch.format == "dlms"
    assert rebuild_profiles(store, "home", now=WHEN).changed == 0


def test_wrong_key_is_the_clear_error_and_the_store_is_unchanged(store: DuckDBStore) -> None:
    before = store.fingerprint("home")
    with pytest.raises(InvalidInput) as caught:
        import_files(store, "home", [NOE_HEX], format="dlms", options=ImportOptions(keys=bytes(16)))
    assert "could not be decrypted with the given key" in str(caught.value)
    assert "4B464D6750000009" in str(caught.value)
    assert store.fingerprint("home") == before


def test_cli_key_by_system_title_and_wrong_key_exit_code(tmp_path: Path) -> None:
    runner = CliRunner()
    env = {"COLUMNS": "250", "NO_COLOR": "1"}
    site = tmp_path / "site.toml"
    site.write_text(SITE, encoding="utf-8")
    db = tmp_path / "s.duckdb"
    assert runner.invoke(app, ["site", "apply", str(site), "--db", str(db)], env=env).exit_code == 0
    base = ["import", "--site", "home", "--format", "dlms", str(NOE_HEX), "--db", str(db)]
    bad = runner.invoke(app, [*base, "--key", "00" * 16], env=env)
    assert bad.exit_code == 1
    assert "could not be decrypted with the given key" in bad.output
    short = runner.invoke(app, [*base, "--key", "ABCD"], env=env)
    assert short.exit_code == 1 and "32 hex digits" in short.output
    good = runner.invoke(app, [*base, "--key", f"{NOE_TITLE}={NOE_KEY}", "--json"], env=env)
    assert good.exit_code == 0, good.output
    (row,) = json.loads(good.output)
    assert (row["kind"], row["status"]) == ("dlms", "imported")


# -- own telegrams: profiles, problems -------------------------------------------------------


def test_quarter_hour_telegrams_give_the_profile_of_the_meter(
    store: DuckDBStore, tmp_path: Path
) -> None:
    capture = tmp_path / "flat.bin"
    # 12:00 to 13:00 local time in July: five readings, four quarter hours of 0.25 kWh each
    capture.write_bytes(quarter_hour_stream(datetime(2024, 7, 1, 12, 0), 5))
    (result,) = import_files(
        store, "home", [capture], format="dlms", options=ImportOptions(keys=OWN_KEY), now=WHEN
    )
    assert (result.rows, result.locations) == (5, ("flat",))
    regs = store.readings("home", ["KFM:1KFM0200204"], 0, 2**40)["KFM:1KFM0200204"].registers
    # only the configured register 1.8.0 is stored (the flat's meter lists no 2.8.0)
    assert list(regs) == ["1-0:1.8.0"]
    assert regs["1-0:1.8.0"].value.tolist() == [1000.0, 1000.25, 1000.5, 1000.75, 1001.0]
    table = export_profile(store, "home", "flat", date(2024, 7, 1), date(2024, 7, 1), "15min")
    hours = {
        e: (float(i), q) for e, i, q in zip(table.end, table.import_kwh, table.quality, strict=True)
    }
    for label in ("12:15", "12:30", "12:45", "13:00"):
        assert hours[f"2024-07-01 {label}+02:00"] == (pytest.approx(0.25, abs=1e-9), "L1")


def _with_telegrams(base: str, capture: Path) -> Callable[[], DuckDBStore]:
    """A store of ``base`` with the published telegram (the house) and ``capture`` (the
    flat), each imported as a batch of its own."""

    def make() -> DuckDBStore:
        s = DuckDBStore(":memory:")
        apply_site_text(s, base, "site.toml", now=WHEN)
        noe = ImportOptions(keys=bytes.fromhex(NOE_KEY))
        import_files(s, "home", [NOE_HEX], format="dlms", options=noe, now=WHEN)
        own = ImportOptions(keys=OWN_KEY)
        import_files(s, "home", [capture], format="dlms", options=own, now=WHEN)
        return s

    return make


STUDIO = (
    '[[locations]]\nid = "studio"\nrole = "consumer"\nupstream = "house"\n\n'
    '[[locations.meters]]\nmanufacturer = "KFM"\nserial = "1KFM0200999"\n'
    "installed = 2024-01-01\n\n"
)


def test_tor_7_1_a_partial_rebuild_reads_again_only_the_telegrams_of_the_meters_it_rebuilds(
    tmp_path: Path, parsed: list[str], against_whole: Callable[..., Any]
) -> None:
    capture = tmp_path / "flat.bin"
    capture.write_bytes(quarter_hour_stream(datetime(2024, 7, 1, 12, 0), 5))
    make = _with_telegrams(SITE, capture)
    later = datetime(2024, 11, 20, tzinfo=UTC)
    # the flat's meter gets its export register: its capture is read again, not the house's
    both = SITE.replace('registers = ["1-0:1.8.0"]', 'registers = ["1-0:1.8.0", "1-0:2.8.0"]')
    store, rebuilt, built = against_whole(make, "home", both, later)
    assert (rebuilt.locations, parsed, built) == (("flat",), ["flat.bin"], {"flat"})
    found = store.readings("home", ["KFM:1KFM0200204"], 0, 2**40)["KFM:1KFM0200204"]
    assert sorted(found.registers) == ["1-0:1.8.0", "1-0:2.8.0"]
    # a new tenant's meter: no telegram names it, none is read again
    added = SITE.replace("[[units]]", STUDIO + "[[units]]", 1)
    _, rebuilt, built = against_whole(make, "home", added, later)
    assert (rebuilt.locations, parsed, built) == (("studio",), [], set())


def test_a_capture_that_gave_no_reading_is_read_again_for_its_meter(
    tmp_path: Path, parsed: list[str], against_whole: Callable[..., Any]
) -> None:
    """The flat's meter listed only a register its telegrams lack, so its capture gave no
    reading (nothing stored to say the capture is the flat's); its names still say so."""
    capture = tmp_path / "flat.bin"
    capture.write_bytes(quarter_hour_stream(datetime(2024, 7, 1, 12, 0), 5))
    lacking = SITE.replace('registers = ["1-0:1.8.0"]', 'registers = ["1-0:1.8.1"]')
    later = datetime(2024, 11, 20, tzinfo=UTC)
    store, rebuilt, _ = against_whole(_with_telegrams(lacking, capture), "home", SITE, later)
    assert (rebuilt.locations, parsed) == (("flat",), ["flat.bin"])
    found = store.readings("home", ["KFM:1KFM0200204"], 0, 2**40)["KFM:1KFM0200204"]
    assert found.registers["1-0:1.8.0"].value.tolist() == [1000.0, 1000.25, 1000.5, 1000.75, 1001.0]


def test_unknown_meter_number_and_missing_key_are_listed(
    store: DuckDBStore, tmp_path: Path
) -> None:
    stranger = tmp_path / "stranger.bin"
    stranger.write_bytes(
        telegram(datetime(2024, 7, 1, 12, 0), 5, 0, counter=1, meter=b"9XYZ0000001")
        + telegram(datetime(2024, 7, 1, 12, 15), 6, 0, counter=2, meter=b"9XYZ0000001")
    )
    before = store.fingerprint("home")
    with pytest.raises(InvalidInput) as caught:
        import_files(store, "home", [stranger], format="dlms", options=ImportOptions(keys=OWN_KEY))
    (problem,) = caught.value.problems
    assert "meter number 9XYZ0000001 is not the serial of a meter of site 'home'" in problem.reason
    assert "2 telegram(s)" in problem.reason
    with pytest.raises(InvalidInput) as missing:
        import_files(store, "home", [stranger], format="dlms")
    assert "no key" in str(missing.value) and "4B464D1020000123" in str(missing.value)
    assert store.fingerprint("home") == before


# -- the streaming capture used by `listen --serial` ---------------------------------------


STREAM = quarter_hour_stream(datetime(2024, 3, 31, 0, 0), 6)
INDEX = SiteIndex(parse_site(SITE, "site.toml"))


def _rows(data: bytes) -> list[tuple[str, str, int, float]]:
    file = read_dlms(data, "capture", INDEX, OWN_KEY)
    r = file.readings.registers
    return [
        (r.meters[m], r.registers[o], int(t), float(v))
        for m, o, t, v in zip(r.meter, r.register, r.time, r.value, strict=True)
    ]


@given(
    cuts=st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=12),
    takes=st.lists(st.booleans(), min_size=13, max_size=13),
)
def test_splitting_the_stream_anywhere_gives_the_same_readings(
    cuts: list[int], takes: list[bool]
) -> None:
    capture = StreamCapture(OWN_KEY)
    batches: list[bytes] = []
    points = sorted(set(cuts))
    for i, (a, b) in enumerate(zip([0, *points], [*points, len(STREAM)], strict=True)):
        capture.feed(STREAM[a:b])
        if takes[i]:
            batch = capture.take()
            if batch:
                batches.append(batch)
    # the end of the capture: the rest goes with the last batch (as `listen` does at a stop)
    last = capture.take() + capture.take_rest()
    if last:
        batches.append(last)
    # byte for byte: the batches joined are the stream (nothing lost, nothing twice)
    assert b"".join(batches) == STREAM
    # and each archived batch, read on its own, gives the readings of the whole stream
    joined = [row for batch in batches for row in _rows(batch)]
    assert sorted(joined) == sorted(_rows(STREAM))
    assert len(joined) == 6  # six telegrams, one configured register


def test_listen_serial_archives_whole_telegrams_in_batches(
    store: DuckDBStore, tmp_path: Path
) -> None:
    db = tmp_path / "listen.duckdb"
    disk = DuckDBStore(db)
    apply_site_text(disk, SITE, "site.toml", now=WHEN)
    disk.close()
    port = serial.serial_for_url("loop://", timeout=0.05)
    stream = quarter_hour_stream(datetime(2024, 7, 1, 0, 0), 5)
    port.write(stream[:150])  # the port delivers the stream in two pieces
    port.write(stream[150:])
    listener = SerialListener(port, "home", OWN_KEY, db=db, max_records=2, max_seconds=30)
    stats = listener.run(duration=1.0)
    port.close()
    assert stats.received == 5 and stats.archived >= 1
    disk = DuckDBStore(db)
    try:
        batches = disk.batches("home")
        assert b"".join(disk.batch_content(b.batch) for b in batches) == stream
        assert all(b.format == "dlms" and b.source.startswith("serial:") for b in batches)
        regs = disk.readings("home", ["KFM:1KFM0200204"], 0, 2**40)["KFM:1KFM0200204"]
        assert np.diff(regs.registers["1-0:1.8.0"].value).tolist() == [0.25] * 4
    finally:
        disk.close()


def test_listen_serial_with_a_wrong_key_stops_and_stores_nothing(tmp_path: Path) -> None:
    db = tmp_path / "listen.duckdb"
    disk = DuckDBStore(db)
    apply_site_text(disk, SITE, "site.toml", now=WHEN)
    before = disk.fingerprint("home")
    disk.close()
    port = serial.serial_for_url("loop://", timeout=0.05)
    port.write(quarter_hour_stream(datetime(2024, 7, 1, 0, 0), 2))
    with pytest.raises(DecryptionError):
        SerialListener(port, "home", bytes(16), db=db).run(duration=1.0)
    disk = DuckDBStore(db)
    assert disk.fingerprint("home") == before
    disk.close()
