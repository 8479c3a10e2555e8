"""`eval --report` as a reader sees it: the page rendered by headless Chromium (Debian's `chromium`; `make
test` installs it), with hostile text in every field a question file or a model can fill."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from rag_guard.evaluation.answer_scoring import ScoredText
from rag_guard.evaluation.evaluate import AnswerToken, EvalReport, EvalRow
from rag_guard.evaluation.report import GLOSSARY, write_report
from rag_guard.judging.decision import Decision
from tests.fakes import report_of

pytestmark = pytest.mark.integration

HOSTILE = "<img src=x onerror=\"document.title='pwned'\"><script>document.title='pwned'</script>"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def hostile_report() -> EvalReport:
    rows = [
        EvalRow(
            question=f"When did Voyager 2 launch? {HOSTILE}",
            answerable=True,
            kind=f"answerable {HOSTILE}",
            decision=Decision.ANSWER,
            p_sufficient=0.88,
            reason=f"p_sufficient 0.880 {HOSTILE}",
            guard_s=8.0,
            sources=[f"articles/voyager{HOSTILE}.md", "articles/voyager.md"],
            chunks=[2, 0],
            answer=f"In 1977 {HOSTILE}",
            answer_tokens=[AnswerToken(token="In 1977 ", logprob=-0.01), AnswerToken(token=HOSTILE, logprob=-2.3)],
            joint_logprob=-2.31,
            perplexity=3.17,
            scored=ScoredText(right=True, f1=0.19, cited=True, answerable=True),
        ),
        EvalRow(
            question="Who won the 2014 World Cup?",
            answerable=False,
            kind="off_topic",
            decision=Decision.CLARIFY,
            p_sufficient=0.5,
            reason="p_sufficient 0.500",
            guard_s=8.0,
            sources=["articles/tides.md"] * 2,
            chunks=[1, 3],
            message=f"Which cup? {HOSTILE}",
        ),
    ]
    return report_of(rows)


def chromium() -> str:
    found = shutil.which("chromium")
    assert found, "headless Chromium is needed: `apt-get install chromium` (make test installs it)"
    return found


def test_the_report_page_renders_with_its_glossary_thresholds_and_chunks_and_runs_no_injected_markup(tmp_path):
    files = write_report(hostile_report(), tmp_path / "report", f"eval {HOSTILE}")
    page = tmp_path / "report" / "index.html"
    profile = tmp_path / "profile"
    dom = subprocess.run(
        [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    shot = tmp_path / "page.png"  # kept out of the repository
    subprocess.run(
        [
            chromium(),
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            f"--screenshot={shot}",
            "--window-size=1400,2000",
            page.as_uri(),
        ],
        capture_output=True,
        timeout=120,
        check=True,
    )
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert {f.name for f in files} >= {"reliability.png", "risk_coverage.png", "score_histogram.png"}

    assert dom.split("<title>", 1)[1].startswith("eval &lt;img")  # no injected script retitled the page
    assert "<script>" not in dom and '<img src="x"' not in dom  # every field came out as text
    assert dom.count("&lt;script&gt;") >= 8  # title, heading, question, kind, answer, token, reason, source, message
    for term in GLOSSARY:
        assert f"<dt>{term}</dt>" in dom
    assert "(the dotted lines on the plots)" in dom
    assert "coverage (answerable questions answered)" in dom
    assert "right* (F1 0.19)" in dom
    assert "[1] articles/tides.md #1, [2] articles/tides.md #3" in dom
