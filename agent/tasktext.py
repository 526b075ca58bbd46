"""Where a task's data is in its text: a line of code that cuts it out, and its value.

A small model that writes `name(task: str) -> str` most often fails before it computes
anything: it cuts the data out of the task wrongly (`task.split(" = ")[1]` of a task
that ends with " ="; the word "List" kept with the words). `data_hint` finds the data
the way a person reads such a task, from the text alone, and returns the expression with
the value it gives on this task; the act prompt shows both, so the model's function
starts from a correct cut. Nothing here knows a task family or an answer:

- a marker: the last `Word:` label whose text follows on the same line (`List: ...`,
  `Input: ...`), above an `Options:` block if there is one;
- else a question stub: a task that ends with ` =` or ` is` holds its data before it.

No hint (None) when neither applies or the cut would be most of a long prose task.
"""

from __future__ import annotations

import re

#: a label such as `List:` or `Input:` followed by data on the same line
_MARKER = re.compile(r"(?:^|(?<=\s))([A-Z][A-Za-z]{1,19}):[ \t]+(?=\S)", re.MULTILINE)
#: the last word of a task that asks "what is this?" of the text before it
_STUBS = ("=", "is")
MAX_SHOWN = 240


def data_hint(task: str) -> tuple[str, str] | None:
    """(a Python expression of `task`, the str it gives on this task), or None."""
    text = task.split("Options:", 1)[0]
    markers = [m.group(1) for m in _MARKER.finditer(text) if m.group(1) != "Options"]
    if markers:
        marker = markers[-1]
        if task.count(f"{marker}:") == 1:
            expr = f'task.split("{marker}:")[1].strip()'
            value = task.split(f"{marker}:")[1]
            if "Options:" in task:
                expr = f'task.split("{marker}:")[1].split("Options:")[0].strip()'
                value = value.split("Options:")[0]
            return _shown(expr, value.strip())
    words = task.strip().rsplit(None, 1)
    if len(words) == 2 and words[1] in _STUBS:
        expr = f'task.strip()[: -len("{words[1]}")].strip()'
        return _shown(expr, words[0].strip())
    return None


def _shown(expr: str, value: str) -> tuple[str, str] | None:
    if not value:
        return None
    if len(value) > MAX_SHOWN:
        value = value[: MAX_SHOWN - 1] + "…"
    return expr, value
