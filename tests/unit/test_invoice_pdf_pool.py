"""PDF invoices printed by a pool of threads come back complete, in order, and byte for byte
what one thread prints."""

from collections.abc import Iterator
from typing import Any

import pytest
from test_invoice_render import year_run

from lastgang.report.invoice import invoice_context
from lastgang.report.pdf import PARALLEL_FROM, render_pdf, render_pdfs


@pytest.fixture(scope="module")
def contexts() -> list[dict[str, Any]]:
    """A draft and a final invoice, and shorter variants of them (fewer lines and months),
    so that the PDFs differ in length and a thread finishes a later one first."""
    out = []
    for status in ("draft", "final"):
        run = year_run(status)
        context = invoice_context(run.invoices[0], run)
        out.append(context)
        for keep in (1, 3, 6):
            short = dict(context, number=f"{context['number']}-{status}-{keep}")
            short["lines"] = context["lines"][:keep]
            short["months"] = context["months"][:keep]
            out.append(short)
    return out


def test_render_pdfs_in_threads_keeps_the_order(contexts: list[dict[str, Any]]) -> None:
    alone = [render_pdf(c) for c in contexts]
    assert len(set(alone)) == len(contexts)  # every PDF differs
    assert list(render_pdfs(contexts, workers=2)) == alone
    assert list(render_pdfs(contexts, workers=3)) == alone


def test_render_pdfs_renders_a_few_invoices_in_this_thread(
    contexts: list[dict[str, Any]],
) -> None:
    few = contexts[: PARALLEL_FROM - 1]
    assert list(render_pdfs(few)) == [render_pdf(c) for c in few]
    assert list(render_pdfs([])) == []


def test_render_pdfs_takes_invoices_while_they_are_produced(
    contexts: list[dict[str, Any]],
) -> None:
    # write_run_files hands over a generator: the threads print the first invoices meanwhile
    produced: list[int] = []

    def pages() -> Iterator[dict[str, Any]]:
        for k, context in enumerate(contexts):
            produced.append(k)
            yield context

    pdfs = list(render_pdfs(pages(), count=len(contexts)))
    assert produced == list(range(len(contexts)))
    assert pdfs == [render_pdf(c) for c in contexts]
