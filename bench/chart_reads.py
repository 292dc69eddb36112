"""What the web app's charts cost, timed with their peak memory.

    .venv/bin/python bench/chart_reads.py STORE [--site ID] [--date 2025-06-15] [--repeats 3]

Opens the store read-only and, for the site (default: the first) and the views holding the
day (day, week, month, year), asks for each chart as the routes do
(:mod:`lastgang.api.charts_data`, with the site's change stamp): the monitoring chart made and
taken again, a unit's chart made (the split of every unit at once) and taken again, and
another unit's chart of the same view. Every *made* read starts with the charts kept
emptied; the *again* reads follow it. The last day with data (the default day of a chart and
the first day of the data quality page) is timed the same way. Prints a table: median seconds
and the largest peak memory beyond what the process held before.

A store written before change stamps, opened read only, has none: nothing is kept, and the
*again* reads cost what the *made* ones do (open the store once for writing to stamp it).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "src"))

import harness  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("store", type=Path)
    parser.add_argument("--site", default=None)
    parser.add_argument("--date", type=date.fromisoformat, default=date(2025, 6, 15))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    from lastgang.allocation import consumer_units
    from lastgang.api import charts_data, views
    from lastgang.store import open_store

    store = open_store(args.store, read_only=True)
    site_id = args.site or store.site_ids()[0]
    stamp = store.change_stamp(site_id)
    site = store.site_version(site_id).site
    units = consumer_units(site)
    if not units:
        print(f"site {site_id} has no consuming unit: nothing to chart", file=sys.stderr)
        return 1
    one, other = units[0], units[len(units) // 2]

    def emptied() -> None:
        charts_data._KEPT.clear()
        views._LAST_SLOT.clear()

    day = args.date
    # (name, read, empty the kept charts first)
    reads: list[tuple[str, Callable[[], Any], bool]] = []
    for view in ("day", "week", "month", "year"):
        reads += [
            (
                f"{view}: monitoring, made",
                lambda v=view: charts_data.monitoring_chart(store, site, v, day, stamp=stamp),
                True,
            ),
            (
                f"{view}: monitoring, again",
                lambda v=view: charts_data.monitoring_chart(store, site, v, day, stamp=stamp),
                False,
            ),
            (
                f"{view}: a unit, made",
                lambda v=view: charts_data.unit_chart(store, site, one, v, day, stamp=stamp),
                True,
            ),
            (
                f"{view}: a unit, again",
                lambda v=view: charts_data.unit_chart(store, site, one, v, day, stamp=stamp),
                False,
            ),
            (
                f"{view}: another unit",
                lambda v=view: charts_data.unit_chart(store, site, other, v, day, stamp=stamp),
                False,
            ),
        ]
    reads += [
        ("the last day with data, found", lambda: views.default_days(store, site, 1), True),
        ("the last day with data, again", lambda: views.default_days(store, site, 1), False),
    ]
    print(
        f"site {site_id}: {len(site.locations):,} locations, {len(units):,} consuming units; "
        f"views of {day}; {'change stamp ' + stamp[:8] if stamp else 'no change stamp'}"
    )

    def before(k: int) -> None:
        if reads[k][2]:
            emptied()
        else:  # the read it follows, so that there is something to take
            reads[k - 1][1]()

    harness.print_reads([(name, read) for name, read, _ in reads], args.repeats, before)
    store.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
