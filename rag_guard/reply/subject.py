"""The subject check: an answer is about what was asked only if the document it cites names it. Pure.

The grounding check asks whether the passages state an answer's words; over notes on two ships it passes
"64 [2]" for "How many guns did the Mary Rose carry?" when passage [2] is the Vasa's, since every word of the
answer stands there. What gives it away is that passage [2]'s document never names the Mary Rose. So the
document the answer cites (the cited passage's text, its heading and file name, and the other retrieved
passages of the same file: a passage that says "she" sits in a document that names her) must mention one of
the question's names or quoted terms ("Shapiro" mentions "Jake David Shapiro"; "Voyager 2" does not mention
"Voyager 1"), or, when the question names nothing, the numbers and dates it states. One, not all: a question
often names a bridge ("the coach of the 2014 Michigan team") that the answering passage leaves out. But a
name in the possessive is what the question is about ("Cassini's magnetometer"): that one must be mentioned;
and a name another retrieved document states in full while the cited one does not ("the Brooklyn Bridge",
when the passage is the Golden Gate's, which says "the bridge") marks an answer taken from the wrong document.

A passage that opens on a subject it does not name ("He was born in 1972 in Enugu.") and has no heading could
be about anyone: it is left alone. Matching is the grounding check's (`Evidence`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from langchain_core.documents import Document
from pydantic import BaseModel, Field

from rag_guard.reply.grounding import Evidence, named_items
from rag_guard.text.injection import sanitise
from rag_guard.text.words import excerpt, sentences, stems

_CITED = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")
_FILE_WORDS = re.compile(r"[\W_]+")
_POSSESSIVE = re.compile(r"['\u2019]s$")
_PRONOUN_OPENING = re.compile(r"\W*(?:[^.!?]{0,60}?,\s*)?(?:he|she|it|they|his|her|its|their)\b", re.IGNORECASE)


class Subject(BaseModel):
    """What the check found: the passages the answer cites, and the question's terms their documents lack."""

    cited: list[int] = Field(default_factory=list)
    missing: list[str] = Field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.missing


def check_subject(question: str, documents: Sequence[Document], cited: Sequence[int]) -> Subject:
    """Whether the documents of the `cited` passages (1-based labels) mention what the question names; when
    they mention none of it, all of it is `missing`."""
    wanted = named_items(question, question=True)
    labels = [label for label in dict.fromkeys(cited) if 1 <= label <= len(documents)]
    if not wanted or not labels:
        return Subject(cited=labels)
    if all(_unnamed(documents[label - 1]) for label in labels):
        return Subject(cited=labels)
    sources = {_source(documents[label - 1]) for label in labels}
    known = Evidence(_described(doc) for doc in documents if _source(doc) in sources)
    named = [(kind, item) for kind, item in wanted if kind != "number"] or wanted
    elsewhere = Evidence(_described(doc) for doc in documents if _source(doc) not in sources)
    taken = [item for kind, item in named if not known.states(kind, item) and elsewhere.states(kind, item)]
    if taken:  # the thing asked about has its own document among the passages: the answer is from another
        return Subject(cited=labels, missing=taken)
    owners = [item for kind, item in named if kind == "name" and _POSSESSIVE.search(item)]
    if owners:  # "Cassini's magnetometer": the owner is what the question is about
        missing = [_POSSESSIVE.sub("", item) for item in owners if not known.mentions("name", item)]
        return Subject(cited=labels, missing=missing)
    if any(known.mentions(kind, item) for kind, item in named):
        return Subject(cited=labels)
    return Subject(cited=labels, missing=[item for _, item in named])


def cited_labels(answer: str, documents: Sequence[Document]) -> list[int]:
    """The passages an answer cites as [n]; without citations, those that state something the answer names,
    else all of them (then the subject must stand somewhere among the passages)."""
    labels = [int(n) for group in _CITED.findall(answer) for n in group.split(",")]
    if labels:
        return labels
    named = named_items(answer)
    holding = [
        label
        for label, doc in enumerate(documents, start=1)
        if any(Evidence([_described(doc)]).states(kind, item) for kind, item in named)
    ]
    return holding or list(range(1, len(documents) + 1))


def off_subject_message(
    question: str, documents: Sequence[Document], cited: Sequence[int], missing_items: Sequence[str]
) -> str:
    """In place of an answer whose cited passage is about something else: what the question names that the
    passage lacks, what the passage does say closest to the question, and a request."""
    missing = " and ".join(f'"{item}"' for item in missing_items)
    label = cited[0]
    doc = documents[label - 1]
    asked = stems(question)
    found = sentences(sanitise(doc.page_content)[0])
    lines = [f"The documents I found do not say this about {missing}."]
    if found:
        closest = max(found, key=lambda sentence: len(stems(sentence) & asked))
        lines.append(
            f'The answer came from [{label}] ({_source(doc)}), which does not mention {missing}: "{excerpt(closest)}"'
        )
    lines.append(f"Is that what you meant? If not, could you point me to a document about {missing}?")
    return "\n".join(lines)


def _unnamed(doc: Document) -> bool:
    """The passage opens by referring to a subject it does not name ("He was born in 1972 in Enugu.") and has
    no heading to name it: what it is about is unknown, so it cannot be called about something else."""
    return not doc.metadata.get("heading") and _PRONOUN_OPENING.match(sanitise(doc.page_content)[0]) is not None


def _source(doc: Document) -> str:
    return str(doc.metadata.get("source", "unknown"))


def _described(doc: Document) -> str:
    """A passage as the subject check reads it: its text (instructions withheld), its heading and its file's
    name ("mary_rose.md" names the Mary Rose)."""
    heading = str(doc.metadata.get("heading") or "")
    file_name = _FILE_WORDS.sub(" ", _source(doc).rsplit("/", 1)[-1].rsplit(".", 1)[0])
    return f"{sanitise(doc.page_content)[0]}\n{heading}\n{file_name}"
