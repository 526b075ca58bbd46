"""`evoagent`: the one command line; its commands live in agent/commands/.

Sub-apps and commands import their heavy libraries (torch, chromadb, docker,
langgraph) inside the command body, so `evoagent --help` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from agent.commands.memory import memory_app
from agent.commands.models import models_app
from agent.commands.run import run_command
from agent.commands.runs import report_command, runs_app
from agent.commands.sandbox import app as sandbox_app
from agent.commands.serve import serve_command
from agent.commands.solve import solve_command
from agent.commands.tools import tools_app
from agent.commands.ui import ui_command
from agent.config import load_settings
from agent.doctor import doctor_command
from agent.errors import USER_ERRORS, ConfigError
from agent.terminal import clean


def fail(message: str) -> typer.Exit:
    """Print a person's mistake as one line on stderr; return the Exit to raise."""
    typer.secho(f"Error: {clean(message)}", err=True, fg=typer.colors.RED)
    return typer.Exit(1)


class _Group(TyperGroup):
    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except USER_ERRORS as exc:
            raise fail(str(exc)) from exc


app = typer.Typer(
    cls=_Group,
    name="evoagent",
    help="A self-evolving agent with a persistent, tested tool library.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


@app.callback()
def main(
    ctx: typer.Context,
    home: Annotated[
        Path | None,
        typer.Option(
            help="Data home (default: $EVOAGENT_HOME or ~/.evoagent).", show_default=False
        ),
    ] = None,
    config: Annotated[
        list[str] | None,
        typer.Option(
            "-c",
            "--config",
            help="Override a setting: -c sandbox.timeout_s=5",
            rich_help_panel="Advanced",
        ),
    ] = None,
) -> None:
    """Solve tasks, evolve a tool library, and browse or prune it."""
    try:
        ctx.obj = load_settings(home=home, overrides=config or [])
    except ConfigError as exc:
        raise fail(str(exc)) from exc


app.add_typer(sandbox_app, name="sandbox")
app.add_typer(tools_app, name="tools")
app.add_typer(memory_app, name="memory")
app.command("solve")(solve_command)
app.command("serve")(serve_command)
app.command("run")(run_command)
app.add_typer(runs_app, name="runs")
app.command("report")(report_command)
app.command("doctor")(doctor_command)
app.command("ui")(ui_command)
app.add_typer(models_app, name="models")
