"""Prompt files of the graph's steps, one per step, split into `=== name ===` sections.

Templates use `string.Template` (`$name`): code and braces in a prompt need no escaping.
A missing variable is a bug and raises `KeyError`.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from string import Template

_DIR = Path(__file__).parent
_SECTION = re.compile(r"^=== (\w+) ===$", re.MULTILINE)


@cache
def sections(name: str) -> dict[str, str]:
    """The sections of `<name>.md`: {"system": ..., "user": ..., "format": ...}."""
    text = (_DIR / f"{name}.md").read_text(encoding="utf-8")
    parts = _SECTION.split(text)
    # parts = [preamble, name1, body1, name2, body2, ...]
    return {parts[i]: parts[i + 1].strip("\n") for i in range(1, len(parts), 2)}


def render(name: str, section: str, **values: object) -> str:
    """Section `section` of prompt `name` with `$vars` filled in."""
    return Template(sections(name)[section]).substitute(
        {key: str(value) for key, value in values.items()}
    )
