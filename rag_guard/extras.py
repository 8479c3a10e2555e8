"""Optional features and the extras that install them: a clear error instead of an `ImportError` deep inside.

`agents` (LangChain's `create_agent`) for `GuardMiddleware`; `study` (scikit-learn, matplotlib) for
`rag-guard fit-probe` and `rag-guard eval --report`. `make` installs both.
"""

from __future__ import annotations

import importlib.util

from rag_guard.errors import MissingExtraError

EXTRAS = {"agents": ("langchain",), "study": ("sklearn", "matplotlib")}
"""Each extra and the modules it brings."""


def require(extra: str, feature: str) -> None:
    """`MissingExtraError` naming the install command when `feature` needs `extra` and it is not installed."""
    missing = [module for module in EXTRAS[extra] if importlib.util.find_spec(module) is None]
    if missing:
        raise MissingExtraError(
            f"{feature} needs the `{extra}` extra ({', '.join(missing)} not installed): run "
            f"`pip install 'rag-guard[{extra}]'` (or `make install` in the repository)."
        )
