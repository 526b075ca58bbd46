"""`evoagent ui`: the library, its curation and the runs of a home in a browser
(agent/ui/). Binds 127.0.0.1 by default; any other address needs the access token
(generated and printed when not given)."""

from __future__ import annotations

from typing import Annotated

import typer

from agent.commands.common import HostOpt, PortOpt, option, settings_of

UiTokenOpt = Annotated[
    str | None,
    typer.Option(
        envvar="EVOAGENT_UI_TOKEN",
        help="Access token browsers must bring (?token=…); generated when needed.",
        show_default=False,
    ),
]
OpenOpt = Annotated[bool, option("Open the page in the default browser.", "--open")]


def ui_command(
    ctx: typer.Context,
    host: HostOpt = "127.0.0.1",
    port: PortOpt = 8777,
    token: UiTokenOpt = None,
    open_browser: OpenOpt = False,
) -> None:
    """Browse, judge and prune the library, and follow runs, in a browser."""
    import uvicorn

    from agent import mcp_transport
    from agent.ui import create_app

    settings = settings_of(ctx)
    if token is None and mcp_transport.needs_token(host):
        token = mcp_transport.new_token()
    sock = mcp_transport.bind(host, port)  # a port in use says so before anything loads
    bound_host, bound_port = sock.getsockname()[:2]
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    url = f"http://{shown}:{bound_port}/" + (f"?token={token}" if token else "")
    typer.echo(f"evoagent ui for {settings.home} on {url} (Ctrl-C stops it)", err=True)
    if open_browser:
        import webbrowser

        webbrowser.open(url)
    hosts = None
    if not mcp_transport.needs_token(host):
        # On loopback only the names of this machine are answered (no DNS rebinding).
        hosts = ["127.0.0.1", "localhost", "::1", "[::1]"]
    app = create_app(settings, token=token, hosts=hosts)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
