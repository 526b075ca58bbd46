"""Must hold (real Docker): nothing leaks after 50 runs, a SIGKILLed owner's containers are
reaped on the next start, 8 threads get their own results, the pool refills."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from sandbox.config import SandboxConfig
from sandbox.docker_backend import INSTANCE, DockerSandbox
from sandbox.engine import connect
from sandbox.owners import OWNER_PID

pytestmark = pytest.mark.docker

COUNT = "def count_vowels(text: str) -> int:\n    return sum(ch in 'aeiou' for ch in text)\n"


def containers_with(label: str, value: str) -> list[dict[str, Any]]:
    client = connect()
    try:
        return list(client.api.containers(all=True, filters={"label": f"{label}={value}"}))
    finally:
        client.close()


def test_fifty_runs_leave_no_container_behind(sandbox_image: str) -> None:
    sb = DockerSandbox(SandboxConfig(image=sandbox_image, pool_size=2))
    try:
        for i in range(50):
            res = sb.run(f"answer = {i} * 2\n")
            assert res.ok and res.answer == i * 2
        assert sb.pool.wait_ready(60)
    finally:
        sb.close()
    assert sb.live_containers() == 0
    assert containers_with(INSTANCE, sb.id) == []
    sb.close()  # idempotent


def test_each_run_gets_a_fresh_container(docker_sandbox: Any) -> None:
    first = docker_sandbox.run(
        "open('/work/left-behind', 'w').write('x')\nimport socket\nanswer = socket.gethostname()\n"
    )
    second = docker_sandbox.run("import os\nanswer = os.path.exists('/work/left-behind')\n")
    assert first.ok and second.ok
    assert second.answer is False


SIGKILL_CHILD = textwrap.dedent(
    """
    import sys, threading, time
    from sandbox.config import SandboxConfig
    from sandbox.docker_backend import DockerSandbox

    sb = DockerSandbox(SandboxConfig(image=sys.argv[1], pool_size=2))
    sb.pool.wait_ready(60)
    job = threading.Thread(
        target=sb.run, args=("import time\\ntime.sleep(300)\\n",), kwargs={"timeout_s": 300}, daemon=True
    )
    job.start()
    time.sleep(0.5)
    print("running", flush=True)
    time.sleep(600)
    """
)


@pytest.mark.slow
def test_containers_of_a_sigkilled_process_are_reaped_on_next_start(sandbox_image: str) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", SIGKILL_CHILD, sandbox_image],
        stdout=subprocess.PIPE,
        cwd=os.getcwd(),
    )
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 90)
        assert ready, "the child sandbox never started its job"
        assert proc.stdout.readline().strip() == b"running"
        owned = containers_with(OWNER_PID, str(proc.pid))
        assert len(owned) >= 2  # the job's container and at least one warm one
        assert any(c["State"] == "running" for c in owned)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    # Killed with SIGKILL: nothing of the child cleaned up.
    assert len(containers_with(OWNER_PID, str(proc.pid))) >= 2
    sb = DockerSandbox(SandboxConfig(image=sandbox_image, pool_size=0))
    try:
        assert containers_with(OWNER_PID, str(proc.pid)) == []
    finally:
        sb.close()


def test_eight_threads_get_their_own_results(docker_sandbox: Any) -> None:
    words = [f"{'a' * i}{'b' * (7 - i)}-{i}" for i in range(8)]

    def job(i: int) -> Any:
        code = (
            "from tools import count_vowels\n"
            f"word = {words[i]!r}\n"
            f"print('thread', {i})\n"
            "answer = [word, count_vowels(word)]\n"
        )
        return docker_sandbox.run(code, tools={"count_vowels": COUNT}, timeout_s=30)

    with ThreadPoolExecutor(max_workers=8) as ex:
        results = list(ex.map(job, range(8)))
    for i, res in enumerate(results):
        assert res.ok, res.observation()
        assert res.answer == [words[i], i]
        assert res.stdout == f"thread {i}\n"
        [call] = res.tool_calls
        assert call.tool == "count_vowels" and call.args == [words[i]] and call.result == i


def test_the_pool_is_refilled_in_the_background(docker_sandbox: Any) -> None:
    assert docker_sandbox.pool.wait_ready(60)
    docker_sandbox.run("answer = 1\n")
    assert docker_sandbox.pool.wait_ready(60)
    assert docker_sandbox.pool.ready() == docker_sandbox.config.pool_size


def test_running_containers_carry_the_owner_labels(docker_sandbox: Any) -> None:
    mine = containers_with(INSTANCE, docker_sandbox.id)
    assert mine
    labels = mine[0]["Labels"]
    assert labels["evoagent.sandbox"] == "1" and labels[OWNER_PID] == str(os.getpid())


def test_image_build_is_idempotent_and_fast_when_present(sandbox_image: str) -> None:
    from sandbox.image import ensure_image, image_present

    steps: list[str] = []
    assert ensure_image(progress=steps.append) == sandbox_image
    assert steps == []  # nothing was built
    assert image_present(sandbox_image)
    assert not image_present("evoagent-sandbox:does-not-exist")


def test_run_after_close_is_refused(sandbox_image: str) -> None:
    sb = DockerSandbox(SandboxConfig(image=sandbox_image, pool_size=0))
    sb.close()
    with pytest.raises(RuntimeError, match="closed"):
        sb.run("pass")
    assert containers_with(INSTANCE, sb.id) == []
