import pytest

from rag_guard.judging.answer_text import tidy_answer

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
