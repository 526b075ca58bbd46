"""`evoagent report`: one self-contained HTML page about a run (and a baseline).

The charts are drawn with matplotlib's Agg backend (no display needed), embedded in
the page as base64 PNG, and also written next to the page as PNG files. Everything
comes from the run's own files (`RunStore`), so a report can be made mid-run, after
a crash, or on another machine that has the run folder.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.stream import metrics
from agent.stream.progress import executor_text
from agent.stream.store import RunStore

CHARTS = (
    ("library", "Library size", "tools in the library", "library_size"),
    ("solve_rate", "Rolling solve rate", "solve rate", "solve_rate"),
    ("tokens", "Tokens per task (rolling mean)", "tokens", "tokens_rolling"),
    ("seconds", "Seconds per task (rolling mean)", "seconds", "seconds_rolling"),
    ("reuse_rate", "Reuse rate (solved with a library tool)", "reuse rate", "reuse_rate"),
    ("new_tools", "New tools per task (rolling mean)", "new tools", "new_tools_rolling"),
)


@dataclass(frozen=True)
class Report:
    html: Path
    charts: list[Path]


@dataclass
class _Run:
    label: str
    meta: dict[str, Any]
    rows: list[dict[str, Any]]
    batches: list[dict[str, Any]]
    summary: dict[str, Any]
    tools: list[dict[str, Any]]
    series: dict[str, list[float]]


def write_report(
    store: RunStore, out: Path | None = None, baseline: RunStore | None = None
) -> Report:
    """Write `out` (default `runs/<id>/report.html`) and its charts as `<stem>-<chart>.png`."""
    out = Path(out) if out else store.dir / "report.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    page, pngs = render(store, baseline)
    charts: list[Path] = []
    for key, png in pngs.items():
        path = out.with_name(f"{out.stem}-{key}.png")
        path.write_bytes(png)
        charts.append(path)
    out.write_text(page, encoding="utf-8")
    return Report(out, charts)


def render(store: RunStore, baseline: RunStore | None = None) -> tuple[str, dict[str, bytes]]:
    """The report's page and its charts (PNG by chart key): what `write_report` writes and
    what `evoagent ui` shows as a run's page."""
    runs = [_load(store)]
    if baseline is not None:
        runs.append(_load(baseline))
    window = max(metrics.default_window(len(r.rows)) for r in runs)
    for run in runs:
        start = int(run.meta.get("library_size_start") or 0)
        run.series = metrics.series(run.rows, run.batches, window, start)
    pngs: dict[str, bytes] = {}
    images: list[tuple[str, str]] = []
    for key, title, ylabel, field in CHARTS:
        pngs[key] = png = _chart(runs, title, ylabel, field)
        images.append((title, base64.b64encode(png).decode("ascii")))
    return _page(runs, images), pngs


def _load(store: RunStore) -> _Run:
    meta = store.meta()
    rows = store.results()
    batches = store.batches()
    summary = metrics.summarize(rows, batches, meta, store.health())
    return _Run(_label(meta), meta, rows, batches, summary, store.tools(), {})


def _label(meta: dict[str, Any]) -> str:
    mode = "learning" if meta.get("learn", True) else "no-learn"
    return f"{meta.get('run_id')} ({mode}, feedback {meta.get('feedback')})"


def _chart(runs: Sequence[_Run], title: str, ylabel: str, field: str) -> bytes:
    import matplotlib

    matplotlib.use("Agg")  # no display: the same on a server, in CI and on a laptop
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.4), dpi=100)
    try:
        for run in runs:
            xs, ys = run.series["x"], run.series[field]
            if field == "library_size":
                ax.step(xs, ys, where="post", label=run.label)
            else:
                ax.plot(xs, ys, label=run.label)
        ax.set_title(title)
        ax.set_xlabel("task in the stream")
        ax.set_ylabel(ylabel)
        if field in ("solve_rate", "reuse_rate"):
            ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="best")
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        return buf.getvalue()
    finally:
        plt.close(fig)


def _fmt(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


ROWS = (
    ("feedback mode", lambda s: s["feedback"]),
    ("learning", lambda s: "yes" if s["learn"] else "no (library frozen)"),
    ("model", lambda s: s["model"]),
    ("executor", lambda s: executor_text(s)),
    ("status", lambda s: s["status"]),
    ("tasks done / in stream", lambda s: f"{s['n_done']} / {s['n_tasks']}"),
    ("solve rate", lambda s: s["solve_rate"]),
    ("reuse rate", lambda s: s["reuse_rate"]),
    ("tokens per task", lambda s: s["tokens_per_task"]),
    ("tokens per solved task", lambda s: s["tokens_per_success"]),
    ("... counting the forge's tokens", lambda s: s["tokens_per_success_with_forge"]),
    ("model calls per task", lambda s: s["calls_per_task"]),
    ("model calls per solved task", lambda s: s["calls_per_success"]),
    ("seconds per task", lambda s: s["seconds_per_task"]),
    ("seconds per solved task", lambda s: s.get("seconds_per_success")),
    ("tools created", lambda s: s["n_tools_created"]),
    ("library size (start → end)", lambda s: f"{s['library_size_start']} → {s['library_size']}"),
    ("1st half: tokens per solved task", lambda s: s["halves"]["first"]["tokens_per_success"]),
    ("2nd half: tokens per solved task", lambda s: s["halves"]["second"]["tokens_per_success"]),
    ("2nd / 1st half", lambda s: s["halves"]["tokens_per_success_ratio"]),
    ("1st half: solve rate", lambda s: s["halves"]["first"]["solve_rate"]),
    ("2nd half: solve rate", lambda s: s["halves"]["second"]["solve_rate"]),
    ("called solved", lambda s: s["evidence"]["share_solved"]),
    ("answered but unverified", lambda s: s["evidence"]["share_unverified"]),
    ("precision of solved (labels)", lambda s: s["evidence"]["solved_precision"]),
    ("answers with no model call", lambda s: s["evidence"]["zero_call_answers"]),
    ("... their precision (labels)", lambda s: s["evidence"]["zero_call_precision"]),
    ("reuse precision (labels)", lambda s: s["evidence"]["reuse_precision"]),
    ("check calls per task (independent route)", lambda s: s["evidence"]["check_calls_per_task"]),
    ("of which audits of tool uses", lambda s: s["evidence"].get("audit_calls_per_task")),
    (
        "library precision (tools right on their evidence)",
        lambda s: s["library_health"].get("library_precision"),
    ),
    ("library utilisation", lambda s: s["library_health"].get("utilisation")),
    ("library redundancy", lambda s: s["library_health"].get("redundancy")),
    ("regression rate", lambda s: s["library_health"].get("regression_rate")),
)


def _page(runs: Sequence[_Run], images: Sequence[tuple[str, str]]) -> str:
    e = html.escape
    main = runs[0]
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>evoagent run {e(str(main.meta.get('run_id')))}</title>",
        "<style>body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;"
        "text-align:left;vertical-align:top}th{background:#f3f3f3}code{font-size:90%}"
        ".charts img{max-width:100%;display:block;margin:1em 0}.muted{color:#777}</style>",
        "</head><body>",
        f"<h1>evoagent run {e(str(main.meta.get('run_id')))}</h1>",
        f"<p>Stream <code>{e(str(main.meta.get('stream')))}</code>, started "
        f"{e(str(main.meta.get('started_at')))}. Each run says which feedback mode it used: "
        "with <code>none</code> the labels only score the run; with <code>labels</code> "
        "the task's checker was the verifier.</p>",
        "<h2>Figures</h2><table><tr><th></th>",
    ]
    parts += [f"<th>{e(run.label)}</th>" for run in runs]
    parts.append("</tr>")
    for name, get in ROWS:
        parts.append(f"<tr><td>{e(name)}</td>")
        parts += [f"<td>{e(_fmt(get(run.summary)))}</td>" for run in runs]
        parts.append("</tr>")
    if len(runs) == 2:
        a, b = runs[0].summary, runs[1].summary
        for name, key in (
            ("tokens per solved task: this / baseline", "tokens_per_success"),
            ("model calls per solved task: this / baseline", "calls_per_success"),
            ("solve rate: this / baseline", "solve_rate"),
        ):
            ratio = a[key] / b[key] if a.get(key) and b.get(key) else None
            parts.append(f"<tr><td>{e(name)}</td><td colspan='2'>{e(_fmt(ratio))}</td></tr>")
    parts.append("</table>")
    parts.append("<h2>Charts</h2><div class='charts'>")
    parts += [
        f"<img alt='{e(title)}' src='data:image/png;base64,{data}'>" for title, data in images
    ]
    parts.append("</div>")
    for run in runs:
        parts.append(f"<h2>Tools — {e(run.label)}</h2>")
        parts.append(_tools_table(run))
        parts.append(f"<h3>Per family: first occurrence against later ones — {e(run.label)}</h3>")
        parts.append(_families_table(run))
    parts.append("</body></html>")
    return "\n".join(parts)


def _tools_table(run: _Run) -> str:
    e = html.escape
    created = run.summary["tools_created"]
    used = run.summary["tools_used"]
    if not created and not used:
        return "<p class='muted'>No tool was created or used in this run.</p>"
    info = {t.get("name"): t for t in run.tools}
    names = list(dict.fromkeys([*sorted(used, key=lambda n: -used[n]), *created]))
    out = [
        "<table><tr><th>tool</th><th>created in this run</th><th>uses in this run</th>"
        "<th>signature</th><th>docstring</th><th>trust (confirmed/refuted)</th>"
        "<th>reliability</th></tr>"
    ]
    for name in names:
        tool = info.get(name, {})
        doc = str(tool.get("docstring") or "").strip().splitlines()
        out.append(
            f"<tr><td><code>{e(name)}</code></td><td>{'yes' if name in created else ''}</td>"
            f"<td>{used.get(name, 0)}</td><td><code>{e(str(tool.get('signature') or ''))}</code></td>"
            f"<td>{e(doc[0] if doc else '')}</td>"
            f"<td>{e(str(tool.get('trust', '-')))} {tool.get('n_support', '-')}/{tool.get('n_against', '-')}</td>"
            f"<td>{e(_fmt(tool.get('reliability')))}</td></tr>"
        )
    out.append("</table>")
    return "".join(out)


def _families_table(run: _Run) -> str:
    e = html.escape
    out = [
        "<table><tr><th>family</th><th>tasks</th><th>solve rate</th><th>first: tokens</th>"
        "<th>later: mean tokens</th><th>first: calls</th><th>later: mean calls</th>"
        "<th>first: seconds</th><th>later: mean seconds</th></tr>"
    ]
    for family, f in run.summary["families"].items():
        out.append(
            f"<tr><td>{e(family)}</td><td>{f['n']}</td><td>{_fmt(f['solve_rate'])}</td>"
            f"<td>{_fmt(f['first_tokens'])}</td><td>{_fmt(f['later_tokens'])}</td>"
            f"<td>{_fmt(f['first_calls'])}</td><td>{_fmt(f['later_calls'])}</td>"
            f"<td>{_fmt(f.get('first_seconds'))}</td><td>{_fmt(f.get('later_seconds'))}</td></tr>"
        )
    out.append("</table>")
    return "".join(out)
