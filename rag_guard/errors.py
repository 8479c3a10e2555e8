"""The project's own error types.

Every error a user can cause (bad config, bad corpus, missing model) is a `RagGuardError` whose message says
what is wrong and how to fix it, so the CLI can print it and exit without a traceback.
"""

from __future__ import annotations


class RagGuardError(Exception):
    """Base class: a problem the user can fix, with a message that says how."""

    exit_code: int = 1


class ConfigError(RagGuardError):
    """config.yaml (or an environment override) is missing, unreadable or invalid."""

    exit_code = 2


class ModelUnavailableError(RagGuardError):
    """The chat model cannot be built or loaded (missing GGUF parts, checksum mismatch, bad path)."""


class CorpusError(RagGuardError):
    """The corpus directory or one of its files cannot be used."""


class InvalidQuestionError(RagGuardError, ValueError):
    """The question is empty or otherwise unusable."""

    exit_code = 2


class GenerationError(RagGuardError):
    """The answerer failed after the guard's verdict: nothing was answered, and the message says why."""


class GuardFailure(RagGuardError):
    """No trustworthy probability could be had (fail_mode "error"); under "refuse" this is a refusal instead."""


class StoreBusyError(RagGuardError):
    """Another process is ingesting into the same Chroma directory."""


class StoreUnavailableError(RagGuardError):
    """The Chroma server (chroma.mode: http) cannot be reached or refused the connection."""
