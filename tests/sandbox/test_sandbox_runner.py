"""The in-sandbox runner, run in this process (it forks the code's child itself): no Docker."""

from __future__ import annotations

import json
import time
from typing import Any

from sandbox import runner

ADD = "def add(a: int, b: int) -> int:\n    return a + b\n"
SORT_IN_PLACE = "def sort_in_place(xs):\n    xs.sort()\n    return xs\n"
BROKEN = "def broken(x):\n    return 1 / x\n"


def run(code: str, tools: dict[str, str] | None = None, **kw: Any) -> dict[str, Any]:
    args = {"timeout_s": 10.0, "output_limit": 64 * 1024, "rlimits": None}
    args.update(kw)
    return runner.supervise(code, tools or {}, **args)


def test_answer_stdout_stderr_and_tool_calls_come_back_separately() -> None:
    res = run(
        "import sys\nfrom tools import add\nprint('out')\nprint('err', file=sys.stderr)\n"
        "answer = add(2, b=3)\n",
        {"add": ADD},
    )
    assert res["exit_code"] == 0
    assert res["stdout"] == "out\n"
    assert res["stderr"] == "err\n"
    assert res["has_answer"] is True and res["answer"] == 5
    assert res["error_type"] is None
    [call] = res["tool_calls"]
    assert call["tool"] == "add" and call["args"] == [2] and call["kwargs"] == {"b": 3}
    assert call["result"] == 5 and call["error_type"] is None and call["seconds"] >= 0


def test_no_answer_variable_means_has_answer_false() -> None:
    res = run("x = 1\n")
    assert res["exit_code"] == 0 and res["has_answer"] is False and res["answer"] is None


def test_every_call_is_recorded_in_order_with_arguments_as_they_were_passed() -> None:
    code = (
        "from tools import sort_in_place, add\n"
        "xs = [3, 1, 2]\nsort_in_place(xs)\nanswer = add(xs[0], 10)\n"
    )
    res = run(code, {"sort_in_place": SORT_IN_PLACE, "add": ADD})
    calls = res["tool_calls"]
    assert [c["tool"] for c in calls] == ["sort_in_place", "add"]
    # The tool sorted its argument in place: the record keeps what it was called with.
    assert calls[0]["args"] == [[3, 1, 2]] and calls[0]["result"] == [1, 2, 3]
    assert calls[1]["args"] == [1, 10] and res["answer"] == 11


def test_a_tool_error_is_recorded_and_the_traceback_shows_only_code_and_tool() -> None:
    res = run("from tools import broken\nanswer = broken(0)\n", {"broken": BROKEN})
    assert res["error_type"] == "ZeroDivisionError"
    assert res["exit_code"] == 1
    [call] = res["tool_calls"]
    assert call["error_type"] == "ZeroDivisionError" and call["args"] == [0]
    tb = res["traceback"]
    assert 'File "<code>", line 2' in tb and 'File "tools/broken.py", line 2' in tb
    assert "return 1 / x" in tb  # the tool's source line, although nothing was written to disk
    assert "runner.py" not in tb


def test_syntax_error_is_reported_not_raised() -> None:
    res = run("def f(:\n    pass\n")
    assert res["error_type"] == "SyntaxError"
    assert "line 1" in res["error_message"]
    assert "SyntaxError" in res["traceback"]
    assert res["exit_code"] == 1


def test_missing_tool_module_is_a_clear_import_error() -> None:
    res = run("from tools import nope\n", {"add": ADD})
    assert res["error_type"] == "ImportError"
    assert "no tool module named 'nope'" in res["error_message"]
    assert "available: add" in res["error_message"]


def test_tool_module_without_its_function_is_a_clear_import_error() -> None:
    res = run("from tools import add\n", {"add": "def other():\n    return 1\n"})
    assert res["error_type"] == "ImportError"
    assert "defines no function named 'add'" in res["error_message"]


def test_tools_can_use_each_other() -> None:
    double = "from tools import add\n\ndef double(x):\n    return add(x, x)\n"
    res = run("from tools import double\nanswer = double(4)\n", {"add": ADD, "double": double})
    assert res["answer"] == 8
    assert [c["tool"] for c in res["tool_calls"]] == ["double", "add"]


def test_non_json_values_come_back_as_repr() -> None:
    res = run("answer = {1, 2}\n")
    assert res["has_answer"] and res["answer"] == "{1, 2}"
    res = run("answer = (1, 'a')\n")
    assert res["answer"] == [1, "a"]


def test_numpy_values_come_back_as_python_values() -> None:
    assert run("import numpy as np\nanswer = np.int64(3)\n")["answer"] == 3
    assert run("import numpy as np\nanswer = np.arange(3)\n")["answer"] == [0, 1, 2]
    # Nested non-JSON values: the whole value as its repr.
    res = run("import numpy as np\nanswer = [3, np.arange(3)]\n")
    assert res["answer"] == "[3, array([0, 1, 2])]"


def test_system_exit_sets_the_exit_code_without_an_error() -> None:
    res = run("import sys\nprint('bye')\nsys.exit(3)\n")
    assert res["exit_code"] == 3 and res["error_type"] is None and res["stdout"] == "bye\n"
    assert run("raise SystemExit\n")["exit_code"] == 0


def test_hard_exit_of_the_code_is_reported() -> None:
    res = run("import os\nprint('partial', flush=True)\nos._exit(5)\n")
    assert res["exit_code"] == 5
    assert res["error_type"] == "Exited"
    assert res["stdout"] == "partial\n"


def test_timeout_kills_the_code_and_keeps_what_it_printed() -> None:
    started = time.monotonic()
    res = run("print('before')\nwhile True:\n    pass\n", timeout_s=0.5)
    assert time.monotonic() - started < 1.5
    assert res["timed_out"] is True and res["exit_code"] == 137
    assert res["stdout"] == "before\n"


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
    assert res["timed_out"]
    grandchild = int(res["stdout"].split()[0])
    # Killed with its group, and reaped by init/us: not running any more.
    time.sleep(0.1)
    try:
        with open(f"/proc/{grandchild}/stat") as fh:
            state = fh.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        state = "gone"
    assert state in ("gone", "Z")


def test_output_is_capped_and_flagged() -> None:
    res = run(
        "import sys\nsys.stdout.write('x' * 200_000)\nprint('e' * 10, file=sys.stderr)\n",
        output_limit=1024,
    )
    assert res["truncated"] is True
    assert res["stdout"] == "x" * 1024
    assert res["stderr"] == "e" * 10 + "\n"
    assert res["exit_code"] == 0


def test_the_cap_never_splits_a_character() -> None:
    res = run("import sys\nsys.stdout.write('\u00e9' * 5000)\n", output_limit=1025)
    assert res["truncated"] and res["stdout"] == "\u00e9" * 512
    assert runner._without_partial_tail("a\u20ac".encode()[:-1]) == b"a"
    assert runner._without_partial_tail("a\u20ac".encode()) == "a\u20ac".encode()


def test_a_forked_process_does_not_report_its_own_result() -> None:
    code = (
        "import os\n"
        "pid = os.fork()\n"
        "answer = 'child' if pid == 0 else 'parent'\n"
        "if pid:\n"
        "    os.waitpid(pid, 0)\n"
    )
    res = run(code)
    assert res["answer"] == "parent"


def test_code_cannot_read_the_job_from_stdin() -> None:
    res = run("import sys\nanswer = sys.stdin.read()\n")
    assert res["answer"] == ""


def test_parse_channel_ignores_garbage_and_orders_calls() -> None:
    data = b'C {"seq": 2, "tool": "b"}\nC {"seq": 1, "tool": "a"}\nnot json\nR {"answer": 1}\nC {"seq": 3, "tool": "c"'
    calls, final = runner._parse_channel(data)
    assert [c["tool"] for c in calls] == ["a", "b"]
    assert final == {"answer": 1}


def test_result_line_is_one_json_line_with_the_marker(capsys: Any) -> None:
    runner._report({"exit_code": 0, "stdout": "a\nb"})
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and out.startswith(runner.MARKER)
    assert json.loads(out[len(runner.MARKER) :])["stdout"] == "a\nb"
