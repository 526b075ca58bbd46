"""The transports of `evoagent tools serve` (agent/mcp_server.py): stdio, one JSON-RPC
message per line, and streamable HTTP behind a Host check and, off 127.0.0.1, a bearer token.
"""

from __future__ import annotations

import contextlib
import errno
import hmac
import ipaddress
import json
import secrets
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

import anyio

from agent.errors import AgentError

if TYPE_CHECKING:
    from agent.mcp_server import LibraryMCP

#: where the streamable HTTP endpoint answers
HTTP_PATH = "/mcp"
#: the addresses an HTTP server may bind without a token: this machine's default loopback
OPEN_HOSTS = ("127.0.0.1", "::1", "localhost")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class ServeError(AgentError):
    """The server cannot start (a port in use, an address that does not bind)."""


# ------------------------------------------------------------------------------ stdio


#: the longest message line read over stdio (a call's arguments included)
MAX_LINE_CHARS = 4 << 20


async def serve_stdio(mcp: LibraryMCP) -> None:
    """Serve one client over this process's stdin/stdout until it closes stdin."""
    async with _stdio_streams() as (read, write), anyio.create_task_group() as tg:
        tg.start_soon(mcp.watch)
        await mcp.server.run(read, write, mcp.init_options())
        tg.cancel_scope.cancel()


@contextlib.asynccontextmanager
async def _stdio_streams() -> AsyncIterator[tuple[Any, Any]]:
    """stdin/stdout as the server's message streams, one JSON-RPC message per line.

    Unlike the SDK's stdio transport, a line that is not a JSON-RPC message gets a JSON-RPC
    error answer (-32700 not JSON, -32600 not a request) that says what was wrong, and the
    server reads on."""
    import sys
    from io import TextIOWrapper

    from mcp.shared.message import SessionMessage
    from mcp.types import JSONRPCMessage

    stdin = anyio.wrap_file(TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="replace"))
    stdout = anyio.wrap_file(TextIOWrapper(sys.stdout.buffer, encoding="utf-8"))
    to_server, read = anyio.create_memory_object_stream[Any](0)
    write, from_server = anyio.create_memory_object_stream[Any](0)
    lock = anyio.Lock()

    async def put(line: str) -> None:
        async with lock:
            await stdout.write(line + "\n")
            await stdout.flush()

    async def refuse(code: int, message: str) -> None:
        error = {"code": code, "message": message}
        await put(json.dumps({"jsonrpc": "2.0", "id": None, "error": error}))

    async def reader() -> None:
        async with to_server:
            async for line in stdin:
                if not line.strip():
                    continue
                if len(line) > MAX_LINE_CHARS:
                    await refuse(-32600, f"message over {MAX_LINE_CHARS} characters: not read")
                    continue
                try:
                    json.loads(line)
                except ValueError as exc:
                    await refuse(-32700, f"parse error: {exc} (send one JSON object per line)")
                    continue
                try:
                    message = JSONRPCMessage.model_validate_json(line)
                except ValueError:
                    await refuse(-32600, "invalid request: not a JSON-RPC 2.0 message")
                    continue
                await to_server.send(SessionMessage(message))

    async def writer() -> None:
        async with from_server:
            async for item in from_server:
                await put(item.message.model_dump_json(by_alias=True, exclude_none=True))

    async with anyio.create_task_group() as tg:
        tg.start_soon(reader)
        tg.start_soon(writer)
        yield read, write


# ------------------------------------------------------------------------------- http


def needs_token(host: str) -> bool:
    """Whether serving on `host` requires a bearer token (anything but the default loopback)."""
    return host not in OPEN_HOSTS


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port, or ServeError saying what to do."""
    try:
        family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    except ValueError:
        family = socket.AF_INET  # a name such as localhost
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ServeError(
                f"port {port} on {host} is in use: pick another with --port "
                "(--port 0 takes a free one and prints it)"
            ) from exc
        raise ServeError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    return sock


class _Endpoint:
    """The streamable HTTP endpoint as a plain ASGI app (Starlette passes it the request)."""

    def __init__(self, handle: Callable[[Scope, Receive, Send], Awaitable[None]]) -> None:
        self.handle = handle

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.handle(scope, receive, send)


class BearerGate:
    """ASGI middleware: an HTTP request without `Authorization: Bearer TOKEN` gets 401."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], token: str):
        self.app = app
        self.expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            given = dict(scope.get("headers") or []).get(b"authorization", b"")
            if not hmac.compare_digest(given, self.expected):
                body = json.dumps({"error": "a bearer token is required (Authorization: Bearer …)"})
                await send(
                    {
                        "type": "http.response.start",
                        "status": 401,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"www-authenticate", b'Bearer realm="evoagent"'),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body.encode()})
                return
        await self.app(scope, receive, send)


def http_app(
    mcp: LibraryMCP, *, host: str, port: int, token: str | None
) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """The ASGI app: streamable HTTP at /mcp, Host checked, behind the token when one is set."""
    from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
    from mcp.server.transport_security import TransportSecuritySettings
    from starlette.applications import Starlette
    from starlette.routing import Route

    names = [host, "localhost"] if host == "127.0.0.1" else [host]
    names = [f"[{n}]" if ":" in n else n for n in names]
    security = TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=[*names, *(f"{n}:{port}" for n in names)],
        allowed_origins=[f"http://{n}:{port}" for n in names],
    )
    manager = StreamableHTTPSessionManager(app=mcp.server, security_settings=security)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        async with manager.run(), anyio.create_task_group() as tg:
            tg.start_soon(mcp.watch)
            yield
            tg.cancel_scope.cancel()

    app = Starlette(
        routes=[Route(HTTP_PATH, endpoint=_Endpoint(manager.handle_request))], lifespan=lifespan
    )
    return BearerGate(app, token) if token else app


def new_token() -> str:
    return secrets.token_urlsafe(32)


async def serve_http(
    mcp: LibraryMCP,
    sock: socket.socket,
    *,
    token: str | None,
    ready: Callable[[str], None] | None = None,
) -> None:
    """Serve streamable HTTP on the bound socket `sock` until interrupted."""
    import uvicorn

    host, port = sock.getsockname()[:2]
    app = http_app(mcp, host=host, port=port, token=token)
    config = uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False)
    server = uvicorn.Server(config)
    if ready is not None:
        shown = f"[{host}]" if ":" in host else host
        ready(f"http://{shown}:{port}{HTTP_PATH}")
    await server.serve(sockets=[sock])
