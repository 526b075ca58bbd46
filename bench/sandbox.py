"""Sandbox latency and throughput; prints JSON.

    .venv/bin/python bench/sandbox.py [--n 30]

- fresh_run: a container per job, nothing ahead of need: create + start + job + remove
  (what `docker run --rm` does), all on the clock.
- warm_pool: `DockerSandbox.run` with the pool full (jobs arriving slower than the
  refill, as an agent's model-paced steps do). `pool_back_to_back` is the same with no
  pause: the pool drains and runs wait for container creation.
- exec_floor: `docker exec` of the runner into an already running container, job on
  stdin: what a pool built on exec could at best reach.
- jobs_per_s_4_threads: 4 threads running jobs as fast as they can (pool of 4).
Every job is the same trivial one, through the same runner and result parsing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# This file is bench/sandbox.py: with bench/ first on sys.path, `import sandbox` would
# import this script itself instead of the package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.stats import percentiles
from sandbox import jobs
from sandbox.config import SandboxConfig
from sandbox.docker_backend import (
    MAX_RESULT_BYTES,
    DockerSandbox,
    container_spec,
    converse,
)
from sandbox.image import ensure_image
from sandbox.owners import owner_labels

TRIVIAL = "answer = 1 + 1\n"


def timed(fn: Callable[[], Any], n: int, before: Callable[[], Any] | None = None) -> list[float]:
    out = []
    for _ in range(n):
        if before:
            before()
        started = time.perf_counter()
        fn()
        out.append(time.perf_counter() - started)
    return out


def check(data: dict[str, Any] | None) -> None:
    if not data or data.get("answer") != 2:
        raise SystemExit(f"benchmark job failed: {data}")


def _line(config: SandboxConfig) -> tuple[bytes, str]:
    secret = jobs.new_secret()
    line = jobs.job_line(TRIVIAL, None, config.timeout_s, config.output_limit_bytes, secret=secret)
    return line, secret


def fresh_run(sb: DockerSandbox, config: SandboxConfig) -> None:
    api = sb.api
    line, secret = _line(config)
    cid = api.create_container(**container_spec(api, config, sb.image, owner_labels()))["Id"]
    try:
        api.start(cid)
        resp = api.attach_socket(cid, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1})
        sock = getattr(resp, "_sock", resp)
        out, _, _ = converse(
            sock, line, time.monotonic() + 30, MAX_RESULT_BYTES, jobs.result_prefix(secret)
        )
        sock.close()
        check(jobs.find_result(out, secret))
    finally:
        api.remove_container(cid, force=True)


def exec_floor_setup(sb: DockerSandbox, config: SandboxConfig) -> str:
    api = sb.api
    spec = container_spec(api, config, sb.image, owner_labels())
    spec["command"] = ["sleep", "infinity"]
    cid = api.create_container(**spec)["Id"]
    api.start(cid)
    return str(cid)


def exec_job(sb: DockerSandbox, config: SandboxConfig, cid: str) -> None:
    api = sb.api
    line, secret = _line(config)
    # The same supervisor command a pooled container runs (it then starts the code as uid
    # 1000), but nothing started ahead of the job.
    command = container_spec(api, config, sb.image, owner_labels())["command"]
    command = [c for c in command if c != "--warm"]
    ex = api.exec_create(cid, command, stdin=True, user="0:0")
    resp = api.exec_start(ex["Id"], socket=True)
    sock = getattr(resp, "_sock", resp)
    out, _, _ = converse(
        sock, line, time.monotonic() + 30, MAX_RESULT_BYTES, jobs.result_prefix(secret)
    )
    sock.close()
    check(jobs.find_result(out, secret))


def throughput(image: str, threads: int, jobs_total: int) -> dict[str, Any]:
    sb = DockerSandbox(SandboxConfig(image=image, pool_size=threads))
    try:
        sb.pool.wait_ready(120)
        time.sleep(0.5)
        lock = threading.Lock()
        remaining = [jobs_total]
        failures = [0]

        def worker() -> None:
            while True:
                with lock:
                    if remaining[0] == 0:
                        return
                    remaining[0] -= 1
                res = sb.run(TRIVIAL)
                if res.answer != 2:
                    with lock:
                        failures[0] += 1

        pool = [threading.Thread(target=worker) for _ in range(threads)]
        started = time.perf_counter()
        for t in pool:
            t.start()
        for t in pool:
            t.join()
        seconds = time.perf_counter() - started
    finally:
        sb.close()
    return {
        "jobs_per_s": round(jobs_total / seconds, 2),
        "jobs": jobs_total,
        "threads": threads,
        "pool_size": threads,
        "failures": failures[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=30, help="samples per latency figure")
    args = parser.parse_args()
    n = args.n

    build_started = time.perf_counter()
    image = ensure_image()
    ensure_s = time.perf_counter() - build_started
    config = SandboxConfig(image=image, pool_size=2)
    load_before = os.getloadavg()[0]

    sb = DockerSandbox(config)
    try:
        # exec floor: one long-lived container, the runner exec'd into it per job
        floor_cid = exec_floor_setup(sb, config)
        try:
            exec_job(sb, config, floor_cid)  # warm the page cache
            exec_s = timed(lambda: exec_job(sb, config, floor_cid), n)
        finally:
            sb.api.remove_container(floor_cid, force=True)

        fresh_s = timed(lambda: fresh_run(sb, config), n)

        def settle() -> None:
            sb.pool.wait_ready(120)
            time.sleep(0.3)  # the pooled runners finish starting Python

        def pooled() -> None:
            res = sb.run(TRIVIAL)
            check({"answer": res.answer})

        pool_s = timed(pooled, n, before=settle)
        settle()
        burst_s = timed(pooled, n)
    finally:
        sb.close()

    tput = throughput(image, threads=4, jobs_total=max(20, n))

    exec_p = percentiles(exec_s)
    pool_p = percentiles(pool_s)
    fresh_p = percentiles(fresh_s)
    result = {
        "image": image,
        "ensure_image_s": round(ensure_s, 2),
        "host": {
            "cpus": os.cpu_count(),
            "load_avg_1m_at_start": round(load_before, 2),
            "python": platform.python_version(),
            "hostname": socket.gethostname(),
        },
        "fresh_run": fresh_p,
        "warm_pool": pool_p,
        "pool_back_to_back": percentiles(burst_s),
        "exec_floor": exec_p,
        "ratios": {
            "warm_pool_p50_over_exec_floor_p50": round(pool_p["p50_ms"] / exec_p["p50_ms"], 2),
            "fresh_run_p50_over_exec_floor_p50": round(fresh_p["p50_ms"] / exec_p["p50_ms"], 2),
            "target_warm_pool_within": 1.5,
        },
        "jobs_per_s_4_threads": tput,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
