"""PDF invoices rendered by a pool of processes come back complete and in order."""

from lastgang.report.invoice import render_pdfs


def test_render_pdfs_in_worker_processes_keeps_the_order() -> None:
    long_page = "<h1>A</h1>" + "<p>A long invoice with many lines.</p>" * 400
    short_page = "<h1>B</h1><p>A short one.</p>"
    pdfs = list(render_pdfs([long_page, short_page, long_page], workers=2))
    assert [pdf[:5] for pdf in pdfs] == [b"%PDF-"] * 3
    # the long page has several pages and is much larger than the short one, wherever rendered
    assert len(pdfs[0]) > 2 * len(pdfs[1]) and len(pdfs[2]) > 2 * len(pdfs[1])


def test_render_pdfs_renders_a_few_pages_in_this_process() -> None:
    pdfs = list(render_pdfs(["<p>one</p>", "<p>two</p>"]))
    assert [pdf[:5] for pdf in pdfs] == [b"%PDF-"] * 2
