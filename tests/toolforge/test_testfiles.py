"""toolforge.testfiles.merge_tests: the one rule for merging two test files."""

from __future__ import annotations

import pytest

from toolforge.testfiles import BadTestFile, merge_tests

A = "from tools import f\n\n\ndef test_a():\n    assert f(1) == 2\n"
B = (
    '"""doc"""\nfrom tools import f\nimport math\n\n\nK = 3\n\n\ndef helper():\n    return 0\n\n\n'
    "def test_a():\n    assert f(2) == 3\n\n\ndef test_b():\n    assert f(0) == helper() + 1\n"
)


def test_no_test_is_lost_and_helpers_come_along() -> None:
    merged, added = merge_tests(A, B)
    assert added[0].startswith("test_a_") and added[1] == "test_b"
    assert merged.count("def test_") == 3
    assert "assert f(1) == 2" in merged and "assert f(2) == 3" in merged
    assert "def helper():" in merged and "K = 3" in merged
    assert merged.startswith("from tools import f\nimport math\n")
    assert merged.count("from tools import f") == 1 and '"""doc"""' not in merged
    compile(merged, "merged", "exec")


def test_nothing_new_keeps_the_file_as_written() -> None:
    assert merge_tests(A, A) == (A, [])
    assert merge_tests(A, "from tools import f\n") == (A, [])
    assert merge_tests("", A) == (A, ["test_a"])


def test_an_unparseable_file_is_a_library_error() -> None:
    with pytest.raises(BadTestFile, match="do not parse"):
        merge_tests(A, "def test_x(:\n")
