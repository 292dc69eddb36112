"""lastgang benchmark: ``make bench`` (``python bench/run.py``).

Generates synthetic sites of M metering points x one year of quarter hours (``bench/synthetic.py``)
and measures, each case in a process of its own, as the median of ``--repeats`` runs with the
peak memory of each run (``bench/harness.py``):

- import of interval CSV and Parquet files into a fresh store (values/s),
- load-profile building from register readings (readings/s),
- billing: store read -> concept -> allocation -> pricing -> invoice data (values/s), beside one
  in-memory pass over the same float64 data,
- invoice files without PDF, and PDF rendering per invoice (one process and a process pool),
- the naive reference implementation on the smallest site: equal bills, and its speed.

Writes ``results.json`` and ``results.md`` into ``--out`` (default: ``bench/``). The default sizes
are 10, 100 and 1,000 metering points (``bench/README.md`` says how long that takes and why
10,000 is not in the default); ``--sizes 10,100,1000,10000`` adds more. From
``--monthly-from`` metering points on (10,000) the year is written and imported as one CSV file
per month.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import harness

HERE = Path(__file__).resolve().parent
CASES = HERE / "cases.py"
DOCS = HERE.parent / "docs" / "performance.md"
#: docs/performance.md shows the results between these two lines (rewritten by each run)
BEGIN, END = "<!-- results: begin -->", "<!-- results: end -->"

#: targets of the billing step, the import and the PDF rendering (issue text, bench/README.md)
TARGETS = {
    "billing_seconds_at_1000": 2.0,
    "billing_over_baseline": 10.0,
    "billing_memory_over_data": 3.0,
    "import_seconds_35m": 60.0,
    "pdf_seconds_per_invoice": 0.2,
}

ORDER = ("import-csv", "import-parquet", "registers", "billing", "invoices", "pdf")


def _sizes(text: str) -> list[int]:
    sizes = sorted({int(part.replace("_", "")) for part in text.split(",") if part.strip()})
    if not sizes or sizes[0] < 3:
        raise argparse.ArgumentTypeError("sizes are metering points, at least 3 each")
    return sizes


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/run.py", description=(__doc__ or "").splitlines()[0]
    )
    parser.add_argument(
        "--sizes", type=_sizes, default=[10, 100, 1000], help="metering points, e.g. 10,100,1000"
    )
    parser.add_argument("--repeats", type=int, default=3, help="runs per case (median)")
    parser.add_argument("--out", type=Path, default=HERE, help="folder for results.md/.json")
    parser.add_argument("--workdir", type=Path, default=None, help="folder for the inputs")
    parser.add_argument("--keep", action="store_true", help="keep the generated inputs")
    parser.add_argument("--days", type=int, default=365, help="days of data (default a year)")
    parser.add_argument(
        "--register-max", type=int, default=100, help="largest M with register readings"
    )
    parser.add_argument(
        "--parquet-max",
        type=int,
        default=1000,
        help="largest M whose Parquet file is imported (M = 1,000: about 70 s and 8 GB)",
    )
    parser.add_argument(
        "--budget",
        type=float,
        default=90.0,
        help="seconds after which a case starts no further run (large sites run once)",
    )
    parser.add_argument("--pdf-sample", type=int, default=120, help="invoices rendered as PDF")
    parser.add_argument(
        "--reference-days", type=int, default=365, help="days the reference implementation bills"
    )
    parser.add_argument("--only", default="", help="comma-separated cases (default: all)")
    parser.add_argument(
        "--docs",
        type=Path,
        default=None,
        help="page whose results section is rewritten (default: docs/performance.md when the "
        "results go to bench/)",
    )
    parser.add_argument(
        "--monthly-from",
        type=int,
        default=10_000,
        help="smallest M whose year is written and imported as one CSV file per month (one "
        "file of M = 10,000 would be 24 GB, held whole while it is imported)",
    )
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds per case")
    return parser.parse_args(argv)


def _log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> dict[str, Any]:
    started = time.perf_counter()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="lastgang-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    only = {c.strip() for c in args.only.split(",") if c.strip()}
    if only & {"billing", "invoices", "pdf", "reference"}:
        only.add("import-csv")  # it builds the store those cases read
    common = [
        "--workdir",
        str(workdir),
        "--days",
        str(args.days),
        "--register-max",
        str(args.register_max),
        "--pdf-sample",
        str(args.pdf_sample),
        "--reference-days",
        str(args.reference_days),
        "--budget",
        str(args.budget),
        "--parquet-max",
        str(args.parquet_max),
    ]
    results: list[dict[str, Any]] = []
    try:
        for size in args.sizes:
            cases = ["prepare", *(c for c in ORDER if not only or c in only)]
            monthly = size >= args.monthly_from
            if monthly:  # monthly files: imported one after the other, no Parquet file
                cases = [
                    "import-months" if c == "import-csv" else c
                    for c in cases
                    if c != "import-parquet"
                ]
            if size == args.sizes[0] and (not only or "reference" in only):
                cases.append("reference")
            for case in cases:
                _log(f"M = {size:>6}: {case} ...")
                once = ("prepare", "pdf", "reference", "import-months")
                repeats = "1" if case in once else str(args.repeats)
                extra = ["--monthly"] if monthly and case == "prepare" else []
                result = harness.run_case(
                    CASES,
                    [case, "--size", str(size), "--repeats", repeats, *common, *extra],
                    timeout=args.timeout,
                )
                result.setdefault("case", case)
                result.setdefault("size", size)
                results.append(result)
                _log(f"             {_brief(result)}")
                if "error" in result and case in ("prepare", "import-csv", "import-months"):
                    _log(f"M = {size}: stopped, the later cases need {case}")
                    break
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(["bench/run.py", *sys.argv[1:]]),
        "machine": harness.machine(),
        "sizes": args.sizes,
        "repeats": args.repeats,
        "days": args.days,
        "targets": TARGETS,
        "total_seconds": time.perf_counter() - started,
        "cases": results,
    }


def _brief(result: dict[str, Any]) -> str:
    if "error" in result:
        return f"error: {result['error']}"
    if "skipped" in result:
        return f"skipped: {result['skipped']}"
    seconds = result.get("seconds", 0.0)
    values = result.get("values")
    rate = f", {values / seconds:,.0f} values/s" if values and seconds else ""
    return f"{seconds:.3f} s{rate}"


def _update_docs(page: Path, results: str) -> None:
    """Put the results (one heading level down) between the markers of ``page``."""
    text = page.read_text(encoding="utf-8")
    if BEGIN not in text or END not in text:
        return
    body = "\n".join(
        "#" + line if line.startswith("#") else line
        for line in results.splitlines()
        if not line.startswith("# ")
    ).strip()
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    page.write_text(f"{head}{BEGIN}\n{body}\n{END}{tail}", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    from report import write_results

    args = parse_args(sys.argv[1:] if argv is None else argv)
    data = run(args)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    write_results(data, args.out / "results.md")
    _log(f"wrote {args.out / 'results.md'} and results.json in {data['total_seconds']:.0f} s")
    docs = args.docs or (DOCS if args.out.resolve() == HERE and DOCS.exists() else None)
    if docs is not None:
        _update_docs(docs, (args.out / "results.md").read_text(encoding="utf-8"))
        _log(f"updated the results in {docs}")
    failed = [r for r in data["cases"] if "error" in r]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
