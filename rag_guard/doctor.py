"""`rag-guard doctor`: is every piece the pipeline needs ready, and if not, what to do about it.

Each check runs the real thing once (lists the server's models, makes one guarded probe call, embeds one
string, reads the store) and records what it found; a failed check never stops the others.
"""

from __future__ import annotations

from pathlib import Path

from langchain_core.documents import Document
from langchain_core.language_models import BaseChatModel
from pydantic import BaseModel

from rag_guard.config import ModelSettings, Settings, load_config
from rag_guard.errors import RagGuardError
from rag_guard.models.failures import explain_failure

PROBE = {
    "question": "What colour is the sky on a clear day?",
    "documents": [Document(page_content="On a clear day the sky is blue, because air scatters blue light most.")],
}


class Check(BaseModel):
    """One line of the doctor's table."""

    name: str
    ok: bool
    detail: str


def run_checks(config: str | Path | None = None, collection: str | None = None) -> list[Check]:
    """Every check, on `collection` (default: `chroma.collection`); a failed one never stops the others."""
    try:
        settings = load_config(config).with_collection(collection)
    except RagGuardError as exc:
        return [Check(name="config", ok=False, detail=str(exc))]
    checks = [Check(name="config", ok=True, detail=str(settings.source or "built-in defaults (no config.yaml)"))]
    checks += _model_checks(settings)
    checks += _store_checks(settings)
    return checks


def _model_checks(settings: Settings) -> list[Check]:
    from rag_guard.factory import build_chat_model

    roles = [("answerer", settings.model)]
    if settings.guard.model is not None and settings.guard.model != settings.model:
        roles.append(("judge", settings.guard.model))
    checks: list[Check] = []
    for role, model in roles:
        try:
            chat = build_chat_model(model, settings)
        except RagGuardError as exc:
            checks.append(Check(name=f"{role} model", ok=False, detail=str(exc)))
            continue
        if model.provider == "llamacpp":
            checks.append(Check(name=f"{role} model", ok=True, detail=f"GGUF file {chat.model_path}"))  # type: ignore[attr-defined]
        else:
            try:
                served = _served_models(model, chat)
            except Exception as exc:
                checks.append(Check(name=f"{role} server", ok=False, detail=explain_failure(exc, chat)))
                continue
            checks.append(Check(name=f"{role} server", ok=True, detail=f"{model.url} is up"))
            checks.append(_model_listed(role, model, served))
        if role == roles[-1][0]:  # the last role listed is the one that judges
            checks += _probe(settings, chat)
    return checks


def _served_models(model: ModelSettings, chat: BaseChatModel) -> list[str]:
    if model.provider == "ollama":
        import ollama

        listed = ollama.Client(host=model.url, timeout=model.timeout_s).list()
        return [entry.model or "" for entry in listed.models]
    return [entry.id for entry in chat.root_client.models.list()]  # type: ignore[attr-defined]


def _model_listed(role: str, model: ModelSettings, served: list[str]) -> Check:
    name = model.name or ""
    wanted = {name, f"{name}:latest"} if model.provider == "ollama" and ":" not in name else {name}
    if wanted & set(served):
        return Check(name=f"{role} model", ok=True, detail=f"{name!r} is served at {model.url}")
    listed = ", ".join(served[:8]) or "none"
    fix = f"run `ollama pull {name}`" if model.provider == "ollama" else "set model.name to one of them"
    return Check(name=f"{role} model", ok=False, detail=f"{name!r} is not among the server's models ({listed}): {fix}")


def _probe(settings: Settings, judge: BaseChatModel) -> list[Check]:
    """One guarded call; with the hidden-state probe configured, the probe file's check comes first."""
    from rag_guard.factory import build_guard

    checks = []
    try:
        guard = build_guard(settings, judge)
    except RagGuardError as exc:
        return [Check(name="hidden-state probe", ok=False, detail=str(exc))]
    if guard.probe is not None:
        probe = guard.probe
        detail = (
            f"{'+'.join(probe.calls)} states at layers {probe.layers} of {probe.model_name}, "
            f"fitted on {', '.join(probe.fitted_on)}; held-out AUROC {probe.heldout_auroc:.3f}"
        )
        checks.append(Check(name="hidden-state probe", ok=True, detail=detail))
    verdict = guard.invoke(PROBE)  # never raises: it refuses
    if verdict.p_sufficient is None:
        return [*checks, Check(name="judge logprobs", ok=False, detail=verdict.reason.removeprefix("refused: "))]
    seconds = verdict.guard_s or 0
    detail = f"P(sufficient) {verdict.p_sufficient:.2f} on a probe its context answers ({seconds:.1f} s)"
    return [*checks, Check(name="judge logprobs", ok=True, detail=detail)]


def _store_checks(settings: Settings) -> list[Check]:
    from rag_guard.factory import build_embeddings
    from rag_guard.store import embedding_label, open_store

    try:
        embeddings = build_embeddings(settings.embeddings, settings.cache_dir)
        dimensions = len(embeddings.embed_query("probe"))
    except Exception as exc:
        return [Check(name="embeddings", ok=False, detail=f"{type(exc).__name__}: {exc}")]
    checks = [Check(name="embeddings", ok=True, detail=f"{dimensions}-dimensional vectors")]
    chroma = settings.chroma
    try:
        store = open_store(chroma, embeddings, embedding_label(settings.embeddings))
        chunks = len(store.get(include=[])["ids"])
        if chunks:
            store.similarity_search("probe", k=1)
    except Exception as exc:
        detail = str(exc) if isinstance(exc, RagGuardError) else f"{chroma.location}: {exc}"
        checks.append(Check(name="chroma store", ok=False, detail=detail))
        return checks
    if not chunks:
        detail = f"collection '{chroma.collection}' in {chroma.location} is empty: run `rag-guard ingest`"
        checks.append(Check(name="chroma store", ok=False, detail=detail))
    else:
        detail = f"{chunks} chunks in '{chroma.collection}' at {chroma.location}"
        checks.append(Check(name="chroma store", ok=True, detail=detail))
    return checks
