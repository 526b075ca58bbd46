"""Strict parsers of the model's replies (formats in agent/prompts/README.md).

Each returns the parsed value or raises `FormatError` whose message says what was
wrong; the node sends it back to the model with the exact format expected.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass


class FormatError(ValueError):
    """The model's reply does not follow the format its step asks for."""


@dataclass(frozen=True)
class PlanReply:
    tools: list[str]
    plan: str


_KEY = r"^\s*{key}\s*:\s*(.*)$"
_CODE = re.compile(r"```python[ \t]*\n(.*?)```", re.DOTALL)
_NAME = re.compile(r"^[A-Za-z_]\w*$")


def _field(text: str, key: str) -> tuple[str, int] | None:
    """The value after `KEY:` at the start of a line, and that line's index."""
    pattern = re.compile(_KEY.format(key=key), re.IGNORECASE)
    for index, line in enumerate(text.splitlines()):
        match = pattern.match(line)
        if match:
            return match.group(1).strip(), index
    return None


def parse_plan(text: str, offered: Sequence[str]) -> PlanReply:
    tools_field = _field(text, "TOOLS")
    plan_field = _field(text, "PLAN")
    if tools_field is None:
        raise FormatError("there is no line starting with `TOOLS:`")
    if plan_field is None:
        raise FormatError("there is no line starting with `PLAN:`")
    raw = tools_field[0].strip().strip(".")
    tools: list[str] = []
    if raw.lower() not in ("none", ""):
        for item in raw.split(","):
            name = item.strip().strip("`'\"")
            if not _NAME.match(name):
                raise FormatError(f"`{item.strip()}` is not a tool name")
            if name not in offered:
                raise FormatError(
                    f"`{name}` is not among the tools offered"
                    + (f" ({', '.join(offered)})" if offered else " (none were offered)")
                )
            if name not in tools:
                tools.append(name)
    elif raw == "":
        raise FormatError("`TOOLS:` is empty: name tools or write `TOOLS: none`")
    lines = text.splitlines()
    first, index = plan_field
    # The plan may go on over the lines after `PLAN:` (not back into the TOOLS line).
    rest = [
        line for line in lines[index + 1 :] if not re.match(_KEY.format(key="TOOLS"), line, re.I)
    ]
    plan = "\n".join([first, *rest]).strip()
    if not plan:
        raise FormatError("`PLAN:` is empty")
    return PlanReply(tools=tools, plan=plan)


def parse_code(text: str) -> str:
    blocks = _CODE.findall(text)
    if not blocks:
        raise FormatError("there is no ```python fenced code block")
    if len(blocks) > 1:
        raise FormatError(f"there are {len(blocks)} ```python blocks; send exactly one")
    code = blocks[0].strip("\n")
    if not code.strip():
        raise FormatError("the ```python block is empty")
    return code


def parse_verdict(text: str) -> tuple[bool, str]:
    verdict = _field(text, "VERDICT")
    reason = _field(text, "REASON")
    if verdict is None:
        raise FormatError("there is no line starting with `VERDICT:`")
    value = verdict[0].strip().strip(".*`").lower()
    if value not in ("correct", "incorrect"):
        raise FormatError(f"`VERDICT: {verdict[0]}` is neither `correct` nor `incorrect`")
    if reason is None or not reason[0]:
        raise FormatError("there is no line starting with `REASON:` followed by a reason")
    return value == "correct", reason[0]


def parse_line(text: str, key: str) -> str | None:
    """The text after `KEY:` (`LESSON`, `TIP`); None for `TIP: none`."""
    found = _field(text, key)
    if found is None or not found[0]:
        raise FormatError(f"there is no line starting with `{key}:` followed by text")
    value = found[0]
    return None if value.strip(". ").lower() == "none" else value
