"""Talking to the model: prompts from `prompts/*.md` and the two-block reply format,
asked through the agent's `StepModel` (a reply in the wrong format is sent back once).

Reply format (distill and refine alike): exactly two fenced code blocks, the tool module
first and its tests second; or one line `NO TOOL: <reason>` to decline.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from string import Template
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from toolforge.types import StepModel

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


def prompt(template: str, /, **values: object) -> str:
    """Render `prompts/<template>.md` with `$placeholders` filled."""
    text = resources.files("toolforge").joinpath("prompts", f"{template}.md").read_text("utf-8")
    return Template(text).safe_substitute({k: str(v) for k, v in values.items()})


def ask(model: StepModel, text: str, step: str) -> tuple[Reply | None, str, int]:
    """Ask `model` (step `distill` or `refine`) under the two-block reply format; a reply
    in the wrong format is sent back once with what was wrong. Returns (reply or None,
    the last format problem, calls)."""
    messages = [{"role": "user", "content": text}]
    problem = ""
    for call in (1, 2):
        reply = model.ask(step, messages, grammar=REPLY_GRAMMAR, max_tokens=MAX_REPLY_TOKENS)
        try:
            return parse_reply(reply), "", call
        except ReplyFormatError as exc:
            problem = str(exc)
            messages += [
                {"role": "assistant", "content": reply},
                {"role": "user", "content": prompt("format_error", error=problem)},
            ]
    return None, problem, 2


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "\n# ... (cut)"
