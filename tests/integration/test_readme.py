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


def test_readme_has_the_langchain_and_openai_client_examples():
    assert len(EXAMPLES) == 3
    assert "GuardedRAG.from_config" in EXAMPLES[0]
    assert "SufficiencyGuard" in EXAMPLES[1]
    assert README_SERVER in EXAMPLES[2]


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


def test_readme_openai_client_example_runs(default_server, capsys):
    printed = run_example(EXAMPLES[2].replace(README_SERVER, default_server.base_url), capsys)
    assert "1977" in printed
