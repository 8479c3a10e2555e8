"""Integration fixtures: the real embedded models, a real on-disk Chroma in a temporary directory, and a real
Chroma server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rag_guard.cli import app
from rag_guard.models.llamacpp import ChatLlamaCpp
from rag_guard.models.presets import PRESETS, ensure_preset
from tests.integration.helpers import REPO
from tests.servers import Served, chroma_server, rag_guard_server

CACHE = Path("~/.cache/rag_guard").expanduser()


@pytest.fixture(scope="session")
def small_model() -> ChatLlamaCpp:
    return ChatLlamaCpp(model_path=ensure_preset(PRESETS["small"], CACHE), n_ctx=2048, max_tokens=48)


@pytest.fixture(scope="session")
def default_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """config.yaml of the repository, with the store in a temporary directory, ingested once."""
    root = tmp_path_factory.mktemp("rag")
    text = (REPO / "config.yaml").read_text(encoding="utf-8")
    text = text.replace("persist_directory: .rag_guard/chroma", f"persist_directory: {root / 'chroma'}")
    text = text.replace("corpus_dir: corpora", f"corpus_dir: {REPO / 'corpora'}")
    text = text.replace("questions: corpora/questions.jsonl", f"questions: {REPO / 'corpora/questions.jsonl'}")
    config = root / "config.yaml"
    config.write_text(text, encoding="utf-8")
    result = CliRunner().invoke(app, ["ingest", "--config", str(config)])
    assert result.exit_code == 0, result.output
    return config


@pytest.fixture(scope="session")
def chroma_http_env(tmp_path_factory: pytest.TempPathFactory, default_config: Path) -> Iterator[dict[str, str]]:
    """A real `chroma run` server on loopback, holding the bundled corpus; yields the overrides that use it."""
    root = tmp_path_factory.mktemp("chroma-server")
    with chroma_server(root / "data", root / "chroma.log") as port:
        env = {
            "RAG_GUARD_CHROMA__MODE": "http",
            "RAG_GUARD_CHROMA__HOST": "127.0.0.1",
            "RAG_GUARD_CHROMA__PORT": str(port),
            "RAG_GUARD_CHROMA__PERSIST_DIRECTORY": str(root / "lock"),
        }
        result = CliRunner().invoke(app, ["ingest", "--config", str(default_config)], env=env)
        assert result.exit_code == 0, result.output
        yield env


@pytest.fixture(scope="session")
def default_server(default_config: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """`rag-guard serve` on the default model and the bundled corpus, without a token, as configured."""
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    with rag_guard_server(default_config, log, {}) as served:
        yield served
