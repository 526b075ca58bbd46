"""`evoagent memory ...`: tips, failures and the library's upkeep.

Like `evoagent tools`, commands open the library as a guest; only `memory reindex`
needs the Chroma index itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from agent.commands.common import (
    DryRunOpt,
    JsonOpt,
    open_library,
    print_changes,
    print_json,
    settings_of,
    table,
)
from agent.terminal import clean
from memory.errors import LibraryError

if TYPE_CHECKING:
    from memory.types import TipInfo

memory_app = typer.Typer(help="Tips, failures and the library's upkeep.", no_args_is_help=True)
tips_app = typer.Typer(help="Tips distilled from solved tasks.", no_args_is_help=True)
failures_app = typer.Typer(
    help="Failures and their lessons, clustered by signature.", no_args_is_help=True
)
memory_app.add_typer(tips_app, name="tips")
memory_app.add_typer(failures_app, name="failures")


def _check_status(status: str, allowed: tuple[str, ...]) -> None:
    # An unknown status would match no row: an empty table that looks like an empty library.
    if status not in allowed:
        raise LibraryError(
            f"unknown status {status!r}: use one of {', '.join(allowed[:-1])} or {allowed[-1]}"
        )


def _tips_rows(tips: list[TipInfo]) -> list[list[object]]:
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
        print_json(tips)
        return
    table(f"tips ({status})", ["id", "status", "support", "helped", "text"], _tips_rows(tips))


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
        print_json(hits)
        return
    table(
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
        print_json(failures)
        return
    table(
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
        print_json(hits)
        return
    table(
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


@memory_app.command("consolidate")
def memory_consolidate(
    ctx: typer.Context, dry_run: DryRunOpt = False, as_json: JsonOpt = False
) -> None:
    """Merge near-duplicate tips and same-signature failures; archive unhelpful tips."""
    with open_library(ctx) as lib:
        changes = lib.consolidate(dry_run)
    print_changes(changes, dry_run, as_json)


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
        print_json(stats)
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
        print_json({"dry_run": dry_run, "removed" if not dry_run else "would_remove": counts})
        return
    verb = "would remove" if dry_run else "removed"
    typer.echo(
        f"{verb}: " + ", ".join(f"{n} {kind.replace('_', ' ')}" for kind, n in counts.items())
    )


@memory_app.command("path")
def memory_path(ctx: typer.Context) -> None:
    """Print the data home (library.db, chroma/, checkpoints.db, runs/)."""
    typer.echo(str(settings_of(ctx).home))
