"""Every setting is read somewhere: the settings loader refuses unknown keys so that a
typo is not silently lost, and a setting no code reads would be lost the same way."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel

from agent.config import Settings

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("agent", "toolforge", "memory", "sandbox")
CONFIG_FILES = {"agent/config.py", "toolforge/config.py", "memory/config.py", "sandbox/config.py"}


def _settings(model: type[BaseModel], prefix: str = "") -> list[tuple[str, str]]:
    """(dotted path, field name) of every leaf setting."""
    out = []
    for name, info in model.model_fields.items():
        kind = info.annotation
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            out += _settings(kind, f"{prefix}{name}.")
        else:
            out.append((prefix + name, name))
    return out


def _source_outside_the_config_models() -> str:
    texts = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if path.relative_to(ROOT).as_posix() not in CONFIG_FILES:
                texts.append(path.read_text(encoding="utf-8"))
    return "\n".join(texts)


def test_every_setting_is_read_by_some_code() -> None:
    source = _source_outside_the_config_models()
    leaves = _settings(Settings)
    assert len(leaves) > 40  # the walk reaches into every nested model
    unread = [
        dotted
        for dotted, name in leaves
        # read as an attribute (config.name), or handed on by name (name=..., "name")
        if not re.search(rf"\.{name}\b|\b{name}=|[\"']{name}[\"']", source)
    ]
    assert not unread, f"settings no code reads (wire them or remove them): {unread}"
