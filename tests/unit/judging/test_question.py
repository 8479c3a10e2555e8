import pytest

from rag_guard.errors import InvalidQuestionError
from rag_guard.judging.question import MAX_QUESTION_CHARS, Question, clean_question


def test_a_question_is_stripped_and_marked_as_cleaned():
    cleaned = clean_question("  When did Voyager 2 launch?\n")
    assert cleaned == "When did Voyager 2 launch?" and isinstance(cleaned, Question)


def test_a_cleaned_question_is_passed_on_as_it_is_by_every_later_entry():
    cleaned = clean_question(" Why? ")
    assert clean_question(cleaned) is cleaned


@pytest.mark.parametrize(
    ("given", "says"),
    [
        ("   ", "empty"),
        ("x" * (MAX_QUESTION_CHARS + 1), "characters long"),
        (b"\xff\xfe", "not valid UTF-8"),
        (42, "must be text"),
        ("caf\udce9", "terminal's encoding"),
    ],
)
def test_unusable_input_says_what_is_wrong(given, says):
    with pytest.raises(InvalidQuestionError, match=says):
        clean_question(given)
