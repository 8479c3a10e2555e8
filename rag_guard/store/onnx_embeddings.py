"""The bundled sentence embedder on onnxruntime: sentence-transformers' vectors without importing torch.

Importing sentence-transformers (torch, transformers) takes about 8 s, and a question's embedding about 15 ms
on 2 cores; onnxruntime and tokenizers (both already installed with chromadb) import in 0.2 s, the session
loads in about 0.6 s, and a question's embedding takes 5 to 7 ms. The bundled all-MiniLM-L6-v2 is exported
to ONNX once (with torch, at `prepare-model` or on first use) into the cache beside the assembled GGUF files.
Its pipeline is fixed (mean of the token states, then unit length), so the vectors equal
sentence-transformers' to 1e-6 and stores stay compatible.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings
from pydantic import BaseModel, ConfigDict, PrivateAttr

from rag_guard.errors import RagGuardError

_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def onnx_path(model_dir: Path, cache_dir: Path) -> Path:
    """Where the export of `model_dir` is cached: named after the weights file's size and time."""
    weights = model_dir / "model.safetensors"
    stamp = f"{weights.stat().st_size}-{int(weights.stat().st_mtime)}" if weights.is_file() else "none"
    return cache_dir / "models" / f"{model_dir.name}-{stamp}.onnx"


def export_onnx(model_dir: Path, target: Path) -> Path:
    """Export the transformer of a sentence-transformers directory to ONNX (needs torch and onnx, once)."""
    try:
        import torch
        from transformers import AutoModel
    except ImportError as exc:  # pragma: no cover - a broken install
        raise RagGuardError(f"exporting the embedder to ONNX needs torch and transformers: {exc}") from None

    class LastHiddenState(torch.nn.Module):
        def __init__(self, model: torch.nn.Module) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            out = self.model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            return out.last_hidden_state

    model = AutoModel.from_pretrained(str(model_dir), local_files_only=True).eval()
    example = tuple(torch.ones((2, 8), dtype=torch.int64) for _ in _INPUTS)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(f".{os.getpid()}.partial")  # two processes may export at once
    axes = {name: {0: "batch", 1: "tokens"} for name in (*_INPUTS, "last_hidden_state")}
    try:
        torch.onnx.export(
            LastHiddenState(model),
            example,
            str(partial),
            input_names=list(_INPUTS),
            output_names=["last_hidden_state"],
            dynamic_axes=axes,
            opset_version=17,
            dynamo=False,
        )
    except Exception as exc:
        partial.unlink(missing_ok=True)
        raise RagGuardError(f"could not export {model_dir} to ONNX: {exc}") from None
    partial.replace(target)  # a reader never sees half a file
    return target


class OnnxSentenceEmbeddings(BaseModel, Embeddings):
    """Mean-pooled, unit-length sentence embeddings from an ONNX transformer and its `tokenizer.json`."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    model_file: Path
    model_dir: Path
    """The sentence-transformers directory: its tokenizer and maximum sequence length are used."""
    batch_size: int = 64

    _session: Any = PrivateAttr(default=None)
    _tokenizer: Any = PrivateAttr(default=None)

    def model_post_init(self, __context: Any) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = os.cpu_count() or 1
        options.log_severity_level = 3  # its warnings about unused initialisers are noise
        # Worker threads spin while a run lasts (a query is many small operators: 7 % faster), and stop
        # when it ends: left spinning, they would take the cores from the model that runs right after.
        options.add_session_config_entry("session.intra_op.allow_spinning", "1")
        options.add_session_config_entry("session.force_spinning_stop", "1")
        self._session = onnxruntime.InferenceSession(str(self.model_file), options, providers=["CPUExecutionProvider"])
        config = json.loads((self.model_dir / "sentence_bert_config.json").read_text(encoding="utf-8"))
        self._tokenizer = Tokenizer.from_file(str(self.model_dir / "tokenizer.json"))
        self._tokenizer.enable_truncation(int(config.get("max_seq_length", 256)))
        self._tokenizer.enable_padding()

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [
            row.tolist()
            for start in range(0, len(texts), self.batch_size)
            for row in self._embed(texts[start : start + self.batch_size])
        ]

    def embed_query(self, text: str) -> list[float]:
        return self._embed([text])[0].tolist()

    def _embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        encoded = self._tokenizer.encode_batch(list(texts))
        feed = {
            "input_ids": np.array([e.ids for e in encoded], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encoded], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encoded], dtype=np.int64),
        }
        states = self._session.run(None, feed)[0]
        mask = feed["attention_mask"][..., None].astype(states.dtype)
        mean = (states * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)
        return mean / np.maximum(np.linalg.norm(mean, axis=1, keepdims=True), 1e-12)
