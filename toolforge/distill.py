"""Candidates with a model (step `distill`): the model generalises a solution into one
reusable function with a docstring and tests, the way LATM and CRAFT do."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from memory import pyparse
from toolforge.config import ForgeConfig
from toolforge.extract import Extraction
from toolforge.replies import ask, clip, prompt
from toolforge.types import Candidate, Rejection, StepModel, Trace

if TYPE_CHECKING:
    pass


def distill_prompt(trace: Trace, config: ForgeConfig) -> str:
    calls = ""
    if trace.tool_calls:
        lines = []
        for call in trace.tool_calls[:5]:
            args = ", ".join(
                [_short(a) for a in call.args]
                + [f"{k}={_short(v)}" for k, v in call.kwargs.items()]
            )
            got = f"raised {call.error_type}" if call.error_type else f"-> {_short(call.result)}"
            lines.append(f"- {call.tool}({args}) {got}")
        calls = "\n## Library tools it called\n" + "\n".join(lines) + "\n"
    return prompt(
        "distill",
        task=clip(trace.task.strip(), config.max_prompt_chars),
        code=clip(trace.code.strip(), config.max_prompt_chars),
        answer=_short(trace.answer, 500),
        calls=calls,
    )


def distill_candidate(i: int, trace: Trace, model: StepModel, config: ForgeConfig) -> Extraction:
    """Ask the model for a tool from `trace`."""
    text = distill_prompt(trace, config)
    try:
        reply, error, n_calls = ask(model, text, "distill")
    except Exception as exc:
        return Extraction([], [], f"the model call failed ({type(exc).__name__}: {exc})")
    if reply is None:
        return Extraction(
            [],
            [
                Rejection(
                    "(distill)",
                    "reply",
                    f"the model's reply could not be parsed, even after it was sent back once: {error}",
                )
            ],
        )
    if reply.declined is not None:
        return Extraction(
            [], [], f"the model found no general tool in this solution: {reply.declined}"
        )
    return Extraction(
        [
            Candidate.of_trace(
                trace,
                i,
                "",
                reply.source,
                reply.tests,
                "distill",
                log=[f"distilled by the model in {n_calls} call(s)"],
            )
        ],
        [],
    )


def _short(value: object, limit: int = 120) -> str:
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


#: one fenced block holding one function of the task's text
TASK_FUNCTION_GRAMMAR = r"""root ::= "```python\n" imports "def " name "(task: str) -> str:\n" doc body "```"
imports ::= (importline "\n")* "\n"*
importline ::= "import " [a-zA-Z0-9_., ]+ | "from " [a-zA-Z0-9_.]+ " import " [a-zA-Z0-9_., ]+
name ::= [a-z_] [a-z0-9_]{0,48}
doc ::= "    \"\"\"" [^"\n]{10,200} "\"\"\"\n"
body ::= ("    " [^\n`]+ "\n" | "\n")+
"""


def distill_task_candidate(
    i: int, trace: Trace, examples: list[tuple[str, Any]], model: StepModel, config: ForgeConfig
) -> Extraction:
    """A function of the task's text, written with several tasks of the kind in view (a
    small model sees what changes between them); its tests are those tasks and their
    verified answers, not the model's."""

    from toolforge.source import public_functions

    shown = [(trace.task, trace.answer), *examples]
    text = prompt(
        "distill_task",
        examples="\n".join(f"- {_short(t, 400)} -> {_short(a, 200)}" for t, a in shown),
        code=clip(trace.code.strip(), config.max_prompt_chars),
    )
    try:
        reply = model.ask(
            "distill",
            [{"role": "user", "content": text}],
            grammar=TASK_FUNCTION_GRAMMAR,
            max_tokens=600,
        )
    except Exception as exc:
        return Extraction([], [], f"the model call failed ({type(exc).__name__}: {exc})")
    match = re.search(r"```python[ \t]*\n(.*?)```", reply, re.DOTALL)
    try:
        source = match.group(1).strip("\n") + "\n" if match else ""
        funcs = public_functions(pyparse.parse(source)) if source else []
    except SyntaxError as exc:
        funcs, source = [], f"# does not parse: {exc}"
    if len(funcs) != 1:
        return Extraction(
            [],
            [
                Rejection(
                    "(distill)", "reply", "the reply holds no single function of the task's text"
                )
            ],
        )
    name = funcs[0].name
    tests = f"from tools import {name}\n" + "".join(
        f"\n\ndef test_{name}_example_{k}():\n    assert {name}({t!r}) == {str(a)!r}\n"
        for k, (t, a) in enumerate(shown)
    )
    return Extraction(
        [
            Candidate.of_trace(
                trace,
                i,
                name,
                source,
                tests,
                "distill-task",
                log=[f"written by the model with {len(shown)} task(s) of the kind in view"],
            )
        ],
        [],
    )
