def sort_words(words: str) -> str:
    """Space-separated words sorted alphabetically: "pear Apple fig" -> "Apple fig pear"."""
    return " ".join(sorted(words.split(), key=lambda word: (word.lower(), word)))
