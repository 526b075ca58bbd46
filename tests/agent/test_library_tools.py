"""The library as LangChain tools: schemas from signatures, arguments checked on the host,
every call in the sandbox with its result read from the supervisor's record."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agent.library_tools import ToolCallError, check_arguments, input_schema, library_tools
from memory import HashEmbedder, Library, MemoryConfig, Provenance, ToolDraft

ADD = '''def add_numbers(a: int, b: int = 1) -> int:
    """Add two whole numbers."""
    return a + b
'''
LOOP = '''def spin_forever(text: str) -> str:
    """Never return."""
    while True:
        text = text[::-1]
'''
HOSTILE = '''def read_secret(path: str) -> str:
    """Read a file of the host."""
    return open(path).read()
'''


def test_the_schema_comes_from_the_signature() -> None:
    schema = input_schema(
        "f(a: int, words: list[str], b: float = 0.5, *, flag: bool = False) -> str"
    )
    assert schema["properties"] == {
        "a": {"type": "integer"},
        "words": {"type": "array"},
        "b": {"type": "number", "default": 0.5},
        "flag": {"type": "boolean", "default": False},
    }
    assert schema["required"] == ["a", "words"] and schema["additionalProperties"] is False


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"a": 1, "c": 2}, "unknown argument 'c'"),
        ({"b": 2}, "missing argument 'a'"),
        ({"a": "2"}, "argument 'a' must be of type integer, not str"),
        ({"a": True}, "argument 'a' must be of type integer, not bool"),
    ],
)
def test_bad_arguments_are_named(arguments: dict[str, Any], message: str) -> None:
    with pytest.raises(ToolCallError, match=message):
        check_arguments(input_schema("add_numbers(a: int, b: int = 1) -> int"), arguments)


def _draft(name: str, source: str, signature: str, doc: str) -> ToolDraft:
    tests = f"from tools import {name}\n\n\ndef test_{name}():\n    assert {name} is not None\n"
    return ToolDraft(name, source, tests, signature, doc, Provenance("seeded by the test"))


@pytest.mark.docker
def test_a_library_tool_called_through_langchain_runs_in_the_sandbox(
    docker_sandbox: Any, home: Path
) -> None:
    with Library.open(home, MemoryConfig(embedder="hash"), HashEmbedder()) as lib:
        lib.add_tool(
            _draft(
                "add_numbers",
                ADD,
                "add_numbers(a: int, b: int = 1) -> int",
                "Add two whole numbers.",
            )
        )
        lib.add_tool(
            _draft("spin_forever", LOOP, "spin_forever(text: str) -> str", "Never return.")
        )
        lib.add_tool(
            _draft("read_secret", HOSTILE, "read_secret(path: str) -> str", "Read a file.")
        )
        tools = {t.name: t for t in library_tools(lib, docker_sandbox, timeout_s=3)}
        assert sorted(tools) == ["add_numbers", "read_secret", "spin_forever"]
        assert tools["add_numbers"].description == "Add two whole numbers."
        assert tools["add_numbers"].invoke({"a": 2, "b": 40}) == 42
        assert tools["add_numbers"].invoke({"a": 2}) == 3
        # errors come back to the calling agent as the tool's message
        assert "argument 'a' must be of type integer" in tools["add_numbers"].invoke({"a": "x"})
        assert "did not finish within" in tools["spin_forever"].invoke({"text": "ab"})
        # the host's files are not the sandbox's: /etc/hostname there is the container's
        secret = home / "secret.txt"
        secret.write_text("host secret")
        out = tools["read_secret"].invoke({"path": str(secret)})
        assert "host secret" not in out and "FileNotFoundError" in out
        # every call that ran is on record as LangChain's; a mistyped call never ran
        calls = [(e.source, e.ok) for e in lib.usage("add_numbers")]
        assert calls == [("langchain", True), ("langchain", True)]
        assert [e.error_type for e in lib.usage("spin_forever")] == ["TimeoutError"]
        assert lib.get_tool("spin_forever").total_uses == 0  # type: ignore[union-attr]


@pytest.mark.docker
def test_a_react_agent_calls_a_library_tool_and_gets_its_result(
    docker_sandbox: Any, home: Path
) -> None:
    from langchain.agents import create_agent

    from agent.models.scripted import ScriptedModel

    model = ScriptedModel.from_rules(
        [
            # the tool's result is in the conversation: answer with it
            {"when": "(?m)^42$", "reply": "2 + 40 = 42"},
            {
                "when": "Add 2 and 40",
                "reply": "",
                "tool_call": {"name": "add_numbers", "args": {"a": 2, "b": 40}},
            },
        ]
    )
    with Library.open(home, MemoryConfig(embedder="hash"), HashEmbedder()) as lib:
        lib.add_tool(
            _draft("add_numbers", ADD, "add_numbers(a: int, b: int = 1) -> int", "Add numbers.")
        )
        agent = create_agent(model, library_tools(lib, docker_sandbox, timeout_s=5))
        out = agent.invoke({"messages": [("user", "Add 2 and 40")]})
    kinds = [type(m).__name__ for m in out["messages"]]
    assert kinds == ["HumanMessage", "AIMessage", "ToolMessage", "AIMessage"], kinds
    assert out["messages"][2].content == "42"  # computed in the sandbox, not by the model
    assert out["messages"][-1].content == "2 + 40 = 42"
