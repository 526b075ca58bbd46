"""Tool folders written by `tools export`: read and checked whole, then written.

`read_export` parses the folder (never runs it) and raises `LibraryError` on the first bad
entry before anything is written; `import_tools` writes the items it is given. What may be
admitted is not memory's call: `evoagent tools import` (toolforge) verifies each tool in
the sandbox between the two and passes on only those that pass.
"""

from __future__ import annotations

import ast
import dataclasses
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from memory import pyparse
from memory.errors import LibraryError
from memory.types import EVIDENCE_KINDS, Evidence, Provenance, ToolDraft, ToolInfo

if TYPE_CHECKING:
    from memory.library import Library

MANIFEST = "tools.json"


@dataclass
class ExportItem:
    """One tool of an export folder: its draft and what the manifest says about it."""

    draft: ToolDraft
    more_provenance: list[Provenance] = field(default_factory=list)
    tasks: list[str] = field(default_factory=list)
    status: str = "active"
    #: the evidence of the exported version (kept as history; it moves trust here only
    #: when the importer says the bundle's word counts: `keep_trust`)
    evidence: list[Evidence] = field(default_factory=list)
    pinned: bool = False


def export_manifest(library: Library, tools: list[ToolInfo]) -> dict[str, Any]:
    """tools.json of an export: per tool its version, status, description, provenance,
    tasks, trust, pin, properties and the evidence of its current version."""
    return {
        t.name: {
            "version": t.version,
            "status": t.status,
            "signature": t.signature,
            "docstring": t.docstring,
            "provenance": [dataclasses.asdict(p) for p in t.provenance],
            "tasks": library.tool_tasks(t.name),
            "trust": t.trust,
            "pinned": t.pinned,
            "properties": list(t.properties),
            "evidence": [
                {k: v for k, v in dataclasses.asdict(e).items() if k not in ("tool", "version")}
                for e in library.tool_evidence(t.name, t.version)
            ],
        }
        for t in tools
    }


def read_export(directory: Path) -> list[ExportItem]:
    """The tools `directory`'s tools.json lists (NAME.py + test_NAME.py each), or every
    NAME.py of a folder without one (written by hand); one error for a bad folder. With a
    tools.json only listed tools are read: a stray NAME.py is not a tool of the bundle.
    No symbolic link is followed: a bundle comes from elsewhere, and a link could make
    it import any file of this machine."""
    if not directory.is_dir():
        raise LibraryError(f"{directory} is not a folder: give the folder `tools export` wrote")
    manifest_path = directory / MANIFEST
    manifest = _manifest(directory, manifest_path)
    files = []
    for name in sorted(manifest):
        path = directory / f"{name}.py"
        for one in (path, directory / f"test_{name}.py"):
            if one.is_symlink():
                raise LibraryError(
                    f"{one} is a symbolic link: a bundle holds its files itself; copy the "
                    "file in place of the link"
                )
        if not path.is_file():
            raise LibraryError(f"{manifest_path} lists {name}, but {path} is missing")
        files.append(path)
    # Every file is read and checked before the first write, so a bad folder imports nothing.
    return [_item(path, manifest.get(path.stem, {}), manifest_path) for path in files]


def _manifest(directory: Path, manifest_path: Path) -> dict[str, dict[str, Any]]:
    """The bundle's tools.json (each tool name to what was exported with it), or, for a
    folder a person wrote by hand, each NAME.py in it with nothing more."""
    if manifest_path.is_symlink():
        raise LibraryError(f"{manifest_path} is a symbolic link: copy the file in its place")
    if manifest_path.is_file():
        try:
            manifest = json.loads(_read_text(manifest_path))
        except json.JSONDecodeError as exc:
            raise LibraryError(
                f"{manifest_path} is not valid JSON ({exc}): fix or remove it"
            ) from exc
        if not isinstance(manifest, dict) or not all(
            isinstance(m, dict) for m in manifest.values()
        ):
            raise LibraryError(
                f"{manifest_path} must map each tool name to an object, as `tools export` "
                "writes it: fix or remove it"
            )
        if not manifest:
            raise LibraryError(f"{manifest_path} lists no tools: nothing to import")
    else:
        manifest = {p.stem: {} for p in directory.glob("*.py") if not p.name.startswith("test_")}
        if not manifest:
            raise LibraryError(f"no NAME.py files in {directory}")
    bad = [n for n in manifest if not n.isidentifier() or n.startswith("_")]
    if bad:
        raise LibraryError(f"{bad[0]!r} in {directory} is not a tool name: fix or remove it")
    return manifest


def _item(path: Path, meta: dict[str, Any], manifest_path: Path) -> ExportItem:
    """One tool of the bundle, read and checked: its source, tests and what was exported
    with it (provenance, tasks, status, properties, evidence, pin)."""
    name, directory = path.stem, path.parent
    source = _read_text(path)
    test_path = directory / f"test_{name}.py"
    tests = _read_text(test_path) if test_path.is_file() else ""
    signature, docstring = describe_source(name, source, path)
    provs = _import_provenance(meta, manifest_path, name) or [
        Provenance(task=f"imported from {directory}")
    ]
    tasks = meta.get("tasks", [])
    texts = [meta.get("signature", ""), meta.get("docstring", "")]
    if not isinstance(tasks, list) or not all(isinstance(t, str) for t in tasks + texts):
        raise LibraryError(
            f"{manifest_path}: {name}: tasks must be a list of strings, signature and "
            "docstring strings: fix or remove it"
        )
    status = meta.get("status", "active")
    if status not in ("active", "quarantined", "archived"):
        raise LibraryError(
            f"{manifest_path}: {name}: status {status!r} is not active, "
            "quarantined or archived: fix or remove it"
        )
    properties = meta.get("properties", [])
    if not isinstance(properties, list) or not all(isinstance(p, dict) for p in properties):
        raise LibraryError(
            f"{manifest_path}: {name}: properties must be a list of objects: fix or remove it"
        )
    draft = ToolDraft(
        name,
        source,
        tests,
        meta.get("signature", signature),
        meta.get("docstring", docstring),
        provs[0],
        properties=tuple(properties),
    )
    evidence = _import_evidence(meta, manifest_path, name)
    pinned = meta.get("pinned", False) is True
    return ExportItem(draft, provs[1:], tasks, status, evidence, pinned)


_EVIDENCE_FIELDS = {"kind", "task", "task_id", "episode_id", "answer", "other", "detail"}


def _import_evidence(meta: dict[str, Any], manifest_path: Path, name: str) -> list[Evidence]:
    raw = meta.get("evidence", [])
    ok = isinstance(raw, list) and all(
        isinstance(e, dict)
        and e.get("kind") in EVIDENCE_KINDS
        and isinstance(e.get("task", ""), str)
        and isinstance(e.get("detail", ""), str)
        and isinstance(e.get("created_at", 0.0), int | float)
        for e in raw
    )
    if not ok:
        raise LibraryError(
            f"{manifest_path}: {name}: evidence must be a list of objects with a known kind "
            f"({', '.join(EVIDENCE_KINDS)}): fix or remove it"
        )
    return [
        Evidence(
            tool=name,
            **{k: v for k, v in e.items() if k in _EVIDENCE_FIELDS},
            created_at=float(e.get("created_at") or 0.0),
        )
        for e in raw
    ]


def unlisted(directory: Path, items: list[ExportItem]) -> list[str]:
    """Python files of the folder that are not tools of the bundle (ignored by import)."""
    listed = {f"{i.draft.name}.py" for i in items} | {f"test_{i.draft.name}.py" for i in items}
    return sorted(p.name for p in directory.glob("*.py") if p.name not in listed)


def unchanged(library: Library, item: ExportItem) -> bool:
    """True when the library's current version of the tool has this very source."""
    current = library.get_tool(item.draft.name)
    return current is not None and current.source == item.draft.source


def import_tools(
    library: Library, items: list[ExportItem], *, keep_trust: bool = False
) -> dict[str, int]:
    """Write `items` (new tool, or new version of a known one); counts by outcome.

    Each tool's exported evidence is kept as its history; it moves trust (and a pin is
    kept) only with `keep_trust`: a bundle made elsewhere cannot vouch for itself, so its
    tools start on probation unless the importer says its word counts (its own backup)."""
    counts = {"added": 0, "versioned": 0, "unchanged": 0}
    for item in items:
        draft = item.draft
        current = library.get_tool(draft.name)
        if current is not None and current.source == draft.source:
            counts["unchanged"] += 1
            continue
        if current is None:
            library.add_tool(draft)
            counts["added"] += 1
        else:
            library.add_version(draft.name, draft)
            counts["versioned"] += 1
        for p in item.more_provenance:
            library.merge_into(draft.name, p)
        for task in item.tasks:
            library.link_task(draft.name, task)
        if item.evidence:
            library.add_evidence(
                [replace(e, detail=f"imported: {e.detail}".strip()) for e in item.evidence],
                count=keep_trust,
            )
        if item.pinned and keep_trust:
            library.pin(draft.name, "pinned in the imported bundle")
        if item.status != "active":
            library.set_status(draft.name, item.status, f"imported as {item.status}")
    return counts


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise LibraryError(
            f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start}): fix or remove it"
        ) from exc
    except OSError as exc:
        raise LibraryError(f"cannot read {path}: {exc.strerror}") from exc


def _import_provenance(meta: dict[str, Any], manifest_path: Path, name: str) -> list[Provenance]:
    fields = {f.name for f in dataclasses.fields(Provenance)}
    raw = meta.get("provenance", [])
    if not isinstance(raw, list) or not all(
        isinstance(p, dict) and isinstance(p.get("task"), str) and set(p) <= fields for p in raw
    ):
        raise LibraryError(
            f"{manifest_path}: {name}: provenance must be a list of objects with a string "
            f"task and only {', '.join(sorted(fields))}: fix or remove it"
        )
    return [Provenance(**p) for p in raw]


def describe_source(name: str, source: str, path: Path | None = None) -> tuple[str, str]:
    """Signature and docstring of the public function `name` in `source` (parsed, never run)."""
    where = path or name
    try:
        tree = pyparse.parse(source)
    except SyntaxError as exc:
        raise LibraryError(
            f"{where} does not parse ({exc.msg}, line {exc.lineno}): fix it or move it out"
        ) from exc
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == name:
            ret = f" -> {ast.unparse(node.returns)}" if node.returns else ""
            return f"{name}({ast.unparse(node.args)}){ret}", ast.get_docstring(node) or ""
    raise LibraryError(
        f"{where} has no function named {name}: a tool module defines the function it is named after"
    )
