import pytest

from rag_guard.conversation.rewrite import (
    ambiguity,
    narrowed,
    needs_rewrite,
    read_rewrite,
    rewrite_prompt,
    same_question,
)
from rag_guard.conversation.turns import Turn, mark_clarifying

VASA = [Turn("user", "Who designed the Vasa?"), Turn("assistant", "Henrik Hybertsson [1].")]
SHIPS = [Turn("user", "Which was longer, the Vasa or the Mary Rose?"), Turn("assistant", "The Vasa [1].")]


@pytest.mark.parametrize("question", ["When did it sink?", "And the Mary Rose?", "How many guns?", "Who sailed there?"])
def test_a_follow_up_that_refers_back_or_names_nothing_is_rewritten(question):
    assert needs_rewrite(question, VASA)


@pytest.mark.parametrize(
    ("question", "history"),
    [("When did it sink?", []), ("Who commanded the Batavia?", VASA), ("When did it sink?", VASA[1:])],
)
def test_a_first_turn_or_a_question_that_stands_alone_is_not(question, history):
    assert not needs_rewrite(question, history)


def test_a_singular_reference_after_a_question_naming_several_things_is_ambiguous():
    assert ambiguity("When did she sink?", SHIPS) == ["Vasa", "Mary Rose"]
    assert ambiguity("When did the Vasa sink?", SHIPS) == []
    assert ambiguity("When did she sink?", VASA) == []
    assert ambiguity("When did they sink?", SHIPS) == []  # both: nothing to choose


def test_the_prompt_holds_the_last_turns_without_the_mark_and_the_follow_up():
    history = [*VASA, Turn("user", "How long was it?"), Turn("assistant", mark_clarifying("Which length?"))]
    prompt = rewrite_prompt("the hull", history)[-1].text
    assert "User: Who designed the Vasa?" in prompt and "Assistant: Which length?" in prompt
    assert "\u2063" not in prompt and prompt.rstrip().endswith("Rewritten question:")
    assert "Last question: the hull" in prompt


@pytest.mark.parametrize(
    ("reply", "question"),
    [
        ("When did the Vasa sink?", "When did the Vasa sink?"),
        ('Rewritten question: "When did the Vasa sink"\nExplanation: it is the Vasa.', "When did the Vasa sink?"),
        ("In what year did the Vasa sink?", "In what year did the Vasa sink?"),
        ("", "When did it sink?"),
        ("x" * 400, "When did it sink?"),
    ],
)
def test_the_reply_is_read_as_one_question_or_the_question_stays_as_typed(reply, question):
    assert read_rewrite(reply, "When did it sink?").question == question


def test_questions_compare_without_case_spacing_or_punctuation():
    assert same_question("When did the Vasa sink?", " when did the vasa sink ")
    assert not same_question("When did the Vasa sink?", "When did it sink?")


def test_a_reply_that_answers_instead_of_asking_leaves_the_question_as_typed():
    assert read_rewrite("John Boyd Dunlop was a veterinarian?", "What was his profession?").question == (
        "What was his profession?"
    )


def test_a_reply_to_a_clarifying_question_is_always_rewritten_and_a_full_question_never():
    assert needs_rewrite("When was Voyager 1 launched? (Only the launch date.)", [], chained=True)
    assert not needs_rewrite("What is oven spring?", VASA)


@pytest.mark.parametrize(
    ("chained", "parts"),
    [
        (
            "Who commanded the Batavia, and how many guns did the Vasa carry? (Just the guns, please.)",
            "How many guns did the Vasa carry?",
        ),
        (
            "What causes neap tides, and at what time is high tide in Boston? (the cause of neap tides)",
            "What causes neap tides?",
        ),
        (
            "Who invented the safety bicycle, and how much did a Rover cost? (the inventor, please)",
            "Who invented the safety bicycle?",
        ),
    ],
)
def test_a_reply_that_picks_parts_of_the_question_by_their_words_narrows_it_to_them(chained, parts):
    assert narrowed(chained) == parts


@pytest.mark.parametrize(
    "chained",
    [
        "How many guns did she carry? (the Vasa)",  # names a thing: the writer reads it
        "Who built the Vasa, and how many guns did she carry? (both)",  # picks no part by its words
        "Who built the Vasa, and how many guns did it carry? (the guns)",  # the part refers back
        "When was the Vasa launched, and when was the Mary Rose launched? (launched)",  # picks all
        "How many guns did the Vasa carry?",  # no reply
    ],
)
def test_a_reply_that_picks_no_part_alone_is_left_to_the_writer(chained):
    assert narrowed(chained) is None
