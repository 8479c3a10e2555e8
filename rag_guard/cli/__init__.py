"""The `rag-guard` command: formatting and argument handling only; the logic lives in the modules.

`commands.py` holds what a user runs (ingest, ask, demo, serve, ...), `studies.py` what measures and tunes
the guard (eval, eval-suite, calibrate, fit-probe); both register on `shared.app`.
"""

from rag_guard.cli import commands, studies
from rag_guard.cli.shared import app

__all__ = ["app", "commands", "studies"]
