"""The hidden-state probe: a linear read-out of "answerable" from the judge's middle layers. Pure: no model.

The verdict token is one word squeezed out of the model's state at the prompt's last token; that state holds
more (SQuAD's near misses among it). A probe is a logistic regression on that state, standardised, and
optionally on the answer start's state too (the same passages with the extractive instruction: the QA
prompt the literature reads, docs/studies/probe.md); `rag-guard fit-probe` fits one for one GGUF. The file also
holds how the probe is combined with the prompt-level signals (`combination`, a logistic calibration
fitted on out-of-fold probe scores), so the guard needs nothing else to turn a verdict, an answer start
and their hidden states into P(sufficient).

Arrays are stored as base64 of little-endian float32: a probe on one 1536-wide state is about 25 KB.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, PlainValidator, ValidationError, model_validator

from rag_guard.errors import ConfigError, ProbeError
from rag_guard.judging.calibration import Calibration
from rag_guard.judging.signals import GateSignal, sigmoid

PROBE_PACKAGE = "rag_guard.judging.probes"
"""Where the probes fitted for the presets ship: `<preset>.json`."""


Call = Literal["verdict", "extract"]
"""A one-token call whose hidden state a probe may read: the verdict's, or the answer start's (forked from the
same evaluated passages, so reading it costs no forward pass either)."""
CALLS: tuple[Call, ...] = ("verdict", "extract")
CallStates = Mapping[str, Mapping[int, Sequence[float]] | Mapping[str, Sequence[float]]]
"""Hidden states by call, then by layer (JSON gives the layers as strings)."""


def _decode(value: Any) -> np.ndarray:
    if isinstance(value, np.ndarray):
        return value.astype(np.float32)
    if isinstance(value, list):
        return np.asarray(value, dtype=np.float32)
    if not isinstance(value, str):
        raise ValueError("expected base64 of little-endian float32 values")
    return np.frombuffer(base64.b64decode(value, validate=True), dtype="<f4").astype(np.float32)


def _encode(array: np.ndarray) -> str:
    return base64.b64encode(np.asarray(array, dtype="<f4").tobytes()).decode("ascii")


Vector = Annotated[np.ndarray, PlainValidator(_decode), PlainSerializer(_encode, return_type=str)]


class Probe(BaseModel):
    """A fitted probe file: what it reads, its weights, what it was fitted on and how well it did held out."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    format: Literal[1] = 1
    layers: list[int] = Field(min_length=1)
    """Layer outputs (`l_out-N`) read at `position`."""
    calls: list[Call] = Field(default=["verdict"], min_length=1)
    """The calls whose states are read, each at every layer, concatenated call by call."""
    position: Literal["last_prompt_token"] = "last_prompt_token"
    """Each call's last prompt token: the state from which its one token is predicted."""
    mean: Vector
    scale: Vector
    """Standardisation: (state - mean) / scale, per dimension."""
    weights: Vector
    bias: float
    model_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    """The GGUF the states came from; another model's states mean nothing to these weights."""
    model_name: str
    prompt_sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")
    """The judge's prompts the states were read under (`prompts.prompt_fingerprint`): other prompts give other
    states. None in files written before it was recorded, which no current prompt matches."""
    c: float = Field(gt=0)
    """The inverse L2 strength chosen by grouped cross-validation."""
    fitted_on: list[str]
    """The labelled question files, with how many questions each gave."""
    n: int
    heldout_auroc: float
    """The probe's AUROC out of fold (folds grouped by article or paragraph)."""
    combination: Calibration
    """P(sufficient) from the signals with the probe among them, fitted on out-of-fold probe scores."""
    combination_heldout_auroc: float | None = None
    max_lowering: float | None = Field(None, gt=0)
    """How many log-odds below the prompt-level score (verdict and answer start) the probe may take
    P(sufficient), chosen by the fit's held-out score; None: as far as the combination says."""

    @property
    def signals(self) -> list[GateSignal]:
        """What a guard reading this probe measures: the verdict, the calls whose states it reads and every
        signal its combination weighs."""
        wanted = {"verdict", *self.calls, *self.combination.weights}
        return [signal for signal in get_args(GateSignal) if signal in wanted]

    @model_validator(mode="after")
    def _shapes(self) -> Probe:
        sizes = {self.mean.size, self.scale.size, self.weights.size}
        if len(sizes) != 1:
            raise ValueError(f"mean, scale and weights differ in length ({sorted(sizes)})")
        if len(set(self.calls)) < len(self.calls):
            raise ValueError(f"calls {self.calls} name a call twice")
        if self.weights.size % (len(self.layers) * len(self.calls)):
            raise ValueError(
                f"{self.weights.size} weights do not split evenly over calls {self.calls} x layers {self.layers}"
            )
        if np.any(self.scale <= 0) or not np.all(np.isfinite(self.weights)):
            raise ValueError("scale must be positive and weights finite")
        if "probe" not in self.combination.weights:
            raise ValueError("combination must weigh the probe")
        return self

    @property
    def width(self) -> int:
        """The model's hidden size these weights expect per layer."""
        return self.weights.size // (len(self.layers) * len(self.calls))

    def logit(self, states: CallStates) -> float:
        """The probe's log-odds of "answerable" for the states read in its calls at its layers."""
        rows = []
        for call in self.calls:
            read = states.get(call) or {}
            for layer in self.layers:
                state = read.get(layer, read.get(str(layer)))  # type: ignore[call-overload]
                if state is None:
                    raise ProbeError(f"no hidden state for layer {layer} in the {call} call (read: {sorted(read)})")
                row = np.asarray(state, dtype=np.float64)
                if row.shape != (self.width,):
                    raise ProbeError(
                        f"layer {layer}'s state in the {call} call has shape {row.shape}, the probe expects "
                        f"({self.width},)"
                    )
                rows.append(row)
        x = (np.concatenate(rows) - self.mean) / self.scale
        z = float(x @ self.weights + self.bias)
        if not np.isfinite(z):
            raise ProbeError("the hidden state gives a non-finite probe score")
        return z

    def probability(self, states: CallStates) -> float:
        return sigmoid(self.logit(states))

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.model_dump(mode="json"), indent=1) + "\n", encoding="utf-8")


def load_probe(path: Path) -> Probe:
    """Read a probe file; `ConfigError` says what is wrong with it."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"Probe file {path} cannot be read ({exc.strerror}): check guard.probe.") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"Probe file {path} is not JSON ({exc}); write it with `rag-guard fit-probe`.") from None
    try:
        return Probe.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "(top level)"
        raise ConfigError(
            f"Probe file {path} is not a valid probe: {where}: {first['msg']}. Fit one with `rag-guard fit-probe`."
        ) from None


def shipped_probe(preset: str) -> Path | None:
    """The probe fitted for a model preset, when the package ships one."""
    candidate = resources.files(PROBE_PACKAGE) / f"{preset}.json"
    return Path(str(candidate)) if candidate.is_file() else None


def unasked_calls(probe: Probe, signals: Sequence[str]) -> list[str]:
    """The calls the probe reads that these signals do not make (the verdict's is always made)."""
    return [call for call in probe.calls if call != "verdict" and call not in signals]


def check_model(probe: Probe, source: Path | str, model_sha256: str, model: str) -> None:
    """A probe reads one GGUF's hidden states; on any other model its weights are noise, so refuse to load."""
    if probe.model_sha256 != model_sha256:
        raise ConfigError(
            f"Probe {source} was fitted on {probe.model_name} (GGUF sha256 {probe.model_sha256}), but the judge "
            f"loads {model} (sha256 {model_sha256}). Fit a probe for this model with `rag-guard fit-probe`, "
            "point guard.probe at one, or set guard.probe: off."
        )


def check_prompt(probe: Probe, source: Path | str, prompt_sha256: str) -> None:
    """A probe reads the states of the prompts it was fitted under; under other prompts (another release's
    layout, guard.prompt, few_shot) its weights read other states, so refuse to load."""
    if probe.prompt_sha256 != prompt_sha256:
        fitted = f"prompts with sha256 {probe.prompt_sha256}" if probe.prompt_sha256 else "unrecorded prompts"
        raise ConfigError(
            f"Probe {source} was fitted on states read under {fitted}, but the judge's prompts as configured have "
            f"sha256 {prompt_sha256} (guard.prompt, guard.few_shot, guard.instruction_first, or a release that "
            "changed the prompts). Fit it again with `rag-guard fit-probe`, or set guard.probe: off."
        )


def probe_path(source: Literal["auto", "off"] | Path, model_path: Path | None, preset: str) -> Path | None:
    """The file `guard.probe` stands for: a named file, else the probe shipped for the preset (none for a
    judge's own GGUF, or when `off`)."""
    if isinstance(source, Path):
        return source
    return shipped_probe(preset) if source == "auto" and model_path is None else None


def no_probe_for(model_path: Path | None, preset: str) -> str:
    return (
        f"guard.signals include probe, but no probe ships for {model_path or 'preset ' + preset}: fit one with "
        "`rag-guard fit-probe` and set guard.probe to its file, or drop probe from guard.signals"
    )
