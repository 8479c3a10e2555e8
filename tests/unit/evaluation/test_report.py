from rag_guard.evaluation.evaluate import AnswerToken, EvalReport, EvalRow
from rag_guard.evaluation.report import write_report
from rag_guard.judging.decision import Decision
from tests.fakes import report_of


def sample_report() -> EvalReport:
    rows = [
        EvalRow(
            question="When did Voyager 2 launch?",
            answerable=True,
            kind="answerable",
            decision=Decision.ANSWER,
            p_sufficient=0.88,
            reason="p_sufficient 0.880 >= 0.7",
            guard_s=8.0,
            sources=["voyager.md"],
            answer="In 1977 <b>",
            answer_tokens=[AnswerToken(token="In", logprob=-0.01), AnswerToken(token=" 1977 <b>", logprob=-2.3)],
            joint_logprob=-2.31,
            perplexity=3.17,
        ),
        EvalRow(
            question="Who won in 2014?",
            answerable=False,
            kind="off_topic",
            decision=Decision.REFUSE,
            p_sufficient=0.2,
            reason="p_sufficient 0.200 < 0.45",
            guard_s=8.0,
            sources=[],
        ),
        EvalRow(
            question="What broke?",
            answerable=False,
            kind=None,
            decision=Decision.REFUSE,
            p_sufficient=None,
            reason="refused: no logprobs",
            guard_s=None,
            sources=[],
        ),
    ]
    return report_of(rows)


def test_the_report_writes_three_plots_and_a_page(tmp_path):
    files = write_report(sample_report(), tmp_path / "report", "bundled")
    names = sorted(f.name for f in files)
    assert names == ["index.html", "reliability.png", "risk_coverage.png", "score_histogram.png"]
    for png in (f for f in files if f.suffix == ".png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_page_colours_answer_tokens_and_escapes_text(tmp_path):
    page = (write_report(sample_report(), tmp_path, "bundled")[-1]).read_text(encoding="utf-8")
    assert 'title="p=0.990"' in page and "hsl(119, 75%, 82%)" in page  # near-certain token: green
    assert "hsl(12, 75%, 82%)" in page  # p = 0.10: red
    assert " 1977 &lt;b&gt;" in page and "<b>" not in page.split("<body>")[1].replace("<br>", "")
    assert "perplexity 3.17" in page
    assert page.count("<tr class=") == 3
