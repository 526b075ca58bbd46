"""External MCP servers as a source of tools: `evoagent run/solve --mcp SERVER_SPEC`.

Each server is one client session (the official `mcp` SDK) on an event loop in a thread
of its own, opened before the first task and closed with the run. Its tools are offered
to the planner beside the library's (named `mcp_<name>`, a Python identifier that no
library tool has), and the code calls them as it calls library tools,
`from tools import mcp_<name>`: the call leaves the sandbox only through the runner's
tool bridge and is answered here, on the host (`sandbox/hostcalls.py`), which also
writes its record. Forged tools get no other way to them: the sandbox has no network.

A spec is a command line that starts a stdio server (`"evoagent --home ~/lib
tools serve"`, split as a shell would), or an http(s) URL on a loopback address (streamable
HTTP; `$EVOAGENT_MCP_TOKEN`, when set, goes as the bearer token).

Everything a server sends is untrusted: names, descriptions and schemas are capped
before a prompt sees them, results are checked as plain data before the code does.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import logging
import os
import re
import shlex
import shutil
import tempfile
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from agent.errors import AgentError

log = logging.getLogger("evoagent.mcp")

#: seconds to start a server, connect and list its tools
CONNECT_TIMEOUT_S = 60.0
#: caps on what a server may put in a prompt
MAX_TOOLS = 200
MAX_DOC = 600
MAX_PARAMS = 16
TOKEN_ENV = "EVOAGENT_MCP_TOKEN"
_JSON_TYPES = {
    "string": "str",
    "integer": "int",
    "number": "float",
    "boolean": "bool",
    "array": "list",
    "object": "dict",
}


class McpSourceError(AgentError):
    """An MCP server given with --mcp cannot be used; the message says what to do."""


@dataclass(frozen=True)
class ExternalTool:
    """One tool of an external server, as the planner and the code see it."""

    name: str  # the name the code imports: mcp_<identifier>
    remote: str  # the server's own name for it
    server: str  # the spec it came from
    signature: str
    docstring: str
    params: tuple[str, ...] = ()

    def offer(self) -> dict[str, Any]:
        """The tool as `recall` offers it (beside the library's, with its source)."""
        return {
            "name": self.name,
            "signature": self.signature,
            "docstring": self.docstring,
            "source": "mcp",
            "server": self.server,
        }


@dataclass(frozen=True)
class Spec:
    command: list[str] = field(default_factory=list)
    url: str | None = None


def parse_spec(spec: str) -> Spec:
    """A stdio command line or a loopback URL; anything else is a clear error."""
    text = spec.strip()
    if not text:
        raise McpSourceError("--mcp needs a server: a command line or an http URL")
    if re.match(r"^[a-z][a-z0-9+.-]*://", text, re.IGNORECASE):
        parts = urlsplit(text)
        if parts.scheme not in ("http", "https"):
            raise McpSourceError(f"--mcp {text!r}: only http(s) URLs or command lines are served")
        host = parts.hostname or ""
        if not _loopback(host):
            raise McpSourceError(
                f"--mcp {text!r}: the URL must be on this machine (127.0.0.1, ::1 or "
                "localhost); start the server's stdio command with --mcp instead"
            )
        return Spec(url=text)
    try:
        command = shlex.split(text)
    except ValueError as exc:
        raise McpSourceError(f"--mcp {text!r} is not a command line: {exc}") from None
    if shutil.which(command[0]) is None:
        raise McpSourceError(
            f"--mcp {text!r}: no program {command[0]!r} on PATH: give the server's full path"
        )
    return Spec(command=command)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def signature_of(name: str, schema: Any) -> tuple[str, tuple[str, ...]]:
    """A Python-like signature from a JSON input schema, and its parameter order."""
    props = schema.get("properties") if isinstance(schema, dict) else None
    if not isinstance(props, dict):
        return f"{name}(**kwargs) -> Any", ()
    required = schema.get("required") if isinstance(schema.get("required"), list) else []
    params, parts = [], []
    for key, prop in list(props.items())[:MAX_PARAMS]:
        if not isinstance(key, str) or not key.isidentifier():
            continue
        kind = prop.get("type") if isinstance(prop, dict) else None
        hint = _JSON_TYPES.get(kind, "Any") if isinstance(kind, str) else "Any"
        params.append(key)
        parts.append(f"{key}: {hint}" + ("" if key in required else " = ..."))
    return f"{name}({', '.join(parts)}) -> Any", tuple(params)


def identifier(name: str) -> str:
    text = re.sub(r"\W", "_", name, flags=re.ASCII).strip("_")[:60]
    return text or "tool"


class McpServer:
    """One external server: a client session on its own event loop thread."""

    def __init__(self, spec: str, prefix: str, timeout_s: float) -> None:
        self.spec = spec
        self.parsed = parse_spec(spec)
        self.prefix = prefix
        self.timeout_s = timeout_s
        self.tools: dict[str, ExternalTool] = {}
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._session: Any = None
        self._error: BaseException | None = None
        # Lives as long as the server (closed in close()).
        self._errlog = tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace")  # noqa: SIM115
        self._thread = threading.Thread(target=self._serve, name=f"mcp {spec[:40]}", daemon=True)

    # ----------------------------------------------------------------- lifecycle

    def open(self) -> McpServer:
        self._thread.start()
        if not self._ready.wait(CONNECT_TIMEOUT_S):
            self.close()
            raise McpSourceError(
                f"--mcp {self.spec!r}: no answer in {CONNECT_TIMEOUT_S:g} s; "
                "check that the command starts an MCP server on stdio"
            )
        if self._error is not None:
            error, said = self._error, self._stderr_tail()
            self.close()
            raise McpSourceError(
                f"--mcp {self.spec!r}: could not connect: {_reason(error)}"
                + (f"; the server said: {said}" if said else "")
            ) from None
        return self

    def _stderr_tail(self) -> str:
        with contextlib.suppress(OSError, ValueError):
            self._errlog.seek(0)
            lines = [line.strip() for line in self._errlog.read()[-4000:].splitlines()]
            return " | ".join(line for line in lines if line)[-600:]
        return ""

    def close(self) -> None:
        if self._stop is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        with contextlib.suppress(OSError):
            self._errlog.close()

    def _serve(self) -> None:
        try:
            self._loop.run_until_complete(self._main())
        except BaseException as exc:
            self._error = exc
        finally:
            self._ready.set()
            self._loop.close()

    async def _main(self) -> None:
        from mcp import ClientSession

        self._stop = asyncio.Event()
        async with contextlib.AsyncExitStack() as stack:
            read, write = await stack.enter_async_context(self._transport())
            self._session = await stack.enter_async_context(
                ClientSession(read, write, message_handler=self._on_message)
            )
            await self._session.initialize()
            await self._list()
            self._ready.set()
            await self._stop.wait()

    @contextlib.asynccontextmanager
    async def _transport(self) -> Any:
        if self.parsed.url is not None:
            import httpx
            from mcp.client.streamable_http import streamable_http_client

            token = os.environ.get(TOKEN_ENV)
            headers = {"Authorization": f"Bearer {token}"} if token else None
            timeout = httpx.Timeout(30, read=self.timeout_s + 30)
            async with (
                httpx.AsyncClient(headers=headers, timeout=timeout) as http,
                streamable_http_client(self.parsed.url, http_client=http) as (read, write, _),
            ):
                yield read, write
            return
        from mcp.client.stdio import StdioServerParameters, get_default_environment, stdio_client

        env = get_default_environment()
        # Our own settings (the home, the sandbox image) reach an `evoagent tools serve`.
        env.update({k: v for k, v in os.environ.items() if k.startswith("EVOAGENT_")})
        params = StdioServerParameters(
            command=self.parsed.command[0], args=self.parsed.command[1:], env=env
        )
        # What the server says on stderr: its last lines explain a failed start.
        async with stdio_client(params, errlog=self._errlog) as (read, write):
            yield read, write

    async def _on_message(self, message: Any) -> None:
        from mcp import types

        if isinstance(message, types.ServerNotification) and isinstance(
            message.root, types.ToolListChangedNotification
        ):
            try:
                await self._list()
            except Exception as exc:  # keep the tools we had
                log.warning("mcp %s: could not list the changed tools: %s", self.spec, exc)

    async def _list(self) -> None:
        tools: dict[str, ExternalTool] = {}
        cursor = None
        while len(tools) < MAX_TOOLS:
            page = await self._session.list_tools(cursor)
            for tool in page.tools[: MAX_TOOLS - len(tools)]:
                name = self.prefix + identifier(str(tool.name))
                if name in tools:
                    continue
                signature, params = signature_of(name, tool.inputSchema)
                doc = " ".join(str(tool.description or "").split())[:MAX_DOC]
                tools[name] = ExternalTool(
                    name, str(tool.name), self.spec, signature, doc or signature, params
                )
            cursor = page.nextCursor
            if not cursor:
                break
        self.tools = tools

    # ----------------------------------------------------------------- calls

    def call(
        self, tool: ExternalTool, args: list[Any], kwargs: dict[str, Any], timeout: float | None
    ) -> Any:
        """Call `tool` on the server: its value, or `HostToolError` with the server's words."""
        from sandbox.base import HostToolError

        if len(args) > len(tool.params):
            raise HostToolError(
                "TypeError",
                f"{tool.name} takes {len(tool.params)} positional argument(s), got {len(args)}",
            )
        arguments = dict(zip(tool.params, args, strict=False))
        for key, value in kwargs.items():
            if key in arguments:
                raise HostToolError("TypeError", f"{tool.name} got two values for {key!r}")
            arguments[key] = value
        limit = timeout if timeout is not None else self.timeout_s
        if self._session is None or self._loop.is_closed():
            raise HostToolError("RuntimeError", f"the MCP server {self.spec!r} is closed")
        future = asyncio.run_coroutine_threadsafe(
            self._session.call_tool(
                tool.remote, arguments, read_timeout_seconds=datetime.timedelta(seconds=limit)
            ),
            self._loop,
        )
        try:
            result = future.result(limit + 5)
        except TimeoutError:
            future.cancel()
            raise HostToolError(
                "TimeoutError", f"{tool.name} took longer than {limit:g} s"
            ) from None
        except Exception as exc:
            raise HostToolError("RuntimeError", f"{tool.name}: {_reason(exc)}") from None
        return value_of(tool.name, result)


def value_of(name: str, result: Any) -> Any:
    """A `CallToolResult` as the code gets it: the structured value (`{"result": v}`
    gives v), else the text; an error result raises."""
    from mcp import types

    from sandbox.base import HostToolError

    text = "\n".join(c.text for c in result.content if isinstance(c, types.TextContent))
    if result.isError:
        raise HostToolError("ToolError", text[:4000] or f"{name} failed")
    structured = result.structuredContent
    if isinstance(structured, dict):
        return structured["result"] if set(structured) == {"result"} else structured
    if not text and result.content:
        raise HostToolError("TypeError", f"{name} returned no text (only other content)")
    return text


class McpTools:
    """The tools of every --mcp server of a run: what recall offers and act runs."""

    def __init__(self, servers: list[McpServer]) -> None:
        self.servers = servers

    @classmethod
    def open(cls, specs: Iterable[str], timeout_s: float = 30.0) -> McpTools:
        servers: list[McpServer] = []
        try:
            for i, spec in enumerate(specs):
                servers.append(
                    McpServer(spec, "mcp_" if i == 0 else f"mcp{i + 1}_", timeout_s).open()
                )
        except BaseException:
            for server in servers:
                server.close()
            raise
        return cls(servers)

    def tools(self) -> dict[str, tuple[McpServer, ExternalTool]]:
        return {name: (s, t) for s in self.servers for name, t in s.tools.items()}

    def offered(self, task: str, k: int) -> list[dict[str, Any]]:
        """The `k` tools whose name and description share most words with the task."""
        words = set(re.findall(r"[a-z]{3,}", task.lower()))

        def overlap(tool: ExternalTool) -> int:
            text = (tool.remote + " " + tool.docstring).lower().replace("_", " ")
            return len(words & set(re.findall(r"[a-z]{3,}", text)))

        ranked = sorted((t for _, t in self.tools().values()), key=lambda t: (-overlap(t), t.name))
        return [t.offer() for t in ranked[:k]]

    def host_tools(self, names: Iterable[str]) -> dict[str, Any]:
        """The sandbox's host tools for the chosen names that are ours."""
        from functools import partial

        from sandbox.base import HostTool

        known = self.tools()
        return {
            name: HostTool(known[name][1].docstring, partial(known[name][0].call, known[name][1]))
            for name in names
            if name in known
        }

    def close(self) -> None:
        for server in self.servers:
            server.close()


def _reason(exc: BaseException) -> str:
    """The innermost useful message of an exception (task groups wrap them)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {exc}"[:500]
