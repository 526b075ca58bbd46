"""`evoagent run`: start or resume a task stream (`runs.py` reads runs back).

Heavy imports (langgraph, chromadb, torch, docker) happen inside the runner, never here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer
from rich.console import Console

from agent.commands.common import (
    BaseUrlOpt,
    ExecutorOpt,
    FeedbackOpt,
    McpOpt,
    ModelOpt,
    NoLearnOpt,
    RayOpt,
    apply_flags,
    option,
    ray_address,
    settings_of,
    with_mcp,
)
from agent.stream.errors import StreamError
from agent.stream.options import Resume, RunOptions
from agent.stream.store import new_run_id
from agent.terminal import literal
from agent.types import Feedback

if TYPE_CHECKING:
    from agent.config import Settings
    from agent.stream.runner import RunOutcome
    from agent.task import Task

ADVANCED = "Advanced"


StreamArg = Annotated[
    Path | None,
    typer.Argument(
        help="The tasks: a JSONL file, or BBH .json file(s) (a file or a folder).",
        show_default=False,
    ),
]
WorkersOpt = Annotated[
    int | None,
    option(
        "Tasks solved in parallel (threads, or Ray actors with --ray) (default: 1).", shown=False
    ),
]
BatchOpt = Annotated[
    int, option("Tasks per batch: a batch sees the library as it was at its start.")
]
ConsolidateEveryOpt = Annotated[int, option("Consolidate the library every K tasks (0: never).")]
ResumeOpt = Annotated[
    str | None,
    option("Continue run RUN where it stopped (same stream, options and model).", shown=False),
]
RunIdOpt = Annotated[str | None, option("Name of the new run (default: a timestamp).", shown=False)]
ReportOpt = Annotated[
    bool, option("Write the HTML report at the end and print its path.", "--report")
]
QuietOpt = Annotated[bool, option("No live progress; only the summary.", "--quiet", "-q")]
AsJsonOpt = Annotated[bool, option("Print the summary as JSON (no progress).", "--json")]
FmtOpt = Annotated[str, option("auto, jsonl or bbh.", "--format", advanced=True)]
SkipBadOpt = Annotated[
    bool,
    option("Leave malformed lines out (listed) instead of stopping.", "--skip-bad", advanced=True),
]
LimitOpt = Annotated[
    int | None, option("Run only the first N tasks of the stream.", advanced=True, shown=False)
]
MaxConsecutiveErrorsOpt = Annotated[
    int, option("Stop after N tasks in a row end in error (0: never).", advanced=True)
]


def run_command(
    ctx: typer.Context,
    stream: StreamArg = None,
    workers: WorkersOpt = None,
    batch: BatchOpt = 8,
    feedback: FeedbackOpt = None,
    no_learn: NoLearnOpt = False,
    consolidate_every: ConsolidateEveryOpt = 50,
    model: ModelOpt = None,
    resume: ResumeOpt = None,
    run_id: RunIdOpt = None,
    report: ReportOpt = False,
    quiet: QuietOpt = False,
    as_json: AsJsonOpt = False,
    fmt: FmtOpt = "auto",
    skip_bad: SkipBadOpt = False,
    limit: LimitOpt = None,
    max_consecutive_errors: MaxConsecutiveErrorsOpt = 5,
    base_url: BaseUrlOpt = None,
    mcp: McpOpt = None,
    ray: RayOpt = None,
    executor: ExecutorOpt = None,
) -> None:
    """Run a task stream: solve each task, evolve the tool library, record the figures."""
    if resume and stream is not None:
        raise StreamError("give either a STREAM to start a run or --resume RUN, not both")
    if resume is None and stream is None:
        raise StreamError(
            "give the STREAM to run (a .jsonl file or BBH .json files), or --resume RUN"
        )
    ray = ray_address(ray, executor)
    settings = with_mcp(settings_of(ctx), mcp)  # not saved with the run: give it on --resume
    if resume is not None:
        # The run's saved model and base URL win; resume_run checks --model/--base-url.
        changes = Resume(workers=workers, model=model, base_url=base_url, ray_address=ray)
        outcome = _interruptible(settings, resume, not (quiet or as_json), changes)
    else:
        assert stream is not None
        settings = apply_flags(settings, model=model, base_url=base_url, learn=not no_learn)
        options = RunOptions(
            workers=1 if workers is None else workers,
            batch=batch,
            feedback=cast(Feedback, feedback or settings.agent.feedback),  # checked there
            learn=not no_learn,
            consolidate_every=consolidate_every,
            max_consecutive_errors=max_consecutive_errors,
            executor="threads" if ray is None else "ray",
            ray_address=ray or "auto",
        )
        start = NewRun(stream, fmt, skip_bad, limit, options, run_id or new_run_id())
        outcome = _interruptible(settings, start.run_id, not (quiet or as_json), start)
    _print_outcome(settings, outcome, report, as_json)


@dataclass(frozen=True)
class NewRun:
    """What the command line says about a run to start."""

    stream: Path
    fmt: str
    skip_bad: bool
    limit: int | None
    options: RunOptions
    run_id: str

    def tasks(self, err: Console) -> tuple[list[Task], list[str]]:
        """The stream's tasks (the first `limit`) and the malformed entries left out."""
        from agent.stream.inputs import load_stream

        if self.fmt not in ("auto", "jsonl", "bbh"):
            raise StreamError(f"--format must be auto, jsonl or bbh, not {self.fmt!r}")
        if self.limit is not None and self.limit < 1:
            raise StreamError(f"--limit must be at least 1, not {self.limit} (omit it to run all)")
        loaded = load_stream(self.stream, self.fmt, skip_bad=self.skip_bad)  # type: ignore[arg-type]
        for bad in loaded.skipped:
            err.print(f"[yellow]skipped[/] {bad}")
        tasks = loaded.tasks[: self.limit] if self.limit else loaded.tasks
        return tasks, [str(b) for b in loaded.skipped]


def _interruptible(
    settings: Settings, run_id: str, show: bool, what: NewRun | Resume
) -> RunOutcome:
    """Start or resume the run, with the live display unless `show` is off; a Ctrl-C
    says what to resume (Typer would exit 130 in silence)."""
    from agent.stream.launch import RunHooks, resume_run, start_run

    err = Console(stderr=True)
    try:
        with _display(show) as live:
            hooks = RunHooks(on_progress=live.update if live is not None else None)
            if isinstance(what, Resume):
                return resume_run(run_id, settings, changes=what, hooks=hooks)
            tasks, skipped = what.tasks(err)
            meta = {"stream": str(what.stream), "skipped": skipped}
            return start_run(tasks, settings, what.options, run_id=run_id, meta=meta, hooks=hooks)
    except KeyboardInterrupt:
        from agent.stream.store import runs_dir

        if (runs_dir(settings.home) / run_id).is_dir():
            err.print(f"[red]interrupted: resume with `evoagent run --resume {run_id}`")
        else:
            err.print("[red]interrupted before the run started: nothing to resume")
        raise typer.Exit(130) from None


def _print_outcome(settings: Settings, outcome: RunOutcome, report: bool, as_json: bool) -> None:
    """The run's summary (a table, or JSON), its report when asked; a run that did not
    finish exits with 1 (stopped) or 130 (interrupted)."""
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
        console.print(f"report: {report_path or f'evoagent report {outcome.run_id}'}")
    if outcome.status != "finished":
        Console(stderr=True).print(f"[red]{outcome.message}")
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
