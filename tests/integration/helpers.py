"""Running the CLI in-process and reading its JSON, for the integration tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner, Result

from rag_guard.cli import app

REPO = Path(__file__).resolve().parents[2]
ANSWER_KEYS = {
    "question",
    "decision",
    "answer",
    "message",
    "p_sufficient",
    "sources",
    "verdict",
    "cited",
    "reason",
    "answer_check",
    "asked",
    "error",
    "timings",
}


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(app, list(args), env=env)


def ask_json(
    config: Path, question: str, *args: str, env: dict[str, str] | None = None, exit_code: int = 0
) -> dict[str, Any]:
    """`ask --json`, checked to exit with `exit_code` (3: the question could not be judged, an outage)."""
    result = run("ask", question, "--json", "--config", str(config), *args, env=env)
    assert result.exit_code == exit_code, result.output
    return json.loads(result.stdout[result.stdout.index("{") :])


def ollama_env(url: str, **extra: str) -> dict[str, str]:
    """Environment overrides that make `model:` an Ollama model at `url`."""
    return {
        "RAG_GUARD_MODEL__PROVIDER": "ollama",
        "RAG_GUARD_MODEL__NAME": "qwen2.5:7b",
        "RAG_GUARD_MODEL__BASE_URL": url,
        **extra,
    }


def openai_env(url: str, **extra: str) -> dict[str, str]:
    """Environment overrides that make `model:` the small model on an OpenAI-compatible server at `url`."""
    return {
        "RAG_GUARD_MODEL__PROVIDER": "openai",
        "RAG_GUARD_MODEL__NAME": "small",
        "RAG_GUARD_MODEL__BASE_URL": url,
        "OPENAI_API_KEY": "",
        **extra,
    }


def as_judge(env: dict[str, str]) -> dict[str, str]:
    """The same overrides for `guard.model:` instead of `model:`."""
    prefix = "RAG_GUARD_MODEL__"
    return {(f"RAG_GUARD_GUARD__MODEL__{k[len(prefix) :]}" if k.startswith(prefix) else k): v for k, v in env.items()}
