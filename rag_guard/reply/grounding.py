"""The grounding check: every claim-bearing word of an answer must stand in the passages it was written from. Pure.

The gate judges whether the passages answer the question; this judges what the answer then says. A 1.5B
model answering from passages that say "well over a thousand eggs a day" may write "2000 eggs a day": a
number, a date, a name, a quotation or a word the passages lack is the commonest invented detail, and it can
be found without a model. Checked items:

- numbers, written in digits ("2,000", "1.5", "20th", "1970s") or in words ("two thousand"), compared by
  value, so "2,000", "2000" and "two thousand" are one item; "1.5 million" is 1,500,000. A number followed by
  the word it counts or measures ("three lines", "10 species") needs a passage sentence that states both: the
  passage's "three" in "appears three times" does not support "three lines";
- names: capitalised words inside a sentence, and all-capital acronyms anywhere (a sentence's first word is
  capitalised anyway, so it counts only as part of a longer name);
- quoted phrases, word for word;
- every other content word (not a closed-class word such as "the", "was", "not"): in the passages or in the
  question. An answer in the passages' own words passes; "Mumbai, the financial capital" over a passage that
  says Delhi does not, nor "a monotypic genus" over one that never says monotypic.

Words compare in lower case, without accents, punctuation or possessive "'s", hyphenated words as their parts;
by their stem too, so a plural or a people's adjective stands for its place ("Western European" is found in
"Western Europe", "Normans" in "Norman", "Italian" in "Italy").
What it cannot see: a paraphrase that changes the meaning with words the passages also use ("before" for
"after", "neap" for "spring" when both stand in the passage), and a claim about one thing made with another
thing's words (`subject.py` checks the question's subject against the passage the answer cites).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence

from langchain_core.documents import Document
from number_parser import parse as parse_number_words
from pydantic import BaseModel, Field

from rag_guard.text.injection import sanitise
from rag_guard.text.words import FUNCTION_WORDS, sentences, stem, without_citations

_NUMBER = re.compile(r"(?<![\w.,])(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?")
_SCALES = {100.0, 1_000.0, 1_000_000.0, 1_000_000_000.0, 1_000_000_000_000.0}
_SCALED = re.compile(r"\s*(\d+)(?!\d|[.,]\d)")
NEGATIONS = ("not", "never", "neither", "nor", "none", "nothing", "no longer", "cannot", "n't")
"""The words that deny: an answer holding one needs a passage sentence that denies too."""
_NEGATION = re.compile(rf"\b(?:{'|'.join(NEGATIONS[:-1])})\b|n't\b", re.IGNORECASE)
_NUMBERED_NAME = re.compile(r"(\b[A-Z][\w'\u2019-]*(?:\s+[A-Z][\w'\u2019-]*)*)[\s-]+(\d+)\b")
_YEAR = re.compile(r"1\d{3}|20\d{2}")
_WITH_DIGITS = re.compile(r"\S*\d\S*")
_COUNTED = re.compile(r"\w*[\s-]+([^\W\d_][\w'\u2019]*)")
_WORD = re.compile(r"[^\W\d_][\w'\u2019-]*")
_SENTENCE_START = re.compile(r"(?:^|(?<!\b[A-Z])[.!?:;]\s+|\n\s*)[\"'\u201c\u2018(\[]*$")
"""Where a sentence starts: not after an initial ("J. H. Williams")."""
_QUOTED = re.compile(r"[\"\u201c]([^\"\u201c\u201d]{3,}?)[\"\u201d]")
_POSSESSIVE = re.compile(r"['\u2019]s$")
_NAME_SUFFIXES = ("ians", "eans", "ans", "ian", "ean", "an", "ese", "es", "s")
_STEM_MIN = 4


class Grounding(BaseModel):
    """What the check found in one answer."""

    checked: list[str] = Field(default_factory=list)
    """The answer's numbers (by value; "3 lines" for a number and what it counts), names and quoted phrases,
    and any other content word the passages and the question lack."""
    unsupported: list[str] = Field(default_factory=list)
    """Those the passages lack."""

    @property
    def passed(self) -> bool:
        return not self.unsupported


class Evidence:
    """What some passages state, ready for the checks to look items up in: built once per reply."""

    def __init__(self, passages: Iterable[str]) -> None:
        self.passages = list(passages)
        source = " \n".join(self.passages)
        self.numbers = _numbers(source, stated=False)
        source_words = _words(source)
        self._words, self._text = set(source_words), f" {' '.join(source_words)} "
        self._forms = _forms(source_words)
        self._folded = _folded(source)
        self._negating = [sentence for p in self.passages for sentence in sentences(p) if _NEGATION.search(sentence)]

    def states_name(self, name: str) -> bool:
        """Every word of the name, as written or by its name stem ("Normans" in "Norman"); a numbered name
        ("Voyager 1") with its number right after its last word."""
        words = _words(name)
        if not all(part in self._words or _name_stem(part) in self._forms for part in words):
            return False
        number = _NUMBERED_NAME.fullmatch(name)
        if number is None:
            return True
        last = _words(number[1])[-1]
        return re.search(rf"\b{re.escape(last)}[\s-]+{number[2]}\b", self._folded) is not None

    def states_phrase(self, phrase: str) -> bool:
        """The phrase word for word."""
        wanted = " ".join(_words(phrase))
        return bool(wanted) and f" {wanted} " in self._text

    def states(self, kind: str, item: str) -> bool:
        """A `named_items` item."""
        if kind == "number":
            return float(item) in self.numbers
        return self.states_phrase(item) if kind == "phrase" else self.states_name(item)

    def mentions(self, kind: str, item: str) -> bool:
        """A `named_items` item, or for a name any one of its words ("Shapiro" mentions "Jake David Shapiro"),
        a numbered name's number with it ("Voyager 2" does not mention "Voyager 1")."""
        if kind != "name" or self.states(kind, item):
            return self.states(kind, item)
        if _NUMBERED_NAME.fullmatch(item):
            return False
        return any(self.states_name(word) for word in item.split() if word not in FUNCTION_WORDS)

    def states_word(self, word: str) -> bool:
        return bool(_forms([word]) & self._forms)

    def states_together(self, value: float, word: str) -> bool:
        """Some sentence states the number `value` and `word` (or a form of it) together."""
        wanted = _forms([word])
        return any(
            wanted & _forms(_words(sentence)) and value in _numbers(sentence, stated=False)
            for passage in self.passages
            for sentence in sentences(passage)
        )

    def negates(self, words: Iterable[str]) -> bool:
        """Some sentence negates something and shares one of `words`: a denial needs one to stand on."""
        wanted = _forms(words)
        return any(wanted & _forms(_words(sentence)) for sentence in self._negating)


def check_grounding(answer: str, passages: Iterable[str], question: str = "") -> Grounding:
    """The answer's numbers (with what they count), names, quoted phrases, content words and denials, and which
    of them the passages lack. A content word or a denial may also come from the question: an answer names what
    was asked about ("Was it not Rollo?")."""
    known = Evidence(passages)
    checked: list[str] = []
    unsupported: list[str] = []

    def note(item: str, supported: bool) -> None:
        if item not in checked:
            checked.append(item)
            if not supported:
                unsupported.append(item)

    text = without_citations(answer)
    spelled_out = parse_number_words(text, language="en")
    counted = _counted(spelled_out)
    for value in sorted(_numbers(text, stated=True)):
        shown, words = _shown(value), counted.get(value, [])
        if value not in known.numbers or not words:
            note(shown, value in known.numbers)
        for word in words if value in known.numbers else ():
            note(f"{shown} {word}", known.states_together(value, word))
    names = _names(text)
    for name in names:
        note(name, known.states_name(name))
    quoted = _QUOTED.findall(text)
    for phrase in quoted:
        note(f'"{phrase.strip()}"', known.states_phrase(phrase))
    asked = _forms(_words(question))
    covered = {word for item in [*names, *quoted] for word in _words(item)} | {w for ws in counted.values() for w in ws}
    content = [word for word in _words(_WITH_DIGITS.sub(" ", spelled_out)) if word not in FUNCTION_WORDS]
    for word in content:
        if word not in covered and not _forms([word]) & asked and not known.states_word(word):
            note(word, False)
    if (denial := _NEGATION.search(text)) and not _NEGATION.search(question) and not known.negates(content):
        note(denial[0].strip().lower(), False)
    return Grounding(checked=checked, unsupported=unsupported)


def grounded_in(answer: str, documents: Sequence[Document], question: str = "") -> Grounding:
    """`check_grounding` against the documents' text as the model read it (instructions withheld)."""
    return check_grounding(answer, (sanitise(doc.page_content)[0] for doc in documents), question)


def states_number(text: str) -> bool:
    """The text states a number, in digits or in words ("ten kilometres"); "one of the largest" does not."""
    return bool(_numbers(text, stated=True))


def item_kind(item: str) -> str:
    """What an unsupported item is: `number` ("3 lines" too), `quotation`, `denial`, `name` or `word`."""
    if item[:1].isdigit():
        return "number"
    if item[:1] == '"':
        return "quotation"
    if item in NEGATIONS:
        return "denial"
    return "name" if item[:1].isupper() else "word"


def named_items(text: str, *, question: bool = False) -> list[tuple[str, str]]:
    """What a text names, as (kind, item): its names, its quoted phrases and the numbers it states (by value,
    as `shown`); "Voyager 1" is one name, "September 1872" a name and a year. The subject check reads a
    question's subject with it (`question`: a question's first word is a name too, unless it is a closed-class
    word: "Mookychick is ...?" asks about Mookychick, "What is ...?" about nothing called What)."""
    text = without_citations(text)
    names = _names(text)
    first = _WORD.search(text)
    if question and first and first[0][0].isupper() and _folded(first[0]) not in FUNCTION_WORDS:
        run = _names(f"x {text[first.start() :]}")[:1]
        names = [name for name in [*run, *names] if not (run and name != run[0] and run[0].endswith(name))]
    numbered = {
        match[0]: match[2]
        for match in _NUMBERED_NAME.finditer(text)
        if match[1] in names and not _YEAR.fullmatch(match[2])
    }
    numbers = {_shown(value) for value in _numbers(text, stated=True)} - set(numbered.values())
    return [
        *(("name", name) for name in dict.fromkeys(names) if not any(item.startswith(f"{name} ") for item in numbered)),
        *(("name", item) for item in numbered),
        *(("phrase", phrase.strip()) for phrase in _QUOTED.findall(text)),
        *(("number", shown) for shown in sorted(numbers, key=float)),
    ]


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


def _counted(spelled_out: str) -> dict[float, list[str]]:
    """Each number of an answer (number words already digits) and the word right after it, when that word is
    what it counts or measures ("3 lines", "10 species", "20th century"): not a closed-class word, not another
    number. "1.5 1000000 people" counts people for 1,500,000."""
    counted: dict[float, list[str]] = {}
    for match in _NUMBER.finditer(spelled_out):
        value, end = float(match[1].replace(",", "") + (match[2] or "")), match.end()
        if (scale := _SCALED.match(spelled_out, end)) and float(scale[1]) in _SCALES:
            value, end = value * float(scale[1]), scale.end()
        if (after := _COUNTED.match(spelled_out, end)) is None:
            continue
        words = _words(after[1])
        if words and words[0] not in FUNCTION_WORDS and words[0] not in counted.setdefault(value, []):
            counted[value].append(words[0])
    return counted


def _forms(words: Iterable[str]) -> set[str]:
    """Each word as written, by `words.stem` and by its name stem: the forms two words compare by."""
    return {form for word in words for form in (word, stem(word), _name_stem(word))}


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
