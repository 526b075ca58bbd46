"""`evoagent tools serve`: the evolved library as an MCP server, for any MCP client.

    evoagent tools serve                         # stdio: an MCP client starts this command
    evoagent tools serve --transport http        # streamable HTTP on http://127.0.0.1:8765/mcp

`tools/list` gives the library's tools of the served status with their docstrings and an
input JSON Schema derived from each signature (`agent.library_tools.input_schema`).
`tools/call` checks the arguments on the host, then runs the tool's current version in the
sandbox (the warm pool), in a process of its own; the result or the error comes from the
supervisor's record of the call, never from what the tool's process says of itself, and
goes back as the call's result or as an MCP tool error (`isError`). Every call that ran is
recorded as usage of source `mcp` (written in batches off the call's path): it is on record and keeps the tool from looking unused,
but it moves no count the agent's trust is built on (memory/usage.py).

The server polls a stamp of the library's tools (`tools_stamp`: one aggregate row, moved by
any process's admission, version or status change, not by use): when the set of served tools changes — a tool admitted, versioned, quarantined — every
client that listed tools gets `notifications/tools/list_changed`, without a restart.

Transports (agent/mcp_transport.py): HTTP binds 127.0.0.1 by default and checks the Host
header (DNS rebinding). Bound to any
other address it requires a bearer token (`--token`, or one is generated and printed):
a request without it gets 401 before it reaches the MCP layer.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import threading
import time
import weakref
from functools import partial
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread

from agent.library_tools import ToolCallError, input_schema, run_tool

if TYPE_CHECKING:
    from mcp.server.lowlevel import Server
    from mcp.server.models import InitializationOptions
    from mcp.server.session import ServerSession
    from mcp.types import CallToolResult, Tool

    from memory.protocol import ToolLibrary
    from memory.types import ToolInfo, UsageEvent
    from sandbox.base import Sandbox

log = logging.getLogger(__name__)

STATUSES = ("active", "quarantined", "archived", "all")


class UsageWriter:
    """Records outside calls' usage events from a thread of its own, in batches, so a
    call's answer does not wait for a SQLite commit (about 10 ms of a 45 ms call). Events
    of the last `interval_s` are lost if the process is killed: they are on-record notes
    that move no count (memory/usage.py), not outcomes."""

    def __init__(self, library: ToolLibrary, interval_s: float = 0.2) -> None:
        self.library = library
        self.interval_s = interval_s
        self._queue: queue.Queue[UsageEvent | None] = queue.Queue()
        self._thread = threading.Thread(target=self._loop, name="mcp-usage", daemon=True)
        self._thread.start()

    def put(self, event: UsageEvent) -> None:
        self._queue.put(event)

    def close(self) -> None:
        """Write what is queued, then stop."""
        self._queue.put(None)
        self._thread.join(timeout=30)

    def _loop(self) -> None:
        done = False
        while not done:
            first = self._queue.get()
            batch = [] if first is None else [first]
            done = first is None
            deadline = time.monotonic() + self.interval_s
            while not done and (left := deadline - time.monotonic()) > 0:
                try:
                    item = self._queue.get(timeout=left)
                except queue.Empty:
                    break
                if item is None:
                    done = True
                else:
                    batch.append(item)
            if batch:
                try:
                    self.library.record_usage(batch)
                except Exception as exc:  # a tool removed meanwhile, a locked database
                    log.warning("could not record %d MCP call(s): %s", len(batch), exc)


class LibraryMCP:
    """An MCP server over one library and one sandbox (serve it with `serve_stdio` or
    `serve_http`). Handlers run the sandbox in worker threads, so calls of many clients
    proceed together.

    The served tools are read once and again whenever the library's tools stamp moves
    (`watch`, every `poll_s`): a call finds its tool in memory, and a tool quarantined
    or versioned is served as such from the next poll on."""

    def __init__(
        self,
        library: ToolLibrary,
        sandbox: Sandbox,
        *,
        status: str = "active",
        timeout_s: float | None = None,
        poll_s: float = 0.5,
    ) -> None:
        from mcp.server.lowlevel import Server

        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}: use {', '.join(STATUSES)}")
        self.library = library
        self.sandbox = sandbox
        self.status = status
        self.timeout_s = timeout_s
        self.poll_s = poll_s
        self.server: Server[Any, Any] = Server(
            "evoagent",
            instructions="Tools an evoagent evolved and tested; every call runs in a sandbox.",
        )
        self.server.list_tools()(self.list_tools)
        self.server.call_tool(validate_input=False)(self.call_tool)
        # Clients that listed tools: they are the ones a changed list concerns.
        self._sessions: weakref.WeakSet[ServerSession] = weakref.WeakSet()
        self._stamp = library.tools_stamp()
        self._tools = self._read_tools()
        self.usage = UsageWriter(library)

    def close(self) -> None:
        self.usage.close()

    def init_options(self) -> InitializationOptions:
        from mcp.server.lowlevel import NotificationOptions

        return self.server.create_initialization_options(
            notification_options=NotificationOptions(tools_changed=True)
        )

    def _read_tools(self) -> dict[str, ToolInfo]:
        status = None if self.status == "all" else self.status
        return {t.name: t for t in self.library.list_tools(status)}

    async def list_tools(self) -> list[Tool]:
        from mcp.types import Tool

        self._remember_session()
        tools = []
        for info in sorted(self._tools.values(), key=lambda t: t.name):
            try:
                schema = input_schema(info.signature)
            except ToolCallError as exc:  # a stored signature that does not parse
                log.warning("not listing %s: %s", info.name, exc)
                continue
            tools.append(
                Tool(
                    name=info.name,
                    description=info.docstring or info.signature,
                    inputSchema=schema,
                )
            )
        return tools

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> CallToolResult:
        from mcp.types import CallToolResult, TextContent

        def error(message: str) -> CallToolResult:
            return CallToolResult(content=[TextContent(type="text", text=message)], isError=True)

        self._remember_session()
        tool = self._tools.get(name)
        if tool is None:
            served = "" if self.status == "all" else f"{self.status} "
            return error(f"unknown tool {name!r}: the library has no {served}tool of that name")
        call = partial(
            run_tool, self.sandbox, tool, arguments, timeout_s=self.timeout_s, source="mcp"
        )
        try:
            event = await anyio.to_thread.run_sync(call)
        except ToolCallError as exc:  # arguments that do not fit: nothing ran
            return error(str(exc))
        self.usage.put(event)
        if not event.ok:
            return error(event.error_message or f"{name} failed")
        # The supervisor's record holds JSON values only (sandbox/runner.py checks them).
        text = json.dumps(event.result, ensure_ascii=False)
        return CallToolResult(
            content=[TextContent(type="text", text=text)],
            structuredContent={"result": event.result},
            isError=False,
        )

    def _remember_session(self) -> None:
        with contextlib.suppress(LookupError):
            self._sessions.add(self.server.request_context.session)

    @staticmethod
    def _fingerprint(tools: dict[str, ToolInfo]) -> set[tuple[str, int, str, str, str]]:
        return {(t.name, t.version, t.status, t.signature, t.docstring) for t in tools.values()}

    async def watch(self) -> None:
        """Poll the library's tools stamp; re-read the served tools when it moved, and tell
        the clients when they changed."""
        while True:
            await anyio.sleep(self.poll_s)
            try:
                now = await anyio.to_thread.run_sync(self.library.tools_stamp)
                if now == self._stamp:
                    continue
                tools = await anyio.to_thread.run_sync(self._read_tools)
            except Exception as exc:  # a busy or locked database: try again at the next tick
                log.warning("could not read the library's changes: %s", exc)
                continue
            self._stamp = now
            changed = self._fingerprint(tools) != self._fingerprint(self._tools)
            self._tools = tools
            if changed:
                await self.notify_changed()

    async def notify_changed(self) -> None:
        for session in list(self._sessions):
            try:
                await session.send_tool_list_changed()
            except Exception:  # a client that went away
                self._sessions.discard(session)
