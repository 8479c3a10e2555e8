import pytest

from rag_guard.reply.answer_text import restates_question, tidy_answer

QUESTION = "When was Voyager 2 launched?"


@pytest.mark.parametrize(
    ("answer", "tidy"),
    [
        (
            "When was Voyager 2 launched? [2] (source: articles/voyager.md) It was launched on 20 August 1977.",
            "It was launched on 20 August 1977 [2].",
        ),
        ("Voyager 2 launched in 1977 [2] (source: articles/voyager.md).", "Voyager 2 launched in 1977 [2]."),
        ("Question: When was Voyager 2 launched?\nIt launched in 1977 [1].", "It launched in 1977 [1]."),
        ("when was voyager 2 launched? It launched in 1977 [1].", "It launched in 1977 [1]."),
        ("The water content falls to 17 percent. [n] [context] [3]", "The water content falls to 17 percent. [3]"),
        ("It was launched on 20 August 1977 [2].", "It was launched on 20 August 1977 [2]."),
    ],
)
def test_the_answer_loses_echoes_and_source_notes_and_keeps_its_citations(answer, tidy):
    assert tidy_answer(answer, QUESTION) == tidy


def test_an_answer_that_is_only_the_question_is_left_as_it_is():
    assert tidy_answer("When was Voyager 2 launched", QUESTION) == "When was Voyager 2 launched"


@pytest.mark.parametrize(
    ("answer", "question"),
    [
        ("Korea border Kublai's territory. [2]", "Where did Korea border Kublai's territory?"),
        ("Voyager 2 was launched [1].", "When was Voyager 2 launched?"),
        ("The Normans' religion [1]", "What was the Norman religion?"),
    ],
)
def test_an_answer_made_of_the_questions_words_restates_it(answer, question):
    assert restates_question(answer, question)


@pytest.mark.parametrize(
    ("answer", "question"),
    [
        ("It launched on 20 August 1977 [2].", "When was Voyager 2 launched?"),
        ("The Normans were Christian [1].", "Were the Normans Christian?"),  # yes/no: the restatement affirms
        ("Rollo [1]", "Who ruled first, Rollo or Richard?"),  # a choice is answered with the question's words
        ("[1]", "When was Voyager 2 launched?"),  # no words at all: nothing restated
    ],
)
def test_an_answer_that_adds_a_word_or_answers_a_yes_no_or_choice_question_does_not_restate_it(answer, question):
    assert not restates_question(answer, question)
