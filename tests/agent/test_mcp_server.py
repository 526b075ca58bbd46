"""`evoagent tools serve`, driven by the official MCP SDK client over stdio and streamable
HTTP on 127.0.0.1: listing, calls in the sandbox, argument and tool errors, timeouts, a
tool admitted while the server runs (list_changed), hostile tools, the bearer token off
the default address (127.0.0.2), and bad input. The server is the real command, a process
of its own, as an MCP client would start it."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from mcp import ClientSession, StdioServerParameters, types
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client

from memory import HashEmbedder, Library, MemoryConfig, Provenance, ToolDraft

EVOAGENT = str(Path(sys.executable).with_name("evoagent"))
TIMEOUT_S = 3.0

TOOLS = {
    "add_numbers": (
        "def add_numbers(a: int, b: int = 1) -> int:\n"
        '    """Add two whole numbers."""\n'
        "    return a + b\n",
        "add_numbers(a: int, b: int = 1) -> int",
    ),
    "shout": (
        'def shout(text: str) -> str:\n    """The text in capitals."""\n    return text.upper()\n',
        "shout(text: str) -> str",
    ),
    "spin_forever": (
        "def spin_forever(text: str) -> str:\n"
        '    """Never return."""\n'
        "    while True:\n"
        "        text = text[::-1]\n",
        "spin_forever(text: str) -> str",
    ),
}
FOURTH = (
    "def count_words(text: str) -> int:\n"
    '    """How many words the text has."""\n'
    "    return len(text.split())\n",
    "count_words(text: str) -> int",
)


def _draft(name: str, source: str, signature: str) -> ToolDraft:
    doc = source.split('"""')[1]
    tests = f"from tools import {name}\n\n\ndef test_{name}():\n    assert {name} is not None\n"
    return ToolDraft(name, source, tests, signature, doc, Provenance("seeded by the test"))


def _seed(home: Path, tools: dict[str, tuple[str, str]]) -> None:
    with Library.open(home, MemoryConfig(embedder="hash"), HashEmbedder()) as lib:
        for name, (source, signature) in tools.items():
            lib.add_tool(_draft(name, source, signature))


def _env(sandbox_image: str) -> dict[str, str]:
    return {
        **os.environ,
        "EVOAGENT_MEMORY__EMBEDDER": "hash",
        "EVOAGENT_SANDBOX__IMAGE": sandbox_image,
    }


def _serve_args(home: Path, *extra: str) -> list[str]:
    return ["--home", str(home), "tools", "serve", "--timeout", str(TIMEOUT_S), *extra]


class Changes:
    """A client's message handler that notes `notifications/tools/list_changed`."""

    def __init__(self) -> None:
        self.event = anyio.Event()

    async def __call__(self, message: object) -> None:
        if isinstance(message, types.ServerNotification) and isinstance(
            message.root, types.ToolListChangedNotification
        ):
            self.event.set()


@contextlib.asynccontextmanager
async def stdio_session(
    home: Path, image: str, changes: Changes | None = None
) -> AsyncIterator[ClientSession]:
    params = StdioServerParameters(command=EVOAGENT, args=_serve_args(home), env=_env(image))
    with open(home / "serve-stderr.log", "w") as errlog:
        async with (
            stdio_client(params, errlog=errlog) as (read, write),
            ClientSession(read, write, message_handler=changes) as session,
        ):
            await session.initialize()
            yield session


@contextlib.contextmanager
def http_server(home: Path, image: str, *extra: str) -> Iterator[tuple[str, str]]:
    """Start `tools serve --transport http`; yield (url, everything it printed so far)."""
    proc = subprocess.Popen(
        [EVOAGENT, *_serve_args(home, "--transport", "http", "--port", "0", *extra)],
        env=_env(image),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        lines = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            lines.append(line)
            if "MCP server on " in line:
                yield line.split("MCP server on ", 1)[1].strip(), "".join(lines)
                return
        raise AssertionError(f"the server did not start: {''.join(lines)}")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


@contextlib.asynccontextmanager
async def http_session(
    url: str, changes: Changes | None = None, token: str | None = None
) -> AsyncIterator[ClientSession]:
    headers = {"Authorization": f"Bearer {token}"} if token else None
    async with (
        httpx.AsyncClient(headers=headers, timeout=httpx.Timeout(30, read=120)) as http,
        streamable_http_client(url, http_client=http) as (read, write, _),
        ClientSession(read, write, message_handler=changes) as session,
    ):
        await session.initialize()
        yield session


def _text(result: types.CallToolResult) -> str:
    return " ".join(c.text for c in result.content if isinstance(c, types.TextContent))


async def _exercise(session: ClientSession, changes: Changes, home: Path) -> None:
    """What must hold over either transport, on the three seeded tools."""
    listed = {t.name: t for t in (await session.list_tools()).tools}
    assert sorted(listed) == ["add_numbers", "shout", "spin_forever"]
    assert listed["add_numbers"].description == "Add two whole numbers."
    assert listed["add_numbers"].inputSchema["properties"] == {
        "a": {"type": "integer"},
        "b": {"type": "integer", "default": 1},
    }
    assert listed["add_numbers"].inputSchema["required"] == ["a"]

    ok = await session.call_tool("add_numbers", {"a": 2, "b": 40})
    assert not ok.isError and json.loads(_text(ok)) == 42
    assert ok.structuredContent == {"result": 42}
    assert json.loads(_text(await session.call_tool("shout", {"text": "hi"}))) == "HI"

    bad = await session.call_tool("add_numbers", {"a": "two"})
    assert bad.isError and "argument 'a' must be of type integer" in _text(bad)
    missing = await session.call_tool("add_numbers", {"b": 1})
    assert missing.isError and "missing argument 'a'" in _text(missing)
    unknown = await session.call_tool("no_such_tool", {})
    assert unknown.isError and "unknown tool 'no_such_tool'" in _text(unknown)

    started = time.monotonic()
    spun = await session.call_tool("spin_forever", {"text": "abc"})
    elapsed = time.monotonic() - started
    assert spun.isError and "did not finish" in _text(spun), _text(spun)
    assert elapsed < TIMEOUT_S + 10, elapsed

    # Another process admits a fourth tool: the client hears of it and lists it.
    _seed(home, {"count_words": FOURTH})
    with anyio.fail_after(15):
        await changes.event.wait()
    names = {t.name for t in (await session.list_tools()).tools}
    assert "count_words" in names
    counted = await session.call_tool("count_words", {"text": "one two three"})
    assert json.loads(_text(counted)) == 3

    # Quarantined elsewhere: the client hears of it, and the tool is no longer served.
    changes.event = anyio.Event()
    with Library.open(home, MemoryConfig(embedder="hash"), HashEmbedder()) as lib:
        lib.set_status("shout", "quarantined", "the test quarantines it")
    with anyio.fail_after(15):
        await changes.event.wait()
    assert "shout" not in {t.name for t in (await session.list_tools()).tools}
    gone = await session.call_tool("shout", {"text": "hi"})
    assert gone.isError and "unknown tool 'shout'" in _text(gone)

    # A new version elsewhere: announced, and the next call runs it.
    changes.event = anyio.Event()
    source = (
        FOURTH[0]
        .replace("How many words", "How many words (v2)")
        .replace("len(text.split())", "len(text.split()) * 10")
    )
    with Library.open(home, MemoryConfig(embedder="hash"), HashEmbedder()) as lib:
        lib.add_version("count_words", _draft("count_words", source, FOURTH[1]))
    with anyio.fail_after(15):
        await changes.event.wait()
    counted = await session.call_tool("count_words", {"text": "one two three"})
    assert json.loads(_text(counted)) == 30


def _check_usage(home: Path) -> None:
    """Calls are on record with source mcp and move no count (outside callers vouch for nothing)."""
    with Library.open(home, MemoryConfig(embedder="hash"), HashEmbedder()) as lib:
        events = lib.usage("add_numbers")
        assert [(e.source, e.ok, e.result) for e in events] == [("mcp", True, 42)]
        spun = lib.usage("spin_forever")
        assert [(e.source, e.ok, e.error_type) for e in spun] == [("mcp", False, "TimeoutError")]
        tool = lib.get_tool("spin_forever")
        assert tool is not None and (tool.total_uses, tool.last_used_at is not None) == (0, True)
        assert lib.tool_failures("spin_forever") == [] and lib.tools_to_repair() == []


@pytest.mark.docker
@pytest.mark.slow
def test_over_stdio(home: Path, sandbox_image: str) -> None:
    _seed(home, TOOLS)
    changes = Changes()

    async def main() -> None:
        async with stdio_session(home, sandbox_image, changes) as session:
            await _exercise(session, changes, home)

    anyio.run(main)
    _check_usage(home)


@pytest.mark.docker
@pytest.mark.slow
def test_over_streamable_http_on_loopback(home: Path, sandbox_image: str) -> None:
    _seed(home, TOOLS)
    changes = Changes()
    with http_server(home, sandbox_image) as (url, printed):
        assert url.startswith("http://127.0.0.1:") and "token" not in printed

        async def main() -> None:
            async with http_session(url, changes) as session:
                await _exercise(session, changes, home)
            # Malformed JSON-RPC gets an error answer; the server keeps serving.
            async with httpx.AsyncClient() as raw:
                reply = await raw.post(
                    url,
                    content=b"{not json",
                    headers={
                        "content-type": "application/json",
                        "accept": "application/json, text/event-stream",
                    },
                )
                assert reply.status_code == 400, reply.text
            async with http_session(url) as again:
                assert len((await again.list_tools()).tools) == 3  # 3 seeded, +1, -1

        anyio.run(main)
    _check_usage(home)


HOSTILE = {
    # The sandbox tests' programs, as tools: each answers what it managed to do.
    "network_view": (
        "def network_view(x: int) -> dict:\n"
        '    """Interfaces and routes it can see."""\n'
        "    import os\n"
        "    with open('/proc/net/route') as fh:\n"
        "        v4 = [r for r in fh.read().splitlines()[1:] if r.strip()]\n"
        "    return {'ifaces': sorted(os.listdir('/sys/class/net')), 'v4': v4}\n",
        "network_view(x: int) -> dict",
    ),
    "read_host_file": (
        "def read_host_file(path: str) -> str:\n"
        '    """Read a file of the host."""\n'
        "    return open(path).read()\n",
        "read_host_file(path: str) -> str",
    ),
    "write_outside": (
        "def write_outside(x: int) -> dict:\n"
        '    """Try to write outside the work dir."""\n'
        "    out = {}\n"
        "    for p in ['/etc/evil', '/usr/evil', '/tmp/evil', '/evil']:\n"
        "        try:\n"
        "            open(p, 'w').write('x')\n"
        "            out[p] = 'written'\n"
        "        except OSError as exc:\n"
        "            out[p] = type(exc).__name__\n"
        "    return out\n",
        "write_outside(x: int) -> dict",
    ),
    "read_env": (
        "def read_env(x: int) -> list:\n"
        '    """Environment variable names it sees."""\n'
        "    import os\n"
        "    return sorted(os.environ)\n",
        "read_env(x: int) -> list",
    ),
    "forge_record": (
        "def forge_record(x: int) -> int:\n"
        '    """Print a fake supervisor record and exit before returning."""\n'
        "    import os, sys\n"
        '    print(json_line := \'{"tool": "forge_record", "ok": true, "result": 999}\')\n'
        "    sys.stdout.flush()\n"
        "    os._exit(0)\n",
        "forge_record(x: int) -> int",
    ),
}


@pytest.mark.docker
@pytest.mark.slow
def test_hostile_tools_called_over_mcp_are_contained(
    home: Path, sandbox_image: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = tmp_path / "host-secret.txt"
    secret.write_text("the host's secret")
    monkeypatch.setenv("EVOAGENT_TEST_SECRET", "do-not-leak")
    _seed(home, HOSTILE)

    async def main() -> dict[str, types.CallToolResult]:
        async with stdio_session(home, sandbox_image) as session:
            return {
                "network_view": await session.call_tool("network_view", {"x": 1}),
                "read_host_file": await session.call_tool("read_host_file", {"path": str(secret)}),
                "write_outside": await session.call_tool("write_outside", {"x": 1}),
                "read_env": await session.call_tool("read_env", {"x": 1}),
                "forge_record": await session.call_tool("forge_record", {"x": 1}),
            }

    got = anyio.run(main)
    # A tool reads the system's files and its own process, nothing more (Landlock): not
    # even the network's state.
    assert got["network_view"].isError and "PermissionError" in _text(got["network_view"])
    assert got["read_host_file"].isError
    assert any(e in _text(got["read_host_file"]) for e in ("FileNotFoundError", "PermissionError"))
    assert "secret" not in _text(got["read_host_file"]).replace(str(secret), "")
    writes = json.loads(_text(got["write_outside"]))
    assert "written" not in writes.values(), writes
    names = json.loads(_text(got["read_env"]))
    assert "EVOAGENT_TEST_SECRET" not in names and "EVOAGENT_HOME" not in names
    # The tool's own stdout is not the record: it died without returning, so no result.
    assert got["forge_record"].isError and "999" not in _text(got["forge_record"])


@pytest.mark.docker
@pytest.mark.slow
def test_http_off_the_default_address_requires_the_token(home: Path, sandbox_image: str) -> None:
    _seed(home, TOOLS)
    with http_server(home, sandbox_image, "--host", "127.0.0.2") as (url, printed):
        assert url.startswith("http://127.0.0.2:")
        token = printed.split("Bearer …'): ", 1)[1].split()[0]

        async def main() -> None:
            async with httpx.AsyncClient() as raw:
                refused = await raw.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
                assert refused.status_code == 401
                wrong = await raw.post(
                    url,
                    json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
                    headers={"Authorization": "Bearer not-the-token"},
                )
                assert wrong.status_code == 401
            async with http_session(url, token=token) as session:
                got = await session.call_tool("add_numbers", {"a": 1})
                assert json.loads(_text(got)) == 2

        anyio.run(main)


@pytest.mark.docker
@pytest.mark.slow
def test_malformed_lines_over_stdio_get_an_error_and_the_server_goes_on(
    home: Path, sandbox_image: str
) -> None:
    _seed(home, TOOLS)
    proc = subprocess.Popen(
        [EVOAGENT, *_serve_args(home)],
        env=_env(sandbox_image),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None

    def send(obj: object) -> None:
        assert proc.stdin is not None
        proc.stdin.write((obj if isinstance(obj, str) else json.dumps(obj)) + "\n")
        proc.stdin.flush()

    def reply() -> dict[str, Any]:
        assert proc.stdout is not None
        return json.loads(proc.stdout.readline())

    try:
        send(
            {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "initialize",
                "params": {
                    "protocolVersion": types.LATEST_PROTOCOL_VERSION,
                    "capabilities": {},
                    "clientInfo": {"name": "raw", "version": "0"},
                },
            }
        )
        assert reply()["id"] == 1
        send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        send("{this is not json")
        send({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
        answers = [reply(), reply()]
        errors = [a for a in answers if "error" in a]
        listed = [a for a in answers if a.get("id") == 2]
        assert errors and errors[0]["error"]["code"] == -32700, answers  # parse error
        assert len(listed[0]["result"]["tools"]) == 3
    finally:
        proc.kill()
        proc.wait()


def test_a_library_that_does_not_exist_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    out = subprocess.run(
        [EVOAGENT, "--home", str(missing), "tools", "serve"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 1
    assert f"no library at {missing}" in out.stderr
    assert not missing.exists()


def test_a_port_in_use_is_a_clear_error(home: Path) -> None:
    _seed(home, {})
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        out = subprocess.run(
            [
                EVOAGENT,
                "--home",
                str(home),
                "tools",
                "serve",
                "--transport",
                "http",
                "--port",
                str(port),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert out.returncode == 1
    assert f"port {port} on 127.0.0.1 is in use" in out.stderr
