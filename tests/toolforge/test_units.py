"""Reply parsing, perturbations, extraction and test-file handling, without Docker."""

from __future__ import annotations

import ast
import json

import pytest

from toolforge.errors import ForgeError
from toolforge.extract import extract_module, observed_tests
from toolforge.perturb import mutations, perturbations
from toolforge.replies import ReplyFormatError, parse_reply, prompt
from toolforge.source import literal_calls, split_inline_tests


def test_reply_with_two_blocks_parses() -> None:
    r = parse_reply(
        "text\n```python\ndef f() -> int:\n    return 1\n```\nmore\n```py\nfrom tools import f\n```"
    )
    assert r.source.startswith("def f()") and r.tests.startswith("from tools import f")


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("no code at all", "found 0 fenced python code blocks"),
        ("```python\nx = 1\n```", "found 1"),
        ("```python\ndef f(:\n```\n```python\nx=1\n```", "the tool (first block) does not parse"),
    ],
)
def test_bad_replies_say_what_is_wrong(text: str, needle: str) -> None:
    with pytest.raises(ReplyFormatError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        parse_reply(text)


def test_decline() -> None:
    assert (
        parse_reply("NO TOOL: the solution is a one-off lookup").declined
        == "the solution is a one-off lookup"
    )


def test_prompts_render_their_placeholders() -> None:
    text = prompt("distill", task="T1", code="C1", answer="A1", calls="")
    assert "T1" in text and "C1" in text and "$task" not in text
    assert "exactly two fenced blocks" in text
    assert "boom" in prompt("format_error", error="boom")


def test_perturbations_keep_shape_never_repeat_the_input_and_are_drawn_at_random() -> None:
    import random
    import re

    rng = random.Random(1)
    digits = dict(mutations("((-1 + 2) * 9)", rng))["digits"]
    assert re.fullmatch(r"\(\(-[1-9] \+ [1-9]\) \* [1-9]\)", digits)
    assert ("true-false", "not ( False ) and True") in mutations("not ( True ) and True", rng)
    task = "Sort the following words: List: pear apple fig"
    labels = dict(mutations(task, rng))
    assert labels["drop-token"].startswith("Sort the following words: List: ")
    assert len(labels["drop-token"].split()) == len(task.split()) - 1
    shuffled = labels["shuffle-words"].rsplit(": ", 1)[1].split()  # the last of two draws
    assert sorted(shuffled) == ["apple", "fig", "pear"] and shuffled != ["pear", "apple", "fig"]
    dropped = dict(mutations([3, 1, 2], rng))["drop-item"]
    assert len(dropped) == 2 and set(dropped) < {1, 2, 3}
    assert mutations(1, rng) == []
    assert all(1 <= dict(mutations(5, random.Random(s)))["smaller"] <= 4 for s in range(20))
    # Not a fixed rule a tool could learn: other draws give other inputs.
    draws = {dict(mutations("12 + 34 =", random.Random(s)))["digits"] for s in range(20)}
    assert len(draws) > 10
    calls = literal_calls(
        "from tools import f\n\ndef test_a():\n    assert f('b a c', n=3) == 1\n", "f"
    )
    out = perturbations(calls, 4, rng)
    assert out and all((a, k) != (("b a c",), {"n": 3}) for _, a, k in out)
    assert len(out) <= 4


def test_extract_module_takes_helpers_imports_and_constants() -> None:
    code = '''import re
from collections import Counter

VOWELS = "aeiou"
words = VOWELS.upper().split()


def clean(w):
    return w.strip().lower()


def count_vowels(text: str) -> int:
    """Count vowels."""
    return sum(1 for c in clean(text) if c in VOWELS)


answer = count_vowels("Hello")
'''
    module, why = extract_module(ast.parse(code), code, "count_vowels")
    assert module is not None, why
    assert "def _clean(w)" in module and "_clean(text)" in module
    assert 'VOWELS = "aeiou"' in module and "import re" not in module and "Counter" not in module
    bad = code.replace("c in VOWELS", "c in words")
    module, why = extract_module(ast.parse(bad), bad, "count_vowels")
    assert module is None and "computes at run time" in why


def test_observed_tests_are_literal_asserts() -> None:
    tests = observed_tests(
        "sort_words",
        [
            {"depth": 1, "args": "(('z y',), {})", "result": "'y z'", "error": None},
            {"depth": 0, "args": "(('b a',), {})", "result": "'a b'", "error": None},
        ],
        limit=1,
    )
    assert "assert sort_words('b a') == 'a b'" in tests and "z y" not in tests


def test_inline_tests_are_split_from_a_people_tool() -> None:
    src = 'def inc(x: int) -> int:\n    """Add one."""\n    return x + 1\n\n\ndef test_inc():\n    assert inc(1) == 2\n'
    module, tests = split_inline_tests(src, ast.parse(src))
    assert "test_inc" not in module and tests.startswith("from tools import inc")
    with pytest.raises(ForgeError, match="no tests"):
        split_inline_tests(module, ast.parse(module))


def test_eval_in_a_tool_becomes_a_literal_only_evaluator() -> None:
    import pytest

    from toolforge.safe_eval import rewrite_eval

    source = (
        "def evaluate(task: str) -> str:\n"
        '    """The truth value of the expression before is."""\n'
        "    return str(eval(task.rsplit(' is', 1)[0]))\n"
    )
    ns: dict = {}
    exec(rewrite_eval(source), ns)
    assert ns["evaluate"]("not ( True ) and ( True ) is") == "False"
    assert ns["evaluate"]("((-1 + 2) * 3 - -4) is") == "7"
    for hostile in ("__import__('os').system('x') is", "(1).__class__ is", "[x for x in ()] is"):
        with pytest.raises(ValueError):
            ns["evaluate"](hostile)
    assert "eval(" not in rewrite_eval(source).split("def _evaluate_expression")[0]


def test_a_trace_round_trips_through_plain_data() -> None:
    from memory.episode import ToolUse
    from toolforge.types import Trace

    trace = Trace(
        task="Sort: b a",
        code="answer = sort_words(TASK)",
        answer="a b",
        task_id="t1",
        tool_calls=[ToolUse(tool="sort_words", args=["b a"], result="a b")],
        tools_used=["sort_words"],
        episode_id="ep-1",
        stdout="",
    )
    data = trace.to_dict()
    assert json.loads(json.dumps(data)) == data  # plain data: what the traces file keeps
    assert Trace.from_dict(data) == trace
    assert Trace.from_dict({**data, "written_by_a_newer_version": 1}) == trace
