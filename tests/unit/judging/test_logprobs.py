import math

import pytest

from rag_guard.judging.logprobs import (
    LogprobError,
    TokenLogprob,
    alternatives,
    answer_start,
    joint_logprob,
    p_true,
    parse_logprobs,
    perplexity,
    verdict_word,
)
from tests.fakes import openai_logprobs


def position(probs: dict[str, float]) -> TokenLogprob:
    return parse_logprobs(openai_logprobs(probs))[0]


def test_answer_start_sums_the_spellings_of_one_word():
    assert answer_start(position({"radio": 0.5, " Radio": 0.3, "nuclear": 0.2}), "unanswerable") == pytest.approx(0.8)


def test_answer_start_leaves_out_tokens_that_begin_the_abstain_word_without_renormalising():
    p = answer_start(position({"un": 0.5, " Un": 0.2, "Rollo": 0.2, "King": 0.1}), "unanswerable")
    assert p == pytest.approx(0.2)


def test_answer_start_is_zero_when_every_alternative_declines_or_holds_no_word():
    assert answer_start(position({"un": 0.7, "Un": 0.2, " ": 0.05, "**": 0.05}), "unanswerable") == 0.0


def test_answer_start_takes_a_one_letter_token_as_an_answer_not_as_declining():
    assert answer_start(position({"U": 0.6, "un": 0.4}), "unanswerable") == pytest.approx(0.6)


def test_p_true_normalises_over_true_and_false_only():
    assert p_true(position({"True": 0.6, "False": 0.2, "The": 0.2})) == pytest.approx(0.75)


def test_p_true_sums_spelling_variants():
    p = p_true(position({"True": 0.3, " true": 0.1, "Yes": 0.1, "False": 0.4, "no": 0.1}))
    assert p == pytest.approx(0.5 / 1.0)


def test_p_true_when_only_false_variants_present_is_zero():
    assert p_true(position({"False": 0.9, "The": 0.1})) == 0.0


def test_p_true_counts_the_chosen_token_once_when_it_repeats_in_top():
    raw = {
        "content": [
            {
                "token": "True",
                "logprob": math.log(0.5),
                "top_logprobs": [
                    {"token": "True", "logprob": math.log(0.5)},
                    {"token": "False", "logprob": math.log(0.5)},
                ],
            }
        ]
    }
    assert p_true(parse_logprobs(raw)[0]) == pytest.approx(0.5)


def test_p_true_is_stable_for_very_small_logprobs():
    raw = {
        "content": [
            {
                "token": "x",
                "logprob": -2000.0,
                "top_logprobs": [
                    {"token": "True", "logprob": -1000.0},
                    {"token": "False", "logprob": -1000.0 - math.log(3)},
                ],
            }
        ]
    }
    assert p_true(parse_logprobs(raw)[0]) == pytest.approx(0.75)


def test_p_true_without_any_verdict_token_raises():
    with pytest.raises(LogprobError, match="no True/False"):
        p_true(position({"The": 0.7, "Answer": 0.3}))


def test_p_true_when_every_verdict_token_has_zero_probability_raises():
    raw = {"content": [{"token": "The", "logprob": 0.0, "top_logprobs": [{"token": "True", "logprob": -math.inf}]}]}
    with pytest.raises(LogprobError):
        p_true(parse_logprobs(raw)[0])


@pytest.mark.parametrize("token", ["True", " true", "TRUE", "(True", "_true", "Yes", "yes.", "\ntrue"])
def test_verdict_word_recognises_true_spellings(token):
    assert verdict_word(token) is True


@pytest.mark.parametrize("token", ["False", " false", "No", "no!"])
def test_verdict_word_recognises_false_spellings(token):
    assert verdict_word(token) is False


@pytest.mark.parametrize("token", ["Truely", "not", "", "T", "None"])
def test_verdict_word_rejects_other_tokens(token):
    assert verdict_word(token) is None


def test_parse_accepts_ollama_bare_list():
    parsed = parse_logprobs([{"token": "True", "logprob": -0.1, "top_logprobs": [{"token": "False", "logprob": -2.4}]}])
    assert parsed[0].token == "True"
    assert parsed[0].top[0].token == "False"


@pytest.mark.parametrize(
    "raw",
    [
        None,
        {},
        {"content": None},
        {"content": []},
        [],
        "True",
        [{"logprob": -1}],
        [{"token": "a", "logprob": "x"}],
        [{"token": "a", "logprob": float("nan")}],
        [{"token": "a", "logprob": 0.5}],
        [{"token": "a", "logprob": True}],
        [{"token": "a", "logprob": -1, "top_logprobs": "oops"}],
        [42],
    ],
)
def test_parse_rejects_malformed_replies(raw):
    with pytest.raises(LogprobError):
        parse_logprobs(raw)


def test_parse_clamps_tiny_positive_rounding_to_zero():
    assert parse_logprobs([{"token": "True", "logprob": 1e-9}])[0].logprob == 0.0


def test_alternatives_are_linear_probabilities_most_likely_first():
    alts = alternatives(position({"False": 0.25, "True": 0.75}))
    assert list(alts) == ["True", "False"]
    assert alts["True"] == pytest.approx(0.75)


def test_joint_logprob_and_perplexity():
    tokens = [TokenLogprob(token="a", logprob=math.log(0.5)), TokenLogprob(token="b", logprob=math.log(0.5))]
    assert joint_logprob(tokens) == pytest.approx(math.log(0.25))
    assert perplexity(tokens) == pytest.approx(2.0)


def test_perplexity_of_nothing_raises():
    with pytest.raises(LogprobError):
        perplexity([])
