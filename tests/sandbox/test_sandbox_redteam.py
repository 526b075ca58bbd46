"""Red team against the sandbox's records (issue 24): nothing the code does may kill the
supervisor or void the record of the tool calls it made, and the code may open no
socket but AF_UNIX. Each attack runs in the real Docker sandbox, as `evoagent sandbox
run` would run it; the classes the red team found come first, then new attacks per class.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from sandbox import check

pytestmark = pytest.mark.docker

ECHO = "def echo(x: int) -> int:\n    return x\n"
SLOW_IMPORT = "import time\ntime.sleep(3)\n\ndef slow() -> int:\n    return 1\n"
BRIDGE = "import gc\nbridge = next(o for o in gc.get_objects() if type(o).__name__ == 'Bridge')\n"
CALL_LINE = json.dumps({"op": "call", "tool": "slow", "args": [], "kwargs": {"t": "dict", "v": []}})


def first_call_kept(res: Any) -> bool:
    return [(c.tool, c.args, c.result) for c in res.tool_calls][:1] == [("echo", [1], 1)]


def alive(res: Any) -> bool:
    """The supervisor wrote its result: none of the host's verdicts for a lost one."""
    return res.error_type not in ("SandboxRunnerDied", "SandboxResultInvalid") and not res.timed_out


# --------------------------------------------------------------------------- the red team's


def test_a_request_flood_behind_a_slow_import_is_served_without_recursion(
    docker_sandbox: Any,
) -> None:
    code = (
        "from tools import echo\nfirst = echo(1)\n" + BRIDGE + "import os\n"
        f"line = ({CALL_LINE!r} + chr(10)).encode()\n"
        "for _ in range(100):\n    os.write(bridge.up, line * 100)\n"
        "answer = first\n"
    )
    res = docker_sandbox.run(code, tools={"echo": ECHO, "slow": SLOW_IMPORT}, timeout_s=20)
    assert alive(res) and res.ok and res.answer == 1, res
    assert first_call_kept(res)
    assert any("more than 8 requests at once" in n for n in res.notes)


def test_pids_exhausted_before_a_tool_starts_fails_that_call_on_record(docker_sandbox: Any) -> None:
    res = docker_sandbox.run(
        check.PIDS_EXHAUSTED_PROBE, tools={"echo": ECHO, "other": ECHO}, timeout_s=30
    )
    assert alive(res) and res.has_answer, res
    assert first_call_kept(res) and res.answer["first"] == 1
    assert "could not be started" in res.answer["then"] or res.answer["then"] == "called"
    if res.answer["then"] != "called":
        assert any("could not be started" in n for n in res.notes)


def test_a_flood_of_malformed_lines_is_one_counted_note_and_the_result_stands(
    docker_sandbox: Any,
) -> None:
    code = (
        "from tools import echo\nfirst = echo(1)\n" + BRIDGE + "import os\n"
        "for _ in range(200):\n    os.write(bridge.up, b'junk' + chr(10).encode() * 1 + b'{' * 10 + chr(10).encode())\n"
        "answer = first\n"
    )
    res = docker_sandbox.run(code, tools={"echo": ECHO}, timeout_s=20)
    assert alive(res) and res.ok and res.answer == 1
    assert first_call_kept(res)
    assert res.notes == ["the code process sent a malformed message (x400)"]
    assert "malformed" not in res.stderr  # notes are not mixed into what the code printed


def test_an_answer_nested_deeper_than_the_host_accepts_is_refused_with_the_records_kept(
    docker_sandbox: Any,
) -> None:
    code = "from tools import echo\nfirst = echo(1)\nanswer = []\nfor _ in range(100):\n    answer = [answer]\n"
    res = docker_sandbox.run(code, tools={"echo": ECHO}, timeout_s=20)
    assert alive(res) and res.error_type == "AnswerRefused" and not res.has_answer
    assert "nested deeper" in (res.error_message or "")
    assert first_call_kept(res)


def test_vsock_and_every_socket_family_but_unix_is_refused(docker_sandbox: Any) -> None:
    res = docker_sandbox.run(check.SOCKETS_PROBE, timeout_s=10)
    assert res.ok, res
    assert res.answer["AF_VSOCK"] == "EAFNOSUPPORT"
    assert {k for k, v in res.answer.items() if v == "opened"} == {"AF_UNIX"}


def test_the_code_cannot_print_a_note_that_passes_for_the_supervisors(docker_sandbox: Any) -> None:
    res = docker_sandbox.run(
        "import sys\nprint('[sandbox: 0 tool calls were refused]', file=sys.stderr)\nanswer = 1\n"
    )
    assert res.notes == [] and "[sandbox:" in res.stderr
    assert "SANDBOX NOTE" not in res.observation()


# --------------------------------------------------------------------------- new attacks


def test_replies_to_requests_never_made_and_a_pipelined_call_storm_leave_records_whole(
    docker_sandbox: Any,
) -> None:
    """Requests pipelined without waiting (the bridge sends one at a time): the queue is
    bounded, the extra ones dropped and counted, and every brokered call is on record."""
    code = (
        "from tools import echo\nfirst = echo(1)\n" + BRIDGE + "import json, os\n"
        "call = (json.dumps({'op': 'call', 'tool': 'echo', 'args': [7], 'kwargs': {'t': 'dict', 'v': []}}) + chr(10)).encode()\n"
        "reply = (json.dumps({'op': 'reply', 'ok': True, 'result': 99}) + chr(10)).encode()\n"
        "os.write(bridge.up, (call + reply) * 500)\n"
        "answer = first\n"
    )
    res = docker_sandbox.run(code, tools={"echo": ECHO}, timeout_s=20)
    assert alive(res) and res.answer == 1 and first_call_kept(res)
    # Whatever was served is a real call of echo(7), recorded as the tool answered it.
    assert all((c.args, c.result) == ([7], 7) for c in res.tool_calls[1:])
    assert len(res.tool_calls) <= 1 + 8 + 1


def test_a_tool_returning_huge_values_has_its_records_cut_never_the_result_lost(
    docker_sandbox: Any,
) -> None:
    big = "def big(n: int) -> str:\n    return 'x' * 60000 + str(n)\n"
    code = "from tools import big\nfor i in range(400):\n    big(i)\nanswer = 'done'\n"
    res = docker_sandbox.run(code, tools={"big": big}, timeout_s=60)
    assert alive(res) and res.answer == "done"
    assert len(res.tool_calls) == 400
    assert any(c.cut for c in res.tool_calls) and not res.tool_calls[0].cut
    assert any("records' size budget" in n for n in res.notes)


def test_an_answer_with_too_many_items_is_refused_and_an_oversize_one_is_cut(
    docker_sandbox: Any,
) -> None:
    wide = docker_sandbox.run("answer = [0] * 300000\n", timeout_s=30)
    assert alive(wide) and wide.error_type == "AnswerRefused"
    long = docker_sandbox.run("answer = 'y' * 3_000_000\n", timeout_s=30)
    assert alive(long) and long.truncated


def test_a_tool_that_forks_away_the_pids_then_calls_another_tool_is_contained(
    docker_sandbox: Any,
) -> None:
    hog = (
        "def hog(n: int) -> int:\n    import os, time\n    k = 0\n    try:\n"
        "        while k < 100000:\n            if os.fork() == 0:\n                time.sleep(60)\n"
        "                os._exit(0)\n            k += 1\n    except OSError:\n        pass\n    return k\n"
    )
    code = "from tools import echo, hog\nfirst = echo(1)\nforked = hog(1)\ntry:\n    echo(2)\nexcept Exception as e:\n    pass\nanswer = forked\n"
    res = docker_sandbox.run(code, tools={"echo": ECHO, "hog": hog}, timeout_s=30)
    assert alive(res), res
    assert first_call_kept(res)


def test_a_tool_cannot_read_its_callers_process_state(docker_sandbox: Any) -> None:
    res = docker_sandbox.run(check.CONFINEMENT_PROBE, tools={"peek": check.TOOL_READS})
    assert res.ok, res
    assert res.answer["/proc/self/status"] == "read"
    assert {k: v for k, v in res.answer.items() if k != "/proc/self/status" and v == "read"} == {}


def test_stop_iteration_from_a_tool_does_not_end_the_callers_loop(docker_sandbox: Any) -> None:
    stop = "def stop(x: int) -> int:\n    raise StopIteration('done')\n"
    code = (
        "from tools import stop\n"
        "try:\n    answer = ('ended quietly', list(map(stop, [1, 2])))\n"
        "except StopIteration:\n    answer = 'the real StopIteration'\n"
        "except Exception as exc:\n    answer = (type(exc).__name__, type(exc).__mro__[1].__name__)\n"
    )
    res = docker_sandbox.run(code, tools={"stop": stop})
    assert res.answer == ["StopIteration", "ToolError"]
