"""`evoagent tools add`, `tools test` and `tools import` (on the `tools` app of agent/commands/tools.py).

The commands open the library and the sandbox inside their bodies, so `evoagent --help`
imports neither docker nor the embedding model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from agent.commands.common import settings_of
from agent.terminal import clean
from memory import pyparse
from toolforge.errors import ForgeError
from toolforge.source import split_inline_tests

if TYPE_CHECKING:
    from agent.config import Settings
    from memory import Library
    from sandbox.base import Sandbox


def register(tools_app: typer.Typer) -> None:
    """Add the commands that admit tools through the sandbox to the `tools` app."""
    tools_app.command("add")(add_tool)
    tools_app.command("test")(test_tools)
    tools_app.command("import")(import_tools)


def add_tool(
    ctx: typer.Context,
    file: Annotated[
        Path, typer.Argument(help="A Python file with one public, annotated, documented function.")
    ],
    tests: Annotated[
        Path | None,
        typer.Option(
            "--tests", help="A file of test_* functions (default: test_* functions in FILE)."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the outcome as JSON.")] = False,
) -> None:
    """Put a hand-written tool through the forge's gates and add it to the library."""
    source, test_source = _read_tool_files(file, tests)
    settings = settings_of(ctx)
    from toolforge.people import add_people_tool

    with _open_library(settings) as library, _open_sandbox(settings) as sandbox:
        outcome = add_people_tool(source, test_source, str(file), library, sandbox, settings.forge)
    if as_json:
        typer.echo(json.dumps(_outcome_dict(outcome), indent=2))
    if outcome.status in ("admitted", "merged", "versioned"):
        if not as_json:
            typer.echo(
                clean(f"{outcome.status}: {outcome.tool} v{outcome.version} - {outcome.reason}")
            )
        return
    raise ForgeError(f"{file} was not added: {outcome.reason}")


def test_tools(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="The tool to test.")] = None,
    all_tools: Annotated[bool, typer.Option("--all", help="Test every active tool.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Re-run tools' stored tests in the sandbox and report (exit code 1 if any fails)."""
    if (name is None) == (not all_tools):
        raise ForgeError("give a tool NAME or --all (not both)")
    settings = settings_of(ctx)
    from toolforge.people import test_stored_tools

    with _open_library(settings) as library:
        if name is not None:
            tool = library.get_tool(name)
            if tool is None:
                known = ", ".join(library.tool_names()[:10]) or "none yet"
                raise ForgeError(
                    f"no tool named {name!r} (tools: {known}); see `evoagent tools list`"
                )
            tools = [tool]
        else:
            tools = library.list_tools("active")
        if not tools:
            typer.echo("no active tools to test")
            return
        with _open_sandbox(settings) as sandbox:
            reports = test_stored_tools(tools, sandbox, settings.forge)
    if as_json:
        typer.echo(json.dumps(reports, indent=2))
    else:
        for rep in reports:
            mark = "ok  " if rep["passed"] else "FAIL"
            typer.echo(
                clean(
                    f"{mark} {rep['tool']} v{rep['version']}: {rep['n_passed']}/{rep['n_tests']} tests pass"
                )
            )
            for line in rep["failures"]:
                typer.echo(clean(f"       {line}"))
    if not all(rep["passed"] for rep in reports):
        raise typer.Exit(1)


def import_tools(
    ctx: typer.Context,
    directory: Annotated[
        Path, typer.Argument(help="A folder written by `tools export` (NAME.py + test_NAME.py).")
    ],
    keep_trust: Annotated[
        bool,
        typer.Option(
            "--keep-trust",
            help="Let the bundle's evidence and pins count here (your own export); "
            "by default they are kept as history and the tools start on probation.",
        ),
    ] = False,
) -> None:
    """Import tools from a folder written by `tools export`, each one verified first.

    The whole folder is checked before anything is written.

    Each new or changed tool goes through the static gate and its tests run in the sandbox.

    Only the tools that pass are imported; exit code 1 if any did not.

    Tools whose source is unchanged are reported, not re-tested.

    Each tool's evidence comes along as its history; it earns trust here only with
    --keep-trust (a bundle from elsewhere cannot vouch for itself).
    """
    from memory.transfer import import_tools as write_tools
    from memory.transfer import read_export, unchanged, unlisted
    from toolforge.people import verify_imports

    items = read_export(directory)  # a bad folder is one error, before Docker is touched
    for name in unlisted(directory, items):
        typer.echo(clean(f"ignored: {name} (not a tool listed in tools.json)"))
    settings = settings_of(ctx)
    with _open_library(settings) as library:
        todo = [item for item in items if not unchanged(library, item)]
        problems: dict[str, list[str]] = {}
        if todo:
            triples = [(i.draft.name, i.draft.source, i.draft.tests) for i in todo]
            with _open_sandbox(settings) as sandbox:
                problems = verify_imports(triples, sandbox, settings.forge)
        passed = [i for i in items if not problems.get(i.draft.name)]
        counts = write_tools(library, passed, keep_trust=keep_trust)
    failed = [name for name, found in problems.items() if found]
    for name in failed:
        typer.echo(clean(f"not imported: {name}: " + "; ".join(problems[name])))
    typer.echo(
        f"imported from {directory}: {counts['added']} new, {counts['versioned']} new "
        f"version(s), {counts['unchanged']} unchanged"
    )
    if failed:
        done = [i.draft.name for i in passed if i in todo]
        raise ForgeError(
            f"{len(failed)} tool(s) failed verification and were not imported: "
            f"{', '.join(failed)}; imported: {', '.join(done) or 'none'}. "
            "Fix them and import the folder again"
        )


def _read_tool_files(file: Path, tests: Path | None) -> tuple[str, str]:
    source = _read(file, "tool file")
    if tests is not None:
        return source, _read(tests, "tests file")
    try:
        tree = pyparse.parse(source)
    except SyntaxError as exc:
        raise ForgeError(
            f"{file} does not parse (line {exc.lineno}: {exc.msg}): fix it first"
        ) from exc
    return split_inline_tests(source, tree)


def _read(path: Path, what: str) -> str:
    if path.is_dir():
        raise ForgeError(f"{what} {path} is a folder: give a .py file")
    if not path.is_file():
        raise ForgeError(f"{what} {path} does not exist: check the path")
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ForgeError(f"cannot read {what} {path}: {exc}") from exc


class _Closing:
    def __init__(self, obj: Sandbox) -> None:
        self.obj = obj

    def __enter__(self) -> Sandbox:
        return self.obj

    def __exit__(self, *exc: object) -> None:
        self.obj.close()


def _open_library(settings: Settings) -> Library:
    from memory import Library

    return Library.open(settings.home, config=settings.memory)


def _open_sandbox(settings: Settings) -> _Closing:
    from sandbox import get_sandbox

    return _Closing(get_sandbox(settings.sandbox))


def _outcome_dict(outcome: Any) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(outcome)
