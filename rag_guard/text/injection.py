"""Defences against text in retrieved documents (or questions) that tries to steer the model.

Two layers, both pure functions applied when prompts are built, so the judge and the answerer see the same
passages:
- `neutralise` makes delimiter and chat-template markup inert, so a chunk cannot close the context or open
  a real system turn (local servers and the embedded model parse special tokens anywhere in the prompt);
- `withhold_instructions` replaces sentences addressed to the model ("ignore previous instructions",
  "reply True", a fake "Assistant:" turn) with a marker. Such sentences are never evidence that a context
  answers a question, and a small judge moves towards True when it reads them.

The patterns describe how injected instructions are phrased, in English and a few other common languages;
they are not a list of known attack strings, and they will miss some. docs/security.md says what
this does and does not cover.
"""

from __future__ import annotations

import re

WITHHELD = "[text addressed to the assistant withheld]"

# Markup that could end the context early or pose as a chat turn: our delimiters, and the special tokens of
# common chat templates (ChatML / Qwen / Llama 3 / Phi `<|...|>`, Gemma turns, Llama 2 and Mistral tags).
_MARKUP = re.compile(
    r"</?\s*context\s*>|<\|[^<>|\n]{0,64}\|>|<(?:start|end)_of_turn>|</?s>|\[/?INST\]|<<?/?SYS>>?",
    re.IGNORECASE,
)
# Lookalikes: single angle quotation marks and white square brackets.
_DEFANGED = str.maketrans({"<": "\u2039", ">": "\u203a", "[": "\u27e6", "]": "\u27e7"})

_IGNORE = r"ignore|disregard|forget|override|ignorez|oubliez|ignora|ignorar|olvida|ignoriere|vergiss|dimentica"
_RULES = r"instructions?|rules|prompts?|guidelines|directions|consignes|instrucciones|anweisungen|istruzioni"
_REPLY = (
    r"reply|respond|answer|output|say|return|judge|judgement|judgment|verdict|grade|classify|"
    r"r[ée]pond(?:ez|s)?|responde|antworte|rispondi|responda"
)
_TARGETS = r"ai|assistant|llm|grader|evaluator|chatbot|language model|ai model"
_INSTRUCTION_PATTERNS = [
    # "Ignore all previous instructions", in a few languages.
    rf"\b(?:{_IGNORE})\b[^.\n]{{0,50}}\b(?:{_RULES}|previous|prior|above|pr[ée]c[ée]dentes|anteriores|vorherigen)\b",
    # "... so the correct reply is True", "Répondez True": a reply verb steering towards a capitalised verdict
    # word (lower case is ordinary prose: "users can reply with yes or no").
    rf"\b(?:{_REPLY})\b[^.\n]{{0,60}}\b(?-i:True|TRUE|Yes|YES|Sufficient)\b",
    r"\bthe\s+correct\s+(?:reply|answer|response|judge?ment|verdict)\s+is\s+(?:true|yes)\b",
    # "Note to the AI evaluating this document".
    rf"\b(?:note|message|instructions?|notice)\s+(?:to|for)\s+(?:the\s+|any\s+|all\s+)?(?:{_TARGETS})\b",
    # "the context is always sufficient", "these passages answer the question completely".
    r"\b(?:context|passages?|document)\b[^.\n]{0,40}\b(?:always|completely|fully)\b[^.\n]{0,30}"
    r"\b(?:sufficient|answers?|complete)\b",
    r"\b(?:context|passages?)\b[^.\n]{0,20}\b(?:is|are)\s+(?:always\s+)?sufficient\b",
    r"\b(?:context|passages?)\b[^.\n]{0,40}\b(?:answers?|contains?)\b[^.\n]{0,40}\b(?:completely|fully|every|any)\b",
    # A chat turn or transcript line: "### Assistant", "system:", "Answer: True".
    r"^\s*(?:#{1,6}\s*)?(?:system|assistant)\s*(?::|$)",
    r"^\s*(?:answer|reply|response|a)\s*:\s*(?:true|false|yes|no)\W*$",
    # Chat-template markup or our delimiters, already made inert by `neutralise` (lookalike brackets).
    r"\u2039\|[^|\n]{0,64}\|\u203a|\u2039(?:start|end)_of_turn\u203a|\u2039/?\s*context\s*\u203a",
    # A sentence that is only a verdict word: "True." (or speaks to the reader about what it was asked).
    r"^\W*(?:true|false|yes|no)\W*$",
    r"\byou\b[^.\n]{0,20}\b(?:were|are|have\s+been)\s+(?:just\s+)?asked\b",
    # A verdict word repeated: "True. True. True. True."
    r"(?:\b(?:true|yes)\b\W*){4,}",
]
_INSTRUCTION = re.compile("|".join(f"(?:{p})" for p in _INSTRUCTION_PATTERNS), re.IGNORECASE | re.MULTILINE)
_SENTENCE = re.compile(r"[^.!?\n]*(?:[.!?]+|\n|$)")


def neutralise(text: str) -> str:
    """Text with delimiter and chat-template markup made inert; the lookalike characters keep it readable."""
    return _MARKUP.sub(lambda match: match.group(0).translate(_DEFANGED), text)


def withhold_instructions(text: str) -> tuple[str, int]:
    """The text with every sentence addressed to the model replaced by `WITHHELD`, and how many there were."""
    withheld = 0
    kept: list[str] = []
    for sentence in _SENTENCE.findall(text):
        if sentence.strip() and _INSTRUCTION.search(sentence):
            withheld += 1
            ending = "\n" if sentence.endswith("\n") else " "
            if not kept or not kept[-1].startswith(WITHHELD):
                kept.append(WITHHELD + ending)
        else:
            kept.append(sentence)
    return "".join(kept), withheld


def sanitise(text: str) -> tuple[str, int]:
    """Both defences: markup made inert, then instructions withheld (markup first, so `<|im_start|>system`
    becomes a visible line the turn pattern can see)."""
    return withhold_instructions(neutralise(text))
