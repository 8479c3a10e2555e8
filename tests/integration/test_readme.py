"""The README's Python examples run as written, against the default model and a temporary store (and, for the
OpenAI client example, a running `rag-guard serve`)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

README = Path(__file__).resolve().parents[2] / "README.md"
EXAMPLES = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.DOTALL)
README_SERVER = "http://127.0.0.1:8000/v1"


README_AGENT_MODEL = 'ChatOllama(model="qwen2.5:7b")'


def test_readme_has_the_langchain_agent_and_openai_client_examples():
    assert len(EXAMPLES) == 4
    assert "GuardedRAG.from_config" in EXAMPLES[0]
    assert "SufficiencyGuard" in EXAMPLES[1]
    assert "GuardMiddleware" in EXAMPLES[2] and README_AGENT_MODEL in EXAMPLES[2]
    assert README_SERVER in EXAMPLES[3]


def run_example(code: str, capsys: pytest.CaptureFixture[str]) -> str:
    exec(compile(code, str(README), "exec"), {})
    printed = capsys.readouterr().out
    assert printed.strip()
    assert "answer" in printed or "refuse" in printed or "clarify" in printed
    return printed


@pytest.mark.parametrize("code", EXAMPLES[:2], ids=["pipeline", "guard-in-lcel"])
def test_readme_langchain_example_runs(code, default_config, monkeypatch, capsys):
    monkeypatch.setenv("RAG_GUARD_CONFIG", str(default_config))
    run_example(code, capsys)


def test_readme_agent_example_answers_the_stated_fact_and_refuses_the_off_topic_question(
    default_config, monkeypatch, capsys
):
    """No tool-calling model runs here: a scripted one calls the retriever tool and always answers the same."""
    scripted = 'ScriptedAgentModel(tool="search_articles", answer="Voyager 2 was launched on 20 August 1977 [1].")'
    code = EXAMPLES[2].replace("from langchain_ollama import ChatOllama", "from tests.fakes import ScriptedAgentModel")
    monkeypatch.setenv("RAG_GUARD_CONFIG", str(default_config))
    printed = run_example(code.replace(README_AGENT_MODEL, scripted), capsys).splitlines()
    assert printed[0] == "answer | Voyager 2 was launched on 20 August 1977 [1]."
    assert printed[1].startswith("refuse | ") and "1977" not in printed[1]


def test_readme_openai_client_example_runs(default_server, capsys):
    printed = run_example(EXAMPLES[3].replace(README_SERVER, default_server.base_url), capsys)
    assert "1977" in printed
