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

from toolforge.properties import Form
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


def parse_answer(text: str) -> str:
    """The text after the last `ANSWER:` line (the check route's reply)."""
    found = [m.group(1).strip() for m in re.finditer(r"^\s*ANSWER\s*:(.*)$", text, re.I | re.M)]
    if not found or not found[-1]:
        raise FormatError("there is no line starting with `ANSWER:` followed by the answer")
    return found[-1].strip().strip("`").strip()


def parse_line(text: str, key: str) -> str | None:
    """The text after `KEY:` (`LESSON`, `TIP`); None for `TIP: none`."""
    found = _field(text, key)
    if found is None or not found[0]:
        raise FormatError(f"there is no line starting with `{key}:` followed by text")
    value = found[0]
    return None if value.strip(". ").lower() == "none" else value


# --------------------------------------------------------------------------- grammars

#: the most tokens each step's reply may take (check: the reasoned route's lines; the
#: answer-only route stops at its line's end)
MAX_TOKENS = {"plan": 96, "act": 640, "check": 160, "reflect": 64}

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


def _gbnf_literal(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ") + '"'


def answer_grammar(form: Form, *, reasoned: bool = False) -> str:
    """The check route's reply: (`WORK:` lines, then) `ANSWER: ` and an answer of the
    task's form (`toolforge.properties.task_form`): the options, the list's words, closing
    brackets, a number, True/False, or one line."""
    if form.kind == "choice" and form.options:
        value = "value ::= " + " | ".join(_gbnf_literal(o) for o in form.options)
    elif form.kind == "sorted_words" and form.items:
        words = " | ".join(_gbnf_literal(w) for w in dict.fromkeys(form.items))
        value = f'value ::= word (" " word){{0,{len(form.items) - 1}}}\nword ::= {words}'
    elif form.kind == "closers":
        value = 'value ::= closer (" " closer){0,60}\ncloser ::= ")" | "]" | "}" | ">"'
    elif form.kind == "count":
        value = "value ::= [0-9]{1,6}"
    elif form.kind == "integer":
        value = 'value ::= "-"? [0-9]{1,12}'
    elif form.kind == "boolean":
        value = 'value ::= "True" | "False"'
    else:
        value = f"value ::= {_LINE}{{1,200}}"
    work = f'("WORK: " {_LINE}{{1,160}} "\\n"){{1,3}} ' if reasoned else ""
    return f'root ::= {work}"ANSWER: " value\n{value}\n'


def line_grammar(key: str) -> str:
    """`KEY: one line` (a lesson, a tip)."""
    return f'root ::= "{key}: " {_LINE}{{1,240}}\n'
