"""Property-based tests: no input makes the logprob normaliser or the config loader fail with anything but
the project's own error (and a probability, when there is one, is a probability)."""

from __future__ import annotations

import math
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rag_guard.config import load_config
from rag_guard.errors import ConfigError
from rag_guard.judging.logprobs import LogprobError, p_true, parse_logprobs

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
json_like = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
)
tokens = st.sampled_from(["True", "False", " true", "no", "Yes", "(False", "The", "", "\n", "TRUE."]) | st.text(
    max_size=5
)
logprob_values = st.floats(allow_nan=True, allow_infinity=True) | st.integers(-100, 5) | st.just("nan") | st.none()
entries = st.fixed_dictionaries(
    {"token": tokens | st.integers(), "logprob": logprob_values},
    optional={
        "bytes": st.none() | st.lists(st.integers(-5, 300), max_size=4) | st.text(max_size=3),
        "top_logprobs": st.none()
        | st.text(max_size=3)
        | st.lists(
            st.fixed_dictionaries({"token": tokens, "logprob": logprob_values}) | json_like,
            max_size=6,
        ),
    },
)
replies = st.lists(entries, max_size=3) | st.fixed_dictionaries({"content": st.lists(entries, max_size=3)}) | json_like


@given(replies)
@settings(max_examples=400)
def test_normaliser_returns_a_probability_or_raises_logprob_error(raw):
    try:
        positions = parse_logprobs(raw)
        p = p_true(positions[0])
    except LogprobError:
        return
    assert 0.0 <= p <= 1.0
    assert not math.isnan(p)
    assert all(position.logprob <= 0.0 for position in positions)


sections = st.sampled_from(["model", "embeddings", "chroma", "guard", "demo", "cache_dir", "bogus"])
keys = st.sampled_from(
    [
        "provider",
        "preset",
        "name",
        "n_ctx",
        "answer_threshold",
        "clarify_threshold",
        "top_logprobs",
        "fail_mode",
        "k",
        "chunk_size",
        "chunk_overlap",
        "collection",
        "model",
        "base_url",
        "timeout_s",
        "sample",
        "x",
    ]
)
yaml_values = (
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(allow_nan=False)
    | st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=12)
)
documents = st.dictionaries(sections, st.dictionaries(keys, yaml_values, max_size=4) | yaml_values, max_size=4)


def _yaml(document: dict) -> str:
    import io

    from ruamel.yaml import YAML

    buffer = io.StringIO()
    YAML(typ="safe", pure=True).dump(document, buffer)
    return buffer.getvalue()


def loads_or_explains(path: Path, env: dict[str, str]) -> None:
    """Either valid settings (thresholds ordered, paths absolute) or a ConfigError naming where the bad value
    came from: the file, or the environment variable."""
    try:
        loaded = load_config(path, env=env)
    except ConfigError as exc:
        assert str(path) in str(exc) or any(f"${name}" in str(exc) for name in env)
        return
    assert 0 <= loaded.guard.clarify_threshold <= loaded.guard.answer_threshold <= 1
    assert loaded.chroma.chunk_overlap < loaded.chroma.chunk_size
    assert loaded.chroma.persist_directory.is_absolute()
    assert loaded.model.provider == "llamacpp" or loaded.model.name


@given(documents)
@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_config_loader_accepts_or_raises_config_error_for_any_mapping(tmp_path: Path, document):
    path = tmp_path / "config.yaml"
    path.write_text(_yaml(document), encoding="utf-8")
    loads_or_explains(path, {})


@given(st.text(max_size=200) | st.binary(max_size=200))
@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_config_loader_survives_any_file_contents(tmp_path: Path, contents):
    path = tmp_path / "config.yaml"
    if isinstance(contents, bytes):
        path.write_bytes(contents)
    else:
        path.write_text(contents, encoding="utf-8", errors="surrogatepass")
    loads_or_explains(path, {})


@given(
    st.dictionaries(
        st.sampled_from(
            [
                "RAG_GUARD_GUARD__ANSWER_THRESHOLD",
                "RAG_GUARD_CHROMA__K",
                "RAG_GUARD_MODEL__PROVIDER",
                "RAG_GUARD___",
                "RAG_GUARD_GUARD__MODEL__NAME",
                "RAG_GUARD_DEMO__SAMPLE",
                "RAG_GUARD_X__Y__Z",
            ]
        ),
        st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=20),
        max_size=4,
    )
)
@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_environment_overrides_never_crash_the_loader(tmp_path: Path, env):
    path = tmp_path / "config.yaml"
    path.write_text("guard:\n  answer_threshold: 0.7\n", encoding="utf-8")
    loads_or_explains(path, env)
