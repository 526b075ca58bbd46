"""`evoagent runs list|show` and `evoagent report`: a home's task-stream runs, read back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from agent.commands.common import settings_of
from agent.stream.errors import StreamError
from agent.terminal import cell, literal

runs_app = typer.Typer(help="List and inspect task-stream runs.", no_args_is_help=True)


@runs_app.command("list")
def runs_list(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the runs in this home, oldest first."""
    from dataclasses import asdict

    from agent.stream.store import list_runs

    runs = list_runs(settings_of(ctx).home)
    if as_json:
        typer.echo(json.dumps([asdict(r) for r in runs], indent=2))
        return
    if not runs:
        typer.echo("no runs yet: start one with `evoagent run STREAM`")
        return
    table = Table("run", "status", "started", "done", "feedback", "learn", "model", "stream")
    for r in runs:
        table.add_row(
            cell(r.run_id),
            r.status,
            cell(r.started_at),
            f"{r.n_done}/{r.n_tasks}",
            cell(r.feedback),
            "yes" if r.learn else "no",
            cell(r.model or ""),
            cell(r.stream),
        )
    Console().print(table)


@runs_app.command("show")
def runs_show(
    ctx: typer.Context,
    run: Annotated[str, typer.Argument(help="The run id (see `evoagent runs list`).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    tasks: Annotated[bool, typer.Option("--tasks", help="Also list every finished task.")] = False,
) -> None:
    """Show a run's figures (and with --tasks, each task's result)."""
    from agent.stream import metrics
    from agent.stream.progress import families_table, summary_table
    from agent.stream.store import RunStore

    store = RunStore.open(settings_of(ctx).home, run)
    meta = store.meta()
    meta["status"] = store.info().status
    rows = store.results()
    summary = metrics.summarize(rows, store.batches(), meta, store.health())
    tools = store.tools()
    if as_json:
        out: dict[str, Any] = dict(summary)
        out["dir"] = str(store.dir)
        out["tools"] = tools
        if tasks:
            out["tasks"] = rows
        typer.echo(json.dumps(out, indent=2, default=str))
        return
    console = Console()
    console.print(summary_table(summary))
    if summary["families"]:
        console.print(families_table(summary))
    if tools:
        trust = Table(
            "tool", "status", "trust", "confirmed", "refuted", "uses", title="tools at the end"
        )
        for t in tools:
            trust.add_row(
                cell(t.get("name")),
                cell(t.get("status")),
                cell(t.get("trust", "-")),
                str(t.get("n_support", "-")),
                str(t.get("n_against", "-")),
                str(t.get("n_uses", "-")),
            )
        console.print(trust)
    if tasks:
        table = Table(
            "id", "status", "correct", "answer", "calls", "tokens", "tools used", "created"
        )
        for r in rows:
            table.add_row(
                cell(r["id"]),
                cell(r["status"]),
                str(r.get("correct")),
                cell(_short(r.get("answer"))),
                str(r.get("n_calls")),
                str(int(r.get("tokens_in") or 0) + int(r.get("tokens_out") or 0)),
                cell(", ".join(r.get("tools_used") or [])),
                cell(", ".join(r.get("tools_created") or [])),
            )
        console.print(table)
    console.print(f"folder: {literal(store.dir)}")


def report_command(
    ctx: typer.Context,
    run: Annotated[str, typer.Argument(help="The run id (see `evoagent runs list`).")],
    baseline: Annotated[
        str | None,
        typer.Option(
            help="A second run to show side by side (e.g. a --no-learn run).", show_default=False
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            help="The HTML file to write (default: runs/<id>/report.html).", show_default=False
        ),
    ] = None,
) -> None:
    """Write one self-contained HTML report of a run (charts also saved as PNG next to it)."""
    from agent.stream.report import write_report
    from agent.stream.store import RunStore

    home = settings_of(ctx).home
    store = RunStore.open(home, run)
    base = RunStore.open(home, baseline) if baseline else None
    if out is not None and out.suffix.lower() not in (".html", ".htm"):
        raise StreamError(f"--out {out}: give an .html file name")
    try:
        result = write_report(store, out, base)
    except OSError as exc:
        where = out if out is not None else store.dir / "report.html"
        raise StreamError(
            f"cannot write the report to {where} ({exc.strerror or exc}): "
            "give --out a file in a folder you can write to"
        ) from exc
    typer.echo(f"report: {result.html}")
    for chart in result.charts:
        typer.echo(f"chart: {chart}")


def _short(value: object, limit: int = 40) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
