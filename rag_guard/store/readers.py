"""A corpus file as a reader sees it: its text, where each page starts and under which heading each line sits.

One reader per format, each on a library made for it (the README says why these): Markdown and plain text as
they are; a PDF's text layer through pypdf; an HTML page's main text through trafilatura, which drops the
navigation, scripts and styles and keeps the headings (as Markdown); a Word document's headings and
paragraphs through python-docx. The text is then chunked as one (`corpus.py`), and each chunk records the page
and the heading it starts under, so a citation can say `report.pdf, p. 12 — "Safety margins"`.

A file that cannot be read raises `CorpusError` saying why and what to do; nothing here writes or downloads.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rag_guard.errors import CorpusError

MAX_TEXT_BYTES = 5 * 1024 * 1024
"""A text or Markdown file this large is almost always a mistake (a log, a dump)."""
MAX_DOCUMENT_BYTES = 100 * 1024 * 1024
"""PDF, HTML and Word files carry layout and images: their limit is larger."""
SHORT_LINE = 0.8
"""A PDF line shorter than this share of its page's longest ends a paragraph (or is a heading)."""
_MARKDOWN_HEADING = re.compile(r"^ {0,3}#{1,6}[ \t]+(.+?)[ \t#]*$", re.MULTILINE)
_ESCAPED = re.compile(r"\\([\\`*_{}\[\]()#+\-.!<>|])")


@dataclass(frozen=True)
class ReadFile:
    """A file's text, the offsets where its pages start (PDF) and its headings with their offsets."""

    text: str
    page_starts: list[int] = field(default_factory=list)
    headings: list[tuple[int, str]] = field(default_factory=list)

    def segments(self) -> list[tuple[int, str]]:
        """The text in the pieces a chunk must not cross, with their offsets: one a page, or the whole text."""
        starts = self.page_starts or [0]
        ends = [*starts[1:], len(self.text)]
        return [(start, self.text[start:end]) for start, end in zip(starts, ends, strict=True)]

    def page_at(self, offset: int) -> int | None:
        """The 1-based page the text at `offset` is on; None for a file without pages."""
        if not self.page_starts:
            return None
        return bisect.bisect_right(self.page_starts, offset)

    def heading_at(self, offset: int) -> str | None:
        """The heading the text from `offset` sits under: the last one before its first line of body text, so a
        chunk that opens with headings ("# The Batavia", "## The wreck") sits under the last of them."""
        body = offset
        for start, _ in self.headings:
            if start < body:
                continue
            if self.text[body:start].strip():  # body text comes first
                break
            end = self.text.find("\n", start)
            body = len(self.text) if end < 0 else end
        index = bisect.bisect_right([start for start, _ in self.headings], body) - 1
        return self.headings[index][1] if index >= 0 else None


def read_text(path: Path) -> ReadFile:
    """A plain text file (UTF-8)."""
    return ReadFile(_decoded(path))


def read_markdown(path: Path) -> ReadFile:
    """A Markdown file, its `#` headings recorded where they stand."""
    return _markdown(_decoded(path))


def read_pdf(path: Path) -> ReadFile:
    """A PDF's text layer, page by page."""
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    _sized(path, MAX_DOCUMENT_BYTES)
    try:
        reader = PdfReader(path)
        if reader.is_encrypted and not reader.decrypt(""):
            raise CorpusError("the PDF is encrypted with a password: save an unprotected copy and ingest that")
        pages = [page.extract_text() or "" for page in reader.pages]
    except CorpusError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, IndexError, OSError) as exc:
        raise CorpusError(
            f"the PDF cannot be read ({type(exc).__name__}: {exc}): it may be corrupt or cut short"
        ) from None
    if not any(page.strip() for page in pages):
        raise CorpusError(
            "the PDF has no text layer (scanned pages?): run OCR on it first, e.g. `ocrmypdf in.pdf out.pdf`"
        )
    text, starts = "", []
    for page in pages:
        starts.append(len(text))
        text += _paragraphs(page) + "\n\n"
    return ReadFile(text.rstrip(), page_starts=starts)


def _paragraphs(page: str) -> str:
    """A page's text with its paragraphs apart again: the text layer keeps line breaks but not the space between
    paragraphs, so a line well short of the page's longest (a paragraph's last line, a heading) ends one."""
    lines = [line.rstrip() for line in page.strip().splitlines()]
    width = max((len(line) for line in lines), default=0)
    kept: list[str] = []
    for line in lines:
        kept.append(line)
        if line.strip() and len(line) < SHORT_LINE * width:
            kept.append("")
    return "\n".join(kept).strip()


def read_html(path: Path) -> ReadFile:
    """An HTML page's main text, with its headings, as Markdown."""
    import trafilatura

    page = _decoded(path, MAX_DOCUMENT_BYTES)
    extracted = None
    for precise in (True, False):  # the page's main text first; its whole text only when that finds none
        extracted = trafilatura.extract(
            page, output_format="markdown", include_formatting=True, favor_precision=precise
        )
        if extracted and extracted.strip():
            break
    if not extracted or not extracted.strip():
        raise CorpusError("the page has no readable main text (only scripts, navigation or markup)")
    return _markdown(_ESCAPED.sub(r"\1", extracted))


def read_docx(path: Path) -> ReadFile:
    """A Word document's paragraphs, its headings (styles "Heading N" and "Title") recorded."""
    from zipfile import BadZipFile

    import docx
    from docx.opc.exceptions import PackageNotFoundError

    _sized(path, MAX_DOCUMENT_BYTES)
    try:
        document = docx.Document(str(path))
    except (PackageNotFoundError, BadZipFile, KeyError, ValueError) as exc:
        raise CorpusError(
            f"the file is not a readable Word document ({type(exc).__name__}): it may be corrupt"
        ) from None
    text, headings = "", []
    for paragraph in document.paragraphs:
        line = paragraph.text.strip()
        if not line:
            continue
        style = (paragraph.style.name if paragraph.style is not None else "") or ""
        if style.startswith("Heading") or style == "Title":
            headings.append((len(text), line))
        text += line + "\n\n"
    if not text.strip():
        raise CorpusError("the Word document holds no text")
    return ReadFile(text.rstrip(), headings=headings)


READERS: dict[str, Callable[[Path], ReadFile]] = {
    ".md": read_markdown,
    ".markdown": read_markdown,
    ".txt": read_text,
    ".pdf": read_pdf,
    ".html": read_html,
    ".htm": read_html,
    ".docx": read_docx,
}
"""The formats ingest reads, by file ending."""


def read_file(path: Path) -> ReadFile:
    """The file read by its format's reader; `CorpusError` with the reason and the fix when it cannot be."""
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        kinds = ", ".join(sorted(READERS))
        ending = path.suffix or "no ending"
        raise CorpusError(f"not a document type ingest reads ({ending}; it reads {kinds}): convert it if it is one")
    if path.stat().st_size == 0:
        raise CorpusError("the file is empty")
    return reader(path)


def _markdown(text: str) -> ReadFile:
    headings = [(match.start(), match.group(1).strip()) for match in _MARKDOWN_HEADING.finditer(text)]
    return ReadFile(text, headings=headings)


def _sized(path: Path, limit: int) -> None:
    """`CorpusError` for a file over `limit` bytes."""
    size = path.stat().st_size
    if size > limit:
        raise CorpusError(f"the file is {size / 1e6:.1f} MB, over the {limit / 1e6:.0f} MB limit: split it")


def _decoded(path: Path, limit: int = MAX_TEXT_BYTES) -> str:
    """The file's UTF-8 text, or `CorpusError` saying why it cannot be ingested."""
    _sized(path, limit)
    data = path.read_bytes()
    if b"\0" in data[:8192]:
        raise CorpusError("the file looks binary (it contains NUL bytes)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CorpusError(f"the file is not UTF-8 text (byte {exc.start}): re-save it as UTF-8") from None
    if not text.strip():
        raise CorpusError("the file holds only whitespace")
    return text
