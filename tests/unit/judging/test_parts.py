import pytest

from rag_guard.judging.parts import MAX_PARTS, question_parts, standalone_parts


@pytest.mark.parametrize(
    ("question", "parts"),
    [
        (
            "When was Voyager 1 launched, and how much did the mission cost?",
            ["When was Voyager 1 launched?", "How much did the mission cost?"],
        ),
        (
            "Who invented the safety bicycle and what did a Rover cost?",
            ["Who invented the safety bicycle?", "What did a Rover cost?"],
        ),
        ("Is the bridge open; when was it built?", ["Is the bridge open?", "When was it built?"]),
        (
            "When was Voyager 1 launched? How much did the mission cost?",
            ["When was Voyager 1 launched?", "How much did the mission cost?"],
        ),
        (
            "How many arms does an octopus have, and how fast can it swim, and where does it live?",
            ["How many arms does an octopus have?", "How fast can it swim?", "Where does it live?"],
        ),
    ],
)
def test_a_question_that_asks_several_things_is_split_into_its_questions(question: str, parts: list[str]) -> None:
    assert question_parts(question) == parts


@pytest.mark.parametrize(
    "question",
    [
        "How many eggs a day can a honeybee queen lay in spring?",
        "Who built the Laufmaschine and when?",  # "when" alone cannot be judged
        "Who built the Laufmaschine, and in which year?",  # the second part does not open with a question word
        "What prominent South African family distilled brandy and were Huguenots?",  # two predicates, one question
        "The Normans were in Normandy, and when did they arrive?",  # a statement, then one question
    ],
)
def test_a_question_that_asks_one_thing_has_no_parts(question: str) -> None:
    assert question_parts(question) == []


def test_a_part_that_refers_back_to_another_is_not_judged_alone() -> None:
    question = "How many hearts does an octopus have, and why is its blood blue?"
    assert standalone_parts(question) == ["How many hearts does an octopus have?"]
    assert standalone_parts("What shape are the cells of the comb, and what are they made of?") == [
        "What shape are the cells of the comb?"
    ]
    assert standalone_parts("When was Voyager 1 launched, and how much did the mission cost?") == question_parts(
        "When was Voyager 1 launched, and how much did the mission cost?"
    )


def test_a_run_on_question_costs_at_most_max_parts_calls_and_none_twice() -> None:
    question = "Which probe launched first? " + "; which probe launched second" * 3 + "; who built the probes?"
    parts = standalone_parts(question)
    assert parts == ["Which probe launched first?", "Which probe launched second?", "Who built the probes?"]
    many = "; ".join(f"who built probe {n}" for n in range(10)) + "?"
    assert len(standalone_parts(many)) == MAX_PARTS
