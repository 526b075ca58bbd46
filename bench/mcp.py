"""What MCP adds to a tool call; prints JSON.

    .venv/bin/python bench/mcp.py [--n 30] [--pause 2.0] [--calls-per-client 10]

The same trivial library tool (`echo_value(x: int) -> int`) called
- direct: `Sandbox.run` of the program `tools serve` runs for a call (the tool imported and
  called on the arguments in the sandbox), on a warm pool, from this process;
- stdio: through `evoagent tools serve` over stdio, with the official SDK client;
- http: through `evoagent tools serve --transport http` on 127.0.0.1, same client.
Sequential calls are spaced by `--pause` seconds (not timed) so each finds the pool
refilled, as in bench/sandbox.py's warm_pool: the figure is a call, not pool refill.
`overhead_p50_ms` is MCP's p50 minus the direct p50. Then 4 HTTP clients call together
as fast as they can (`calls_per_s_4_clients`), beside 4 threads of direct runs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

# This file is bench/mcp.py: with bench/ on sys.path, `import mcp` would import this script
# instead of the SDK (and `import sandbox` bench/sandbox.py). The repository root replaces it.
_here = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _here]
sys.path.insert(0, str(_here.parent))

import anyio  # noqa: E402
import httpx  # noqa: E402
from mcp import ClientSession, StdioServerParameters  # noqa: E402
from mcp.client.stdio import stdio_client  # noqa: E402
from mcp.client.streamable_http import streamable_http_client  # noqa: E402

from bench.stats import percentiles  # noqa: E402
from memory import HashEmbedder, Library, MemoryConfig, Provenance, ToolDraft  # noqa: E402
from sandbox import get_sandbox  # noqa: E402
from sandbox.config import SandboxConfig  # noqa: E402
from sandbox.image import ensure_image  # noqa: E402

EVOAGENT = str(Path(sys.executable).with_name("evoagent"))
SOURCE = 'def echo_value(x: int) -> int:\n    """Give x back."""\n    return x\n'
SIGNATURE = "echo_value(x: int) -> int"
PROGRAM = "from tools import echo_value\n\nanswer = echo_value(**ARGS)\n"
POOL = 4


def seed(home: Path) -> None:
    tests = "from tools import echo_value\n\n\ndef test_echo():\n    assert echo_value(3) == 3\n"
    with Library.open(home, MemoryConfig(embedder="hash"), HashEmbedder()) as lib:
        lib.add_tool(
            ToolDraft("echo_value", SOURCE, tests, SIGNATURE, "Give x back.", Provenance("bench"))
        )


def env(home: Path, image: str) -> dict[str, str]:
    return {
        **os.environ,
        "EVOAGENT_HOME": str(home),
        "EVOAGENT_MEMORY__EMBEDDER": "hash",
        "EVOAGENT_SANDBOX__IMAGE": image,
        "EVOAGENT_SANDBOX__POOL_SIZE": str(POOL),
    }


def direct(image: str, n: int, pause: float, per_thread: int) -> dict[str, Any]:
    sb = get_sandbox(SandboxConfig(image=image, pool_size=POOL))
    try:

        def one(i: int) -> None:
            res = sb.run(PROGRAM, tools={"echo_value": SOURCE}, inputs={"ARGS": {"x": i}})
            calls = [c for c in res.tool_calls if c.tool == "echo_value"]
            assert calls and calls[0].result == i, res.observation()

        one(0)  # the first run pays for image checks and the pool's start
        samples = []
        for i in range(n):
            time.sleep(pause)
            t0 = time.perf_counter()
            one(i)
            samples.append(time.perf_counter() - t0)
        time.sleep(pause)
        t0 = time.perf_counter()
        threads = [
            threading.Thread(target=lambda: [one(k) for k in range(per_thread)]) for _ in range(4)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        rate = 4 * per_thread / (time.perf_counter() - t0)
    finally:
        sb.close()
    return {**percentiles(samples), "calls_per_s_4_threads": round(rate, 2)}


async def timed_calls(session: ClientSession, n: int, pause: float) -> list[float]:
    await call(session, 0)
    samples = []
    for i in range(n):
        await anyio.sleep(pause)
        t0 = time.perf_counter()
        await call(session, i)
        samples.append(time.perf_counter() - t0)
    return samples


async def call(session: ClientSession, i: int) -> None:
    got = await session.call_tool("echo_value", {"x": i})
    assert not got.isError and got.structuredContent == {"result": i}, got


def over_stdio(home: Path, image: str, n: int, pause: float) -> dict[str, Any]:
    params = StdioServerParameters(command=EVOAGENT, args=["tools", "serve"], env=env(home, image))

    async def main() -> list[float]:
        async with (
            stdio_client(params, errlog=subprocess.DEVNULL) as (read, write),  # type: ignore[arg-type]
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            return await timed_calls(session, n, pause)

    return percentiles(anyio.run(main))


def over_http(home: Path, image: str, n: int, pause: float, per_client: int) -> dict[str, Any]:
    proc = subprocess.Popen(
        [EVOAGENT, "tools", "serve", "--transport", "http", "--port", "0"],
        env=env(home, image),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        url = ""
        while not url:
            line = proc.stderr.readline()
            if not line:
                raise SystemExit("the HTTP server did not start")
            if "MCP server on " in line:
                url = line.split("MCP server on ", 1)[1].strip()

        async def session_of(stack: Any) -> ClientSession:
            http = await stack.enter_async_context(httpx.AsyncClient(timeout=120))
            read, write, _ = await stack.enter_async_context(
                streamable_http_client(url, http_client=http)
            )
            session = await stack.enter_async_context(ClientSession(read, write))
            await session.initialize()
            return session

        async def main() -> tuple[list[float], float]:
            from contextlib import AsyncExitStack

            async with AsyncExitStack() as stack:
                samples = await timed_calls(await session_of(stack), n, pause)
                clients = [await session_of(stack) for _ in range(4)]
                await anyio.sleep(pause)
                t0 = time.perf_counter()

                async def run(session: ClientSession) -> None:
                    for k in range(per_client):
                        await call(session, k)

                async with anyio.create_task_group() as tg:
                    for session in clients:
                        tg.start_soon(run, session)
                return samples, 4 * per_client / (time.perf_counter() - t0)

        samples, rate = anyio.run(main)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return {**percentiles(samples), "calls_per_s_4_clients": round(rate, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=30, help="sequential calls per path")
    ap.add_argument("--pause", type=float, default=2.0, help="seconds between sequential calls")
    ap.add_argument("--calls-per-client", type=int, default=10)
    args = ap.parse_args()
    image = ensure_image()
    with tempfile.TemporaryDirectory(prefix="evoagent-bench-mcp-") as tmp:
        home = Path(tmp)
        seed(home)
        out_direct = direct(image, args.n, args.pause, args.calls_per_client)
        out_stdio = over_stdio(home, image, args.n, args.pause)
        out_http = over_http(home, image, args.n, args.pause, args.calls_per_client)
    print(
        json.dumps(
            {
                "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                "pool_size": POOL,
                "direct_sandbox_run": out_direct,
                "mcp_stdio": out_stdio,
                "mcp_http": out_http,
                "overhead_p50_ms": {
                    "stdio": round(out_stdio["p50_ms"] - out_direct["p50_ms"], 1),
                    "http": round(out_http["p50_ms"] - out_direct["p50_ms"], 1),
                },
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
