"""The settings' schema: every key a user tunes, its default, its bounds and the rules across keys.

Pure validation: reading files, environment overrides and the probe a setting names are `loading.py`'s,
writing back `writing.py`'s.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from rag_guard.errors import ConfigError
from rag_guard.judging.calibration import Calibration
from rag_guard.judging.decision import check_thresholds
from rag_guard.judging.signals import GateSignal
from rag_guard.models.servers import SERVER_DEFAULT_URLS
from rag_guard.store.settings import ChromaSettings, EmbeddingSettings


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


Provider = Literal["llamacpp", "ollama", "openai"]


class ModelSettings(_Section):
    """A chat model: the answerer (`model:`) and, unless `guard.model:` is set, the judge too."""

    provider: Provider = "llamacpp"
    """`llamacpp` runs a GGUF in-process; `ollama` talks to an Ollama server; `openai` to any
    OpenAI-compatible server (OpenAI, DeepSeek, vLLM, llama.cpp's server, Ollama's /v1)."""
    name: str | None = None
    """The model on the server (`qwen2.5:7b`, `deepseek-chat`, ...); required for ollama and openai."""
    base_url: str | None = Field(None, pattern=r"^https?://\S+$")
    """The server's URL; empty means http://localhost:11434 (ollama) or https://api.openai.com/v1 (openai)."""
    api_key_env: str = Field("OPENAI_API_KEY", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    """openai: the environment variable that holds the API key (keys never live in config.yaml)."""
    timeout_s: float = Field(120.0, gt=0, le=3600)
    """Seconds to wait for a server reply before giving up (and refusing)."""
    max_retries: int = Field(2, ge=0, le=10)
    """Retries after a failed connection (and, on openai, a timeout or a 429/5xx) before refusing."""
    preset: Literal["default", "small"] = "default"
    """llamacpp: `default` is Qwen2.5-Coder-1.5B-Instruct; `small` is Qwen2.5-Coder-0.5B-Instruct."""
    path: Path | None = None
    """llamacpp: a local GGUF file; when set it replaces the preset."""
    n_ctx: int = Field(4096, ge=512, le=131072)
    """Context window in tokens (sent to Ollama as num_ctx): the retrieved context is cut by rank to fit it."""
    n_threads: int | None = Field(None, ge=1)
    """llamacpp: CPU threads; empty means all cores."""
    max_tokens: int = Field(256, ge=1, le=8192)
    """Longest answer or clarifying question, in tokens."""
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    """0 is greedy decoding: the same question gives the same answer."""
    seed: int = 0
    concurrency: int = Field(4, ge=1, le=256)
    """ollama/openai: requests in flight at once (`abatch`, `eval`, `serve`). The embedded model always
    runs one request at a time, whatever this says."""

    @model_validator(mode="after")
    def _server_needs_name(self) -> ModelSettings:
        if self.provider != "llamacpp" and not self.name:
            example = "qwen2.5:7b" if self.provider == "ollama" else "deepseek-chat"
            raise ValueError(f"provider {self.provider!r} needs name: the model on the server, e.g. {example!r}")
        return self

    @property
    def url(self) -> str | None:
        """The server's base URL, defaulted per provider; None for the embedded model."""
        if self.provider == "llamacpp":
            return None
        return (self.base_url or SERVER_DEFAULT_URLS[self.provider]).rstrip("/")


DEFAULT_SIGNALS: dict[str, tuple[GateSignal, ...]] = {"two_call": ("verdict",), "single_pass": ("verdict",)}
"""The verdict token alone: across the gate's suite (docs/studies/probe.md) neither the answer start nor the shipped
probe added to it on both question styles. Loading adds what a named probe needs (`loading._with_probe_signals`)."""


RENAMED = {
    "answer_check": "verify_answer (true for buffer)",
    "answer_check_threshold": "verify_threshold",
}
"""The guard keys renamed in 0.3 (CHANGELOG.md): `answer_check` also named the grounding record."""


class GuardSettings(_Section):
    """The sufficiency gate: one True/False token, turned into P(sufficient), compared to thresholds."""

    answer_threshold: float = Field(0.778, ge=0.0, le=1.0)
    """At or above this P(sufficient) the pipeline answers."""
    clarify_threshold: float = Field(0.5, ge=0.0, le=1.0)
    """At or above this (and below answer_threshold) it asks a clarifying question; below it refuses."""
    top_logprobs: int = Field(20, ge=2, le=20)
    """Alternatives read at the verdict token; more alternatives find more True/False spellings."""
    prompt: str | None = None
    """Replaces the built-in guard instruction; it must ask for a single True or False."""
    model: ModelSettings | None = None
    """A judge apart from the answerer (same keys as `model:`); empty means `model:` judges too."""
    fail_mode: Literal["refuse", "error"] = "refuse"
    """When no trustworthy probability can be had: `refuse` (with the reason) or `error` (raise, for
    developers). No setting answers without a verdict."""
    signals: list[GateSignal] = Field(default_factory=lambda: list(DEFAULT_SIGNALS["two_call"]), min_length=1)
    """What P(sufficient) is made of: `verdict` (the guard's token), `extract` (the first word of a short
    answer quoted from the passages, one more token from the same cached passages), `missing` (the reversed
    question, one more token), `retrieval` (the best passage's similarity, free). Left out or null: the mode's
    default (`DEFAULT_SIGNALS`)."""
    calibration: Calibration | None = None
    """The logistic map from the signals to P(sufficient), written by `rag-guard calibrate --write`; the
    thresholds apply to its output. Empty: `Signals.combined`, the verdict discounted by an uncertain answer
    start (and debiased by `missing` when that is measured)."""
    judge_parts: bool = True
    """A question that asks several things ("When was it launched, and what did it cost?") is judged part by
    part too, one more token each, and counts as sufficient as its least covered part (`judging/parts.py`).
    Two-call mode only."""
    instruction_first: bool = False
    """Put the guard's instruction and the question before the passages (a prompt variant of the study)."""
    few_shot: bool = False
    """Worked near-miss examples in the system text, a prompt variant of the study: a little better on SQuAD,
    within noise, but it raised P(sufficient) on unanswerable questions elsewhere (docs/studies/signals.md)."""
    mode: Literal["two_call", "single_pass"] = "two_call"
    """`two_call`: a one-token verdict, then the answer from the same cached prefix. `single_pass`: one
    generation whose first token is the verdict; the answer streams on only if the gate passes."""
    grounding: bool = True
    """Every answer is held back until its numbers, names and quoted phrases are found in its passages
    (`reply/grounding.py`: deterministic, no model call); an answer stating one they lack is replaced by a
    message quoting what they say. Off: answers stream as they are written, unchecked."""
    answer_style: Literal["free", "quote"] = "quote"
    """`quote`: the answer-start call runs on for a few words; when they stand word for word in a passage, the
    answer is that span, cited, with the passage's sentence that holds it quoted (`reply/quote.py`);
    otherwise the model writes a free answer, held to the grounding check. `free`: always the model's answer."""
    verify_answer: bool = False
    """After an answer is written or quoted, one more token asks whether it answers the question from the
    passages alone (`reply/checks.py`): the answer is held back, streaming too, until the check passes; a failed
    check replaces it with a clarifying message, and a check without a probability withholds it."""
    verify_threshold: float = Field(0.5, ge=0.0, le=1.0)
    """With `verify_answer`: the P(supported) an answer needs to be shown."""
    probe: Literal["auto", "off"] | Path = "off"
    """The hidden-state probe the `probe` signal reads: `off` none (the default), `auto` the probe shipped for
    the embedded judge's preset (none for a `path` model), or a file written by `rag-guard fit-probe` for this
    GGUF. Named while `signals` is unset, it is used with the signals its combination weighs."""

    @field_validator("probe", mode="before")
    @classmethod
    def _yaml_booleans(cls, value: Any, info: ValidationInfo) -> Any:
        return switched(info.field_name or "", value)

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data: Any) -> Any:
        """Keys renamed in 0.3 name their new spelling instead of reading as unknown."""
        if isinstance(data, dict) and (old := sorted(RENAMED.keys() & data.keys())):
            raise ValueError("; ".join(f"`{key}` is now `{RENAMED[key]}`" for key in old))
        return data

    @model_validator(mode="after")
    def _thresholds_ordered(self) -> GuardSettings:
        check_thresholds(self.answer_threshold, self.clarify_threshold)
        if self.mode == "single_pass" and self.model is not None:
            raise ValueError(
                "mode single_pass reads the verdict from the answerer's own first token, so it cannot use a "
                "separate guard.model: remove guard.model, or set mode: two_call"
            )
        return self

    @model_validator(mode="before")
    @classmethod
    def _default_signals(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("signals") is None:
            mode = data.get("mode", "two_call")
            return {**data, "signals": list(DEFAULT_SIGNALS.get(mode, DEFAULT_SIGNALS["two_call"]))}
        return data

    @model_validator(mode="after")
    def _signals_measurable(self) -> GuardSettings:
        signals = set(self.signals)
        if "verdict" not in signals:
            raise ValueError(f"signals {self.signals} must include verdict, the guard's own token")
        if "probe" in signals and self.probe == "off":
            raise ValueError("signals include probe but probe is off: name a probe file, set probe: auto, or drop it")
        if self.mode == "single_pass" and signals != {"verdict"}:
            raise ValueError("mode single_pass reads only the verdict token: set signals: [verdict]")
        if self.calibration is not None and set(self.calibration.weights) != signals:
            raise ValueError(
                f"calibration combines {sorted(self.calibration.weights)} but signals is {sorted(signals)}: run "
                "`rag-guard calibrate --write` again after changing signals, or set them back"
            )
        if self.calibration is None and "retrieval" in signals:
            raise ValueError(
                "signals include retrieval, which only a fitted calibration can weigh: run "
                "`rag-guard calibrate --corpus DIR --questions FILE --write`"
            )
        return self

    @property
    def prompt_fingerprint(self) -> str:
        """sha256 of the judge's prompts as configured (`prompts.prompt_fingerprint`)."""
        from rag_guard.judging.prompts import prompt_fingerprint

        return prompt_fingerprint(self.prompt, instruction_first=self.instruction_first, few_shot=self.few_shot)


class DemoSettings(_Section):
    """What `rag-guard ingest` and `rag-guard demo` read."""

    corpus_dir: Path = Path("corpora")
    questions: Path = Path("corpora/questions.jsonl")
    sample: list[str] = Field(default_factory=list)
    """Questions shown by `rag-guard demo` without --all; empty means a few of each kind from the questions file."""


class ServeSettings(_Section):
    """`rag-guard serve`: the OpenAI-compatible HTTP endpoint."""

    host: str = "127.0.0.1"
    """Loopback only, unless told otherwise (0.0.0.0 listens on every interface)."""
    port: int = Field(8000, ge=1, le=65535)
    model_name: str = Field("rag-guard", min_length=1)
    """The model id that /v1/models lists and replies carry."""
    api_key_env: str = Field("RAG_GUARD_API_KEY", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    """When this environment variable is set, requests need `Authorization: Bearer <its value>`."""
    max_request_bytes: int = Field(262_144, ge=1024)
    """Larger request bodies get 413."""
    request_timeout_s: float = Field(300.0, gt=0)
    """A request still unanswered after this long (queueing included) gets 504."""
    queue_size: int = Field(16, ge=0)
    """Requests that may wait for a free model; more get 503 with Retry-After."""
    retry_after_s: int = Field(10, ge=1)
    """The Retry-After a busy server sends."""
    shutdown_grace_s: float = Field(60.0, ge=0)
    """On SIGTERM/Ctrl-C, how long requests in flight may take to finish before the server stops."""


class Settings(_Section):
    """Everything a user tunes; one instance per process, built by `load_config`."""

    model: ModelSettings = Field(default_factory=ModelSettings)
    embeddings: EmbeddingSettings = Field(default_factory=EmbeddingSettings)
    chroma: ChromaSettings = Field(default_factory=ChromaSettings)
    guard: GuardSettings = Field(default_factory=GuardSettings)
    demo: DemoSettings = Field(default_factory=DemoSettings)
    serve: ServeSettings = Field(default_factory=ServeSettings)
    cache_dir: Path = Path("~/.cache/rag_guard")
    """Where assembled GGUF models are kept (shared by every checkout)."""
    source: Path | None = Field(None, exclude=True)
    """The file this was loaded from; relative paths were resolved against its directory."""

    @property
    def judge(self) -> ModelSettings:
        """The model that judges: `guard.model`, else `model`."""
        return self.guard.model or self.model

    def with_collection(self, name: str | None) -> Settings:
        """These settings on another Chroma collection (`--collection`); None keeps `chroma.collection`."""
        if name is None:
            return self
        try:
            chroma = ChromaSettings.model_validate({**self.chroma.model_dump(), "collection": name})
        except ValidationError:
            raise ConfigError(
                f"Collection name {name!r} is not one Chroma accepts: use 3 to 63 letters, digits, dots, dashes or "
                "underscores, starting and ending with a letter or digit."
            ) from None
        return self.model_copy(update={"chroma": chroma})

    @model_validator(mode="after")
    def _probe_readable(self) -> Settings:
        if "probe" not in self.guard.signals:
            return self
        judge = self.judge
        if judge.provider != "llamacpp":
            raise ValueError(
                f"guard.signals include probe, which reads the judge's hidden states; the {judge.provider} provider "
                "sends none over its API (only the embedded llamacpp model can be probed): drop probe from "
                "guard.signals"
            )
        from rag_guard.judging.probe import no_probe_for, probe_path

        if probe_path(self.guard.probe, judge.path, judge.preset) is None:
            raise ValueError(no_probe_for(judge.path, judge.preset))
        return self


_SWITCHES = {"probe": ("auto", "off")}
"""Settings whose values include `off`: what true and false stand for."""


def switched(name: str, value: Any) -> Any:
    """`off`/`on` as a YAML 1.1 writer (PyYAML) leaves them, false and true, as the setting's own words."""
    if isinstance(value, bool) and name in _SWITCHES:
        return _SWITCHES[name][not value]
    return value
