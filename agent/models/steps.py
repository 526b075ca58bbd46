"""The step convention: every model call names the graph step or forge stage making it.

A caller passes `step_config(step)` as the call's config (ARCHITECTURE.md §3):
`{"tags": ["step:act"], "metadata": {"evoagent_step": "act"}}`. LangChain hands both to
the model's run manager (checked against langchain-core 1.7: `run_manager.metadata`
holds the merged inheritable metadata and `run_manager.tags` the merged tags inside
`_generate`) and to every callback's `on_chat_model_start`, so scripted rules, the
cassette key and the usage counter all read the step from the same place.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from langchain_core.messages import BaseMessage
from langchain_core.runnables import RunnableConfig

STEPS: tuple[str, ...] = ("plan", "act", "explore", "check", "distill", "refine", "reflect")
"""The steps a call can name: the graph's plan/act/check/reflect (check: the independent
route that confirms an answer; explore: several programs sampled at once for a task no
tool covers), the forge's distill/refine."""

STEP_METADATA_KEY = "evoagent_step"
STEP_TAG_PREFIX = "step:"
#: the step's reply format as a GBNF grammar: the local engine decodes under it
GRAMMAR_KEY = "evoagent_grammar"
#: the most tokens the step's reply may take
MAX_TOKENS_KEY = "evoagent_max_tokens"
#: sampling temperature for this call (a retry samples, so that it can differ)
TEMPERATURE_KEY = "evoagent_temperature"
#: how many replies the call samples for one prompt (k > 1: exploration); a model that
#: cannot give several in one call gives one, and the caller asks for the rest
N_KEY = "evoagent_n"
#: the sampling seed of this call (sequential samples of one prompt differ by it)
SEED_KEY = "evoagent_seed"


def step_config(
    step: str,
    callbacks: Sequence[Any] | None = None,
    *,
    grammar: str | None = None,
    max_tokens: int | None = None,
    temperature: float | None = None,
    n: int = 1,
    seed: int | None = None,
) -> RunnableConfig:
    """The `config` of one model call made by `step` (optionally with callbacks, the
    reply's grammar, its token cap and a sampling temperature; models that cannot use
    them ignore them)."""
    metadata: dict[str, Any] = {STEP_METADATA_KEY: step}
    if grammar:
        metadata[GRAMMAR_KEY] = grammar
    if max_tokens:
        metadata[MAX_TOKENS_KEY] = max_tokens
    if temperature is not None:
        metadata[TEMPERATURE_KEY] = temperature
    if n > 1:
        metadata[N_KEY] = n
    if seed is not None:
        metadata[SEED_KEY] = seed
    config: RunnableConfig = {"tags": [STEP_TAG_PREFIX + step], "metadata": metadata}
    if callbacks:
        config["callbacks"] = list(callbacks)
    return config


def step_from(tags: Iterable[str] | None, metadata: Mapping[str, Any] | None) -> str | None:
    """The step a call was made by: metadata first, else a `step:NAME` tag, else None."""
    if metadata:
        step = metadata.get(STEP_METADATA_KEY)
        if isinstance(step, str) and step:
            return step
    # Last tag wins: when configs merge, the caller's own tags come after inherited ones.
    found = None
    for tag in tags or ():
        if isinstance(tag, str) and tag.startswith(STEP_TAG_PREFIX):
            found = tag[len(STEP_TAG_PREFIX) :] or None
    return found


def step_of_run(run_manager: object) -> str | None:
    """The step of the call a chat model's `_generate` is serving (None without a manager)."""
    if run_manager is None:
        return None
    return step_from(getattr(run_manager, "tags", None), getattr(run_manager, "metadata", None))


def prompt_text(messages: Sequence[BaseMessage]) -> str:
    """The prompt text of a call: every message's content joined with newlines."""
    return "\n".join(content_text(message) for message in messages)


def estimate_tokens(text: str) -> int:
    """Tokens estimated from text length: ceil(characters / 4).

    Deterministic on purpose: scripted and replayed runs report comparable figures, and
    the same figure is used for a provider that sends no usage data. Four characters per
    token is the usual rule of thumb for English text with BPE tokenizers.
    """
    return math.ceil(len(text) / 4)


def estimated_usage(prompt: str, reply: str) -> dict[str, int]:
    """A `usage_metadata` dict estimated from the prompt and reply texts."""
    tokens_in, tokens_out = estimate_tokens(prompt), estimate_tokens(reply)
    return {
        "input_tokens": tokens_in,
        "output_tokens": tokens_out,
        "total_tokens": tokens_in + tokens_out,
    }


def preview(text: str, limit: int = 160) -> str:
    """The start of a prompt, on one line, for error messages."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def content_text(message: object) -> str:
    """The text of a chat message or of its content, the one reading of a reply for every
    step: a string as it is; a list of content parts by its text parts, joined as they
    come (LangChain's own reading); other parts (images, tool calls) carry no text."""
    content = getattr(message, "content", message)
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, Mapping) and part.get("type", "text") == "text":
                text = part.get("text")
                parts.append(text if isinstance(text, str) else "")
        return "".join(parts)
    return "" if content is None else str(content)
