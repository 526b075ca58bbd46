"""`evoagent solve "TASK"`: solve one task, learning from it.

Progress goes to stderr, the answer to stdout (`--json`: the whole episode), and the
status to the exit code:

| code | status |
|---|---|
| 0 | `solved` |
| 1 | a mistake in the command (bad option, a model missing or not loadable, unknown --resume id) |
| 2 | usage error (Typer/Click: unknown option, missing argument) |
| 3 | `failed` (no correct answer within the attempts) |
| 4 | `budget_exhausted` (token or time budget of the task reached) |
| 5 | `error` (the model endpoint or the sandbox failed) |
| 6 | `unverified` (answered, but without a label no independent route confirmed it) |
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from agent.commands.common import (
    BaseUrlOpt,
    FeedbackOpt,
    McpOpt,
    ModelOpt,
    NoLearnOpt,
    SandboxOpt,
    apply_flags,
    option,
    settings_of,
    with_mcp,
)
from agent.errors import AgentError
from agent.terminal import clean, literal

if TYPE_CHECKING:
    from rich.console import Console

    from agent.config import Settings
    from agent.task import Task
    from memory.episode import Episode

EXIT_CODES = {"solved": 0, "failed": 3, "budget_exhausted": 4, "error": 5, "unverified": 6}


TaskArg = Annotated[
    str | None,
    typer.Argument(help="The task, in words (omit with --resume).", show_default=False),
]
ExpectOpt = Annotated[
    str | None, option("The expected answer (the label).", "--expect", shown=False)
]
CheckerOpt = Annotated[
    str | None,
    option(
        "How to check: exact, normalized, numeric:TOL, regex:PATTERN, python:FILE_OR_SOURCE.",
        shown=False,
    ),
]
RecordOpt = Annotated[
    Path | None, option("Write every model request and reply to this cassette.", shown=False)
]
JsonOpt = Annotated[bool, option("Print the whole episode as JSON.", "--json")]
ResumeOpt = Annotated[
    str | None, option("Continue the task with this id from its last checkpoint.", shown=False)
]
ForgeOpt = Annotated[
    str, option("now: forge a solved task into a tool; off: do not.", advanced=True)
]
NoServerOpt = Annotated[
    bool,
    option(
        "Solve in this process even when `evoagent serve` runs for this home.",
        "--no-server",
        advanced=True,
    ),
]


def solve_command(
    ctx: typer.Context,
    task: TaskArg = None,
    expect: ExpectOpt = None,
    checker: CheckerOpt = None,
    model: ModelOpt = None,
    base_url: BaseUrlOpt = None,
    feedback: FeedbackOpt = None,
    record: RecordOpt = None,
    json_: JsonOpt = False,
    resume: ResumeOpt = None,
    sandbox: SandboxOpt = None,
    forge: ForgeOpt = "now",
    no_learn: NoLearnOpt = False,
    mcp: McpOpt = None,
    no_server: NoServerOpt = False,
) -> None:
    """Solve one TASK with the agent, learning from it; the answer goes to stdout."""
    from rich.console import Console

    flags = {"model": model, "base_url": base_url, "feedback": feedback, "sandbox": sandbox}
    settings = with_mcp(apply_flags(settings_of(ctx), **flags, learn=not no_learn), mcp)
    if forge not in ("now", "off"):
        raise AgentError(f"--forge must be 'now' or 'off', not {forge!r}")
    the_task = _the_task(settings, task, expect, checker, resume)
    console = Console(stderr=True, highlight=False, soft_wrap=True)
    # A server does not have this command's --mcp sessions: solve here with them.
    if not (resume or record or no_server or settings.mcp):
        served = solve_served(settings, the_task, forge, json_, console)
        if served is not None:
            raise typer.Exit(served)
    episode = _solve_here(settings, the_task, forge, resume is not None, record, console)
    raise typer.Exit(show_result(episode.to_dict(), json_, console))


def _the_task(
    settings: Settings,
    text: str | None,
    expect: str | None,
    checker: str | None,
    resume: str | None,
) -> Task:
    """The task the command names: a new one, or the checkpointed one `resume` names."""
    from agent.checkers import parse_checker
    from agent.solve import load_checkpointed_task
    from agent.task import Task

    if resume:
        if text or expect is not None or checker:
            raise AgentError(
                "--resume ID continues a checkpointed task: give no TASK, --expect or "
                "--checker with it"
            )
        found = load_checkpointed_task(settings.home, resume)
        if found is None:
            raise AgentError(
                f"no checkpoint for task id {resume!r} in {settings.home / 'checkpoints.db'}: "
                "use the id `evoagent solve` printed when it started"
            )
        return found
    if not (text and text.strip()):
        raise AgentError('give the task to solve: evoagent solve "TASK" (or --resume ID)')
    if checker is not None or expect is not None:
        parse_checker(checker, has_expected=expect is not None)  # bad: fails before any work
    return Task.new(text, expected=expect, checker=checker)


def _solve_here(
    settings: Settings,
    task: Task,
    forge: str,
    resume: bool,
    record: Path | None,
    console: Console,
) -> Episode:
    """Solve `task` in this process (a Docker engine that is down is exit code 5)."""
    from agent.deps import AgentDeps
    from agent.solve import solve_task
    from sandbox.base import SandboxError

    try:
        opened = AgentDeps.from_settings(settings, record=record)
    except SandboxError as exc:
        # Docker down or no image: the sandbox failed, which the exit code says is 5.
        typer.secho(f"Error: {exc}", err=True, fg=typer.colors.RED)
        raise typer.Exit(EXIT_CODES["error"]) from exc
    with opened as deps:
        if not resume:
            console.print(
                f"[dim]task {task.id} (resume with: evoagent solve --resume {task.id})[/]"
            )
        return solve_task(
            task,
            deps,
            forge="now" if forge == "now" else "off",
            resume=resume,
            on_event=Progress(console),
        )


def show_result(result: dict[str, Any], json_: bool, console: Any) -> int:
    """Print an episode (`Episode.to_dict()`): the answer on stdout, the summary on
    stderr (or all of it as JSON); return the exit code of its status."""
    status = str(result.get("status"))
    if json_:
        typer.echo(json.dumps(result, default=str, ensure_ascii=False, indent=2))
    else:
        answer = result.get("answer")
        if answer is not None:
            typer.echo(
                clean(answer if isinstance(answer, str) else json.dumps(answer, default=str))
            )
        style = "green" if status == "solved" else "red"
        tokens = int(result.get("tokens_in") or 0) + int(result.get("tokens_out") or 0)
        correct, reason = result.get("correct"), result.get("reason")
        console.print(
            f"[{style}]{literal(status)}[/] after {result.get('attempts')} attempt(s), "
            f"{result.get('n_calls')} model call(s), {tokens} tokens, "
            f"{float(result.get('seconds') or 0):.1f} s"
            + (f"; correct: {correct}" if correct is not None else "")
            + (f"\n{literal(str(reason))}" if status != "solved" and reason else "")
        )
    return EXIT_CODES.get(status, 5)


def solve_served(
    settings: Settings, task: Task, forge: str, json_: bool, console: Console
) -> int | None:
    """Solve `task` in the `evoagent serve` of this home, printing as `solve` does; the exit
    code, or None when no server takes it (then the caller solves in its own process)."""
    from agent.serve import PROTOCOL, NotServed, request_lines

    request = {
        "v": PROTOCOL,
        "settings": settings.model_dump(mode="json"),
        "task": task.to_dict(),
        "forge": forge,
    }
    progress = Progress(console)
    try:
        for line in request_lines(settings.home, request):
            if "started" in line:
                console.print(
                    f"[dim]task {literal(str(line['started']))} solved by `evoagent serve` "
                    f"(resume with: evoagent solve --resume {literal(str(line['started']))})[/]"
                )
            elif isinstance(line.get("event"), dict) and isinstance(
                line["event"].get("event"), str
            ):
                # a progress line this version cannot show: the result still counts
                with contextlib.suppress(KeyError, TypeError, ValueError):
                    progress(line["event"])
            elif isinstance(line.get("result"), dict):
                return show_result(line["result"], json_, console)
            elif "error" in line:
                typer.secho(f"Error: {clean(str(line['error']))}", err=True, fg=typer.colors.RED)
                code = line.get("code")
                return code if isinstance(code, int) and code in (1, 5) else 5
    except NotServed as exc:
        if str(exc) != "no server":
            console.print(
                f"[dim]not solved by `evoagent serve`: {literal(str(exc))}; solving here[/]"
            )
        return None
    return 5


class Progress:
    """Prints the graph's events on stderr, one line each."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def __call__(self, event: dict[str, Any]) -> None:
        kind = event["event"]
        line = _describe(kind, event)
        if line:
            self.console.print(line)


def _short(value: object, limit: int = 120) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _describe(kind: str, e: dict[str, Any]) -> str:
    if kind == "resume":
        return f"[cyan]resume[/] from the last checkpoint (next: {', '.join(e.get('next') or []) or 'nothing'})"
    if kind == "recall":
        return f"[cyan]recall[/] tools: {literal(', '.join(e['tools'])) or 'none'}; tips: {e['tips']}; failures: {e['failures']}"
    if kind == "plan":
        if e.get("format_error"):
            return f"[yellow]plan[/] attempt {e['attempt']}: unusable reply ({literal(e['format_error'])})"
        tools = literal(", ".join(e.get("tools") or [])) or "none (new code)"
        return f"[cyan]plan[/] attempt {e['attempt']}: tools {tools}: {literal(_short(e.get('plan', '')))}"
    if kind == "act":
        if e.get("format_error"):
            return f"[yellow]act[/] step {e['step']}: unusable reply ({literal(e['format_error'])})"
        if e.get("repeated"):
            return f"[yellow]act[/] step {e['step']}: not run ({literal(e['repeated'])})"
        if e.get("ok") and e.get("answer") is not None:
            calls = (
                f" (called {literal(', '.join(dict.fromkeys(e['tools'])))})"
                if e.get("tools")
                else ""
            )
            return f"[cyan]act[/] step {e['step']}: answer {literal(_short(e['answer']))}{calls}"
        return f"[yellow]act[/] step {e['step']}: {literal(str(e.get('error') or 'no answer'))}"
    if kind == "check":
        got = literal(_short(e["answer"])) if e.get("answer") is not None else "no answer"
        why = f" ({literal(_short(e['problem']))})" if e.get("problem") else ""
        return f"[cyan]check[/] independent route {literal(e['route'])}: {got}{why}"
    if kind == "verify":
        style = "green" if e["verdict"] == "correct" else "yellow"
        return f"[{style}]verify[/] ({e['by']}): {literal(e['verdict'])}: {literal(_short(e['reason']))}"
    if kind == "forge":
        return f"[cyan]forge[/] {e['status']}{' ' + literal(e['tool']) if e.get('tool') else ''}: {literal(_short(e.get('reason') or ''))}"
    if kind == "learn":
        bits = [str(e["status"])]
        if e.get("tools_created"):
            bits.append("new tools: " + ", ".join(e["tools_created"]))
        if e.get("tip"):
            bits.append("tip: " + _short(e["tip"]))
        if e.get("lesson"):
            bits.append("lesson: " + _short(e["lesson"]))
        return "[cyan]learn[/] " + literal("; ".join(bits))
    return ""
