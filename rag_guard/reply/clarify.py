"""The clarifying message: what the passages do not answer, the closest thing they do say, and what to do.

A small model asked to summarise what the passages cover invents facts (measured: "the oven should be set
to 400 degrees", "100 lighthouses in France"), so the message is assembled here and the model writes only
the part of the question the passages leave unanswered, copied from the question (`CLARIFY_INSTRUCTION`).
Every fact in the message is then a sentence quoted from a passage, with its label and source; a reply
that is not made of the question's words is not used. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

from langchain_core.documents import Document

from rag_guard.judging.parts import question_parts
from rag_guard.reply.grounding import item_kind, states_number
from rag_guard.text.injection import sanitise
from rag_guard.text.words import FUNCTION_WORDS, excerpt, key_words, sentences, stem, stems, tokens

MAX_PART_WORDS = 25
UNTOUCHED = (
    "no retrieved sentence shares the question's content words, so a clarifying message would quote a non sequitur"
)
"""Why a question in the clarify band is refused when no passage sentence touches it (`touches`)."""


def unanswered_part(question: str, reply: str) -> str | None:
    """The model's copy of the unanswered part, when it is a real part of the question: made of the
    question's words, and not all of them. None otherwise: a statement ("Voyager 1 visited Saturn"), the
    whole question, or the whole question reworded ("What was the Association founded?" for "When was the
    Association founded?").

    A message that calls the whole question "this part", or quotes words the user never wrote, reads as the
    guard contradicting itself.
    """
    part = reply.strip().splitlines()[0].strip(" \"'\u201c\u201d") if reply.strip() else ""
    words = key_words(part)
    asked = stems(question)
    if not words or len(part.split()) > MAX_PART_WORDS or sum(stem(w) in asked for w in words) < 0.8 * len(words):
        return None
    if stems(part) >= asked:
        return None
    return part if part.endswith("?") else part.rstrip(".") + "?"


def uncovered_clause(question: str, documents: Sequence[Document]) -> str | None:
    """For a question of several clauses ("How many eggs ..., and how many drones ...?"), the clause whose
    content words the passages hold least, when they lack some of them; None for a single clause or when
    every clause is covered as well as the others. Used when the model names no real part."""
    clauses = question_parts(question)
    if not clauses:
        return None
    held = set().union(*(stems(sanitise(doc.page_content)[0]) for doc in documents)) if documents else set()
    covered = [len(stems(clause) & held) / len(stems(clause)) for clause in clauses]
    worst = min(range(len(clauses)), key=covered.__getitem__)
    if covered[worst] >= 1.0 or covered.count(covered[worst]) > 1:
        return None
    return clauses[worst]


def _holds(sentence: str, part: str) -> bool:
    """The sentence states what the part asks about: its content words (stemmed), except a word after "how"
    ("how fast", "how deep"), which names the quantity asked for; the sentence must then give a figure
    ("more than ten kilometres a year") instead, since an answer seldom repeats the word."""
    content = key_words(part)
    measures = {after for before, after in pairwise(tokens(part)) if before == "how"} & set(content)
    wanted = {stem(word) for word in content if word not in measures}
    return wanted <= stems(sentence) and (not measures or states_number(sentence))


def closest_sentence(question: str, documents: Sequence[Document]) -> tuple[int, str, str] | None:
    """The passage sentence that shares the most content words with the question, when it touches the question
    (`_touches`): (label, source, text). Ties go to the higher-ranked passage; None when no sentence touches
    it, so a message never quotes a non sequitur ("The hexagon is an economical shape" for "How much honey
    does a hive produce?")."""
    asked = _content(question)
    parts = [_content(part) for part in question_parts(question)] or [asked]
    found = []
    held: list[set[str]] = []
    for label, doc in enumerate(documents, start=1):
        text = sanitise(doc.page_content)[0]
        found += [
            (label, str(doc.metadata.get("source", "unknown")), sentence, _content(sentence))
            for sentence in sentences(text)
        ]
        held.append(_content(text))
    topic = {word for word in asked if 2 * sum(word in words for words in held) >= len(held) > 1}
    touching = [entry for entry in found if any(_touches(part, entry[3], topic) for part in parts)]
    if not touching:
        return None
    label, source, sentence, _ = max(touching, key=lambda entry: (len(entry[3] & asked), -entry[0]))
    return label, source, excerpt(sentence)


def touches(question: str, documents: Sequence[Document]) -> bool:
    """Some retrieved sentence touches the question: else the passages are about something else, and the reply
    is the refusal, not a clarifying message built on an unrelated sentence."""
    return closest_sentence(question, documents) is not None


def _content(text: str) -> set[str]:
    """The stems of the words that carry content, closed-class words aside."""
    return {stem(word) for word in key_words(text) if word not in FUNCTION_WORDS}


def _touches(part: set[str], sentence: set[str], topic: set[str]) -> bool:
    """The sentence shares more than half of a question part's content words; or at least a third, one of
    them beyond what half the passages hold (their common topic: "honeybee", "colony"). What sets a question
    apart ("diseases") is what a sentence that shares little else must speak to."""
    shared = part & sentence
    if 2 * len(shared) > len(part):
        return True
    return 3 * len(shared) >= len(part) and bool(shared - topic)


def clarifying_message(question: str, documents: Sequence[Document], reply: str) -> str:
    """The part the passages do not answer (when the model named a real part), the closest sentence they
    hold (with its source), and a request. When there is no such part, or the quoted sentence states what the
    part asks about, the message does not claim the passages leave it open: it shows what they say and asks
    whether that is what the user means."""
    part = unanswered_part(question, reply) or uncovered_clause(question, documents)
    closest = closest_sentence(question, documents)
    if part is not None and closest is not None and _holds(closest[2], part):
        part = None  # the sentence quoted states what the part asks about: not called missing
    quoted = None if closest is None else f'[{closest[0]}] ({closest[1]}): "{closest[2]}"'
    if part is not None:
        lines = [f'The documents I found do not answer this part of your question: "{part}"']
        if quoted:
            lines.append(f"The closest they come is {quoted}")
        lines.append("Could you narrow the question, or point me to a document that covers it?")
        return "\n".join(lines)
    if quoted is None:
        return (
            "The documents I found do not seem to answer your question as asked. Could you narrow it, or point "
            "me to a document that covers it?"
        )
    return "\n".join(
        [
            "The documents I found may not answer your question exactly as asked.",
            f"What they say closest to it is {quoted}",
            "Is that what you mean? If not, could you narrow the question, or point me to a document that covers it?",
        ]
    )


def unsupported_message(question: str, documents: Sequence[Document], unsupported: Sequence[str]) -> str:
    """In place of an answer that stated something its passages lack (`grounding.py`): what kind of detail
    was withheld (not the detail itself), what the passages say closest to the question, and a request."""
    lines = [f"The answer I drafted stated {_what(unsupported)} that the documents do not say, so I have left it out."]
    if (closest := closest_sentence(question, documents)) is not None:
        label, source, sentence = closest
        lines.append(f'What they say closest to your question is [{label}] ({source}): "{sentence}"')
        lines.append("Is that what you wanted to know? If not, could you narrow the question?")
    else:
        lines.append("Could you narrow the question, or point me to a document that covers it?")
    return "\n".join(lines)


def _what(unsupported: Sequence[str]) -> str:
    """What kind of item was withheld, without repeating it: the user should not read the invented detail."""
    kinds = {"a detail" if kind == "word" else f"a {kind}" for kind in map(item_kind, unsupported)}
    return " and ".join(sorted(kinds)) if len(kinds) < 3 else "details"
