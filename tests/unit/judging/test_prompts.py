from rag_guard.judging.prompts import FEW_SHOT, GUARD_INSTRUCTION, build_messages
from tests.fakes import DOCS

QUESTION = "When did Voyager 2 launch?"


def test_the_few_shot_examples_go_in_the_system_text_and_leave_the_question_turn_alone():
    plain = build_messages(QUESTION, DOCS, GUARD_INSTRUCTION)
    shown = build_messages(QUESTION, DOCS, GUARD_INSTRUCTION, few_shot=True)
    assert FEW_SHOT not in plain[0].text
    assert shown[0].text.endswith(FEW_SHOT)
    assert shown[1].text == plain[1].text


def test_instruction_first_puts_the_task_before_the_passages_and_the_reply_format_last():
    user = build_messages(QUESTION, DOCS, GUARD_INSTRUCTION, instruction_first=True)[1].text
    reply_line = GUARD_INSTRUCTION.rsplit("\n", 1)[-1]
    assert user.index("passages below") < user.index("Question:") < user.index("<context>")
    assert "passages above" not in user
    assert user.endswith(f"</context>\n\n{reply_line}")
