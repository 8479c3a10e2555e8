"""The README's Python examples run as written, against the default model and a temporary store."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

README = Path(__file__).resolve().parents[2] / "README.md"
EXAMPLES = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.DOTALL)


def test_readme_has_both_langchain_examples():
    assert len(EXAMPLES) == 2
    assert "GuardedRAG.from_config" in EXAMPLES[0]
    assert "SufficiencyGuard" in EXAMPLES[1]


@pytest.mark.parametrize("code", EXAMPLES, ids=["pipeline", "guard-in-lcel"])
def test_readme_example_runs(code, default_config, monkeypatch, capsys):
    monkeypatch.setenv("RAG_GUARD_CONFIG", str(default_config))
    exec(compile(code, str(README), "exec"), {})
    printed = capsys.readouterr().out
    assert printed.strip()
    assert "answer" in printed or "refuse" in printed or "clarify" in printed
