"""The static gate, without Docker: each rule rejects with a reason that names it."""

from __future__ import annotations

from toolforge.config import ForgeConfig
from toolforge.static_gate import check_static

CFG = ForgeConfig()

GOOD = '''import re


def sort_words(text: str) -> str:
    """Sort the words after the last colon alphabetically and join them with spaces."""
    words = re.split(r"\\s+", text.rsplit(":", 1)[-1].strip())
    return " ".join(sorted(words))
'''

TESTS = """from tools import sort_words


def test_sort_words_simple():
    assert sort_words("List: pear apple") == "apple pear"
"""

TASK = "Sort the following words alphabetically: List: syndrome therefrom"


def check(source: str = GOOD, tests: str = TESTS, **kw: object):  # type: ignore[no-untyped-def]
    return check_static(source, tests, CFG, **kw)  # type: ignore[arg-type]


def test_a_good_tool_passes_and_reports_its_signature() -> None:
    report = check(task=TASK, answer="syndrome therefrom")
    assert report.ok, report.problems
    assert report.signature == "sort_words(text: str) -> str"
    assert report.docstring.startswith("Sort the words")


def test_subprocess_import_is_rejected() -> None:
    bad = "import subprocess\n" + GOOD
    report = check(bad)
    assert not report.ok
    assert "import of 'subprocess' is not allowed" in report.reason


def test_os_import_inside_the_function_is_rejected_too() -> None:
    bad = GOOD.replace("    words =", "    import os\n    words =")
    assert "import of 'os'" in check(bad).reason


def test_hard_coded_answer_is_rejected() -> None:
    bad = GOOD.replace('return " ".join(sorted(words))', 'return "syndrome therefrom"')
    report = check(bad, task=TASK, answer="syndrome therefrom")
    assert not report.ok
    assert "hard-coded answer" in report.reason


def test_answer_spelled_as_a_list_is_rejected() -> None:
    bad = GOOD.replace(
        'return " ".join(sorted(words))', 'return " ".join(["syndrome", "therefrom"])'
    )
    assert (
        "spells the source task's answer"
        in check(bad, task=TASK, answer="syndrome therefrom").reason
    )


def test_long_literal_from_the_task_is_rejected() -> None:
    bad = GOOD.replace(
        'text.rsplit(":", 1)[-1]', 'text.replace("Sort the following words alphabetically", "")'
    )
    assert "copies the task text" in check(bad, task=TASK).reason


def test_generic_answers_are_not_hard_coding() -> None:
    src = '''def evaluate(expr: str) -> str:
    """Evaluate a boolean expression of True, False, not, and, or."""
    value = expr.strip().endswith("True")
    return "True" if value else "False"
'''
    tests = 'from tools import evaluate\n\ndef test_e():\n    assert evaluate("True") == "True"\n'
    assert check(src, tests, task="not ( True ) is", answer="False").ok


def test_missing_annotation_docstring_and_two_public_functions() -> None:
    assert "without a type annotation" in check(GOOD.replace("text: str", "text")).reason
    assert "no docstring" in " ".join(
        check(
            GOOD.replace(
                '    """Sort the words after the last colon alphabetically and join them with spaces."""\n',
                "",
            )
        ).problems
    )
    two = GOOD + '\n\ndef helper(x: int) -> int:\n    """Return x."""\n    return x\n'
    assert "exactly one public function" in check(two).reason


def test_import_time_side_effects_are_rejected() -> None:
    assert "side effect at import" in check(GOOD + '\nprint("hello")\n').reason
    assert "runs code at import" in " ".join(
        check('import re\nWORDS = sorted("x").pop()\n' + GOOD[10:]).problems
    )
    ok = (
        'import re\n\n_SPLIT = re.compile(r"\\s+")\n_ORDER = {c: i for i, c in enumerate("abc")}\n'
        + GOOD[10:]
    )
    assert check(ok).ok


def test_escape_hatches_are_rejected() -> None:
    assert "eval" in check(GOOD.replace("sorted(words)", "eval('sorted(words)')")).reason
    assert (
        "__subclasses__"
        in check(GOOD.replace("sorted(words)", "sorted(words).__class__.__subclasses__()")).reason
    )
    # A parameter named like a builtin is fine.
    shadow = GOOD.replace("text", "input")
    assert check(shadow, TESTS).ok


def test_name_is_normalised_to_snake_case_in_source_and_tests() -> None:
    report = check(
        GOOD.replace("sort_words", "SortWords"), TESTS.replace("sort_words", "SortWords")
    )
    assert report.ok, report.problems
    assert report.name == "sort_words"
    assert "def sort_words(" in report.source and "from tools import sort_words" in report.tests


def test_builtin_names_and_bad_tests_are_rejected() -> None:
    src = GOOD.replace("sort_words", "sorted_")
    assert check(src.replace("sorted_(", "sorted("), TESTS).ok is False
    no_call = "from tools import sort_words\n\ndef test_nothing():\n    assert True\n"
    assert "never call sort_words" in check(GOOD, no_call).reason
    assert "at least 3 needed" in check(GOOD, TESTS, min_tests=3).reason
    fixture = TESTS.replace(
        "def test_sort_words_simple():", "def test_sort_words_simple(tmp_path):"
    )
    assert "fixtures are not supported" in check(GOOD, fixture).reason


def test_unparseable_source_and_size_bound() -> None:
    assert "does not parse" in check("def f(:\n").reason
    big = GOOD + "\n" + "#" * (CFG.max_source_chars + 1)
    assert "characters" in check(big).reason


# --- reaching past the interface (integrity issue) ----------------------------------


def refused(body: str, *, tests: str = TESTS) -> list[str]:
    source = GOOD.replace(
        '    return " ".join(sorted(words))', body + '\n    return " ".join(sorted(words))'
    )
    report = check(source, tests=tests)
    assert not report.ok, body
    return report.problems


def test_a_modules_private_names_and_imported_modules_are_refused() -> None:
    assert any("random._os" in p for p in refused("    import random\n    random._os"))
    assert any("typing.sys" in p for p in refused("    import typing\n    typing.sys"))
    assert any(
        "collections.abc._x" in p
        for p in refused("    import collections.abc\n    collections.abc._x")
    )


def test_frame_code_and_globals_attributes_are_refused_on_any_object() -> None:
    for attr in (
        "f_globals",
        "f_locals",
        "tb_frame",
        "gi_frame",
        "__closure__",
        "__code__",
        "__globals__",
    ):
        problems = refused(f"    x = words.{attr}")
        assert any(attr in p for p in problems), attr


def test_introspection_modules_are_refused() -> None:
    for module in ("traceback", "inspect", "gc", "ctypes"):
        assert any(module in p for p in refused(f"    import {module}")), module


def test_computed_or_private_getattr_is_refused() -> None:
    assert refused("    getattr(words, '_' + 'x')")
    assert refused("    getattr(words, '_private')")
    assert check(GOOD.replace("    return", "    n = getattr(words, 'count')\n    return")).ok


def test_import_time_effects_in_defaults_annotations_and_class_bodies_are_refused() -> None:
    tail = '\n\ndef sort_words(text: str) -> str:\n    """Sort the words after the last colon."""\n    return text\n'
    cases = {
        "default": "def _h(x=print('x')):\n    return x\n",
        "annotation": "def _h(x: print('x')) -> None:\n    return x\n",
        "return annotation": "def _h(x: int) -> print('x'):\n    return x\n",
        "class body": "class _C:\n    print('x')\n",
        "class attribute": "class _C:\n    y = print('x')\n",
        "class base": "class _C(type('B', (), {})):\n    pass\n",
        "method default": "class _C:\n    def m(self, x=print('x')):\n        return x\n",
        "method decorator": "class _C:\n    @print\n    def m(self):\n        return 1\n",
        "key function": "def _k(x: int) -> int:\n    return x\n\nORDER = sorted([2, 1], key=_k)\n",
    }
    for what, head in cases.items():
        report = check(head + tail)
        assert not report.ok and any("import" in p for p in report.problems), (
            what,
            report.problems,
        )


def test_pure_defaults_annotations_and_dataclasses_still_pass() -> None:
    source = (
        "from dataclasses import dataclass\n\n\n"
        "@dataclass\nclass _Pair:\n    left: int = 0\n    right: int | None = None\n\n\n"
        "def sort_words(text: str, sep: str = ' ', keep: tuple[str, ...] = ()) -> str:\n"
        '    """Sort the words after the last colon alphabetically."""\n'
        "    words = [w for w in text.rsplit(':', 1)[-1].split() if w not in keep]\n"
        "    return sep.join(sorted(words))\n"
    )
    report = check(source)
    assert report.ok, report.problems


def test_a_tool_that_never_reads_its_input_is_refused() -> None:
    report = check(
        GOOD.replace(
            'words = re.split(r"\\s+", text.rsplit(":", 1)[-1].strip())', "words = ['b', 'a']"
        )
    )
    assert not report.ok
    assert any("never reads its parameter(s) text" in p for p in report.problems)
