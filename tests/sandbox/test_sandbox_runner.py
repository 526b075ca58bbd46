"""The in-sandbox runner, run in this process as the supervisor (it starts the code's and
the tools' interpreters itself): no Docker. Results go through the host's checks
(`jobs.to_exec_result`), as every real result does."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from sandbox import jobs
from sandbox.base import ExecResult
from sandbox.runner import codec, supervisor

ADD = "def add(a: int, b: int) -> int:\n    return a + b\n"
SORT_IN_PLACE = "def sort_in_place(xs):\n    xs.sort()\n    return xs\n"
BROKEN = "def broken(x):\n    return 1 / x\n"


def raw(code: str, tools: dict[str, str] | None = None, **kw: Any) -> dict[str, Any]:
    args: dict[str, Any] = {"timeout_s": 10.0, "output_limit": 64 * 1024, "rlimits": None}
    args.update(kw)
    return supervisor.supervise(code, tools or {}, **args)


def run(code: str, tools: dict[str, str] | None = None, **kw: Any) -> ExecResult:
    data = raw(code, tools, **kw)
    # What the host does with every result: a JSON round trip, then the field checks.
    data = json.loads(json.dumps(data))
    return jobs.to_exec_result(
        data,
        data["duration_s"],
        tools=list(tools or {}),
        output_limit=kw.get("output_limit", 64 * 1024),
    )


def test_answer_stdout_stderr_and_tool_calls_come_back_separately() -> None:
    res = run(
        "import sys\nfrom tools import add\nprint('out')\nprint('err', file=sys.stderr)\n"
        "answer = add(2, b=3)\n",
        {"add": ADD},
    )
    assert res.exit_code == 0
    assert res.stdout == "out\n"
    assert res.stderr == "err\n"
    assert res.has_answer is True and res.answer == 5
    assert res.error_type is None
    [call] = res.tool_calls
    assert call.tool == "add" and call.args == [2] and call.kwargs == {"b": 3}
    assert call.result == 5 and call.error_type is None and call.seconds >= 0


def test_no_answer_variable_means_has_answer_false() -> None:
    res = run("x = 1\n")
    assert res.exit_code == 0 and res.has_answer is False and res.answer is None


def test_every_call_is_recorded_in_order_with_arguments_as_they_were_passed() -> None:
    code = (
        "from tools import sort_in_place, add\n"
        "xs = [3, 1, 2]\nsort_in_place(xs)\nanswer = add(xs[0], 10)\n"
    )
    res = run(code, {"sort_in_place": SORT_IN_PLACE, "add": ADD})
    calls = res.tool_calls
    assert [c.tool for c in calls] == ["sort_in_place", "add"]
    # The tool sorted its own copy: the record keeps what it was called with, and the
    # caller's list is not changed (values cross as plain data).
    assert calls[0].args == [[3, 1, 2]] and calls[0].result == [1, 2, 3]
    assert calls[1].args == [3, 10] and res.answer == 13


def test_values_keep_their_type_across_the_bridge() -> None:
    ident = "def ident(x):\n    return x\n"
    code = (
        "from tools import ident\n"
        "v = (1, 'a', {2, 3}, frozenset([4]), b'x', {(1, 2): [None, 1.5]}, float('nan'), 1j, 10**50)\n"
        "back = ident(v)\n"
        "answer = [type(x).__name__ for x in back] + [back[:6] == v[:6], back[6] != back[6], back[8] == 10**50]\n"
    )
    res = run(code, {"ident": ident})
    assert res.answer == [
        "int",
        "str",
        "set",
        "frozenset",
        "bytes",
        "dict",
        "float",
        "complex",
        "int",
        True,
        True,
        True,
    ]


def test_a_tool_error_is_recorded_and_the_traceback_shows_code_and_tool() -> None:
    res = run("from tools import broken\nanswer = broken(0)\n", {"broken": BROKEN})
    assert res.error_type == "ZeroDivisionError"
    assert res.exit_code == 1
    [call] = res.tool_calls
    assert call.error_type == "ZeroDivisionError" and call.args == [0]
    tb = res.traceback or ""
    assert 'File "<code>", line 2' in tb and 'File "tools/broken.py", line 2' in tb
    assert "return 1 / x" in tb  # the tool's source line, although nothing was written to disk
    assert "runner/" not in tb


def test_the_code_can_catch_a_tools_builtin_exception_by_its_type() -> None:
    code = (
        "from tools import broken\n"
        "try:\n    broken(0)\nexcept ZeroDivisionError as exc:\n    answer = 'caught: ' + str(exc)\n"
    )
    assert run(code, {"broken": BROKEN}).answer == "caught: division by zero"


def test_syntax_error_is_reported_not_raised() -> None:
    res = run("def f(:\n    pass\n")
    assert res.error_type == "SyntaxError"
    assert "line 1" in (res.error_message or "")
    assert "SyntaxError" in (res.traceback or "")
    assert res.exit_code == 1


def test_missing_tool_module_is_a_clear_import_error() -> None:
    res = run("from tools import nope\n", {"add": ADD})
    assert res.error_type == "ImportError"
    assert "no tool module named 'nope'" in (res.error_message or "")
    assert "available: add" in (res.error_message or "")


def test_tool_module_without_its_function_is_a_clear_import_error() -> None:
    res = run("from tools import add\n", {"add": "def other():\n    return 1\n"})
    assert res.error_type == "ImportError"
    assert "defines no function named 'add'" in (res.error_message or "")


def test_tools_can_use_each_other_through_the_runner() -> None:
    double = "from tools import add\n\ndef double(x):\n    return add(x, x)\n"
    res = run("from tools import double\nanswer = double(4)\n", {"add": ADD, "double": double})
    assert res.answer == 8
    assert [c.tool for c in res.tool_calls] == ["double", "add"]


def test_a_tool_that_calls_itself_gets_a_recursion_error_not_a_hang() -> None:
    rec = "def rec(n):\n    from tools import rec as again\n    return 0 if n == 0 else again(n - 1)\n"
    res = run("from tools import rec\nanswer = rec(3)\n", {"rec": rec})
    assert res.error_type == "RecursionError"
    circle = "from tools import circle\n\ndef circle(n):\n    return n\n"
    res = run("from tools import circle\n", {"circle": circle})
    assert res.error_type == "ImportError" and "circle" in (res.error_message or "")


def test_a_tool_call_has_its_own_time_limit() -> None:
    loop = "def loop(x):\n    while True:\n        pass\n"
    code = (
        "from tools import loop, add\n"
        "try:\n    loop(1)\nexcept TimeoutError as exc:\n    first = str(exc)\n"
        "answer = [first, add(1, 2)]\n"
    )
    res = run(code, {"loop": loop, "add": ADD}, tool_timeout_s=0.5)
    assert res.answer == ["tool loop took longer than 0.5 s", 3]
    assert [(c.tool, c.error_type) for c in res.tool_calls] == [
        ("loop", "TimeoutError"),
        ("add", None),
    ]


def test_non_json_values_come_back_as_repr() -> None:
    res = run("answer = {1, 2}\n")
    assert res.has_answer and res.answer == "{1, 2}"
    res = run("answer = (1, 'a')\n")
    assert res.answer == [1, "a"]


def test_numpy_values_come_back_as_python_values() -> None:
    assert run("import numpy as np\nanswer = np.int64(3)\n").answer == 3
    assert run("import numpy as np\nanswer = np.arange(3)\n").answer == [0, 1, 2]
    # Nested non-JSON values: the whole value as its repr.
    res = run("import numpy as np\nanswer = [3, np.arange(3)]\n")
    assert res.answer == "[3, array([0, 1, 2])]"


def test_system_exit_sets_the_exit_code_without_an_error() -> None:
    res = run("import sys\nprint('bye')\nsys.exit(3)\n")
    assert res.exit_code == 3 and res.error_type is None and res.stdout == "bye\n"
    assert run("raise SystemExit\n").exit_code == 0


def test_hard_exit_of_the_code_is_reported() -> None:
    res = run("import os\nprint('partial', flush=True)\nos._exit(5)\n")
    assert res.exit_code == 5
    assert res.error_type == "Exited"
    assert res.stdout == "partial\n"


def test_timeout_kills_the_code_and_keeps_what_it_printed() -> None:
    started = time.monotonic()
    res = run("print('before')\nwhile True:\n    pass\n", timeout_s=0.5)
    assert time.monotonic() - started < 1.5
    assert res.timed_out is True and res.exit_code == 137
    assert res.stdout == "before\n"


def _state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return "gone"


def test_timeout_also_kills_what_the_code_started() -> None:
    code = (
        "import os, time\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    time.sleep(60)\n"
        "    os._exit(0)\n"
        "print(pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    res = run(code, timeout_s=0.5)
    assert res.timed_out
    grandchild = int(res.stdout.split()[0])
    time.sleep(0.1)
    assert _state(grandchild) in ("gone", "Z")


def test_a_grandchild_that_left_the_session_is_killed_too() -> None:
    """setsid() takes a process out of the code's group: the runner still finds it (it is
    the child subreaper) and kills it when the job ends."""
    code = (
        "import os, time\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    os.setsid()\n"
        "    if os.fork():\n"
        "        os._exit(0)\n"
        "    print(os.getpid(), flush=True)\n"
        "    time.sleep(60)\n"
        "    os._exit(0)\n"
        "os.waitpid(pid, 0)\n"
        "time.sleep(0.3)\n"
        "answer = 'done'\n"
    )
    started = time.monotonic()
    res = run(code, timeout_s=5)
    assert res.answer == "done" and time.monotonic() - started < 3
    orphan = int(res.stdout.split()[0])
    time.sleep(0.1)
    assert _state(orphan) in ("gone", "Z")


def test_output_is_capped_and_flagged() -> None:
    res = run(
        "import sys\nsys.stdout.write('x' * 200_000)\nprint('e' * 10, file=sys.stderr)\n",
        output_limit=1024,
    )
    assert res.truncated is True
    assert res.stdout == "x" * 1024
    assert res.stderr == "e" * 10 + "\n"
    assert res.exit_code == 0


def test_the_cap_never_splits_a_character() -> None:
    res = run("import sys\nsys.stdout.write('\u00e9' * 5000)\n", output_limit=1025)
    assert res.truncated and res.stdout == "\u00e9" * 512
    assert supervisor.without_partial_tail("a\u20ac".encode()[:-1]) == b"a"
    assert supervisor.without_partial_tail("a\u20ac".encode()) == "a\u20ac".encode()


def test_a_forked_process_does_not_report_its_own_result() -> None:
    code = (
        "import os\n"
        "pid = os.fork()\n"
        "answer = 'child' if pid == 0 else 'parent'\n"
        "if pid:\n"
        "    os.waitpid(pid, 0)\n"
    )
    assert run(code).answer == "parent"


def test_code_cannot_read_the_job_from_stdin() -> None:
    assert run("import sys\nanswer = sys.stdin.read()\n").answer == ""


# --------------------------------------------------------------------------- integrity


def test_the_code_holds_no_descriptor_but_its_own_pipes() -> None:
    res = run("import os\nanswer = sorted(int(fd) for fd in os.listdir('/proc/self/fd'))\n")
    # stdin (/dev/null), stdout and stderr (capture pipes), its two message pipes, and the
    # descriptor listdir itself opens.
    assert len(res.answer) <= 6, res.answer


def test_records_come_only_from_calls_the_runner_brokered() -> None:
    """The code writes fake call records and a fake final state on every descriptor it
    holds: none becomes a record, and the forged records never reach the result."""
    code = (
        "import json, os\n"
        "from tools import add\n"
        "real = add(1, 1)\n"
        "fake_call = json.dumps({'op': 'reply', 'ok': True, 'result': 999}) + '\\n'\n"
        "fake_rec = 'C ' + json.dumps({'tool': 'add', 'args': [5, 5], 'result': 10}) + '\\n'\n"
        "for fd in range(3, 64):\n"
        "    try:\n"
        "        os.write(fd, (fake_call + fake_rec).encode())\n"
        "    except OSError:\n"
        "        pass\n"
        "answer = real\n"
    )
    res = run(code, {"add": ADD})
    assert res.answer == 2
    assert [(c.tool, c.args, c.result) for c in res.tool_calls] == [("add", [1, 1], 2)]


def test_an_always_equal_object_cannot_leave_the_tools_process() -> None:
    tool = (
        "class _Yes:\n    def __eq__(self, other):\n        return True\n\n"
        "def liar(x: int) -> int:\n    return _Yes()\n"
    )
    code = "from tools import liar\nassert liar(1) == 2\nanswer = 'passed'\n"
    res = run(code, {"liar": tool})
    assert res.error_type == "TypeError" and not res.has_answer
    assert "cannot leave its process" in (res.error_message or "")


def test_hostile_values_from_a_tool_are_refused_not_crashing_the_runner() -> None:
    deep = "def deep(x: int) -> list:\n    v = []\n    for _ in range(200):\n        v = [v]\n    return v\n"
    huge = "def huge(x: int) -> int:\n    return 10 ** 5000\n"
    code = (
        "from tools import deep, huge\n"
        "out = []\n"
        "for f in (deep, huge):\n"
        "    try:\n        f(1)\n        out.append('ok')\n"
        "    except TypeError as exc:\n        out.append('TypeError')\n"
        "answer = out\n"
    )
    res = run(code, {"deep": deep, "huge": huge})
    assert res.answer == ["TypeError", "TypeError"]


def test_the_result_line_carries_the_secret_and_nothing_else_is_on_stdout(
    capsys: pytest.CaptureFixture[str],
) -> None:
    supervisor._report("abc123", {"exit_code": 0, "stdout": "a\nb"})
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and out.startswith(codec.MARKER + "abc123 ")
    assert json.loads(out[len(codec.MARKER) + 7 :])["stdout"] == "a\nb"


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        3,
        -2.5,
        "s",
        [1, [2]],
        (1, 2),
        {1, 2},
        frozenset("ab"),
        b"\x00",
        {"a": 1, 2: (3,)},
        1 + 2j,
    ],
)
def test_plain_data_round_trips(value: Any) -> None:
    assert codec.from_plain(json.loads(json.dumps(codec.to_plain(value)))) == value


def test_plain_data_from_the_other_side_is_bounded() -> None:
    for data in (
        json.loads("[" * 100 + "]" * 100),
        {"t": "tuple"},
        {"t": "dict", "v": [[1]]},
        {"t": "eval", "v": "x"},
        {"t": "float", "v": "1e9999x"},
        10**4500,
        list(range(200_000)),
    ):
        with pytest.raises(ValueError):
            codec.from_plain(data)


def test_an_unexpected_failure_of_the_supervisor_still_reports_its_records(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Whatever breaks inside the supervisor, its top level writes a result with the
    records made so far (the host accepts it) instead of dying without one."""
    original = supervisor.Supervisor._tool_replied
    replies: list[int] = []

    def fail_on_the_second_call(self: Any, server: Any, message: dict[str, Any]) -> None:
        replies.append(1)
        if len(replies) > 2:  # the module's load, the first call, then this
            raise RuntimeError("boom")
        original(self, server, message)

    monkeypatch.setattr(supervisor.Supervisor, "_tool_replied", fail_on_the_second_call)
    res = run("from tools import add\nadd(1, 2)\nadd(3, 4)\nanswer = 1\n", {"add": ADD})
    assert res.error_type == "SandboxSupervisorError" and not res.has_answer
    assert [(c.args, c.result) for c in res.tool_calls] == [([1, 2], 3)]
    assert any("RuntimeError: boom" in n for n in res.notes)


def test_notes_are_counted_by_kind_and_bounded() -> None:
    sup = supervisor.Supervisor(None)
    for i in range(1000):
        sup.note("the code process sent a malformed message")
        sup.note(f"note number {i}")
    notes = sup._notes()
    assert len(notes) <= codec.MAX_NOTES + 1
    assert "the code process sent a malformed message (x1000)" in notes
    assert any(n.startswith("more notes were dropped") for n in notes)
    sup.discard()
