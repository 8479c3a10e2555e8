"""What users import from `rag_guard` and from each subpackage's face, pinned."""

import importlib

import pytest

import rag_guard
from rag_guard import errors

PUBLIC = {
    "rag_guard": [
        "AnswerCheck",
        "ConfigError",
        "CorpusError",
        "Decision",
        "GenerationError",
        "GuardError",
        "GuardFailure",
        "GuardMiddleware",
        "GuardedAnswer",
        "GuardedAnswerChunk",
        "GuardedRAG",
        "InvalidQuestionError",
        "ModelUnavailableError",
        "RagGuardError",
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
        "AnswerCheck",
        "Calibration",
        "Decision",
        "GateSignal",
        "GuardError",
        "GuardInput",
        "LogprobError",
        "Probe",
        "ProbeError",
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
        "ChromaRetriever",
        "ChromaSettings",
        "CollectionSummary",
        "CorpusScan",
        "EmbeddingSettings",
        "IngestReport",
        "chroma_client",
        "collection_summaries",
        "corpus_key",
        "embedding_label",
        "ensure_ingested",
        "ingest",
        "local_embeddings",
        "mean_pooled",
        "open_store",
        "scan_corpus",
    ],
}


@pytest.mark.parametrize("module", sorted(PUBLIC))
def test_all_is_pinned_and_every_name_imports(module):
    face = importlib.import_module(module)
    assert sorted(face.__all__) == sorted(PUBLIC[module])
    for name in face.__all__:
        assert getattr(face, name) is not None


def test_every_error_type_is_exported_at_the_top():
    types = {name for name, value in vars(errors).items() if isinstance(value, type) and issubclass(value, Exception)}
    assert types <= set(rag_guard.__all__)


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        _ = rag_guard.Nope
