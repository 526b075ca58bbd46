"""The live view of a run: a rich progress bar with the stream's figures, and the
plain-text summary printed at the end."""

from __future__ import annotations

import threading
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from agent.stream.runner import Progress as RunProgress
from agent.terminal import cell, literal


class LiveDisplay:
    """A context manager whose `update` is the runner's `on_progress` callback: a bar
    with the count and elapsed time, and under it a line of the stream's figures."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.console,
        )
        self._figures = Text("")
        self._live = Live(
            Group(self._progress, self._figures), console=self.console, refresh_per_second=4
        )
        self._task: Any = None
        self._lock = threading.Lock()

    def __enter__(self) -> LiveDisplay:
        self._live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._live.stop()

    def update(self, p: RunProgress) -> None:
        with self._lock:  # called from the worker threads
            if self._task is None:
                self._task = self._progress.add_task(f"run {p.run_id}", total=p.n_tasks)
            self._progress.update(self._task, completed=p.n_done)
            self._figures.plain = figures_line(p)
            last = p.last
            if last is not None and last.get("status") == "error":
                self.console.print(
                    f"[red]{literal(last['id'])}: error: {literal(last.get('reason'), 500)}"
                )


def figures_line(p: RunProgress) -> str:
    f = p.figures
    parts = [
        f"solve {fmt_pct(f.get('solve_rate'))}",
        f"reuse {fmt_pct(f.get('reuse_rate'))}",
        f"tok/task {fmt_num(f.get('tokens_per_task'))}",
        f"calls/task {fmt_num(f.get('calls_per_task'))}",
        f"s/task {fmt_num(f.get('seconds_per_task'))}",
        f"library {p.library_size}",
    ]
    if p.phase == "forge":
        parts.append(f"forging batch {p.batch + 1}/{p.n_batches}")
    return " · ".join(parts) + f"  (last {f.get('window')})"


def summary_table(summary: dict[str, Any]) -> Table:
    table = Table(
        title=f"run {literal(summary.get('run_id'))} — {literal(summary.get('status'))}",
        show_header=False,
    )
    halves = summary["halves"]
    rows = [
        (
            "feedback",
            f"{summary.get('feedback')}{'' if summary.get('learn') else ' (no-learn: library frozen)'}",
        ),
        ("executor", executor_text(summary)),
        ("tasks", f"{summary['n_done']} / {summary['n_tasks']}  {summary['statuses']}"),
        ("solve rate", fmt_pct(summary["solve_rate"])),
        ("reuse rate", fmt_pct(summary["reuse_rate"])),
        ("tokens per solved task", fmt_num(summary["tokens_per_success"])),
        ("model calls per solved task", fmt_num(summary["calls_per_success"])),
        ("seconds per solved task", fmt_num(summary.get("seconds_per_success"))),
        ("forge (batch ends)", f"{summary['forge_calls']} calls, {summary['forge_tokens']} tokens"),
        (
            "tokens per solved task, 1st → 2nd half",
            f"{fmt_num(halves['first']['tokens_per_success'])} → {fmt_num(halves['second']['tokens_per_success'])}",
        ),
        ("tools created", ", ".join(summary["tools_created"]) or "none"),
        ("library size", f"{summary['library_size_start']} → {summary['library_size']}"),
        *evidence_rows(summary),
    ]
    for name, value in rows:
        table.add_row(name, cell(value))
    return table


def evidence_rows(summary: dict[str, Any]) -> list[tuple[str, str]]:
    """What backs the answers and how often it was right (against the labels, where the
    run has them), and the library's health at the run's end."""
    ev = summary.get("evidence") or {}
    if not ev:
        return []
    health = summary.get("library_health") or {}
    rows = [
        (
            "called solved / unverified",
            f"{fmt_pct(ev.get('share_solved'))} / {fmt_pct(ev.get('share_unverified'))} "
            f"(by checker {ev['by']['checker']}, agreement {ev['by']['agreement']}, "
            f"trusted tool {ev['by']['trusted tool']})",
        ),
        ("precision of solved (labels)", fmt_pct(ev.get("solved_precision"))),
        (
            "answers with no model call (precision)",
            f"{ev.get('zero_call_answers', 0)} ({fmt_pct(ev.get('zero_call_precision'))})",
        ),
        (
            "reuse: correct / incorrect (precision)",
            f"{fmt_pct(ev.get('correct_reuse'))} / {fmt_pct(ev.get('incorrect_reuse'))} "
            f"({fmt_pct(ev.get('reuse_precision'))})",
        ),
        ("check calls per task (independent route)", fmt_num(ev.get("check_calls_per_task"))),
        ("of which audits of tool uses", fmt_num(ev.get("audit_calls_per_task"))),
    ]
    if health:
        rows.append(
            (
                "library: precision, utilisation, redundancy, regressions",
                f"{fmt_pct(health.get('library_precision'))}, {fmt_pct(health.get('utilisation'))}, "
                f"{fmt_pct(health.get('redundancy'))}, {fmt_pct(health.get('regression_rate'))}",
            )
        )
    return rows


def executor_text(summary: dict[str, Any]) -> str:
    """How the run's tasks ran, e.g. "ray: 4 workers on 2 nodes"."""
    nodes = summary.get("nodes") or 1
    workers = summary.get("workers")
    where = f"{workers} worker{'s' if workers != 1 else ''}" if workers else "workers"
    return f"{summary.get('executor') or 'threads'}: {where} on {nodes} node{'s' if nodes != 1 else ''}"


def families_table(summary: dict[str, Any]) -> Table:
    """Per family: its first task against the mean of its later ones (where a family's
    tool was made, then reused)."""
    table = Table(
        "family",
        "tasks",
        "solved",
        "calls",
        "seconds",
        "tokens",
        title="per family: first task → later ones (mean)",
    )
    for name, f in summary["families"].items():
        table.add_row(
            cell(name),
            str(f["n"]),
            fmt_pct(f["solve_rate"]),
            f"{f['first_calls']} → {fmt_num(f['later_calls'])}",
            f"{fmt_num(f.get('first_seconds'))} → {fmt_num(f.get('later_seconds'))}",
            f"{f['first_tokens']} → {fmt_num(f['later_tokens'])}",
        )
    return table


def fmt_pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def fmt_num(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}" if value >= 100 else f"{value:.1f}"
