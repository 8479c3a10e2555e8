"""The grounding check: every checkable item of an answer must stand in the passages it was written from. Pure.

The gate judges whether the passages answer the question; this judges what the answer then says. A 1.5B
model answering from passages that say "well over a thousand eggs a day" may write "2000 eggs a day": a
number, a date, a name or a quotation the passages lack is the commonest invented detail, and it can be
found without a model. Checked items:

- numbers, written in digits ("2,000", "1.5", "20th", "1970s") or in words ("two thousand"), compared by
  value, so "2,000", "2000" and "two thousand" are one item; "1.5 million" is 1,500,000;
- names: capitalised words inside a sentence, and all-capital acronyms anywhere (a sentence's first word is
  capitalised anyway, so it counts only as part of a longer name);
- quoted phrases, word for word.

Words compare in lower case, without accents, punctuation or possessive "'s", hyphenated words as their parts;
a name's words also by their stem, so a plural or a people's adjective stands for its place ("Western
European" is found in "Western Europe", "Normans" in "Norman", "Italian" in "Italy").
What it cannot see: a paraphrase that changes the meaning with words the passages also use ("before" for
"after", "neap" for "spring" when both stand in the passage).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence

from langchain_core.documents import Document
from number_parser import parse as parse_number_words
from pydantic import BaseModel, Field

from rag_guard.text.injection import sanitise
from rag_guard.text.words import without_citations

_NUMBER = re.compile(r"(?<![\w.,])(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?")
_SCALES = {100.0, 1_000.0, 1_000_000.0, 1_000_000_000.0, 1_000_000_000_000.0}
_SCALED = re.compile(r"\s*(\d+)(?!\d|[.,]\d)")
_WORD = re.compile(r"[^\W\d_][\w'\u2019-]*")
_SENTENCE_START = re.compile(r"(?:^|[.!?:;]\s+|\n\s*)[\"'\u201c\u2018(\[]*$")
_QUOTED = re.compile(r"[\"\u201c]([^\"\u201c\u201d]{3,}?)[\"\u201d]")
_POSSESSIVE = re.compile(r"['\u2019]s$")
_NAME_SUFFIXES = ("ians", "eans", "ans", "ian", "ean", "an", "ese", "es", "s")
_STEM_MIN = 4


class Grounding(BaseModel):
    """What the check found in one answer."""

    checked: list[str] = Field(default_factory=list)
    """The answer's checkable items, as written (numbers by value)."""
    unsupported: list[str] = Field(default_factory=list)
    """Those the passages lack."""

    @property
    def passed(self) -> bool:
        return not self.unsupported


def check_grounding(answer: str, passages: Iterable[str]) -> Grounding:
    """The answer's numbers, names and quoted phrases, and which of them the passages lack."""
    source = " \n".join(passages)
    known_numbers = _numbers(source, stated=False)
    source_words = _words(source)
    known_words, known_text = set(source_words), " ".join(source_words)
    known_stems = {_name_stem(word) for word in known_words}
    checked: list[str] = []
    unsupported: list[str] = []

    def note(item: str, supported: bool) -> None:
        if item not in checked:
            checked.append(item)
            if not supported:
                unsupported.append(item)

    text = without_citations(answer)
    for value in sorted(_numbers(text, stated=True)):
        note(_shown(value), value in known_numbers)
    for name in _names(text):
        note(name, all(part in known_words or _name_stem(part) in known_stems for part in _words(name)))
    for phrase in _QUOTED.findall(text):
        wanted = " ".join(_words(phrase))
        note(f'"{phrase.strip()}"', bool(wanted) and f" {wanted} " in f" {known_text} ")
    return Grounding(checked=checked, unsupported=unsupported)


def grounded_in(answer: str, documents: Sequence[Document]) -> Grounding:
    """`check_grounding` against the documents' text as the model read it (instructions withheld)."""
    return check_grounding(answer, (sanitise(doc.page_content)[0] for doc in documents))


def states_number(text: str) -> bool:
    """The text states a number, in digits or in words ("ten kilometres"); "one of the largest" does not."""
    return bool(_numbers(text, stated=True))


def _numbers(text: str, *, stated: bool) -> set[float]:
    """The numbers in `text`, by value: digits as written, and number words (`number-parser`) as digits;
    "1.5 million" is 1,500,000.

    `stated`: the numbers an answer states. Without it (a passage), the parts of "1.5 million" count too, so
    a passage's "1.5 million" supports an answer's "1.5". With it, "one" and "first" are not numbers: "one
    of the largest" states no quantity.
    """
    spelled_out = parse_number_words(text, language="en")
    written = _values(text)
    spelled = _values(spelled_out) - written
    pairs = _scaled_pairs(spelled_out)
    scaled = {number * scale for number, scale in pairs}
    if not stated:
        return written | spelled | scaled
    spelled.discard(1.0)
    return (written | spelled) - {part for pair in pairs for part in pair} | scaled


def _values(text: str) -> set[float]:
    return {float(match[1].replace(",", "") + (match[2] or "")) for match in _NUMBER.finditer(text)}


def _scaled_pairs(text: str) -> list[tuple[float, float]]:
    """(number, scale) where a scale word follows a number: "1.5 1000000" after the words became digits."""
    pairs = []
    for match in _NUMBER.finditer(text):
        after = _SCALED.match(text, match.end())
        if after and float(after[1]) in _SCALES:
            pairs.append((float(match[1].replace(",", "") + (match[2] or "")), float(after[1])))
    return pairs


def _shown(value: float) -> str:
    return f"{int(value):,}".replace(",", "") if value == int(value) else f"{value:g}"


def _names(text: str) -> list[str]:
    """Runs of capitalised words ("New York"), without a sentence's first word unless it is an acronym: a
    sentence begins with a capital whatever its first word is."""
    names: list[str] = []
    run: list[str] = []
    previous_end = 0
    for match in _WORD.finditer(text):
        word = match[0]
        if not word[0].isupper() or word == "I":
            _add(run, names)
            run = []
        else:
            if run and text[previous_end : match.start()].strip():
                _add(run, names)
                run = []
            acronym = len(word) > 1 and word.replace("-", "").isupper()
            if acronym or run or not _SENTENCE_START.search(text[: match.start()]):
                run.append(word)
        previous_end = match.end()
    _add(run, names)
    return names


def _add(run: list[str], names: list[str]) -> None:
    if run and (name := " ".join(run)) not in names:
        names.append(name)


def _words(text: str) -> list[str]:
    """Lower-case words without accents or possessive 's; hyphenated words as their parts."""
    words = []
    for match in _WORD.finditer(_folded(text)):
        for part in _POSSESSIVE.sub("", match[0]).replace("\u2019", "'").split("-"):
            if part := part.strip("'"):
                words.append(part)
    return words


def _name_stem(word: str) -> str:
    """A name word without a plural or a people's-adjective ending, nor a final e, y or a ("europe",
    "european" and "europeans" are all "europ"); never shorter than four letters, so short names stay whole."""
    for _ in range(2):
        for suffix in _NAME_SUFFIXES:
            if word.endswith(suffix) and len(word) - len(suffix) >= _STEM_MIN:
                word = word[: -len(suffix)]
                break
        if word[-1:] in ("e", "y", "a") and len(word) > _STEM_MIN:
            word = word[:-1]
    return word


def _folded(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text.lower()) if not unicodedata.combining(c))
