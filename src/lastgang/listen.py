"""The edge: listen to meters and archive what they send (``lastgang listen``).

Two sources, one rule: **store first, then acknowledge**.

- :class:`SerialListener` reads the smart meter customer interface (Kundenschnittstelle) from
  a serial port (pyserial), decodes the telegrams as they arrive (:class:`StreamCapture`, the
  streaming decoder of :mod:`lastgang.ingest.dlms`) and archives the raw bytes of whole
  telegrams as a ``dlms`` batch every ``max_records`` telegrams or ``max_seconds`` seconds.
- :class:`MqttListener` subscribes to topics with QoS 1 (paho-mqtt, persistent session,
  manual acknowledgement), checks each payload (:mod:`lastgang.ingest.mqtt`) and archives the
  messages as an ``mqtt`` capture batch every ``max_records`` messages or ``max_seconds``
  seconds. A message is acknowledged (PUBACK) only after the batch that holds it is committed
  to the store.

Each batch goes through :func:`lastgang.services.import_bytes`, so it is archived byte for byte
(TOR-7.1) in the same transaction that stores its readings and rebuilds the profiles. The store
is opened for each batch and closed again, so other lastgang commands can use it in between.

Guarantees (``docs/format-mqtt.md`` states them for users):

- A message the broker has seen acknowledged is in the store: the acknowledgement is sent after
  the commit. A crash before the commit loses nothing: the broker still holds the message
  (persistent session, QoS 1) and delivers it again when the listener reconnects with the same
  client id. A crash between commit and acknowledgement makes the broker deliver the message
  again; it is archived once more in a later batch, and its readings (same meter, time and
  values) change no profile value. At least once, with the effect of exactly once.
- Serial bytes have no acknowledgement: what was read since the last batch (at most
  ``max_records`` telegrams or ``max_seconds`` seconds) is lost when the process dies.
- A message that cannot be read (not JSON, unknown meter) is written to the reject folder and
  acknowledged, so the broker does not deliver it forever; so is a batch the store refuses
  (e.g. a register running backwards). A locked store keeps the batch in memory, unacknowledged,
  and tries again at the next flush.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

from lastgang.errors import InvalidInput, MeterDataError, StoreError
from lastgang.ingest.csv_readings import SiteIndex
from lastgang.ingest.dispatch import ImportOptions
from lastgang.ingest.dlms import KeySpec, StreamDecoder
from lastgang.ingest.mqtt import Message, encode_message, parse_payload, resolve_reading
from lastgang.services import FileResult, import_bytes
from lastgang.store import open_store

__all__ = [
    "Archiver",
    "BatchBuffer",
    "ListenStats",
    "MqttListener",
    "SerialListener",
    "StreamCapture",
    "parse_mqtt_url",
]

log = logging.getLogger("lastgang.listen")


# ---------------------------------------------------------------------------------------------
# batches


@dataclass
class ListenStats:
    """What a listener did: records received, archived (in committed batches), acknowledged,
    rejected, and the import results of its batches."""

    received: int = 0
    archived: int = 0
    acknowledged: int = 0
    rejected: int = 0
    batches: list[FileResult] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class BatchBuffer:
    """Records waiting to be archived, each with its acknowledgement. Due when it holds
    ``max_records`` records or its oldest record is ``max_seconds`` old."""

    def __init__(
        self,
        max_records: int,
        max_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_records < 1 or max_seconds <= 0:
            raise InvalidInput("a batch needs at least 1 record and more than 0 seconds")
        self.max_records = max_records
        self.max_seconds = max_seconds
        self._clock = clock
        self.records: list[bytes] = []
        self.count = 0
        self.acks: list[Callable[[], None]] = []
        self.first: datetime | None = None
        self._since: float | None = None

    def add(self, record: bytes, ack: Callable[[], None] | None = None, count: int = 1) -> None:
        """Add a record (``count``: how many messages or telegrams it holds)."""
        if not self.records:
            self._since = self._clock()
            self.first = datetime.now(UTC)
        self.records.append(record)
        self.count += count
        if ack is not None:
            self.acks.append(ack)

    def due(self) -> bool:
        if not self.records:
            return False
        assert self._since is not None
        return self.count >= self.max_records or self._clock() - self._since >= self.max_seconds

    def take(self) -> tuple[bytes, list[Callable[[], None]], int]:
        """The batch's bytes, its acknowledgements and record count; the buffer is empty after."""
        content = b"".join(self.records)
        acks, count = self.acks, self.count
        self.records, self.acks, self.first, self._since = [], [], None, None
        self.count = 0
        return content, acks, count

    def __len__(self) -> int:
        return self.count


class Archiver:
    """Stores one batch: opens the store, imports the bytes (archive, readings, profiles in one
    transaction), closes the store. A batch the store refuses goes to ``reject_dir``."""

    def __init__(
        self,
        db: str | Path | None,
        site_id: str,
        format: str,
        options: ImportOptions,
        reject_dir: str | Path | None = None,
    ) -> None:
        self.db = db
        self.site_id = site_id
        self.format = format
        self.options = options
        self.reject_dir = Path(reject_dir) if reject_dir is not None else None

    def site_index(self, wait: float = 10.0) -> SiteIndex:
        """The site's facts; waits up to ``wait`` seconds for a store another process holds."""
        deadline = time.monotonic() + wait
        while True:
            try:
                store = open_store(self.db, notice=log.warning)
                break
            except StoreError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.2)
        try:
            return SiteIndex(store.site_version(self.site_id).site)
        finally:
            store.close()

    def store(self, content: bytes, source: str) -> FileResult:
        store = open_store(self.db, notice=log.warning)
        try:
            return import_bytes(
                store, self.site_id, content, source, format=self.format, options=self.options
            )
        finally:
            store.close()

    def reject(self, content: bytes, source: str, reason: str) -> Path | None:
        """Keep refused bytes with the reason next to them (when a reject folder is set)."""
        log.warning("rejected %s: %s", source, reason)
        if self.reject_dir is None:
            return None
        self.reject_dir.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        path = self.reject_dir / f"{stamp}.{self.format}"
        path.write_bytes(content)
        path.with_suffix(path.suffix + ".txt").write_text(f"{source}\n{reason}\n", "utf-8")
        return path


def _flush(
    buffer: BatchBuffer, archiver: Archiver, source: str, stats: ListenStats
) -> FileResult | None:
    """Archive the buffer, then acknowledge its records. A locked store leaves the buffer as
    it is (tried again later); a refused batch is rejected and acknowledged."""
    if not buffer.records:
        return None
    first = buffer.first or datetime.now(UTC)
    name = f"{source} {first.isoformat()}"
    content = b"".join(buffer.records)
    try:
        result = archiver.store(content, name)
    except StoreError as exc:
        log.warning("store not available, batch kept for the next try: %s", exc.message)
        stats.errors.append(str(exc))
        return None
    except (InvalidInput, MeterDataError) as exc:
        _, acks, count = buffer.take()
        archiver.reject(content, name, str(exc))
        stats.rejected += count
        stats.errors.append(str(exc))
        for ack in acks:
            ack()
        stats.acknowledged += len(acks)
        return None
    _, acks, count = buffer.take()
    stats.archived += count
    stats.batches.append(result)
    for ack in acks:
        ack()
    stats.acknowledged += len(acks)
    log.info("batch %s: %d record(s), %s", result.batch, count, result.status)
    return result


# ---------------------------------------------------------------------------------------------
# serial: smart meter telegrams


class StreamCapture:
    """Bytes of a telegram stream as they arrive, cut into batches at telegram boundaries.

    :meth:`feed` decodes each chunk with one :class:`~lastgang.ingest.dlms.StreamDecoder`
    (frames and segments kept between chunks); :meth:`take` returns the bytes up to the end of
    the last complete telegram and keeps the rest (a frame or APDU still arriving) for the next
    batch. Cutting the stream anywhere gives the same telegrams, and the batches joined give
    back the stream byte for byte."""

    def __init__(self, keys: KeySpec | None) -> None:
        self._decoder = StreamDecoder(keys)
        self._pending = bytearray()
        self.telegrams = 0

    def feed(self, chunk: bytes) -> int:
        """Add a chunk; returns the telegrams it completed. A wrong key raises
        :class:`~lastgang.ingest.dlms.DecryptionError`."""
        self._pending += chunk
        done = len(self._decoder.feed(chunk))
        self.telegrams += done
        return done

    def take(self) -> bytes:
        """The bytes of the complete telegrams received so far (empty when there are none)."""
        if not self.telegrams:
            return b""
        rest = self._decoder.remainder
        if rest and not self._pending.endswith(rest):
            return b""  # the incomplete part is not one piece at the end: wait for it
        cut = len(self._pending) - len(rest)
        if rest[:1] == b"\x7e" and (cut == 0 or self._pending[cut - 1] != 0x7E):
            # an HDLC flag that closes the last frame and may open the next one (frames may
            # share a flag): cut only after a separate opening flag has arrived
            return b""
        data = bytes(self._pending[:cut])
        del self._pending[:cut]
        self.telegrams = 0
        return data

    @property
    def pending(self) -> bytes:
        """Bytes received after the last complete telegram."""
        return bytes(self._pending)

    def take_rest(self) -> bytes:
        """The pending bytes, given up (at the end of a capture)."""
        rest = bytes(self._pending)
        self._pending.clear()
        return rest


class _Port(Protocol):
    def read(self, size: int = 1) -> bytes: ...

    def close(self) -> None: ...


class SerialListener:
    """Reads a serial port (or any object with ``read(size)``), archives ``dlms`` batches."""

    def __init__(
        self,
        port: str | _Port,
        site_id: str,
        keys: KeySpec | None,
        *,
        db: str | Path | None = None,
        baudrate: int = 2400,
        parity: str = "E",
        max_records: int = 60,
        max_seconds: float = 60.0,
        reject_dir: str | Path | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.port = port
        self.name = port if isinstance(port, str) else "serial"
        self.baudrate = baudrate
        self.parity = parity
        self.capture = StreamCapture(keys)
        self.keys = keys
        self.archiver = Archiver(db, site_id, "dlms", ImportOptions(keys=keys), reject_dir)
        self.buffer = BatchBuffer(max_records, max_seconds, clock)
        self.stats = ListenStats()
        self._clock = clock

    def _open(self) -> _Port:
        if not isinstance(self.port, str):
            return self.port
        import serial

        return serial.serial_for_url(
            self.port, baudrate=self.baudrate, parity=self.parity, timeout=0.2
        )

    def run(
        self, duration: float | None = None, should_stop: Callable[[], bool] | None = None
    ) -> ListenStats:
        """Read until ``duration`` seconds passed or ``should_stop()``; archives the last whole
        telegrams before returning. A wrong key stops with
        :class:`~lastgang.ingest.dlms.DecryptionError` (the store is unchanged by it)."""
        self.archiver.site_index()  # an unknown site stops here, before reading
        port = self._open()
        end = None if duration is None else self._clock() + duration
        try:
            while not (should_stop is not None and should_stop()):
                if end is not None and self._clock() >= end:
                    break
                chunk = port.read(4096)
                if chunk:
                    self.stats.received += self.capture.feed(chunk)
                    count = self.capture.telegrams
                    whole = self.capture.take() if count else b""
                    if whole:
                        self.buffer.add(whole, count=count)
                if self.buffer.due():
                    _flush(self.buffer, self.archiver, f"serial:{self.name}", self.stats)
        finally:
            if isinstance(self.port, str):
                port.close()
        # the last whole telegrams, with the bytes after them (a closing flag, a frame cut off
        # by the stop): archived with the last batch, so the archive holds every byte read
        count = self.capture.telegrams
        rest = self.capture.take() + self.capture.take_rest()
        if count or len(self.buffer):
            self.buffer.add(rest, count=count)
        _flush(self.buffer, self.archiver, f"serial:{self.name}", self.stats)
        return self.stats


# ---------------------------------------------------------------------------------------------
# MQTT


def parse_mqtt_url(url: str) -> tuple[str, int]:
    """``mqtt://host:port`` (port 1883 by default) -> (host, port)."""
    parsed = urlparse(url if "://" in url else f"mqtt://{url}")
    if parsed.scheme not in ("mqtt", "tcp") or not parsed.hostname:
        raise InvalidInput(
            f"bad MQTT URL {url!r}: write mqtt://host:port",
            [],
        )
    return parsed.hostname, parsed.port or 1883


class MqttListener:
    """Subscribes to ``topics`` with QoS 1 and archives ``mqtt`` capture batches; see the module
    docs for the acknowledgement guarantee. ``client_id`` names the persistent session: use the
    same one after a restart to receive what was not acknowledged."""

    def __init__(
        self,
        url: str,
        topics: Sequence[str],
        site_id: str,
        *,
        db: str | Path | None = None,
        payload: str = "auto",
        meter: str | None = None,
        client_id: str | None = None,
        max_records: int = 100,
        max_seconds: float = 60.0,
        reject_dir: str | Path | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.host, self.port = parse_mqtt_url(url)
        self.url = f"mqtt://{self.host}:{self.port}"
        self.topics = list(topics)
        self.site_id = site_id
        self.client_id = client_id or f"lastgang-{site_id}"
        options: dict[str, Any] = {"payload": payload}
        if meter:
            options["meter"] = meter
        self.options = options
        self.archiver = Archiver(db, site_id, "mqtt", ImportOptions(mapping=options), reject_dir)
        self.buffer = BatchBuffer(max_records, max_seconds, clock)
        self.stats = ListenStats()
        self._clock = clock
        self._index: SiteIndex | None = None
        self._client: Any = None
        self.connected = False
        #: the broker confirmed the subscriptions (messages published from now on arrive)
        self.subscribed = False

    # -- paho callbacks --------------------------------------------------------------------

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if getattr(reason, "is_failure", False):
            log.error("MQTT connection refused: %s", reason)
            return
        self.connected = True
        client.subscribe([(topic, 1) for topic in self.topics])

    def _on_subscribe(self, *args: Any) -> None:
        self.subscribed = True

    def _on_disconnect(self, *args: Any) -> None:
        self.connected = False
        self.subscribed = False

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        self.stats.received += 1
        message = Message(str(msg.topic), bytes(msg.payload), datetime.now(UTC))
        mid, qos = int(msg.mid), int(msg.qos)

        def ack() -> None:
            if qos > 0:
                client.ack(mid, qos)

        assert self._index is not None
        reason: str | None = None
        try:
            reading = parse_payload(
                message.payload, message.received, self._index.tz, str(self.options["payload"])
            )
            _, reason = resolve_reading(
                self._index, reading, message.topic, self.options.get("meter")
            )
        except (ValueError, KeyError, TypeError) as exc:
            reason = str(exc)
        if reason is not None:
            self.archiver.reject(encode_message(message), f"{self.url} {message.topic}", reason)
            self.stats.rejected += 1
            ack()
            self.stats.acknowledged += 1
            return
        self.buffer.add(encode_message(message), ack)

    # -- running ---------------------------------------------------------------------------

    def connect(self) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self._index = self.archiver.site_index()
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            clean_session=False,
            manual_ack=True,
        )
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        client.connect(self.host, self.port, keepalive=30)
        self._client = client

    def run(
        self, duration: float | None = None, should_stop: Callable[[], bool] | None = None
    ) -> ListenStats:
        """Receive until ``duration`` seconds passed or ``should_stop()``; archives and
        acknowledges what is buffered before it returns, then disconnects."""
        if self._client is None:
            self.connect()
        end = None if duration is None else self._clock() + duration
        client = self._client
        while not (should_stop is not None and should_stop()):
            if end is not None and self._clock() >= end:
                break
            if client.loop(timeout=0.1) != 0:
                self._reconnect(client)
            if self.buffer.due():
                _flush(self.buffer, self.archiver, self.url, self.stats)
        _flush(self.buffer, self.archiver, self.url, self.stats)
        client.loop(timeout=0.1)  # send the last acknowledgements
        client.disconnect()
        client.loop(timeout=0.1)
        self._client = None
        return self.stats

    def _reconnect(self, client: Any) -> None:
        """The connection was lost: connect again after a pause (the broker kept the session,
        so what was not acknowledged is delivered again)."""
        log.warning("MQTT connection to %s lost; connecting again", self.url)
        time.sleep(1.0)
        try:
            client.reconnect()
        except OSError as exc:
            log.warning("cannot connect to %s: %s", self.url, exc)

    def step(self, timeout: float = 0.1) -> None:
        """One round of the network loop and a flush when the batch is due (for embedding)."""
        if self._client is None:
            self.connect()
        self._client.loop(timeout=timeout)
        if self.buffer.due():
            _flush(self.buffer, self.archiver, self.url, self.stats)

    def abort(self) -> int:
        """Drop the connection at once, as a killed process would: nothing buffered is
        archived or acknowledged. Returns how many records were dropped."""
        dropped = len(self.buffer)
        if self._client is not None:
            sock = self._client.socket()
            if sock is not None:
                sock.close()
            self._client = None
        self.buffer.take()
        return dropped
