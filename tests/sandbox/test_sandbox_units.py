"""Host-side pieces without Docker: protocol, warm pool, image naming, backend choice."""

from __future__ import annotations

import itertools
import json
import logging
import threading
from pathlib import Path

import pytest

from sandbox import SandboxConfig, SandboxError, get_sandbox, jobs
from sandbox.base import INVALID
from sandbox.image import base_tag, debian_mirror, image_tag, packages
from sandbox.local import LocalSandbox
from sandbox.pool import WarmPool
from sandbox.runner.codec import MARKER

# --------------------------------------------------------------------------- protocol


def test_job_line_is_one_line_even_with_newlines_in_code() -> None:
    line = jobs.job_line("a = 1\nb = 2\n", {"add": "def add():\n  pass\n"}, 5, 1024, secret="s")
    assert line.endswith(b"\n") and line.count(b"\n") == 1


@pytest.mark.parametrize("name", ["not-an-identifier", "_private", "", "1abc"])
def test_bad_tool_names_are_refused_with_what_to_do(name: str) -> None:
    with pytest.raises(SandboxError, match="name each tool module like its function"):
        jobs.job_line("pass", {name: "def f(): pass"}, 5, 1024, secret="s")


def test_non_text_code_is_refused() -> None:
    with pytest.raises(SandboxError, match="code must be a str"):
        jobs.job_line(b"print(1)", None, 5, 1024, secret="s")  # type: ignore[arg-type]


@pytest.mark.parametrize("timeout", [0, -1.0])
def test_a_timeout_must_be_positive(timeout: float) -> None:
    with pytest.raises(SandboxError, match="timeout_s must be more than 0"):
        jobs.job_line("pass", None, timeout, 1024, secret="s")


GOOD = {
    "exit_code": 0,
    "stdout": "",
    "stderr": "",
    "truncated": False,
    "timed_out": False,
    "oom_killed": False,
    "duration_s": 0.1,
    "answer": 4,
    "has_answer": True,
    "error_type": None,
    "error_message": None,
    "traceback": None,
    "tool_calls": [],
    "notes": [],
}


def line(secret: str, data: object) -> bytes:
    return MARKER.encode() + secret.encode() + b" " + json.dumps(data).encode() + b"\n"


def test_find_result_takes_the_one_line_with_this_jobs_secret() -> None:
    data = jobs.find_result(line("s3cret", GOOD), "s3cret")
    assert data is not None
    res = jobs.to_exec_result(data, 0.5)
    assert res.ok and res.answer == 4 and res.duration_s == 0.5
    assert jobs.find_result(b"", "s3cret") is None


@pytest.mark.parametrize(
    "stdout",
    [
        line("other", GOOD),  # another job's secret (or a guess)
        line("s3cret", GOOD) + line("s3cret", GOOD),  # a duplicate
        b"noise\n" + line("s3cret", GOOD),  # anything else on the channel
        MARKER.encode() + b"s3cret {broken\n",
        MARKER.encode() + b"s3cret " + b"[" * 100_000 + b"\n",  # deep nesting
    ],
)
def test_anything_but_exactly_one_result_line_is_refused(stdout: bytes) -> None:
    with pytest.raises(jobs.InvalidResult):
        jobs.find_result(stdout, "s3cret")


def bad(**changes: object) -> dict[str, object]:
    return {**GOOD, **changes}


CALL = {
    "tool": "add",
    "args": [1, 2],
    "kwargs": {"t": "dict", "v": []},
    "result": 3,
    "error_type": None,
    "error_message": None,
    "seconds": 0.01,
    "cut": False,
}


@pytest.mark.parametrize(
    "data",
    [
        bad(exit_code="x"),
        bad(exit_code=True),
        bad(stdout=5),
        bad(stdout="x" * 400_000),
        bad(error_type=3),
        bad(error_type="not an identifier"),
        bad(has_answer="yes"),
        bad(extra=1),
        {k: v for k, v in GOOD.items() if k != "answer"},
        bad(answer=json.loads("[" * 70 + "]" * 70)),
        bad(tool_calls="junk"),
        bad(tool_calls=["junk"]),
        bad(tool_calls=[{**CALL, "tool": "not_given"}]),  # a record of a tool the run was not given
        bad(tool_calls=[{**CALL, "args": {"t": "nope", "v": 1}}]),
        bad(tool_calls=[{**CALL, "result": 10**4300}]),  # a 4,301-digit int
        bad(tool_calls=[{**CALL, "seconds": "nan-ish"}]),
        bad(tool_calls=[{**CALL, "seconds": float("nan")}]),
        bad(tool_calls=[{**CALL, "kwargs": {"t": "dict", "v": [[1, 2]]}}]),  # non-str keyword
        bad(tool_calls=[CALL] * 1001),
        bad(tool_calls=[{**CALL, "cut": "no"}]),
        bad(notes="a note"),
        bad(notes=["x" * 10_000]),
        bad(notes=["n"] * 100),
    ],
)
def test_a_malformed_result_is_discarded_whole_never_raised(data: dict[str, object]) -> None:
    res = jobs.to_exec_result(data, 1.0, tools=["add"], output_limit=256 * 1024)
    assert res.error_type == INVALID and not res.ok and not res.has_answer
    assert res.tool_calls == []


def test_a_valid_record_comes_back_as_a_tool_call() -> None:
    res = jobs.to_exec_result(bad(tool_calls=[CALL]), 1.0, tools=["add"])
    assert res.ok
    [call] = res.tool_calls
    assert (call.tool, call.args, call.kwargs, call.result) == ("add", [1, 2], {}, 3)


# --------------------------------------------------------------------------- pool


class Factory:
    """A real small resource factory: ids, with a record of what was made and destroyed."""

    def __init__(self) -> None:
        self.counter = itertools.count()
        self.made: list[str] = []
        self.destroyed: list[str] = []
        self.lock = threading.Lock()

    def create(self) -> str:
        item = f"c{next(self.counter)}"
        with self.lock:
            self.made.append(item)
        return item

    def destroy(self, item: str) -> None:
        with self.lock:
            self.destroyed.append(item)


def test_pool_fills_ahead_of_need_and_refills() -> None:
    f = Factory()
    pool = WarmPool(f.create, f.destroy, size=2)
    try:
        assert pool.wait_ready(5)
        first = pool.take()
        assert first in f.made
        assert pool.wait_ready(5)
        assert len(f.made) == 3
    finally:
        pool.close()


def test_an_empty_pool_creates_inline_instead_of_waiting() -> None:
    f = Factory()
    pool = WarmPool(f.create, f.destroy, size=0)
    try:
        assert pool.take() == "c0"
        assert pool.take() == "c1"
    finally:
        pool.close()


def test_every_item_is_destroyed_exactly_once_under_threads() -> None:
    f = Factory()
    pool = WarmPool(f.create, f.destroy, size=3)
    taken: list[str] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(25):
            item = pool.take()
            with lock:
                taken.append(item)
            pool.discard(item)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    pool.close()
    assert len(taken) == 200 and len(set(taken)) == 200  # nobody got an item twice
    assert sorted(f.destroyed) == sorted(f.made)  # used and still-ready ones alike
    assert len(f.destroyed) == len(set(f.destroyed))
    pool.close()  # idempotent


def test_discard_after_close_destroys_at_once() -> None:
    f = Factory()
    pool = WarmPool(f.create, f.destroy, size=0)
    item = pool.take()
    pool.close()
    pool.discard(item)
    assert f.destroyed == [item]
    with pytest.raises(RuntimeError):
        pool.take()


def test_a_failing_create_does_not_kill_the_refill() -> None:
    calls = itertools.count()
    made: list[str] = []

    def flaky() -> str:
        n = next(calls)
        if n == 0:
            raise OSError("engine hiccup")
        made.append(f"ok{n}")
        return f"ok{n}"

    pool = WarmPool(flaky, lambda _i: None, size=1)
    try:
        assert pool.wait_ready(10)
        assert pool.take() == made[0]
    finally:
        pool.close()


# --------------------------------------------------------------------------- image names


def test_image_tag_hashes_runner_and_packages() -> None:
    tag = image_tag()
    assert tag.startswith("evoagent-sandbox:") and len(tag.split(":")[1]) == 12
    assert image_tag(SandboxConfig()) == tag
    assert image_tag(SandboxConfig(extra_packages=["python3-scipy"])) != tag
    assert image_tag(SandboxConfig(image="mine:1")) == "mine:1"
    assert base_tag().startswith("evoagent-sandbox-base:")
    assert {"python3", "python3-numpy", "python3-sympy"} <= set(packages())


def test_mirror_comes_from_config_or_host_or_default() -> None:
    assert debian_mirror(SandboxConfig(debian_mirror="http://mirror.example/debian")) == (
        "http://mirror.example/debian"
    )
    mirror = debian_mirror()
    assert mirror.startswith(("http://", "https://")) and mirror.endswith("/debian")


# --------------------------------------------------------------------------- backends


def test_unknown_backend_lists_the_valid_ones() -> None:
    config = SandboxConfig.model_construct(backend="podman")
    with pytest.raises(SandboxError, match="choose one of docker, local"):
        get_sandbox(config)


def test_local_backend_warns_that_it_is_not_isolation(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="evoagent.sandbox"):
        sb = get_sandbox(SandboxConfig(backend="local"))
    assert isinstance(sb, LocalSandbox) and sb.kind == "local"
    assert "NOT isolation" in caplog.text
    sb.close()


def test_runner_is_shipped_next_to_the_package() -> None:
    assert jobs.RUNNER_PATH.is_file()
    assert Path(jobs.RUNNER_PATH).read_text().count("import docker") == 0
