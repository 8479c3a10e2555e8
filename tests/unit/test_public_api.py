"""What users import from `rag_guard` and from each subpackage's face, pinned."""

import importlib
import re

import pytest

import rag_guard
from rag_guard import errors

PUBLIC = {
    "rag_guard": [
        "AnswerCheck",
        "ConfigError",
        "CorpusError",
        "Decision",
        "ErrorInfo",
        "GenerationError",
        "GuardFailure",
        "GuardMiddleware",
        "GuardedAnswer",
        "GuardedAnswerChunk",
        "GuardedRAG",
        "InvalidQuestionError",
        "LogprobError",
        "MissingExtraError",
        "ModelUnavailableError",
        "ProbeError",
        "RagGuardError",
        "ReplySettings",
        "ServerBusy",
        "Settings",
        "Source",
        "StoreBusyError",
        "StoreUnavailableError",
        "SufficiencyGuard",
        "Timings",
        "Verdict",
        "load_config",
    ],
    "rag_guard.judging": [
        "MAX_QUESTION_CHARS",
        "Calibration",
        "Decision",
        "GateSignal",
        "ErrorInfo",
        "GuardInput",
        "LogprobError",
        "Probe",
        "ProbeError",
        "Question",
        "Signals",
        "SufficiencyGuard",
        "TokenLogprob",
        "Verdict",
        "clean_question",
        "decide",
        "decide_with_probe",
        "load_probe",
        "p_true",
        "parse_logprobs",
        "verdict_from_reply",
    ],
    "rag_guard.reply": [
        "REFUSAL",
        "AnswerCheck",
        "GuardedAnswer",
        "GuardedAnswerChunk",
        "ReplyPolicy",
        "ReplySettings",
        "Source",
        "Timings",
        "merge_chunks",
    ],
    "rag_guard.models": [
        "PRESETS",
        "SERVER_DEFAULT_URLS",
        "ChatLlamaCpp",
        "ModelPreset",
        "ensure_preset",
        "explain_failure",
        "explain_missing_logprobs",
        "failure_kind",
        "resolve_model_file",
    ],
    "rag_guard.store": [
        "BUNDLED_EMBEDDING",
        "READERS",
        "ChromaRetriever",
        "ChromaSettings",
        "CollectionSummary",
        "CorpusScan",
        "EmbeddingSettings",
        "IngestReport",
        "ReadFile",
        "chroma_client",
        "collection_summaries",
        "delete_collection",
        "corpus_key",
        "embedding_label",
        "ensure_ingested",
        "ingest",
        "local_embeddings",
        "mean_pooled",
        "open_store",
        "read_file",
        "scan_corpus",
    ],
}


@pytest.mark.parametrize("module", sorted(PUBLIC))
def test_all_is_pinned_and_every_name_imports(module):
    face = importlib.import_module(module)
    assert sorted(face.__all__) == sorted(PUBLIC[module])
    for name in face.__all__:
        assert getattr(face, name) is not None


def test_every_error_type_is_exported_at_the_top_and_drawn_in_the_tree():
    types = {name for name, value in vars(errors).items() if isinstance(value, type) and issubclass(value, Exception)}
    assert types <= set(rag_guard.__all__)
    assert all(issubclass(getattr(errors, name), errors.RagGuardError) for name in types)
    drawn = set(re.findall(r"(\w+)\s{2,}", errors.__doc__ or ""))
    assert types <= drawn, f"not drawn in errors.py's tree: {sorted(types - drawn)}"


def test_no_module_defines_a_public_exception_outside_errors():
    import pkgutil

    for info in pkgutil.walk_packages(rag_guard.__path__, "rag_guard."):
        if info.name == "rag_guard.errors":
            continue
        module = importlib.import_module(info.name)
        own = [
            name
            for name, value in vars(module).items()
            if isinstance(value, type)
            and issubclass(value, Exception)
            and value.__module__ == info.name
            and not name.startswith("_")
        ]
        assert not own, f"{info.name} defines {own}: public exceptions live in rag_guard.errors"


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        _ = rag_guard.Nope


def test_a_missing_extra_names_the_command_that_installs_it(monkeypatch):
    import importlib.util

    from rag_guard.extras import require

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "sklearn" else real(name))
    with pytest.raises(errors.MissingExtraError, match=r"fit-probe needs the `study` extra \(sklearn not installed\)"):
        require("study", "fit-probe")
    require("agents", "GuardMiddleware")
