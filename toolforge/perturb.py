"""Inputs mutated from the observed ones, for the perturbation check.

A tool that only works for the example it was forged from (a lookup of the one input,
a fixed index) raises on a slightly different input. The mutations keep the input's
shape so a general tool has no reason to raise: other digits, list items swapped or
one dropped, True and False swapped, the words of a trailing list reordered or
shortened. They never widen an integer (an index that grows may rightly be out of range).

Every choice (which digits, which items, which order) is drawn from `rng`, which the
forge seeds afresh for each admission on this side: a tool cannot carry a table of the
inputs it will be tried on (its tests are known to it; their mutations are not).
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Iterator
from typing import Any

from toolforge.source import LiteralCall

_WORD = re.compile(r"^[A-Za-z][A-Za-z'&-]*$")


def keeps_shape(label: str) -> bool:
    """Whether a mutation keeps a well-formed input well-formed (other digits, reordered
    items, True and False swapped...): a general tool has no reason to refuse its result.
    Dropping an item or a token may make an input malformed (a bracket left unclosed)."""
    return "drop" not in label


def perturbations(
    calls: list[LiteralCall], limit: int, rng: random.Random
) -> list[tuple[str, tuple[Any, ...], dict[str, Any]]]:
    """Up to `limit` mutated calls as (label, args, kwargs), round-robin over the observed
    calls and their arguments so each gets a turn; the mutations drawn from `rng`."""
    if limit <= 0:
        return []
    originals = {repr((c.args, c.kwargs)) for c in calls}
    streams = [_call_mutations(c, rng) for c in calls]
    out: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
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
            out.append((label, args, kwargs))
            if len(out) >= limit:
                break
        streams = alive
    return out


def _call_mutations(
    call: LiteralCall, rng: random.Random
) -> Iterator[tuple[str, tuple[Any, ...], dict[str, Any]]]:
    per_arg: list[Iterator[tuple[str, tuple[Any, ...], dict[str, Any]]]] = []
    for i, value in enumerate(call.args):
        per_arg.append(_positional(call, i, value, rng))
    for key, value in call.kwargs.items():
        per_arg.append(_keyword(call, key, value, rng))
    while per_arg:
        alive = []
        for stream in per_arg:
            item = next(stream, None)
            if item is not None:
                alive.append(stream)
                yield item
        per_arg = alive


def _positional(
    call: LiteralCall, i: int, value: object, rng: random.Random
) -> Iterator[tuple[str, tuple[Any, ...], dict[str, Any]]]:
    for label, new in mutations(value, rng):
        args = list(call.args)
        args[i] = new
        yield f"arg{i}:{label}", tuple(args), dict(call.kwargs)


def _keyword(
    call: LiteralCall, key: str, value: object, rng: random.Random
) -> Iterator[tuple[str, tuple[Any, ...], dict[str, Any]]]:
    for label, new in mutations(value, rng):
        kwargs = dict(call.kwargs)
        kwargs[key] = new
        yield f"{key}:{label}", tuple(call.args), kwargs


def mutations(value: object, rng: random.Random) -> list[tuple[str, Any]]:
    """Shape-keeping variants of one argument value, each different from it, drawn from
    `rng`."""
    out: list[tuple[str, Any]] = []
    if isinstance(value, bool) or value is None:
        return out
    if isinstance(value, int):
        if value >= 2:
            out.append(("smaller", rng.randint(1, value - 1)))
        elif value <= -2:
            out.append(("smaller", rng.randint(value + 1, -1)))
    elif isinstance(value, float):
        if math.isfinite(value) and value != 0:
            out.append(("scaled", value * rng.uniform(0.1, 0.9)))
    elif isinstance(value, str):
        out.extend(_string_mutations(value, rng))
    elif isinstance(value, list | tuple):
        kind = type(value)
        items = list(value)
        if len(items) >= 2:
            drop = rng.randrange(len(items))
            out.append(("drop-item", kind(items[:drop] + items[drop + 1 :])))
            i, j = rng.sample(range(len(items)), 2)
            if items[i] != items[j] and _same_scalar_kind(items[i], items[j]):
                swapped = list(items)
                swapped[i], swapped[j] = swapped[j], swapped[i]
                out.append(("swap-items", kind(swapped)))
        if items:
            k = rng.randrange(len(items))
            for label, new in mutations(items[k], rng)[:2]:
                out.append((f"item:{label}", kind([*items[:k], new, *items[k + 1 :]])))
    elif isinstance(value, dict) and len(value) >= 2:
        items = list(value.items())
        drop = rng.randrange(len(items))
        out.append(("drop-item", dict(items[:drop] + items[drop + 1 :])))
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


def _string_mutations(text: str, rng: random.Random) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    if re.search(r"\d", text):
        # Never a 0 (a divisor that was not zero stays non-zero), never a longer number.
        digits = re.sub(r"\d", lambda _m: str(rng.randint(1, 9)), text)
        out.append(("digits", digits))
    flipped = re.sub(
        r"\b(True|False)\b", lambda m: "False" if m.group(1) == "True" else "True", text, count=1
    )
    if flipped != text:
        out.append(("true-false", flipped))
    parts = text.split(", ")
    # The first and last parts carry the sentence around a comma list: only inner items move.
    inner = list(range(1, len(parts) - 1))
    if len(inner) >= 2:
        i, j = rng.sample(inner, 2)
        swapped = list(parts)
        swapped[i], swapped[j] = swapped[j], swapped[i]
        out.append(("swap-items", ", ".join(swapped)))
    if inner:
        k = rng.choice(inner)
        out.append(("drop-item", ", ".join(parts[:k] + parts[k + 1 :])))
    tokens = text.split()
    # Two draws of each: a table of a few known variants of its examples would have to
    # hold every draw.
    if len(tokens) >= 2 and all(_WORD.match(t) for t in tokens) and text == " ".join(tokens):
        for _ in range(2):
            out.append(("shuffle-words", " ".join(_shuffled(tokens, rng))))
        if len(tokens) >= 3:
            for k in rng.sample(range(len(tokens)), 2):
                out.append(("drop-word", " ".join(tokens[:k] + tokens[k + 1 :])))
    elif ": " in text:
        head, _, tail = text.rpartition(": ")
        tail_tokens = tail.split()
        if len(tail_tokens) >= 2:
            for k in rng.sample(range(len(tail_tokens)), 2):
                kept = tail_tokens[:k] + tail_tokens[k + 1 :]
                out.append(("drop-token", head + ": " + " ".join(kept)))
        if len(tail_tokens) >= 2 and all(_WORD.match(t) for t in tail_tokens):
            for _ in range(2):
                out.append(("shuffle-words", head + ": " + " ".join(_shuffled(tail_tokens, rng))))
    return [(label, new) for label, new in out if new != text]


def _shuffled(tokens: list[str], rng: random.Random) -> list[str]:
    """The tokens in another order (any order but theirs, when there is one)."""
    for _ in range(10):
        order = list(tokens)
        rng.shuffle(order)
        if order != tokens:
            return order
    return list(reversed(tokens))
