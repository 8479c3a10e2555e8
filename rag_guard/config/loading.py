"""Reading the settings: config.yaml, then `RAG_GUARD_<SECTION>__<KEY>` environment overrides, then the schema.

Relative paths in the file are resolved against the file's own directory, so commands behave the same from
any working directory. Without a file the built-in defaults apply (the repository's config.yaml states
them), resolved against the working directory. A bad value is reported with where it came from: the file and
line, or the environment variable.
"""

from __future__ import annotations

import os
from difflib import get_close_matches
from pathlib import Path
from typing import Any, get_args

from pydantic import BaseModel, TypeAdapter, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from rag_guard.config.schema import Settings, switched
from rag_guard.errors import ConfigError
from rag_guard.judging.probe import load_probe, probe_path

ENV_PREFIX = "RAG_GUARD_"
CONFIG_ENV_VAR = "RAG_GUARD_CONFIG"
DEFAULT_CONFIG_NAME = "config.yaml"


def find_config(path: str | os.PathLike[str] | None = None) -> Path | None:
    """`path`, else $RAG_GUARD_CONFIG, else ./config.yaml if there is one; None: the built-in defaults."""
    chosen = path or os.environ.get(CONFIG_ENV_VAR)
    if chosen:
        return Path(chosen).expanduser()
    return Path(DEFAULT_CONFIG_NAME) if Path(DEFAULT_CONFIG_NAME).is_file() else None


def load_config(path: str | os.PathLike[str] | None = None, *, env: dict[str, str] | None = None) -> Settings:
    """Read, override from the environment, validate and resolve paths; raise `ConfigError` on any problem.

    Without a file (none given, no $RAG_GUARD_CONFIG, no ./config.yaml) the built-in defaults apply, which are
    the repository's config.yaml; relative paths then resolve against the working directory (the store in
    ./.rag_guard/chroma), the model cache is ~/.cache/rag_guard either way.
    """
    file = find_config(path)
    text = _read_text(file) if file is not None else None
    raw = _parsed(file, text) if file is not None and text is not None else {}
    environ = os.environ if env is None else env
    from_env = _apply_env_overrides(raw, environ)
    raw = _with_probe_signals(raw, file.resolve().parent if file else Path.cwd())
    try:
        settings = Settings.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_explain(exc, file, text, from_env)) from None
    return _resolve_paths(settings, file)


def _with_probe_signals(raw: dict[str, Any], base: Path) -> dict[str, Any]:
    """Unset signals with a probe named for an embedded judge (`auto`, or a file relative to `base`): the
    signals it was fitted with, read from its file. The shipped probes read the states of the built-in
    prompts, so a guard with its own leaves them out."""
    guard = _as_dict(raw.get("guard"))
    judge = _as_dict(guard.get("model") or raw.get("model"))
    source = switched("probe", guard.get("probe", "off"))
    unset = guard.get("signals") is None and guard.get("mode", "two_call") == "two_call"
    if not unset or guard.get("calibration") is not None or judge.get("provider", "llamacpp") != "llamacpp":
        return raw
    if source == "off" or (source == "auto" and _own_prompts(guard)):
        return raw
    named = source if source == "auto" else base / str(source)
    path = probe_path(named, judge.get("path"), str(judge.get("preset") or "default"))
    if path is None:
        return raw
    return {**raw, "guard": {**guard, "signals": load_probe(path).signals}}


def _read_text(file: Path) -> str:
    if not file.is_file():
        raise ConfigError(
            f"Config file {file} not found. Give the path of an existing file (`--config PATH`, "
            f"${CONFIG_ENV_VAR}, `load_config(path)`, `GuardedRAG.from_config(path)`), or none at all: "
            f"without one the built-in defaults apply (they are the repository's {DEFAULT_CONFIG_NAME})."
        )
    try:
        return file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"Config file {file} cannot be read as UTF-8 text: {exc}") from None


def _parsed(file: Path, text: str) -> dict[str, Any]:
    try:
        data = YAML(typ="safe", pure=True).load(text)
    except YAMLError as exc:
        raise ConfigError(f"Config file {file} is not valid YAML: {exc}") from None
    if data is None:
        raise ConfigError(
            f"Config file {file} is empty. Copy the config.yaml of the repository and edit it, "
            "or delete the file's contents only down to the sections you change."
        )
    if not isinstance(data, dict):
        raise ConfigError(
            f"Config file {file} must hold a mapping of sections (model:, chroma:, guard:, ...), "
            f"not a {type(data).__name__}."
        )
    return data


def _apply_env_overrides(raw: dict[str, Any], environ: Any) -> dict[tuple[str, ...], str]:
    """`RAG_GUARD_MODEL__PRESET=small` sets model.preset; values are parsed as YAML scalars or flow lists
    (`RAG_GUARD_GUARD__SIGNALS='[verdict, missing]'`). Returns the variable that set each key."""
    applied: dict[tuple[str, ...], str] = {}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        keys = [part.lower() for part in name[len(ENV_PREFIX) :].split("__")]
        if not all(keys):
            continue
        node = raw
        for key in keys[:-1]:
            child = node.get(key)
            if not isinstance(child, dict):
                child = {}
                node[key] = child
            node = child
        try:
            parsed = YAML(typ="safe", pure=True).load(value)
        except YAMLError:
            parsed = value
        node[keys[-1]] = value if parsed is None or isinstance(parsed, dict) else parsed
        applied[tuple(keys)] = name
    return applied


def _explain(exc: ValidationError, file: Path | None, text: str | None, from_env: dict[tuple[str, ...], str]) -> str:
    """One line per invalid setting: the key, where its value came from, what is wrong, and for a misspelt
    key the closest one."""
    lines = [f"{exc.error_count()} invalid setting(s):"]
    tree = YAML().load(text) if text is not None else None  # round-trip: it knows each key's line
    for error in exc.errors(include_url=False):
        loc = tuple(str(part) for part in error["loc"])
        key = ".".join(loc) or "(top level)"
        lines.append(f"  {key} ({_origin(loc, file, tree, from_env)}): {_describe(error, loc)}")
    lines.append("Fix the value(s) above; config.yaml in the repository documents every key.")
    return "\n".join(lines)


def _origin(loc: tuple[str, ...], file: Path | None, tree: Any, from_env: dict[tuple[str, ...], str]) -> str:
    """Where the value at `loc` was set: the environment variable, or the file and line."""
    for end in range(len(loc), 0, -1):
        if loc[:end] in from_env:
            return f"from ${from_env[loc[:end]]}"
    if file is None or tree is None:
        return "built-in default"
    line = _line_of(tree, loc)
    return f"{file}, line {line}" if line else str(file)


def _line_of(tree: Any, loc: tuple[str, ...]) -> int | None:
    """The 1-based line where the deepest key of `loc` present in the round-trip YAML tree is written."""
    node = tree
    line = None
    for part in loc:
        if not isinstance(node, dict) or part not in node:
            break
        line = node.lc.key(part)[0] + 1
        node = node[part]
    return line


def _describe(error: Any, loc: tuple[str, ...]) -> str:
    kind = error["type"]
    value = error.get("input")
    if kind == "extra_forbidden":
        close = get_close_matches(loc[-1], _keys_beside(loc), n=1)
        hint = f"did you mean `{close[0]}`?" if close else "check its spelling and the section it is under"
        return f"unknown key: {hint}"
    if kind == "literal_error":
        allowed = error.get("ctx", {}).get("expected", "")
        return f"{value!r} is not allowed; expected {allowed}"
    if isinstance(value, dict):  # a rule across several keys: its message names them, the section is noise
        return str(error["msg"]).removeprefix("Value error, ")
    return f"{error['msg']} (got {value!r})"


def _keys_beside(loc: tuple[str, ...]) -> list[str]:
    """The keys the section holding `loc`'s last key accepts."""
    model: Any = Settings
    for part in loc[:-1]:
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            return []
        model = next((a for a in (field.annotation, *get_args(field.annotation)) if isinstance(a, type)), None)
    return list(getattr(model, "model_fields", {}))


def _resolve_paths(settings: Settings, file: Path | None) -> Settings:
    base = file.resolve().parent if file is not None else Path.cwd()

    def resolve(path: Path) -> Path:
        path = path.expanduser()
        return path if path.is_absolute() else base / path

    settings.chroma.persist_directory = resolve(settings.chroma.persist_directory)
    settings.demo.corpus_dir = resolve(settings.demo.corpus_dir)
    settings.demo.questions = resolve(settings.demo.questions)
    for model in (settings.model, settings.guard.model):
        if model is not None and model.path is not None:
            model.path = resolve(model.path)
    if isinstance(settings.guard.probe, Path):
        settings.guard.probe = resolve(settings.guard.probe)
    settings.cache_dir = resolve(settings.cache_dir)
    settings.source = file.resolve() if file is not None else None
    return settings


def _own_prompts(guard: dict[str, Any]) -> bool:
    """Whether raw guard settings (YAML or environment text) change the judge's prompts."""
    return bool(guard.get("prompt")) or any(_switched_on(guard.get(key)) for key in ("few_shot", "instruction_first"))


def _switched_on(flag: Any) -> bool:
    """A raw flag as its bool field will read it; one it cannot read is left to the field's own error."""
    try:
        return TypeAdapter(bool).validate_python(flag) if flag is not None else False
    except ValidationError:
        return False


def _as_dict(section: Any) -> dict[str, Any]:
    """A section as given to `Settings`: a mapping, a validated section, or nothing."""
    if isinstance(section, BaseModel):
        return section.model_dump(exclude_unset=True)
    return dict(section) if isinstance(section, dict) else {}
