"""`--mcp SERVER_SPEC`: an external MCP server's tools offered to the planner and called by
the sandboxed code through the runner's tool bridge, answered and recorded on the host.

The external server is our own `evoagent tools serve` on another home, started over
stdio by the client or over streamable HTTP on 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from mcp import types
from typer.testing import CliRunner

from agent.mcp_client import McpSourceError, McpTools, parse_spec, signature_of, value_of
from memory import HashEmbedder, Library, MemoryConfig
from sandbox.base import HostToolError
from tests.agent.graph_kit import check_reply, solve_app, write_script
from tests.agent.test_mcp_server import EVOAGENT, TOOLS, _seed, http_server

runner = CliRunner()
TASK = "Shout this text: hello world"


def test_specs_are_a_command_or_a_loopback_url() -> None:
    assert parse_spec(f"{EVOAGENT} tools serve").command[1:] == ["tools", "serve"]
    for url in ("http://127.0.0.1:8765/mcp", "http://[::1]:9/mcp", "https://localhost/mcp"):
        assert parse_spec(url).url == url
    # Refused from the text alone: nothing is opened to these addresses.
    for spec, problem in [
        ("http://10.1.2.3:8765/mcp", "must be on this machine"),
        ("http://example.org/mcp", "must be on this machine"),
        ("ftp://127.0.0.1/x", "only http"),
        ("no-such-program-xyz serve", "no program 'no-such-program-xyz'"),
        ("'unclosed", "not a command line"),
        ("  ", "needs a server"),
    ]:
        with pytest.raises(McpSourceError, match=problem):
            parse_spec(spec)


def test_signatures_and_results_from_what_a_server_sends() -> None:
    schema = {
        "type": "object",
        "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}, "bad key": {}},
        "required": ["a"],
    }
    assert signature_of("mcp_add", schema) == ("mcp_add(a: int, b: int = ...) -> Any", ("a", "b"))
    assert signature_of("mcp_x", "not a schema") == ("mcp_x(**kwargs) -> Any", ())
    text = [types.TextContent(type="text", text="42")]
    assert value_of("t", types.CallToolResult(content=text, structuredContent={"result": 42})) == 42
    assert value_of("t", types.CallToolResult(content=text)) == "42"
    with pytest.raises(HostToolError, match="42"):
        value_of("t", types.CallToolResult(content=text, isError=True))


def _rules() -> list[dict[str, Any]]:
    act = (
        "```python\nfrom tools import mcp_shout, mcp_add_numbers\n\n"
        "try:\n    mcp_add_numbers(1, 2, 3)\nexcept TypeError as exc:\n    print('refused:', exc)\n"
        "answer = mcp_shout(TASK.split(': ')[1])\n```\n"
    )
    return [
        {"step": "plan", "reply": "TOOLS: mcp_shout, mcp_add_numbers\nPLAN: shout it\n"},
        {"step": "act", "reply": act},
        {"step": "check", "reply": check_reply("HELLO WORLD")},
    ]


def _solve(tmp_path: Path, spec: str) -> Any:
    script = write_script(tmp_path / "m.yaml", _rules())
    args = ["-c", "memory.embedder=hash", "solve", TASK, "--model", f"scripted:{script}"]
    return runner.invoke(solve_app(), [*args, "--expect", "HELLO WORLD", "--mcp", spec, "--json"])


def _check_solved(result: Any, home: Path) -> None:
    assert result.exit_code == 0, result.output
    episode = json.loads(result.stdout)
    assert episode["status"] == "solved" and episode["answer"] == "HELLO WORLD"
    act = next(h for h in episode["history"] if h["kind"] == "act")
    assert "refused: mcp_add_numbers takes 2 positional argument(s), got 3" in act["observation"]
    assert "recall tools: mcp_shout, mcp_add_numbers" in result.stderr
    assert "(called mcp_add_numbers, mcp_shout)" in result.stderr
    # The episode's home holds no tool, no usage of tools it does not have, no forged copy.
    with Library.open(home, MemoryConfig(embedder="hash"), HashEmbedder()) as lib:
        assert lib.list_tools(None) == []
        stored = lib.get_episode(episode["id"])
        assert stored is not None and stored.status == "solved" and stored.tools_used == []


@pytest.fixture
def other(tmp_path: Path, sandbox_image: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Another home with two admitted tools, for the external server to serve."""
    other = tmp_path / "other-library"
    _seed(other, {k: TOOLS[k] for k in ("shout", "add_numbers")})
    monkeypatch.setenv("EVOAGENT_SANDBOX__IMAGE", sandbox_image)
    monkeypatch.setenv("EVOAGENT_MEMORY__EMBEDDER", "hash")
    return other


@pytest.mark.docker
def test_solve_uses_a_stdio_servers_tool(home: Path, tmp_path: Path, other: Path) -> None:
    _check_solved(_solve(tmp_path, f"{EVOAGENT} --home {other} tools serve"), home)
    # A command that is not an MCP server: one line with what it said.
    result = _solve(tmp_path, f"{EVOAGENT} tools serve --home {other}")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "could not connect" in result.output and "No such option: --home" in result.output


@pytest.mark.docker
def test_solve_uses_an_http_servers_tool_and_host_records_every_call(
    home: Path, tmp_path: Path, sandbox_image: str, other: Path
) -> None:
    with http_server(other, sandbox_image) as (url, _):
        _check_solved(_solve(tmp_path, url), home)
        # The same tools through the API: the host's record of a call made by code.
        from sandbox import SandboxConfig, get_sandbox

        tools = McpTools.open([url])
        sandbox = get_sandbox(SandboxConfig(image=sandbox_image, pool_size=0))
        try:
            res = sandbox.run(
                "from tools import mcp_add_numbers\nanswer = mcp_add_numbers(2, b=40)\n",
                host_tools=tools.host_tools(["mcp_add_numbers", "mcp_unknown"]),
            )
        finally:
            sandbox.close()
            tools.close()
    assert res.ok and res.answer == 42, res.observation()
    [call] = res.tool_calls
    assert (call.tool, call.args, call.kwargs, call.result) == (
        "mcp_add_numbers",
        [2],
        {"b": 40},
        42,
    )
