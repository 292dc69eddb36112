"""What applying a changed site configuration costs on a stored site, with the rebuild it makes.

    .venv/bin/python bench/site_changes.py STORE [--site ID] [--repeats 1] [--whole]

Each change is applied (``lastgang site apply``'s :func:`~lastgang.services.apply_site_text`)
to a fresh copy of STORE, written beside it (never to ``/tmp``, which may be memory); copying is
not timed. The changes, made from the site's current version:

- *a new location*: one more consumer, with a new metering point ID and meter installed in
  June of the store's first year, and a unit for it (what a new tenant's moving in looks like);
- *other substitutes*: another standard load profile for the middle consumer (not a meter
  change: no rebuild, its location awaits the next one);
- *a meter changed*: the middle consumer's meter gets another accuracy class (a meter fact:
  its location is rebuilt from every file holding its readings);
- with ``--whole``, the whole site rebuilt after the new location (``lastgang rebuild``), as
  every applied change did before only the locations changed were rebuilt.

Prints a table: median seconds and the largest peak memory beyond what the process held.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "src"))

import harness  # noqa: E402

NEW_ID = "bench-new"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("store", type=Path)
    parser.add_argument("--site", default=None)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--whole", action="store_true", help="also the whole rebuild")
    args = parser.parse_args(argv)

    from lastgang.concept.model import BillingUnit, Location, MeteringPoints
    from lastgang.demo.generate import site_to_toml
    from lastgang.services import apply_site_text, rebuild_profiles
    from lastgang.store import open_store

    with open_store(args.store, read_only=True) as store:
        site_id = args.site or store.site_ids()[0]
        current = store.site_version(site_id).site
        batches = store.batch_count(site_id)
    consumers = [loc for loc in current.locations if loc.role == "consumer" and loc.meters]
    if not consumers:
        print(f"site {site_id} has no consumer with a meter to change", file=sys.stderr)
        return 1
    middle = consumers[len(consumers) // 2]
    template = middle.meters[0]
    year = template.installed.year if template.installed else 2025
    meter = template.model_copy(
        update={"serial": "BENCHNEW1", "installed": template.installed.replace(year=year, month=6)}
    )
    new = Location(
        id=NEW_ID,
        name="New tenant",
        role=middle.role,
        upstream=middle.upstream,
        metering_points=MeteringPoints(import_=f"AT0081000801{'9' * 21}"),
        meters=[meter],
    )
    added = current.model_copy(
        update={
            "locations": [*current.locations, new],
            "units": [*current.units, BillingUnit(id=NEW_ID, name="New tenant", meters=[NEW_ID])],
        }
    )

    def replaced(location: Location) -> Any:
        return current.model_copy(
            update={
                "locations": [
                    location if loc.id == location.id else loc for loc in current.locations
                ]
            }
        )

    slp = "G0" if middle.slp != "G0" else "H0"
    substitutes = replaced(middle.model_copy(update={"standard_load_profile": slp}))
    klass = "B" if template.accuracy_class != "B" else "C"
    changed_meter = template.model_copy(update={"accuracy_class": klass})
    meter_changed = replaced(middle.model_copy(update={"meters": [changed_meter]}))
    copy = args.store.with_name(args.store.stem + "-site-changes.duckdb")

    def fresh() -> None:
        for p in (copy, copy.with_name(copy.name + ".wal")):
            p.unlink(missing_ok=True)
        shutil.copyfile(args.store, copy)

    def applying(version: Any, then_whole: bool = False) -> Callable[[], None]:
        text = site_to_toml(version, "site_changes.py")

        def apply() -> None:
            with open_store(copy) as store:
                apply_site_text(store, text, "changed.toml")
                if then_whole:
                    rebuild_profiles(store, site_id)

        return apply

    reads: list[tuple[str, Callable[[], None]]] = [
        ("a new location (rebuilt alone)", applying(added)),
        (f"other substitutes for {middle.id} (no rebuild)", applying(substitutes)),
        (f"{middle.id}'s meter changed (rebuilt alone)", applying(meter_changed)),
    ]
    if args.whole:
        reads.append(("a new location, then the whole site rebuilt", applying(added, True)))
    print(
        f"site {site_id}: {len(current.locations):,} locations, {batches:,} archived batch(es); "
        f"each change applied to a fresh copy of the store"
    )
    try:
        harness.print_reads(reads, args.repeats, lambda k: fresh())
    finally:
        for p in (copy, copy.with_name(copy.name + ".wal")):
            p.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
