from langchain_core.documents import Document

from rag_guard.judging.prompts import FEW_SHOT, GUARD_INSTRUCTION, build_messages, format_context
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


def test_a_passage_label_names_the_heading_it_sits_under_unless_the_text_opens_with_it():
    inside = Document(page_content="She sank in 1628.", metadata={"source": "ships.md", "heading": "The Vasa"})
    opening = Document(page_content="# The Vasa\nA warship.", metadata={"source": "ships.md", "heading": "The Vasa"})
    context = format_context([inside, opening, Document(page_content="Plain.", metadata={"source": "notes.txt"})])
    assert "[1] (source: ships.md, under: The Vasa)\nShe sank" in context
    assert "[2] (source: ships.md)\n# The Vasa" in context
    assert "[3] (source: notes.txt)\nPlain." in context
