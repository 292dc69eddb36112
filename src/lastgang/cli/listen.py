"""``lastgang listen``: archive what meters send, from a serial port or an MQTT broker
(:mod:`lastgang.listen`; ``docs/format-dlms.md``, ``docs/format-mqtt.md``).

Exit codes: 0 stopped normally (Ctrl-C, SIGTERM or ``--duration``), 1 bad input (a wrong key,
a bad option), 2 the store refused (unknown site, locked store at the start).
"""

from __future__ import annotations

import logging
import signal
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from lastgang.cli import app
from lastgang.errors import LastgangError
from lastgang.store import DB_ENV

_err = Console(stderr=True)


def _fail(exc: LastgangError) -> typer.Exit:
    _err.print(f"[bold red]error:[/bold red] {escape(exc.message)}")
    for p in exc.problems:
        where = p.where()
        _err.print(f"  [red]-[/red] {escape(where + ': ' if where else '')}{escape(p.reason)}")
    return typer.Exit(code=exc.exit_code)


@app.command(
    "listen",
    help=(
        "Listen to meters and archive what they send, in batches (every --batch records or "
        "--interval seconds), each stored like an import (raw bytes archived, readings and "
        "profiles in one transaction).\n\n"
        "Serial: the smart meter customer interface, decrypted with --key. "
        "MQTT: gateway payloads (Tasmota SML, generic OBIS JSON, smart-me, Shelly) received "
        "with QoS 1 and acknowledged only after their batch is stored."
    ),
    epilog=(
        "Examples:\n\n[bold]lastgang listen --site home --serial /dev/ttyUSB0 --key "
        "36C66639E48A8CA4D6BC8B282A793BBB[/bold]\n\n"
        "[bold]lastgang listen --site home --mqtt mqtt://localhost:1883 --topic "
        "'tele/+/SENSOR'[/bold]\n\n"
        "Exit codes: 0 stopped, 1 invalid input, 2 store problem."
    ),
)
def listen_command(
    site: Annotated[str, typer.Option("--site", help="The site id.", metavar="ID")],
    serial_port: Annotated[
        str | None,
        typer.Option("--serial", help="Serial port (or pyserial URL).", metavar="PORT"),
    ] = None,
    key: Annotated[
        list[str] | None,
        typer.Option(
            "--key", help="Meter key: HEX, or SYSTEMTITLE=HEX (repeatable).", metavar="KEY"
        ),
    ] = None,
    baud: Annotated[int, typer.Option("--baud", help="Serial speed.")] = 2400,
    parity: Annotated[str, typer.Option("--parity", help="Serial parity: N, E or O.")] = "E",
    mqtt: Annotated[
        str | None,
        typer.Option("--mqtt", help="Broker URL, mqtt://host:port.", metavar="URL"),
    ] = None,
    topic: Annotated[
        list[str] | None,
        typer.Option(
            "--topic", help="Topic pattern (repeatable), e.g. tele/+/SENSOR.", metavar="T"
        ),
    ] = None,
    payload: Annotated[
        str,
        typer.Option(
            "--format", help="Payload form: auto, tasmota, generic, smartme, shelly.", metavar="F"
        ),
    ] = "auto",
    meter: Annotated[
        str | None,
        typer.Option(
            "--meter", help="Meter when neither payload nor topic names one.", metavar="M"
        ),
    ] = None,
    client_id: Annotated[
        str | None,
        typer.Option(
            "--client-id", help="MQTT session name (default lastgang-SITE).", metavar="ID"
        ),
    ] = None,
    batch: Annotated[int, typer.Option("--batch", help="Records per batch.")] = 100,
    interval: Annotated[
        float, typer.Option("--interval", help="Seconds per batch at most.")
    ] = 60.0,
    duration: Annotated[
        float | None, typer.Option("--duration", help="Stop after this many seconds.")
    ] = None,
    reject_dir: Annotated[
        Path | None,
        typer.Option("--reject-dir", help="Keep refused messages here.", metavar="DIR"),
    ] = None,
    db: Annotated[
        Path | None,
        typer.Option(
            "--db",
            help=f"The store file (default: ${DB_ENV}, else ./lastgang.duckdb).",
            metavar="PATH",
        ),
    ] = None,
) -> None:
    from lastgang.ingest.dlms_import import parse_key_specs
    from lastgang.listen import MqttListener, SerialListener

    if (serial_port is None) == (mqtt is None):
        raise typer.BadParameter("give either --serial PORT or --mqtt URL", param_hint="--serial")
    stopping = {"now": False}

    def stop(*_: Any) -> None:
        stopping["now"] = True

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    # one line per stored batch on stderr ("batch 12: 100 record(s), imported")
    progress = logging.StreamHandler(sys.stderr)
    progress.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("lastgang.listen")
    logger.addHandler(progress)
    logger.setLevel(logging.INFO)
    try:
        listener: SerialListener | MqttListener
        if serial_port is not None:
            keys = parse_key_specs(key) if key else None
            listener = SerialListener(
                serial_port,
                site,
                keys,
                db=db,
                baudrate=baud,
                parity=parity,
                max_records=batch,
                max_seconds=interval,
                reject_dir=reject_dir,
            )
        else:
            assert mqtt is not None
            if not topic:
                raise typer.BadParameter("give at least one --topic", param_hint="--topic")
            listener = MqttListener(
                mqtt,
                topic,
                site,
                db=db,
                payload=payload,
                meter=meter,
                client_id=client_id,
                max_records=batch,
                max_seconds=interval,
                reject_dir=reject_dir,
            )
        _err.print(f"listening for site [bold]{escape(site)}[/bold]; Ctrl-C stops")
        stats = listener.run(duration, lambda: stopping["now"])
    except LastgangError as exc:
        raise _fail(exc) from None
    except OSError as exc:
        _err.print(f"[bold red]error:[/bold red] {escape(str(exc))}")
        raise typer.Exit(code=2) from None
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        logger.removeHandler(progress)
    Console().print(
        f"received {stats.received}, archived {stats.archived} in {len(stats.batches)} "
        f"batch(es), acknowledged {stats.acknowledged}, rejected {stats.rejected}"
    )
