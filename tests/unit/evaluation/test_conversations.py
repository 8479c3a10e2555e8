from pathlib import Path

import pytest

from rag_guard.errors import ConfigError
from rag_guard.evaluation.conversations import LabelledConversation, evaluate_conversations, load_conversations
from tests.unit.conversation.test_follow_ups import model, rag

CONVERSATIONS = [
    LabelledConversation.model_validate(
        {
            "name": "ellipsis",
            "turns": [
                {"question": "When did Voyager 2 launch?", "answerable": True, "kind": "first"},
                {
                    "question": "And Voyager 1?",
                    "standalone": "When did Voyager 1 launch?",
                    "answerable": True,
                    "kind": "ellipsis",
                },
            ],
        }
    ),
    LabelledConversation.model_validate(
        {
            "name": "ambiguous",
            "turns": [
                {"question": "Which went farther, Voyager 1 or Pioneer 10?", "answerable": True, "kind": "first"},
                {"question": "When did it launch?", "standalone": None, "kind": "ambiguous"},
            ],
        }
    ),
]


def test_each_follow_up_is_scored_against_its_standalone_question_and_an_ambiguous_one_by_the_question_back():
    report = evaluate_conversations(rag(model()), CONVERSATIONS)
    assert report.conversations == 2 and report.follow_ups == 2
    assert report.agreement == 1.0 and report.unanswerable_answered == 0
    assert (report.ambiguous, report.ambiguous_asked) == (1, 1)
    assert report.rewrite_s_first_turn == 0.0 and report.rewrite_s_follow_up > 0
    follow_up = report.rows[1]
    assert follow_up.judged == "When did Voyager 1 launch?" and follow_up.standalone_decision == follow_up.decision


def test_the_shipped_conversations_file_loads_and_labels_every_follow_up():
    conversations = load_conversations(Path(__file__).resolve().parents[3] / "bench/sets/conversations.jsonl")
    assert len(conversations) >= 30
    for conversation in conversations:
        assert conversation.turns[0].kind == "first"
        for turn in conversation.turns[1:]:
            assert (turn.standalone is None) == (turn.kind == "ambiguous")


def test_a_bad_line_is_named(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text('{"name": "x", "turns": []}\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="line 1"):
        load_conversations(path)
