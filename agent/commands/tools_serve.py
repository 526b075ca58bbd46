"""`evoagent tools serve`: the library as an MCP server (agent/mcp_server.py does the work).

Over stdio nothing but the protocol may reach stdout: the command's own lines go to stderr.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from agent.commands.common import settings_of


class Transport(StrEnum):
    stdio = "stdio"
    http = "http"


def register(tools_app: typer.Typer) -> None:
    tools_app.command("serve")(tools_serve)


def tools_serve(
    ctx: typer.Context,
    transport: Annotated[
        Transport, typer.Option(help="stdio (an MCP client starts this command) or http.")
    ] = Transport.stdio,
    host: Annotated[
        str,
        typer.Option(
            help="HTTP address; any but 127.0.0.1, ::1 or localhost requires a bearer token."
        ),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="HTTP port (0: a free one, printed).")] = 8765,
    status: Annotated[
        str,
        typer.Option(help="Serve the tools of this status: active, quarantined, archived, all."),
    ] = "active",
    token: Annotated[
        str | None,
        typer.Option(
            envvar="EVOAGENT_MCP_TOKEN",
            help="Bearer token HTTP clients must send (generated and printed when needed).",
            show_default=False,
        ),
    ] = None,
    timeout: Annotated[
        float | None,
        typer.Option(help="Seconds a call may run (default: the sandbox's timeout_s).", min=0.1),
    ] = None,
) -> None:
    """Serve the library's tools to any MCP client; every call runs in the sandbox."""
    import anyio

    from agent import mcp_server, mcp_transport
    from memory.errors import LibraryError
    from memory.library import DB_FILE, Library
    from sandbox import get_sandbox

    settings = settings_of(ctx)
    if status not in mcp_server.STATUSES:
        raise LibraryError(f"unknown status {status!r}: use {', '.join(mcp_server.STATUSES)}")
    if not (settings.home / DB_FILE).is_file():
        raise LibraryError(
            f"no library at {settings.home}: check --home or $EVOAGENT_HOME, or create one "
            "with a task (`evoagent solve`) or `evoagent tools import DIR`"
        )
    sock = None
    if transport is Transport.http:
        if token is None and mcp_transport.needs_token(host):
            token = mcp_transport.new_token()
            typer.echo(f"bearer token (clients send 'Authorization: Bearer …'): {token}", err=True)
        sock = mcp_transport.bind(host, port)  # before the slow parts: a port in use says so now
    timeout_s = timeout or settings.sandbox.timeout_s
    with Library.open(settings.home, settings.memory, own_index=False) as library:
        sandbox = get_sandbox(settings.sandbox)
        try:
            server = mcp_server.LibraryMCP(library, sandbox, status=status, timeout_s=timeout_s)
            try:
                if sock is None:
                    anyio.run(mcp_transport.serve_stdio, server)
                else:

                    def ready(url: str) -> None:
                        typer.echo(f"evoagent MCP server on {url}", err=True)

                    anyio.run(
                        lambda: mcp_transport.serve_http(server, sock, token=token, ready=ready)
                    )
            finally:
                server.close()  # the usage records still queued
        finally:
            sandbox.close()
            if sock is not None:
                sock.close()
