"""Fixtures of the forge tests: a hash-embedded library per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from memory import HashEmbedder, Library, MemoryConfig


@pytest.fixture
def library(home: Path) -> Iterator[Library]:
    lib = Library.open(home, MemoryConfig(embedder="hash"), HashEmbedder())
    try:
        yield lib
    finally:
        lib.close()
