"""`evoagent tools ...` and `evoagent memory ...`: browse, search and prune the library.

Commands open the library as a guest (`own_index=False`): a task stream running on the
same home keeps its Chroma index, and this process ranks from the embeddings cached in
SQL. Only `memory reindex` needs the index itself. Heavy imports stay inside commands.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from memory.errors import LibraryError
from memory.terminal import cell, clean, literal

if TYPE_CHECKING:
    from memory.library import Library
    from memory.types import Change

tools_app = typer.Typer(help="Browse, search and prune the tool library.", no_args_is_help=True)
memory_app = typer.Typer(help="Tips, failures and the library's upkeep.", no_args_is_help=True)
tips_app = typer.Typer(help="Tips distilled from solved tasks.", no_args_is_help=True)
failures_app = typer.Typer(
    help="Failures and their lessons, clustered by signature.", no_args_is_help=True
)
memory_app.add_typer(tips_app, name="tips")
memory_app.add_typer(failures_app, name="failures")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
DryRunOpt = Annotated[
    bool, typer.Option("--dry-run", help="Print what would change; change nothing.")
]


def _settings(ctx: typer.Context) -> Any:
    obj = ctx.obj
    if obj is None:  # the sub-app run on its own (tests): settings from env and home
        from agent.config import load_settings

        obj = ctx.obj = load_settings()
    return obj


def open_library(ctx: typer.Context, *, own_index: bool = False) -> Library:
    from memory.library import Library

    settings = _settings(ctx)
    return Library.open(settings.home, settings.memory, own_index=own_index)


def _console() -> Any:
    from rich.console import Console

    return Console()


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=_jsonable, ensure_ascii=False))


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return str(value)


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    import datetime as dt

    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M")


def _table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    from rich import box
    from rich.table import Table

    # No vertical rules: a listing of many columns must still fit an 80-column terminal.
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False)
    for i, col in enumerate(columns):
        # Names and ids must stay copyable; the last (free text) column takes the squeeze.
        last = i == len(columns) - 1
        table.add_column(col, no_wrap=not last, overflow="fold" if last else "ellipsis")
    for row in rows:
        table.add_row(*[cell(c) for c in row])
    _console().print(table)


def _print_changes(changes: list[Change], dry_run: bool, as_json: bool) -> None:
    if as_json:
        _print_json({"dry_run": dry_run, "changes": changes})
        return
    if not changes:
        typer.echo("nothing to change")
        return
    verb = "would" if dry_run else "did"
    for ch in changes:
        into = f" into {ch.into}" if ch.into else ""
        typer.echo(clean(f"{verb} {ch.action} {ch.kind} {ch.ref}{into}: {ch.reason}"))


# ------------------------------------------------------------------ tools


@tools_app.command("list")
def tools_list(
    ctx: typer.Context,
    status: Annotated[str, typer.Option(help="active, quarantined, archived or all.")] = "active",
    sort: Annotated[str, typer.Option(help="uses, success or recent.")] = "uses",
    as_json: JsonOpt = False,
) -> None:
    """List tools with their usage statistics."""
    if sort not in ("uses", "success", "recent"):
        raise LibraryError(f"unknown sort {sort!r}: use uses, success or recent")
    with open_library(ctx) as lib:
        tools = lib.list_tools(status)
    keys = {
        "uses": lambda t: (-t.total_uses, t.name),
        "success": lambda t: (-t.reliability, t.name),
        "recent": lambda t: (-(t.last_used_at or t.created_at), t.name),
    }
    tools.sort(key=keys[sort])
    if as_json:
        _print_json(
            [
                {k: v for k, v in dataclasses.asdict(t).items() if k not in ("source", "tests")}
                for t in tools
            ]
        )
        return
    # One status per listing unless --status all: the title names it, the column would not.
    show_status = status == "all"
    columns = [
        "name",
        "v",
        *(["status"] if show_status else []),
        "uses (ok/fail)",
        "reliab.",
        "last used",
        "summary",
    ]
    _table(
        f"tools ({status})",
        columns,
        [
            [
                t.name,
                t.version,
                *([t.status] if show_status else []),
                f"{t.total_uses} ({t.n_success}/{t.n_fail})",
                f"{t.reliability:.2f}",
                _when(t.last_used_at),
                t.docstring.strip().splitlines()[0][:60] if t.docstring.strip() else "",
            ]
            for t in tools
        ],
    )


@tools_app.command("show")
def tools_show(
    ctx: typer.Context,
    name: str,
    version: Annotated[int | None, typer.Option(help="A past version (default: current).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Show a tool: highlighted source, tests, usage, provenance and history."""
    with open_library(ctx) as lib:
        lib._require(name)
        info = lib.get_tool(name, version)
        if info is None:
            versions = [v.version for v in lib.tool_versions(name)]
            raise LibraryError(f"tool {name!r} has no version {version}: it has {versions}")
        history = lib.tool_history(name)
        tasks = lib.tool_tasks(name)
        failures = lib.tool_failures(name)
    if as_json:
        _print_json({"tool": info, "history": history, "tasks": tasks, "open_failures": failures})
        return
    from rich.panel import Panel
    from rich.syntax import Syntax

    con = _console()
    con.print(
        f"[bold]{literal(info.name)}[/bold] v{info.version} (current v{info.current_version}) "
        f"[{'green' if info.status == 'active' else 'yellow'}]{info.status}[/]"
        + (f" - {literal(info.status_reason)}" if info.status_reason else "")
    )
    con.print(
        f"uses {info.n_uses} (ok {info.n_success}, failed {info.n_fail}) this version, "
        f"{info.total_uses} in all; reliability {info.reliability:.2f}; last used {_when(info.last_used_at)}"
    )
    con.print(Panel(Syntax(clean(info.source), "python", line_numbers=True), title="source"))
    con.print(Panel(Syntax(clean(info.tests) or "# no tests", "python"), title="tests"))
    for p in info.provenance:
        con.print(
            f"provenance: task {literal(p.task_id or '-')} episode {literal(p.episode_id or '-')} "
            f"parent v{p.parent_version or '-'}: {literal(p.task, 100)}"
        )
    if tasks:
        con.print(f"solved {len(tasks)} task(s), e.g.: {literal(tasks[0], 100)}")
    if failures:
        con.print(
            f"[red]{len(failures)} failed use(s) of this version[/red], last: "
            f"{literal(failures[-1].error_type)}: {literal(failures[-1].error_message, 300)}"
        )
    for ev in history:
        con.print(f"  {_when(ev.at)}  {ev.kind:<11} v{ev.version or '-'}  {literal(ev.detail)}")


@tools_app.command("search")
def tools_search(
    ctx: typer.Context,
    query: str,
    k: Annotated[int, typer.Option("-k", help="How many hits.")] = 5,
    as_json: JsonOpt = False,
) -> None:
    """Search active tools as the agent does (similarity, reliability, recency)."""
    with open_library(ctx) as lib:
        hits = lib.search_tools(query, k=k)
    if as_json:
        _print_json(
            [
                {
                    "name": h.tool.name,
                    "version": h.tool.version,
                    "score": h.score,
                    "similarity": h.similarity,
                    "view": h.view,
                    "docstring": h.tool.docstring,
                }
                for h in hits
            ]
        )
        return
    _table(
        f"tools for {query[:50]!r}",
        ["name", "score", "similarity", "view", "docstring"],
        [
            [
                h.tool.name,
                f"{h.score:.3f}",
                f"{h.similarity:.3f}",
                h.view,
                h.tool.docstring.strip().splitlines()[0][:60] if h.tool.docstring.strip() else "",
            ]
            for h in hits
        ],
    )


@tools_app.command("diff")
def tools_diff(ctx: typer.Context, name: str, v1: int, v2: int) -> None:
    """Show the differences between two versions of a tool (source and tests)."""
    with open_library(ctx) as lib:
        lib._require(name)
        a, b = lib.get_tool(name, v1), lib.get_tool(name, v2)
        versions = [v.version for v in lib.tool_versions(name)]
    for num, info in ((v1, a), (v2, b)):
        if info is None:
            raise LibraryError(f"tool {name!r} has no version {num}: it has {versions}")
    assert a is not None and b is not None
    out: list[str] = []
    for part in ("source", "tests"):
        out += difflib.unified_diff(
            getattr(a, part).splitlines(keepends=True),
            getattr(b, part).splitlines(keepends=True),
            fromfile=f"{name} v{v1} {part}",
            tofile=f"{name} v{v2} {part}",
        )
    if not out:
        typer.echo(f"v{v1} and v{v2} are identical")
        return
    from rich.syntax import Syntax

    _console().print(Syntax(clean("".join(out)), "diff"))


@tools_app.command("quarantine")
def tools_quarantine(
    ctx: typer.Context,
    name: str,
    reason: Annotated[str, typer.Option(help="Why (kept in the history).")] = "quarantined by hand",
) -> None:
    """Take a tool out of retrieval (reversible with `tools restore`)."""
    with open_library(ctx) as lib:
        info = lib.set_status(name, "quarantined", reason)
    typer.echo(clean(f"{info.name} is quarantined"))


@tools_app.command("restore")
def tools_restore(ctx: typer.Context, name: str) -> None:
    """Bring a quarantined or archived tool back to active."""
    with open_library(ctx) as lib:
        info = lib.restore(name, "restored by hand")
    typer.echo(clean(f"{info.name} is active again (v{info.version})"))


@tools_app.command("prune")
def tools_prune(
    ctx: typer.Context,
    dry_run: DryRunOpt = False,
    min_uses: Annotated[
        int | None,
        typer.Option(help="Uses before the failure rate counts.", rich_help_panel="Thresholds"),
    ] = None,
    max_fail_rate: Annotated[
        float | None,
        typer.Option(help="Failure rate that quarantines.", rich_help_panel="Thresholds"),
    ] = None,
    grace: Annotated[
        int | None,
        typer.Option(
            help="Episodes a tool gets before it can be archived.", rich_help_panel="Thresholds"
        ),
    ] = None,
    log_scale: Annotated[
        float | None,
        typer.Option(
            help="Archive below scale*log10(episodes since added) uses.",
            rich_help_panel="Thresholds",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Quarantine unreliable tools and archive rarely used ones (reversible)."""
    with open_library(ctx) as lib:
        changes = lib.prune(
            dry_run,
            min_uses=min_uses,
            max_fail_rate=max_fail_rate,
            grace_episodes=grace,
            log_scale=log_scale,
        )
    _print_changes(changes, dry_run, as_json)


@tools_app.command("export")
def tools_export(
    ctx: typer.Context,
    directory: Path,
    status: Annotated[
        str, typer.Option(help="Which tools: active, quarantined, archived or all.")
    ] = "active",
    replace: Annotated[
        bool, typer.Option("--replace", help="Replace a non-empty folder whole.")
    ] = False,
) -> None:
    """Write one NAME.py and test_NAME.py per tool, plus tools.json (provenance, tasks).

    The folder must be new or empty: with --replace, an existing folder is replaced
    whole (no stale NAME.py of an earlier export is left beside the new ones)."""
    import shutil
    import tempfile

    if directory.exists() and not directory.is_dir():
        raise LibraryError(f"{directory} is a file: give a folder to export to")
    if directory.is_dir() and any(directory.iterdir()) and not replace:
        raise LibraryError(
            f"{directory} is not empty: export into a new folder, or pass --replace to "
            "replace it whole"
        )
    with open_library(ctx) as lib:
        tools = lib.list_tools(status)
        manifest = {
            t.name: {
                "version": t.version,
                "status": t.status,
                "signature": t.signature,
                "docstring": t.docstring,
                "provenance": [dataclasses.asdict(p) for p in t.provenance],
                "tasks": lib.tool_tasks(t.name),
            }
            for t in tools
        }
    try:
        directory.parent.mkdir(parents=True, exist_ok=True)
        # Written beside it, then swapped in: a reader never sees a half-written bundle.
        staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
        for t in tools:
            (staging / f"{t.name}.py").write_text(t.source, encoding="utf-8")
            (staging / f"test_{t.name}.py").write_text(t.tests, encoding="utf-8")
        (staging / "tools.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        staging.chmod(0o755)
        if directory.exists():
            old = directory.with_name(f".{directory.name}.old-{staging.name[-8:]}")
            directory.rename(old)
            staging.rename(directory)
            shutil.rmtree(old, ignore_errors=True)
        else:
            staging.rename(directory)
    except OSError as exc:
        raise LibraryError(
            f"cannot write the export to {directory} ({exc.strerror or exc}): "
            "give a folder you can write to"
        ) from exc
    typer.echo(clean(f"exported {len(tools)} tool(s) to {directory}"))


@tools_app.command("path")
def tools_path(ctx: typer.Context) -> None:
    """Print the path of the library database."""
    from memory.library import DB_FILE

    typer.echo(str(Path(_settings(ctx).home) / DB_FILE))


# ------------------------------------------------------------------ tips and failures


def _check_status(status: str, allowed: tuple[str, ...]) -> None:
    # An unknown status would match no row: an empty table that looks like an empty library.
    if status not in allowed:
        raise LibraryError(
            f"unknown status {status!r}: use one of {', '.join(allowed[:-1])} or {allowed[-1]}"
        )


def _tips_rows(tips: list[Any]) -> list[list[Any]]:
    return [[t.id, t.status, t.support, f"{t.n_helped}/{t.n_shown}", t.text[:80]] for t in tips]


@tips_app.command("list")
def tips_list(
    ctx: typer.Context,
    status: Annotated[str, typer.Option(help="active, merged, archived or all.")] = "active",
    as_json: JsonOpt = False,
) -> None:
    """List tips."""
    _check_status(status, ("active", "merged", "archived", "all"))
    with open_library(ctx) as lib:
        tips = lib.list_tips(status)
    if as_json:
        _print_json(tips)
        return
    _table(f"tips ({status})", ["id", "status", "support", "helped", "text"], _tips_rows(tips))


@tips_app.command("search")
def tips_search(
    ctx: typer.Context,
    query: str,
    k: Annotated[int, typer.Option("-k")] = 3,
    as_json: JsonOpt = False,
) -> None:
    """Search tips as the agent does."""
    with open_library(ctx) as lib:
        hits = lib.search_tips(query, k=k)
    if as_json:
        _print_json(hits)
        return
    _table(
        f"tips for {query[:50]!r}",
        ["id", "score", "support", "text"],
        [[h.tip.id, f"{h.score:.3f}", h.tip.support, h.tip.text[:80]] for h in hits],
    )


@tips_app.command("restore")
def tips_restore(ctx: typer.Context, tip_id: str) -> None:
    """Undo a merge or archive of a tip."""
    with open_library(ctx) as lib:
        lib.restore_tip(tip_id)
    typer.echo(f"tip {tip_id} is active again")


@failures_app.command("list")
def failures_list(
    ctx: typer.Context,
    status: Annotated[str, typer.Option(help="active, merged or all.")] = "active",
    as_json: JsonOpt = False,
) -> None:
    """List failure clusters (one row per signature; count = failures in it)."""
    _check_status(status, ("active", "merged", "all"))
    with open_library(ctx) as lib:
        failures = lib.list_failures(status)
    if as_json:
        _print_json(failures)
        return
    _table(
        f"failures ({status})",
        ["id", "count", "error", "tool", "lesson"],
        [
            [f.id, f.count, f"{f.error_type}: {f.message[:40]}", f.tool or "-", f.lesson[:60]]
            for f in failures
        ],
    )


@failures_app.command("search")
def failures_search(
    ctx: typer.Context,
    query: str,
    k: Annotated[int, typer.Option("-k")] = 3,
    as_json: JsonOpt = False,
) -> None:
    """Search failures as the agent does."""
    with open_library(ctx) as lib:
        hits = lib.search_failures(query, k=k)
    if as_json:
        _print_json(hits)
        return
    _table(
        f"failures for {query[:50]!r}",
        ["id", "score", "count", "error", "lesson"],
        [
            [
                h.failure.id,
                f"{h.score:.3f}",
                h.failure.count,
                f"{h.failure.error_type}: {h.failure.message[:40]}",
                h.failure.lesson[:60],
            ]
            for h in hits
        ],
    )


@failures_app.command("restore")
def failures_restore(ctx: typer.Context, failure_id: str) -> None:
    """Undo the merge of a failure into its cluster."""
    with open_library(ctx) as lib:
        lib.restore_failure(failure_id)
    typer.echo(f"failure {failure_id} is active again")


# ------------------------------------------------------------------ upkeep


@memory_app.command("consolidate")
def memory_consolidate(
    ctx: typer.Context, dry_run: DryRunOpt = False, as_json: JsonOpt = False
) -> None:
    """Merge near-duplicate tips and same-signature failures; archive unhelpful tips."""
    with open_library(ctx) as lib:
        changes = lib.consolidate(dry_run)
    _print_changes(changes, dry_run, as_json)


@memory_app.command("reindex")
def memory_reindex(ctx: typer.Context) -> None:
    """Rebuild the vector index under chroma/ from the SQL records."""
    with open_library(ctx, own_index=True) as lib:
        counts = lib.reindex()
    typer.echo("reindexed: " + ", ".join(f"{n} {kind}" for kind, n in counts.items()))


@memory_app.command("stats")
def memory_stats(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Counts of tools, tips, failures, episodes and runs."""
    with open_library(ctx) as lib:
        stats = lib.stats()
    if as_json:
        _print_json(stats)
        return
    for key, value in stats.items():
        typer.echo(clean(f"{key}: {value}"))


@memory_app.command("gc")
def memory_gc(
    ctx: typer.Context,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only say what would go.")] = False,
    vacuum: Annotated[
        bool, typer.Option("--vacuum", help="Also compact library.db on disk (slower).")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Drop what nothing reads any more: old per-call usage records, old rejected
    candidates, old change-log entries, unreferenced cached embeddings (retention:
    memory.gc_* settings). Tools, tips, failures and episodes are never deleted."""
    with open_library(ctx) as lib:
        counts = lib.gc(dry_run=dry_run, vacuum=vacuum and not dry_run)
    if as_json:
        _print_json({"dry_run": dry_run, "removed" if not dry_run else "would_remove": counts})
        return
    verb = "would remove" if dry_run else "removed"
    typer.echo(
        f"{verb}: " + ", ".join(f"{n} {kind.replace('_', ' ')}" for kind, n in counts.items())
    )


@memory_app.command("path")
def memory_path(ctx: typer.Context) -> None:
    """Print the data home (library.db, chroma/, checkpoints.db, runs/)."""
    typer.echo(str(_settings(ctx).home))
