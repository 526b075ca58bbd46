"""The scripted model: the YAML rule format of the README ("Models"), its validation, and the step
convention (the step is read from the call's metadata or tags inside `_generate`)."""

from __future__ import annotations

import math
import threading
import time
from pathlib import Path

import pytest
from langchain_core.messages import HumanMessage, SystemMessage

from agent.errors import ModelError
from agent.models import (
    ModelCallError,
    ScriptedModel,
    get_model,
    invoke_step,
    step_config,
)

REPO = Path(__file__).resolve().parents[2]

SCRIPT = """
rules:
  - step: plan
    when: 'Sort the following words'
    reply: "TOOLS: none"
  - step: act
    when: 'Sort the following words'
    unless: 'sort_words'
    reply: |
      ```python
      answer = "apple fig pear"
      ```
  - step: act
    when: 'sort_words'
    reply: "USE THE TOOL"
  - when: '(?i)capital of france'
    reply: Paris
  - step: check
    reply: "VERDICT: correct"
default: "I don't know."
"""


def write(tmp_path: Path, text: str, name: str = "script.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def model(tmp_path: Path) -> ScriptedModel:
    built = get_model(f"scripted:{write(tmp_path, SCRIPT)}")
    assert isinstance(built, ScriptedModel)
    return built


def test_first_matching_rule_of_the_step_wins(model: ScriptedModel) -> None:
    task = "Sort the following words alphabetically: pear apple fig"
    assert invoke_step(model, "plan", task).content == "TOOLS: none"
    assert invoke_step(model, "act", task).content == '```python\nanswer = "apple fig pear"\n```\n'
    # `unless` skips the first act rule, so the next one matching answers.
    assert invoke_step(model, "act", task + "\nLibrary tools: sort_words").content == "USE THE TOOL"
    # A step no rule names for this prompt falls through to the default.
    assert invoke_step(model, "reflect", task).content == "I don't know."


def test_rule_without_step_matches_any_step_and_when_is_a_regex(model: ScriptedModel) -> None:
    for step in ("plan", "reflect", "distill"):
        assert invoke_step(model, step, "What is the CAPITAL of France?").content == "Paris"


def test_rule_without_when_matches_every_prompt_of_its_step(model: ScriptedModel) -> None:
    assert invoke_step(model, "check", "anything at all").content == "VERDICT: correct"


def test_prompt_text_is_every_message_joined_with_newlines(tmp_path: Path) -> None:
    model = ScriptedModel.from_file(
        write(tmp_path, "rules:\n  - when: 'You are a planner\\nTask: add'\n    reply: ok\n")
    )
    messages = [SystemMessage("You are a planner"), HumanMessage("Task: add 2 and 2")]
    assert invoke_step(model, "plan", messages).content == "ok"
    with pytest.raises(ModelCallError):
        invoke_step(model, "plan", [HumanMessage("Task: add"), SystemMessage("You are a planner")])


def test_step_is_read_from_metadata_or_tags_or_a_bound_config(model: ScriptedModel) -> None:
    task = "Sort the following words: b a"
    metadata_only = {"metadata": {"evoagent_step": "plan"}}
    assert model.invoke(task, config=metadata_only).content == "TOOLS: none"
    assert model.invoke(task, config={"tags": ["other", "step:plan"]}).content == "TOOLS: none"
    assert model.invoke(task, config=step_config("plan")).content == "TOOLS: none"
    assert model.with_config(step_config("plan")).invoke(task).content == "TOOLS: none"
    # No step at all: rules with a step do not match.
    assert model.invoke(task).content == "I don't know."


def test_no_match_without_default_names_the_step_and_the_prompt(tmp_path: Path) -> None:
    path = write(tmp_path, "rules:\n  - when: foo\n    reply: bar\n")
    model = get_model(f"scripted:{path}")
    with pytest.raises(ModelCallError) as info:
        invoke_step(model, "check", "Task: count the letters in strawberry")
    message = str(info.value)
    assert "check" in message and "Task: count the letters" in message
    assert info.value.step == "check"


def test_usage_metadata_is_the_text_estimate(model: ScriptedModel) -> None:
    prompt = "What is the capital of France? " * 5
    reply = invoke_step(model, "plan", prompt)
    assert reply.usage_metadata == {
        "input_tokens": math.ceil(len(prompt) / 4),
        "output_tokens": math.ceil(len("Paris") / 4),
        "total_tokens": math.ceil(len(prompt) / 4) + 2,
    }


def test_latency_delays_each_call(tmp_path: Path) -> None:
    model = ScriptedModel.from_file(write(tmp_path, "default: hi\nlatency_s: 0.05\n"))
    started = time.perf_counter()
    invoke_step(model, "plan", "x")
    invoke_step(model, "plan", "y")
    assert time.perf_counter() - started >= 0.1


def test_reply_is_verbatim(tmp_path: Path) -> None:
    text = (
        "rules:\n  - when: x\n    reply: |\n      line one\n        indented: {a: 1}\n\n      end\n"
    )
    model = ScriptedModel.from_file(write(tmp_path, text))
    assert invoke_step(model, "act", "x").content == "line one\n  indented: {a: 1}\n\nend\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("rules:\n  - when: '(unclosed'\n    reply: x\n", "rule 1: `when` is not a valid regex"),
        (
            "rules:\n  - reply: a\n  - unless: '[z'\n    reply: x\n",
            "rule 2: `unless` is not a valid",
        ),
        ("rules:\n  - when: a\n    repl: x\n", "rule 1: unknown key(s) repl"),
        ("rules:\n  - step: planning\n    reply: x\n", "rule 1: step 'planning' is not one of"),
        ("rules:\n  - when: a\n", "rule 1 has no `reply`"),
        ("rules:\n  - when: a\n    reply: 42\n", "rule 1: `reply` must be text"),
        ("rules:\n  - just a string\n", "rule 1 must be a mapping"),
        ("rules: {when: a}\n", "`rules` must be a list"),
        ("rules: []\ndefalt: x\n", "unknown top-level key(s) defalt"),
        ("rules: []\n", "no rules and no default"),
        ("", "must be a mapping with `rules:`"),
        ("default: yes\n", "`default` must be text"),
        ("default: x\nlatency_s: -1\n", "`latency_s` must be a number"),
        ("default: x\nlatency_s: soon\n", "`latency_s` must be a number"),
        ("rules:\n  - when: 'a\n    reply: x\n", "is not valid YAML"),
    ],
)
def test_bad_scripts_are_rejected_on_load(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ModelError) as info:
        get_model(f"scripted:{path}")
    assert expected in str(info.value)
    assert str(path) in str(info.value)


def test_missing_script_file_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"does not exist: give the path of a YAML rules file"):
        get_model(f"scripted:{tmp_path / 'nope.yaml'}")
    with pytest.raises(ModelError, match=r"needs a path"):
        get_model("scripted:")


def test_rules_built_in_code_are_validated_like_a_file() -> None:
    model = ScriptedModel.from_rules([{"step": "act", "when": "x", "reply": "y"}], default="d")
    assert invoke_step(model, "act", "x").content == "y"
    with pytest.raises(ModelError, match="rule 1: step 'acting'"):
        ScriptedModel.from_rules([{"step": "acting", "reply": "y"}])


def test_threads_share_one_model(model: ScriptedModel) -> None:
    expected = {
        "plan": "TOOLS: none",
        "check": "VERDICT: correct",
        "reflect": "I don't know.",
    }
    wrong: list[str] = []

    def worker(step: str) -> None:
        for i in range(30):
            reply = invoke_step(model, step, f"Sort the following words: {i}").content
            if reply != expected[step]:
                wrong.append(f"{step}: {reply!r}")

    threads = [threading.Thread(target=worker, args=(step,)) for step in expected for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []


def test_the_documented_example_answers_every_step() -> None:
    model = get_model(f"scripted:{REPO / 'examples' / 'scripted' / 'hello.yaml'}")
    task = "Task:\nSort the following words alphabetically: pear apple fig\n"
    offered = invoke_step(model, "plan", task + "\nLibrary tools offered:\n- sort_words(words)")
    assert offered.content.startswith("TOOLS: sort_words")
    assert invoke_step(model, "plan", task + "\nLibrary tools offered:\nnone").content.startswith(
        "TOOLS: none"
    )
    code = invoke_step(model, "act", task + "\nLibrary tools to use: none").content
    assert "sorted(" in code and "```python" in code
    assert "from tools import sort_words" in invoke_step(model, "act", task + "sort_words").content
    assert 'sorted(["pear", "apple", "fig"])' in invoke_step(model, "check", task).content
    other = "Task:\nSort the following words alphabetically: oak elm\n"
    assert invoke_step(model, "check", other).content == "I don't know."
    assert invoke_step(model, "reflect", "The agent failed this task.").content.startswith(
        "LESSON:"
    )
    assert invoke_step(model, "distill", "anything").content == "I don't know."


def test_a_rule_can_call_a_tool_and_a_malformed_tool_call_is_refused() -> None:
    model = ScriptedModel.from_rules(
        [{"when": "add", "reply": "", "tool_call": {"name": "add_numbers", "args": {"a": 2}}}]
    )
    message = model.bind_tools([]).invoke([HumanMessage("add two")])
    assert [(c["name"], c["args"]) for c in message.tool_calls] == [("add_numbers", {"a": 2})]
    for bad in ({"args": {}}, {"name": "f", "args": [1]}, {"name": "f", "extra": 1}, "f"):
        with pytest.raises(ModelError, match="`tool_call` must be a mapping"):
            ScriptedModel.from_rules([{"reply": "", "tool_call": bad}])
