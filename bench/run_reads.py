"""What the web app and the API read of a stored billing run, timed with its peak memory.

    .venv/bin/python bench/run_reads.py STORE [--run N] [--repeats 3]

Opens the store read-only and, for the run (default: the newest), reads what each page needs,
as the routes read it (:mod:`lastgang.api.routes_billing`): the run with every invoice (as the
API gives it by default), the run's web page (its first and last page of invoices, a search for
a customer; with the reconciliation and quality issues), one invoice (the first, one from the
middle, the last), the reconciliation, a unit's invoices over every run of the site, and the
site's data quality page over the run's days (a page of metering points, and those with a
problem, and their next page). Each read starts with the API's cache of parsed runs empty, as
a run too large for that cache always does (the site's parsed configuration is kept, as the
web app keeps it); the points with a problem are found again for each read but the next
page, which takes them from the one before (kept by the site's change stamp, as the web app
keeps them).
Prints a table: median seconds and the largest peak memory beyond what the process held
before.

A run stored with its invoice entries is read invoice by invoice; a run stored before them (or
``--whole``) from its whole run JSON, as the routes read such runs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "src"))

import harness  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("store", type=Path)
    parser.add_argument("--run", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--whole", action="store_true", help="read as for a run stored before invoice entries"
    )
    args = parser.parse_args(argv)

    from lastgang.api import routes_billing as routes
    from lastgang.api import routes_web, views
    from lastgang.api.accounts import Role
    from lastgang.api.auth import Principal
    from lastgang.api.views import quality_heat_map
    from lastgang.store import open_store
    from lastgang.store.runs import RunStore

    if args.whole:
        RunStore._split = lambda self, run, column="count(*)": None  # type: ignore[method-assign]
        RunStore.unit_invoices = lambda self, site_id, unit_id: {}  # type: ignore[method-assign]
    store = open_store(args.store, read_only=True)
    runs = RunStore(store)
    record = runs.get(args.run) if args.run is not None else runs.runs()[-1]
    site = record.site_id
    kept = runs.keeps_invoices(record.run)
    summaries = routes._summaries(store, record)
    numbers = [s.number for s in summaries]
    unit = summaries[len(summaries) // 2].unit_id
    admin = Principal(name="bench", kind="session", role=Role.ADMIN)
    size = routes._RUN_PAGE_INVOICES
    last = (len(numbers) - 1) // size * size
    customer = summaries[len(summaries) // 2].customer
    reads: list[tuple[str, Callable[[], Any]]] = [
        ("the run with every invoice (API)", lambda: routes._detail(store, record)),
        (f"run page: first {size} invoices", lambda: routes._detail(store, record, 0, size)),
        (
            f"run page: last invoices (from {last + 1})",
            lambda: routes._detail(store, record, last, size),
        ),
        (
            "run page: a search (a customer)",
            lambda: routes._detail(store, record, 0, size, customer),
        ),
        ("reconciliation", lambda: routes._run_head(store, record)["reconciliation"]),
    ]
    for where, k in (("first", 0), ("middle", len(numbers) // 2), ("last", len(numbers) - 1)):
        number = numbers[k]
        reads.append(
            (f"one invoice ({where})", lambda n=number: routes._found_invoice(store, site, n))
        )
    reads.append(
        (
            f"a unit's invoices ({len(runs.runs(site))} runs)",
            lambda: routes.unit_view(store, site, unit, admin),
        )
    )
    # the site's first page over the run's days: a page of the heat map, and the filter that
    # reads every metering point to find those with a problem
    config = store.site_version(site).site
    rows = routes_web.HEAT_PAGE_ROWS
    days = (record.first_day, record.last_day)
    reads += [
        (
            f"data quality page: {rows} metering points",
            lambda: quality_heat_map(store, config, *days, limit=rows),
        ),
        (
            "data quality page: those with a problem",
            lambda: quality_heat_map(store, config, *days, limit=rows, problems_only=True),
        ),
        (
            "data quality page: those with a problem, next page",
            lambda: quality_heat_map(
                store, config, *days, offset=rows, limit=rows, problems_only=True
            ),
        ),
    ]
    # what a read takes from the one before it (kept by the site's change stamp)
    following = {"data quality page: those with a problem, next page"}
    print(
        f"run {record.run} of {site}: {record.invoices:,} invoices; "
        f"{'read invoice by invoice' if kept else 'read from its whole run JSON'}"
    )

    def before(k: int) -> None:
        routes._JSON_CACHE.clear()  # empty, as for a run too large to keep
        if reads[k][0] in following:
            reads[k - 1][1]()
        else:
            views._CELLS.clear()

    harness.print_reads(reads, args.repeats, before)
    store.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
