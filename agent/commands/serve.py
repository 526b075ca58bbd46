"""`evoagent serve`: keep the model, the library and the sandbox open for `evoagent solve`.

See `agent/serve.py` for the protocol. The server prints one line per task on stderr and
stops on Ctrl-C / SIGTERM (after the task in flight) or after `--idle-timeout` seconds
without a task.
"""

from __future__ import annotations

import os
from typing import Annotated

import typer

from agent.commands.common import BaseUrlOpt, ModelOpt, SandboxOpt, apply_flags, settings_of


def serve_command(
    ctx: typer.Context,
    model: ModelOpt = None,
    base_url: BaseUrlOpt = None,
    sandbox: SandboxOpt = None,
    idle_timeout: Annotated[
        float,
        typer.Option(help="Stop after this many seconds without a task (0: never)."),
    ] = 0.0,
) -> None:
    """Serve `evoagent solve` for this home from one warm process (model loaded once)."""
    from rich.console import Console

    from agent.config import Settings
    from agent.deps import AgentDeps
    from agent.serve import Server, install_signal_handlers

    settings: Settings = settings_of(ctx)
    settings = apply_flags(
        settings, model=model, base_url=base_url, feedback=None, sandbox=sandbox, learn=True
    )
    if idle_timeout < 0:
        raise typer.BadParameter("must be 0 (never) or more seconds", param_hint="--idle-timeout")
    console = Console(stderr=True, highlight=False, soft_wrap=True)
    with AgentDeps.from_settings(settings) as deps:
        server = Server(
            settings,
            deps,
            idle_timeout_s=idle_timeout,
            log=lambda message: console.print(f"[dim]serve[/] {message}", markup=True),
        )
        server.bind()
        install_signal_handlers(server)
        console.print(
            f"[cyan]serve[/] {settings.model or 'local'} for {settings.home} on {server.path} "
            f"(pid {os.getpid()}); `evoagent solve` in this home now runs here"
        )
        server.serve_forever()
    console.print(f"[cyan]serve[/] stopped after {server.served} task(s)")
