"""The benchmark's cases; each runs in a process of its own (``bench/run.py`` starts them).

``python bench/cases.py CASE --size M --workdir DIR [--repeats N] [...]`` runs one case on the
synthetic site of ``M`` metering points whose files ``prepare`` wrote into ``DIR/M`` and prints
its result as one JSON line (:func:`harness.emit`).

Cases:

- ``prepare``: the site configuration and its year of interval values as CSV and Parquet, and
  register readings (not timed);
- ``import-csv`` / ``import-parquet``: import the interval file into a fresh store (archive,
  readings, profiles with their checks), values/s; the last ``import-csv`` store is kept for the
  billing cases;
- ``import-folder``: the monthly files of ``prepare --monthly`` as one import of their folder
  (all checked, then each stored), its time and peak memory; not part of ``bench/run.py``;
- ``registers``: import register readings of every meter (every quarter hour, import and export
  register) and rebuild the load profiles of the year from the stored readings, readings/s;
- ``billing``: store read -> concept -> allocation -> pricing -> invoice data (a
  :class:`~lastgang.billing.invoice.Run`), values/s, with the baselines: ``numpy`` sum over the
  ``M x T`` float64 import matrix and a fused one-pass allocation over it;
- ``invoices``: the run's files without PDF (HTML per invoice, CSV and JSON of all lines, the
  reconciliation, the summary);
- ``pdf``: PDF rendering (Typst) of a sample of invoices, in one thread and as
  ``write_run_files`` does it (a thread per core);
- ``reference``: the naive slot-by-slot reference (:mod:`lastgang.reference`) against the engine's
  allocation and pricing on the same inputs: equal bills, and both speeds.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

# the code of this checkout, whatever is installed (a worktree's cases measure its own code)
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "src"))

import harness  # noqa: E402
import numpy as np  # noqa: E402
import synthetic  # noqa: E402
from harness import Sample, emit, probe, summarise  # noqa: E402

CaseFn = Callable[[argparse.Namespace], dict[str, Any]]


def _dir(args: argparse.Namespace) -> Path:
    path = Path(args.workdir) / str(args.size)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _site_id(args: argparse.Namespace) -> str:
    return f"bench-{args.size}"


def _period(args: argparse.Namespace) -> tuple[date, date]:
    return synthetic.FIRST_DAY, synthetic.FIRST_DAY + timedelta(days=args.days - 1)


def _fresh(path: Path) -> None:
    for p in (path, path.with_name(path.name + ".wal")):
        p.unlink(missing_ok=True)


# --------------------------------------------------------------------------------------------
# prepare


def case_prepare(args: argparse.Namespace) -> dict[str, Any]:
    folder = _dir(args)
    started = time.perf_counter()
    data = synthetic.site_data(args.size, days=args.days)
    (folder / "site.toml").write_text(synthetic.site_toml(data.site), encoding="utf-8")
    if args.monthly:  # one CSV file per month, for sites too large to import in one file
        names = []
        for month, piece in synthetic.month_pieces(data):
            names.append(f"intervals-{month}.csv")
            synthetic.write_interval_csv(piece, folder / names[-1])
        return {
            "metering_points": args.size,
            "slots": data.stop - data.start,
            "values": data.values,
            "files": names,
            "csv_bytes": sum((folder / n).stat().st_size for n in names),
            "seconds": time.perf_counter() - started,
        }
    csv_values = synthetic.write_interval_csv(data, folder / "intervals.csv")
    parquet_values = synthetic.write_interval_parquet(data, folder / "intervals.parquet")
    readings = 0
    if args.size <= args.register_max:
        readings = synthetic.write_register_csv(data, folder / "registers.csv")
    return {
        "metering_points": args.size,
        "slots": data.stop - data.start,
        "values": data.values,
        "csv_values": csv_values,
        "csv_bytes": (folder / "intervals.csv").stat().st_size,
        "parquet_values": parquet_values,
        "parquet_bytes": (folder / "intervals.parquet").stat().st_size,
        "register_readings": readings,
        "register_bytes": (folder / "registers.csv").stat().st_size if readings else 0,
        "seconds": time.perf_counter() - started,
    }


# --------------------------------------------------------------------------------------------
# imports


def _timed_imports(
    args: argparse.Namespace, db: Path, site_text: str, source: Path
) -> tuple[list[Sample], int]:
    """``import_files`` of ``source`` (a file or a folder) into a fresh store ``db``, timed
    per run with its parts (read and check, store and build profiles); the values read."""
    from lastgang.services import apply_site_text, import_files
    from lastgang.store import open_store

    samples: list[Sample] = []
    rows = 0
    for _ in harness.repeats(args.repeats, args.budget):
        _fresh(db)
        store = open_store(db)
        apply_site_text(store, site_text, "site.toml")
        with probe() as p:

            def progress(what: str, done: int, total: int, p: harness.Probe = p) -> None:
                if what.startswith("importing") and done == 0:
                    p.mark("read and check")

            results = import_files(store, _site_id(args), [source], progress=progress)
            p.mark("store and build profiles")
        store.close()
        rows = sum(r.rows for r in results)
        samples.append(p.sample)
    return samples, rows


def _import(args: argparse.Namespace, file_name: str, keep_as: str | None) -> dict[str, Any]:
    folder = _dir(args)
    source = folder / file_name
    text = (folder / "site.toml").read_text(encoding="utf-8")
    db = folder / f"import-{file_name}.duckdb"
    samples, rows = _timed_imports(args, db, text, source)
    if keep_as is not None:
        _fresh(folder / keep_as)
        db.rename(folder / keep_as)
    else:
        _fresh(db)
    out = summarise(samples)
    out.update(values=rows, file_bytes=source.stat().st_size)
    return out


def case_import_csv(args: argparse.Namespace) -> dict[str, Any]:
    return _import(args, "intervals.csv", keep_as="store.duckdb")


def case_import_months(args: argparse.Namespace) -> dict[str, Any]:
    """The monthly files of ``prepare --monthly`` imported one after the other into one store
    (kept as ``store.duckdb`` for the billing): the time and peak memory of each."""
    from lastgang.services import apply_site_text, import_files
    from lastgang.store import open_store

    folder = _dir(args)
    files = sorted(folder.glob("intervals-????-??.csv"))
    if not files:
        return {"skipped": "no monthly files: run prepare with --monthly"}
    db = folder / "store.duckdb"
    _fresh(db)
    store = open_store(db)
    apply_site_text(store, (folder / "site.toml").read_text(encoding="utf-8"), "site.toml")
    months: list[dict[str, Any]] = []
    rows = 0
    started = time.perf_counter()
    for source in files:
        with probe() as p:
            results = import_files(store, _site_id(args), [source])
        rows += sum(r.rows for r in results)
        months.append(
            {
                "file": source.name,
                "seconds": p.sample.seconds,
                "peak_increase_bytes": p.sample.peak_increase,
            }
        )
        print(f"{source.name}: {p.sample.seconds:.1f} s", file=sys.stderr, flush=True)
    store.close()
    return {
        "seconds": time.perf_counter() - started,
        "values": rows,
        "files": months,
        "peak_increase_bytes": max(m["peak_increase_bytes"] for m in months),
        "file_bytes": sum(f.stat().st_size for f in files),
    }


def case_import_folder(args: argparse.Namespace) -> dict[str, Any]:
    """The monthly files of ``prepare --monthly`` imported as one folder into a fresh store, as
    ``lastgang import --site ID FOLDER`` does: every file checked first, then each stored."""
    folder = _dir(args)
    files = sorted(folder.glob("intervals-????-??.csv"))
    if not files:
        return {"skipped": "no monthly files: run prepare with --monthly"}
    months = folder / "months"
    months.mkdir(exist_ok=True)
    for source in files:  # the folder holds the monthly files and nothing else
        if not (months / source.name).exists():
            os.link(source, months / source.name)
    db = folder / "import-folder.duckdb"
    text = (folder / "site.toml").read_text(encoding="utf-8")
    samples, rows = _timed_imports(args, db, text, months)
    _fresh(db)
    out = summarise(samples)
    out.update(values=rows, files=len(files), file_bytes=sum(f.stat().st_size for f in files))
    return out


def case_import_parquet(args: argparse.Namespace) -> dict[str, Any]:
    if args.size > args.parquet_max:
        return {"skipped": f"Parquet import only up to M = {args.parquet_max} (--parquet-max)"}
    return _import(args, "intervals.parquet", keep_as=None)


def case_registers(args: argparse.Namespace) -> dict[str, Any]:
    from lastgang.services import apply_site_text, build_profiles, import_files
    from lastgang.store import open_store

    folder = _dir(args)
    source = folder / "registers.csv"
    if not source.exists():
        if args.size > args.register_max:
            return {"skipped": f"no register readings for M > {args.register_max}"}
        return {"skipped": "no register readings beside monthly files"}
    db = folder / "registers.duckdb"
    _fresh(db)
    store = open_store(db)
    version = apply_site_text(store, (folder / "site.toml").read_text("utf-8"), "site.toml")
    site = version.version.site
    with probe() as p:
        results = import_files(store, _site_id(args), [source])
    imported = p.sample
    readings = sum(r.rows for r in results)
    first, last = _period(args)
    from lastgang.timegrid import period_slots

    start, stop = period_slots(first, last, synthetic.TZ)
    spans = {loc.id: (start * 900, stop * 900) for loc in site.locations}
    samples: list[Sample] = []
    slots = 0
    for _ in harness.repeats(args.repeats, args.budget):
        with probe() as p:
            slots = build_profiles(store, site, spans)
        samples.append(p.sample)
    store.close()
    _fresh(db)
    out = summarise(samples)
    out.update(
        values=readings,
        slots=slots,
        import_seconds=imported.seconds,
        import_peak_increase_bytes=imported.peak_increase,
    )
    return out


# --------------------------------------------------------------------------------------------
# billing


def _open_billing(args: argparse.Namespace) -> tuple[Any, Any]:
    from lastgang.store import open_store

    store = open_store(_dir(args) / "store.duckdb", read_only=True)
    return store, store.site_version(_site_id(args)).site


def _bill_once(store: Any, site: Any, args: argparse.Namespace, p: harness.Probe) -> Any:
    from lastgang.billing.run import compute_period, make_run
    from lastgang.timegrid import period_slots

    first, last = _period(args)
    start, stop = period_slots(first, last, site.site.timezone)
    profiles = store.load_profiles(site.site.id, [loc.id for loc in site.locations], start, stop)
    p.mark("store read")
    result = compute_period(site, profiles, first, last)
    p.mark("concept, allocation, pricing")
    run = make_run(result)
    p.mark("invoice data")
    return run, profiles


def _baselines(matrix: np.ndarray[Any, Any], repeats: int) -> dict[str, float]:
    """One pass over the ``M x T`` float64 matrix: ``numpy`` sum, and a fused allocation
    (available = row 0, consumers = the other rows: share = min(1, A / C), local and grid
    energy per consumer summed over the period)."""
    sums: list[float] = []
    fused: list[float] = []
    for _ in range(max(repeats, 5)):
        t0 = time.perf_counter()
        matrix.sum()
        t1 = time.perf_counter()
        cons = matrix[1:]
        total = cons.sum(axis=0)
        share = np.minimum(
            1.0, np.divide(matrix[0], total, where=total > 0, out=np.zeros_like(total))
        )
        local = cons @ share
        grid = cons.sum(axis=1) - local
        float(local.sum() + grid.sum())
        t2 = time.perf_counter()
        sums.append(t1 - t0)
        fused.append(t2 - t1)
    return {"numpy_sum": harness.median(sums), "fused_allocation": harness.median(fused)}


def case_billing(args: argparse.Namespace) -> dict[str, Any]:
    store, site = _open_billing(args)
    samples: list[Sample] = []
    invoices = 0
    profiles: Any = None
    run: Any = None
    for _ in harness.repeats(args.repeats, args.budget):
        profiles = run = None  # the previous run's arrays are not part of this run's memory
        with probe() as p:
            run, profiles = _bill_once(store, site, args, p)
        invoices = len(run.invoices)
        samples.append(p.sample)
    ids = [loc.id for loc in site.locations]
    matrix = np.vstack([np.nan_to_num(profiles[i].import_kwh) for i in ids])
    # the profile columns the engine reads, in the types it reads them: import and export
    # (float64), batch (int32 where the numbers fit), meter (int16), quality (int8); the
    # export of a consumer is counted although its zeros take no memory (never written)
    columns = ("import_kwh", "export_kwh", "batch", "meter", "quality")
    profile_bytes = sum(getattr(profiles[i], c).nbytes for i in ids for c in columns)
    profiles = None
    slots = matrix.shape[1]
    out = summarise(samples)
    out.update(
        values=len(ids) * slots,
        metering_points=len(ids),
        slots=slots,
        invoices=invoices,
        baseline=_baselines(matrix, args.repeats),
        floors=_floors(store, site, args, run),
        float64_bytes=int(matrix.nbytes),
        profile_bytes=int(profile_bytes),
    )
    store.close()
    return out


def _floors(store: Any, site: Any, args: argparse.Namespace, run: Any) -> dict[str, float]:
    """What parts of the billing cost at the least, whatever the engine does with them:

    - *store column*: DuckDB's scan of the period's import values alone (one column, no
      metering point or slot to place them with) into a numpy array;
    - *records*: making the run's invoices, lines, month rows, meter entries, quality and VAT
      records again from their finished values (nothing computed, no Decimal arithmetic),
      with the fastest constructor the engine has (:func:`lastgang.records.record`).
    """
    from dataclasses import fields

    from lastgang.records import record
    from lastgang.timegrid import period_slots

    first, last = _period(args)
    start, stop = period_slots(first, last, site.site.timezone)
    # the site's rows by the numbers of its pairs of location and meter (one range, as the
    # engine's read finds them; the benchmark's store holds one site, so no other site's
    # numbers lie between)
    ((first_pair, last_pair),) = store.connection.execute(
        "SELECT min(pair), max(pair) FROM profile_pairs WHERE site_id = ?", [site.site.id]
    ).fetchall()
    sql = (
        "SELECT import_kwh FROM profile_values "
        "WHERE slot >= $start AND slot < $stop AND pair BETWEEN $first AND $last"
    )
    params = {"start": start, "stop": stop, "first": first_pair, "last": last_pair}
    scans: list[float] = []
    for _ in range(max(args.repeats, 3)):
        t0 = time.perf_counter()
        store.connection.sql(sql, params=params).fetchnumpy()
        scans.append(time.perf_counter() - t0)

    def values(obj: Any) -> dict[str, Any]:
        return {f.name: getattr(obj, f.name) for f in fields(obj)}

    invoices = []
    for inv in run.invoices:
        parts = [
            (type(x), values(x))
            for x in (*inv.lines, *inv.months, *inv.meters, *inv.vat, inv.quality)
        ]
        invoices.append((type(inv), values(inv), parts))
    builds: list[float] = []
    count = sum(1 + len(parts) for _, _, parts in invoices)
    for _ in range(max(args.repeats, 3)):
        t0 = time.perf_counter()
        for cls, fields_of, parts in invoices:
            for part_cls, part_values in parts:
                record(part_cls, **part_values)
            record(cls, **fields_of)
        builds.append(time.perf_counter() - t0)
    return {
        "store_column": harness.median(scans),
        "records": harness.median(builds),
        "record_count": count,
    }


def _run_for(args: argparse.Namespace) -> Any:
    store, site = _open_billing(args)
    with probe() as p:
        run, _ = _bill_once(store, site, args, p)
    store.close()
    return run


def case_invoices(args: argparse.Namespace) -> dict[str, Any]:
    from lastgang.report.invoice import write_run_files

    run = _run_for(args)
    folder = _dir(args) / "invoices"
    samples: list[Sample] = []
    files = 0
    for _ in harness.repeats(args.repeats, args.budget):
        shutil.rmtree(folder, ignore_errors=True)
        with probe() as p:
            written = write_run_files(run, folder, pdf=False)
        files = len(written)
        samples.append(p.sample)
    shutil.rmtree(folder, ignore_errors=True)
    out = summarise(samples)
    out.update(invoices=len(run.invoices), files=files)
    return out


def case_pdf(args: argparse.Namespace) -> dict[str, Any]:
    from lastgang.report.invoice import invoice_context, render_pdf, render_pdfs

    run = _run_for(args)
    n = len(run.invoices)
    count = min(n, args.pdf_sample)
    picks = sorted({round(k * (n - 1) / max(count - 1, 1)) for k in range(count)})
    invoices = [run.invoices[k] for k in picks]
    contexts = [invoice_context(invoice, run) for invoice in invoices]
    # the first PDF of a process imports Typst, finds and loads the fonts, parses the template
    with probe() as p:
        render_pdf(contexts[0])
    first = p.sample
    with probe() as p:
        sizes = [len(render_pdf(context)) for context in contexts]
    serial = p.sample
    # as write_run_files prints them: the contexts made while a thread per core prints
    workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 2
    with probe() as p:
        produced = list(
            render_pdfs((invoice_context(i, run) for i in invoices), count=len(invoices))
        )
    threads = p.sample
    return {
        "invoices": n,
        "sample": len(contexts),
        "workers": workers,
        "first_seconds": first.seconds,
        "seconds": serial.seconds,
        "per_invoice": serial.seconds / len(contexts),
        "parallel_seconds": threads.seconds,
        "parallel_per_invoice": threads.seconds / len(contexts),
        "pdf_bytes": int(np.mean(sizes)),
        "pdfs_ok": all(pdf[:5] == b"%PDF-" for pdf in produced),
        "peak_increase_bytes": serial.peak_increase,
    }


# --------------------------------------------------------------------------------------------
# the reference


def _compare(fast: list[Any], reference: list[Any]) -> list[str]:
    """Differences between the engine's bills and the reference's (empty: equal)."""
    out: list[str] = []
    if len(fast) != len(reference):
        return [f"{len(fast)} bills against {len(reference)}"]
    for f, r in zip(fast, reference, strict=True):
        head_f = (f.unit, f.customer, f.first_day, f.last_day, f.vacancy)
        head_r = (r.unit, r.customer, r.first_day, r.last_day, r.vacancy)
        if head_f != head_r:
            out.append(f"bill {head_f} against {head_r}")
            continue
        lines_f = [
            (x.kind.value, x.item, x.first_day, x.last_day, x.quantity, x.amount, x.vat_rate)
            for x in f.lines
        ]
        lines_r = [
            (x.kind, x.item, x.first_day, x.last_day, x.quantity, x.amount, x.vat_rate)
            for x in r.lines
        ]
        if lines_f != lines_r:
            out.append(f"lines of {f.unit} ({f.first_day}): {lines_f} against {lines_r}")
        if {v.rate: v.vat for v in f.vat} != r.vat or f.total != r.total:
            out.append(f"VAT or total of {f.unit} ({f.first_day}): {f.total} against {r.total}")
        for x, y in ((f.consumption_kwh, r.consumption_kwh), (f.local_kwh, r.local_kwh)):
            if abs(x - y) > 1e-9 * max(1.0, abs(y)):
                out.append(f"energy of {f.unit} ({f.first_day}): {x} against {y}")
    return out


def case_reference(args: argparse.Namespace) -> dict[str, Any]:
    from lastgang.allocation import allocate_site
    from lastgang.billing.run import compute_period
    from lastgang.pricing import price_site
    from lastgang.reference import reference_bills
    from lastgang.timegrid import period_slots

    store, site = _open_billing(args)
    first = synthetic.FIRST_DAY
    last = first + timedelta(days=min(args.days, args.reference_days) - 1)
    start, stop = period_slots(first, last, site.site.timezone)
    profiles = store.load_profiles(site.site.id, [loc.id for loc in site.locations], start, stop)
    store.close()
    result = compute_period(site, profiles, first, last)
    a = result.allocation
    consumption = {u: a.consumption[i] for i, u in enumerate(a.consumers)}
    production = {s: a.production[k] for k, s in enumerate(a.sources)}
    balance = result.concept.export_kwh[result.concept.index("hak")]
    engine: list[float] = []
    for _ in range(max(args.repeats, 3)):
        t0 = time.perf_counter()
        fast_allocation = allocate_site(
            site, consumption, production, balance_export=balance, start=start
        )
        fast = price_site(site, fast_allocation, first, last)
        engine.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    reference = reference_bills(
        site,
        {u: v.tolist() for u, v in consumption.items()},
        {s: v.tolist() for s, v in production.items()},
        first,
        last,
        balance_export=balance.tolist(),
    )
    reference_seconds = time.perf_counter() - t0
    differences = _compare(fast, reference)
    values = len(site.locations) * (stop - start)
    return {
        "values": values,
        "slots": stop - start,
        "days": (last - first).days + 1,
        "bills": len(fast),
        "equal": not differences,
        "differences": differences[:10],
        "reference_seconds": reference_seconds,
        "engine_seconds": harness.median(engine),
        "seconds": reference_seconds,
    }


CASES: dict[str, CaseFn] = {
    "prepare": case_prepare,
    "import-csv": case_import_csv,
    "import-months": case_import_months,
    "import-folder": case_import_folder,
    "import-parquet": case_import_parquet,
    "registers": case_registers,
    "billing": case_billing,
    "invoices": case_invoices,
    "pdf": case_pdf,
    "reference": case_reference,
}


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("case", choices=sorted(CASES))
    parser.add_argument("--size", type=int, required=True, help="metering points")
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--days", type=int, default=365, help="days of data from 1 January")
    parser.add_argument("--register-max", type=int, default=100)
    parser.add_argument("--parquet-max", type=int, default=1000)
    parser.add_argument("--budget", type=float, default=90.0, help="seconds before no new run")
    parser.add_argument("--pdf-sample", type=int, default=120)
    parser.add_argument("--reference-days", type=int, default=365)
    parser.add_argument(
        "--monthly", action="store_true", help="prepare: one interval CSV file per month"
    )
    return parser.parse_args(argv)


def main(argv: list[str]) -> None:
    args = parse_args(argv)
    result = CASES[args.case](args)
    result.update(case=args.case, size=args.size)
    emit(result)


if __name__ == "__main__":
    main(sys.argv[1:])
