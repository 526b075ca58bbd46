"""`evoagent memory ...`: tips, failures and the library's upkeep.

Like `evoagent tools`, commands open the library as a guest; only `memory reindex`
needs the Chroma index itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import typer

from agent.commands.common import (
    DryRunOpt,
    JsonOpt,
    open_library,
    option,
    print_changes,
    print_json,
    settings_of,
    table,
)
from agent.terminal import clean
from memory.errors import LibraryError

if TYPE_CHECKING:
    from memory.library import Library

memory_app = typer.Typer(help="Tips, failures and the library's upkeep.", no_args_is_help=True)

StatusOpt = Annotated[str, option("active, merged, archived (tips only) or all.")]
KOpt = Annotated[int, option("How many to show.", "-k")]


@dataclass(frozen=True)
class NoteKind:
    """What differs between tips and failures on the command line: their statuses, how
    the library lists, searches and restores them, and their table rows."""

    name: str
    help: str
    list_help: str
    statuses: tuple[str, ...]
    columns: list[str]
    row: Callable[[Any], list[object]]
    hit_columns: list[str]
    hit_row: Callable[[Any], list[object]]
    listed: Callable[[Library, str], list[Any]]
    searched: Callable[[Library, str, int], list[Any]]
    restored: Callable[[Library, str], object]
    restore_help: str


def notes_app(kind: NoteKind) -> typer.Typer:
    """The `memory tips|failures` sub-app: list, search (as the agent does), restore."""
    app = typer.Typer(help=kind.help, no_args_is_help=True)

    def listing(ctx: typer.Context, status: StatusOpt = "active", as_json: JsonOpt = False) -> None:
        if status not in kind.statuses:
            # An unknown status would match no row: an empty table that looks like an
            # empty library.
            raise LibraryError(
                f"unknown status {status!r}: use one of {', '.join(kind.statuses[:-1])} "
                f"or {kind.statuses[-1]}"
            )
        with open_library(ctx) as lib:
            notes = kind.listed(lib, status)
        if as_json:
            print_json(notes)
            return
        table(f"{kind.name}s ({status})", kind.columns, [kind.row(n) for n in notes])

    def search(ctx: typer.Context, query: str, k: KOpt = 3, as_json: JsonOpt = False) -> None:
        with open_library(ctx) as lib:
            hits = kind.searched(lib, query, k)
        if as_json:
            print_json(hits)
            return
        table(f"{kind.name}s for {query[:50]!r}", kind.hit_columns, [kind.hit_row(h) for h in hits])

    def restore(ctx: typer.Context, note_id: str) -> None:
        with open_library(ctx) as lib:
            kind.restored(lib, note_id)
        typer.echo(f"{kind.name} {note_id} is active again")

    app.command("list", help=kind.list_help)(listing)
    app.command("search", help=f"Search {kind.name}s as the agent does.")(search)
    app.command("restore", help=kind.restore_help)(restore)
    return app


TIPS = NoteKind(
    name="tip",
    help="Tips distilled from solved tasks.",
    list_help="List tips.",
    statuses=("active", "merged", "archived", "all"),
    columns=["id", "status", "support", "helped", "text"],
    row=lambda t: [t.id, t.status, t.support, f"{t.n_helped}/{t.n_shown}", t.text[:80]],
    hit_columns=["id", "score", "support", "text"],
    hit_row=lambda h: [h.tip.id, f"{h.score:.3f}", h.tip.support, h.tip.text[:80]],
    listed=lambda lib, status: lib.list_tips(status),
    searched=lambda lib, query, k: lib.search_tips(query, k=k),
    restored=lambda lib, note_id: lib.restore_tip(note_id),
    restore_help="Undo a merge or archive of a tip.",
)
FAILURES = NoteKind(
    name="failure",
    help="Failures and their lessons, clustered by signature.",
    list_help="List failure clusters (one row per signature; count = failures in it).",
    statuses=("active", "merged", "all"),
    columns=["id", "count", "error", "tool", "lesson"],
    row=lambda f: [
        f.id,
        f.count,
        f"{f.error_type}: {f.message[:40]}",
        f.tool or "-",
        f.lesson[:60],
    ],
    hit_columns=["id", "score", "count", "error", "lesson"],
    hit_row=lambda h: [
        h.failure.id,
        f"{h.score:.3f}",
        h.failure.count,
        f"{h.failure.error_type}: {h.failure.message[:40]}",
        h.failure.lesson[:60],
    ],
    listed=lambda lib, status: lib.list_failures(status),
    searched=lambda lib, query, k: lib.search_failures(query, k=k),
    restored=lambda lib, note_id: lib.restore_failure(note_id),
    restore_help="Undo the merge of a failure into its cluster.",
)
memory_app.add_typer(notes_app(TIPS), name="tips")
memory_app.add_typer(notes_app(FAILURES), name="failures")


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
