"""Invoice pages as PDF (WeasyPrint), in this process or in a pool of worker processes.

- :func:`render_pdf`: one HTML page as an A4 PDF, exactly as ``weasyprint.HTML(string=html)
  .write_pdf()`` prints it, with less work per page (below);
- :func:`render_pdfs`: the PDFs of many pages, in order, by one worker process per core once
  there are :data:`PARALLEL_FROM` pages or more.

This module imports no more than WeasyPrint (and that only when the first page is printed), so
a worker process starts without the billing engine. What the time goes to (``bench/README.md``):
WeasyPrint's cascade, layout and drawing are pure Python, about 1 ms per table cell; an invoice
of the M = 1,000 benchmark site (ten PV systems, three to four pages, ~320 table cells) takes
about 0.4 s of one core, one of the M = 100 site about 0.27 s.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import re
import threading
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from functools import lru_cache
from importlib.resources import files
from typing import Any

__all__ = ["PARALLEL_FROM", "STYLESHEET", "render_pdf", "render_pdfs"]

#: the invoice style sheet (``templates/invoice.css``), which the invoice template includes inline
STYLESHEET = "invoice.css"

#: pages from which :func:`render_pdfs` uses worker processes: a worker needs about a second to
#: start (Python, WeasyPrint, fonts), a page of layout 0.1-0.4 s
PARALLEL_FROM = 12


def render_pdf(html: str) -> bytes:
    """An HTML invoice as an A4 PDF (WeasyPrint).

    The same bytes as ``weasyprint.HTML(string=html).write_pdf()``, with less work per page:

    - the invoice style sheet, which every invoice page holds inline, is parsed once per
      process (a page with another style sheet keeps its own);
    - the fonts (a WeasyPrint ``FontConfiguration``) are set up once per thread;
    - WeasyPrint's user agent style sheet leaves out the rules for footnotes and notes and keeps
      ``::marker`` for list items only: otherwise the cascade computes these six pseudo-element
      styles for every element of the page, though an invoice has none of them;
    - Python's cyclic garbage collector pauses while the page is printed (WeasyPrint makes
      hundreds of thousands of short-lived objects; they are collected afterwards)."""
    printer = _printer()
    stylesheets = None
    start = html.find("<style>")
    end = html.find("</style>", start)
    if start >= 0 and end >= 0 and html[start + 7 : end].strip() == printer.css_text:
        html = html[:start] + html[end + 8 :]
        stylesheets = [printer.css]
    collecting = gc.isenabled()
    gc.disable()
    try:
        document = printer.html_class(string=html)
        pdf: bytes = document.write_pdf(stylesheets=stylesheets, font_config=printer.font_config())
    finally:
        if collecting:
            gc.enable()
    return pdf


def render_pdfs(
    pages: Iterable[str], *, count: int | None = None, workers: int | None = None
) -> Iterator[bytes]:
    """PDFs of HTML invoices, in order.

    From :data:`PARALLEL_FROM` pages on (or when ``workers`` is given) they are rendered by a
    pool of processes, one per core: WeasyPrint's layout is pure Python, so threads would not
    help. The workers are started fresh (``spawn``), never forked from a process that holds a
    store connection, and each starts with the first page handed to it, so ``pages`` may be a
    generator that produces them while the workers start (``count`` then says how many there
    will be). Every page is one task: handing a page to a worker costs under a millisecond."""
    if count is None:
        pages = pages if isinstance(pages, Sequence) else list(pages)
        count = len(pages)
    processes = workers if workers is not None else min(_cores(), count // 4)
    if processes < 2 or (workers is None and count < PARALLEL_FROM):
        for html in pages:
            yield render_pdf(html)
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(processes, mp_context=context, initializer=_warm_up) as pool:
        pending: deque[Future[bytes]] = deque()
        for html in pages:
            pending.append(pool.submit(render_pdf, html))
            while pending and pending[0].done():
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1  # pragma: no cover


def _warm_up() -> None:
    """WeasyPrint, the style sheets and the fonts loaded before a worker's first page."""
    render_pdf("<p>.</p>")


class _Printer:
    """What every invoice PDF of a process shares (see :func:`render_pdf`)."""

    def __init__(self) -> None:
        import weasyprint  # type: ignore[import-untyped]  # imported here: it is slow to load
        from weasyprint.css.counters import CounterStyle  # type: ignore[import-untyped]
        from weasyprint.html import UA  # type: ignore[import-untyped]
        from weasyprint.text.fonts import FontConfiguration  # type: ignore[import-untyped]

        self.css_text = invoice_css().strip()
        self.css = weasyprint.CSS(string=self.css_text)
        lean = weasyprint.CSS(string=lean_user_agent_css(UA), counter_style=CounterStyle())
        self._fonts = threading.local()
        self._font_configuration = FontConfiguration

        class InvoiceHTML(weasyprint.HTML):  # type: ignore[misc]
            def _ua_stylesheets(self, forms: bool = False) -> list[Any]:
                return [lean, *super()._ua_stylesheets(forms)[1:]]

        self.html_class = InvoiceHTML

    def font_config(self) -> Any:
        """The fonts of this thread (a Pango font map is not to be shared between threads)."""
        config = getattr(self._fonts, "config", None)
        if config is None:
            config = self._fonts.config = self._font_configuration()
        return config


@lru_cache(maxsize=1)
def _printer() -> _Printer:
    return _Printer()


@lru_cache(maxsize=1)
def invoice_css() -> str:
    """The text of the invoice style sheet."""
    return (files("lastgang.report") / "templates" / STYLESHEET).read_text(encoding="utf-8")


#: rules of WeasyPrint's user agent style sheet for pseudo-elements that no invoice has
#: (footnotes and notes)
_UNUSED_PSEUDO_RULES = re.compile(
    r"^::(footnote-call|footnote-marker|note-call|note-marker|note-callback) \{[^}]*\}$",
    re.MULTILINE,
)


def lean_user_agent_css(ua: str) -> str:
    """WeasyPrint's HTML user agent style sheet without the rules of :data:`_UNUSED_PSEUDO_RULES`
    and with ``::marker`` for list items (``li``, ``summary``) instead of every element."""
    lean = _UNUSED_PSEUDO_RULES.sub("", ua)
    return lean.replace("\n::marker {", "\nli::marker, summary::marker {", 1)
