"""`evoagent run --ray` on real Ray clusters on this machine (loopback addresses only).

- in-process `ray.init(num_cpus=2)`: the small demo stream gives the same results and the
  same library with --ray as with threads;
- `ray start --head` as its own process (on 127.0.0.2): SIGKILL of the driver mid-batch, then --resume,
  loses and repeats nothing;
- a second `ray start --address` node process (127.0.0.3, its own temp dir), killed mid-task: the
  stream still ends with every task recorded once.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.agent.stream.conftest import run_env
from tests.agent.stream.stream_kit import unexpected_errors
from tests.agent.stream.test_stream_e2e import MODEL, SMALL, _load_make_model

pytestmark = [pytest.mark.docker, pytest.mark.slow]

N_TASKS = 20
#: node addresses: loopback, but not 127.0.0.1, which Ray replaces by the network address
HEAD_IP, NODE_IP = "127.0.0.2", "127.0.0.3"
LAUNCHER = "import sys; from agent.cli import app; app(sys.argv[1:])"


@pytest.fixture(scope="module")
def ray_env(sandbox_image: str) -> Iterator[dict[str, str]]:
    # These clusters are reached on loopback addresses only, by this test's processes.
    extra = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
    with run_env(sandbox_image, extra, drop=("RAY_ADDRESS",)) as env:
        yield env


@pytest.fixture
def stream(tmp_path: Path) -> Path:
    path = tmp_path / "stream.jsonl"
    path.write_text("".join(SMALL.read_text().splitlines(keepends=True)[:N_TASKS]))
    return path


def _library(home: Path) -> dict[str, Any]:
    with sqlite3.connect(home / "library.db") as db:
        tools = sorted(
            db.execute(
                "SELECT t.name, t.status, v.source, v.tests FROM tool t JOIN tool_version v "
                "ON v.tool_name = t.name"
            ).fetchall()
        )
        episodes = dict(
            db.execute("SELECT task_id, COUNT(*) FROM episode GROUP BY task_id").fetchall()
        )
        tips = sorted(r[0] for r in db.execute("SELECT text FROM tip"))
    return {"tools": tools, "episodes": episodes, "tips": tips}


def _results(home: Path, run_id: str) -> list[dict[str, Any]]:
    path = home / "runs" / run_id / "results.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def _outcome(row: dict[str, Any]) -> tuple[Any, ...]:
    keys = ("id", "status", "answer", "correct", "n_calls", "tools_used", "tools_created")
    return tuple(json.dumps(row.get(k)) for k in keys)


# -- in-process cluster -----------------------------------------------------------


@pytest.fixture
def local_ray(ray_env: dict[str, str]) -> Iterator[None]:
    ray = pytest.importorskip("ray", reason="the Ray tests need the extra: pip install '.[ray]'")
    # Ray turns 127.0.0.1 into the machine's network address; another loopback one it keeps.
    ray.init(
        address="local",
        num_cpus=2,
        _node_ip_address=HEAD_IP,
        include_dashboard=False,
        log_to_driver=False,
    )
    try:
        yield
    finally:
        ray.shutdown()


def test_ray_gives_the_results_and_library_of_threads(
    local_ray: None, stream: Path, tmp_path: Path
) -> None:
    from agent.cli import app

    homes = {}
    for executor in ("threads", "ray"):
        homes[executor] = home = tmp_path / executor
        args = ["--home", str(home), "run", str(stream), "--model", f"scripted:{MODEL}"]
        args += ["--batch", "5", "--workers", "2", "--run-id", "r", "--json"]
        out = CliRunner().invoke(app, [*args, "--executor", executor])
        assert out.exit_code == 0, out.output
        summary = json.loads(out.stdout)
        assert summary["executor"] == executor and summary["n_done"] == N_TASKS
    ray_rows, thread_rows = _results(homes["ray"], "r"), _results(homes["threads"], "r")
    assert sorted(map(_outcome, ray_rows)) == sorted(map(_outcome, thread_rows)), (
        unexpected_errors(ray_rows),
        unexpected_errors(thread_rows),
    )
    assert _library(homes["ray"]) == _library(homes["threads"])
    assert _library(homes["ray"])["tools"], "the stream must have forged tools to compare"
    assert set(_library(homes["ray"])["episodes"].values()) == {1}
    batches = [
        json.loads(line)
        for line in (homes["ray"] / "runs" / "r" / "batches.jsonl").read_text().splitlines()
    ]
    # Each batch shipped a snapshot of the library as it was at the batch start.
    shipped = [b["snapshot"]["tools"] for b in batches]
    sizes = [b["library_size"] for b in batches]
    assert shipped == [0, *sizes[:-1]]
    meta = json.loads((homes["ray"] / "runs" / "r" / "meta.json").read_text())
    assert meta["executor"] == "ray" and len(meta["nodes"]) == 1
    shown = CliRunner().invoke(app, ["--home", str(homes["ray"]), "runs", "show", "r"])
    assert "ray: 2 workers on 1 node" in shown.output


def test_without_ray_the_option_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, stream: Path, tmp_path: Path
) -> None:
    from agent.cli import app

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    home = tmp_path / "home"
    out = CliRunner().invoke(app, ["--home", str(home), "run", str(stream), "--ray", "auto"])
    assert out.exit_code != 0
    assert "pip install 'evoagent[ray]'" in out.output
    assert not (home / "runs").exists()


# -- clusters of `ray start` processes ----------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ray_bin() -> str:
    return str(Path(sys.executable).parent / "ray")


def _kill_tree(marker: str) -> None:
    """SIGKILL every process whose command line names `marker` (a node's temp dir), and
    their descendants (Ray's agents rename themselves and name no path)."""
    parents: dict[int, int] = {}
    cmdlines: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
        cmdlines[int(entry)] = cmd
    doomed = {pid for pid, cmd in cmdlines.items() if marker in cmd and pid != os.getpid()}
    grew = True
    while grew:
        more = {pid for pid, ppid in parents.items() if ppid in doomed} - doomed - {os.getpid()}
        doomed |= more
        grew = bool(more)
    for pid in doomed:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@pytest.fixture
def head(ray_env: dict[str, str]) -> Iterator[str]:
    """A head node process on a loopback address (short temp dir: Ray's socket paths are
    bounded)."""
    pytest.importorskip("ray", reason="the Ray tests need the extra: pip install '.[ray]'")
    temp = tempfile.mkdtemp(prefix="rh", dir="/tmp")
    port = _free_port()
    env = {**os.environ, **ray_env}
    cmd = [_ray_bin(), "start", "--head", f"--node-ip-address={HEAD_IP}", f"--port={port}"]
    cmd += ["--num-cpus=2", f"--temp-dir={temp}", "--include-dashboard=false"]
    cmd += ["--disable-usage-stats"]
    subprocess.run(cmd, env=env, check=True, capture_output=True, timeout=120)
    try:
        yield f"{HEAD_IP}:{port}"
    finally:
        # Not `ray stop`: it stops every Ray process on the machine, not only this cluster.
        _kill_tree(temp)
        shutil.rmtree(temp, ignore_errors=True)


def _slow_model(tmp_path: Path, stream: Path) -> Path:
    make_model = _load_make_model()
    tasks = [json.loads(line) for line in stream.read_text().splitlines()]
    slow = tmp_path / "slow.yaml"
    # 0.3 s per model call: a task takes a few seconds, so a kill lands mid-task.
    make_model.write(make_model.build(tasks, latency_s=0.3), slow)
    return slow


def _wait_for_results(proc: subprocess.Popen[bytes], results: Path, n: int) -> None:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if results.exists() and len(results.read_text().splitlines()) >= n:
            return
        if proc.poll() is not None:
            pytest.fail(f"the run ended early: {proc.stderr.read().decode()[-3000:]}")  # type: ignore[union-attr]
        time.sleep(0.05)
    proc.kill()
    pytest.fail(f"the run did not finish {n} tasks in time")


def _wait_for_nodes(address: str, n: int, env: dict[str, str]) -> None:
    """Until the cluster has n live nodes (a joining node registers after its start)."""
    probe = (
        "import ray, sys; ray.init(address=sys.argv[1], log_to_driver=False); "
        "print(sum(1 for n in ray.nodes() if n['Alive']))"
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        out = subprocess.run(
            [sys.executable, "-c", probe, address], env=env, capture_output=True, text=True
        )
        if out.stdout.strip() == str(n):
            return
        time.sleep(1)
    pytest.fail(f"the cluster did not reach {n} nodes: {out.stdout} {out.stderr[-2000:]}")


def test_a_sigkilled_driver_resumes_losing_and_repeating_nothing(
    head: str, stream: Path, tmp_path: Path, ray_env: dict[str, str]
) -> None:
    home = tmp_path / "home"
    slow = _slow_model(tmp_path, stream)
    base = [sys.executable, "-c", LAUNCHER, "--home", str(home), "run"]
    env = {**os.environ, **ray_env}
    args = [str(stream), "--model", f"scripted:{slow}", "--run-id", "killed", "--batch", "5"]
    proc = subprocess.Popen(
        [*base, *args, "--workers", "2", "--ray", head, "--quiet"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    results = home / "runs" / "killed" / "results.jsonl"
    _wait_for_results(proc, results, 7)  # mid-stream, mid-batch (batches of 5)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done_at_kill = [
        json.loads(x)["id"] for x in results.read_text().splitlines() if x.endswith("}")
    ]
    assert 7 <= len(done_at_kill) < N_TASKS
    resumed = subprocess.run(
        [*base, "--resume", "killed", "--ray", head, "--quiet"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    rows = _results(home, "killed")
    ids = [r["id"] for r in rows]
    tasks = [json.loads(line)["id"] for line in stream.read_text().splitlines()]
    assert sorted(ids) == sorted(tasks)  # none lost, none twice
    assert ids[: len(done_at_kill)] == done_at_kill  # the finished ones were not run again
    assert {r["status"] for r in rows} == {"solved"}
    assert _library(home)["episodes"] == dict.fromkeys(tasks, 1)
    meta = json.loads((home / "runs" / "killed" / "meta.json").read_text())
    assert meta["executor"] == "ray" and meta["resumed"] == 1


def test_a_worker_node_killed_mid_task_still_records_every_task_once(
    head: str, stream: Path, tmp_path: Path, ray_env: dict[str, str]
) -> None:
    temp = tempfile.mkdtemp(prefix="rw", dir="/tmp")
    env = {**os.environ, **ray_env}
    cmd = [_ray_bin(), "start", f"--address={head}", f"--node-ip-address={NODE_IP}"]
    cmd += ["--num-cpus=1", f"--temp-dir={temp}", "--disable-usage-stats", "--block"]
    node = subprocess.Popen(
        cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        _wait_for_nodes(head, 2, env)
        home = tmp_path / "home"
        slow = _slow_model(tmp_path, stream)
        args = [str(stream), "--model", f"scripted:{slow}", "--run-id", "r", "--batch", "5"]
        proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                LAUNCHER,
                "--home",
                str(home),
                "run",
                *args,
                "--workers",
                "2",
                "--ray",
                head,
                "--quiet",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        results = home / "runs" / "r" / "results.jsonl"
        _wait_for_results(proc, results, 3)
        # The second node is killed while both actors (one per node: SPREAD) are mid-task.
        os.killpg(node.pid, signal.SIGKILL)
        _kill_tree(temp)
        _, stderr = proc.communicate(timeout=600)
        assert proc.returncode == 0, stderr.decode()[-3000:]
    finally:
        if node.poll() is None:
            os.killpg(node.pid, signal.SIGKILL)
        _kill_tree(temp)
        shutil.rmtree(temp, ignore_errors=True)
    rows = _results(home, "r")
    tasks = [json.loads(line)["id"] for line in stream.read_text().splitlines()]
    assert sorted(r["id"] for r in rows) == sorted(tasks)
    assert {r["status"] for r in rows} == {"solved"}, [
        (r["id"], r.get("reason")) for r in rows if r["status"] != "solved"
    ]
    assert _library(home)["episodes"] == dict.fromkeys(tasks, 1)
    meta = json.loads((home / "runs" / "r" / "meta.json").read_text())
    assert len(meta["nodes"]) == 2, meta  # the killed node had solved tasks before
