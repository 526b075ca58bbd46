"""The figures over a run, computed from result rows and batch records."""

from __future__ import annotations

from stream_kit import result_row

from agent.stream import metrics


def _rows() -> list[dict]:
    # First half: no tools, expensive; second half: tools reused, cheap; one failure.
    rows = [
        result_row(f"a-{i}", batch=i // 2, correct=True, tokens=1000, calls=3) for i in range(4)
    ]
    rows += [
        result_row(f"a-{i}", batch=i // 2, correct=True, tokens=200, calls=2, used=["t"])
        for i in range(4, 7)
    ]
    rows.append(result_row("b-0", batch=3, correct=False, tokens=600, calls=3))
    rows[0]["tools_created"] = ["t"]
    return rows


def test_figures_and_halves() -> None:
    rows = _rows()
    f = metrics.figures(rows)
    assert f["n_success"] == 7 and f["solve_rate"] == round(7 / 8, 4)
    assert f["reuse_rate"] == round(3 / 8, 4)
    assert f["tokens_per_success"] == round((4000 + 600 + 600) / 7, 4)
    halves = metrics.half_figures(rows)
    assert halves["first"]["tokens_per_success"] == 1000
    assert halves["second"]["tokens_per_success"] == round(1200 / 3, 4)
    assert halves["tokens_per_success_ratio"] == round(400 / 1000, 4)


def test_unlabelled_tasks_succeed_by_the_verifiers_verdict() -> None:
    row = result_row("x-0", batch=0, correct=True, tokens=1, calls=1)
    row["correct"] = None
    assert metrics.succeeded(row)
    row["status"] = "failed"
    assert not metrics.succeeded(row)


def test_rolling_mean() -> None:
    assert metrics.rolling([1, 0, 1, 1], 2) == [1.0, 0.5, 0.5, 1.0]


def test_library_sizes_are_what_each_task_saw() -> None:
    rows = _rows()  # batches 0, 0, 1, 1, 2, 2, 3, 3
    batches = [
        {"batch": 0, "library_size": 1},
        {"batch": 1, "library_size": 1},
        {"batch": 2, "library_size": 2},
    ]
    # Batch 0 saw the library of the start; each later batch, the one after the previous.
    assert metrics.library_sizes(rows, batches, start=4) == [4, 4, 1, 1, 1, 1, 2, 2]
    assert metrics.library_size_end(batches, start=4) == 2
    assert metrics.library_size_end([], start=4) == 4


def test_family_first_occurrence_against_later() -> None:
    fam = metrics.family_costs(_rows())
    assert fam["a"]["first_tokens"] == 1000
    assert fam["a"]["later_tokens"] == round((3000 + 600) / 6, 4)
    assert fam["b"]["later_tokens"] is None


def test_summary_counts_forge_cost_and_tools() -> None:
    batches = [{"batch": 0, "library_size": 1, "forge_tokens": 700, "forge_calls": 1}]
    s = metrics.summarize(
        _rows(), batches, {"run_id": "r", "feedback": "none", "learn": True, "n_tasks": 10}
    )
    assert s["n_done"] == 8 and s["n_tasks"] == 10
    assert s["statuses"] == {"solved": 7, "failed": 1}
    assert s["tools_created"] == ["t"] and s["tools_used"] == {"t": 3}
    assert s["tokens_per_success_with_forge"] == round((5200 + 700) / 7, 4)


def test_halves_without_a_success_in_one_half_have_no_ratio() -> None:
    from stream_kit import result_row

    from agent.stream.metrics import half_figures

    rows = [result_row("a-0", batch=0, correct=True, tokens=100, calls=1)]
    rows += [result_row("a-1", batch=0, correct=False, tokens=100, calls=1)]
    halves = half_figures(rows)
    assert halves["second"]["tokens_per_success"] is None
    assert halves["tokens_per_success_ratio"] is None


def test_evidence_figures_tell_audits_from_the_route_on_new_answers() -> None:
    from agent.stream.metrics import evidence_figures

    rows = [
        # a tool on probation answered; its use was audited by one route call
        {"status": "solved", "correct": True, "answer": "a", "answer_tool": "t",
         "tools_used": ["t"], "n_calls": 1, "check_calls": 1},
        # a trusted tool answered with no model call
        {"status": "solved", "correct": True, "answer": "b", "answer_tool": "t",
         "tools_used": ["t"], "n_calls": 0, "check_calls": 0},
        # a new program's answer, confirmed by the route
        {"status": "solved", "correct": False, "answer": "c", "n_calls": 3, "check_calls": 1},
        {"status": "unverified", "correct": False, "answer": "d", "n_calls": 4, "check_calls": 1},
    ]  # fmt: skip
    ev = evidence_figures(rows)
    assert ev["check_calls_per_task"] == 0.75 and ev["audit_calls_per_task"] == 0.25
    assert ev["zero_call_answers"] == 1 and ev["zero_call_precision"] == 1.0
    assert ev["solved_precision"] == round(2 / 3, 4) and ev["share_unverified"] == 0.25
