"""Text for the terminal from records anyone could have written (a task, an answer, a
tool's name or docstring, a rejection reason): control characters removed, so it cannot
move the cursor or recolour the screen, and no Rich markup read into it, so `[/x]` in an
answer prints as `[/x]` instead of crashing the table it is in."""

from __future__ import annotations

import re
from typing import Any

# C0 and C1 controls and DEL, but newline and tab.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def clean(value: object, limit: int | None = None) -> str:
    """`value` as text without control characters, cut to `limit` characters."""
    text = _CONTROL.sub("", value if isinstance(value, str) else str(value))
    if limit is not None and len(text) > limit:
        text = text[: limit - 1] + "…"
    return text


def cell(value: object, limit: int | None = None) -> Any:
    """A Rich table cell showing `value` literally (never parsed as markup)."""
    from rich.text import Text

    return Text(clean(value, limit))


def literal(value: object, limit: int | None = None) -> str:
    """`value` made safe to embed in a Rich markup string."""
    from rich.markup import escape

    return escape(clean(value, limit))
