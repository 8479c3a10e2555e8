"""`rag-guard chat` and `ask --stream` in a pipe: follow-ups read in context, the verdict before the text."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from typer.testing import CliRunner

from rag_guard.cli import app, commands
from tests.unit.conversation.test_follow_ups import model, rag

REPO = Path(__file__).resolve().parents[2]


def test_chat_reads_a_follow_up_in_the_turns_before_it(monkeypatch):
    monkeypatch.setattr(commands, "build_pipeline", lambda settings: rag(model()))
    result = CliRunner().invoke(app, ["chat"], input="When did Voyager 2 launch?\nAnd Voyager 1?\n\n")
    assert result.exit_code == 0, result.output
    assert result.output.count("answer (p_sufficient 0.900)") == 2
    assert "Read as: When did Voyager 1 launch?" in result.output


def test_chat_asks_which_thing_an_ambiguous_follow_up_means(monkeypatch):
    monkeypatch.setattr(commands, "build_pipeline", lambda settings: rag(model()))
    turns = "Which went farther, Voyager 1 or Pioneer 10?\nWhen did it launch?\n"
    result = CliRunner().invoke(app, ["chat"], input=turns)
    assert "Which do you mean: Voyager 1 or Pioneer 10?" in result.output


STREAMING = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from rag_guard.cli import app, commands
    from rag_guard.judging.guard import SufficiencyGuard
    from rag_guard.pipeline import GuardedRAG
    from rag_guard.reply.policy import ReplySettings
    from tests.fakes import DOCS, FakeChatModel, FixedRetriever, openai_logprobs

    gate = Path(sys.argv[1])

    def reply(messages, kwargs):
        if kwargs.get("max_tokens") == 1:
            return "True", openai_logprobs({"True": 0.9, "False": 0.1})
        deadline = time.monotonic() + 30
        while not gate.exists() and time.monotonic() < deadline:  # the answer waits for the test to read
            time.sleep(0.05)
        return "It launched on 20 August 1977 [1].", None

    fake = FakeChatModel(reply=reply)
    guard = SufficiencyGuard(judge=fake, answer_threshold=0.7, clarify_threshold=0.45)
    settings = ReplySettings(answer_style="free", grounding=False)
    rag = GuardedRAG(retriever=FixedRetriever(documents=DOCS), guard=guard, answerer=fake, reply=settings)
    commands.build_pipeline = lambda settings: rag
    app(["ask", "--stream", "When did Voyager 2 launch?"])
    """
)


def test_ask_stream_into_a_pipe_prints_the_verdict_before_the_answer_is_written(tmp_path):
    gate = tmp_path / "gate"
    process = subprocess.Popen(
        [sys.executable, "-c", STREAMING, str(gate)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "NO_COLOR": "1"},
    )
    try:
        first = process.stdout.readline()  # blocks until the CLI flushes its first line into the pipe
        written_yet = gate.exists()
        gate.touch()
        rest, errors = process.communicate(timeout=60)
    finally:
        process.kill()
    assert first.startswith("answer (p_sufficient 0.900)") and not written_yet, errors
    assert "It launched on 20 August 1977 [1]." in rest
