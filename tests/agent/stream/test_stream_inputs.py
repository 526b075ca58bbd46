"""Reading streams: JSONL and BBH files, and every way a line can be wrong."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.stream.errors import StreamError
from agent.stream.inputs import family_of, load_stream, task_to_dict

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "bbh"


def _jsonl(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "s.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_jsonl_reads_every_field_and_skips_blank_lines(tmp_path: Path) -> None:
    path = _jsonl(
        tmp_path,
        json.dumps({"id": "a-1", "task": "Sort: b a", "expected": "a b", "tags": ["sort"]}),
        "",
        json.dumps({"id": 7, "task": "2+2?", "expected": 4, "checker": "numeric:1e-6"}),
    )
    tasks = load_stream(path).tasks
    assert [t.id for t in tasks] == ["a-1", "7"]
    assert tasks[0].expected == "a b" and tasks[0].tags == ["sort"]
    assert tasks[1].expected == 4 and tasks[1].checker == "numeric:1e-6"
    assert task_to_dict(tasks[1]) == {
        "id": "7",
        "task": "2+2?",
        "expected": 4,
        "checker": "numeric:1e-6",
    }


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "not valid JSON"),
        ('["a list"]', "expected a JSON object"),
        ('{"task": "no id"}', '"id" is missing'),
        ('{"id": "x", "task": ""}', '"task" is missing'),
        ('{"id": "x", "task": "t", "tags": "one"}', '"tags" must be a list'),
        ('{"id": "x", "task": "t", "expect": "typo"}', "unknown field(s) expect"),
        ('{"id": "a/b", "task": "t"}', "contains a slash"),
        ('{"id": "x", "task": "t", "checker": 3}', '"checker" must be a string'),
        (
            '{"id": "x", "task": "t", "expected": "1", "checker": "fuzzy"}',
            "unknown checker 'fuzzy'",
        ),
        # a stream line has no --expect flag: the message names the field to add
        ('{"id": "x", "task": "t", "checker": "exact"}', 'compares with an answer: add "expected"'),
        # a numeric label that is no number would only fail mid-run, task after task
        (
            '{"id": "x", "task": "t", "expected": "four", "checker": "numeric:0.01"}',
            "checker 'numeric:0.01': the expected answer 'four' is not a number",
        ),
        (
            '{"id": "x", "task": "t", "expected": [1, 2], "checker": "numeric"}',
            "checker 'numeric': the expected answer [1, 2] is not a number",
        ),
        (
            '{"id": "x", "task": "t", "expected": true, "checker": "numeric"}',
            "the expected answer True is not a number",
        ),
    ],
)
def test_a_bad_line_stops_the_run_naming_file_and_line(
    tmp_path: Path, line: str, message: str
) -> None:
    path = _jsonl(tmp_path, json.dumps({"id": "ok", "task": "fine"}), line)
    with pytest.raises(StreamError) as info:
        load_stream(path)
    text = str(info.value)
    assert f"{path}:2: " in text and message in text
    assert "--skip-bad" in text


def test_numeric_labels_written_as_text_still_load(tmp_path: Path) -> None:
    path = _jsonl(
        tmp_path,
        json.dumps({"id": "a", "task": "t", "expected": "1,024", "checker": "numeric"}),
        json.dumps({"id": "b", "task": "t", "expected": " 2.5 ", "checker": "numeric:0.1"}),
    )
    assert [t.expected for t in load_stream(path).tasks] == ["1,024", " 2.5 "]


def test_skip_bad_leaves_bad_lines_out_and_reports_them(tmp_path: Path) -> None:
    path = _jsonl(
        tmp_path,
        json.dumps({"id": "a", "task": "one"}),
        "{oops",
        json.dumps({"id": "a", "task": "dup"}),
        json.dumps({"id": "b", "task": "two"}),
    )
    loaded = load_stream(path, skip_bad=True)
    assert [t.id for t in loaded.tasks] == ["a", "b"]
    assert [b.where for b in loaded.skipped] == [f"{path}:2", f"{path}:3"]
    assert "duplicate id 'a' (first at" in loaded.skipped[1].reason


def test_missing_file_empty_stream_and_folder_given_as_jsonl(tmp_path: Path) -> None:
    with pytest.raises(StreamError, match="no such file"):
        load_stream(tmp_path / "nope.jsonl")
    with pytest.raises(StreamError, match="holds no tasks"):
        load_stream(_jsonl(tmp_path, ""))
    with pytest.raises(StreamError, match="is a folder"):
        load_stream(tmp_path, "jsonl")


def test_bbh_files_give_family_ids_and_labels() -> None:
    tasks = load_stream(EXAMPLES / "data" / "word_sorting.json").tasks
    assert len(tasks) == 250
    assert tasks[7].id == "word_sorting-0007"
    assert tasks[7].tags == ["word_sorting"]
    assert tasks[0].task.startswith("Sort the following words")
    assert tasks[0].expected == "syndrome therefrom"


def test_bbh_folder_reads_every_family(tmp_path: Path) -> None:
    for name in ("dyck_languages", "object_counting"):
        src = json.loads((EXAMPLES / "data" / f"{name}.json").read_text())
        (tmp_path / f"{name}.json").write_text(json.dumps({"examples": src["examples"][:3]}))
    tasks = load_stream(tmp_path, "bbh").tasks
    assert [t.id for t in tasks] == [
        f"{f}-{i:04d}" for f in ("dyck_languages", "object_counting") for i in range(3)
    ]


def test_bbh_bad_example_is_named_by_index(tmp_path: Path) -> None:
    path = tmp_path / "fam.json"
    path.write_text(
        json.dumps({"examples": [{"input": "a", "target": "b"}, {"target": "no input"}]})
    )
    with pytest.raises(StreamError, match=r"fam\.json:examples\[1\]: expected an object"):
        load_stream(path)
    path.write_text(json.dumps({"not": "bbh"}))
    with pytest.raises(StreamError, match='no "examples" list'):
        load_stream(path)


def test_demo_stream_is_forty_per_family_shuffled() -> None:
    tasks = load_stream(EXAMPLES / "stream.jsonl").tasks
    families = [family_of(t.id, t.tags) for t in tasks]
    assert {f: families.count(f) for f in set(families)} == {
        "boolean_expressions": 40,
        "dyck_languages": 40,
        "multistep_arithmetic_two": 40,
        "object_counting": 40,
        "word_sorting": 40,
    }
    assert families[:5] != sorted(families[:5]) or families[5:10] != sorted(families[5:10])
    assert all(t.expected for t in tasks)


def test_family_of_falls_back_to_the_id() -> None:
    assert family_of("word_sorting-0007") == "word_sorting"
    assert family_of("x", ["tag"]) == "tag"
    assert family_of("plain") == "-"


def test_demo_stream_is_what_its_script_generates() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_stream", EXAMPLES / "make_stream.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for name, per_family in (("stream.jsonl", 40), ("stream-small.jsonl", 10)):
        rows = [json.loads(line) for line in (EXAMPLES / name).read_text().splitlines()]
        assert rows == module.build(per_family), f"regenerate {name} with make_stream.py"


def test_skip_bad_with_every_line_bad_says_why_nothing_is_left(tmp_path: Path) -> None:
    path = _jsonl(tmp_path, "{oops", '{"id": "x"}')
    with pytest.raises(StreamError) as info:
        load_stream(path, skip_bad=True)
    text = str(info.value)
    assert "every entry is bad" in text
    assert f"{path}:1: not valid JSON" in text and f'{path}:2: "task" is missing' in text
