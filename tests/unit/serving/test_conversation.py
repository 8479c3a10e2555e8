import pytest

from rag_guard.errors import InvalidQuestionError
from rag_guard.serving.conversation import Turn, question_from_turns


def user(text: str) -> Turn:
    return Turn("user", text)


def assistant(text: str) -> Turn:
    return Turn("assistant", text)


def test_a_single_user_turn_is_the_question():
    assert question_from_turns([Turn("system", "Be brief."), user(" When did Voyager 2 launch? ")]) == (
        "When did Voyager 2 launch?"
    )


def test_a_reply_to_a_clarifying_question_is_joined_to_the_question_it_clarifies():
    turns = [user("When did it launch?"), assistant("Which spacecraft do you mean?"), user("Voyager 2")]
    assert question_from_turns(turns) == "When did it launch? (Voyager 2)"


def test_a_chain_of_clarifications_keeps_every_reply_in_order():
    turns = [
        user("How much did it cost?"),
        assistant("Which mission?"),
        user("Voyager"),
        assistant("Which of the two probes?"),
        user("Voyager 1"),
    ]
    assert question_from_turns(turns) == "How much did it cost? (Voyager; Voyager 1)"


def test_a_question_after_an_answer_starts_afresh():
    turns = [user("When did Voyager 2 launch?"), assistant("On 20 August 1977 [1]."), user("And Voyager 1?")]
    assert question_from_turns(turns) == "And Voyager 1?"


def test_a_question_after_a_refusal_starts_afresh():
    turns = [user("Who won in 2014?"), assistant("I can't answer that from the documents I have."), user("Why?")]
    assert question_from_turns(turns) == "Why?"


@pytest.mark.parametrize("turns", [[], [Turn("system", "hi")], [user("q?"), assistant("a.")]])
def test_a_history_that_does_not_end_with_the_user_is_rejected(turns):
    with pytest.raises(InvalidQuestionError, match="last message"):
        question_from_turns(turns)
