"""``results.md`` from the results of ``bench/run.py`` (the same numbers as ``results.json``)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["markdown", "write_results"]

MIB = 1024 * 1024


def _n(value: float | int | None, digits: int = 0) -> str:
    if value is None:
        return "–"
    return f"{value:,.{digits}f}"


def _s(value: float | None) -> str:
    if value is None:
        return "–"
    if value < 0.1:
        return f"{value * 1000:.1f} ms"
    return f"{value:.2f} s"


def _mib(value: float | None) -> str:
    return "–" if value is None else f"{value / MIB:,.0f}"


def _rate(values: float | None, seconds: float | None) -> str:
    if not values or not seconds:
        return "–"
    return _n(values / seconds)


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(row) + " |" for row in rows]
    return out


def _cases(data: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [c for c in data["cases"] if c.get("case") == name]


def _ok(result: dict[str, Any]) -> bool:
    return "error" not in result and "skipped" not in result


def _failures(data: dict[str, Any]) -> list[str]:
    out = []
    for c in data["cases"]:
        if "error" in c:
            out.append(f"- {c['case']} at M = {c['size']}: {c['error']}")
        elif "skipped" in c:
            out.append(f"- {c['case']} at M = {c['size']}: skipped ({c['skipped']})")
    return out


def machine_lines(machine: dict[str, Any]) -> list[str]:
    libs = ", ".join(f"{k} {v}" for k, v in machine["libraries"].items())
    return [
        f"- CPU: {machine['cpu']}, {machine['cores']} cores"
        + (
            f" ({machine['cores_usable']} usable)"
            if machine.get("cores_usable") not in (None, machine["cores"])
            else ""
        ),
        f"- memory: {machine['memory_gib']} GiB; {machine['os']}",
        f"- Python {machine['python']}; {libs}",
    ]


def markdown(data: dict[str, Any]) -> str:
    lines = [
        "# Benchmark results",
        "",
        f"Written by `{data['command']}` on {data['created']} in {data['total_seconds']:.0f} s "
        f"(median of {data['repeats']} runs per case, each case in a process of its own; "
        "peak = the most memory a run needed beyond what its process held before it). "
        "How the cases work and what the numbers mean: `bench/README.md`.",
        "",
        "Machine:",
        "",
        *machine_lines(data["machine"]),
        "",
    ]
    lines += _imports(data) + _registers(data) + _billing(data) + _output(data)
    lines += _reference(data) + _targets(data)
    failures = _failures(data)
    if failures:
        lines += ["## Cases that did not run", "", *failures, ""]
    return "\n".join(lines).rstrip() + "\n"


def _imports(data: dict[str, Any]) -> list[str]:
    rows = []
    for name, label in (("import-csv", "CSV"), ("import-parquet", "Parquet")):
        for c in _cases(data, name):
            if not _ok(c):
                continue
            parts = c.get("parts", {})
            rows.append(
                [
                    _n(c["size"]),
                    label,
                    _n(c["values"]),
                    _n(c["file_bytes"] / MIB),
                    _s(c["seconds"]),
                    _rate(c["values"], c["seconds"]),
                    _s(parts.get("read and check")),
                    _s(parts.get("store and build profiles")),
                    _mib(c["peak_increase_bytes"]),
                    _n(c["runs"]),
                ]
            )
    for c in _cases(data, "import-months"):
        if not _ok(c):
            continue
        files = c["files"]
        rows.append(
            [
                _n(c["size"]),
                f"CSV, {len(files)} monthly files",
                _n(c["values"]),
                _n(c["file_bytes"] / MIB),
                _s(c["seconds"]),
                _rate(c["values"], c["seconds"]),
                f"{_s(min(f['seconds'] for f in files))} - "
                f"{_s(max(f['seconds'] for f in files))} per file",
                "",
                _mib(c["peak_increase_bytes"]),
                "1",
            ]
        )
    if not rows:
        return []
    rows.sort(key=lambda r: (r[1].split(",")[0], int(r[0].replace(",", ""))))
    header = [
        "M",
        "file",
        "values",
        "MiB",
        "import",
        "values/s",
        "read + check",
        "store + profiles",
        "peak MiB",
        "runs",
    ]
    return [
        "## Import of interval values",
        "",
        "One file with every metering point's year into a fresh store: raw archive, readings, "
        "load profiles (with their checks), one transaction. CSV: one row per metering point "
        "and quarter hour (import and export); Parquet: a vendor table in the long layout, one "
        "row per metering point ID and quarter hour. *Monthly files*: a site too large for "
        "one file, its months imported one after the other into one store (the time is all "
        "of them; the peak that of the largest month).",
        "",
        *_table(header, rows),
        "",
    ]


def _registers(data: dict[str, Any]) -> list[str]:
    rows = []
    for c in _cases(data, "registers"):
        if not _ok(c):
            continue
        rows.append(
            [
                _n(c["size"]),
                _n(c["values"]),
                _s(c["import_seconds"]),
                _rate(c["values"], c["import_seconds"]),
                _s(c["seconds"]),
                _rate(c["values"], c["seconds"]),
                _mib(c["import_peak_increase_bytes"]),
                _mib(c["peak_increase_bytes"]),
            ]
        )
    if not rows:
        return []
    header = [
        "M",
        "readings",
        "import",
        "readings/s",
        "rebuild",
        "readings/s",
        "import peak MiB",
        "rebuild peak MiB",
    ]
    return [
        "## Load profiles from register readings",
        "",
        "Register readings every quarter hour, import (1.8.0) and export (2.8.0) register of "
        "every meter. *import*: the CSV file into the store, profiles built; *rebuild*: the "
        "profiles of every location rebuilt over the year from the stored readings.",
        "",
        *_table(header, rows),
        "",
    ]


def _billing(data: dict[str, Any]) -> list[str]:
    rows = []
    floor_rows: list[list[str]] = []
    for c in _cases(data, "billing"):
        if not _ok(c):
            continue
        parts = c.get("parts", {})
        base = c["baseline"]
        rows.append(
            [
                _n(c["size"]),
                _n(c["values"]),
                _n(c["invoices"]),
                _s(parts.get("store read")),
                _s(parts.get("concept, allocation, pricing")),
                _s(parts.get("invoice data")),
                _s(c["seconds"]),
                _s(c.get("first_seconds")),
                _rate(c["values"], c["seconds"]),
                _s(base["numpy_sum"]),
                _s(base["fused_allocation"]),
                _n(c["seconds"] / base["fused_allocation"], 1) + "x",
                _mib(c["peak_increase_bytes"]),
                _n(c["peak_increase_bytes"] / c["float64_bytes"], 1) + "x",
                _n(c["peak_increase_bytes"] / c["profile_bytes"], 1) + "x",
            ]
        )
        floors = c.get("floors")
        if floors:
            both = floors["store_column"] + floors["records"]
            floor_rows.append(
                [
                    _n(c["size"]),
                    _s(floors["store_column"]),
                    _n(floors["record_count"]),
                    _s(floors["records"]),
                    _n(both / base["fused_allocation"], 1) + "x",
                    _n(c["seconds"] / both, 1) + "x",
                ]
            )
    if not rows:
        return []
    header = [
        "M",
        "values",
        "invoices",
        "store read",
        "concept + allocation + pricing",
        "invoice data",
        "total",
        "first run",
        "values/s",
        "numpy sum",
        "fused pass",
        "total / fused",
        "peak MiB",
        "peak / float64",
        "peak / profiles",
    ]
    return [
        f"## Billing {_period_text(data)} (store to invoice data, no PDF)",
        "",
        "values = metering points x slots; *total* is the median of the runs in one process, "
        "*first run* the first of them (the process's memory still fresh: on this virtual "
        "machine the first touch of new memory costs about 0.6-1 s per GB). *numpy sum*: "
        "`sum()` over the M x T float64 import matrix; *fused pass*: one allocation pass over "
        "it (share = min(1, A/C), local and grid energy per consumer); both in the same "
        "process. *peak / float64*: peak memory over the M x T float64 matrix (8 bytes per "
        "value); *peak / profiles*: over the profile columns the billing reads, in the types "
        "it reads them (import and export 8 bytes, batch 4, meter 2, quality 1: 23 bytes per "
        "value; a consumer's export is all zeros that are never written and take no memory).",
        "",
        *_table(header, rows),
        "",
        *_floors(floor_rows),
    ]


def _floors(rows: list[list[str]]) -> list[str]:
    if not rows:
        return []
    header = [
        "M",
        "store column",
        "records",
        "making the records",
        "floors / fused pass",
        "total / floors",
    ]
    return [
        "*Floors*: what two parts of the billing cost at the least, whatever the engine does. "
        "*store column*: DuckDB's scan of the period's import values alone (one column, "
        "nothing to place them with) into numpy; *making the records*: the run's invoices, "
        "lines, month rows, meter entries, quality and VAT records made again from their "
        "finished values (no arithmetic). *floors / fused pass*: the two together over the "
        "fused pass.",
        "",
        *_table(header, rows),
        "",
    ]


def _period_text(data: dict[str, Any]) -> str:
    days = int(data.get("days", 365))
    return "a site-year" if days == 365 else f"the first {days} days of a site's year"


def _output(data: dict[str, Any]) -> list[str]:
    rows = []
    pdf = {c["size"]: c for c in _cases(data, "pdf") if _ok(c)}
    for c in _cases(data, "invoices"):
        if not _ok(c):
            continue
        p = pdf.get(c["size"])
        n = c["invoices"]
        rows.append(
            [
                _n(c["size"]),
                _n(n),
                _s(c["seconds"]),
                _s(c["seconds"] / max(n, 1)),
                _mib(c.get("peak_increase_bytes")),
                "–" if p is None else _n(p["sample"]),
                "–" if p is None else _s(p["per_invoice"]),
                "–" if p is None else f"{_s(p['parallel_per_invoice'])} ({p['workers']})",
                "–" if p is None else _s(p["first_seconds"]),
                "–" if p is None else _s(p["first_seconds"] + p["parallel_per_invoice"] * n),
            ]
        )
    if not rows:
        return []
    header = [
        "M",
        "invoices",
        "files without PDF",
        "per invoice",
        "peak MiB",
        "PDF sample",
        "PDF per invoice, 1 thread",
        "per invoice, threads",
        "first PDF",
        "all PDFs (estimate)",
    ]
    return [
        "## Invoice output",
        "",
        "*files without PDF*: every invoice as HTML, the CSV and JSON of all lines, the "
        "reconciliation and the summary (`write_run_files(pdf=False)`), with its *peak* memory "
        "beyond the run it writes. *PDF*: Typst on a "
        "sample of the invoices spread over the run: in one thread, and as `write_run_files` "
        "prints them, each invoice's context made while a thread per core prints (`render_pdfs`; "
        "the number of threads in brackets). *first PDF*: the first invoice of a process, which "
        "also imports Typst, loads the fonts and parses the template. The last column "
        "estimates every invoice of the run: first PDF + invoices x threads' rate.",
        "",
        *_table(header, rows),
        "",
    ]


def _reference(data: dict[str, Any]) -> list[str]:
    refs = [c for c in _cases(data, "reference") if _ok(c)]
    if not refs:
        return []
    c = refs[0]
    ref_rate = c["values"] / c["reference_seconds"]
    eng_rate = c["values"] / c["engine_seconds"]
    rows = [
        [
            _n(c["size"]),
            _n(c["days"]),
            _n(c["values"]),
            _n(c["bills"]),
            "yes" if c["equal"] else "**no**",
            _s(c["reference_seconds"]),
            _n(ref_rate),
            _s(c["engine_seconds"]),
            _n(eng_rate),
            _n(eng_rate / ref_rate) + "x",
        ]
    ]
    lines = [
        "## The reference implementation",
        "",
        "The naive slot-by-slot reference (`lastgang.reference`: allocation and pricing, one "
        "Python loop iteration per slot and unit) and the engine's `allocate_site` + "
        "`price_site` on the same inputs (the smallest site's consumption and production after "
        "the concept). *equal*: every bill, line, quantity, amount, VAT and total identical.",
        "",
        *_table(
            [
                "M",
                "days",
                "values",
                "bills",
                "equal",
                "reference",
                "values/s",
                "engine",
                "values/s",
                "engine / reference",
            ],
            rows,
        ),
        "",
    ]
    if not c["equal"]:
        lines += ["Differences:", "", *(f"- {d}" for d in c["differences"]), ""]
    bills = [b for b in _cases(data, "billing") if _ok(b)]
    if bills:
        largest = max(bills, key=lambda b: b["size"])
        rate = largest["values"] / largest["seconds"]
        seconds = largest["values"] / ref_rate
        lines += [
            f"The reference speed is per value and so extrapolates: at M = "
            f"{largest['size']:,} it would need about {seconds:,.0f} s for the site-year "
            f"({_n(ref_rate)} values/s) where the whole billing step (store read to invoice "
            f"data) takes {largest['seconds']:.2f} s ({_n(rate)} values/s, "
            f"{rate / ref_rate:,.0f}x the reference).",
            "",
        ]
    return lines


def _targets(data: dict[str, Any]) -> list[str]:
    t = data["targets"]
    rows: list[list[str]] = []
    bills = {c["size"]: c for c in _cases(data, "billing") if _ok(c)}
    b = bills.get(1000)
    if b is not None:
        base = b["baseline"]
        rows.append(
            [
                "billing, M = 1,000 x year",
                f"< {t['billing_seconds_at_1000']:.0f} s",
                _s(b["seconds"]),
                _yes(b["seconds"] < t["billing_seconds_at_1000"]),
            ]
        )
        for key, label in (("fused_allocation", "fused pass"), ("numpy_sum", "numpy sum")):
            ratio = b["seconds"] / base[key]
            rows.append(
                [
                    f"billing / {label}",
                    f"< {t['billing_over_baseline']:.0f}x",
                    f"{ratio:.1f}x",
                    _yes(ratio < t["billing_over_baseline"]),
                ]
            )
        for key, label in (("float64_bytes", "float64 matrix"), ("profile_bytes", "profiles")):
            ratio = b["peak_increase_bytes"] / b[key]
            rows.append(
                [
                    f"billing peak memory / {label}",
                    f"< {t['billing_memory_over_data']:.0f}x",
                    f"{ratio:.1f}x",
                    _yes(ratio < t["billing_memory_over_data"]),
                ]
            )
    imports = [c for c in _cases(data, "import-csv") if _ok(c)]
    if imports:
        c = max(imports, key=lambda c: c["values"])
        estimate = 35_040_000 * c["seconds"] / c["values"]
        measured = "" if c["values"] == 35_040_000 else f" (estimated from M = {c['size']:,})"
        rows.append(
            [
                "import of 35 M interval values (CSV)",
                f"< {t['import_seconds_35m']:.0f} s",
                f"{estimate:.1f} s{measured}",
                _yes(estimate < t["import_seconds_35m"]),
            ]
        )
    pdfs = [c for c in _cases(data, "pdf") if _ok(c)]
    if pdfs:
        c = max(pdfs, key=lambda c: c["size"])
        best = min(c["per_invoice"], c["parallel_per_invoice"])
        rows.append(
            [
                f"PDF per invoice (M = {c['size']:,}, best of one thread and the threads)",
                f"< {t['pdf_seconds_per_invoice']} s",
                _s(best),
                _yes(best < t["pdf_seconds_per_invoice"]),
            ]
        )
    if not rows:
        return []
    return ["## Targets", "", *_table(["what", "target", "measured", "met"], rows), ""]


def _yes(flag: bool) -> str:
    return "yes" if flag else "**no**"


def write_results(data: dict[str, Any], path: Path) -> None:
    path.write_text(markdown(data), encoding="utf-8")
