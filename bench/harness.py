"""Measurement helpers of the benchmark: wall time, peak memory, the machine.

Every case runs in a subprocess of its own (:func:`run_case`), so one case's memory and caches
never reach the next. Inside it, :class:`Probe` measures one run of a step:

- **time**: ``time.perf_counter`` around the step;
- **peak memory**: the process's peak resident set size (``VmHWM``) over the step minus the
  resident set before it, read from ``/proc/self/status``. The peak is reset before every run
  (``echo 5 > /proc/self/clear_refs``), so each run has its own peak. This counts all memory,
  numpy arrays as well as what DuckDB, polars and Typst allocate outside Python (which
  ``tracemalloc`` does not see). Where the reset is not available (not Linux), the peak is
  ``ru_maxrss`` of the process, the same for all runs.

A case reports the median over its runs (``--repeats``).
"""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = [
    "MIB",
    "Probe",
    "Sample",
    "machine",
    "median",
    "probe",
    "repeats",
    "run_case",
]

MIB = 1024 * 1024

#: a case prints its result as one line starting with this marker
RESULT_MARKER = "BENCH-RESULT "


def _status_kib(key: str) -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as refs:
            refs.write("5")
    except OSError:
        return False
    return True


def rss_bytes() -> int:
    """Resident set size of this process now."""
    kib = _status_kib("VmRSS")
    if kib is None:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return kib * 1024


def peak_bytes() -> int:
    """Peak resident set size of this process (since the last reset)."""
    kib = _status_kib("VmHWM")
    if kib is None:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return kib * 1024


@dataclass
class Sample:
    """One measured run: seconds, peak resident memory over the run and before it (bytes)."""

    seconds: float = 0.0
    peak: int = 0
    before: int = 0
    parts: dict[str, float] = field(default_factory=dict)

    @property
    def peak_increase(self) -> int:
        """Memory the run needed beyond what the process held before it."""
        return max(0, self.peak - self.before)


class Probe:
    """Times the parts of one run; see :func:`probe`."""

    def __init__(self, sample: Sample) -> None:
        self.sample = sample
        self._last = time.perf_counter()

    def mark(self, part: str) -> None:
        """End of a named part of the run (its time is since the previous mark)."""
        now = time.perf_counter()
        self.sample.parts[part] = self.sample.parts.get(part, 0.0) + now - self._last
        self._last = now


@contextmanager
def probe() -> Iterator[Probe]:
    """Measure the block: wall time and peak memory (see the module text)."""
    sample = Sample()
    _reset_peak()
    sample.before = rss_bytes()
    start = time.perf_counter()
    p = Probe(sample)
    yield p
    sample.seconds = time.perf_counter() - start
    sample.peak = peak_bytes()


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else 0.0


def summarise(samples: Sequence[Sample]) -> dict[str, Any]:
    """Median seconds (and per part) over the runs, the first run's seconds, and the largest
    peak of any run (memory is reported as the worst run, not the median)."""
    parts = sorted({k for s in samples for k in s.parts})
    return {
        "runs": len(samples),
        "seconds": median([s.seconds for s in samples]),
        "first_seconds": samples[0].seconds if samples else 0.0,
        "all_seconds": [round(s.seconds, 4) for s in samples],
        "parts": {k: median([s.parts.get(k, 0.0) for s in samples]) for k in parts},
        "peak_increase_bytes": max((s.peak_increase for s in samples), default=0),
        "peak_rss_bytes": max((s.peak for s in samples), default=0),
    }


def repeats(count: int, budget: float) -> Iterator[int]:
    """Run numbers ``0 .. count - 1``, but no new run once ``budget`` seconds have passed (a
    case of a large site runs once or twice instead of taking many minutes)."""
    started = time.perf_counter()
    for k in range(max(count, 1)):
        if k and time.perf_counter() - started > budget:
            return
        yield k


def print_reads(
    reads: Sequence[tuple[str, Callable[[], object]]],
    repeats: int,
    before: Callable[[int], object],
) -> None:
    """A Markdown table of ``reads`` (name, what to do), each done ``repeats`` times with
    ``before(k)`` first (``k``: the read's place in the list, to empty caches or do the read it
    follows): the median seconds and the largest peak memory beyond what the process held."""
    print("| read | seconds | peak MiB |")
    print("|---|---|---|")
    for k, (name, read) in enumerate(reads):
        seconds: list[float] = []
        peak = 0
        for _ in range(repeats):
            before(k)
            with probe() as p:
                read()
            seconds.append(p.sample.seconds)
            peak = max(peak, p.sample.peak_increase)
        print(f"| {name} | {median(seconds):.3f} | {peak / 2**20:,.0f} |")


def emit(result: dict[str, Any]) -> None:
    """Hand a case's result to the parent process (one JSON line on stdout)."""
    print(RESULT_MARKER + json.dumps(result, sort_keys=True), flush=True)


def run_case(
    script: Path, args: Sequence[str], *, timeout: float | None = None, quiet: bool = False
) -> dict[str, Any]:
    """Run ``python script args...`` in a fresh process and return the result it emits.

    A case that fails comes back as ``{"error": ...}`` with the end of its output."""
    command = [sys.executable, str(script), *args]
    started = time.perf_counter()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s", "wall_seconds": timeout}
    wall = time.perf_counter() - started
    for line in reversed(done.stdout.splitlines()):
        if line.startswith(RESULT_MARKER):
            result: dict[str, Any] = json.loads(line[len(RESULT_MARKER) :])
            result["wall_seconds"] = wall
            return result
    tail = (done.stdout + done.stderr).strip().splitlines()[-15:]
    if not quiet:
        sys.stderr.write("\n".join(tail) + "\n")
    return {"error": f"exit code {done.returncode}", "output": tail, "wall_seconds": wall}


# --------------------------------------------------------------------------------------------
# the machine


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_bytes() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as info:
            for line in info:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine() -> dict[str, Any]:
    """What the numbers were measured on: CPU, cores, memory, OS, Python and libraries."""
    memory = _memory_bytes()
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "memory_gib": None if memory is None else round(memory / 1024**3, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "libraries": {
            name: _version(name)
            for name in ("lastgang", "numpy", "polars", "duckdb", "typst", "pydantic")
        },
    }
