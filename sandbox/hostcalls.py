"""Host tools: tools the host answers for the sandboxed code (an external MCP server's).

The code imports a host tool like a library tool (`from tools import name`). The runner's
supervisor forwards each call as one line on its stdout (`CALL_MARKER secret JSON`); the
backend hands those lines to a `HostBroker`, which checks them, calls the tool here, and
gives back one reply line for the runner's stdin. The code never holds either stream.

Who vouches for what: the broker keeps its own record of every host-tool call it
answered, and that record, not the supervisor's, is what `ExecResult.tool_calls` says
for host tools (`HostBroker.merge`). Every request is hostile data: its size, type and
nesting are checked, its tool must be one this run was given, and at most
`MAX_TOOL_CALLS` are answered. What a host tool returns is checked the same way before
it goes down: an outside server is not trusted either.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from sandbox.base import ExecResult, HostTool, HostToolError, ToolCall
from sandbox.runner.codec import (
    CALL_MARKER,
    MAX_TOOL_CALLS,
    MESSAGE_LIMIT,
    VALUE_LIMIT,
    Unplain,
    from_plain,
    jsonish,
    to_plain,
)

#: the longest result of a host tool sent down to the code, as JSON text
RESULT_LIMIT = 1024 * 1024


class HostBroker:
    """One run's host-tool calls: requests in, replies out, the authoritative record."""

    def __init__(self, secret: str, tools: Mapping[str, HostTool], timeout_s: float | None) -> None:
        self.prefix = (CALL_MARKER + secret + " ").encode("ascii")
        self.tools = dict(tools)
        self.timeout_s = timeout_s
        self.records: list[tuple[int, ToolCall]] = []
        self.problem: str | None = None

    def take(self, out: bytearray) -> list[bytes]:
        """Answer the whole call lines at the start of `out` (removed from it); return the
        reply lines to send. What follows them (the result line) stays in `out`."""
        replies = []
        while out.startswith(self.prefix):
            end = out.find(b"\n")
            if end < 0:
                break
            line = bytes(out[len(self.prefix) : end])
            del out[: end + 1]
            replies.append(self.answer(line))
        return replies

    def answer(self, line: bytes) -> bytes:
        """The reply line to one request line."""
        request = self._request(line)
        if isinstance(request, str):
            # An honest supervisor never sends this: the run's result will be discarded.
            self.problem = self.problem or request
            seq = _id_of(line)
            refusal = {"id": seq, "ok": False, "error_type": "RuntimeError"}
            return (json.dumps({**refusal, "error_message": request}) + "\n").encode("utf-8")
        seq, name, args, kwargs = request
        started = time.monotonic()
        reply: dict[str, Any]
        try:
            value = self.tools[name].call(args, kwargs, self.timeout_s)
            plain = to_plain(value)
            size = len(json.dumps(plain))
            if size > RESULT_LIMIT:
                raise HostToolError(
                    "ValueError", f"the result is {size} characters, over {RESULT_LIMIT}"
                )
            reply = {"ok": True, "result": plain}
        except HostToolError as exc:
            reply = {"ok": False, "error_type": exc.error_type, "error_message": exc.message}
        except Unplain as exc:
            reply = {"ok": False, "error_type": "TypeError", "error_message": str(exc)}
        except Exception as exc:  # the tool's client failed: the code gets the error
            reply = {"ok": False, "error_type": type(exc).__name__, "error_message": str(exc)}
        seconds = time.monotonic() - started
        if self.timeout_s is not None and seconds > self.timeout_s and reply["ok"]:
            # The supervisor gave up on it and told the code so: the record says the same.
            reply = {
                "ok": False,
                "error_type": "TimeoutError",
                "error_message": f"host tool {name} took longer than {self.timeout_s:g} s",
            }
        if not reply["ok"]:
            reply["error_message"] = str(reply["error_message"])[:VALUE_LIMIT]
        self.records.append(
            (
                seq,
                ToolCall(
                    tool=name,
                    args=[jsonish(a, VALUE_LIMIT)[0] for a in args],
                    kwargs={k: jsonish(v, VALUE_LIMIT)[0] for k, v in kwargs.items()},
                    result=jsonish(from_plain(reply["result"]), VALUE_LIMIT)[0]
                    if reply["ok"]
                    else None,
                    error_type=None if reply["ok"] else reply["error_type"],
                    error_message=None if reply["ok"] else reply["error_message"],
                    seconds=seconds,
                ),
            )
        )
        return (json.dumps({"id": seq, **reply}) + "\n").encode("utf-8")

    def _request(self, line: bytes) -> tuple[int, str, list[Any], dict[str, Any]] | str:
        """The request, or what is wrong with it."""
        if len(line) > MESSAGE_LIMIT:
            return "a host-tool request is over the size limit"
        try:
            data = json.loads(line)
        except (ValueError, RecursionError):
            return "a host-tool request is not JSON"
        if type(data) is not dict or set(data) != {"id", "tool", "args", "kwargs"}:
            return "a host-tool request has unexpected fields"
        seq, name = data["id"], data["tool"]
        if type(seq) is not int or seq < 1 or any(seq == s for s, _ in self.records):
            return "a host-tool request has a malformed or repeated id"
        if type(name) is not str or name not in self.tools:
            return f"a host-tool request names a tool not given: {str(name)[:60]!r}"
        if len(self.records) >= MAX_TOOL_CALLS:
            return f"more than {MAX_TOOL_CALLS} host-tool calls"
        try:
            args, kwargs = from_plain(data["args"]), from_plain(data["kwargs"])
        except ValueError as exc:
            return f"a host-tool request's arguments: {exc}"
        if (
            type(args) is not list
            or type(kwargs) is not dict
            or not all(type(k) is str for k in kwargs)
        ):
            return "a host-tool request has malformed arguments"
        return seq, name, args, kwargs

    def merge(self, result: ExecResult) -> ExecResult:
        """`result` with the host's records in place of the supervisor's for host tools.

        The supervisor's host-tool records must be the host's calls, in order (a call
        still pending when the code ended has none): anything else discards the result."""
        if self.problem is not None:
            return ExecResult.discarded(self.problem, result.duration_s)
        own = [call for _, call in sorted(self.records, key=lambda r: r[0])]
        theirs = [c for c in result.tool_calls if c.tool in self.tools]
        if len(theirs) > len(own) or any(
            (a.tool, a.args, a.kwargs) != (b.tool, b.args, b.kwargs)
            for a, b in zip(theirs, own, strict=False)
        ):
            return ExecResult.discarded(
                "the runner's records of host-tool calls differ from the host's", result.duration_s
            )
        calls: list[ToolCall] = []
        mine = iter(own)
        for call in result.tool_calls:
            calls.append(next(mine) if call.tool in self.tools else call)
        calls.extend(mine)
        return replace(result, tool_calls=calls)


def _id_of(line: bytes) -> int:
    try:
        seq = json.loads(line).get("id")
    except (ValueError, RecursionError, AttributeError):
        return -1
    return seq if type(seq) is int else -1


def host_docs(tools: Mapping[str, HostTool] | None) -> dict[str, str]:
    """The job's `host_tools` field: name -> docstring."""
    return {name: tool.doc[:VALUE_LIMIT] for name, tool in (tools or {}).items()}
