import pytest

from rag_guard.conversation.turns import CLARIFY_MARK, Turn, conversation_of, mark_clarifying, question_from_turns
from rag_guard.errors import InvalidQuestionError


def user(text: str) -> Turn:
    return Turn("user", text)


def assistant(text: str) -> Turn:
    return Turn("assistant", text)


def guard_asks(text: str) -> Turn:
    return Turn("assistant", mark_clarifying(text))


def test_a_single_user_turn_is_the_question_with_no_history():
    conversation = conversation_of([Turn("system", "Be brief."), user(" When did Voyager 2 launch? ")])
    assert conversation.question == "When did Voyager 2 launch?" and conversation.history == []


def test_a_reply_to_the_guard_s_clarifying_question_is_joined_to_the_question_it_clarifies():
    turns = [user("When did it launch?"), guard_asks("Which spacecraft do you mean?"), user("Voyager 2")]
    assert question_from_turns(turns) == "When did it launch? (Voyager 2)"


def test_a_chain_of_clarifications_keeps_every_reply_in_order():
    turns = [
        user("How much did it cost?"),
        guard_asks("Which mission?"),
        user("Voyager"),
        guard_asks("Which of the two probes?"),
        user("Voyager 1"),
    ]
    assert question_from_turns(turns) == "How much did it cost? (Voyager; Voyager 1)"


def test_an_answer_ending_in_a_question_mark_is_not_taken_for_a_clarifying_question():
    turns = [
        user("Who designed the Vasa?"),
        assistant("Henrik Hybertsson [1]. Anything else about the ship?"),
        user("Just the guns, please."),
    ]
    conversation = conversation_of(turns)
    assert conversation.question == "Just the guns, please."
    assert conversation.history == turns[:2]


def test_a_new_question_after_a_clarifying_question_starts_a_new_chain():
    turns = [
        user("When did it sink?"),
        guard_asks("Which ship do you mean: the Vasa or the Mary Rose?"),
        user("Who commanded the Batavia?"),
    ]
    conversation = conversation_of(turns)
    assert conversation.question == "Who commanded the Batavia?"
    assert conversation.history == [user("When did it sink?"), assistant(turns[1].content)]


def test_the_mark_survives_a_client_that_trims_the_reply():
    asked = mark_clarifying("Could you narrow the question?") + "\n "
    turns = [user("How much?"), assistant(asked.strip(" \n")), user("the Vasa's guns")]
    assert question_from_turns(turns) == "How much? (the Vasa's guns)"
    assert asked.strip(" \n").endswith(CLARIFY_MARK)


def test_the_history_is_the_turns_before_the_chain():
    turns = [
        user("Who designed the Vasa?"),
        assistant("Henrik Hybertsson [1]."),
        user("How many guns did it carry?"),
        guard_asks("Which guns: bronze or iron?"),
        user("bronze"),
    ]
    conversation = conversation_of(turns)
    assert conversation.question == "How many guns did it carry? (bronze)"
    assert conversation.history == turns[:2]


@pytest.mark.parametrize("turns", [[], [Turn("system", "hi")], [user("q?"), assistant("a.")]])
def test_a_history_that_does_not_end_with_the_user_is_rejected(turns):
    with pytest.raises(InvalidQuestionError, match="last message"):
        question_from_turns(turns)
