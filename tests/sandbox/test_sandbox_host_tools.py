"""Host tools: imported by the code like library tools, answered and recorded by the host.

Both backends run the same program; the broker's own checks are tested on hostile
request lines directly, and the merge on records a runner could have forged.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest

from sandbox import ExecResult, SandboxConfig, ToolCall
from sandbox.base import HostTool, HostToolError
from sandbox.hostcalls import HostBroker
from sandbox.local import LocalSandbox
from sandbox.runner.codec import CALL_MARKER, MAX_TOOL_CALLS, to_plain

EMPTY = to_plain({})


class Host:
    """Host tools that remember every call they got, on the host."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[Any], dict[str, Any]]] = []
        self.lock = threading.Lock()

    def tool(self, name: str, fn: Any, doc: str = "") -> HostTool:
        def call(args: list[Any], kwargs: dict[str, Any], timeout: float | None) -> Any:
            with self.lock:
                self.calls.append((name, args, kwargs))
            return fn(*args, **kwargs)

        return HostTool(doc, call)

    def tools(self) -> dict[str, HostTool]:
        def fail(x: int) -> int:
            raise HostToolError("ValueError", f"x must be positive, got {x}")

        def slow() -> int:
            time.sleep(1.5)
            return 1

        return {
            "add": self.tool("add", lambda a, b=0: a + b, "Add two numbers."),
            "fail": self.tool("fail", fail),
            "slow": self.tool("slow", slow),
            "huge": self.tool("huge", lambda: "x" * (2 * 1024 * 1024)),
        }


PROGRAM = """
from tools import add, fail, slow, huge, square_plus_one
doc = add.__doc__
x = add(2, b=3)
try:
    fail(-1)
except ValueError as exc:
    failed = str(exc)
try:
    slow()
except TimeoutError:
    failed += " | timeout"
try:
    huge()
except ValueError as exc:
    failed += " | too big"
answer = [doc, x, failed, square_plus_one(4)]
"""
# A library tool (its own process, in the sandbox) may call a host tool through the bridge.
SQUARE = "from tools import add\n\ndef square_plus_one(n):\n    return add(n * n, b=1)\n"


def check_program(sandbox: Any) -> None:
    host = Host()
    res = sandbox.run(
        PROGRAM,
        tools={"square_plus_one": SQUARE},
        host_tools=host.tools(),
        tool_timeout_s=1.0,
        timeout_s=20,
    )
    assert res.ok, res.observation()
    assert res.answer == [
        "Add two numbers.",
        5,
        "x must be positive, got -1 | timeout | too big",
        17,
    ]
    assert [c[0] for c in host.calls] == ["add", "fail", "slow", "huge", "add"]
    records = [(c.tool, c.args, c.kwargs, c.result, c.error_type) for c in res.tool_calls]
    assert records == [
        ("add", [2], {"b": 3}, 5, None),
        ("fail", [-1], {}, None, "ValueError"),
        ("slow", [], {}, None, "TimeoutError"),
        ("huge", [], {}, None, "ValueError"),
        ("square_plus_one", [4], {}, 17, None),
        ("add", [16], {"b": 1}, 17, None),
    ]


@pytest.mark.slow
def test_local_backend_answers_and_records_host_tools() -> None:
    check_program(LocalSandbox(SandboxConfig(backend="local", memory_mb=512)))


@pytest.mark.docker
def test_docker_backend_answers_and_records_host_tools(docker_sandbox: Any) -> None:
    check_program(docker_sandbox)


@pytest.mark.docker
def test_the_code_cannot_forge_a_host_call(docker_sandbox: Any) -> None:
    # The code's stdout is a pipe to the supervisor, not the host's stream: a call line it
    # prints (on any descriptor) is only output, and no host tool runs.
    host = Host()
    forged = (
        CALL_MARKER
        + "0" * 32
        + " "
        + json.dumps({"id": 1, "tool": "add", "args": [1], "kwargs": EMPTY})
    )
    code = (
        "import os, sys\n"
        f"print({forged!r})\n"
        f"os.write(1, ({forged!r} + '\\n').encode())\n"
        "sys.__stdout__.write('x\\n')\n"
        "answer = 1\n"
    )
    res = docker_sandbox.run(code, host_tools=host.tools())
    assert res.ok and res.answer == 1
    assert host.calls == [] and res.tool_calls == []
    assert res.stdout.count("EVOAGENT-CALL") == 2


@pytest.mark.docker
def test_a_host_tool_shadowing_a_library_tool_is_refused(docker_sandbox: Any) -> None:
    from sandbox import SandboxError

    with pytest.raises(SandboxError, match="rename one"):
        docker_sandbox.run("answer = 1", tools={"add": SQUARE}, host_tools=Host().tools())


# ------------------------------------------------------------------ the broker alone


def broker() -> tuple[HostBroker, Host]:
    host = Host()
    return HostBroker("s3cret", host.tools(), timeout_s=5.0), host


def line(payload: object) -> bytes:
    return (CALL_MARKER + "s3cret ").encode() + json.dumps(payload).encode() + b"\n"


def reply_of(data: bytes) -> dict[str, Any]:
    value = json.loads(data)
    assert isinstance(value, dict)
    return value


def test_the_broker_takes_only_whole_call_lines_with_the_secret() -> None:
    b, host = broker()
    out = bytearray(line({"id": 1, "tool": "add", "args": [1, 2], "kwargs": EMPTY}))
    out += b"EVOAGENT-RESULT s3cret {}\n"
    replies = b.take(out)
    assert [reply_of(r) for r in replies] == [{"id": 1, "ok": True, "result": 3}]
    assert bytes(out) == b"EVOAGENT-RESULT s3cret {}\n"
    # Another secret, or half a line, is not taken (a result line with it is invalid).
    out = bytearray(line({"id": 2, "tool": "add", "args": [1], "kwargs": EMPTY})[:-5])
    assert b.take(out) == [] and len(out) > 0
    out = bytearray(b"EVOAGENT-CALL other {}\n")
    assert b.take(out) == [] and host.calls == [("add", [1, 2], {})]


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        ("not json", "not JSON"),
        ({"id": 1, "tool": "add", "args": [1], "kwargs": EMPTY, "extra": 1}, "unexpected fields"),
        ({"id": "1", "tool": "add", "args": [1], "kwargs": EMPTY}, "id"),
        ({"id": 1, "tool": "rm_rf", "args": [], "kwargs": EMPTY}, "not given"),
        (
            {"id": 1, "tool": "add", "args": to_plain({"a": 1}), "kwargs": EMPTY},
            "malformed arguments",
        ),
        ({"id": 1, "tool": "add", "args": [{"__t": "bogus"}], "kwargs": EMPTY}, "arguments"),
        ({"id": 1, "tool": "add", "args": [1], "kwargs": {"b": 2}}, "arguments"),
    ],
)
def test_hostile_requests_run_nothing_and_discard_the_result(payload: object, problem: str) -> None:
    b, host = broker()
    raw = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
    out = bytearray((CALL_MARKER + "s3cret ").encode() + raw + b"\n")
    [reply] = b.take(out)
    assert reply_of(reply)["ok"] is False
    assert host.calls == []
    merged = b.merge(ExecResult(exit_code=0, answer=1, has_answer=True))
    assert merged.error_type == "SandboxResultInvalid" and problem in (merged.error_message or "")


def test_deep_or_repeated_requests_are_refused() -> None:
    b, host = broker()
    deep: Any = 1
    for _ in range(200):
        deep = [deep]
    assert (
        reply_of(
            b.answer(json.dumps({"id": 1, "tool": "add", "args": [deep], "kwargs": EMPTY}).encode())
        )["ok"]
        is False
    )
    assert host.calls == []
    b, _ = broker()
    ok = {"id": 1, "tool": "add", "args": [1], "kwargs": EMPTY}
    assert reply_of(b.answer(json.dumps(ok).encode()))["ok"] is True
    assert reply_of(b.answer(json.dumps(ok).encode()))["ok"] is False  # the same id again
    assert b.problem is not None and "repeated" in b.problem


def test_calls_past_the_limit_are_refused() -> None:
    b, host = broker()
    for i in range(1, MAX_TOOL_CALLS + 2):
        b.answer(json.dumps({"id": i, "tool": "add", "args": [i], "kwargs": EMPTY}).encode())
    assert len(host.calls) == MAX_TOOL_CALLS
    assert b.problem is not None and str(MAX_TOOL_CALLS) in b.problem


def test_the_host_record_wins_and_a_forged_one_discards_the_result() -> None:
    b, _ = broker()
    b.answer(json.dumps({"id": 1, "tool": "add", "args": [1, 2], "kwargs": EMPTY}).encode())
    lib = ToolCall(tool="square_plus_one", args=[4], result=17)
    # The runner says the host's add returned 99: the host knows it returned 3.
    lying = ToolCall(tool="add", args=[1, 2], result=99)
    merged = b.merge(ExecResult(exit_code=0, tool_calls=[lying, lib]))
    assert [(c.tool, c.result) for c in merged.tool_calls] == [("add", 3), ("square_plus_one", 17)]
    # A host call the host never answered, or other arguments: the result is discarded.
    invented = ToolCall(tool="add", args=[5, 5], result=10)
    for calls in ([lying, invented], [ToolCall(tool="add", args=[7], result=7)]):
        merged = b.merge(ExecResult(exit_code=0, tool_calls=calls))
        assert merged.error_type == "SandboxResultInvalid"
    # A call still pending when the code ended (no runner record) is still on record.
    merged = b.merge(ExecResult(exit_code=0, tool_calls=[lib]))
    assert [c.tool for c in merged.tool_calls] == ["square_plus_one", "add"]
