"""The README's Python examples run as written, against the default model and a temporary store (and, for the
OpenAI client example, a running `rag-guard serve`)."""

from __future__ import annotations

import json
import re
import shlex
import shutil
from pathlib import Path

import httpx
import pytest
from typer.testing import Result

from tests.integration.helpers import REPO, ask_json, run
from tests.servers import rag_guard_server

pytestmark = pytest.mark.integration

README = Path(__file__).resolve().parents[2] / "README.md"
README_TEXT = README.read_text(encoding="utf-8")
EXAMPLES = re.findall(r"```python\n(.*?)```", README_TEXT, flags=re.DOTALL)
README_SERVER = "http://127.0.0.1:8000/v1"
QUICK_START = re.search(r"## Quick start\n.*?```\n(\.venv/bin/rag-guard ask .*?)```", README_TEXT, re.DOTALL)
OWN_DOCUMENTS = re.search(r"## Your own documents\n.*?```bash\n(.*?)```", README_TEXT, re.DOTALL)


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
    assert printed[0].startswith("answer | ") and "1977" in printed[0]  # the agent's answer, or a span quoted
    assert printed[1].startswith("refuse | ") and "1977" not in printed[1]


def test_readme_openai_client_example_runs(default_server, capsys):
    printed = run_example(EXAMPLES[3].replace(README_SERVER, default_server.base_url), capsys)
    assert "1977" in printed


def said(result: Result) -> str:
    """A command's output without the terminal's line wrapping."""
    return " ".join(result.output.split())


FORMATS = {
    "cutty_sark.pdf": ("When was the Cutty Sark placed in a dry dock at Greenwich?", "1954", ", p. 2"),
    "batavia.html": ("On what date did the Batavia strike the reef?", "1629", ' \u2014 "The wreck"'),
    "endurance.docx": ("On what date did the Endurance finally sink?", "1915", ' \u2014 "The loss of the ship"'),
}
"""Per document the tests write: a question its own content answers, the answer's key, how its citation ends."""


def my_notes(folder: Path) -> Path:
    """~/my-notes as a user might have it: the Markdown notes of tests/data/own_articles, a PDF, an HTML page
    and a Word document, all written here."""
    from tests.documents import write_docx, write_html, write_pdf

    shutil.copytree(REPO / "tests/data/own_articles", folder)
    write_pdf(
        folder / "cutty_sark.pdf",
        [
            "The Cutty Sark is a British clipper ship, built at Dumbarton on the river Leven in 1869 for the tea "
            "trade.",
            "After her sailing days the Cutty Sark was placed in a dry dock at Greenwich in 1954, where she is kept "
            "as a museum ship.",
        ],
    )
    write_html(  # sections of a page's usual length, so each is a chunk of its own
        folder / "batavia.html",
        "The Batavia",
        [
            (
                "The ship",
                "The Batavia was a ship of the Dutch East India Company, built in Amsterdam in 1628. She was a "
                "retourschip, a large ship made to carry cargo to the East Indies and back, and she was armed with "
                "cannon against pirates. On her first voyage she sailed from Texel in October 1628 with more than "
                "three hundred people on board, bound for the town of Batavia on the island of Java. A copy of "
                "the ship, built by hand in the Netherlands, was launched in 1995.",
            ),
            (
                "The wreck",
                "On her maiden voyage the Batavia struck a reef off Western Australia on 4 June 1629. Most of the "
                "passengers and crew reached the small islands nearby, while the commander took the longboat north "
                "to find help. A mutiny broke out among the survivors left on the islands, and the rescue ship "
                "arrived only months later, in September of that year. The wreck itself was found again by "
                "divers in 1963 and part of its hull was raised.",
            ),
        ],
    )
    write_docx(
        folder / "endurance.docx",
        [
            (
                "The expedition",
                "Endurance carried Ernest Shackleton's expedition to the Weddell Sea in 1914. The plan was to land "
                "a party on the Antarctic coast and cross the continent on foot by way of the South Pole. The ship "
                "was a three-masted barquentine built in Norway and strengthened for the polar ice, with a crew of "
                "twenty-eight men and a cargo of dogs and sledges for the crossing. The expedition left Plymouth "
                "in August 1914, days after the war in Europe had begun.",
            ),
            (
                "The loss of the ship",
                "In January 1915 the Endurance was caught in the pack ice and drifted with it for many months. "
                "Crushed by the pressure of the ice, the Endurance finally sank on 21 November 1915. Her crew "
                "camped on the floating ice and later reached Elephant Island in the ship's three lifeboats, from "
                "where a few of them sailed on to South Georgia for help. Every man of the crew survived. The "
                "wreck was found on the floor of the Weddell Sea in 2022.",
            ),
        ],
    )
    return folder


def test_readme_own_documents_section_runs_and_keeps_each_collection_to_its_folder(
    default_config, tmp_path_factory, capsys
):
    """The four commands as written, ~/my-notes holding Markdown notes, a PDF, an HTML page and a Word document
    (written by the test), with the bundled corpus already in the default collection: neither folder removes the
    other's chunks, each collection answers from its own, and each format answers from its own content, citing
    its page or heading."""
    commands = [shlex.split(line) for line in OWN_DOCUMENTS[1].strip().splitlines()]
    assert [c[1] for c in commands] == ["ingest", "collections", "ask", "serve"]
    folder = str(my_notes(tmp_path_factory.mktemp("home") / "my-notes"))
    ingest, listing, ask, serve = ([folder if arg == "~/my-notes" else arg for arg in c[1:]] for c in commands)

    result = run(*ingest, "--config", str(default_config))
    assert result.exit_code == 0, result.output
    assert "into 'my-notes'" in said(result) and "Ingested 5 file(s)" in said(result)
    bundled_again = run("ingest", "--config", str(default_config))
    assert bundled_again.exit_code == 0 and "(0 added, 0 removed" in said(bundled_again), bundled_again.output
    own_again = run(*ingest, "--config", str(default_config))
    assert own_again.exit_code == 0 and "(0 added, 0 removed" in said(own_again), own_again.output

    listed = run(*listing, "--config", str(default_config))
    assert listed.exit_code == 0, listed.output
    assert "my-notes" in listed.output and "axolotls.md" in listed.output and "tides.md" in listed.output

    question = ask[1]
    own = ask_json(default_config, question, "--collection", "my-notes")
    assert {s["source"] for s in own["sources"]} <= {"axolotls.md", "speedcubing.md", *FORMATS}
    assert own["decision"] != "refuse", own
    bundled = ask_json(default_config, question)
    assert all(s["source"].startswith("articles/") for s in bundled["sources"])
    assert bundled["decision"] != "answer", bundled

    for name, (asked, key, cited) in FORMATS.items():
        answer = run("ask", asked, "--collection", "my-notes", "--config", str(default_config))
        assert answer.exit_code == 0 and answer.stdout.startswith("answer"), answer.stdout
        assert key in answer.stdout and f"{name}{cited}" in answer.stdout, answer.stdout

    with rag_guard_server(default_config, tmp_path_factory.mktemp("serve") / "serve.log", {}, *serve[1:]) as served:
        reply = httpx.post(
            f"{served.base_url}/chat/completions",
            json={"model": "rag-guard", "messages": [{"role": "user", "content": question}]},
            timeout=300,
        ).json()
    assert reply["rag_guard"]["decision"] == own["decision"]
    assert {s["source"] for s in reply["rag_guard"]["sources"]} <= {"axolotls.md", "speedcubing.md", *FORMATS}


def test_readme_quick_start_questions_do_what_the_readme_says(default_config):
    """The quick start's `ask` lines as written: an answer, a refusal as JSON, and a streamed answer."""
    asks = [shlex.split(line)[1:] for line in QUICK_START[1].strip().splitlines() if " ask " in line]
    assert len(asks) == 3
    plain, as_json, streamed = (run(*args, "--config", str(default_config)) for args in asks)
    assert plain.exit_code == as_json.exit_code == streamed.exit_code == 0
    assert plain.stdout.startswith("answer") and "1977" in plain.stdout
    assert json.loads(as_json.stdout)["decision"] == "refuse"
    lines = streamed.stdout.splitlines()
    assert lines[0].startswith("answer (p_sufficient") and "carbon dioxide" in streamed.stdout.lower()
