"""Tools that call tools: a call kept as a call, its dependency on record, no circles, and a
callee's new version re-running its callers' tests (issue 27, composition)."""

from __future__ import annotations

from typing import Any

import pytest

from memory import HashEmbedder, Library, Provenance, ToolDraft
from memory.snapshot import SnapshotLibrary
from toolforge import Trace, forge
from toolforge.composition import all_callers, circle_problem, recheck_callers
from toolforge.config import ForgeConfig
from toolforge.people import add_people_tool
from toolforge.static_gate import check_static

CFG = ForgeConfig()

COUNT = '''def count_words(text: str) -> int:
    """The number of whitespace-separated words in text."""
    return len(text.split())
'''
COUNT_TESTS = """from tools import count_words


def test_three():
    assert count_words("a b c") == 3


def test_one():
    assert count_words("one") == 1
"""
# The next version: words only (a lone dash is not one). It passes the old tests, and the
# old version fails its new one: the forge admits it as count_words v2.
COUNT_V2 = '''def count_words(text: str) -> int:
    """The number of words in text: whitespace-separated tokens with a letter or digit."""
    return len([w for w in text.split() if any(ch.isalnum() for ch in w)])
'''
COUNT_V2_TESTS = (
    COUNT_TESTS
    + """

def test_a_dash_is_not_a_word():
    assert count_words("x - y") == 2
"""
)
LABEL = '''from tools import count_words


def word_count_label(text: str) -> str:
    """A label for text that says how many words it has, such as '2 words'."""
    return f"{count_words(text)} words"
'''
LABEL_TESTS = """from tools import word_count_label


def test_two():
    assert word_count_label("a b") == "2 words"


def test_dash():
    assert word_count_label("x - y") == "3 words"
"""


def _add(lib: Library, source: str, tests: str, sandbox: Any) -> Any:
    return add_people_tool(source, tests, "tool.py", lib, sandbox, CFG)


def _draft(name: str, source: str, tests: str = "") -> ToolDraft:
    return ToolDraft(
        name=name,
        source=source,
        tests=tests,
        signature=f"{name}(text: str)",
        docstring="d",
        provenance=Provenance("added in a test"),
    )


# ---------------------------------------------------------------- without a sandbox


def test_the_static_gate_lets_a_tool_import_active_library_tools_only() -> None:
    ok = check_static(LABEL, LABEL_TESTS, CFG, callable_tools={"count_words"})
    assert ok.ok, ok.problems
    unknown = check_static(LABEL, LABEL_TESTS, CFG, callable_tools={"sort_words"})
    assert not unknown.ok
    assert any("from tools import count_words" in p for p in unknown.problems)
    itself = LABEL.replace("import count_words", "import count_words, word_count_label")
    refused = check_static(
        itself, LABEL_TESTS, CFG, callable_tools={"count_words", "word_count_label"}
    )
    assert any("never itself" in p for p in refused.problems)
    plain = check_static(
        LABEL.replace("from tools import count_words", "import tools"),
        LABEL_TESTS,
        CFG,
        callable_tools={"count_words"},
    )
    assert not plain.ok


def test_sources_come_with_their_callees_transitively(library: Library) -> None:
    library.add_tool(_draft("count_words", COUNT))
    library.add_tool(_draft("word_count_label", LABEL))
    shout = (
        "from tools import word_count_label\n\n\n"
        "def shout_count(text: str) -> str:\n"
        '    """The word-count label in capitals."""\n'
        "    return word_count_label(text).upper()\n"
    )
    library.add_tool(_draft("shout_count", shout))
    assert set(library.tool_sources(["shout_count"])) == {
        "shout_count",
        "word_count_label",
        "count_words",
    }
    assert library.callees("word_count_label") == ["count_words"]
    assert all_callers("count_words", library) == ["word_count_label", "shout_count"]
    # A Ray worker's snapshot ships them too, even a callee no longer active.
    library.set_status("count_words", "quarantined", "test")
    snap_sources = SnapshotLibrary(library.snapshot(), HashEmbedder()).tool_sources(["shout_count"])
    assert snap_sources["count_words"] == COUNT


def test_a_circle_of_imports_is_refused(library: Library) -> None:
    library.add_tool(_draft("count_words", COUNT))
    library.add_tool(_draft("word_count_label", LABEL))
    circular = COUNT.replace(
        "def count_words", "from tools import word_count_label\n\n\ndef count_words"
    )
    problem = circle_problem("count_words", circular, library)
    assert problem is not None and "circle" in problem
    assert circle_problem("word_count_label", LABEL, library) is None


# ---------------------------------------------------------------- in the sandbox


def test_a_tool_calling_another_is_admitted_with_its_dependency(
    library: Library, any_sandbox: Any
) -> None:
    assert _add(library, COUNT, COUNT_TESTS, any_sandbox).status == "admitted"
    outcome = _add(library, LABEL, LABEL_TESTS, any_sandbox)
    assert outcome.status == "admitted", outcome.reason
    tool = library.get_tool("word_count_label")
    assert tool is not None
    # kept as a call, not inlined: the dependency is the import, read back as callees
    assert "from tools import count_words" in tool.source
    assert "len(text.split())" not in tool.source
    assert library.callees("word_count_label") == ["count_words"]
    assert library.callers("count_words") == ["word_count_label"]
    assert "calls library tool(s) count_words" in tool.verification_log


def test_a_tool_calling_an_unknown_tool_is_not_admitted(library: Library, any_sandbox: Any) -> None:
    outcome = _add(library, LABEL, LABEL_TESTS, any_sandbox)
    assert outcome.status == "rejected"
    assert "from tools import count_words" in outcome.reason
    assert library.get_tool("word_count_label") is None


def test_a_callee_new_version_reruns_its_callers_and_quarantines_a_broken_one(
    library: Library, any_sandbox: Any
) -> None:
    _add(library, COUNT, COUNT_TESTS, any_sandbox)
    _add(library, LABEL, LABEL_TESTS, any_sandbox)
    outcome = _add(library, COUNT_V2, COUNT_V2_TESTS, any_sandbox)
    assert outcome.status == "versioned", outcome.reason
    assert "word_count_label" in outcome.reason and "quarantined" in outcome.reason
    caller = library.get_tool("word_count_label")
    assert caller is not None and caller.status == "quarantined"
    assert "its stored tests fail with count_words v2, which it calls" in caller.status_reason
    assert "test_dash" in caller.status_reason


def test_a_callee_change_that_keeps_the_callers_right_leaves_them_active(
    library: Library, any_sandbox: Any
) -> None:
    _add(library, COUNT, COUNT_TESTS, any_sandbox)
    _add(
        library,
        LABEL,
        LABEL_TESTS.replace('"x - y") == "3 words"', '"x y z") == "3 words"'),
        any_sandbox,
    )
    library.add_version("count_words", _draft("count_words", COUNT_V2, COUNT_V2_TESTS))
    check = recheck_callers("count_words", library, any_sandbox, CFG)
    assert [r.tool for r in check.reports] == ["word_count_label"]
    assert check.reports[0].passed and check.quarantined == []
    caller = library.get_tool("word_count_label")
    assert caller is not None and caller.status == "active"


@pytest.mark.parametrize("status", ["active", "quarantined"])
def test_a_caller_runs_with_its_callee_in_the_agents_sandbox_run(
    library: Library, any_sandbox: Any, status: str
) -> None:
    """The act step ships a chosen tool's callees (whatever their status)."""
    _add(library, COUNT, COUNT_TESTS, any_sandbox)
    _add(library, LABEL, LABEL_TESTS, any_sandbox)
    if status != "active":
        library.set_status("count_words", status, "test")
    code = "from tools import word_count_label\nanswer = word_count_label(TASK)\n"
    res = any_sandbox.run(
        code,
        tools=library.tool_sources(["word_count_label"]),
        timeout_s=30,
        inputs={"TASK": "p q r s"},
    )
    assert res.ok and res.answer == "4 words"
    assert [c.tool for c in res.tool_calls] == ["word_count_label", "count_words"]


def test_a_solution_that_called_a_library_tool_is_forged_into_a_caller(
    library: Library, any_sandbox: Any
) -> None:
    """Extraction (no model) keeps the solution's call of the library tool as a call."""
    _add(library, COUNT, COUNT_TESTS, any_sandbox)
    task = "How many words are in this sentence? Sentence: the cat sat down"
    code = (
        "from tools import count_words\n\n\n"
        "def word_count_label(text: str) -> str:\n"
        '    """A label for the part after the last colon: how many words it has."""\n'
        "    return f\"{count_words(text.rsplit(':', 1)[-1])} words\"\n\n\n"
        "answer = word_count_label(TASK)\n"
        'check = word_count_label("Sentence: a b")\n'
    )
    trace = Trace(
        task=task,
        task_id="wc-1",
        code=code,
        answer="4 words",
        verdict="correct",
        tools_used=["count_words"],
        episode_id="ep-wc-1",
    )
    outcome = forge(trace, library, any_sandbox, config=CFG)
    assert outcome.status == "admitted", outcome.reason
    tool = library.get_tool("word_count_label")
    assert tool is not None and "from tools import count_words" in tool.source
    assert library.callers("count_words") == ["word_count_label"]


def test_the_verifier_judges_only_the_jobs_own_records_and_refuses_strangers() -> None:
    """A callee's calls are on record too: they are left out of the job's verdict, and a
    record of a tool the job was not shipped with rejects the run."""
    from sandbox.base import ExecResult, ToolCall
    from toolforge.harness import Job
    from toolforge.verify import JobResult, read_calls

    job = Job("j", "word_count_label", LABEL, deps={"count_words": COUNT})
    job.add_tests("own", LABEL_TESTS)
    own = [
        ToolCall("word_count_label", ["a b"], plain="2 words", result="2 words"),
        ToolCall("count_words", ["a b"], plain=2, result=2),
        ToolCall("word_count_label", ["x - y"], plain="3 words", result="3 words"),
        ToolCall("count_words", ["x - y"], plain=3, result=3),
    ]
    result = JobResult("j")
    read_calls(job, ExecResult(exit_code=0, tool_calls=own), result, 10.0)
    assert result.error is None and result.passed("own") and result.n_confirmed() == 2
    stranger = [*own, ToolCall("sort_words", ["b a"], plain="a b", result="a b")]
    with pytest.raises(ValueError, match="another tool"):
        read_calls(job, ExecResult(exit_code=0, tool_calls=stranger), JobResult("j"), 10.0)
