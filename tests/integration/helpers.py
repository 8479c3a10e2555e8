"""Running the CLI in-process and reading its JSON, for the integration tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner, Result

from rag_guard.cli import app

ANSWER_KEYS = {"question", "decision", "answer", "message", "p_sufficient", "sources", "verdict", "cited"}


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(app, list(args), env=env)


def ask_json(config: Path, question: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    result = run("ask", question, "--json", "--config", str(config), env=env)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout[result.stdout.index("{") :])
