"""LocalSandbox: the same runner in a subprocess with rlimits (weaker, but the same result)."""

from __future__ import annotations

import os
import time

import pytest

from sandbox import ExecResult, Sandbox, SandboxConfig
from sandbox.local import LocalSandbox

pytestmark = pytest.mark.slow

ADD = "def add(a, b):\n    return a + b\n"


@pytest.fixture(scope="module")
def local() -> LocalSandbox:
    return LocalSandbox(SandboxConfig(backend="local", memory_mb=512))


def test_it_is_a_sandbox_with_the_same_result_shape(local: LocalSandbox) -> None:
    assert isinstance(local, Sandbox)
    res = local.run("from tools import add\nprint('hi')\nanswer = add(1, 2)\n", tools={"add": ADD})
    assert isinstance(res, ExecResult)
    assert res.ok and res.answer == 3 and res.stdout == "hi\n"
    assert [(c.tool, c.args, c.result) for c in res.tool_calls] == [("add", [1, 2], 3)]
    assert res.duration_s > 0


def test_errors_come_back_in_the_result(local: LocalSandbox) -> None:
    res = local.run("x = (\n")
    assert res.error_type == "SyntaxError" and not res.ok
    res = local.run("from tools import missing\n", tools={"add": ADD})
    assert res.error_type == "ImportError" and "missing" in (res.error_message or "")


def test_infinite_loop_is_killed_at_the_timeout(local: LocalSandbox) -> None:
    started = time.monotonic()
    res = local.run("while True:\n    pass\n", timeout_s=1)
    assert res.timed_out and not res.ok
    assert time.monotonic() - started < 2.0


def test_memory_limit_ends_a_memory_bomb(local: LocalSandbox) -> None:
    res = local.run("hog = []\nwhile True:\n    hog.append(bytearray(10 ** 7))\n", timeout_s=20)
    assert res.oom_killed and res.error_type == "MemoryError"


def test_output_is_capped(local: LocalSandbox) -> None:
    res = local.run("import sys\nsys.stdout.write('x' * 10_000_000)\n")
    assert res.truncated and len(res.stdout) == local.config.output_limit_bytes


def test_host_environment_is_not_passed(
    local: LocalSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVOAGENT_TEST_SECRET", "s3cret")
    res = local.run("import os\nanswer = dict(os.environ)\n")
    assert "EVOAGENT_TEST_SECRET" not in res.answer
    assert "s3cret" not in str(res.answer)


def test_work_dir_is_private_and_removed(local: LocalSandbox) -> None:
    res = local.run("import os\nopen('f.txt', 'w').write('x')\nanswer = os.getcwd()\n")
    assert res.ok
    assert not os.path.exists(res.answer)
