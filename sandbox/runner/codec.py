"""Plain data across process boundaries, and the limits both sides enforce.

Everything that crosses between the code's process, a tool's process, the supervisor
and the host is *plain data*: JSON scalars and lists, with every other container tagged
(`{"t": "tuple", "v": [...]}`). `to_plain` refuses anything else, `from_plain` decodes
untrusted data within bounded depth, size and integer digits. The host imports this
module (and nothing else of the runner) so that the supervisor and the host check
results by the same rules: what the supervisor lets through, the host accepts.
"""

from __future__ import annotations

import base64
import contextlib
import json
import math
from typing import Any

MARKER = "EVOAGENT-RESULT "
CALL_MARKER = "EVOAGENT-CALL "
#: cap of one recorded value (argument, result) as JSON text
VALUE_LIMIT = 64 * 1024
#: cap of the answer as JSON text
ANSWER_LIMIT = 1024 * 1024
MAX_TOOL_CALLS = 1000
#: the JSON text all records of one run may hold; past it, values are kept cut
RECORDS_LIMIT = 16 * 1024 * 1024
#: the longest message a process may send the supervisor (a call, a reply, the final state)
MESSAGE_LIMIT = 4 * 1024 * 1024
#: plain data: deepest nesting, most containers+scalars in one value, most digits of an int
MAX_DEPTH = 64
MAX_NODES = 100_000
MAX_INT_DIGITS = 4000
#: the job line
JOB_LIMIT = 64 * 1024 * 1024
#: the supervisor's notes: kinds kept, characters per note
MAX_NOTES = 20
NOTE_LIMIT = 300
#: the longest error message and traceback a result carries
TRACEBACK_LIMIT = 20_000
#: the most bytes a result line may take (what the host reads at most)
RESULT_LIMIT = 64 * 1024 * 1024


class Unplain(TypeError):
    """A value that cannot cross a process boundary as plain data."""


def to_plain(value: Any) -> Any:
    """`value` as JSON-able data that `from_plain` turns back into an equal value.

    JSON scalars and lists stand for themselves; every other container is a tagged
    object (`{"t": "tuple", "v": [...]}`; dicts as key/value pairs, so keys keep their
    type). Sets are sorted by their encoding, so the same set always encodes the same.
    numpy values become Python values. Anything else raises `Unplain`.
    """
    budget = [MAX_NODES]
    return _enc(value, 0, budget)


def _scalar(value: Any, depth: int, budget: list[int], error: type[Exception]) -> bool:
    """Count one node against the budget and the depth (`error` when past either);
    whether `value` is a scalar that stands for itself (None, bool, str, a small int)."""
    budget[0] -= 1
    if budget[0] < 0:
        raise error(f"more than {MAX_NODES} items")
    if depth > MAX_DEPTH:
        raise error(f"nested deeper than {MAX_DEPTH}")
    kind = type(value)
    if kind is int and value.bit_length() > MAX_INT_DIGITS * 3.33:
        raise error(f"an integer of more than {MAX_INT_DIGITS} digits")
    return value is None or kind in (bool, str, int)


def _enc(value: Any, depth: int, budget: list[int]) -> Any:
    kind = type(value)
    if _scalar(value, depth, budget, Unplain):
        return value
    if kind is float:
        if math.isfinite(value):
            return value
        return {"t": "float", "v": repr(value)}
    if kind is list:
        return [_enc(v, depth + 1, budget) for v in value]
    if kind is tuple:
        return {"t": "tuple", "v": [_enc(v, depth + 1, budget) for v in value]}
    if kind is dict:
        return {
            "t": "dict",
            "v": [
                [_enc(k, depth + 1, budget), _enc(v, depth + 1, budget)] for k, v in value.items()
            ],
        }
    if kind is set or kind is frozenset:
        items = [_enc(v, depth + 1, budget) for v in value]
        items.sort(key=lambda item: json.dumps(item, sort_keys=True))
        return {"t": kind.__name__, "v": items}
    if kind is bytes:
        return {"t": "bytes", "v": base64.b64encode(value).decode("ascii")}
    if kind is complex:
        return {
            "t": "complex",
            "v": [_enc(value.real, depth + 1, budget), _enc(value.imag, depth + 1, budget)],
        }
    # Convenience for values whose meaning is plain: numpy scalars and arrays, and
    # subclasses of the builtins (a namedtuple, an IntEnum) as their base type.
    if kind.__module__ == "numpy" and hasattr(value, "tolist"):
        try:
            converted = value.tolist()
        except Exception as exc:
            raise Unplain(f"a numpy {kind.__name__} that tolist() refused ({exc})") from None
        return _enc(converted, depth, budget)
    bases: tuple[Any, ...] = (bool, int, float, str, bytes, tuple, list, dict, frozenset, set)
    for base in bases:
        if isinstance(value, base):
            try:
                converted = base(value)
            except Exception as exc:
                raise Unplain(f"a {kind.__name__} that {base.__name__}() refused ({exc})") from None
            if type(converted) is base:
                return _enc(converted, depth, budget)
    raise Unplain(
        f"a {kind.__module__}.{kind.__qualname__} is not plain data (None, bool, int, float, "
        "str, bytes, complex, list, tuple, set, frozenset, dict)"
    )


def from_plain(data: Any) -> Any:
    """The value `to_plain` encoded, from untrusted data. Raises ValueError when `data` is
    not exactly that shape or passes the size, depth or digit limits."""
    budget = [MAX_NODES]
    try:
        return _dec(data, 0, budget)
    except (RecursionError, OverflowError, TypeError, ValueError, KeyError) as exc:
        raise ValueError(f"not plain data: {type(exc).__name__}: {str(exc)[:200]}") from None


def _dec(data: Any, depth: int, budget: list[int]) -> Any:
    kind = type(data)
    if _scalar(data, depth, budget, ValueError):
        return data
    if kind is float:
        if not math.isfinite(data):
            raise ValueError("a non-finite float outside a float tag")
        return data
    if kind is list:
        return [_dec(v, depth + 1, budget) for v in data]
    if kind is not dict or set(data) != {"t", "v"}:
        raise ValueError(f"unexpected {kind.__name__}")
    tag, items = data["t"], data["v"]
    if tag == "float":
        if items not in ("nan", "inf", "-inf"):
            raise ValueError("bad float tag")
        return float(items)
    if tag == "bytes":
        if type(items) is not str:
            raise ValueError("bad bytes tag")
        return base64.b64decode(items.encode("ascii"), validate=True)
    if type(items) is not list:
        raise ValueError(f"bad {tag} tag")
    if tag == "tuple":
        return tuple(_dec(v, depth + 1, budget) for v in items)
    if tag in ("set", "frozenset"):
        values = [_dec(v, depth + 1, budget) for v in items]
        return set(values) if tag == "set" else frozenset(values)
    if tag == "dict":
        out = {}
        for pair in items:
            if type(pair) is not list or len(pair) != 2:
                raise ValueError("bad dict item")
            out[_dec(pair[0], depth + 1, budget)] = _dec(pair[1], depth + 1, budget)
        return out
    if tag == "complex":
        if len(items) != 2:
            raise ValueError("bad complex tag")
        real, imag = (_dec(v, depth + 1, budget) for v in items)
        if not all(type(x) in (int, float) for x in (real, imag)):
            raise ValueError("bad complex tag")
        return complex(real, imag)
    raise ValueError(f"unknown tag {str(tag)[:20]!r}")


def jsonish(value: Any, limit: int) -> tuple[Any, bool]:
    """(value as JSON data, cut?) for records and answers: JSON values as they are (tuples
    as lists), numpy via tolist(), anything else its repr; sets are shown sorted so the
    same value always reads the same. Cut to `limit` characters of JSON text."""
    if type(value).__module__ == "numpy" and hasattr(value, "tolist"):
        with contextlib.suppress(Exception):
            value = value.tolist()
    try:
        text = json.dumps(value, allow_nan=True)
    except (TypeError, ValueError, RecursionError):
        try:
            text = _stable_repr(value, 0)
        except Exception as exc:
            text = f"<unrepresentable {type(value).__name__}: {str(exc)[:100]}>"
        return (text[:limit], True) if len(text) > limit else (text, False)
    if len(text) > limit:
        return text[:limit], True
    try:
        loaded = json.loads(text)
    except RecursionError:
        return text[:limit], True
    return loaded, False


def _stable_repr(value: Any, depth: int) -> str:
    if depth > MAX_DEPTH:
        return "..."
    if type(value) in (set, frozenset):
        inner = ", ".join(sorted(_stable_repr(v, depth + 1) for v in value))
        if type(value) is frozenset:
            return f"frozenset({{{inner}}})"
        return "{" + inner + "}" if inner else "set()"
    if type(value) is list:
        return "[" + ", ".join(_stable_repr(v, depth + 1) for v in value) + "]"
    if type(value) is tuple:
        inner = ", ".join(_stable_repr(v, depth + 1) for v in value)
        return "(" + inner + ("," if len(value) == 1 else "") + ")"
    if type(value) is dict:
        return (
            "{"
            + ", ".join(
                _stable_repr(k, depth + 1) + ": " + _stable_repr(v, depth + 1)
                for k, v in value.items()
            )
            + "}"
        )
    return repr(value)


def json_problem(value: Any, limit: int) -> str | None:
    """Why `value` (JSON data as json.loads gives it) is not within the bounds both sides
    hold a result to (nesting, items, length of its JSON text); None when it is."""
    stack = [(value, 0)]
    nodes = 0
    while stack:
        item, depth = stack.pop()
        nodes += 1
        if depth > MAX_DEPTH:
            return f"nested deeper than {MAX_DEPTH}"
        if nodes > 2 * MAX_NODES:
            return f"more than {2 * MAX_NODES} items"
        if isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
        elif isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif not (item is None or isinstance(item, bool | int | float | str)):
            return f"a {type(item).__name__} is not JSON data"
    try:
        size = len(json.dumps(value))
    except (ValueError, TypeError, RecursionError) as exc:
        return f"it cannot be encoded as JSON ({type(exc).__name__})"
    if size > limit:
        return f"longer than {limit} characters of JSON"
    return None
