"""The forge end to end with the real Docker sandbox (the issue's must-hold list)."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from forge_fakes import QueueModel, reply

from memory import Library, UsageEvent
from toolforge import ForgeOutcome, Trace, forge, forge_batch, refine
from toolforge.config import ForgeConfig

pytestmark = pytest.mark.docker

SORT_TASK = "Sort the following words alphabetically: List: syndrome therefrom apple"
SORT_CODE = '''
def sort_words(text: str) -> str:
    """Sort the words after the last colon alphabetically; return them joined by spaces."""
    return " ".join(sorted(text.rsplit(":", 1)[-1].split()))


answer = sort_words("Sort the following words alphabetically: List: syndrome therefrom apple")
check = sort_words("List: pear fig")
'''

CFG = ForgeConfig()


EPISODES = itertools.count(1)


class CountingSandbox:
    """The real sandbox, with a count of its runs."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.kind, self.runs = inner, inner.kind, 0

    def run(self, code: str, *, tools: Any = None, **limits: Any) -> Any:
        self.runs += 1
        return self.inner.run(code, tools=tools, **limits)

    def close(self) -> None:
        self.inner.close()


def sort_trace(
    task: str = SORT_TASK, code: str = SORT_CODE, answer: Any = "apple syndrome therefrom"
) -> Trace:
    return Trace(
        task=task,
        task_id="ws-1",
        code=code,
        answer=answer,
        verdict="correct",
        # Each trace is a new episode: the forge replays, not redoes, an episode it has seen.
        episode_id=f"ep-{next(EPISODES)}",
    )


TOOL = '''def sort_words(text: str) -> str:
    """Sort the words after the last colon alphabetically; return them joined by spaces."""
    return " ".join(sorted(text.rsplit(":", 1)[-1].split()))
'''
TESTS = """from tools import sort_words


def test_two_words():
    assert sort_words("List: pear apple") == "apple pear"


def test_three_words():
    assert sort_words("Sort these: List: c b a") == "a b c"


def test_one_word():
    assert sort_words("List: kiwi") == "kiwi"
"""


def model_forge(
    library: Library, sandbox: Any, *replies: str, trace: Trace | None = None
) -> tuple[ForgeOutcome, QueueModel]:
    model = QueueModel(replies=list(replies))
    return forge(trace or sort_trace(), library, sandbox, model=model, config=CFG), model


# --- a good trace --------------------------------------------------------------------


def test_good_trace_yields_one_tool_with_tests_from_observed_calls(
    library: Library, docker_sandbox: Any
) -> None:
    outcome = forge(sort_trace(), library, docker_sandbox, config=CFG)
    assert outcome.status == "admitted", outcome
    assert (outcome.tool, outcome.version) == ("sort_words", 1)
    tool = library.get_tool("sort_words")
    assert tool is not None and tool.status == "active"
    assert f"assert sort_words({SORT_TASK!r}) == 'apple syndrome therefrom'" in tool.tests
    assert "assert sort_words('List: pear fig') == 'fig pear'" in tool.tests
    assert "perturbation check" in tool.verification_log
    assert [p.task for p in tool.provenance] == [SORT_TASK]
    assert [t.name for t in library.list_tools()] == ["sort_words"]


def test_a_quarantined_tool_is_not_brought_back_by_a_new_trace(
    library: Library, docker_sandbox: Any
) -> None:
    assert forge(sort_trace(), library, docker_sandbox, config=CFG).status == "admitted"
    library.set_status("sort_words", "quarantined", "wrong on mixed case, says a person")
    outcome = forge(sort_trace(), library, docker_sandbox, config=CFG)
    assert outcome.status == "rejected"
    assert "sort_words is quarantined (wrong on mixed case" in outcome.reason
    assert "tools restore sort_words" in outcome.reason
    tool = library.get_tool("sort_words")
    assert tool is not None and (tool.status, tool.version) == ("quarantined", 1)


def test_model_distilled_tool_is_admitted_with_its_tests(
    library: Library, docker_sandbox: Any
) -> None:
    outcome, model = model_forge(library, docker_sandbox, reply(TOOL, TESTS))
    assert outcome.status == "admitted", outcome
    tool = library.get_tool("sort_words")
    assert tool is not None and "test_three_words" in tool.tests
    assert len(model.calls) == 1 and SORT_TASK in model.calls[0]["messages"][0]
    assert model.calls[0]["step"] == "distill" and model.calls[0]["grammar"]


def test_a_public_helper_is_a_second_candidate_and_the_called_function_leads(
    library: Library, docker_sandbox: Any
) -> None:
    code = """
def words_after_colon(text: str) -> list[str]:
    \"\"\"Return the words after the last colon of a text.\"\"\"
    return text.rsplit(":", 1)[-1].split()


def _join(words):
    return " ".join(words)


def sort_words(text: str) -> str:
    \"\"\"Sort the words after the last colon alphabetically; return them joined by spaces.\"\"\"
    return _join(sorted(words_after_colon(text)))


answer = sort_words("Sort the following words alphabetically: List: syndrome therefrom apple")
"""
    outcome = forge(sort_trace(code=code), library, docker_sandbox, config=CFG)
    assert outcome.status == "admitted", outcome
    assert outcome.tool == "sort_words"
    assert [a.tool for a in outcome.accepted] == ["sort_words", "words_after_colon"]
    tool = library.get_tool("sort_words")
    assert tool is not None
    # Its module carries the helpers it needs, made private.
    assert "def _words_after_colon(" in tool.source and "def _join(" in tool.source


def test_undocumented_function_without_a_model_is_rejected_by_the_static_gate(
    library: Library, docker_sandbox: Any
) -> None:
    code = SORT_CODE.replace(
        '    """Sort the words after the last colon alphabetically; return them joined by spaces."""\n',
        "",
    )
    outcome = forge(sort_trace(code=code), library, docker_sandbox, config=CFG)
    assert outcome.status == "rejected"
    assert "no docstring" in outcome.reason


# --- rejections ------------------------------------------------------------------------


def test_hard_coded_answer_is_rejected_for_that_reason(
    library: Library, docker_sandbox: Any
) -> None:
    cheat = TOOL.replace(
        'return " ".join(sorted(text.rsplit(":", 1)[-1].split()))',
        'return "apple syndrome therefrom"',
    )
    outcome, _ = model_forge(library, docker_sandbox, reply(cheat, TESTS))
    assert outcome.status == "rejected"
    assert "hard-coded answer" in outcome.reason
    stored = library.rejections("sort_words")
    assert stored and "hard-coded answer" in stored[0]["reason"]
    assert library.get_tool("sort_words") is None


def test_failing_test_is_named(library: Library, docker_sandbox: Any) -> None:
    wrong = TESTS.replace('== "a b c"', '== "c b a"')
    outcome, _ = model_forge(library, docker_sandbox, reply(TOOL, wrong))
    assert outcome.status == "rejected"
    assert "test test_three_words failed" in outcome.reason
    assert "'a b c'" in outcome.reason  # what the tool returned


def test_subprocess_import_is_rejected_by_the_static_gate(
    library: Library, docker_sandbox: Any
) -> None:
    outcome, _ = model_forge(
        library, docker_sandbox, reply("import subprocess\n\n\n" + TOOL, TESTS)
    )
    assert outcome.status == "rejected"
    assert outcome.rejections[0].stage == "static"
    assert "import of 'subprocess' is not allowed" in outcome.reason


def test_lookup_table_is_caught_by_the_perturbation_check(
    library: Library, docker_sandbox: Any
) -> None:
    lookup = '''_KNOWN = {"List: pear apple": "apple pear", "Sort these: List: c b a": "a b c", "List: kiwi": "kiwi"}


def sort_words(text: str) -> str:
    """Sort the words after the last colon alphabetically; return them joined by spaces."""
    return _KNOWN[text]
'''
    outcome, _ = model_forge(library, docker_sandbox, reply(lookup, TESTS))
    assert outcome.status == "rejected"
    assert "perturbation check" in outcome.reason and "KeyError" in outcome.reason


def test_a_tool_may_reject_malformed_mutated_input_with_value_error(
    library: Library, docker_sandbox: Any
) -> None:
    # Reordering the words of "List: pear apple" keeps it valid; dropping the list makes it
    # malformed, and a general tool rightly refuses that with ValueError.
    strict = '''def sort_words(text: str) -> str:
    """Sort the words after the last colon alphabetically; return them joined by spaces."""
    head, sep, tail = text.rpartition(":")
    if not sep or not tail.split():
        raise ValueError("expected 'PREFIX: word word ...'")
    return " ".join(sorted(tail.split()))
'''
    outcome, _ = model_forge(library, docker_sandbox, reply(strict, TESTS))
    assert outcome.status == "admitted", outcome.reason


def test_a_tool_that_rejects_every_mutated_input_is_caught(
    library: Library, docker_sandbox: Any
) -> None:
    only_examples = '''_KNOWN = {"List: pear apple": "apple pear", "Sort these: List: c b a": "a b c", "List: kiwi": "kiwi"}


def sort_words(text: str) -> str:
    """Sort the words after the last colon alphabetically; return them joined by spaces."""
    if text not in _KNOWN:
        raise ValueError("unknown input")
    return _KNOWN[text]
'''
    outcome, _ = model_forge(library, docker_sandbox, reply(only_examples, TESTS))
    assert outcome.status == "rejected"
    assert "rejected" in outcome.reason and "perturbation check" in outcome.reason


def test_nondeterministic_tool_is_rejected(library: Library, docker_sandbox: Any) -> None:
    rand = '''import random


def pick_word(text: str) -> str:
    """Pick one of the words of a text at random."""
    return random.choice(text.split())
'''
    tests = "from tools import pick_word\n\n" + "\n".join(
        f"def test_{i}():\n    assert pick_word('{words}') in {words.split()!r}\n\n"
        for i, words in enumerate(
            [
                "a b c d e f g h i j k l m n o p",
                "q r s t u v w x y z aa bb cc dd",
                "ee ff gg hh ii jj kk ll mm nn",
            ]
        )
    )
    outcome, _ = model_forge(library, docker_sandbox, reply(rand, tests))
    assert outcome.status == "rejected"
    assert "determinism" in outcome.reason


def test_slow_test_hits_the_per_test_limit(library: Library, docker_sandbox: Any) -> None:
    slow = TOOL.replace("    return", "    while text:\n        pass\n    return")
    cfg = ForgeConfig(per_test_timeout_s=0.5)
    model = QueueModel(replies=[reply(slow, TESTS)])
    outcome = forge(sort_trace(), library, docker_sandbox, model=model, config=cfg)
    assert outcome.status == "rejected"
    assert "timed out" in outcome.reason and "per-test limit" in outcome.reason


# --- dedup and merge -------------------------------------------------------------------


def test_two_equivalent_traces_make_one_tool_with_two_provenances(
    library: Library, docker_sandbox: Any
) -> None:
    first = forge(sort_trace(), library, docker_sandbox, config=CFG)
    other_task = "Sort the following words alphabetically: List: zebra mango"
    other_code = '''
def sort_words(text: str) -> str:
    """Alphabetically sort the words that follow the final colon, space separated."""
    tail = text.split(":")[-1]
    return " ".join(sorted(w for w in tail.split()))


answer = sort_words("Sort the following words alphabetically: List: zebra mango")
'''
    second = forge(
        Trace(task=other_task, code=other_code, answer="mango zebra"),
        library,
        docker_sandbox,
        config=CFG,
    )
    assert first.status == "admitted"
    assert second.status == "merged", second
    assert second.tool == "sort_words"
    tool = library.get_tool("sort_words")
    assert tool is not None and tool.version == 1
    assert {p.task for p in tool.provenance} == {SORT_TASK, other_task}
    assert "zebra mango" in tool.tests  # the merged candidate's observed call joined the tests
    assert len(library.list_tools()) == 1


def test_a_batch_of_one_family_adds_one_tool(library: Library, docker_sandbox: Any) -> None:
    tasks = [
        f"Sort the following words alphabetically: List: {w}"
        for w in ("pear apple", "b c a", "kiwi fig date")
    ]
    traces = [
        Trace(
            task=t,
            task_id=f"t{i}",
            code=SORT_CODE.replace(SORT_TASK, t).replace(
                'check = sort_words("List: pear fig")\n', ""
            ),
            answer=" ".join(sorted(t.rsplit(":", 1)[-1].split())),
        )
        for i, t in enumerate(tasks)
    ]
    counting = CountingSandbox(docker_sandbox)
    outcomes = forge_batch(traces, library, counting, config=CFG)
    assert sorted(o.status for o in outcomes) == ["admitted", "merged", "merged"], outcomes
    # One run per job, so no candidate shares a process with another's code or tests:
    # per candidate an instrumented re-run, its checks, their determinism re-run, and the
    # other two candidates' tests against it (the batch dedup): 4 x 3 runs.
    assert counting.runs == 12
    tool = library.get_tool("sort_words")
    assert tool is not None and len(tool.provenance) == 3
    assert len(library.list_tools()) == 1


def test_a_better_candidate_becomes_version_two(library: Library, docker_sandbox: Any) -> None:
    assert forge(sort_trace(), library, docker_sandbox, config=CFG).status == "admitted"
    better = TOOL.replace(".split()))", ".split(), key=str.lower))")
    better_tests = (
        TESTS
        + '\n\ndef test_mixed_case():\n    assert sort_words("List: Banana apple") == "apple Banana"\n'
    )
    outcome, _ = model_forge(library, docker_sandbox, reply(better, better_tests))
    assert outcome.status == "versioned", outcome
    assert (outcome.tool, outcome.version) == ("sort_words", 2)
    versions = library.tool_versions("sort_words")
    assert [v.version for v in versions] == [1, 2]
    assert "key=str.lower" in versions[1].source and "key=str.lower" not in versions[0].source
    assert "test_mixed_case" in versions[1].tests
    assert "observed" in versions[1].tests  # v1's tests were kept


# --- refinement --------------------------------------------------------------------------

PARSE = '''def parse_amount(text: str) -> int:
    """Parse an integer amount written in digits."""
    return int(text.strip())
'''
PARSE_TESTS = """from tools import parse_amount


def test_plain():
    assert parse_amount("42") == 42


def test_spaces():
    assert parse_amount(" 7 ") == 7


def test_negative():
    assert parse_amount("-3") == -3
"""


def _parse_tool_with_failures(library: Library, docker_sandbox: Any, n_fail: int) -> None:
    trace = Trace(task="Parse the amount 42", code="answer = 42", answer=42)
    model = QueueModel(replies=[reply(PARSE, PARSE_TESTS)])
    assert forge(trace, library, docker_sandbox, model=model, config=CFG).status == "admitted"
    library.record_usage(
        [
            UsageEvent(
                "parse_amount",
                False,
                episode_id=f"e{i}",
                args=["1,000"],
                kwargs={},
                error_type="ValueError",
                error_message="invalid literal for int() with base 10: '1,000'",
            )
            for i in range(n_fail)
        ]
    )


def test_a_tool_that_raised_is_refined_into_a_version_that_passes_the_reproducing_test(
    library: Library, docker_sandbox: Any
) -> None:
    _parse_tool_with_failures(library, docker_sandbox, 1)
    fixed = PARSE.replace("int(text.strip())", 'int(text.strip().replace(",", ""))').replace(
        "written in digits.", 'written in digits, with optional thousands commas ("1,000").'
    )
    new_tests = 'from tools import parse_amount\n\n\ndef test_thousands():\n    assert parse_amount("1,000") == 1000\n'
    model = QueueModel(replies=[reply(fixed, new_tests)])
    outcome = refine("parse_amount", library, docker_sandbox, model, config=CFG)
    assert outcome.status == "versioned", outcome
    tool = library.get_tool("parse_amount")
    assert tool is not None and tool.version == 2
    assert "test_thousands" in tool.tests and "test_plain" in tool.tests
    assert "1,000" in model.calls[0]["messages"][0]  # the failure was shown to the model
    assert model.calls[0]["step"] == "refine"
    assert library.tool_failures("parse_amount") == []


def test_a_fix_without_a_reproducing_test_is_rejected_and_the_failing_tool_quarantined(
    library: Library, docker_sandbox: Any
) -> None:
    _parse_tool_with_failures(library, docker_sandbox, 6)
    lazy_tests = (
        'from tools import parse_amount\n\n\ndef test_again():\n    assert parse_amount("5") == 5\n'
    )
    model = QueueModel(replies=[reply(PARSE, lazy_tests)])
    outcome = refine("parse_amount", library, docker_sandbox, model, config=CFG)
    assert outcome.status == "rejected"
    assert outcome.reason.startswith("quarantined")
    assert "input that failed in use" in outcome.reason
    tool = library.get_tool("parse_amount")
    assert tool is not None and tool.status == "quarantined" and tool.version == 1


def test_a_fix_that_breaks_old_tests_is_not_admitted(library: Library, docker_sandbox: Any) -> None:
    _parse_tool_with_failures(library, docker_sandbox, 1)
    broken = PARSE.replace(
        "int(text.strip())", 'int(text.replace(",", "").replace("-", ""))'
    )  # loses the sign
    new_tests = 'from tools import parse_amount\n\n\ndef test_thousands():\n    assert parse_amount("1,000") == 1000\n'
    outcome = refine(
        "parse_amount",
        library,
        docker_sandbox,
        QueueModel(replies=[reply(broken, new_tests)]),
        config=CFG,
    )
    assert outcome.status == "rejected"
    assert "existing tests" in outcome.reason
    assert library.get_tool("parse_amount").version == 1  # type: ignore[union-attr]


# --- bad input ----------------------------------------------------------------------------


def test_bad_input_gives_a_clear_outcome(library: Library, docker_sandbox: Any) -> None:
    assert forge(Trace(task=""), library, docker_sandbox).reason.startswith("empty trace")
    no_code = forge(Trace(task="Sort words", code="  "), library, docker_sandbox)
    assert no_code.status == "skipped" and "no code" in no_code.reason
    failed = forge(
        sort_trace().__class__(task=SORT_TASK, code=SORT_CODE, verdict="wrong"),
        library,
        docker_sandbox,
    )
    assert failed.status == "skipped" and "verdict" in failed.reason
    assert forge(None, library, docker_sandbox).status == "skipped"  # type: ignore[arg-type]
    inline = forge(Trace(task="t", code="answer = 1 + 1", answer=2), library, docker_sandbox)
    assert inline.status == "skipped" and "no top-level function" in inline.reason
    garbled = forge(Trace(task="t", code="def f(:", answer=2), library, docker_sandbox)
    assert garbled.status == "skipped" and "does not parse" in garbled.reason
    crash = forge(
        Trace(task="t", code=SORT_CODE.replace("answer =", "answer = 1 / 0 +"), answer=2),
        library,
        docker_sandbox,
    )
    assert (
        crash.status == "rejected"
        and "re-running the solution failed: ZeroDivisionError" in crash.reason
    )


def test_model_reply_in_the_wrong_format_is_sent_back_once(
    library: Library, docker_sandbox: Any
) -> None:
    outcome, model = model_forge(
        library, docker_sandbox, "Sure! def sort_words(t): ...", "still no code blocks"
    )
    assert outcome.status == "rejected"
    assert (
        "could not be parsed" in outcome.reason
        and "found 0 fenced python code blocks" in outcome.reason
    )
    assert len(model.calls) == 2
    assert "found 0 fenced python code blocks" in model.calls[1]["messages"][-1]
    assert "exactly two fenced code blocks" in model.calls[1]["messages"][-1]

    outcome, model = model_forge(
        library, docker_sandbox, "```python\nbroken(\n```", reply(TOOL, TESTS)
    )
    assert outcome.status == "admitted", outcome
    assert len(model.calls) == 2


def test_model_may_decline(library: Library, docker_sandbox: Any) -> None:
    outcome, _ = model_forge(library, docker_sandbox, "NO TOOL: this was a one-off lookup")
    assert outcome.status == "skipped" and "one-off lookup" in outcome.reason
