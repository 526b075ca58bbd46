"""Candidates with a model (step `distill`): the model generalises a solution into one
reusable function with a docstring and tests, the way LATM and CRAFT do."""

from __future__ import annotations

import json
from typing import Any

from toolforge.config import ForgeConfig
from toolforge.extract import Extraction
from toolforge.replies import ask, clip, prompt
from toolforge.types import Candidate, Rejection, Trace


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


def distill_candidate(i: int, trace: Trace, model: Any, config: ForgeConfig) -> Extraction:
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
            Candidate(
                name="",
                source=reply.source,
                tests=reply.tests,
                origin="distill",
                trace_index=i,
                task=trace.task,
                task_id=trace.task_id,
                episode_id=trace.episode_id,
                answer=trace.answer,
                log=[f"distilled by the model in {n_calls} call(s)"],
            )
        ],
        [],
    )


def _short(value: Any, limit: int = 120) -> str:
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"
