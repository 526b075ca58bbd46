"""What a write from the browser will change, shown before it is made, and the check that
the thing shown is still what is there when the person confirms.

Every write is two requests: GET a preview (the change in words, a form carrying a
*stamp* of what the preview was computed from) and POST the confirmation. The POST
recomputes the stamp and refuses when it differs: the tool changed meanwhile (a stream
forged a version, another CLI quarantined it), so the person confirmed something that is
no longer true. The writes themselves are the library's own functions, as the CLI calls
them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from memory.errors import LibraryError

if TYPE_CHECKING:
    from agent.config import Settings
    from memory import Library
    from memory.types import Change, ToolInfo

#: the actions on one tool: what each does, the statuses it applies to
TOOL_ACTIONS = {
    "quarantine": "take it out of use (recall no longer offers it; its record stays)",
    "restore": "bring it back into use",
    "pin": "trust its answers with no model call, whatever its evidence",
    "unpin": "let its evidence decide its trust again",
}


class StaleForm(LibraryError):
    """The confirmed preview no longer describes the library."""


@dataclass(frozen=True)
class Preview:
    """A write described before it is made: the lines shown, and the stamp the
    confirmation must carry back."""

    title: str
    lines: list[str]
    stamp: str
    allowed: bool = True


def tool_stamp(tool: ToolInfo) -> str:
    """What a preview of an action on `tool` depends on."""
    state = [tool.name, tool.version, tool.status, tool.pinned, tool.n_support, tool.n_against]
    return _digest(state)


def prune_stamp(changes: list[Change]) -> str:
    return _digest(sorted([c.kind, c.ref, c.action] for c in changes))


def _digest(value: object) -> str:
    return hashlib.sha256(json.dumps(value, default=str).encode()).hexdigest()[:16]


def preview_tool_action(tool: ToolInfo, action: str) -> Preview:
    if action not in TOOL_ACTIONS:
        raise LibraryError(f"unknown action {action!r}: use {', '.join(TOOL_ACTIONS)}")
    before = f"{tool.status}{', pinned' if tool.pinned else ''}"
    allowed, after = True, before
    if action == "quarantine":
        allowed, after = tool.status == "active", "quarantined"
    elif action == "restore":
        allowed, after = tool.status != "active", "active"
    elif action == "pin":
        allowed, after = not tool.pinned, f"{tool.status}, pinned"
    elif action == "unpin":
        allowed, after = tool.pinned, tool.status
    lines = [
        f"{action} {tool.name} v{tool.version}: {TOOL_ACTIONS[action]}",
        f"now: {before}",
        f"after: {after}" if allowed else f"nothing to do: {tool.name} is {before}",
        f"evidence on record: {tool.n_support} for, {tool.n_against} against; "
        f"{tool.total_uses} uses",
    ]
    return Preview(f"{action} {tool.name}?", lines, tool_stamp(tool), allowed)


def apply_tool_action(lib: Library, name: str, action: str, stamp: str) -> ToolInfo:
    """The action, if the tool is as the preview showed it; else StaleForm."""
    tool = _current(lib, name)
    if tool_stamp(tool) != stamp:
        raise StaleForm(
            f"{name} changed since the preview (now v{tool.version}, {tool.status}"
            f"{', pinned' if tool.pinned else ''}): nothing was done; look again and confirm anew"
        )
    reason = "by a person, in evoagent ui"
    if action == "quarantine":
        return lib.set_status(name, "quarantined", f"quarantined {reason}")
    if action == "restore":
        return lib.restore(name, f"restored {reason}")
    if action == "pin":
        return lib.pin(name, f"pinned {reason}")
    if action == "unpin":
        return lib.unpin(name, f"unpinned {reason}")
    raise LibraryError(f"unknown action {action!r}: use {', '.join(TOOL_ACTIONS)}")


def preview_rollback(tool: ToolInfo, old: ToolInfo, callers: list[str]) -> Preview:
    """Make an earlier version current again: a new version with its source and tests
    (both were admitted as they are; its evidence starts afresh, as every version's)."""
    lines = [
        f"{tool.name}: v{tool.version} is current; v{old.version} becomes current again "
        f"as v{tool.version + 1} (its source and tests, as admitted)",
        f"v{tool.version}'s record stays in the history; "
        f"v{tool.version + 1} starts its own evidence (now: probation)",
    ]
    if callers:
        lines.append(
            f"the tools that call it ({', '.join(callers)}) have their stored tests run again "
            "with it in the sandbox; one that fails them is quarantined"
        )
    return Preview(f"roll {tool.name} back to v{old.version}?", lines, tool_stamp(tool))


def recheck_after_rollback(lib: Library, name: str, settings: Settings) -> list[str]:
    """The callers of `name` re-tested with its rolled-back version
    (`toolforge.composition`); the names quarantined. Without a sandbox nothing can
    vouch for them: they are quarantined, saying how to test and restore them."""
    from sandbox import get_sandbox
    from sandbox.base import SandboxError
    from toolforge.composition import all_callers, recheck_callers

    callers = all_callers(name, lib)
    if not callers:
        return []
    try:
        sandbox = get_sandbox(settings.sandbox)
    except SandboxError as exc:
        for caller in callers:
            lib.set_status(
                caller,
                "quarantined",
                f"it calls {name}, rolled back in evoagent ui, and its tests could not be run "
                f"({exc}): `evoagent tools test {caller}`, then `evoagent tools restore {caller}`",
            )
        return callers
    try:
        return recheck_callers(name, lib, sandbox, settings.forge).quarantined
    finally:
        sandbox.close()


def apply_rollback(lib: Library, name: str, version: int, stamp: str) -> ToolInfo:
    from memory.types import Provenance, ToolDraft

    tool = _current(lib, name)
    if tool_stamp(tool) != stamp:
        raise StaleForm(f"{name} changed since the preview (now v{tool.version}): look again")
    old = lib.get_tool(name, version)
    if old is None or version == tool.version:
        raise LibraryError(f"{name} has no earlier version {version} to roll back to")
    draft = ToolDraft(
        name=name,
        source=old.source,
        tests=old.tests,
        signature=old.signature,
        docstring=old.docstring,
        provenance=Provenance(
            f"rolled back to v{version} by a person, in evoagent ui", parent_version=version
        ),
        verification_log=old.verification_log,
        properties=tuple(old.properties),
    )
    return lib.add_version(name, draft)


def preview_verdict(tool: ToolInfo, task_id: str, right: bool) -> Preview:
    word = "right" if right else "wrong"
    lines = [
        f"record that {tool.name} v{tool.version} answered task {task_id} {word}",
        "a person's verdict is evidence the model cannot produce: it moves the tool's trust "
        f"(now {tool.trust}, {tool.n_support} for / {tool.n_against} against)",
    ]
    return Preview(f"{tool.name} was {word} on {task_id}?", lines, tool_stamp(tool))


def apply_verdict(lib: Library, name: str, task_id: str, right: bool, stamp: str) -> None:
    tool = _current(lib, name)
    if tool_stamp(tool) != stamp:
        raise StaleForm(f"{name} changed since the preview: nothing was recorded; look again")
    lib.verdict(name, task_id, right)


def preview_prune(lib: Library) -> tuple[list[Change], Preview]:
    changes = lib.prune(dry_run=True)
    lines = [f"{c.action} {c.kind} {c.ref}: {c.reason}" for c in changes]
    title = f"prune: {len(changes)} change(s)" if changes else "prune: nothing to change"
    return changes, Preview(
        title, lines or ["no tool meets the pruning rules"], prune_stamp(changes)
    )


def apply_prune(lib: Library, stamp: str) -> list[Change]:
    """Prune, if a dry run now lists exactly what the preview listed."""
    if prune_stamp(lib.prune(dry_run=True)) != stamp:
        raise StaleForm(
            "what pruning would change is not what the preview listed (the library changed): "
            "nothing was archived; look at the new preview"
        )
    return lib.prune()


def _current(lib: Library, name: str) -> ToolInfo:
    lib.require_tool(name)
    tool = lib.get_tool(name)
    assert tool is not None
    return tool
