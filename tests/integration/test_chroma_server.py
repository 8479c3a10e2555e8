"""Chroma in client-server mode: ingest and ask through a real `chroma run` server on loopback."""

from __future__ import annotations

import chromadb
import pytest

from tests.integration.helpers import ask_json, run

pytestmark = pytest.mark.integration

SMALL = {"RAG_GUARD_MODEL__PRESET": "small"}


def test_ingest_stores_the_corpus_on_the_server_not_on_disk(chroma_http_env, default_config):
    client = chromadb.HttpClient(
        host="127.0.0.1",
        port=int(chroma_http_env["RAG_GUARD_CHROMA__PORT"]),
        settings=chromadb.Settings(anonymized_telemetry=False),
    )
    assert client.get_collection("rag_guard").count() > 20
    again = run("ingest", "--config", str(default_config), env=chroma_http_env)
    assert again.exit_code == 0, again.output
    assert "0 added, 0 removed" in " ".join(again.output.split())


def test_ask_retrieves_from_the_server(chroma_http_env, default_config):
    result = ask_json(default_config, "When was Voyager 2 launched?", env={**chroma_http_env, **SMALL})
    assert result["sources"][0]["source"] == "articles/voyager.md"
    assert result["p_sufficient"] is not None


def test_doctor_checks_the_server(chroma_http_env, default_config):
    result = run("doctor", "--config", str(default_config), env={**chroma_http_env, **SMALL})
    assert result.exit_code == 0, result.output
    assert chroma_http_env["RAG_GUARD_CHROMA__PORT"] in result.output  # the store row names the server


def test_a_server_that_is_down_is_named_with_how_to_start_it(default_config):
    down = {"RAG_GUARD_CHROMA__MODE": "http", "RAG_GUARD_CHROMA__HOST": "127.0.0.1", "RAG_GUARD_CHROMA__PORT": "9"}
    result = run("ask", "When was Voyager 2 launched?", "--config", str(default_config), env={**down, **SMALL})
    assert result.exit_code == 1
    message = " ".join(result.output.split())
    assert "Cannot reach the Chroma server at http://127.0.0.1:9" in message
    assert "chroma run --path DIR" in message
