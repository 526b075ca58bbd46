"""`evoagent runs list|show`, `evoagent report`, and `evoagent run`'s input errors, on
run folders written through `RunStore` the way the runner writes them."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pytest
from stream_kit import result_row
from typer.testing import CliRunner

from agent.stream.store import RunStore

runner = CliRunner()


def _run(home: Path, run_id: str, *, learn: bool) -> RunStore:
    tasks = [
        {"id": f"{f}-{i}", "task": "t", "expected": "x", "tags": [f]}
        for i in range(6)
        for f in ("a", "b")
    ]
    meta = {
        "run_id": run_id,
        "n_tasks": len(tasks),
        "status": "finished",
        "learn": learn,
        "feedback": "none",
        "model": "scripted:m.yaml",
        "stream": "s.jsonl",
        "started_at": run_id,
    }
    store = RunStore.create(home, run_id, meta, tasks)
    for i, task in enumerate(tasks):
        cheap = learn and i >= 2
        store.append_result(
            result_row(
                task["id"],
                batch=i // 4,
                correct=i != 5,
                tokens=300 if cheap else 1200,
                calls=2 if cheap else 3,
                used=[f"solve_{task['tags'][0]}"] if cheap else [],
            )
        )
    for b in range(3):
        created = {"a-0": ["solve_a"], "b-0": ["solve_b"]} if learn and b == 0 else {}
        store.append_batch({"batch": b, "created": created, "library_size": 2 if learn else 0})
    store.write_tools(
        [
            {
                "name": "solve_a",
                "version": 1,
                "signature": "solve_a(text: str) -> str",
                "docstring": "Solve an <a> task.",
                "reliability": 0.9,
            }
        ]
        if learn
        else []
    )
    return store


def test_runs_list_and_show(cli, home: Path) -> None:
    _run(home, "2026-learn", learn=True)
    _run(home, "2026-base", learn=False)
    out = runner.invoke(cli, ["runs", "list", "--json"])
    assert out.exit_code == 0, out.output
    runs = json.loads(out.output)
    assert [(r["run_id"], r["n_done"], r["learn"]) for r in runs] == [
        ("2026-base", 12, False),
        ("2026-learn", 12, True),
    ]
    out = runner.invoke(cli, ["runs", "show", "2026-learn", "--json", "--tasks"])
    assert out.exit_code == 0, out.output
    shown = json.loads(out.output)
    assert shown["tools_created"] == ["solve_a", "solve_b"]
    assert shown["solve_rate"] == round(11 / 12, 4)
    assert shown["tasks"][0]["tools_created"] == ["solve_a"]
    out = runner.invoke(cli, ["runs", "show", "2026-learn"])
    assert out.exit_code == 0 and "solve rate" in out.output and "92%" in out.output


def test_unknown_run_is_one_line_not_a_traceback(cli, home: Path) -> None:
    out = runner.invoke(cli, ["runs", "show", "nope"])
    assert out.exit_code == 1
    assert "no run 'nope'" in out.output and "Traceback" not in out.output


def test_report_with_baseline_is_one_self_contained_page(cli, home: Path, tmp_path: Path) -> None:
    _run(home, "2026-learn", learn=True)
    _run(home, "2026-base", learn=False)
    target = tmp_path / "out" / "report.html"
    out = runner.invoke(
        cli, ["report", "2026-learn", "--baseline", "2026-base", "--out", str(target)]
    )
    assert out.exit_code == 0, out.output
    page = target.read_text()
    images = re.findall(r"src='data:image/png;base64,([^']+)'", page)
    assert len(images) == 6  # library, solve rate, tokens, seconds, reuse, new tools
    assert all(base64.b64decode(i).startswith(b"\x89PNG") for i in images)
    assert "src='http" not in page and "<script" not in page  # nothing fetched from outside
    assert "2026-learn (learning, feedback none)" in page
    assert "2026-base (no-learn, feedback none)" in page
    assert "tokens per solved task: this / baseline" in page
    assert "Solve an &lt;a&gt; task." in page  # tool docstrings are escaped
    pngs = sorted(p.name for p in target.parent.glob("*.png"))
    assert pngs == sorted(
        f"report-{k}.png"
        for k in ("library", "solve_rate", "tokens", "seconds", "reuse_rate", "new_tools")
    )


def test_report_defaults_to_the_run_folder(cli, home: Path) -> None:
    store = _run(home, "r1", learn=True)
    out = runner.invoke(cli, ["report", "r1"])
    assert out.exit_code == 0, out.output
    assert (store.dir / "report.html").is_file() and (store.dir / "report-library.png").is_file()
    out = runner.invoke(cli, ["report", "r1", "--out", "x.pdf"])
    assert out.exit_code == 1 and ".html" in out.output


def test_report_to_a_place_that_cannot_be_written_is_one_error(
    cli, home: Path, tmp_path: Path
) -> None:
    _run(home, "r1", learn=True)
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    out = runner.invoke(cli, ["report", "r1", "--out", str(blocker / "r.html")])
    assert out.exit_code == 1, out.output
    assert "cannot write the report" in out.output and "--out" in out.output
    assert not isinstance(out.exception, OSError)  # no traceback


def test_run_with_a_bad_stream_does_not_start(cli, home: Path, tmp_path: Path) -> None:
    stream = tmp_path / "s.jsonl"
    stream.write_text('{"id": "a", "task": "t"}\n{"id": "b"}\n')
    out = runner.invoke(cli, ["run", str(stream), "--model", "scripted:nowhere.yaml"])
    assert out.exit_code == 1
    assert f"{stream}:2: " in out.output and '"task" is missing' in out.output
    assert not (home / "runs").exists()


@pytest.mark.parametrize("option", [["--limit", "0"], ["--limit", "-1"], ["--workers", "0"]])
def test_run_refuses_a_limit_or_workers_below_one(
    cli, home: Path, tmp_path: Path, option: list[str]
) -> None:
    # --limit -1 used to drop the last task silently, --limit 0 to run them all
    stream = tmp_path / "s.jsonl"
    stream.write_text('{"id": "a", "task": "t"}\n{"id": "b", "task": "u"}\n')
    out = runner.invoke(cli, ["run", str(stream), "--model", "scripted:nowhere.yaml", *option])
    assert out.exit_code == 1
    assert f"{option[0]} must be at least 1" in out.output
    assert not (home / "runs").exists()


def test_run_needs_a_stream_or_resume(cli, home: Path) -> None:
    out = runner.invoke(cli, ["run"])
    assert out.exit_code == 1 and "give the STREAM" in out.output
    out = runner.invoke(cli, ["run", "--resume", "nope"])
    assert out.exit_code == 1 and "no run 'nope'" in out.output


def test_a_run_with_no_finished_task_still_shows_and_reports(cli, home: Path) -> None:
    RunStore.create(
        home,
        "empty",
        {
            "run_id": "empty",
            "n_tasks": 1,
            "status": "stopped",
            "learn": True,
            "feedback": "labels",
            "started_at": "x",
        },
        [{"id": "a", "task": "t"}],
    )
    out = runner.invoke(cli, ["runs", "show", "empty"])
    assert out.exit_code == 0, out.output
    assert "0 / 1" in out.output
    out = runner.invoke(cli, ["report", "empty"])
    assert out.exit_code == 0, out.output
    assert "feedback labels" in (home / "runs" / "empty" / "report.html").read_text()


def test_run_without_a_model_uses_the_local_default_and_leaves_no_run_when_it_is_missing(
    cli, home: Path, tmp_path: Path
) -> None:
    stream = tmp_path / "s.jsonl"
    stream.write_text('{"id": "a", "task": "t"}\n')
    out = runner.invoke(cli, ["-c", f"local.models_dir={tmp_path}", "run", str(stream)])
    assert out.exit_code == 1
    assert "is not downloaded" in out.output and "evoagent models pull" in out.output
    assert "Traceback" not in out.output
    assert not (home / "runs").exists()


def test_ctrl_c_says_how_to_resume(
    cli, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agent.stream import launch as stream_runner
    from agent.stream.store import runs_dir

    def interrupted(tasks, settings, options, *, run_id, **kw):  # type: ignore[no-untyped-def]
        (runs_dir(settings.home) / run_id).mkdir(parents=True)  # the run had started
        raise KeyboardInterrupt

    monkeypatch.setattr(stream_runner, "start_run", interrupted)
    stream = tmp_path / "s.jsonl"
    stream.write_text('{"id": "a", "task": "t"}\n')
    out = runner.invoke(cli, ["run", str(stream), "--run-id", "r9", "-q"])
    assert out.exit_code == 130
    assert "interrupted: resume with `evoagent run --resume r9`" in out.output


def test_resume_with_another_model_is_refused_at_the_command_line(cli, home: Path) -> None:
    RunStore.create(
        home,
        "r1",
        {
            "run_id": "r1",
            "n_tasks": 1,
            "status": "stopped",
            "learn": True,
            "feedback": "none",
            "model": "openai:x",
            "base_url": None,
            "options": {},
            "started_at": "x",
        },
        [{"id": "a", "task": "t"}],
    )
    out = runner.invoke(cli, ["run", "--resume", "r1", "--model", "openai:y", "-q"])
    assert out.exit_code == 1 and "Traceback" not in out.output
    assert "run r1 was started with model openai:x" in out.output
    assert "resume it without --model" in out.output


HOSTILE = "[/x] [bold]not markup \x1b[2J\x1b]0;title\x07 end"


def test_markup_and_control_characters_in_answers_print_literally(home: Path) -> None:
    """An answer is whatever the model's code produced: `[/x]` in it must not crash the
    table, and escape sequences must not reach the terminal."""
    from agent.cli import app

    store = _run(home, "hostile", learn=True)
    row = result_row("a-9", batch=2, correct=False, tokens=10, calls=1, used=[HOSTILE])
    row["answer"] = HOSTILE
    row["reason"] = HOSTILE
    store.append_result(row)
    out = runner.invoke(app, ["runs", "show", "hostile", "--tasks"])
    assert out.exit_code == 0, out.output
    assert "[/x]" in out.output  # shown as written (the table may fold the rest)
    assert "\x1b" not in out.output and "\x07" not in out.output
