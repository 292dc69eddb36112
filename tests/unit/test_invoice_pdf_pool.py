"""PDF invoices rendered by a pool of processes come back complete, in order, and byte for byte
what one process prints; the shortcuts of render_pdf change no PDF."""

from collections.abc import Iterator

from lastgang.report.pdf import lean_user_agent_css, render_pdf, render_pdfs


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


def test_render_pdfs_takes_pages_while_they_are_produced() -> None:
    # write_run_files hands over a generator: the workers start with the first pages
    produced: list[int] = []

    def pages() -> Iterator[str]:
        for k in range(14):
            produced.append(k)
            yield f"<h1>Page {k}</h1>" + "<p>line</p>" * k

    pdfs = list(render_pdfs(pages(), count=14))
    assert produced == list(range(14))
    # from 12 pages on a pool prints them; the bytes are those of this process, in order
    assert pdfs == [render_pdf(f"<h1>Page {k}</h1>" + "<p>line</p>" * k) for k in range(14)]


def test_lean_user_agent_style_sheet_changes_no_pdf() -> None:
    import weasyprint  # type: ignore[import-untyped]
    from weasyprint.html import UA  # type: ignore[import-untyped]

    lean = lean_user_agent_css(UA)
    assert "::footnote-call" in UA and "::footnote-call" not in lean
    assert "\n::marker {" in UA and "\nli::marker, summary::marker {" in lean
    # only those rules go: every other line is kept
    kept = [line for line in UA.splitlines() if line and "::" not in line]
    assert [line for line in lean.splitlines() if line and "::" not in line] == kept
    # lists keep their markers, and a page prints as WeasyPrint prints it
    page = "<ol><li>one</li><li>two</li></ol><ul><li>three</li></ul><p>Text <b>bold</b></p>"
    assert render_pdf(page) == weasyprint.HTML(string=page).write_pdf()
