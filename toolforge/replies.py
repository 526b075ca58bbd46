"""Talking to the model: prompts from `prompts/*.md`, the two-block reply format, and the
one retry with the parse error and the exact format expected.

Reply format (distill and refine alike): exactly two fenced code blocks, the tool module
first and its tests second; or one line `NO TOOL: <reason>` to decline.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from string import Template
from typing import Any

#: the reply format as GBNF: two fenced blocks (tool, tests), or `NO TOOL: reason`
REPLY_GRAMMAR = r"""root ::= fenced "\n\n" fenced | "NO TOOL: " [^\n]{1,200}
fenced ::= "```python\n" code "```"
code ::= ([^`] | "`" [^`] | "``" [^`])*
"""
MAX_REPLY_TOKENS = 900

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


def prompt(template: str, /, **values: Any) -> str:
    """Render `prompts/<template>.md` with `$placeholders` filled."""
    text = resources.files("toolforge").joinpath("prompts", f"{template}.md").read_text("utf-8")
    return Template(text).safe_substitute({k: str(v) for k, v in values.items()})


def content_text(message: Any) -> str:
    """The text of a chat model's reply (string content or a list of parts)."""
    content = getattr(message, "content", message)
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, dict) and part.get("type") == "text":
                parts.append(str(part.get("text", "")))
        return "".join(parts)
    return str(content)


def ask(model: Any, text: str, step: str) -> tuple[Reply | None, str, int]:
    """Ask `model` (step `distill` or `refine`); a reply in the wrong format is sent back
    once with the error and the format. Returns (reply or None, the last error, calls)."""
    from langchain_core.messages import AIMessage, HumanMessage

    # The step's reply format as a grammar (a local model decodes under it) and its cap.
    config = {
        "tags": [f"step:{step}"],
        "metadata": {
            "evoagent_step": step,
            "evoagent_grammar": REPLY_GRAMMAR,
            "evoagent_max_tokens": MAX_REPLY_TOKENS,
        },
    }
    messages: list[Any] = [HumanMessage(text)]
    error = ""
    for attempt in range(2):
        answer = content_text(model.invoke(messages, config=config))
        try:
            return parse_reply(answer), "", attempt + 1
        except ReplyFormatError as exc:
            error = str(exc)
            messages += [AIMessage(answer), HumanMessage(prompt("format_error", error=error))]
    return None, error, 2


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "\n# ... (cut)"
