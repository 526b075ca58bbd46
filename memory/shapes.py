"""How alike two texts are in shape: two tasks of one kind (the same frame, other words
or numbers in it) look alike here even when their embeddings are far apart."""

from __future__ import annotations

import re


def shape_tokens(text: str) -> set[str]:
    """The words and punctuation of a text, lower-cased, every digit a 0: two tasks of
    one kind (other numbers, other words in the same frame) share most of these."""
    return set(re.findall(r"[a-z]+|0+|[^\sa-z0-9]", re.sub(r"[0-9]", "0", text.lower())))


def shape_similarity(a: str, b: str) -> float:
    """Jaccard similarity of `shape_tokens`."""
    x, y = shape_tokens(a), shape_tokens(b)
    return len(x & y) / len(x | y) if x | y else 0.0
