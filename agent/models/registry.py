"""Model kinds: the part of a model spec before its first `:` names the kind that builds
it (`local:NAME`, `scripted:FILE`, `replay:CASSETTE`); a spec whose prefix is no kind is
a LangChain provider's (`openai:gpt-4o-mini`, any `init_chat_model` provider).

Other packages add kinds the way simonw/llm's plugins add models: an entry point in the
group `evoagent.models`, named for the kind, that loads a `ModelKind`:

```toml
[project.entry-points."evoagent.models"]
echo = "evoagent_echo:KIND"      # KIND = ModelKind("echo", "...", build)
```
`evoagent models list` shows every kind registered and where it comes from. A package
may not replace a built-in kind (the name is refused, with a warning), and one that
fails to load is reported, never fatal to the kinds that work.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from agent.errors import ModelError
from agent.models.providers import ServerGrammar
from sandbox.registry import Registered, discover

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from agent.config import LocalConfig

log = logging.getLogger(__name__)

GROUP = "evoagent.models"


@dataclass(frozen=True)
class ModelOptions:
    """What a kind may use to build its model: an endpoint, a call's time and retries, the
    `[local]` settings, whether a server takes grammars, provider keyword arguments. A
    kind takes what applies to it and ignores the rest."""

    base_url: str | None = None
    timeout_s: float | None = None
    max_retries: int | None = None
    local: LocalConfig | None = None
    server_grammar: ServerGrammar = "auto"
    provider_kwargs: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelKind:
    """A kind of model: its name (the spec's prefix), one line about it, and how it
    builds a chat model from the whole spec. `origin` is where it was registered."""

    name: str
    about: str
    build: Callable[[str, ModelOptions], BaseChatModel]
    origin: str = "built-in"


def _path(spec: str) -> Path:
    kind, _, rest = spec.partition(":")
    if not rest.strip():
        raise ModelError(f"model {spec!r} needs a path: {kind}:PATH")
    return Path(rest.strip()).expanduser()


def _local(spec: str, options: ModelOptions) -> BaseChatModel:
    from agent.models.local import build_local_model

    return build_local_model(spec, options.local)


def _scripted(spec: str, options: ModelOptions) -> BaseChatModel:
    from agent.models.scripted import ScriptedModel

    return ScriptedModel.from_file(_path(spec))


def _replay(spec: str, options: ModelOptions) -> BaseChatModel:
    from agent.models.cassette import ReplayModel

    return ReplayModel.from_file(_path(spec))


def provider_model(spec: str, options: ModelOptions) -> BaseChatModel:
    """A LangChain provider's model (`provider:model`): the kind of every other prefix."""
    from agent.models.providers import build_provider_model

    return build_provider_model(
        spec,
        base_url=options.base_url,
        timeout_s=options.timeout_s,
        max_retries=options.max_retries,
        server_grammar=options.server_grammar,
        **options.provider_kwargs,
    )


BUILT_IN = (
    ModelKind(
        "local",
        "llama.cpp in this process: local (the default), local:NAME, local:FILE.gguf",
        _local,
    ),
    ModelKind(
        "scripted", "replies from rules in a YAML file (tests, the demo): scripted:FILE", _scripted
    ),
    ModelKind("replay", "calls replayed from a recorded cassette: replay:FILE.jsonl", _replay),
)
#: what `provider:model` stands for in the listing (not a kind of its own)
PROVIDERS = ModelKind(
    "PROVIDER",
    "any LangChain chat provider: openai:gpt-4o-mini, anthropic:..., or an "
    "OpenAI-compatible server with --base-url",
    provider_model,
)


def registered() -> Registered[ModelKind]:
    """The built-in kinds and those of installed packages (entry points of `GROUP`)."""
    return discover(GROUP, BUILT_IN, ModelKind, "kind")


def kind_of(spec: str) -> ModelKind:
    """The kind that builds `spec`: the registered one its prefix names, else a provider's."""
    prefix = spec.partition(":")[0]
    if prefix in {k.name for k in BUILT_IN}:
        return next(k for k in BUILT_IN if k.name == prefix)
    return registered().kinds.get(prefix, PROVIDERS)
