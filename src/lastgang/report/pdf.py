"""Invoices as PDF (Typst), in this thread or in a pool of threads.

- :func:`render_pdf`: one invoice as an A4 PDF from its context (what
  :func:`lastgang.report.invoice.invoice_context` gives, the same values the HTML page shows),
  typeset by the template ``templates/invoice.typ``;
- :func:`render_pdfs`: the PDFs of many invoices, in order, by one thread per core once there
  are :data:`PARALLEL_FROM` invoices or more.

The context goes to the template as one JSON document (``sys.inputs.invoice``); the template
places its strings as text, so nothing a user typed is read as markup. The PDF is the same byte
for byte on every run and machine: the fonts are DejaVu Sans and DejaVu Sans Mono as the
pinned matplotlib (its font folder) and typst packages ship them, never the system's; the
document date is the run's creation time (``created_at``); title and author are the invoice
and its issuer.

Typst typesets in compiled code and lets go of the GIL while it works, so threads share the
cores without starting processes; a thread keeps its compiler (template parsed once, fonts
loaded once) for every invoice it prints. About 40 ms of one core for an invoice of the
M = 1,000 benchmark site (ten PV systems, three pages); ``bench/README.md``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import threading
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import typst

__all__ = ["PARALLEL_FROM", "TEMPLATE", "font_folder", "render_pdf", "render_pdfs"]

#: the Typst template of the invoice (in ``lastgang/report/templates``)
TEMPLATE = "invoice.typ"

#: invoices from which :func:`render_pdfs` uses a thread per core (a thread's first invoice
#: also parses the template and loads the fonts, about 10 ms)
PARALLEL_FROM = 4


def render_pdf(context: Mapping[str, Any]) -> bytes:
    """An invoice as an A4 PDF, from its context (:func:`~lastgang.report.invoice
    .invoice_context`): the same values, in the same order, as the HTML page; a draft has a
    DRAFT watermark and a DRAFT footer on every page. Raises :class:`RuntimeError` when Typst
    warns (the template and its fonts are meant to compile without a warning)."""
    data = json.dumps(context, ensure_ascii=False, separators=(",", ":"))
    pdf, warnings = _compiler().compile_with_warnings(
        input=_template(),
        format="pdf",
        sys_inputs={"invoice": data},
        timestamp=datetime.fromisoformat(str(context["created_at"])),
    )
    if warnings:
        raise RuntimeError(f"invoice.typ: {'; '.join(w.message for w in warnings)}")
    if not isinstance(pdf, bytes):  # pragma: no cover - Typst gives a PDF as one bytes object
        raise TypeError("Typst gave no PDF")
    return pdf


def render_pdfs(
    contexts: Iterable[Mapping[str, Any]], *, count: int | None = None, workers: int | None = None
) -> Iterator[bytes]:
    """PDFs of invoices (their contexts), in order.

    From :data:`PARALLEL_FROM` invoices on (or when ``workers`` is given) a pool of threads,
    one per core, prints them: Typst releases the GIL while it typesets. ``contexts`` may be a
    generator that produces them while the threads print (``count`` then says how many there
    will be); every invoice is one task."""
    if count is None:
        contexts = contexts if isinstance(contexts, Sequence) else list(contexts)
        count = len(contexts)
    threads = workers if workers is not None else min(_cores(), count)
    if threads < 2 or (workers is None and count < PARALLEL_FROM):
        for context in contexts:
            yield render_pdf(context)
        return
    with ThreadPoolExecutor(threads, thread_name_prefix="invoice-pdf") as pool:
        pending: deque[Future[bytes]] = deque()
        for context in contexts:
            pending.append(pool.submit(render_pdf, context))
            while pending and pending[0].done():
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1  # pragma: no cover


def font_folder() -> Path:
    """matplotlib's font folder (``mpl-data/fonts/ttf``), found without importing matplotlib:
    the DejaVu fonts of the pinned matplotlib are the invoice's, the same on every machine."""
    spec = importlib.util.find_spec("matplotlib")
    if spec is None or not spec.submodule_search_locations:  # pragma: no cover
        raise RuntimeError("matplotlib is not installed: the invoice PDF takes its fonts from it")
    return Path(next(iter(spec.submodule_search_locations))) / "mpl-data" / "fonts" / "ttf"


@lru_cache(maxsize=1)
def _template() -> bytes:
    return (files("lastgang.report") / "templates" / TEMPLATE).read_bytes()


@lru_cache(maxsize=1)
def _fonts() -> typst.Fonts:
    import typst  # imported here: a process that writes no PDF does not need it

    return typst.Fonts(include_system_fonts=False, font_paths=[str(font_folder())])


_local = threading.local()


def _compiler() -> typst.Compiler:
    """This thread's Typst compiler (it keeps the parsed template and the laid out fonts)."""
    compiler: typst.Compiler | None = getattr(_local, "compiler", None)
    if compiler is None:
        import typst

        compiler = _local.compiler = typst.Compiler(font_paths=_fonts(), ignore_system_fonts=True)
    return compiler
