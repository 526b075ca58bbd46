"""Inputs mutated from the observed ones, for the perturbation check.

A tool that only works for the example it was forged from (a lookup of the one input,
a fixed index) raises on a slightly different input. The mutations keep the input's
shape so a general tool has no reason to raise: other digits, list items swapped or
one dropped, True and False swapped, the words of a trailing list reordered or
shortened. They never widen an integer (an index that grows may rightly be out of range).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from typing import Any

from toolforge.source import LiteralCall

_WORD = re.compile(r"^[A-Za-z][A-Za-z'&-]*$")


def perturbations(calls: list[LiteralCall], limit: int) -> list[tuple[str, str, str]]:
    """Up to `limit` mutated calls as (label, repr(args), repr(kwargs)), round-robin over
    the observed calls and their arguments so each gets a turn."""
    if limit <= 0:
        return []
    originals = {repr((c.args, c.kwargs)) for c in calls}
    streams = [_call_mutations(c) for c in calls]
    out: list[tuple[str, str, str]] = []
    seen = set(originals)
    while streams and len(out) < limit:
        alive = []
        for stream in streams:
            item = next(stream, None)
            if item is None:
                continue
            alive.append(stream)
            label, args, kwargs = item
            key = repr((args, kwargs))
            if key in seen:
                continue
            seen.add(key)
            out.append((label, repr(args), repr(kwargs)))
            if len(out) >= limit:
                break
        streams = alive
    return out


def _call_mutations(call: LiteralCall) -> Iterator[tuple[str, tuple[Any, ...], dict[str, Any]]]:
    per_arg: list[Iterator[tuple[str, tuple[Any, ...], dict[str, Any]]]] = []
    for i, value in enumerate(call.args):
        per_arg.append(_positional(call, i, value))
    for key, value in call.kwargs.items():
        per_arg.append(_keyword(call, key, value))
    while per_arg:
        alive = []
        for stream in per_arg:
            item = next(stream, None)
            if item is not None:
                alive.append(stream)
                yield item
        per_arg = alive


def _positional(
    call: LiteralCall, i: int, value: object
) -> Iterator[tuple[str, tuple[Any, ...], dict[str, Any]]]:
    for label, new in mutations(value):
        args = list(call.args)
        args[i] = new
        yield f"arg{i}:{label}", tuple(args), dict(call.kwargs)


def _keyword(
    call: LiteralCall, key: str, value: object
) -> Iterator[tuple[str, tuple[Any, ...], dict[str, Any]]]:
    for label, new in mutations(value):
        kwargs = dict(call.kwargs)
        kwargs[key] = new
        yield f"{key}:{label}", tuple(call.args), kwargs


def mutations(value: object) -> list[tuple[str, Any]]:
    """Shape-keeping variants of one argument value, each different from it."""
    out: list[tuple[str, Any]] = []
    if isinstance(value, bool) or value is None:
        return out
    if isinstance(value, int):
        if value >= 2:
            out.append(("smaller", value - 1))
        elif value <= -2:
            out.append(("smaller", value + 1))
    elif isinstance(value, float):
        if math.isfinite(value) and value != 0:
            out.append(("half", value / 2))
    elif isinstance(value, str):
        out.extend(_string_mutations(value))
    elif isinstance(value, list | tuple):
        kind = type(value)
        items = list(value)
        if len(items) >= 2:
            out.append(("drop-last", kind(items[:-1])))
            a, b = items[0], items[1]
            if a != b and _same_scalar_kind(a, b):
                out.append(("swap-first-two", kind([b, a, *items[2:]])))
        if items:
            for label, new in mutations(items[0])[:2]:
                out.append((f"first:{label}", kind([new, *items[1:]])))
    elif isinstance(value, dict) and len(value) >= 2:
        items = list(value.items())
        out.append(("drop-last", dict(items[:-1])))
    return [(label, new) for label, new in out if new != value or type(new) is not type(value)]


def _same_scalar_kind(a: object, b: object) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return bool(_WORD.match(a) and _WORD.match(b))
    return (
        isinstance(a, int | float)
        and isinstance(b, int | float)
        and not isinstance(a, bool)
        and not isinstance(b, bool)
    )


def _string_mutations(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    if re.search(r"\d", text):
        out.append(("digits", re.sub(r"\d+", _shift_digits, text)))
    flipped = re.sub(
        r"\b(True|False)\b", lambda m: "False" if m.group(1) == "True" else "True", text, count=1
    )
    if flipped != text:
        out.append(("true-false", flipped))
    parts = text.split(", ")
    # The first and last parts carry the sentence around a comma list: only inner items move.
    if len(parts) >= 4:
        swapped = [parts[0], parts[2], parts[1], *parts[3:]]
        out.append(("swap-items", ", ".join(swapped)))
    if len(parts) >= 3:
        out.append(("drop-item", ", ".join([parts[0], *parts[2:]])))
    tokens = text.split()
    if len(tokens) >= 2 and all(_WORD.match(t) for t in tokens) and text == " ".join(tokens):
        out.append(("reverse-words", " ".join(reversed(tokens))))
        if len(tokens) >= 3:
            out.append(("drop-word", " ".join(tokens[:-1])))
    elif ": " in text:
        head, _, tail = text.rpartition(": ")
        tail_tokens = tail.split()
        if len(tail_tokens) >= 2:
            out.append(("drop-last-token", head + ": " + " ".join(tail_tokens[:-1])))
        if (
            len(tail_tokens) >= 2
            and all(_WORD.match(t) for t in tail_tokens)
            and tail_tokens[0] != tail_tokens[1]
        ):
            swapped_tail = [tail_tokens[1], tail_tokens[0], *tail_tokens[2:]]
            out.append(("swap-words", head + ": " + " ".join(swapped_tail)))
    return [(label, new) for label, new in out if new != text]


def _shift_digits(match: re.Match[str]) -> str:
    digits = match.group(0)
    # Never produce a 0 (a divisor that was not zero stays non-zero): 9 becomes 8.
    return "".join(str(int(d) + 1) if d != "9" else "8" for d in digits)
