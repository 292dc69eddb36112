"""MQTT: gateway payloads (Tasmota SML, generic OBIS JSON, smart-me, Shelly) and
``lastgang listen --mqtt`` against a real Mosquitto broker on loopback: readings land in the
store, and a listener killed in the middle of a batch loses nothing it acknowledged."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from typer.testing import CliRunner

import lastgang.cli.commands  # noqa: F401  (registers the commands)
from lastgang.cli import app
from lastgang.errors import InvalidInput
from lastgang.ingest.mqtt import Message, encode_message, parse_payload
from lastgang.listen import MqttListener
from lastgang.services import apply_site_text, export_profile, import_bytes
from lastgang.store.duckdb_store import DuckDBStore

WHEN = datetime(2024, 11, 5, 8, 0, tzinfo=UTC)
SITE = """
[site]
id = "home"
timezone = "Europe/Vienna"

[[locations]]
id = "house"
role = "grid"
metering_points = { import = "AT0020000000000000000000000100001" }

[[locations.meters]]
manufacturer = "EMH"
serial = "smlreader1"
installed = 2024-01-01

[[locations]]
id = "flat"
role = "consumer"
upstream = "house"

[[locations.meters]]
manufacturer = "SME"
serial = "123456"
installed = 2024-01-01

[[units]]
id = "flat"
meters = ["flat"]
"""
TOPIC = "tele/smlreader1/SENSOR"


# -- payloads -------------------------------------------------------------------------------


def test_tasmota_sml_payload_in_local_time() -> None:
    payload = (
        b'{"Time":"2024-05-01T12:00:00",'
        b'"SML":{"Total_in":1234.5,"Total_out":12.3,"Power_curr":456}}'
    )
    reading = parse_payload(payload, WHEN, "Europe/Vienna")
    assert reading.form == "tasmota"
    assert reading.registers == (("1-0:1.8.0", 1234.5), ("1-0:2.8.0", 12.3))
    # 12:00 summer time in Vienna is 10:00 UTC
    assert reading.time == int(datetime(2024, 5, 1, 10, 0, tzinfo=UTC).timestamp())


def test_tasmota_time_in_the_repeated_hour_is_the_instant_nearest_its_receipt() -> None:
    payload = b'{"Time":"2024-10-27T02:30:00","SML":{"Total_in":1.0}}'
    summer = datetime(2024, 10, 27, 0, 30, 5, tzinfo=UTC)  # 02:30+02:00, received 5 s later
    winter = datetime(2024, 10, 27, 1, 30, 5, tzinfo=UTC)  # 02:30+01:00
    assert parse_payload(payload, summer, "Europe/Vienna").time == int(summer.timestamp()) - 5
    assert parse_payload(payload, winter, "Europe/Vienna").time == int(winter.timestamp()) - 5


def test_generic_smartme_and_shelly_payloads() -> None:
    generic = parse_payload(
        b'{"meter":"EMH:smlreader1","time":"2024-05-01T12:00:00+02:00","1-0:1.8.0":1500,'
        b'"1-0:2.8.0":20,"unit":"Wh"}',
        WHEN,
        "Europe/Vienna",
    )
    assert (generic.form, generic.meter) == ("generic", "EMH:smlreader1")
    assert generic.registers == (("1-0:1.8.0", 1.5), ("1-0:2.8.0", 0.02))
    smartme = parse_payload(
        b'{"Serial":123456,"ValueDate":"2024-05-01T10:00:00Z","CounterReadingImport":100.5,'
        b'"CounterReadingExport":2.5,"CounterReadingUnit":"kWh","ActivePowerL1":0.4,'
        b'"ActivePowerL2":-0.1,"ActivePowerL3":0.2}',
        WHEN,
        "Europe/Vienna",
    )
    assert (smartme.form, smartme.meter, smartme.phases) == ("smartme", "123456", (0.4, -0.1, 0.2))
    assert smartme.registers == (("1-0:1.8.0", 100.5), ("1-0:2.8.0", 2.5))
    shelly = parse_payload(
        b'{"src":"shellypro3em-abc","method":"NotifyStatus","params":{"ts":1714557600.5,'
        b'"emdata:0":{"total_act":1234500,"total_act_ret":12300},'
        b'"em:0":{"a_act_power":400.0,"b_act_power":-100.0,"c_act_power":50.0}}}',
        WHEN,
        "Europe/Vienna",
    )
    assert (shelly.form, shelly.meter, shelly.time) == ("shelly", "shellypro3em-abc", 1714557600)
    assert shelly.registers == (("1-0:1.8.0", 1234.5), ("1-0:2.8.0", 12.3))
    assert shelly.phases == (0.4, -0.1, 0.05)
    with pytest.raises(ValueError, match="not JSON"):
        parse_payload(b"hello", WHEN, "Europe/Vienna")


def test_a_capture_file_imports_and_lists_every_bad_message(tmp_path: Path) -> None:
    store = DuckDBStore(":memory:")
    apply_site_text(store, SITE, "site.toml", now=WHEN)
    good = encode_message(Message(TOPIC, _tasmota(datetime(2024, 5, 1, 12, 0), 100.0), WHEN))
    bad = encode_message(Message("tele/unknown/SENSOR", _tasmota(datetime(2024, 5, 1), 1), WHEN))
    broken = encode_message(Message(TOPIC, b"\xff\x00 not json", WHEN))
    before = store.fingerprint("home")
    with pytest.raises(InvalidInput) as caught:
        import_bytes(store, "home", good + bad + broken, "capture.jsonl", format="mqtt")
    lines = sorted(p.line or 0 for p in caught.value.problems)
    assert lines == [2, 3]
    assert store.fingerprint("home") == before
    result = import_bytes(store, "home", good, "capture.jsonl")  # recognised by its content
    assert (result.kind, result.rows) == ("mqtt", 1)
    assert store.batch_content(result.batch) == good


# -- a real broker ---------------------------------------------------------------------------


def _mosquitto_binary() -> str | None:
    found = shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if os.path.exists(p)),
        None,
    )
    if found:
        return found
    if shutil.which("apt-get") and hasattr(os, "geteuid") and os.geteuid() == 0:
        subprocess.run(["apt-get", "update"], capture_output=True, timeout=300, check=False)
        subprocess.run(
            ["apt-get", "install", "-y", "mosquitto"], capture_output=True, timeout=300, check=False
        )
        return shutil.which("mosquitto") or (
            "/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto") else None
        )
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    binary = _mosquitto_binary()
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("mosquitto is missing in CI: `make test` installs it (test-deps)")
        pytest.skip(
            "mosquitto is not installed and cannot be installed here (needs apt-get as root); "
            "run `make test-deps`"
        )
    folder = tmp_path_factory.mktemp("mosquitto")
    port = _free_port()
    config = folder / "mosquitto.conf"
    config.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
        "max_queued_messages 1000\nlog_dest stderr\n",
        encoding="utf-8",
    )
    log = (folder / "broker.log").open("wb")
    process = subprocess.Popen([binary, "-c", str(config)], stdout=log, stderr=log)
    deadline = time.monotonic() + 10
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise RuntimeError(f"mosquitto did not start on port {port}") from None
            time.sleep(0.05)
    yield port
    process.terminate()
    process.wait(timeout=10)
    log.close()


def _publish(port: int, messages: list[tuple[str, bytes]], *, retain: bool = False) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="")
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        for topic, payload in messages:
            client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)
    finally:
        client.loop_stop()
        client.disconnect()


def _tasmota(local: datetime, total_in: float) -> bytes:
    return json.dumps(
        {"Time": local.isoformat(), "SML": {"Total_in": total_in, "Total_out": 0.0}}
    ).encode()


def _quarter_hours(first: datetime, count: int, start_kwh: float) -> list[tuple[str, bytes]]:
    return [
        (TOPIC, _tasmota(first + timedelta(minutes=15 * i), start_kwh + 0.25 * i))
        for i in range(count)
    ]


# -- a changed site file: which captures a partial rebuild reads again ------------------------

STUDIO = """
[[locations]]
id = "studio"
role = "consumer"
upstream = "house"

[[locations.meters]]
manufacturer = "SME"
serial = "777"
installed = 2024-01-01

"""


def _captures() -> list[tuple[str, bytes]]:
    """Three captures of the house's Tasmota reader (topic ``tele/smlreader1/SENSOR``, an hour
    of quarter hours each, as a listener archives them) and one of the flat's smart-me meter."""
    out = []
    for h in range(3):
        messages = _quarter_hours(datetime(2024, 5, 1, 12 + h, 0), 4, 1000.0 + h)
        body = b"".join(encode_message(Message(t, p, WHEN)) for t, p in messages)
        out.append((f"house-{h}.jsonl", body))
    flat = [
        encode_message(
            Message(
                "smartme/123456",
                json.dumps(
                    {
                        "Serial": 123456,
                        "ValueDate": f"2024-05-01T1{h}:00:00Z",
                        "CounterReadingImport": 50.0 + 0.4 * h,
                        "CounterReadingExport": 0.0,
                        "CounterReadingUnit": "kWh",
                    }
                ).encode(),
                WHEN,
            )
        )
        for h in range(4)
    ]
    out.append(("flat.jsonl", b"".join(flat)))
    return out


def _site_with_captures() -> DuckDBStore:
    store = DuckDBStore(":memory:")
    apply_site_text(store, SITE, "site.toml", now=WHEN)
    for n, (name, body) in enumerate(_captures()):
        import_bytes(store, "home", body, name, format="mqtt", now=WHEN + timedelta(minutes=n))
    return store


@pytest.mark.parametrize(
    ("change", "rebuilt", "read"),
    [
        # a new tenant: no capture names its meter
        (lambda text: text.replace("[[units]]", STUDIO + "[[units]]", 1), ("studio",), []),
        # the flat's meter installed earlier: its capture is read again, the house's are not
        (
            lambda text: text.replace(
                'serial = "123456"\ninstalled = 2024-01-01',
                'serial = "123456"\ninstalled = 2023-01-01',
            ),
            ("flat",),
            ["flat.jsonl"],
        ),
        # a new meter whose serial is a level of the house's topic before the reader's name:
        # the house's messages now go to it, so the house is rebuilt too, from its captures
        (
            lambda text: text.replace(
                "[[units]]",
                STUDIO.replace('"SME"', '"TAS"').replace('"777"', '"tele"') + "[[units]]",
                1,
            ),
            ("house", "studio"),
            ["house-0.jsonl", "house-1.jsonl", "house-2.jsonl"],
        ),
    ],
)
def test_tor_7_1_a_partial_rebuild_reads_again_the_captures_whose_names_give_other_meters(
    change: Callable[[str], str],
    rebuilt: tuple[str, ...],
    read: list[str],
    parsed: list[str],
    against_whole: Callable[..., Any],
) -> None:
    text = change(SITE)
    assert text != SITE
    later = datetime(2024, 11, 20, tzinfo=UTC)
    store, result, built = against_whole(_site_with_captures, "home", text, later)
    assert (result.locations, parsed) == (rebuilt, read)
    assert built <= set(rebuilt)
    # every capture keeps its names, with the meter each gives now
    names = store.batch_names("home")
    assert len(names) == 4
    tele = "TAS:tele" if "house" in rebuilt else ""
    assert [n["tele"] for n in names.values() if "tele" in n] == [tele] * 3
    assert [n["smlreader1"] for n in names.values() if "tele" in n] == ["EMH:smlreader1"] * 3


def test_a_capture_archived_without_its_names_is_read_again_once(
    parsed: list[str],
) -> None:
    """Where the messages of a capture imported before its names were kept (as in an older
    store) went cannot be told: the next rebuild is whole and keeps their names; the one after
    leaves them unread."""
    store = _site_with_captures()
    store.connection.execute("DELETE FROM batch_names")
    parsed.clear()
    added = SITE.replace("[[units]]", STUDIO + "[[units]]", 1)
    result = apply_site_text(store, added, "v2.toml", now=WHEN)
    assert result.rebuilt is not None and result.rebuilt.locations is None
    assert parsed == ["house-0.jsonl", "house-1.jsonl", "house-2.jsonl", "flat.jsonl"]
    assert store.batch_names("home")[store.batches("home")[0].batch] == {
        "SENSOR": "",
        "smlreader1": "EMH:smlreader1",
        "tele": "",
    }
    parsed.clear()
    again = apply_site_text(store, added.replace('"777"', '"778"'), "v3.toml", now=WHEN)
    assert again.rebuilt is not None and again.rebuilt.locations == ("studio",)
    assert parsed == []


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "store.duckdb"
    store = DuckDBStore(path)
    apply_site_text(store, SITE, "site.toml", now=WHEN)
    store.close()
    return path


def _registers(db: Path) -> list[float]:
    store = DuckDBStore(db)
    try:
        found = store.readings("home", ["EMH:smlreader1"], 0, 2**40)
        if "EMH:smlreader1" not in found:
            return []
        return found["EMH:smlreader1"].registers["1-0:1.8.0"].value.tolist()
    finally:
        store.close()


def _until(listener: MqttListener, done: object, seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while not done() and time.monotonic() < deadline:  # type: ignore[operator]
        listener.step(0.05)


def test_listener_stores_readings_from_the_broker_in_batches(broker: int, db: Path) -> None:
    listener = MqttListener(
        f"mqtt://127.0.0.1:{broker}",
        ["tele/+/SENSOR"],
        "home",
        db=db,
        client_id="lg-test-batches",
        max_records=3,
        max_seconds=30,
    )
    listener.connect()
    _until(listener, lambda: listener.subscribed, 5)
    _publish(broker, _quarter_hours(datetime(2024, 5, 1, 12, 0), 6, 100.0))
    stats = listener.run(duration=15, should_stop=lambda: listener.stats.archived >= 6)
    assert (stats.received, stats.archived, stats.acknowledged) == (6, 6, 6)
    assert len(stats.batches) == 2
    assert _registers(db) == [100.0, 100.25, 100.5, 100.75, 101.0, 101.25]
    store = DuckDBStore(db)
    try:
        batches = store.batches("home")
        assert [b.format for b in batches] == ["mqtt", "mqtt"]
        lines = store.batch_content(batches[0].batch).decode().splitlines()
        first = json.loads(lines[0])
        assert first["topic"] == TOPIC
        assert first["payload"].encode() == _tasmota(datetime(2024, 5, 1, 12, 0), 100.0)
        # five quarter hours of 0.25 kWh between 12:00 and 13:15 local time
        day = export_profile(store, "home", "house", date(2024, 5, 1), date(2024, 5, 1))
        values = dict(zip(day.end, day.import_kwh.tolist(), strict=True))
        for label in ("12:15", "12:30", "12:45", "13:00", "13:15"):
            assert values[f"2024-05-01 {label}+02:00"] == pytest.approx(0.25, abs=1e-9)
    finally:
        store.close()


def test_listener_killed_mid_batch_loses_nothing_acknowledged(broker: int, db: Path) -> None:
    url = f"mqtt://127.0.0.1:{broker}"
    first = MqttListener(
        url, [TOPIC], "home", db=db, client_id="lg-test-crash", max_records=4, max_seconds=60
    )
    first.connect()
    _until(first, lambda: first.subscribed, 5)
    _publish(broker, _quarter_hours(datetime(2024, 6, 1, 0, 0), 6, 200.0))
    _until(first, lambda: first.stats.received >= 6)
    # one batch of four is stored and acknowledged; two messages wait in the next batch
    assert (first.stats.archived, first.stats.acknowledged, len(first.buffer)) == (4, 4, 2)
    assert first.abort() == 2  # killed: the two are neither stored nor acknowledged
    assert _registers(db) == [200.0, 200.25, 200.5, 200.75]
    # a new process with the same session gets the two again, and what came in the meantime
    _publish(broker, _quarter_hours(datetime(2024, 6, 1, 1, 30), 2, 201.5))
    second = MqttListener(
        url, [TOPIC], "home", db=db, client_id="lg-test-crash", max_records=100, max_seconds=60
    )
    stats = second.run(duration=15, should_stop=lambda: len(second.buffer) >= 4)
    assert stats.received == 4 and stats.archived == 4
    assert _registers(db) == [200.0 + 0.25 * i for i in range(8)]


def test_unreadable_messages_are_rejected_and_acknowledged(
    broker: int, db: Path, tmp_path: Path
) -> None:
    rejects = tmp_path / "rejected"
    listener = MqttListener(
        f"mqtt://127.0.0.1:{broker}",
        ["bad/#"],
        "home",
        db=db,
        client_id="lg-test-rejects",
        max_records=10,
        max_seconds=1,
        reject_dir=rejects,
    )
    listener.connect()
    _until(listener, lambda: listener.subscribed, 5)
    _publish(broker, [("bad/x", b"not json"), ("bad/unknown", _tasmota(datetime(2024, 5, 1), 1))])
    stats = listener.run(duration=10, should_stop=lambda: listener.stats.rejected >= 2)
    assert (stats.rejected, stats.acknowledged, stats.archived) == (2, 2, 0)
    reasons = sorted(p.read_text() for p in rejects.glob("*.txt"))
    assert any("not JSON" in r for r in reasons)
    assert any("no topic level" in r for r in reasons)
    assert _registers(db) == []


def test_cli_listen_mqtt_for_a_bounded_time(broker: int, db: Path) -> None:
    topic = "tele/smlreader1/STATE-retained/SENSOR"
    _publish(broker, [(topic, _tasmota(datetime(2024, 7, 1, 12, 0), 300.0))], retain=True)
    result = CliRunner().invoke(
        app,
        [
            "listen",
            "--site",
            "home",
            "--mqtt",
            f"mqtt://127.0.0.1:{broker}",
            "--topic",
            topic,
            "--duration",
            "2",
            "--interval",
            "0.5",
            "--db",
            str(db),
            "--client-id",
            "lg-test-cli",
        ],
        env={"COLUMNS": "200", "NO_COLOR": "1"},
    )
    assert result.exit_code == 0, result.output
    assert "received 1, archived 1" in result.output
    assert _registers(db) == [300.0]
    _publish(broker, [(topic, b"")], retain=True)  # clear the retained message


def test_listener_process_killed_with_sigkill_loses_nothing_acknowledged(
    broker: int, db: Path
) -> None:
    """The real thing: `lastgang listen` in its own process, killed with SIGKILL while two
    messages wait in its batch."""
    import signal
    import sys

    url = f"mqtt://127.0.0.1:{broker}"
    # the session (client id and subscription) exists at the broker before anything is sent
    session = MqttListener(url, [TOPIC], "home", db=db, client_id="lg-test-sigkill")
    session.connect()
    _until(session, lambda: session.subscribed, 5)
    session.abort()
    _publish(broker, _quarter_hours(datetime(2024, 8, 1, 0, 0), 6, 500.0))
    args = [
        sys.executable,
        "-c",
        "from lastgang.cli import main; main()",
        "listen",
        "--site",
        "home",
        "--mqtt",
        url,
        "--topic",
        TOPIC,
        "--batch",
        "4",
        "--interval",
        "600",
        "--client-id",
        "lg-test-sigkill",
        "--db",
        str(db),
    ]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        assert process.stderr is not None
        lines: list[bytes] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = process.stderr.readline()
            lines.append(line)
            if line.startswith(b"batch ") or not line:
                break
        # the first batch is stored and acknowledged; the other two wait for the next batch
        assert lines[-1].startswith(b"batch 1: 4 record(s)"), lines
        time.sleep(0.5)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    assert _registers(db) == [500.0, 500.25, 500.5, 500.75]
    # the same session again: the two that were not acknowledged come back
    again = MqttListener(url, [TOPIC], "home", db=db, client_id="lg-test-sigkill")
    stats = again.run(duration=15, should_stop=lambda: len(again.buffer) >= 2)
    assert stats.received == 2
    assert _registers(db) == [500.0 + 0.25 * i for i in range(6)]
