"""Chat models for evoagent: one front door, `get_model(spec)`; the spec's prefix names
the kind that builds it (registry.py; packages add kinds through the `evoagent.models`
entry points):

- `local`, `local:NAME`, `local:FILE.gguf` — llama.cpp in this process (`local.py`).
- `scripted:PATH` — answers from a YAML file of rules (`scripted.py`).
- `replay:PATH` — plays back a cassette written with `record=PATH` (`cassette.py`).
- `provider:model` — any other prefix: a LangChain chat model via `init_chat_model`
  (openai, anthropic, ollama, ...); `base_url` points `openai:` at any OpenAI-compatible
  server.

Every call names its step (`invoke_step`, or `config=step_config(step)`), is counted
by a `UsageCounter`, and fails as `ModelCallError` (a `ModelError`): `is_model_failure`
tells the graph which exceptions end a task with status `error`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from langchain_core.language_models import BaseChatModel

from agent.errors import ModelError
from agent.models.calls import Asked, StepCaller, ask_until_parsed, invoke_step, invoke_step_n
from agent.models.cassette import CassetteRecorder, ReplayModel, attach_recorder, request_key
from agent.models.errors import ModelCallError
from agent.models.providers import (
    ProviderModel,
    ServerGrammar,
    describe_failure,
    is_model_failure,
)
from agent.models.registry import ModelKind, ModelOptions, kind_of
from agent.models.scripted import ScriptedModel, load_script, parse_script
from agent.models.steps import (
    STEPS,
    content_text,
    estimate_tokens,
    estimated_usage,
    prompt_text,
    step_config,
    step_from,
)
from agent.models.usage import UsageCounter

if TYPE_CHECKING:
    from agent.config import LocalConfig

__all__ = [
    "STEPS",
    "Asked",
    "CassetteRecorder",
    "ModelCallError",
    "ModelError",
    "ModelKind",
    "ModelOptions",
    "ProviderModel",
    "ReplayModel",
    "ScriptedModel",
    "StepCaller",
    "UsageCounter",
    "ask_until_parsed",
    "attach_recorder",
    "content_text",
    "describe_failure",
    "estimate_tokens",
    "estimated_usage",
    "get_model",
    "invoke_step",
    "invoke_step_n",
    "is_model_failure",
    "load_script",
    "parse_script",
    "prompt_text",
    "request_key",
    "step_config",
    "step_from",
]


def get_model(
    spec: str,
    *,
    base_url: str | None = None,
    record: str | Path | None = None,
    timeout_s: float | None = None,
    max_retries: int | None = None,
    local: LocalConfig | None = None,
    server_grammar: ServerGrammar = "auto",
    **provider_kwargs: object,
) -> BaseChatModel:
    """Build the chat model named by `spec`; `record` also writes every call to a cassette.

    `local` is the `[local]` settings (`LocalConfig`) for `local`/`local:NAME|PATH`.
    `timeout_s` / `max_retries` / `server_grammar` / `provider_kwargs` (e.g. temperature=0)
    go to a provider model only (`server_grammar`: see `agent.models.providers`). Bad specs, missing files or packages raise ModelError saying what to do.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ModelError(
            "no model given: pass --model (or set EVOAGENT_MODEL) to local, local:NAME, "
            "provider:model (e.g. openai:gpt-4o-mini), scripted:FILE.yaml or "
            "replay:CASSETTE.jsonl"
        )
    spec = spec.strip()
    options = ModelOptions(
        base_url=base_url,
        timeout_s=timeout_s,
        max_retries=max_retries,
        local=local,
        server_grammar=server_grammar,
        provider_kwargs=dict(provider_kwargs),
    )
    model = kind_of(spec).build(spec, options)
    if record is not None:
        attach_recorder(model, record, model_name=spec)
    return model
