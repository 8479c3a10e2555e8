import pytest

from rag_guard.errors import CorpusError
from rag_guard.store.corpus import scan_corpus
from rag_guard.store.readers import read_file
from tests.documents import write_docx, write_hostile, write_html, write_pdf


def test_a_pdf_is_read_page_by_page_and_each_offset_knows_its_page(tmp_path):
    read = read_file(write_pdf(tmp_path / "ship.pdf", ["The Cutty Sark was launched in 1869.", "She carried tea."]))
    assert "launched in 1869" in read.text and "carried tea" in read.text
    assert read.page_at(read.text.index("launched")) == 1
    assert read.page_at(read.text.index("carried tea")) == 2


def test_no_pdf_chunk_crosses_a_page_so_each_cites_the_page_it_is_on(tmp_path):
    write_pdf(tmp_path / "ship.pdf", ["The Cutty Sark was launched in 1869.", "She was placed in a dry dock in 1954."])
    chunks = scan_corpus(tmp_path, chunk_size=800, chunk_overlap=0).chunks
    assert [(chunk.metadata["page"], chunk.page_content) for chunk in chunks] == [
        (1, "The Cutty Sark was launched in 1869."),
        (2, "She was placed in a dry dock in 1954."),
    ]


def test_an_html_page_keeps_its_main_text_and_headings_not_its_navigation_scripts_or_styles(tmp_path):
    page = write_html(
        tmp_path / "batavia.html",
        "The Batavia",
        [("The wreck", "She struck a reef on 4 June 1629."), ("Aftermath", "A mutiny followed the wreck.")],
    )
    read = read_file(page)
    assert "struck a reef on 4 June 1629" in read.text
    for noise in ("Every ship", "tracking", "color: red", "All rights reserved"):
        assert noise not in read.text
    assert read.heading_at(read.text.index("struck a reef")) == "The wreck"
    assert read.heading_at(read.text.index("A mutiny")) == "Aftermath"


def test_markup_inside_an_html_page_is_read_as_text(tmp_path):
    page = write_html(tmp_path / "markup.html", "Markup", [("Tags", "Write &lt;b&gt;bold&lt;/b&gt; for bold text.")])
    assert "<b>bold</b>" in read_file(page).text


def test_a_word_document_keeps_its_headings(tmp_path):
    read = read_file(write_docx(tmp_path / "endurance.docx", [("The voyage", "Endurance sailed in 1914.")]))
    assert "Endurance sailed in 1914." in read.text
    assert read.heading_at(read.text.index("Endurance sailed")) == "The voyage"
    assert read.page_at(0) is None


def test_a_markdown_chunk_cites_the_heading_it_starts_under_or_opens_with(tmp_path):
    (tmp_path / "notes.md").write_text("# Vasa\n\nThe Vasa sank in 1628.\n\n## Raising\n\nShe was raised in 1961.\n")
    chunks = scan_corpus(tmp_path, chunk_size=30, chunk_overlap=0).chunks
    heading_of = {chunk.page_content.rsplit("\n", 1)[-1]: chunk.metadata.get("heading") for chunk in chunks}
    assert heading_of["The Vasa sank in 1628."] == "Vasa"
    assert heading_of["She was raised in 1961."] == "Raising"
    assert all("page" not in chunk.metadata for chunk in chunks)


@pytest.mark.parametrize(
    "name", ["empty.pdf", "truncated.pdf", "locked.pdf", "scripts.html", "junk.docx", "table.xlsx"]
)
def test_a_hostile_file_is_refused_with_its_reason(tmp_path, name):
    says = write_hostile(tmp_path)[name]
    with pytest.raises(CorpusError, match=says):
        read_file(tmp_path / name)


def test_a_scanned_pdf_says_to_run_ocr(tmp_path):
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.rect(10, 10, 50, 50)  # a drawing, no text: as a scan looks to a text extractor
    pdf.output(str(tmp_path / "scan.pdf"))
    with pytest.raises(CorpusError, match=r"no text layer.*OCR"):
        read_file(tmp_path / "scan.pdf")


def test_a_folder_of_hostile_files_ingests_what_it_can_and_reports_the_rest(tmp_path):
    reasons = write_hostile(tmp_path / "mixed")
    write_pdf(tmp_path / "mixed" / "good.pdf", ["The Cutty Sark was launched in 1869."])
    (tmp_path / "mixed" / ".DS_Store").write_bytes(b"\x00hidden")
    scan = scan_corpus(tmp_path / "mixed", chunk_size=800, chunk_overlap=0)
    assert scan.files == 1 and {chunk.metadata["source"] for chunk in scan.chunks} == {"good.pdf"}
    assert set(scan.skipped) == set(reasons)
    assert all(reasons[name] in why for name, why in scan.skipped.items())
