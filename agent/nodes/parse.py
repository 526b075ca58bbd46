"""Strict parsers of the model's replies (formats in agent/prompts/README.md), and the
same formats as GBNF grammars.

Each parser returns the parsed value or raises `FormatError` whose message says what was
wrong; the node sends it back to the model with the exact format expected. A local model
decodes each reply under its step's grammar (`*_grammar`), so its reply always parses;
other models get the grammar too and may ignore it (then the parsers and the re-ask do
the work). Each step also caps its reply (`MAX_TOKENS`): a token costs ~75 ms on 2 cores.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from toolforge.replies import ReplyFormatError

# One error for a reply out of format, in every step of the agent and the forge.
FormatError = ReplyFormatError


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


# --------------------------------------------------------------------------- grammars

#: the most tokens each step's reply may take
MAX_TOKENS = {"plan": 96, "act": 640, "verify": 96, "reflect": 64}

_LINE = r"[^\n]"
_FENCED = r"""fenced ::= "```python\n" code "```"
code ::= ([^`] | "`" [^`] | "``" [^`])*"""


def plan_grammar(offered: Sequence[str]) -> str:
    """`TOOLS: none|name, name` (only names offered) then `PLAN: one line`."""
    names = [n for n in offered if _NAME.match(n)]
    if names:
        tools = 'tools ::= "none" | tool (", " tool)*\ntool ::= ' + " | ".join(
            f'"{n}"' for n in names
        )
    else:
        tools = 'tools ::= "none"'
    return f'root ::= "TOOLS: " tools "\\nPLAN: " {_LINE}{{1,300}}\n{tools}\n'


ACT_GRAMMAR = f"root ::= fenced\n{_FENCED}\n"

# New code (no library tool chosen): one documented function of the task's text and its
# call on TASK, so every solution is a tool candidate as it stands (no distill call).
ACT_NEW_GRAMMAR = r"""root ::= "```python\n" imports "def " name "(task: str) -> str:\n" doc body "answer = " name "(TASK)\n```"
imports ::= (importline "\n")* "\n"*
importline ::= "import " [a-zA-Z0-9_., ]+ | "from " [a-zA-Z0-9_.]+ " import " [a-zA-Z0-9_., ]+
name ::= [a-z_] [a-z0-9_]{0,48}
doc ::= "    \"\"\"" [^"\n]{10,200} "\"\"\"\n"
body ::= ("    " [^\n`]+ "\n" | "\n")+
"""
#: the reason comes first, after the prompt asks for the right answer to be worked out.
#: `bench/critic.py` (1.5B, 15 right and 15 near-miss answers): the previous prompt,
#: verdict first, accepted 1 of 15 right answers (so every unlabelled task failed);
#: this one accepts 13 (verdict first: 11) and catches 3 of 15 wrong ones (6).
VERIFY_GRAMMAR = f'root ::= "REASON: " {_LINE}{{1,240}} "\\nVERDICT: " ("correct" | "incorrect")\n'


def line_grammar(key: str) -> str:
    """`KEY: one line` (a lesson, a tip)."""
    return f'root ::= "{key}: " {_LINE}{{1,240}}\n'
