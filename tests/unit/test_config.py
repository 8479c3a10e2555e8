import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rag_guard.cli import app
from rag_guard.config import load_config
from rag_guard.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_repository_config_loads_and_resolves_paths_against_its_directory():
    settings = load_config(REPO / "config.yaml", env={})
    assert settings.model.provider == "llamacpp"
    assert settings.chroma.persist_directory == REPO / ".rag_guard/chroma"
    assert settings.demo.questions == REPO / "corpora/questions.jsonl"


def test_missing_sections_take_defaults(tmp_path):
    settings = load_config(write(tmp_path, "guard:\n  answer_threshold: 0.7\n"), env={})
    assert settings.guard.answer_threshold == 0.7
    assert settings.chroma.k == 4


def test_unknown_key_is_named_with_the_file(tmp_path):
    path = write(tmp_path, "guard:\n  answer_treshold: 0.7\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    message = str(info.value)
    assert str(path) in message
    assert "guard.answer_treshold" in message
    assert "unknown key" in message


def test_bad_value_names_key_value_and_what_is_allowed(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, "model:\n  provider: gpt5\n"), env={})
    message = str(info.value)
    assert "model.provider" in message
    assert "'gpt5'" in message
    assert "llamacpp" in message


def test_threshold_out_of_range_is_rejected(tmp_path):
    with pytest.raises(ConfigError, match=r"guard\.answer_threshold.*less than or equal to 1.*1\.5"):
        load_config(write(tmp_path, "guard:\n  answer_threshold: 1.5\n"), env={})


def test_thresholds_in_the_wrong_order_are_rejected(tmp_path):
    with pytest.raises(ConfigError, match="clarify_threshold"):
        load_config(write(tmp_path, "guard:\n  answer_threshold: 0.3\n  clarify_threshold: 0.6\n"), env={})


def test_overlap_not_below_chunk_size_is_rejected(tmp_path):
    with pytest.raises(ConfigError, match="chunk_overlap"):
        load_config(write(tmp_path, "chroma:\n  chunk_size: 200\n  chunk_overlap: 200\n"), env={})


@pytest.mark.parametrize(
    ("text", "expected"),
    [("", "is empty"), ("guard: [unclosed", "not valid YAML"), ("- a\n- b\n", "mapping of sections")],
)
def test_unusable_files_get_a_clear_message(tmp_path, text, expected):
    with pytest.raises(ConfigError, match=expected):
        load_config(write(tmp_path, text), env={})


def test_missing_file_says_how_to_point_at_one(tmp_path):
    with pytest.raises(ConfigError, match="--config"):
        load_config(tmp_path / "nope.yaml", env={})


def test_environment_overrides_nested_keys(tmp_path):
    path = write(tmp_path, "model:\n  preset: default\n")
    settings = load_config(path, env={"RAG_GUARD_MODEL__PRESET": "small", "RAG_GUARD_CHROMA__K": "2", "UNRELATED": "x"})
    assert settings.model.preset == "small"
    assert settings.chroma.k == 2


def test_environment_overrides_take_flow_lists(tmp_path):
    settings = load_config(write(tmp_path, "{}\n"), env={"RAG_GUARD_GUARD__SIGNALS": "[verdict, missing]"})
    assert settings.guard.signals == ["verdict", "missing"]


def test_signals_left_out_or_null_take_the_verdict_alone_whatever_the_model_or_mode(tmp_path):
    assert load_config(write(tmp_path, "{}\n"), env={}).guard.signals == ["verdict"]
    assert load_config(write(tmp_path, "guard:\n  signals: null\n"), env={}).guard.signals == ["verdict"]
    assert load_config(write(tmp_path, "model:\n  preset: small\n"), env={}).guard.signals == ["verdict"]
    single = load_config(write(tmp_path, "guard:\n  signals: null\n"), env={"RAG_GUARD_GUARD__MODE": "single_pass"})
    assert single.guard.signals == ["verdict"]


def test_a_probe_named_with_signals_unset_brings_the_signals_it_was_fitted_with(tmp_path):
    from rag_guard.judging.probe import load_probe, shipped_probe

    shipped = load_config(write(tmp_path, "guard:\n  probe: auto\n"), env={})
    assert shipped.guard.signals == ["verdict", "extract", "probe"]  # the shipped probe's combination weighs all three
    own = load_probe(shipped_probe("default"))  # type: ignore[arg-type]
    combination = own.combination.model_copy(update={"weights": {"verdict": 0.5, "probe": 0.5}})
    (tmp_path / "probes").mkdir()
    own.model_copy(update={"combination": combination}).save(tmp_path / "probes" / "mine.json")
    named = load_config(write(tmp_path, "guard:\n  probe: probes/mine.json\n"), env={})  # relative to the file
    assert named.guard.signals == ["verdict", "probe"]


def test_a_probe_named_for_a_judge_that_cannot_use_it_leaves_the_signals_at_the_verdict(tmp_path):
    unprobed = {
        "server": "model:\n  provider: ollama\n  name: qwen2.5:7b\n",
        "server judge": "guard:\n  model:\n    provider: openai\n    name: gpt-x\n",
        "own GGUF": "model:\n  path: some.gguf\n",
        "own instruction": "guard:\n  prompt: Do the passages answer it? Reply True or False.\n",
        "few-shot prompt": "guard:\n  few_shot: true\n",
        "instruction first": "guard:\n  instruction_first: yes\n",
    }
    for case, text in unprobed.items():
        settings = load_config(write(tmp_path, text), env={"RAG_GUARD_GUARD__PROBE": "auto"})
        assert settings.guard.signals == ["verdict"], case
    by_env = load_config(write(tmp_path, "guard:\n  probe: auto\n"), env={"RAG_GUARD_GUARD__FEW_SHOT": "true"})
    assert by_env.guard.signals == ["verdict"] and by_env.guard.few_shot


def test_a_named_probe_file_that_is_missing_is_a_config_error_that_names_it(tmp_path):
    with pytest.raises(ConfigError, match=r"mine\.json cannot be read"):
        load_config(write(tmp_path, "model:\n  path: some.gguf\nguard:\n  probe: mine.json\n"), env={})


def test_the_shipped_probes_were_read_under_the_built_in_prompts(tmp_path):
    from rag_guard.judging.probe import load_probe, shipped_probe
    from rag_guard.judging.prompts import prompt_fingerprint

    for preset in ("default", "small"):
        path = shipped_probe(preset)
        assert path is not None and load_probe(path).prompt_sha256 == prompt_fingerprint(), preset


def test_the_probe_is_listed_to_be_used_and_the_shipped_one_is_found_for_both_presets(tmp_path):
    for preset in ("default", "small"):
        text = f"model:\n  preset: {preset}\nguard:\n  probe: auto\n  signals: [verdict, extract, probe]\n"
        assert load_config(write(tmp_path, text), env={}).guard.signals == ["verdict", "extract", "probe"]


def test_probe_with_a_server_judge_is_a_config_error_that_says_why(tmp_path):
    probed = "guard:\n  probe: auto\n  signals: [verdict, probe]\n"
    path = write(tmp_path, "model:\n  provider: openai\n  name: gpt-x\n" + probed)
    with pytest.raises(ConfigError, match="hidden states; the openai provider sends none"):
        load_config(path, env={})
    separate = probed + "  model:\n    provider: ollama\n    name: qwen2.5:7b\n"
    with pytest.raises(ConfigError, match="the ollama provider sends none"):
        load_config(write(tmp_path, separate), env={})


def test_probe_listed_while_switched_off_or_unavailable_says_what_to_set(tmp_path):
    with pytest.raises(ConfigError, match="probe is off"):
        load_config(write(tmp_path, "guard:\n  probe: off\n  signals: [verdict, probe]\n"), env={})
    own = "model:\n  path: some.gguf\nguard:\n  probe: auto\n  signals: [verdict, probe]\n"
    with pytest.raises(ConfigError, match=r"no probe ships for .*fit-probe"):
        load_config(write(tmp_path, own), env={})


def test_a_probe_path_is_resolved_against_the_config_file(tmp_path):
    settings = load_config(write(tmp_path, "guard:\n  probe: probes/mine.json\n  signals: [verdict]\n"), env={})
    assert settings.guard.probe == tmp_path / "probes" / "mine.json"


def test_single_pass_with_signals_it_cannot_measure_says_which_to_set(tmp_path):
    path = write(tmp_path, "guard:\n  mode: single_pass\n  signals: [verdict, extract]\n")
    with pytest.raises(ConfigError, match=r"set signals: \[verdict\]"):
        load_config(path, env={})


def test_bad_environment_override_is_reported_like_a_file_value(tmp_path):
    with pytest.raises(ConfigError, match=r"chroma\.k"):
        load_config(write(tmp_path, "{}\n"), env={"RAG_GUARD_CHROMA__K": "many"})


def test_a_bad_environment_override_names_the_variable_not_the_file(tmp_path):
    path = write(tmp_path, "guard:\n  answer_threshold: 0.7\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, env={"RAG_GUARD_GUARD__ANSWER_THRESHOLD": "1.5"})
    message = str(info.value)
    assert "guard.answer_threshold (from $RAG_GUARD_GUARD__ANSWER_THRESHOLD)" in message
    assert "1.5" in message and str(path) not in message


def test_a_bad_file_value_names_its_file_and_line(tmp_path):
    path = write(tmp_path, "model:\n  preset: default\nguard:\n  clarify_threshold: high\n")
    with pytest.raises(ConfigError, match=rf"guard\.clarify_threshold \({re.escape(str(path))}, line 4\)"):
        load_config(path, env={})


def test_a_misspelt_key_gets_the_closest_one(tmp_path):
    with pytest.raises(ConfigError, match="did you mean `answer_threshold`"):
        load_config(write(tmp_path, "guard:\n  answer_treshold: 0.7\n"), env={})
    with pytest.raises(ConfigError, match="did you mean `persist_directory`"):
        load_config(write(tmp_path, "chroma:\n  persist_dir: /tmp/x\n"), env={})


def test_a_rule_across_keys_names_only_those_keys(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, "guard:\n  answer_threshold: 0.3\n  clarify_threshold: 0.6\n"), env={})
    message = str(info.value)
    assert "clarify_threshold (0.6) must not exceed answer_threshold (0.3)" in message
    assert "{" not in message and "signals" not in message


def test_on_off_settings_accept_the_booleans_a_yaml_1_1_writer_leaves(tmp_path):
    guard = load_config(write(tmp_path, "guard:\n  probe: false\n"), env={}).guard
    assert guard.probe == "off"
    assert "probe" not in guard.signals
    assert load_config(write(tmp_path, "guard:\n  probe: true\n"), env={}).guard.probe == "auto"


def test_a_renamed_key_names_its_new_spelling(tmp_path):
    with pytest.raises(ConfigError, match=r"`answer_check` is now `verify_answer \(true for buffer\)`"):
        load_config(write(tmp_path, "guard:\n  answer_check: buffer\n"), env={})
    assert load_config(write(tmp_path, "guard:\n  verify_answer: true\n"), env={}).guard.verify_answer is True


def test_without_a_file_the_built_in_defaults_apply_with_the_store_under_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RAG_GUARD_CONFIG", raising=False)
    settings = load_config(env={})
    shipped = load_config(REPO / "config.yaml", env={})
    assert settings.source is None
    assert settings.chroma.persist_directory == tmp_path / ".rag_guard/chroma"
    assert settings.cache_dir == Path("~/.cache/rag_guard").expanduser()
    assert settings.guard == shipped.guard and settings.model == shipped.model


def test_cli_exits_2_and_names_the_key_for_a_broken_config(tmp_path):
    path = write(tmp_path, "guard:\n  clarify_threshold: high\n")
    result = CliRunner().invoke(app, ["ask", "What is oven spring?", "--config", str(path)])
    assert result.exit_code == 2
    assert "guard.clarify_threshold" in result.output


def test_server_provider_without_a_model_name_is_refused_with_an_example(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, "model:\n  provider: ollama\n"), env={})
    assert "needs name" in str(info.value)
    assert "qwen2.5:7b" in str(info.value)


def test_guard_model_is_configurable_from_the_environment(tmp_path):
    env = {"RAG_GUARD_GUARD__MODEL__PROVIDER": "openai", "RAG_GUARD_GUARD__MODEL__NAME": "deepseek-chat"}
    settings = load_config(write(tmp_path, "model:\n  preset: small\n"), env=env)
    assert settings.guard.model is not None
    assert (settings.guard.model.provider, settings.guard.model.name) == ("openai", "deepseek-chat")
    assert settings.guard.model.url == "https://api.openai.com/v1"
    assert settings.model.url is None


def test_ollama_embeddings_need_a_model_name(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, "embeddings:\n  provider: ollama\n"), env={})
    assert "nomic-embed-text" in str(info.value)
