import math

from langchain_core.documents import Document
from langchain_core.messages import AIMessage

from rag_guard.judging import Decision, SufficiencyGuard
from rag_guard.judging.logprobs import TokenLogprob
from rag_guard.judging.prompts import EXTRACT_INSTRUCTION
from rag_guard.pipeline import GuardedRAG
from rag_guard.reply.policy import ReplySettings
from rag_guard.reply.quote import find_quote, read_quote, span_tokens
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


def test_a_span_of_the_question_s_own_words_is_no_answer():
    passage = [Document(page_content="Some complexity classes have complicated definitions, like NP and P.")]
    asked = "Complexity classes are generally classified into what?"
    assert find_quote("complexity classes", passage, asked).echoes
    assert find_quote("complexity classes", passage, "What is a complexity class classified into?").echoes
    assert not find_quote("NP and P", passage, asked).echoes
    assert not find_quote("complexity classes", passage).echoes  # no question: nothing to echo


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
    return GuardedRAG(
        retriever=FixedRetriever(documents=DOCS), guard=guard, answerer=model, reply=ReplySettings(answer_style="quote")
    )


def test_the_quote_style_answers_with_the_span_and_its_sentence():
    result = quoting_pipeline("20 August 1977").invoke("When did Voyager 2 launch?")
    assert result.decision is Decision.ANSWER
    assert result.answer == '20 August 1977 [1]: "Voyager 2 launched on 20 August 1977."'
    assert result.answer_check.passed and result.answer_check.checked == ["20 August 1977"]


def test_a_quote_no_passage_holds_falls_back_to_the_free_answer():
    result = quoting_pipeline("in the summer of 1977").invoke("When did Voyager 2 launch?")
    assert result.decision is Decision.ANSWER
    assert result.answer == "It launched on 20 August 1977 [1]."


def tokens(*pairs: tuple[str, float]) -> list[TokenLogprob]:
    return [TokenLogprob(token=token, logprob=math.log(p)) for token, p in pairs]


def test_the_span_s_tokens_stop_at_its_line_s_end():
    written = tokens(("\n", 0.9), ("Bay", 0.5), (" of", 0.99), (" Fundy", 0.8), (".\n", 0.7), ("More", 0.01))
    assert [t.token for t in span_tokens(written)] == ["Bay", " of", " Fundy", ".\n"]
    assert [t.token for t in span_tokens(tokens(("Fundy", 0.8), ("\nMore", 0.01)))] == ["Fundy"]


def test_a_quote_records_the_model_s_least_sure_word_of_the_span_and_its_joint_probability():
    written = tokens(("the", 0.9), (" Bay", 0.4), (" of", 0.95), (" Fundy", 0.8), ("\n", 0.9), ("More", 0.01))
    logprobs = {"content": [{"token": t.token, "logprob": t.logprob, "top_logprobs": []} for t in written]}
    quote = read_quote(AIMessage(content="the Bay of Fundy\nMore", response_metadata={"logprobs": logprobs}), TIDES)
    assert quote.label == 2
    assert quote.min_token_p == 0.4
    assert math.isclose(quote.joint_logprob, math.log(0.9 * 0.4 * 0.95 * 0.8))


def test_a_quote_without_logprobs_records_no_confidence():
    quote = read_quote(AIMessage(content="the Bay of Fundy"), TIDES)
    assert quote.label == 2 and quote.min_token_p is None and quote.joint_logprob is None


def test_a_span_that_repeats_the_question_leaves_its_sentence_to_answer_alone():
    result = quoting_pipeline("Voyager 2").invoke("When did Voyager 2 launch?")
    assert result.decision is Decision.ANSWER
    assert result.answer == '"Voyager 2 launched on 20 August 1977." [1]'
    assert result.answer_check.passed and "only repeated the question" in result.answer_check.reason
