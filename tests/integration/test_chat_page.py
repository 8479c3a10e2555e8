"""The chat page at `/` as a person sees it: headless Chromium (Debian's `chromium`) opens it against a running
server, asks a question, and the reply shows its decision, score bar, the question judged and the passage with
the quoted sentence marked; a document's markup shows as text, and the page logs no console error."""

from __future__ import annotations

import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator

import pytest
import uvicorn
from langchain_core.documents import Document

from rag_guard.config import ServeSettings
from rag_guard.judging.guard import SufficiencyGuard
from rag_guard.judging.prompts import EXTRACT_INSTRUCTION
from rag_guard.pipeline import GuardedRAG
from rag_guard.serving.server import create_app
from tests.fakes import FakeChatModel, FixedRetriever, openai_logprobs
from tests.integration.test_report_page import CHROMIUM_FLAGS, chromium
from tests.servers import free_port

pytestmark = pytest.mark.integration

MARKUP = "<b>bold</b><img src=x onerror=\"document.title='pwned'\">"
DOCS = [
    Document(
        page_content=f"Voyager 2 launched on 20 August 1977. Its notes say {MARKUP} in plain text.",
        metadata={"source": "voyager.md", "chunk_index": 0, "heading": "Launch"},
    )
]


def fake_model() -> FakeChatModel:
    def reply(messages, kwargs):
        if EXTRACT_INSTRUCTION in messages[-1].text:
            return "20 August 1977", None
        if kwargs.get("max_tokens") == 1:
            return "True", openai_logprobs({"True": 0.9, "False": 0.1})
        return "It launched on 20 August 1977 [1].", None

    return FakeChatModel(reply=reply)


async def ready() -> str:
    return "fake"


@pytest.fixture
def server_url() -> Iterator[str]:
    model = fake_model()
    guard = SufficiencyGuard(judge=model, answer_threshold=0.7, clarify_threshold=0.45)
    rag = GuardedRAG(retriever=FixedRetriever(documents=DOCS), guard=guard, answerer=model)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(rag, ServeSettings(), ready=ready), port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            urllib.request.urlopen(f"{url}/healthz", timeout=1)
            break
        except OSError:
            time.sleep(0.1)
    yield url
    server.should_exit = True
    thread.join(timeout=10)


def test_the_page_asks_and_shows_the_decision_score_judged_question_and_marked_quote(server_url, tmp_path):
    page = f"{server_url}/?q={urllib.parse.quote('When did Voyager 2 launch?')}"
    run = subprocess.run(
        [
            chromium(),
            *CHROMIUM_FLAGS,
            f"--user-data-dir={tmp_path / 'profile'}",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=15000",
            "--dump-dom",
            page,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    dom = run.stdout
    assert '<span class="decision answer">answer</span>' in dom
    assert '<div class="score"' in dom and 'class="fill" style="width: 90%;"' in dom
    assert "Judged: When did Voyager 2 launch?" in dom
    assert "<mark>Voyager 2 launched on 20 August 1977.</mark>" in dom
    assert "&lt;b&gt;bold&lt;/b&gt;&lt;img src=x" in dom and "<b>bold</b>" not in dom
    assert "<title>rag_guard chat</title>" in dom  # no injected handler retitled the page
    console = [line for line in run.stderr.splitlines() if "CONSOLE" in line]
    assert console == [], console
