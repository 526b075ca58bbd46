"""What every command shares: its `Settings`, the library, and how it prints.

The root callback (`agent/cli.py`) puts the `Settings` on the Typer context; a sub-app
invoked on its own (tests, `typer.testing`) gets the same defaults from the environment
and the home. Heavy libraries (rich, chromadb, torch) load inside the functions.
"""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

from agent.terminal import cell, clean

if TYPE_CHECKING:
    from agent.config import Settings
    from memory.library import Library
    from memory.types import Change


def option(help: str, *names: str, advanced: bool = False, shown: bool = True) -> Any:
    """A command-line option in one line: its help, its names (default: from the
    parameter), in the Advanced panel when `advanced`, its default shown unless `shown`
    is False."""
    return typer.Option(
        *names, help=help, rich_help_panel="Advanced" if advanced else None, show_default=shown
    )


JsonOpt = Annotated[bool, option("Print JSON instead of a table.", "--json")]
McpOpt = Annotated[
    list[str] | None,
    option(
        "Also offer the tools of this MCP server: a stdio command line "
        "('evoagent --home ~/lib tools serve') or an http URL on this machine. Repeatable.",
        "--mcp",
        shown=False,
    ),
]
RayOpt = Annotated[
    str | None,
    typer.Option(
        "--ray",
        metavar="ADDRESS",
        help="Solve the tasks on a Ray cluster: auto (the one running here), local "
        "(a private one for this run) or HOST:PORT; --workers = tasks in flight. "
        "Needs `pip install 'evoagent[ray]'`.",
        show_default=False,
    ),
]
ExecutorOpt = Annotated[
    str | None, option("threads or ray (ray: the same as --ray auto).", advanced=True, shown=False)
]
ModelOpt = Annotated[
    str | None,
    option(
        "local, local:NAME, provider:model, scripted:PATH or replay:PATH (default: "
        "settings; `evoagent models list` shows the kinds).",
        shown=False,
    ),
]
BaseUrlOpt = Annotated[
    str | None, option("Base URL of an OpenAI-compatible server.", advanced=True, shown=False)
]
SandboxOpt = Annotated[
    str | None,
    option(
        "Sandbox backend: docker, local (NOT isolation) or one a package registers.",
        advanced=True,
        shown=False,
    ),
]
FeedbackOpt = Annotated[
    str | None,
    option(
        "labels: the task's label decides; none: an independent route must agree "
        "(labels only score) (default: settings, else none).",
        shown=False,
    ),
]
NoLearnOpt = Annotated[
    bool,
    option(
        "Leave the library as it is: store only the episodes (the frozen baseline).", "--no-learn"
    ),
]
DryRunOpt = Annotated[bool, option("Print what would change; change nothing.", "--dry-run")]


def settings_of(ctx: typer.Context) -> Settings:
    """The command's settings: the root callback's, else loaded once and kept on `ctx`."""
    from agent.config import Settings, load_settings

    if not isinstance(ctx.obj, Settings):
        ctx.obj = load_settings()
    return ctx.obj


def apply_flags(
    settings: Settings,
    *,
    model: str | None = None,
    base_url: str | None = None,
    feedback: str | None = None,
    sandbox: str | None = None,
    learn: bool = True,
) -> Settings:
    """`settings` with the command line's explicit flags on top (None: not given)."""
    from agent.errors import AgentError

    top = {k: v for k, v in (("model", model), ("base_url", base_url)) if v is not None}
    agent = settings.agent.model_copy(update={"learn": settings.agent.learn and learn})
    if feedback is not None:
        if feedback not in ("labels", "none"):
            raise AgentError(f"--feedback must be 'labels' or 'none', not {feedback!r}")
        agent = agent.model_copy(update={"feedback": feedback})
    box = settings.sandbox
    if sandbox is not None:
        from sandbox.registry import registered

        known = registered().kinds
        if sandbox not in known:
            raise AgentError(f"--sandbox must be one of {', '.join(known)}, not {sandbox!r}")
        box = box.model_copy(update={"backend": sandbox})
    return settings.model_copy(update={**top, "agent": agent, "sandbox": box})


def with_mcp(settings: Settings, specs: list[str] | None) -> Settings:
    """`settings` with the command line's --mcp servers added (not saved with a run)."""
    return settings.model_copy(update={"mcp": [*settings.mcp, *specs]}) if specs else settings


def ray_address(ray: str | None, executor: str | None) -> str | None:
    """The Ray cluster `--ray`/`--executor` name (None: threads); checked, Ray importable."""
    from agent.stream.errors import StreamError

    if executor is not None and executor not in ("threads", "ray"):
        raise StreamError(f"--executor must be threads or ray, not {executor!r}")
    if executor == "threads" and ray is not None:
        raise StreamError("--ray runs on Ray: drop --executor threads (or --ray)")
    if executor == "ray" and ray is None:
        ray = "auto"
    if ray is not None:
        from agent.stream.ray_exec import import_ray

        import_ray()  # not installed: one line saying how, before the stream is read
    return ray


def open_library(ctx: typer.Context, *, own_index: bool = False) -> Library:
    """The library of the command's home, as a guest unless `own_index` (see memory)."""
    from memory.library import Library

    settings = settings_of(ctx)
    return Library.open(settings.home, settings.memory, own_index=own_index)


def console() -> Any:
    from rich.console import Console

    return Console(highlight=False)


def print_json(data: object) -> None:
    typer.echo(json.dumps(data, indent=2, default=_jsonable, ensure_ascii=False))


def _jsonable(value: object) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return str(value)


def when(ts: float | None) -> str:
    """A timestamp as local 'YYYY-MM-DD HH:MM', or '-'."""
    if ts is None:
        return "-"
    import datetime as dt

    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M")


#: the narrowest the last (free text) column of a table may get before columns are dropped
MIN_LAST_COLUMN = 24


def table(
    title: str, columns: list[str], rows: list[list[Any]], *, optional: list[str] | None = None
) -> None:
    """Rows as a table; every cell made inert (no markup, no control characters). The
    table fits the terminal: the `optional` columns are dropped, in order, while the last
    (free text) column would get fewer than MIN_LAST_COLUMN characters, and then the last
    column itself, rather than wrapped to a character per line."""
    from rich import box
    from rich.table import Table

    con = console()
    cells = [[cell(c) for c in row] for row in rows]
    keep = list(range(len(columns)))

    def room() -> int:
        widths = [max([len(columns[i]), *(len(r[i]) for r in cells)]) for i in keep[:-1]]
        return con.width - sum(widths) - 2 * len(widths)

    for name in optional or []:
        if room() >= MIN_LAST_COLUMN or name not in columns:
            break
        keep.remove(columns.index(name))
    if optional is not None and room() < MIN_LAST_COLUMN and len(keep) > 1:
        keep.pop()  # the free text goes; names and ids stay whole and copyable
    # No vertical rules: a listing of many columns must still fit an 80-column terminal.
    out = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False)
    for n, i in enumerate(keep):
        # Names and ids must stay copyable; the last (free text) column takes the squeeze.
        last = n == len(keep) - 1
        out.add_column(columns[i], no_wrap=not last, overflow="fold" if last else "ellipsis")
    for row in cells:
        out.add_row(*[row[i] for i in keep])
    con.print(out)


def print_changes(changes: list[Change], dry_run: bool, as_json: bool) -> None:
    """What an upkeep command did (or would do, with --dry-run)."""
    if as_json:
        print_json({"dry_run": dry_run, "changes": changes})
        return
    if not changes:
        typer.echo("nothing to change")
        return
    verb = "would" if dry_run else "did"
    for ch in changes:
        into = f" into {ch.into}" if ch.into else ""
        typer.echo(clean(f"{verb} {ch.action} {ch.kind} {ch.ref}{into}: {ch.reason}"))


#: where a command serves HTTP (`tools serve --transport http`, `ui`)
HostOpt = Annotated[
    str, option("HTTP address; any but 127.0.0.1, ::1 or localhost requires a token.")
]
PortOpt = Annotated[int, option("HTTP port (0: a free one, printed).")]
