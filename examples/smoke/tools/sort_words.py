"""A library tool: one module, one public function of the same name."""


def sort_words(words: list[str]) -> list[str]:
    """Return the words in alphabetical order (case-insensitive, stable)."""
    return sorted(words, key=str.lower)
