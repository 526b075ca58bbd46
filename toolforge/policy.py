"""The static gate's policy lists, read from `policy.toml` (data, not code): modules
refused, builtins banned, dunders allowed, introspection attributes refused, calls that
count as constants, decorators allowed at import time, answers too generic to be
hard-coding; and the words a batch comparison of candidates leaves out."""

from __future__ import annotations

import tomllib
from pathlib import Path


def _load() -> dict[str, frozenset[str]]:
    with POLICY_FILE.open("rb") as fh:
        data = tomllib.load(fh)
    return {key: frozenset(values) for key, values in data.items()}


POLICY_FILE = Path(__file__).with_name("policy.toml")
_POLICY = _load()
DENIED_MODULES = _POLICY["denied_modules"]
BANNED_BUILTINS = _POLICY["banned_builtins"]
ALLOWED_DUNDERS = _POLICY["allowed_dunders"]
INTROSPECTION_ATTRIBUTES = _POLICY["introspection_attributes"]
CONST_CALLS = _POLICY["const_calls"]
ALLOWED_DECORATORS = _POLICY["allowed_decorators"]
GENERIC_ANSWERS = _POLICY["generic_answers"]
FORM_WORDS = _POLICY["form_words"]
DENIED_NAMES = _POLICY["denied_names"]
COMPARISON_STOP_WORDS = _POLICY["comparison_stop_words"]
