"""Fixtures of the memory tests: a hash-embedded library per test, one MiniLM per session."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from memory import HashEmbedder, Library, MemoryConfig, Provenance, ToolDraft

HASH_CONFIG = MemoryConfig(embedder="hash")


@pytest.fixture
def lib(home: Path) -> Iterator[Library]:
    library = Library.open(home, HASH_CONFIG, HashEmbedder())
    try:
        yield library
    finally:
        library.close()


def make_draft(
    name: str = "sort_words",
    doc: str = "Sort the words of a text alphabetically.",
    task: str = "Sort the following words alphabetically: List: pear apple",
    body: str = "return ' '.join(sorted(text.split()))",
    tests: str | None = None,
) -> ToolDraft:
    source = f'def {name}(text: str) -> str:\n    """{doc}"""\n    {body}\n'
    tests = (
        tests
        if tests is not None
        else (
            f"from tools import {name}\n\n\ndef test_{name}_basic():\n    assert {name}('b a') is not None\n"
        )
    )
    return ToolDraft(
        name, source, tests, f"{name}(text: str) -> str", doc, Provenance(task, task_id="t1")
    )


@pytest.fixture
def draft() -> Callable[..., ToolDraft]:
    return make_draft


@pytest.fixture(scope="session")
def minilm() -> object:
    """The real embedder, loaded once for every slow test that needs it."""
    from memory import MiniLMEmbedder

    embedder = MiniLMEmbedder()
    embedder.embed(["warm up"])
    return embedder
