"""Writing settings back: `rag-guard calibrate --write` updates config.yaml's `guard:` section in place,
keeping its comments and layout, and never writes a file the schema would reject."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedSeq
from ruamel.yaml.error import YAMLError

from rag_guard.config.schema import Settings
from rag_guard.errors import ConfigError
from rag_guard.judging.calibration import Calibration


def write_guard_calibration(
    file: Path, calibration: Calibration, answer_threshold: float, clarify_threshold: float
) -> None:
    """Store thresholds, calibration and the signals it weighs in the `guard:` section of `file`, keeping its
    comments and layout."""
    yaml = YAML()  # round-trip mode: comments, order and quoting survive
    yaml.preserve_quotes = True
    yaml.representer.add_representer(
        type(None), lambda representer, _: representer.represent_scalar("tag:yaml.org,2002:null", "null")
    )
    try:
        data = yaml.load(file.read_text(encoding="utf-8")) or {}
    except (OSError, YAMLError) as exc:
        raise ConfigError(f"Cannot update {file}: {exc}") from None
    guard = data.setdefault("guard", {})
    guard["answer_threshold"] = round(answer_threshold, 3)
    guard["clarify_threshold"] = round(clarify_threshold, 3)
    guard["calibration"] = calibration.model_dump(exclude_none=True)
    signals = CommentedSeq(calibration.weights)  # pinned: a later default must not change what it weighs
    signals.fa.set_flow_style()
    guard["signals"] = signals
    Settings.model_validate(YAML(typ="safe", pure=True).load(_dumped(yaml, data)))  # never write a broken file
    temporary = file.with_name(f".{file.name}.tmp")
    temporary.write_text(_dumped(yaml, data), encoding="utf-8")
    temporary.replace(file)


def _dumped(yaml: YAML, data: Any) -> str:
    from io import StringIO

    buffer = StringIO()
    yaml.dump(data, buffer)
    return buffer.getvalue()
