"""Talking to the model: prompts from `prompts/*.md`, the two-block reply format, the one
reading of a reply's text (`content_text`) and the one ask-parse-re-ask loop
(`ask_until_parsed`) that the agent's steps use as well.

Reply format (distill and refine alike): exactly two fenced code blocks, the tool module
first and its tests second; or one line `NO TOOL: <reason>` to decline.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from string import Template
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from langchain_core.runnables import RunnableConfig

    from toolforge.types import ChatModel

#: the reply format as GBNF: two fenced blocks (tool, tests), or `NO TOOL: reason`
REPLY_GRAMMAR = r"""root ::= fenced "\n\n" fenced | "NO TOOL: " [^\n]{1,200}
fenced ::= "```python\n" code "```"
code ::= ([^`] | "`" [^`] | "``" [^`])*
"""
MAX_REPLY_TOKENS = 900

T = TypeVar("T")
M = TypeVar("M")

_BLOCK = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[ \t]*\r?\n(.*?)```", re.DOTALL)
_DECLINE = re.compile(r"^\s*NO TOOL\b\s*:?\s*(.*)", re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True)
class Reply:
    """A parsed reply: the tool module and its tests, or a refusal with its reason."""

    source: str = ""
    tests: str = ""
    declined: str | None = None


class ReplyFormatError(ValueError):
    """The reply is not in the expected format; the message says what was wrong."""


def parse_reply(text: str) -> Reply:
    """Two fenced Python blocks (tool, tests) or `NO TOOL: reason`."""
    blocks = [
        body
        for lang, body in _BLOCK.findall(text)
        if lang.lower() in ("", "python", "py", "python3")
    ]
    if not blocks and (m := _DECLINE.match(text)):
        return Reply(
            declined=m.group(1).strip().splitlines()[0] if m.group(1).strip() else "no reason given"
        )
    if len(blocks) != 2:
        raise ReplyFormatError(
            f"found {len(blocks)} fenced python code blocks; expected exactly 2 "
            "(the tool module first, then its tests)"
        )
    source, tests = (b.strip("\n") + "\n" for b in blocks)
    for label, body in (("the tool (first block)", source), ("the tests (second block)", tests)):
        try:
            compile(body, "<reply>", "exec")
        except SyntaxError as exc:
            raise ReplyFormatError(
                f"{label} does not parse: SyntaxError line {exc.lineno}: {exc.msg}"
            ) from exc
    return Reply(source=source, tests=tests)


def prompt(template: str, /, **values: object) -> str:
    """Render `prompts/<template>.md` with `$placeholders` filled."""
    text = resources.files("toolforge").joinpath("prompts", f"{template}.md").read_text("utf-8")
    return Template(text).safe_substitute({k: str(v) for k, v in values.items()})


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


def ask(model: ChatModel, text: str, step: str) -> tuple[Reply | None, str, int]:
    """Ask `model` (step `distill` or `refine`); a reply in the wrong format is sent back
    once with the error and the format. Returns (reply or None, the last error, calls)."""
    from langchain_core.messages import AIMessage, BaseMessage, HumanMessage

    # The step's reply format as a grammar (a local model decodes under it) and its cap.
    config: RunnableConfig = {
        "tags": [f"step:{step}"],
        "metadata": {
            "evoagent_step": step,
            "evoagent_grammar": REPLY_GRAMMAR,
            "evoagent_max_tokens": MAX_REPLY_TOKENS,
        },
    }
    messages: list[BaseMessage] = [HumanMessage(text)]
    asked = ask_until_parsed(
        lambda sent: content_text(model.invoke(sent, config=config)),
        messages,
        parse_reply,
        lambda reply, error: [AIMessage(reply), HumanMessage(prompt("format_error", error=error))],
        tries=2,
    )
    return asked.value, asked.problem, asked.calls


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "\n# ... (cut)"
