from langchain_core.documents import Document

from rag_guard.judging import Decision, SufficiencyGuard
from rag_guard.judging.prompts import EXTRACT_INSTRUCTION
from rag_guard.judging.quote import find_quote
from rag_guard.pipeline import GuardedRAG
from tests.fakes import DOCS, FakeChatModel, FixedRetriever, judge_then_answer

TIDES = [
    Document(
        page_content="# Tides\n\nSpring tides come when the Sun and Moon line up.", metadata={"source": "tides.md"}
    ),
    Document(
        page_content="The largest tidal range in the world, about 16 metres, occurs in the Bay of Fundy in Canada.",
        metadata={"source": "tides.md"},
    ),
]


def test_a_span_of_a_passage_is_quoted_with_its_sentence_and_citation():
    quote = find_quote("the Bay of Fundy.\nMore words", TIDES)
    assert (quote.label, quote.span) == (2, "the Bay of Fundy")
    assert quote.answer() == (
        'the Bay of Fundy [2]: "The largest tidal range in the world, about 16 metres, occurs in the Bay of Fundy '
        'in Canada."'
    )


def test_a_span_in_several_sentences_is_quoted_from_the_one_beside_the_question_s_words():
    passage = Document(
        page_content="The Sun raises tides too, but less than the Moon. At new moon the Sun and the Moon line up. "
        "These are spring tides. At quarter moon the Sun pulls at right angles."
    )
    quote = find_quote("the Sun", [passage], "What causes spring tides?")
    assert quote.sentence == "At new moon the Sun and the Moon line up."
    assert find_quote("the Sun", [passage]).sentence == "The Sun raises tides too, but less than the Moon."


def test_case_punctuation_and_hyphens_do_not_hide_a_span():
    assert find_quote('"Sun and Moon line-up"', TIDES).label == 1


def test_no_quote_for_an_abstention_a_paraphrase_or_nothing():
    assert find_quote("unanswerable", TIDES) is None
    assert find_quote("Unanswerable.", TIDES) is None
    assert find_quote("the Sun and the Moon pulling together", TIDES) is None
    assert find_quote("", TIDES) is None


def quoting_pipeline(span: str) -> GuardedRAG:
    gate = judge_then_answer(0.9, answer="It launched on 20 August 1977 [1].")

    def reply(messages, kwargs):
        if kwargs.get("max_tokens", 0) > 1 and EXTRACT_INSTRUCTION in messages[-1].text:
            return span, None
        return gate.reply(messages, kwargs)

    model = FakeChatModel(reply=reply)
    guard = SufficiencyGuard(judge=model, answer_threshold=0.6, clarify_threshold=0.3)
    return GuardedRAG(retriever=FixedRetriever(documents=DOCS), guard=guard, answerer=model, answer_style="quote")


def test_the_quote_style_answers_with_the_span_and_its_sentence():
    result = quoting_pipeline("20 August 1977").invoke("When did Voyager 2 launch?")
    assert result.decision is Decision.ANSWER
    assert result.answer == '20 August 1977 [1]: "Voyager 2 launched on 20 August 1977."'
    assert result.answer_check.passed and result.answer_check.checked == ["20 August 1977"]


def test_a_quote_no_passage_holds_falls_back_to_the_free_answer():
    result = quoting_pipeline("in the summer of 1977").invoke("When did Voyager 2 launch?")
    assert result.decision is Decision.ANSWER
    assert result.answer == "It launched on 20 August 1977 [1]."
