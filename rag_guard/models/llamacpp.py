"""`ChatLlamaCpp`: a LangChain chat model over llama-cpp-python, running a GGUF in-process.

It returns logprobs in ChatOpenAI's `response_metadata["logprobs"]` shape without `logits_all=True`:
llama.cpp is asked for the last position's logits only, and the log-softmax is taken in numpy. Greedy
decoding is a loop over those logits, so every generated token comes with its logprob at no extra cost.

Each process loads a GGUF once; calls share that instance under a lock (llama.cpp contexts are not
thread-safe). The KV cache of the previous prompt is kept, so a prompt that starts with the same tokens
(the guard's prompt, then the answer's, which continues it) only evaluates its new suffix. A call that
names its own ending (`branch`) forks from the shared part before it: the guard's one-token questions differ
only in their instructions, so each evaluates its instruction and nothing of the passages again.

A call may also ask for the hidden state of chosen layers at the prompt's last token (`hidden_layers`), read
from the same forward pass that gives the first token's logits (`hidden_states.py`); the guard's probe
scores it.
"""

from __future__ import annotations

import atexit
import codecs
import contextlib
import os
import threading
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LangSmithParams
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables.config import run_in_executor
from pydantic import ConfigDict, Field, PrivateAttr

from rag_guard.errors import ModelUnavailableError
from rag_guard.models.hidden_states import HiddenStateCapture, eval_callback_installed

_EVAL_BLOCK = 64
"""Prompt tokens per llama.cpp batch; as fast as larger batches on CPU, and the unit of prefix reuse."""
_ROLE = {"human": "user", "ai": "assistant", "system": "system", "tool": "tool"}


class _LoadedModel:
    """One llama.cpp instance, its chat template and the lock that serialises its use."""

    def __init__(self, path: Path, n_ctx: int, n_threads: int | None, seed: int, observe: bool = True) -> None:
        try:
            from llama_cpp import Llama
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter
        except ImportError as exc:  # pragma: no cover - a broken install
            raise ModelUnavailableError(f"llama-cpp-python is not importable: {exc}") from None
        started = time.perf_counter()
        self.capture = HiddenStateCapture()
        try:
            with eval_callback_installed(self.capture.callback) if observe else contextlib.nullcontext():
                self.llama = Llama(
                    model_path=str(path),
                    n_ctx=n_ctx,
                    n_threads=n_threads or os.cpu_count(),
                    n_batch=512,
                    seed=seed,
                    logits_all=False,
                    verbose=False,
                )
        except (ValueError, RuntimeError) as exc:
            raise ModelUnavailableError(f"llama.cpp could not load {path}: {exc}") from None
        self.load_seconds = time.perf_counter() - started
        self.lock = threading.Lock()
        self.n_vocab = self.llama.n_vocab()
        self.capture.n_embd = self.llama.n_embd()
        meta = self.llama.metadata
        self.n_layers = int(meta.get(f"{meta.get('general.architecture', 'llama')}.block_count", 0))
        """Transformer blocks; hidden states can be read after any of them (0 to n_layers - 1)."""
        template = meta.get("tokenizer.chat_template")
        if not template:
            raise ModelUnavailableError(
                f"{path} has no chat template (tokenizer.chat_template); use an instruct/chat GGUF."
            )
        vocab = self.llama._model

        def token_text(key: str) -> str:
            token_id = meta.get(key)
            return vocab.token_get_text(int(token_id)) if token_id is not None else ""

        self.formatter = Jinja2ChatFormatter(
            template=template,
            eos_token=token_text("tokenizer.ggml.eos_token_id"),
            bos_token=token_text("tokenizer.ggml.bos_token_id"),
            add_generation_prompt=True,
        )
        self.name = meta.get("general.name", path.stem)
        self.prompt_tokens = 0
        """How many leading cached tokens are the last prompt."""
        self.batch_starts: list[int] = []
        """Where each batch of that prompt began (`_batch_starts`), to tell which cached states a cold
        evaluation of the next prompt would compute alike."""


_MODELS: dict[tuple[str, int, int | None, int, bool], _LoadedModel] = {}
_MODELS_LOCK = threading.Lock()


def load_model(
    path: Path, n_ctx: int, n_threads: int | None = None, seed: int = 0, observe: bool = True
) -> _LoadedModel:
    """The process-wide instance for these settings, loading it on first use; `observe` installs the graph
    callback that reads hidden states."""
    key = (str(Path(path).resolve()), n_ctx, n_threads, seed, observe)
    with _MODELS_LOCK:
        if key not in _MODELS:
            _MODELS[key] = _LoadedModel(Path(path), n_ctx, n_threads, seed, observe)
        return _MODELS[key]


@atexit.register
def _close_models() -> None:
    """Free the models while the interpreter is intact: llama.cpp's own finaliser fails during shutdown."""
    with _MODELS_LOCK:
        for model in _MODELS.values():
            model.llama.close()
        _MODELS.clear()


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits.astype(np.float64) - float(np.max(logits))
    return shifted - np.log(np.sum(np.exp(shifted)))


class ChatLlamaCpp(BaseChatModel):
    """In-process chat model over a GGUF file; logprobs shaped like ChatOpenAI's.

    Call-time options (as keyword arguments or through `.bind`) use OpenAI's names: `max_tokens`,
    `temperature`, `logprobs`, `top_logprobs`, `stop`; and `hidden_layers`, layers whose state at the prompt's
    last token the reply carries as `response_metadata["hidden_states"]` (`{layer: [floats]}`), and `branch`,
    the text the last message ends with that is this call's own (see `_evaluate_prompt`).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    model_path: Path
    """The GGUF file."""
    n_ctx: int = 4096
    """Context window in tokens (prompt plus generated tokens)."""
    n_threads: int | None = None
    """CPU threads; None uses every core."""
    max_tokens: int = 256
    temperature: float = 0.0
    """0 decodes greedily; above 0 samples from the softmax at that temperature."""
    seed: int = 0
    stop: list[str] | None = None
    """Stop sequences for every call that gives none of its own."""
    logprobs: bool = False
    """Attach each generated token's logprob (and `top_logprobs` alternatives) to the reply."""
    top_logprobs: int = Field(0, ge=0, le=50)
    reuse_prefix: bool = True
    """Keep the KV cache of the common prompt prefix between calls; off only to measure what it saves."""
    read_hidden_states: bool = True
    """Load the model with the graph callback that serves `hidden_layers`; off only to measure what it costs."""

    forks_prompts: ClassVar[bool] = True
    """Takes `branch`: a caller asking several prompts that share their start (the guard) says where each
    one's own text begins, and the shared part is evaluated once."""

    _model: _LoadedModel | None = PrivateAttr(default=None)

    @property
    def _llm_type(self) -> str:
        return "llamacpp-embedded"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_path": str(self.model_path), "n_ctx": self.n_ctx, "temperature": self.temperature}

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        """What LangSmith traces name: the GGUF (by file name), and the call's sampling options."""
        params = LangSmithParams(
            ls_provider="llamacpp",
            ls_model_name=self.model_path.stem,
            ls_model_type="chat",
            ls_temperature=kwargs.get("temperature", self.temperature),
            ls_max_tokens=kwargs.get("max_tokens", self.max_tokens),
        )
        if ls_stop := stop or self.stop:
            params["ls_stop"] = ls_stop
        return params

    @property
    def loaded(self) -> _LoadedModel:
        if self._model is None:
            self._model = load_model(self.model_path, self.n_ctx, self.n_threads, self.seed, self.read_hidden_states)
        return self._model

    def forget_prompt(self) -> None:
        """Drop the cached prompt, so the next call evaluates its whole prompt (benchmarks start cold)."""
        model = self.loaded
        with model.lock:
            model.llama.reset()
            model.prompt_tokens = 0
            model.batch_starts = []

    # --- tokens ---------------------------------------------------------------------------------------

    def prompt_tokens(self, messages: Sequence[BaseMessage]) -> list[int]:
        """The chat-templated prompt as token ids, exactly as `_stream` evaluates it."""
        model = self.loaded
        chat = [{"role": _ROLE.get(m.type, m.type), "content": m.text} for m in messages]
        prompt = model.formatter(messages=chat).prompt
        return model.llama.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)

    def branch_point(self, messages: Sequence[BaseMessage], tokens: Sequence[int], branch: str | None) -> int:
        """How many of the prompt's `tokens` come before `branch`, the text its last message ends with: the part
        calls with other endings share. All of them without a branch."""
        if not branch:
            return len(tokens)
        last = messages[-1]
        if not isinstance(last.content, str) or not last.content.endswith(branch):
            raise ValueError("branch must be the text the prompt's last message ends with")
        shared = self.prompt_tokens([*messages[:-1], last.model_copy(update={"content": last.content[: -len(branch)]})])
        return _common_prefix(shared, tokens)

    def get_num_tokens(self, text: str) -> int:
        return len(self.loaded.llama.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def get_num_tokens_from_messages(self, messages: list[BaseMessage], tools: Any = None) -> int:
        return len(self.prompt_tokens(messages))

    # --- generation -----------------------------------------------------------------------------------

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        merged: ChatGenerationChunk | None = None
        for chunk in self._stream(messages, stop=stop, run_manager=run_manager, **kwargs):
            merged = chunk if merged is None else merged + chunk
        assert merged is not None  # _stream always yields its final chunk
        message = merged.message
        final = AIMessage(
            content=message.content,
            response_metadata=message.response_metadata,
            usage_metadata=message.usage_metadata,
            id=message.id,
        )
        return ChatResult(generations=[ChatGeneration(message=final)])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        max_tokens = int(kwargs.get("max_tokens") or self.max_tokens)
        temperature = float(kwargs.get("temperature", self.temperature))
        want_logprobs = bool(kwargs.get("logprobs", self.logprobs))
        top_k = int(kwargs.get("top_logprobs", self.top_logprobs) or 0)
        stops = [s for s in (stop or self.stop or []) if s]
        layers = tuple(kwargs.get("hidden_layers") or ())
        model = self.loaded
        if layers and not self.read_hidden_states:
            raise ValueError("hidden_layers needs read_hidden_states=True")
        if any(not 0 <= layer < model.n_layers for layer in layers):
            raise ValueError(
                f"hidden_layers {layers} must lie in 0..{model.n_layers - 1}: {model.name} has {model.n_layers} layers"
            )
        llama = model.llama
        rng = np.random.default_rng(self.seed)

        with model.lock:
            tokens = self.prompt_tokens(messages)
            split = self.branch_point(messages, tokens, kwargs.get("branch"))
            if len(tokens) >= self.n_ctx:
                raise ValueError(
                    f"the prompt is {len(tokens)} tokens, more than the model's context window "
                    f"(n_ctx={self.n_ctx}); shorten it or raise model.n_ctx"
                )
            max_tokens = min(max_tokens, self.n_ctx - len(tokens))
            started = time.perf_counter()
            with model.capture.capturing(layers) as hidden:
                reused = self._evaluate_prompt(model, tokens, split)
            prompt_eval_s = time.perf_counter() - started

            decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
            pending = ""  # text held back while it could be the start of a stop sequence
            generated = 0
            finish_reason = "length"
            holdback = max((len(s) for s in stops), default=1) - 1
            for _ in range(max_tokens):
                logits = np.ctypeslib.as_array(_last_logits(llama), shape=(model.n_vocab,))
                logprobs = _log_softmax(logits)
                token = self._choose(logprobs, temperature, rng)
                if _is_end_of_generation(llama, token):
                    finish_reason = "stop"
                    break
                generated += 1
                piece_bytes = llama.detokenize([token], special=False)
                entry = _logprob_entry(llama, token, logprobs, top_k) if want_logprobs else None
                pending += decoder.decode(piece_bytes)
                hit = _find_stop(pending, stops)
                if hit is not None:
                    pending = pending[:hit]
                    finish_reason = "stop"
                emit, pending = (pending, "") if hit is not None else _split_holdback(pending, holdback)
                yield self._chunk(emit, entry, run_manager)
                if hit is not None or generated == max_tokens:
                    break
                llama.eval([token])
            tail = pending + decoder.decode(b"", final=True)
            final_meta = {
                "finish_reason": finish_reason,
                "model_name": model.name,
                "prompt_tokens_reused": reused,
                "prompt_eval_s": prompt_eval_s,
            }
            if layers:
                final_meta["hidden_states"] = {layer: state.tolist() for layer, state in hidden.items()}
            usage = UsageMetadata(
                input_tokens=len(tokens), output_tokens=generated, total_tokens=len(tokens) + generated
            )
            yield ChatGenerationChunk(
                message=AIMessageChunk(
                    content=tail,
                    response_metadata=final_meta,
                    usage_metadata=usage,
                    chunk_position="last",
                )
            )

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        """`_stream` in a worker thread, closed as soon as the consumer stops.

        LangChain's default leaves the sync generator suspended when the consumer stops early (a
        single-pass refusal does), holding the model's lock until garbage collection.
        """
        pieces = self._stream(messages, stop, run_manager.get_sync() if run_manager else None, **kwargs)
        done = object()
        try:
            while (item := await run_in_executor(None, next, pieces, done)) is not done:
                yield item  # type: ignore[misc]
        finally:
            # ValueError: still running in a worker after a cancellation; dropped, it closes when that returns.
            with contextlib.suppress(ValueError):
                pieces.close()

    def _chunk(
        self, text: str, entry: dict[str, Any] | None, run_manager: CallbackManagerForLLMRun | None
    ) -> ChatGenerationChunk:
        metadata = {"logprobs": {"content": [entry]}} if entry is not None else {}
        chunk = ChatGenerationChunk(message=AIMessageChunk(content=text, response_metadata=metadata))
        if run_manager and text:
            run_manager.on_llm_new_token(text, chunk=chunk)
        return chunk

    def _evaluate_prompt(self, model: _LoadedModel, tokens: list[int], split: int) -> int:
        """Evaluate `tokens`, reusing the cached prefix; return how many prompt tokens were reused.

        llama.cpp's results depend on how a prompt is cut into batches, so a prompt is always cut the same
        way (`_batch_starts`: blocks from the start, and again from `split`, where the call's own part
        begins), and evaluation resumes only where the cached prompt was cut alike: every batch then sees
        exactly what a cold evaluation gives it, and the logits are the same to the last bit (the guard's
        verdict does not depend on what ran before; tests pin this). Calls that share everything before
        their `split` thus fork from the same cached state. A prompt with no branch that continues the whole
        previous one (the answer after the verdict) is evaluated from where that one ended in one batch, since
        no verdict is read from it.
        """
        llama = model.llama
        starts = _batch_starts(len(tokens), split)
        keep, continues = 0, False
        if self.reuse_prefix and llama.n_tokens > 0:
            cached = llama._input_ids[: model.prompt_tokens]
            same = _common_prefix(cached, tokens)
            continues = same == len(cached) < len(tokens) and split == len(tokens)
            # Otherwise the last prompt token is always evaluated again: its logits are the ones we read.
            keep = same if continues else _resume_point(starts, model.batch_starts, min(same, len(tokens) - 1))
        if keep > 0 and llama._ctx.kv_cache_seq_rm(-1, keep, -1):
            llama.n_tokens = keep  # drops what was generated after the cached prompt too
        else:
            keep, continues = 0, False
            llama.reset()
        if continues:
            llama.eval(tokens[keep:])  # one batch: every llama.cpp call reads all the weights once
            model.batch_starts = [*model.batch_starts, keep]
        else:
            todo = [start for start in starts if start >= keep]
            for start, end in zip(todo, [*todo[1:], len(tokens)], strict=True):
                llama.eval(tokens[start:end])
            model.batch_starts = starts
        model.prompt_tokens = len(tokens)
        return keep

    @staticmethod
    def _choose(logprobs: np.ndarray, temperature: float, rng: np.random.Generator) -> int:
        if temperature <= 0:
            return int(np.argmax(logprobs))
        scaled = logprobs / temperature
        probs = np.exp(scaled - scaled.max())
        return int(rng.choice(probs.size, p=probs / probs.sum()))


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """How many leading tokens `a` and `b` share."""
    limit = min(len(a), len(b))
    differ = np.nonzero(np.asarray(a[:limit]) != np.asarray(b[:limit]))[0]
    return int(differ[0]) if differ.size else limit


def _batch_starts(n_tokens: int, split: int) -> list[int]:
    """Where each batch of a prompt begins: blocks of `_EVAL_BLOCK` from the start up to `split`, then from
    `split` to the end. A function of the prompt alone, so a warm evaluation can repeat a cold one."""
    return [*range(0, split, _EVAL_BLOCK), *range(split, n_tokens, _EVAL_BLOCK)]


def _resume_point(starts: list[int], cached_starts: list[int], limit: int) -> int:
    """The furthest batch start, up to `limit`, before which both prompts were cut into the same batches."""
    point = 0
    for start, cached in zip(starts, cached_starts, strict=False):
        if start != cached or start > limit:
            break
        point = start
    return point


def _last_logits(llama: Any) -> Any:
    import llama_cpp

    return llama_cpp.llama_get_logits_ith(llama.ctx, -1)


def _is_end_of_generation(llama: Any, token: int) -> bool:
    import llama_cpp

    return bool(llama_cpp.llama_vocab_is_eog(llama._model.vocab, token))


def _token_entry(llama: Any, token: int, logprob: float) -> dict[str, Any]:
    raw = llama.detokenize([token], special=True)
    return {"token": raw.decode("utf-8", errors="replace"), "logprob": float(logprob), "bytes": list(raw)}


def _logprob_entry(llama: Any, token: int, logprobs: np.ndarray, top_k: int) -> dict[str, Any]:
    entry = _token_entry(llama, token, logprobs[token])
    top: list[dict[str, Any]] = []
    if top_k > 0:
        best = np.argpartition(logprobs, -top_k)[-top_k:]
        best = best[np.argsort(logprobs[best])[::-1]]
        top = [_token_entry(llama, int(t), logprobs[t]) for t in best]
    entry["top_logprobs"] = top
    return entry


def _find_stop(text: str, stops: list[str]) -> int | None:
    positions = [text.find(s) for s in stops if s in text]
    return min(positions) if positions else None


def _split_holdback(text: str, holdback: int) -> tuple[str, str]:
    if holdback <= 0 or not text:
        return text, ""
    return text[:-holdback], text[-holdback:]
