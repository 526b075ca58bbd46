"""The evolved library for other agents: each active tool as a LangChain tool whose
calls run in the sandbox.

    from agent.library_tools import library_tools
    tools = library_tools(library, sandbox)          # list[StructuredTool]
    agent = create_react_agent(model, tools)         # any LangChain / LangGraph agent

A tool's input schema (JSON Schema) is derived from its stored signature. Arguments are
checked here, on the host, before anything runs: an unknown or missing argument, or one
of the wrong type, is an error naming it. A call runs `NAME(**arguments)` in a fresh
sandbox job, the tool in a process of its own; its result or its error is read from the
supervisor's record of that call (what the tool's process says about itself is never
the answer), and a call that outlives `timeout_s` is killed with the job.
"""

from __future__ import annotations

import ast
import contextlib
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from memory.errors import ReadOnlyLibrary

if TYPE_CHECKING:
    from langchain_core.tools import BaseTool

    from memory.protocol import ToolLibrary
    from memory.types import ToolInfo, UsageEvent
    from sandbox.base import Sandbox

#: JSON Schema types of the annotations a tool's signature may carry
_JSON_TYPES = {
    "str": "string",
    "int": "integer",
    "float": "number",
    "bool": "boolean",
    "list": "array",
    "tuple": "array",
    "dict": "object",
}
_CHECKS: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list, tuple),
    "object": (dict,),
}


class ToolCallError(Exception):
    """A library tool could not be called, or raised, or ran out of time."""


class ToolArgumentError(ToolCallError):
    """The arguments do not fit the tool's input schema (nothing ran)."""


def input_schema(signature: str) -> dict[str, Any]:
    """JSON Schema of a tool's arguments, from its signature `name(a: int, b: str = 'x') -> T`."""
    try:
        func = ast.parse(f"def {signature.strip()}:\n    pass\n").body[0]
    except SyntaxError as exc:
        raise ToolCallError(f"the stored signature {signature!r} does not parse: {exc}") from exc
    assert isinstance(func, ast.FunctionDef)
    args = func.args
    positional = [*args.posonlyargs, *args.args]
    defaults = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
    named = [
        *zip(positional, defaults, strict=True),
        *zip(args.kwonlyargs, args.kw_defaults, strict=True),
    ]
    properties: dict[str, Any] = {}
    required: list[str] = []
    for arg, default in named:
        prop: dict[str, Any] = {}
        kind = _json_type(arg.annotation)
        if kind:
            prop["type"] = kind
        if default is None:
            required.append(arg.arg)
        else:
            # a default that is not a literal stays out of the schema: the tool applies it
            with contextlib.suppress(ValueError):
                prop["default"] = ast.literal_eval(default)
        properties[arg.arg] = prop
    return {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


def _json_type(annotation: ast.expr | None) -> str | None:
    if isinstance(annotation, ast.Subscript):
        annotation = annotation.value
    if isinstance(annotation, ast.Name):
        return _JSON_TYPES.get(annotation.id)
    return None


def check_arguments(schema: Mapping[str, Any], arguments: Mapping[str, Any]) -> None:
    """Raise ToolCallError naming the first argument that does not fit the schema."""
    properties = schema.get("properties") or {}
    for name in arguments:
        if name not in properties:
            known = ", ".join(properties) or "none"
            raise ToolArgumentError(f"unknown argument {name!r} (the tool takes: {known})")
    for name in schema.get("required") or []:
        if name not in arguments:
            raise ToolArgumentError(f"missing argument {name!r}")
    for name, value in arguments.items():
        kind = properties[name].get("type")
        ok = kind is None or (
            isinstance(value, _CHECKS[kind])
            and not (kind in ("integer", "number") and isinstance(value, bool))
        )
        if not ok:
            raise ToolArgumentError(
                f"argument {name!r} must be of type {kind}, not {type(value).__name__}"
            )


def run_tool(
    sandbox: Sandbox,
    tool: ToolInfo,
    arguments: Mapping[str, Any],
    *,
    timeout_s: float | None = None,
    source: str = "agent",
) -> UsageEvent:
    """Run one library tool in the sandbox; what happened, as the usage event to record.
    Arguments that do not fit raise ToolArgumentError (nothing runs, nothing to record)."""
    from memory.types import UsageEvent

    if not isinstance(arguments, Mapping) or not all(isinstance(k, str) for k in arguments):
        raise ToolArgumentError("the arguments must be an object of named values")
    check_arguments(input_schema(tool.signature), arguments)
    res = sandbox.run(
        f"from tools import {tool.name}\n\nanswer = {tool.name}(**ARGS)\n",
        tools={tool.name: tool.source},
        inputs={"ARGS": dict(arguments)},
        timeout_s=timeout_s,
        tool_timeout_s=timeout_s,
    )
    calls = [c for c in res.tool_calls if c.tool == tool.name]

    def failed(error_type: str, message: str) -> UsageEvent:
        return UsageEvent(
            tool.name, False, kwargs=dict(arguments), error_type=error_type,
            error_message=message, seconds=res.duration_s, source=source,
        )  # fmt: skip

    if res.timed_out or (calls and calls[0].error_type == "TimeoutError"):
        return failed(
            "TimeoutError", f"{tool.name} did not finish within {res.duration_s:.1f} s: killed"
        )
    if not calls:
        what = f"{res.error_type}: {res.error_message}" if res.error_type else "no call"
        return failed(res.error_type or "NotCalled", f"{tool.name} was not called ({what})")
    call = calls[0]
    if call.error_type is not None:
        return failed(
            call.error_type, f"{tool.name} raised {call.error_type}: {call.error_message or ''}"
        )
    return UsageEvent(
        tool.name, True, kwargs=dict(arguments), result=call.result,
        seconds=res.duration_s, source=source,
    )  # fmt: skip


def call_library_tool(
    library: ToolLibrary,
    sandbox: Sandbox,
    name: str,
    arguments: Mapping[str, Any],
    *,
    source: str,
    statuses: tuple[str, ...] = ("active",),
    timeout_s: float | None = None,
) -> Any:
    """Call the library's tool `name` as it is now (its current version) for an outside
    caller, recording the call as usage of `source`; its result, or ToolCallError."""
    current = library.get_tool(name)
    if current is None or current.status not in statuses:
        served = " or ".join(statuses)
        raise ToolCallError(f"unknown tool {name!r}: the library has no {served} tool of that name")
    event = run_tool(sandbox, current, arguments, timeout_s=timeout_s, source=source)
    with contextlib.suppress(ReadOnlyLibrary):  # a read-only library keeps no record
        library.record_usage([event])
    if not event.ok:
        raise ToolCallError(event.error_message or f"{name} failed")
    return event.result


def library_tools(
    library: ToolLibrary, sandbox: Sandbox, *, timeout_s: float | None = None
) -> list[BaseTool]:
    """The library's active tools as LangChain `StructuredTool`s (calls in the sandbox).
    A tool's error comes back to the calling agent as the tool's message, not raised."""
    from langchain_core.tools import StructuredTool, ToolException

    def runner(name: str) -> Callable[..., Any]:
        # Agents inspect a tool function's signature: it takes the tool's arguments only.
        def run(**arguments: Any) -> Any:
            try:
                return call_library_tool(
                    library, sandbox, name, arguments, source="langchain", timeout_s=timeout_s
                )
            except ToolCallError as exc:
                raise ToolException(str(exc)) from exc

        return run

    return [
        StructuredTool(
            name=info.name,
            description=info.docstring or info.signature,
            args_schema=input_schema(info.signature),
            func=runner(info.name),
            handle_tool_error=True,
        )
        for info in library.list_tools("active")
    ]
