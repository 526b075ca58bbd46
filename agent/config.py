"""Settings: one typed object composed of each component's own config.

Precedence, lowest first: defaults < `<home>/config.toml` < environment variables
(`EVOAGENT_MODEL`, `EVOAGENT_SANDBOX__TIMEOUT_S=5`, ...) < `-c key=value` overrides
(`-c sandbox.timeout_s=5`) < explicit command-line flags (`--model`, `--home`).

This module imports no heavy library: every CLI command loads it at start-up.
"""

from __future__ import annotations

import difflib
import json
import os
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from agent.errors import ConfigError
from agent.types import Feedback
from memory.config import MemoryConfig
from sandbox.config import SandboxConfig
from toolforge.config import ForgeConfig

ENV_PREFIX = "EVOAGENT_"
CONFIG_FILE = "config.toml"


class AgentConfig(BaseModel):
    """Limits and choices of the planner → executor → verifier graph."""

    max_attempts: int = Field(3, ge=1)
    """Plan → act → verify rounds per task before it is `failed`."""

    max_steps: int = Field(4, ge=1)
    """act steps (code runs) per attempt."""

    max_tokens: int = Field(60_000, ge=100)
    """Model tokens (in + out) per task; past it the task ends `budget_exhausted`."""

    max_seconds: float = Field(300.0, gt=0)
    """Wall-clock seconds per task; past it the task ends `budget_exhausted`."""

    k_tools: int = Field(5, ge=0)
    """Library tools offered to the planner."""

    k_mcp_tools: int = Field(5, ge=0)
    """Tools of the --mcp servers offered to the planner beside the library's (those
    sharing most words with the task)."""

    tool_min_similarity: float | None = Field(None, ge=-1, le=1)
    """Offer only tools at least this similar to the task (None: 0.35 for a local model,
    which an unrelated tool distracts, and no bar for others). MiniLM puts tasks of one
    kind at 0.44-0.89 and tasks of other kinds below 0.31 (measured on the BBH families)."""

    k_tips: int = Field(3, ge=0)
    k_failures: int = Field(2, ge=0)

    feedback: Feedback = "none"
    """`labels`: the task's checker verifies; `none`: the model critiques, labels only score."""

    model_timeout_s: float | None = Field(None, gt=0)
    """Seconds before a provider call is abandoned (default: the provider's own)."""

    model_max_retries: int | None = Field(None, ge=0)
    """Retries of a failed provider call (default: the provider's own; openai: 2)."""

    learn: bool = True
    """Store episodes and forge tools; False freezes the library (the ablation baseline)."""

    retry_temperature: float = Field(0.7, ge=0, le=2)
    """Sampling temperature of a retry (a second act step or a later attempt): the first
    reply is greedy; a retry with the same prompt under greedy decoding would repeat it."""

    free_last_attempt: bool = True
    """On a task's last attempt with no library tool, let the model's code take any form
    (not only a function of the task's text): a small model that cannot cut its input out
    of the text may still compute the answer. Such code rarely becomes a tool (the forge
    refuses functions with the task's data written into them); the task is still solved."""

    explore: str = Field("auto", pattern="^(auto|always|never)$")
    """Sample several programs at once for a task no library tool covers, and keep the
    first that holds (agent/nodes/explore.py)? `auto`: for a local model, whose engine
    decodes them together for little more than one costs; `always` for any model (an
    OpenAI-compatible server gets `n`, else parallel requests)."""

    explore_k: int = Field(4, ge=2, le=16)
    """Programs sampled together in one exploration."""

    explore_per_task: int = Field(4, ge=0)
    """Samples one task may draw in all (0: none)."""

    explore_per_stream: int = Field(0, ge=0)
    """Samples a stream's process may draw in all (0: no limit)."""

    explore_temperature: float = Field(0.8, gt=0, le=2)
    """Sampling temperature of the explored programs (they must differ to help)."""

    plan_without_tools: str = Field("auto", pattern="^(auto|always|never)$")
    """Ask the planner when the library offers no tool? `never` goes straight to act (one
    call less per new task: ~10 s on a small local model); `auto` does so for a local
    model and asks other models (a plan can help a capable model with a hard task)."""

    fast_path: bool = True
    """Reuse without the model: when a library tool that takes the task's text solved
    tasks like this one (its past-tasks view), call it on the task at once, skipping the
    plan and act calls; if its answer does not hold up, plan as usual without it."""

    fast_path_similarity: float = Field(0.6, ge=-1, le=1)
    """Least similarity of the task to a tool's past tasks for the fast path."""

    fast_path_min_reliability: float = Field(0.5, ge=0, le=1)
    """Least reliability (Beta prior on its outcomes in use) of a fast-path tool."""

    check_route: Literal["answer", "reasoned", "program"] = "program"
    """The independent route that must reach the same answer before a label-free answer
    counts as solved (and a tool earns trust): `program` (a second program written for
    this one task, with its values in the code: no parsing of the text), `answer` (the
    model answers in words, one line, under the task's form) or `reasoned` (the same
    after up to three lines of work). Measured with the 1.5B model on 40 BBH tasks
    (`bench/routes.py`): `program` confirms 14 of the 19 right code answers, `answer` 3;
    neither confirmed any of the 21 wrong ones."""

    audit_rate: float = Field(0.1, ge=0, le=1)
    """Share of a trusted tool's fast-path answers checked by the independent route anyway,
    so that a tool that drifts on new inputs is caught (0: never, 1: always)."""

    answer_types: list[str] = Field(default_factory=lambda: ["str", "int", "float", "bool"])
    """Types an answer may have: a list or a dict is sent back to the code as a mistake
    (the task wants text; a list's separator is a guess). Add "list" or "dict" to allow them."""


class LocalConfig(BaseModel):
    """The local model engine (llama.cpp, in this process)."""

    models_dir: str | None = None
    """Where `evoagent models pull` keeps GGUF files; default /var/cache/evoagent/models
    (as root) or ~/.cache/evoagent/models."""

    n_ctx: int = Field(8192, ge=512)
    """Context window in tokens (prompt + reply)."""

    n_threads: int | None = Field(None, ge=1)
    """CPU threads for generation; default: every core."""

    prompt_cache_mb: int = Field(1024, ge=0)
    """Memory for saved prompt states (llama.cpp KV caches and the logits kept with
    them, all counted), so a call whose prompt starts like an earlier one evaluates only
    the rest; 0 turns it off (only the last prompt's prefix is reused then)."""

    grammars: bool = True
    """Decode each step with a fixed reply format under its grammar (GBNF), so the reply
    always parses; False lets the model write freely (for comparison)."""


class Settings(BaseModel):
    """Everything evoagent can be told, composed per component."""

    home: Path = Field(default_factory=lambda: Path("~/.evoagent").expanduser())
    """The data home: library.db, chroma/, checkpoints.db, runs/."""

    model: str | None = None
    """`local` (the default when none is set), `local:NAME` or `local:PATH.gguf`,
    `provider:model` (openai:gpt-4o-mini, ollama:llama3.1, ...), `scripted:PATH` or
    `replay:PATH`."""

    base_url: str | None = None
    """Base URL of an OpenAI-compatible server (vLLM, llama.cpp, Ollama)."""

    server_grammar: Literal["auto", "send", "off"] = "auto"
    """Whether an `openai:` model at `base_url` sends each step's GBNF grammar in the
    request's `grammar` field (llama.cpp's servers decode under it): `auto` sends it and
    stops when the server refuses the field, `send` always, `off` never."""

    mcp: list[str] = Field(default_factory=list)
    """External MCP servers whose tools the planner is offered (`--mcp`): stdio command
    lines, or URLs on this machine (see agent/mcp_client.py)."""

    agent: AgentConfig = Field(default_factory=AgentConfig)
    sandbox: SandboxConfig = Field(default_factory=SandboxConfig)
    memory: MemoryConfig = Field(default_factory=MemoryConfig)
    forge: ForgeConfig = Field(default_factory=ForgeConfig)
    local: LocalConfig = Field(default_factory=LocalConfig)


def resolve_home(explicit: str | Path | None = None, env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    raw = explicit or env.get(ENV_PREFIX + "HOME") or "~/.evoagent"
    return Path(raw).expanduser().resolve()


def load_settings(
    home: str | Path | None = None,
    overrides: Iterable[str] = (),
    env: Mapping[str, str] | None = None,
    **flags: object,
) -> Settings:
    """Build `Settings` from the home's config file, the environment and overrides.

    `flags` are explicit command-line values; a `None` flag means "not given".
    """
    env = os.environ if env is None else env
    home_path = resolve_home(home, env)
    data: dict[str, Any] = {}
    config_path = home_path / CONFIG_FILE
    if config_path.is_file():
        try:
            from_file = tomllib.loads(config_path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{config_path} is not valid TOML ({exc}): fix or remove it") from exc
        except UnicodeDecodeError as exc:
            raise ConfigError(
                f"{config_path} is not UTF-8 text ({exc.reason} at byte {exc.start}): "
                "fix or remove it"
            ) from exc
        _check_keys(from_file, Settings, f"in {config_path}")
        _merge(data, from_file)
    _merge(data, _from_env(env))
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(
                f"override {item!r} is not KEY=VALUE (for example -c sandbox.timeout_s=5)"
            )
        override = _nest(key.strip().split("."), _parse_scalar(value))
        _check_keys(override, Settings, f"in -c {item}")
        _merge(data, override)
    _merge(data, {k: v for k, v in flags.items() if v is not None})
    if home_path.exists() and not home_path.is_dir():
        # Every command would fail later on it, some with a traceback: say it once, here.
        raise ConfigError(
            f"the data home {home_path} is a file, not a folder: give --home DIR "
            "(or EVOAGENT_HOME) a folder, or move the file away"
        )
    data["home"] = home_path
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"invalid settings: {problems}") from exc


def _check_keys(
    data: Mapping[str, Any], model: type[BaseModel], where: str, prefix: str = ""
) -> None:
    """Refuse a setting no model has: a typo silently ignored is a setting silently lost."""
    fields = model.model_fields
    for key, value in data.items():
        name = f"{prefix}{key}"
        if key == "home" and not prefix:
            raise ConfigError(f"'home' {where} is not a setting: give --home DIR or EVOAGENT_HOME")
        if key not in fields:
            known = [f"{prefix}{k}" for k in fields if prefix or k != "home"]
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"did you mean {close[0]}? " if close else ""
            raise ConfigError(
                f"unknown setting {name!r} {where}: {hint}known settings here: {', '.join(known)}"
            )
        sub = fields[key].annotation
        if isinstance(value, Mapping) and isinstance(sub, type) and issubclass(sub, BaseModel):
            _check_keys(value, sub, where, f"{name}.")


def _from_env(env: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX) or name == ENV_PREFIX + "HOME":
            continue
        path = [part.lower() for part in name[len(ENV_PREFIX) :].split("__")]
        if path[0] not in Settings.model_fields:
            continue  # EVOAGENT_* variables that are not settings (e.g. test switches)
        setting = _nest(path, _parse_scalar(value))
        _check_keys(setting, Settings, f"in the environment variable {name}")
        _merge(out, setting)
    if "OPENAI_BASE_URL" in env and "base_url" not in out:
        out["base_url"] = env["OPENAI_BASE_URL"]
    return out


def _parse_scalar(value: str) -> Any:
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


def _nest(path: list[str], value: object) -> dict[str, Any]:
    out: dict[str, Any] = {path[-1]: value}
    for part in reversed(path[:-1]):
        out = {part: out}
    return out


def _merge(into: dict[str, Any], new: Mapping[str, Any]) -> None:
    for key, value in new.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = dict(value) if isinstance(value, Mapping) else value
