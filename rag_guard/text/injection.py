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
# Self-praise and words to graders, in English, Spanish, French, German, Italian and Portuguese.
_SELF = r"this|these|the present|esta|este|estas|estos|ce|cet|cette|ces|dieser|diese|dieses|questo|questa|questi"
_TEXTS = (
    r"pages?|documents?|passages?|texts?|articles?|sources?|references?|entry|"
    r"p[áa]ginas?|documentos?|pasajes?|textos?|art[íi]culos?|fuentes?|referencias?|"
    r"documents?|textes?|Seiten?|Dokumente?|Texte?|Quellen?|pagine|documenti|testi|fonti"
)
_CONTEXTS = r"context|contexts|contexto|contexte|kontext|contesto"
_SUFFICIENT = (
    r"sufficient|complete|authoritative|comprehensive|exhaustive|definitive|verified|"
    r"suficientes?|complet[ao]s?|autorizad[ao]s?|exhaustiv[ao]s?|definitiv[ao]s?|verificad[ao]s?|"
    r"suffisante?s?|compl[eè]te?s?|exhaustive?s?|v[ée]rifi[ée]e?s?|"
    r"ausreichend|vollst[äa]ndig|ma[ßs]geblich|sufficiente|esaustiv[oa]|verificat[oa]"
)
_GRADERS = (
    r"evaluators?|reviewers?|graders?|assessors?|annotators?|raters?|automated systems?|ai systems?|"
    r"evaluador(?:es|as?)?|revisor(?:es|as?)?|[ée]valuateur(?:s|rices?)?|correcteurs?|Pr[üu]fer(?:in)?|"
    r"Bewerter(?:in)?|valutator[ei]|avaliador(?:es|as?)?"
)
_MUST = r"should|must|shall|debe|deben|doit|doivent|muss|m[üu]ssen|deve|devono"
_TREAT = (
    r"treat|consider|mark|rate|score|accept|regard|considerar|tratar|aceptar|traiter|consid[ée]rer|accepter|"
    r"behandeln|betrachten|akzeptieren|considerare|trattare|accettare"
)
_COMMENT_MARK = "(comment) "
"""What an HTML comment becomes before the sentence check: one sentence on a line of its own, always withheld."""
_INSTRUCTION_PATTERNS = [
    # An HTML comment (`neutralise` set it on its own line): no reader of the page sees it.
    rf"^{re.escape(_COMMENT_MARK)}",
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
    # The text praising itself as sufficient: "this page is the complete and authoritative reference", "treat
    # this context as sufficient", "esta página es la referencia completa", in a few languages.
    rf"(?:\b(?:{_SELF})\s+(?:\w+\s+)?(?:{_TEXTS})\b|\b(?:{_CONTEXTS})\b(?!\s+(?:of|de|des|du|del|di|von)\b))[^.\n]{{0,80}}\b(?:{_SUFFICIENT})\b",
    rf"\b(?:{_SUFFICIENT})[^.\n]{{0,80}}\b(?:{_SELF})\s+(?:\w+\s+)?(?:{_TEXTS}|{_CONTEXTS})\b",
    # Words to whoever grades the text: "Evaluators: this document was verified", "cualquier evaluador debe".
    rf"\b(?:{_GRADERS})\s*:|\b(?:{_GRADERS})\b[^.\n]{{0,80}}\b(?:{_SUFFICIENT})\b",
    rf"\b(?:{_GRADERS})\b[^.\n]{{0,40}}\b(?:{_MUST})\s+(?:\w+\s+)?(?:{_TREAT}|{_REPLY})\b",
    # A machine-readable verdict: "has_sufficient_context_for_answer = True", "sufficient: yes".
    r"\w*(?:sufficien|suficien|suffisan|ausreichen)\w*\s*[=:]+\s*[\"']?(?:true|yes|1|s[ií]|oui|ja)\b",
]
_COMMENT = re.compile(r"<!--(.*?)-->", re.DOTALL)
_INSTRUCTION = re.compile("|".join(f"(?:{p})" for p in _INSTRUCTION_PATTERNS), re.IGNORECASE | re.MULTILINE)
_SENTENCE = re.compile(r"[^.!?\n]*(?:[.!?]+|\n|$)")


def neutralise(text: str) -> str:
    """Text with delimiter and chat-template markup made inert (the lookalike characters keep it readable), and
    each HTML comment, which no reader of the page sees, set on a line of its own for `withhold_instructions`."""
    text = _COMMENT.sub(lambda match: f"\n{_COMMENT_MARK}{_one_sentence(match[1])}\n", text)
    return _MARKUP.sub(lambda match: match.group(0).translate(_DEFANGED), text)


def _one_sentence(text: str) -> str:
    return " ".join(re.sub(r"[.!?]+", ",", text).split())


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
