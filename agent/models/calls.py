"""One call of a step, the agent's way: `invoke_step` (named, counted, its reply's grammar
and cap, one error type for a failed call), `StepCaller` (the same for the forge, as its
`StepModel`), and `ask_until_parsed` (the one ask-parse-re-ask loop of every step with a
reply format: plan, check, reflect)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, convert_to_messages
from langchain_core.runnables import RunnableConfig

from agent.errors import ModelError
from agent.models.errors import ModelCallError
from agent.models.providers import describe_failure, is_model_failure
from agent.models.steps import STEPS, content_text, step_config
from agent.models.usage import UsageCounter
from toolforge.replies import ReplyFormatError

T = TypeVar("T")
M = TypeVar("M")


def invoke_step(
    model: BaseChatModel,
    step: str,
    messages: str | Sequence[BaseMessage | tuple[str, str] | dict[str, Any]],
    counter: UsageCounter | None = None,
    *,
    grammar: str | None = None,
    max_tokens: int | None = None,
    temperature: float | None = None,
) -> AIMessage:
    """Call `model` as `step` (the ARCHITECTURE.md §3 convention), counted by `counter`;
    `grammar` and `max_tokens` describe the reply (see `step_config`).

    Raises ModelCallError for a failed call, whatever the model (a provider model built
    elsewhere included), so the caller handles one exception type.
    """
    config = _step_config(step, counter, grammar, max_tokens, temperature)
    reply = _call(model, step, lambda: model.invoke(messages, config=config))
    if not isinstance(reply, AIMessage):
        raise TypeError(
            f"model {type(model).__name__} returned {type(reply).__name__}, not AIMessage"
        )
    return reply


def invoke_step_n(
    model: BaseChatModel,
    step: str,
    messages: Sequence[dict[str, str]],
    n: int,
    counter: UsageCounter | None = None,
    *,
    grammar: str | None = None,
    max_tokens: int | None = None,
    temperature: float = 0.7,
) -> list[str]:
    """`n` replies to one prompt, sampled at `temperature`: in one call where the model
    decodes several sequences together (the local engine: one prompt evaluation, one
    decode step for all; an OpenAI-compatible server: `n`), else the rest asked in
    parallel, each with its own seed. Each call is counted by `counter`; a failed call
    raises ModelCallError."""
    from concurrent.futures import ThreadPoolExecutor

    config = _step_config(step, counter, grammar, max_tokens, temperature, n=n)
    prompt = convert_to_messages(list(messages))
    result = _call(model, step, lambda: model.generate([prompt], **_generate_args(config)))
    texts = [content_text(g.message) for g in result.generations[0] if hasattr(g, "message")]
    missing = n - len(texts)
    if missing > 0:

        def one(seed: int) -> str:
            more = _step_config(step, counter, grammar, max_tokens, temperature, seed=seed)
            reply = _call(model, step, lambda: model.invoke(prompt, config=more))
            return content_text(reply)

        with ThreadPoolExecutor(max_workers=missing) as pool:
            texts += list(pool.map(one, range(len(texts), n)))
    return texts[:n]


def _step_config(
    step: str,
    counter: UsageCounter | None,
    grammar: str | None,
    max_tokens: int | None,
    temperature: float | None,
    **more: int,
) -> RunnableConfig:
    """The call's config (`step_config`), for a step that exists."""
    if step not in STEPS:
        raise ValueError(f"unknown step {step!r}: use one of {', '.join(STEPS)}")
    return step_config(
        step,
        callbacks=[counter] if counter is not None else None,
        grammar=grammar,
        max_tokens=max_tokens,
        temperature=temperature,
        **more,
    )


def _generate_args(config: RunnableConfig) -> dict[str, Any]:
    return {
        "callbacks": config.get("callbacks"),
        "tags": config.get("tags"),
        "metadata": config.get("metadata"),
    }


def _call(model: BaseChatModel, step: str, call: Callable[[], T]) -> T:
    """`call()`, with a failed model call as ModelCallError (a ModelError passes as is)."""
    try:
        return call()
    except ModelError:
        raise
    except Exception as exc:
        if not is_model_failure(exc):
            raise
        spec = getattr(model, "model_name", None) or type(model).__name__
        raise ModelCallError(describe_failure(exc, str(spec), step=step), step=step) from exc


@dataclass(frozen=True)
class Asked(Generic[T]):
    """What `ask_until_parsed` got: the parsed value (None when every reply failed), the
    last format problem ("" once parsed), and the calls it took."""

    value: T | None
    problem: str
    calls: int


def ask_until_parsed(
    ask: Callable[[list[M]], str],
    messages: list[M],
    parse: Callable[[str], T],
    follow_up: Callable[[str, str], list[M]],
    tries: int,
    on_problem: Callable[[str], None] | None = None,
) -> Asked[T]:
    """Ask, parse, and on a `ReplyFormatError` send the reply back with what was wrong
    (`follow_up(reply, problem)` gives the messages to append), at most `tries` calls.

    The one loop of every step with a reply format (plan, verify, reflect, distill,
    refine); the messages are the caller's kind (role dicts or LangChain messages), and
    errors from `ask` (budget, endpoint down) go to the caller untouched.
    """
    problem = ""
    for call in range(1, tries + 1):
        reply = ask(messages)
        try:
            return Asked(parse(reply), "", call)
        except ReplyFormatError as exc:
            problem = str(exc)
            if on_problem is not None:
                on_problem(problem)
            messages += follow_up(reply, problem)
    return Asked(None, problem, tries)


@dataclass
class StepCaller:
    """A LangChain chat model as the forge's `StepModel` (toolforge/types.py): each call
    named by its step, with the reply's grammar and cap, and counted by `counter`."""

    model: BaseChatModel
    counter: UsageCounter | None = None

    def ask(
        self,
        step: str,
        messages: list[dict[str, str]],
        *,
        grammar: str | None = None,
        max_tokens: int | None = None,
    ) -> str:
        reply = invoke_step(
            self.model, step, messages, self.counter, grammar=grammar, max_tokens=max_tokens
        )
        return content_text(reply)
