"""Documents the tests write themselves (none is downloaded): PDFs with a text layer (fpdf2), Word files
(python-docx), HTML pages, and the hostile files ingest must survive."""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from pathlib import Path


def write_pdf(path: Path, pages: Sequence[str]) -> Path:
    """A PDF with one page per string, its text on the page's text layer."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("helvetica", size=11)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 6, text)
    pdf.output(str(path))
    return path


def write_docx(path: Path, blocks: Sequence[tuple[str, str]]) -> Path:
    """A Word document of (heading, paragraph) blocks, each heading in the "Heading 1" style."""
    import docx

    document = docx.Document()
    for heading, paragraph in blocks:
        document.add_heading(heading, level=1)
        document.add_paragraph(paragraph)
    document.save(str(path))
    return path


def write_html(path: Path, title: str, sections: Sequence[tuple[str, str]]) -> Path:
    """An HTML page with navigation, a script, a style and a footer around an article of sections."""
    body = "".join(f"<h2>{heading}</h2><p>{text}</p>" for heading, text in sections)
    path.write_text(
        f"<!doctype html><html><head><title>{title}</title><style>p {{ color: red }}</style>"
        "<script>document.title = 'tracking';</script></head><body>"
        "<nav><a href='/'>Home</a> | <a href='/ships'>Every ship</a> | <a href='/about'>About us</a></nav>"
        f"<main><article><h1>{title}</h1>{body}</article></main>"
        "<footer>Copyright 2026 Ship Notes. All rights reserved.</footer></body></html>",
        encoding="utf-8",
    )
    return path


def write_hostile(folder: Path) -> dict[str, str]:
    """Files ingest must report, not crash on; by name, a word its reason must hold."""
    import docx  # noqa: F401  (the junk .docx below must fail in python-docx, not for want of it)
    from pypdf import PdfWriter

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "empty.pdf").write_bytes(b"")
    whole = write_pdf(folder / "whole.pdf", ["A page that will be cut short."]).read_bytes()
    (folder / "whole.pdf").unlink()
    (folder / "truncated.pdf").write_bytes(whole[: len(whole) // 3])
    locked = PdfWriter()
    locked.append(write_pdf(folder / "plain.pdf", ["A secret page."]))
    (folder / "plain.pdf").unlink()
    locked.encrypt(user_password="secret", owner_password="owner")
    with (folder / "locked.pdf").open("wb") as out:
        locked.write(out)
    (folder / "scripts.html").write_text(
        "<html><head><script>var a = 1;</script></head><body><script>alert('hi')</script></body></html>",
        encoding="utf-8",
    )
    with zipfile.ZipFile(folder / "junk.docx", "w") as junk:
        junk.writestr("nonsense.bin", b"\x00\x01 not a word document")
    (folder / "table.xlsx").write_bytes(b"PK\x03\x04 a spreadsheet")
    return {
        "empty.pdf": "empty",
        "truncated.pdf": "corrupt",
        "locked.pdf": "password",
        "scripts.html": "no readable main text",
        "junk.docx": "not a readable Word document",
        "table.xlsx": "not a document type",
    }
