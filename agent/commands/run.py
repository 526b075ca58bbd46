"""`evoagent run`, `evoagent runs list|show`, `evoagent report`: the task-stream commands.

Registered in `agent/cli.py`:

    app.command("run")(run_command)
    app.add_typer(runs_app, name="runs")
    app.command("report")(report_command)

Heavy imports (langgraph, chromadb, torch, docker) happen inside the runner, never here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, cast

import typer
from rich.console import Console
from rich.table import Table

from agent.commands.common import (
    ExecutorOpt,
    McpOpt,
    RayOpt,
    ray_address,
    settings_of,
    with_mcp,
)
from agent.stream.errors import StreamError
from agent.terminal import cell, literal
from agent.types import Feedback

ADVANCED = "Advanced"


def run_command(
    ctx: typer.Context,
    stream: Annotated[
        Path | None,
        typer.Argument(
            help="The tasks: a JSONL file, or BBH .json file(s) (a file or a folder).",
            show_default=False,
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            help="Tasks solved in parallel (threads, or Ray actors with --ray) [default: 1].",
            show_default=False,
        ),
    ] = None,
    batch: Annotated[
        int, typer.Option(help="Tasks per batch: a batch sees the library as it was at its start.")
    ] = 8,
    feedback: Annotated[
        str, typer.Option(help="none: labels only score the run; labels: the checker verifies.")
    ] = "none",
    no_learn: Annotated[
        bool,
        typer.Option(
            "--no-learn", help="Freeze the library: no tools, tips or failures (the baseline)."
        ),
    ] = False,
    consolidate_every: Annotated[
        int, typer.Option(help="Consolidate the library every K tasks (0: never).")
    ] = 50,
    model: Annotated[
        str | None,
        typer.Option(
            help="provider:model, scripted:PATH or replay:PATH (a resumed run keeps its own).",
            show_default=False,
        ),
    ] = None,
    resume: Annotated[
        str | None,
        typer.Option(
            help="Continue run RUN where it stopped (same stream, options and model).",
            show_default=False,
        ),
    ] = None,
    run_id: Annotated[
        str | None,
        typer.Option(help="Name of the new run (default: a timestamp).", show_default=False),
    ] = None,
    report: Annotated[
        bool, typer.Option("--report", help="Write the HTML report at the end and print its path.")
    ] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No live progress; only the summary.")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the summary as JSON (no progress).")
    ] = False,
    fmt: Annotated[
        str, typer.Option("--format", help="auto, jsonl or bbh.", rich_help_panel=ADVANCED)
    ] = "auto",
    skip_bad: Annotated[
        bool,
        typer.Option(
            "--skip-bad",
            help="Leave malformed lines out (listed) instead of stopping.",
            rich_help_panel=ADVANCED,
        ),
    ] = False,
    limit: Annotated[
        int | None,
        typer.Option(
            help="Run only the first N tasks of the stream.",
            rich_help_panel=ADVANCED,
            show_default=False,
        ),
    ] = None,
    max_consecutive_errors: Annotated[
        int,
        typer.Option(
            help="Stop after N tasks in a row end in error (0: never).", rich_help_panel=ADVANCED
        ),
    ] = 5,
    base_url: Annotated[
        str | None,
        typer.Option(
            help="Base URL of an OpenAI-compatible server.",
            rich_help_panel=ADVANCED,
            show_default=False,
        ),
    ] = None,
    mcp: McpOpt = None,
    ray: RayOpt = None,
    executor: ExecutorOpt = None,
) -> None:
    """Run a task stream: solve each task, evolve the tool library, record the figures."""
    from agent.stream.inputs import load_stream
    from agent.stream.launch import RunHooks, resume_run, start_run
    from agent.stream.options import Resume, RunOptions

    settings = settings_of(ctx)
    ray = ray_address(ray, executor)
    settings = with_mcp(settings, mcp)  # not saved with the run: give it again on --resume
    if resume is None:
        updates: dict[str, Any] = {}
        if model:
            updates["model"] = model
        if base_url:
            updates["base_url"] = base_url
        settings = settings.model_copy(update=updates)
    # On --resume the run's saved model and base URL win; resume_run checks --model/--base-url.
    err = Console(stderr=True)
    if resume and stream is not None:
        raise StreamError("give either a STREAM to start a run or --resume RUN, not both")
    if resume is None and stream is None:
        raise StreamError(
            "give the STREAM to run (a .jsonl file or BBH .json files), or --resume RUN"
        )
    if fmt not in ("auto", "jsonl", "bbh"):
        raise StreamError(f"--format must be auto, jsonl or bbh, not {fmt!r}")
    show_progress = not (quiet or as_json)
    if resume is None:
        from agent.stream.store import new_run_id

        run_id = run_id or new_run_id()  # known here, so a Ctrl-C can say what to resume
    try:
        display = _display(show_progress)
        with display as live:
            callback = live.update if live is not None else None
            if resume:
                changes = Resume(workers=workers, model=model, base_url=base_url, ray_address=ray)
                hooks = RunHooks(on_progress=callback)
                outcome = resume_run(resume, settings, changes=changes, hooks=hooks)
            else:
                assert stream is not None
                loaded = load_stream(stream, fmt, skip_bad=skip_bad)  # type: ignore[arg-type]
                for bad in loaded.skipped:
                    err.print(f"[yellow]skipped[/] {bad}")
                if limit is not None and limit < 1:
                    raise StreamError(
                        f"--limit must be at least 1, not {limit} (omit it to run all)"
                    )
                tasks = loaded.tasks[:limit] if limit else loaded.tasks
                options = RunOptions(
                    workers=1 if workers is None else workers,
                    batch=batch,
                    feedback=cast(Feedback, feedback),  # RunOptions checks the value
                    learn=not no_learn,
                    consolidate_every=consolidate_every,
                    max_consecutive_errors=max_consecutive_errors,
                    executor="threads" if ray is None else "ray",
                    ray_address=ray or "auto",
                )
                outcome = start_run(
                    tasks,
                    settings,
                    options,
                    run_id=run_id,
                    meta={"stream": str(stream), "skipped": [str(b) for b in loaded.skipped]},
                    hooks=RunHooks(on_progress=callback),
                )
    except KeyboardInterrupt:
        # Typer turns Ctrl-C into a silent exit 130: say what happened and what to do.
        from agent.stream.store import runs_dir

        rid = resume or run_id or ""
        if rid and (runs_dir(settings.home) / rid).is_dir():
            err.print(f"[red]interrupted: resume with `evoagent run --resume {rid}`")
        else:
            err.print("[red]interrupted before the run started: nothing to resume")
        raise typer.Exit(130) from None
    report_path = None
    if report:
        from agent.stream.report import write_report
        from agent.stream.store import RunStore

        report_path = write_report(RunStore.open(settings.home, outcome.run_id)).html
    if as_json:
        out = dict(outcome.summary)
        out["dir"] = str(outcome.dir)
        out["message"] = outcome.message
        if report_path:
            out["report"] = str(report_path)
        typer.echo(json.dumps(out, indent=2, default=str))
    else:
        from agent.stream.progress import families_table, summary_table

        console = Console()
        console.print(summary_table(outcome.summary))
        if outcome.summary["families"]:
            console.print(families_table(outcome.summary))
        console.print(f"results: {literal(outcome.dir / 'results.jsonl')}")
        if report_path:
            console.print(f"report: {report_path}")
        else:
            console.print(f"report: evoagent report {outcome.run_id}")
    if outcome.status != "finished":
        err.print(f"[red]{outcome.message}")
        raise typer.Exit(130 if outcome.status == "interrupted" else 1)


class _NoDisplay:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _display(show: bool) -> Any:
    if not show:
        return _NoDisplay()
    from agent.stream.progress import LiveDisplay

    return LiveDisplay()


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
