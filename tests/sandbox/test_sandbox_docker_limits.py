"""Must hold (real Docker): fork bomb contained, memory bomb -> oom_killed, infinite loop ->
timed_out within timeout + 1 s, 10 MB of output truncated and flagged."""

from __future__ import annotations

import errno
import time
from typing import Any

import pytest

pytestmark = pytest.mark.docker


def test_counted_fork_bomb_stops_at_the_pids_limit(docker_sandbox: Any) -> None:
    limit = docker_sandbox.config.pids_limit
    res = docker_sandbox.run(
        "import os, signal, time\npids, err = [], None\n"
        f"try:\n    for _ in range({limit * 4}):\n"
        "        pid = os.fork()\n"
        "        if pid == 0:\n"
        "            time.sleep(30)\n"
        "            os._exit(0)\n"
        "        pids.append(pid)\n"
        "except OSError as exc:\n    err = exc.errno\n"
        "for pid in pids:\n    os.kill(pid, signal.SIGKILL)\n"
        "for pid in pids:\n    os.waitpid(pid, 0)\n"
        "answer = [len(pids), err]\n",
        timeout_s=20,
    )
    assert res.ok, res.observation()
    forked, err = res.answer
    assert err == errno.EAGAIN
    assert 0 < forked < limit


def test_classic_fork_bomb_is_contained_and_the_sandbox_keeps_working(docker_sandbox: Any) -> None:
    started = time.monotonic()
    res = docker_sandbox.run(
        "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n",
        timeout_s=3,
    )
    assert time.monotonic() - started < 3 + 1
    assert res.timed_out and not res.ok
    after = docker_sandbox.run("answer = 'still fine'\n")
    assert after.ok and after.answer == "still fine"


def test_memory_bomb_ends_oom_killed(docker_sandbox: Any) -> None:
    res = docker_sandbox.run(
        "hog = []\nwhile True:\n    hog.append(bytearray(10 ** 7))\n", timeout_s=30
    )
    assert res.oom_killed, res.observation()
    assert not res.timed_out and not res.ok
    assert res.exit_code == 137
    assert "OUT OF MEMORY" in res.observation()


def test_memory_bomb_keeps_what_was_printed_before(docker_sandbox: Any) -> None:
    res = docker_sandbox.run(
        "print('allocating')\nhog = []\nwhile True:\n    hog.append(bytearray(10 ** 7))\n",
        timeout_s=30,
    )
    assert res.oom_killed and res.stdout == "allocating\n"


def test_infinite_loop_ends_timed_out_within_timeout_plus_one_second(docker_sandbox: Any) -> None:
    timeout = 2.0
    started = time.monotonic()
    res = docker_sandbox.run("print('spinning')\nwhile True:\n    pass\n", timeout_s=timeout)
    elapsed = time.monotonic() - started
    assert res.timed_out and not res.ok and not res.oom_killed
    assert elapsed < timeout + 1.0, elapsed
    assert res.stdout == "spinning\n"
    assert "TIMEOUT" in res.observation()


def test_sleeping_code_is_killed_too(docker_sandbox: Any) -> None:
    started = time.monotonic()
    res = docker_sandbox.run("import time\ntime.sleep(60)\n", timeout_s=1)
    assert res.timed_out and time.monotonic() - started < 2.0


def test_ten_megabytes_of_output_come_back_truncated_and_flagged(docker_sandbox: Any) -> None:
    cap = docker_sandbox.config.output_limit_bytes
    res = docker_sandbox.run(
        "import sys\nfor _ in range(10):\n    sys.stdout.write('x' * 1_000_000)\n"
        "sys.stderr.write('e' * 3_000_000)\nanswer = 'done'\n",
        timeout_s=30,
    )
    assert res.truncated
    assert res.stdout == "x" * cap and res.stderr == "e" * cap
    assert res.answer == "done" and res.exit_code == 0
    assert "truncated" in res.observation()


def test_small_output_is_not_flagged(docker_sandbox: Any) -> None:
    res = docker_sandbox.run("print('x' * 100)\n")
    assert not res.truncated and res.stdout == "x" * 100 + "\n"
