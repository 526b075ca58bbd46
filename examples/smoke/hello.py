"""Smoke run: `evoagent sandbox run examples/smoke/hello.py --tools examples/smoke/tools`.

Runs in the sandbox, imports a library tool, prints, and sets `answer`.
"""

import platform

from tools import sort_words

words = ["syndrome", "therefrom", "Apple", "bicycle"]
answer = " ".join(sort_words(words))
print(f"Python {platform.python_version()} in the sandbox sorted: {answer}")
