import pytest

from rag_guard.evaluation.answer_scoring import (
    ScoredText,
    answer_quality,
    cites,
    contains,
    names,
    score_answer,
    token_f1,
)
from rag_guard.text.words import normalise


def test_normalise_drops_case_punctuation_articles_and_citations():
    assert normalise("The Bay of Fundy, in Canada [1].") == "bay of fundy in canada"
    assert normalise("\u201cCarbon dioxide\u201d \u2013 mostly [1, 2]") == "carbon dioxide mostly"


def test_a_citation_is_not_read_as_a_number():
    assert not contains("The mission lasted twelve years [1].", "1")


def test_containment_takes_the_gold_words_in_any_order():
    assert contains("Karl Drais built it in 1817 [1].", "Karl Drais 1817")
    assert not contains("Karl Drais built it [1].", "Karl Drais 1817")


def test_a_number_word_and_its_digits_are_the_same_answer_but_an_ordinal_is_not_a_count():
    assert contains("The SNP took 8 seats from the Liberal Democrats [2].", "eight")
    assert contains("Eight seats [2].", "8")
    assert not contains("The SNP took 9 seats [2].", "eight")
    assert not contains("He was the first king [1].", "1")


def test_any_of_several_gold_answers_is_right():
    gold = ["plutonium-238", "radioisotope thermoelectric generators"]
    assert contains("Radioisotope thermoelectric generators power them [1].", gold)
    assert contains("Decaying plutonium-238 [2].", gold)
    assert not contains("Solar panels.", gold)


def test_token_f1_is_squad_style_and_takes_the_best_gold():
    assert token_f1("20 August 1977", "20 August 1977") == 1.0
    assert token_f1("It launched on 20 August 1977 [1].", "20 August 1977") == pytest.approx(
        2 / 3
    )  # precision 3/6, recall 1
    assert token_f1("Neptune", ["Uranus", "Neptune"]) == 1.0
    assert token_f1("nothing alike", "20 August 1977") == 0.0


def test_cites_needs_a_bracketed_number():
    assert cites("Yes, as [2] says.")
    assert not cites("Yes, as the passage says.")


def test_a_message_names_the_missing_part_by_its_key_words_and_their_stems():
    assert names("The passages do not give the costs of the mission.", "mission cost")
    assert names("They say nothing about how many drones a colony raises in a year.", "drones per year")
    assert not names("They say nothing about drones.", "drones per year")
    assert not names("Anything at all.", "how much")  # a phrase of filler names nothing


def test_an_answered_unanswerable_question_is_wrong_whatever_it_says():
    scored = score_answer("20 August 1977 [1].", answerable=False, gold="20 August 1977")
    assert scored == ScoredText(right=False, f1=0.0, cited=True, answerable=False)


def test_an_answerable_question_without_gold_is_not_scored():
    assert score_answer("Something [1].", answerable=True, gold=None) == ScoredText(cited=True, answerable=True)


def test_answer_quality_counts_right_f1_uncited_and_named():
    scores = [
        score_answer("20 August 1977 [1].", True, "20 August 1977"),
        score_answer("In 1977.", True, "20 August 1977"),
        score_answer("Three lines [2].", False, None),
        ScoredText(names_missing=True),
        ScoredText(names_missing=False),
        ScoredText(names_missing=True),
    ]
    quality = answer_quality(scores)
    assert quality.answers_scored == 3
    assert quality.answers_right == pytest.approx(1 / 3)
    assert quality.answer_f1_mean == pytest.approx((1.0 + 0.4 + 0.0) / 3)  # "in 1977": precision 1/2, recall 1/3
    assert quality.answers_uncited == 1
    assert quality.missing_labelled == 3
    assert quality.missing_named == pytest.approx(2 / 3)


def test_answer_quality_of_nothing_answered_is_undefined_not_zero():
    quality = answer_quality([])
    assert quality.answers_right is None and quality.answer_f1_mean is None and quality.missing_named is None


def test_withheld_drafts_are_counted_apart_from_the_answers_shown():
    right = score_answer("20 August 1977 [1].", True, "20 August 1977")
    invented = score_answer("2000 eggs [1].", True, "over a thousand").model_copy(
        update={"unsupported": True, "withheld": True}
    )
    gate_error = score_answer("1977 [1].", False, None)
    quality = answer_quality([right, invented, gate_error], answerable=4)
    assert quality.answers_scored == 2 and quality.answers_right == 0.5
    assert quality.answers_right_answerable == 1.0
    assert (quality.answers_unsupported, quality.answers_unsupported_shown) == (1, 0)
    assert (quality.answers_withheld, quality.withheld_wrong, quality.withheld_right) == (1, 1, 0)
    assert quality.coverage_after_checks == 0.25
