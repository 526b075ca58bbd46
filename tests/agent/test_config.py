"""Settings precedence and the errors a person sees for a bad setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.config import load_settings, resolve_home
from agent.errors import ConfigError


def test_home_comes_from_env_fixture(home: Path) -> None:
    assert load_settings().home == home.resolve()
    assert resolve_home() == home.resolve()


def test_defaults_file_env_and_overrides_in_order(home: Path) -> None:
    (home / "config.toml").write_text(
        'model = "scripted:a.yaml"\n[sandbox]\ntimeout_s = 7\nmemory_mb = 300\n'
    )
    env = {
        "EVOAGENT_HOME": str(home),
        "EVOAGENT_SANDBOX__TIMEOUT_S": "8",
        "EVOAGENT_AGENT__MAX_STEPS": "2",
    }
    settings = load_settings(env=env, overrides=["sandbox.timeout_s=9"])
    assert settings.model == "scripted:a.yaml"  # file
    assert settings.sandbox.memory_mb == 300  # file, untouched by env
    assert settings.sandbox.timeout_s == 9  # override beats env beats file
    assert settings.agent.max_steps == 2  # env
    assert load_settings(env=env, model="openai:x").model == "openai:x"  # explicit flag wins


def test_explicit_home_beats_env(tmp_path: Path) -> None:
    assert load_settings(home=tmp_path / "other").home == (tmp_path / "other").resolve()


def test_bad_toml_names_the_file(home: Path) -> None:
    (home / "config.toml").write_text("model = \n")
    with pytest.raises(ConfigError, match=r"config\.toml is not valid TOML"):
        load_settings()


def test_bad_value_names_the_setting() -> None:
    with pytest.raises(ConfigError, match=r"sandbox\.timeout_s"):
        load_settings(overrides=["sandbox.timeout_s=-1"])


def test_override_without_equals_says_the_form() -> None:
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        load_settings(overrides=["sandbox.timeout_s"])


def test_unrelated_evoagent_env_vars_are_ignored() -> None:
    assert load_settings(env={"EVOAGENT_SOMETHING_ELSE": "1"}).model is None


def test_a_typo_in_config_toml_is_named_with_a_suggestion(home: Path) -> None:
    (home / "config.toml").write_text("[sandbox]\ntimout_s = 5\n")
    with pytest.raises(
        ConfigError,
        match=r"unknown setting 'sandbox\.timout_s'.*config\.toml.*"
        r"did you mean sandbox\.timeout_s\?",
    ):
        load_settings()


def test_an_unknown_section_in_config_toml_is_refused(home: Path) -> None:
    (home / "config.toml").write_text("[agnet]\nmax_attempts = 2\n")
    with pytest.raises(ConfigError, match=r"unknown setting 'agnet'.*did you mean agent\?"):
        load_settings()


def test_a_typo_in_an_override_or_env_var_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"-c agent\.max_atempts=2.*agent\.max_attempts"):
        load_settings(overrides=["agent.max_atempts=2"])
    with pytest.raises(ConfigError, match=r"EVOAGENT_SANDBOX__TIMOUT_S"):
        load_settings(env={"EVOAGENT_SANDBOX__TIMOUT_S": "5"})


def test_home_as_an_override_says_to_use_the_flag() -> None:
    with pytest.raises(ConfigError, match="--home"):
        load_settings(overrides=["home=/tmp"])


def test_a_config_toml_that_is_not_utf8_is_one_error(home: Path) -> None:
    (home / "config.toml").write_bytes(b"\xff\xfe model = 1")
    with pytest.raises(ConfigError, match=r"config\.toml is not UTF-8 text"):
        load_settings()


def test_a_home_that_is_a_file_is_one_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    with pytest.raises(ConfigError, match=r"is a file, not a folder: give --home DIR"):
        load_settings(home=blocker)
