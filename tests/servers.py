"""Local HTTP servers for the backend tests: llama.cpp's real OpenAI-compatible server, and an Ollama replay.

Both listen on 127.0.0.1 on a free port, so tests can run side by side and never touch the network.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self

import httpx

from rag_guard.judging.prompts import EXTRACT_INSTRUCTION
from rag_guard.judging.signals import Signals


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def process_server(
    name: str, command: list[str], ready_url: str, log: Path, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Run `command` until `ready_url` answers 200; stop it with SIGTERM (then SIGKILL) afterwards."""
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        _wait_until_up(name, ready_url, process, log)
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def llama_cpp_server(model: Path, alias: str, log: Path, n_ctx: int = 4096) -> Iterator[str]:
    """Run `python -m llama_cpp.server` on `model`; yields its OpenAI base URL (`http://127.0.0.1:PORT/v1`)."""
    port = free_port()
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--model_alias", alias]
    command += ["--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(n_ctx), "--seed", "0"]
    url = f"http://127.0.0.1:{port}/v1"
    with process_server("llama.cpp server", command, f"{url}/models", log):
        yield url


@contextmanager
def chroma_server(data: Path, log: Path) -> Iterator[int]:
    """A real `chroma run` on loopback with its data in `data`; yields its port."""
    port = free_port()
    chroma = Path(sys.executable).with_name("chroma")
    command = [str(chroma), "run", "--path", str(data), "--host", "127.0.0.1", "--port", str(port)]
    with process_server("chroma server", command, f"http://127.0.0.1:{port}/api/v2/heartbeat", log):
        yield port


@dataclass
class Served:
    """A running `rag-guard serve`: its OpenAI base URL and its process."""

    base_url: str
    process: subprocess.Popen[bytes]


@contextmanager
def rag_guard_server(config: Path, log: Path, env: dict[str, str], *args: str) -> Iterator[Served]:
    """`rag-guard serve --config CONFIG [ARGS]` on a free loopback port, ready (/readyz 200); `env` adds
    overrides."""
    port = free_port()
    command = [
        str(Path(sys.executable).with_name("rag-guard")),
        "serve",
        "--config",
        str(config),
        "--port",
        str(port),
        *args,
    ]
    environ = {**os.environ, "RAG_GUARD_API_KEY": "", **env}
    with process_server("rag-guard serve", command, f"http://127.0.0.1:{port}/readyz", log, env=environ) as process:
        yield Served(f"http://127.0.0.1:{port}/v1", process)


def _wait_until_up(name: str, url: str, process: subprocess.Popen[bytes], log: Path, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"{name} not up after {timeout_s} s:\n{log.read_text()[-3000:]}")


# --- Ollama -----------------------------------------------------------------------------------------------


@dataclass
class OllamaScript:
    """What the replay answers; tests change it between calls."""

    models: list[str] = field(default_factory=lambda: ["qwen2.5:7b", "nomic-embed-text:latest"])
    verdict: dict[str, float] = field(default_factory=lambda: {"True": 0.9, "False": 0.08, "The": 0.02})
    """The one-token reply (num_predict 1): token -> linear probability; the likeliest is generated."""
    answer_start: dict[str, float] = field(default_factory=lambda: {"1977": 0.8, "August": 0.1, "un": 0.1})
    """The reply to the extractive question (the `extract` signal's one token, a quote's first), likewise."""
    answer: list[str] = field(default_factory=lambda: ["Voyager", " 2", " launched", " in", " 1977", " [1]", "."])
    logprobs: bool = True
    """False replays an Ollama older than 0.12.11, which ignores the logprobs request fields."""


REPLAYED_P = Signals(verdict=0.9 / (0.9 + 0.08)).combined()
"""P(sufficient) from the default script as the default guard reads it: its verdict, True 0.9 against False 0.08."""

Reply = tuple[int, str, list[dict[str, Any]]]
"""(HTTP status, content type, JSON objects: one body, or the lines of an NDJSON stream)."""


class JsonServer:
    """A threaded HTTP server on a free loopback port that answers every request with `reply(path, body)`.

    It records each request (path, JSON body) and waits `delay_s` before replying, for timeout tests.
    """

    def __init__(
        self, reply: Callable[[str, dict[str, Any]], Reply] | None = None, delay_s: float = 0.0, port: int = 0
    ) -> None:
        """`port` 0 takes a free one; a given port brings a stopped server back where it was."""
        self._reply = reply
        self.delay_s = delay_s
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", port), _handler_for(self))
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def handle(self, path: str, body: dict[str, Any]) -> Reply:
        self.requests.append((path, body))
        time.sleep(self.delay_s)
        return self.reply(path, body)

    def reply(self, path: str, body: dict[str, Any]) -> Reply:
        assert self._reply is not None, "pass reply= or override reply()"
        return self._reply(path, body)


class OllamaReplay(JsonServer):
    """A protocol replay of Ollama's HTTP API, not an Ollama: no model runs here.

    It answers /api/chat, /api/tags and /api/embed in the shapes Ollama documents (an NDJSON stream of
    message chunks, each with `logprobs: [{token, logprob, bytes, top_logprobs}]` when they are asked for
    (Ollama 0.12.11+), then a `done` chunk with counts; a 404 `{"error": ...}` body for a model that is not
    pulled), and records every request body so tests can check the fields the client sent.
    """

    def __init__(self, script: OllamaScript | None = None, port: int = 0) -> None:
        super().__init__(port=port)
        self.script = script or OllamaScript()

    def chats(self) -> list[dict[str, Any]]:
        return [body for path, body in self.requests if path == "/api/chat"]

    # --- replies -----------------------------------------------------------------------------------------

    def reply(self, path: str, body: dict[str, Any]) -> Reply:
        if path == "/api/tags":
            return 200, "application/json", [{"models": [_model_entry(name) for name in self.script.models]}]
        name = _full_name(body.get("model", ""))
        if name not in self.script.models:
            return 404, "application/json", [{"error": f'model "{body.get("model")}" not found, try pulling it first'}]
        if path == "/api/embed":
            inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
            return 200, "application/json", [{"model": name, "embeddings": [_embed(text) for text in inputs]}]
        if path == "/api/chat":
            return 200, "application/x-ndjson", self._chat(body)
        return 404, "text/plain", [{"error": f"no route {path}"}]

    def _chat(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        options = body.get("options") or {}
        want_logprobs = bool(body.get("logprobs")) and self.script.logprobs
        top_n = int(body.get("top_logprobs") or 0)
        if options.get("num_predict") == 1:
            extractive = EXTRACT_INSTRUCTION in str(body["messages"][-1].get("content"))
            script = self.script.answer_start if extractive else self.script.verdict
            ranked = sorted(script.items(), key=lambda kv: kv[1], reverse=True)
            tokens = [(ranked[0][0], ranked)]
        else:
            tokens = [(token, [(token, 0.95), ("the", 0.05)]) for token in self.script.answer]
        lines = []
        for token, ranked in tokens:
            line: dict[str, Any] = {
                "model": body["model"],
                "created_at": "2026-11-25T10:00:00Z",
                "message": {"role": "assistant", "content": token},
                "done": False,
            }
            if want_logprobs:
                top = [_logprob(t, p) for t, p in ranked[:top_n]]
                line["logprobs"] = [{**_logprob(token, dict(ranked)[token]), "top_logprobs": top}]
            lines.append(line)
        lines.append(
            {
                "model": body["model"],
                "created_at": "2026-11-25T10:00:01Z",
                "message": {"role": "assistant", "content": ""},
                "done": True,
                "done_reason": "length" if options.get("num_predict") == 1 else "stop",
                "total_duration": 120_000_000,
                "prompt_eval_count": 400,
                "eval_count": len(tokens),
            }
        )
        return lines if body.get("stream", True) else [_join(lines)]


def _handler_for(server: JsonServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._send(*server.handle(self.path, {}))

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self._send(*server.handle(self.path, json.loads(self.rfile.read(length) or b"{}")))

        def _send(self, status: int, content_type: str, objects: list[dict[str, Any]]) -> None:
            payload = "".join(json.dumps(obj) + "\n" for obj in objects).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a timeout test)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


def _full_name(name: str) -> str:
    return name if ":" in name else f"{name}:latest"


def _model_entry(name: str) -> dict[str, Any]:
    return {"name": name, "model": name, "modified_at": "2026-11-01T00:00:00Z", "size": 1, "digest": "0" * 64}


def _logprob(token: str, probability: float) -> dict[str, Any]:
    return {"token": token, "logprob": math.log(probability), "bytes": list(token.encode())}


def _embed(text: str) -> list[float]:
    digest = hashlib.sha256(text.encode()).digest()
    vector = [b / 255 - 0.5 for b in digest[:16]]
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0
    return [v / norm for v in vector]


def _join(lines: list[dict[str, Any]]) -> dict[str, Any]:
    """A non-streamed reply: the stream's text and logprobs in the final object."""
    final = dict(lines[-1])
    final["message"] = {"role": "assistant", "content": "".join(line["message"]["content"] for line in lines)}
    logprobs = [entry for line in lines for entry in line.get("logprobs", [])]
    if logprobs:
        final["logprobs"] = logprobs
    return final
