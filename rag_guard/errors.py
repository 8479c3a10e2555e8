"""Every exception rag_guard raises, in one tree.

Each says what is wrong and how to fix it, so the CLI prints its message and exits with `exit_code` instead of
a traceback; `except RagGuardError` catches them all.

```
RagGuardError                   exit 1 unless said
├── ConfigError                 exit 2: config.yaml or an environment override is missing, unreadable, invalid
├── InvalidQuestionError        exit 2: empty, too long, or too long for the model's window (also a ValueError)
├── CorpusError                 the corpus folder, one of its files, or the collection cannot be used
├── StoreBusyError              another process is ingesting into the same Chroma directory
├── StoreUnavailableError       the Chroma server cannot be reached
├── ModelUnavailableError       the chat model cannot be built or loaded
├── MissingExtraError           a feature's optional libraries are not installed (also an ImportError)
├── LogprobError                a model reply without usable logprobs (also a ValueError)
├── ProbeError                  the probe cannot score a reply: the hidden state it reads is missing
├── GuardFailure                no trustworthy probability, with `guard.fail_mode: error` (else a refusal)
├── GenerationError             the answer model failed after the verdict: nothing was answered
└── ServerBusy                  `rag-guard serve`: every model slot taken and the queue full (HTTP 503)
```

The guard itself raises none of the middle four at its callers: it fails closed, refusing with an
`ErrorInfo` record (`judging/verdict.py`) that says what failed.
"""

from __future__ import annotations


class RagGuardError(Exception):
    """Base class: a problem the user can fix, with a message that says how."""

    exit_code: int = 1


class ConfigError(RagGuardError):
    """config.yaml (or an environment override) is missing, unreadable or invalid."""

    exit_code = 2


class InvalidQuestionError(RagGuardError, ValueError):
    """The question is empty or otherwise unusable."""

    exit_code = 2


class CorpusError(RagGuardError):
    """The corpus directory, one of its files or the collection cannot be used."""


class StoreBusyError(RagGuardError):
    """Another process is ingesting into the same Chroma directory."""


class StoreUnavailableError(RagGuardError):
    """The Chroma server (chroma.mode: http) cannot be reached or refused the connection."""


class ModelUnavailableError(RagGuardError):
    """The chat model cannot be built or loaded (missing GGUF parts, checksum mismatch, bad path)."""


class MissingExtraError(RagGuardError, ImportError):
    """A feature needs an extra that is not installed (`rag_guard.extras`): the message names the pip command."""


class LogprobError(RagGuardError, ValueError):
    """A provider reply whose logprobs are missing or malformed: the guard must not trust it."""


class ProbeError(RagGuardError):
    """The probe cannot score this reply (the hidden state it reads is missing or malformed)."""


class GuardFailure(RagGuardError):
    """No trustworthy probability could be had (fail_mode "error"); under "refuse" this is a refusal instead."""


class GenerationError(RagGuardError):
    """The answerer failed after the guard's verdict: nothing was answered, and the message says why."""


class ServerBusy(RagGuardError):
    """Every model slot of `rag-guard serve` is taken and its queue is full: try again after Retry-After."""
