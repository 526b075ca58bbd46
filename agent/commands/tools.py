"""`evoagent tools ...`: browse, search and prune the tool library.

Commands open the library as a guest (`own_index=False`): a task stream running on the
same home keeps its Chroma index, and this process ranks from the embeddings cached in
SQL. `add`, `test` and `import` admit tools through the sandbox; `serve` offers the
library as an MCP server (agent/mcp_server.py; over stdio nothing but the protocol may
reach stdout: the command's own lines go to stderr). Heavy imports stay inside commands.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
from collections import Counter
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from agent.commands.common import (
    DryRunOpt,
    HostOpt,
    JsonOpt,
    PortOpt,
    console,
    open_library,
    option,
    print_changes,
    print_json,
    settings_of,
    table,
    when,
)
from agent.terminal import clean, literal
from memory import pyparse
from memory.errors import LibraryError
from memory.types import Evidence, ToolEvent, ToolInfo, UsageEvent
from toolforge.errors import ForgeError
from toolforge.source import split_inline_tests

if TYPE_CHECKING:
    from agent.config import Settings
    from memory import Library
    from sandbox.base import Sandbox

tools_app = typer.Typer(help="Browse, search and prune the tool library.", no_args_is_help=True)


def trust_text(t: ToolInfo) -> str:
    """A tool's trust and the evidence behind it, in a few characters: `trusted 3/0`."""
    return f"{t.trust} {t.n_support}/{t.n_against}"


StatusOpt = Annotated[str, option("active, quarantined, archived or all.")]
SortOpt = Annotated[str, option("uses, success, trust or recent.")]
WideOpt = Annotated[bool, option("Every column, however wide the terminal.", "--wide")]


@tools_app.command("list")
def tools_list(
    ctx: typer.Context,
    status: StatusOpt = "active",
    sort: SortOpt = "uses",
    wide: WideOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """List tools with their trust (confirmed/refuted tasks) and usage statistics."""
    if sort not in ("uses", "success", "trust", "recent"):
        raise LibraryError(f"unknown sort {sort!r}: use uses, success, trust or recent")
    with open_library(ctx) as lib:
        tools = lib.list_tools(status)
    rank = {"pinned": 0, "trusted": 1, "probation": 2, "doubted": 3}
    keys = {
        "uses": lambda t: (-t.total_uses, t.name),
        "success": lambda t: (-t.reliability, t.name),
        "trust": lambda t: (rank.get(t.trust, 4), -t.n_support, t.name),
        "recent": lambda t: (-(t.last_used_at or t.created_at), t.name),
    }
    tools.sort(key=keys[sort])
    if as_json:
        print_json(
            [
                {k: v for k, v in dataclasses.asdict(t).items() if k not in ("source", "tests")}
                for t in tools
            ]
        )
        return
    # One status per listing unless --status all: the title names it, the column would not.
    show_status = status == "all"
    columns = [
        "name",
        "v",
        *(["status"] if show_status else []),
        "trust (+/-)",
        "uses (ok/fail)",
        "reliab.",
        "last used",
        "summary",
    ]
    table(
        f"tools ({status})",
        columns,
        [
            [
                t.name,
                t.version,
                *([t.status] if show_status else []),
                trust_text(t),
                f"{t.total_uses} ({t.n_success}/{t.n_fail})",
                f"{t.reliability:.2f}",
                when(t.last_used_at),
                t.docstring.strip().splitlines()[0][:60] if t.docstring.strip() else "",
            ]
            for t in tools
        ],
        # Dropped first when the terminal is narrow (the summary wraps last): --wide keeps all.
        optional=[] if wide else ["reliab.", "last used", "uses (ok/fail)", "v"],
    )


VersionOpt = Annotated[int | None, option("A past version (default: current).")]


@tools_app.command("show")
def tools_show(
    ctx: typer.Context,
    name: str,
    version: VersionOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show a tool: highlighted source, tests, usage, provenance and history."""
    with open_library(ctx) as lib:
        lib.require_tool(name)
        info = lib.get_tool(name, version)
        if info is None:
            versions = [v.version for v in lib.tool_versions(name)]
            raise LibraryError(f"tool {name!r} has no version {version}: it has {versions}")
        history = lib.tool_history(name)
        tasks = lib.tool_tasks(name)
        failures = lib.tool_failures(name)
        recent = lib.usage(name, limit=100)
        evidence = lib.tool_evidence(name, info.version)
        calls, called_by = lib.callees(name), lib.callers(name)
    # Calls from outside evoagent (MCP clients, LangChain agents): on record, not counted.
    outside = Counter(e.source for e in recent if e.source != "agent")
    if as_json:
        print_json(
            {
                "tool": info,
                "history": history,
                "tasks": tasks,
                "open_failures": failures,
                "outside_calls_in_last_100": dict(outside),
                "evidence": evidence,
                "calls": calls,
                "called_by": called_by,
            }
        )
        return
    con = console()
    _show_header(con, info, outside, len(recent))
    if calls or called_by:
        con.print(
            f"calls library tools: {literal(', '.join(calls) or 'none')}; "
            f"called by: {literal(', '.join(called_by) or 'none')} "
            "(a new version of a tool re-runs its callers' tests)"
        )
    _show_records(con, info, tasks, failures, evidence, history)


def _show_header(con: Any, info: ToolInfo, outside: Counter[str], n_recent: int) -> None:
    """A tool's status, trust, use, properties, source and tests."""
    from rich.panel import Panel
    from rich.syntax import Syntax

    con.print(
        f"[bold]{literal(info.name)}[/bold] v{info.version} (current v{info.current_version}) "
        f"[{'green' if info.status == 'active' else 'yellow'}]{info.status}[/]"
        + (f" - {literal(info.status_reason)}" if info.status_reason else "")
    )
    con.print(
        f"trust: [bold]{info.trust}[/bold] ({info.n_support} task(s) confirmed, "
        f"{info.n_against} against this version"
        + ("; pinned by a person" if info.pinned else "")
        + ")"
    )
    con.print(
        f"uses {info.n_uses} (ok {info.n_success}, failed {info.n_fail}) this version, "
        f"{info.total_uses} in all; reliability {info.reliability:.2f}; last used {when(info.last_used_at)}"
    )
    if info.properties:
        names = ", ".join(literal(str(p.get("kind"))) for p in info.properties)
        con.print(f"properties checked on every real use: {names}")
    if outside:
        by = ", ".join(f"{literal(k)} {v}" for k, v in sorted(outside.items()))
        con.print(f"outside calls among the last {n_recent} calls: {by} (not counted above)")
    con.print(Panel(Syntax(clean(info.source), "python", line_numbers=True), title="source"))
    con.print(Panel(Syntax(clean(info.tests) or "# no tests", "python"), title="tests"))


def _show_records(
    con: Any,
    info: ToolInfo,
    tasks: list[str],
    failures: list[UsageEvent],
    evidence: list[Evidence],
    history: list[ToolEvent],
) -> None:
    """Where a tool came from, what it solved, its failures, its evidence, its history."""
    for p in info.provenance:
        con.print(
            f"provenance: task {literal(p.task_id or '-')} episode {literal(p.episode_id or '-')} "
            f"parent v{p.parent_version or '-'}: {literal(p.task, 100)}"
        )
    if tasks:
        con.print(f"solved {len(tasks)} task(s), e.g.: {literal(tasks[0], 100)}")
    if failures:
        con.print(
            f"[red]{len(failures)} failed use(s) of this version[/red], last: "
            f"{literal(failures[-1].error_type)}: {literal(failures[-1].error_message, 300)}"
        )
    if evidence:
        con.print(f"evidence for this version ({len(evidence)}, newest first):")
        for e in evidence[:30]:
            compared = f" vs {literal(str(e.other), 40)}" if e.other is not None else ""
            con.print(
                f"  {when(e.created_at)}  {e.kind:<17} task {literal(e.task_id or '-')}: "
                f"{literal(str(e.answer), 40)}{compared}  {literal(e.detail, 60)}"
            )
    else:
        con.print("no evidence for this version yet: every use is checked (probation)")
    for ev in history:
        con.print(f"  {when(ev.at)}  {ev.kind:<11} v{ev.version or '-'}  {literal(ev.detail)}")


@tools_app.command("search")
def tools_search(
    ctx: typer.Context,
    query: str,
    k: Annotated[int, typer.Option("-k", help="How many hits.")] = 5,
    as_json: JsonOpt = False,
) -> None:
    """Search active tools as the agent does (similarity, reliability, recency)."""
    with open_library(ctx) as lib:
        hits = lib.search_tools(query, k=k)
    if as_json:
        print_json(
            [
                {
                    "name": h.tool.name,
                    "version": h.tool.version,
                    "score": h.score,
                    "similarity": h.similarity,
                    "view": h.view,
                    "docstring": h.tool.docstring,
                }
                for h in hits
            ]
        )
        return
    table(
        f"tools for {query[:50]!r}",
        ["name", "score", "similarity", "view", "docstring"],
        [
            [
                h.tool.name,
                f"{h.score:.3f}",
                f"{h.similarity:.3f}",
                h.view,
                h.tool.docstring.strip().splitlines()[0][:60] if h.tool.docstring.strip() else "",
            ]
            for h in hits
        ],
    )


@tools_app.command("diff")
def tools_diff(ctx: typer.Context, name: str, v1: int, v2: int) -> None:
    """Show the differences between two versions of a tool (source and tests)."""
    with open_library(ctx) as lib:
        lib.require_tool(name)
        a, b = lib.get_tool(name, v1), lib.get_tool(name, v2)
        versions = [v.version for v in lib.tool_versions(name)]
    for num, info in ((v1, a), (v2, b)):
        if info is None:
            raise LibraryError(f"tool {name!r} has no version {num}: it has {versions}")
    assert a is not None and b is not None
    out: list[str] = []
    for part in ("source", "tests"):
        out += difflib.unified_diff(
            getattr(a, part).splitlines(keepends=True),
            getattr(b, part).splitlines(keepends=True),
            fromfile=f"{name} v{v1} {part}",
            tofile=f"{name} v{v2} {part}",
        )
    if not out:
        typer.echo(f"v{v1} and v{v2} are identical")
        return
    from rich.syntax import Syntax

    console().print(Syntax(clean("".join(out)), "diff"))


@tools_app.command("verdict")
def tools_verdict(
    ctx: typer.Context,
    name: str,
    verdict: Annotated[str, typer.Argument(help="right or wrong.")],
    task: Annotated[str, typer.Option("--task", help="The id of a task the tool answered.")],
) -> None:
    """Say whether a tool's answer to a task was right: evidence for or against it."""
    if verdict not in ("right", "wrong"):
        raise LibraryError(f"the verdict is right or wrong, not {verdict!r}")
    with open_library(ctx) as lib:
        lib.verdict(name, task, verdict == "right")
        info = lib.get_tool(name)
    assert info is not None
    typer.echo(clean(f"{name}: {verdict} on {task} recorded; trust is now {trust_text(info)}"))


@tools_app.command("pin")
def tools_pin(ctx: typer.Context, name: str) -> None:
    """Vouch for a tool: it answers with no model call whatever its evidence (audited
    now and then). `tools unpin` takes it back."""
    with open_library(ctx) as lib:
        info = lib.pin(name)
    typer.echo(clean(f"{info.name} is pinned"))


@tools_app.command("unpin")
def tools_unpin(ctx: typer.Context, name: str) -> None:
    """Take a pin back: the tool's evidence decides its trust again."""
    with open_library(ctx) as lib:
        info = lib.unpin(name)
    typer.echo(clean(f"{info.name} is unpinned; trust {trust_text(info)}"))


@tools_app.command("quarantine")
def tools_quarantine(
    ctx: typer.Context,
    name: str,
    reason: Annotated[str, typer.Option(help="Why (kept in the history).")] = "quarantined by hand",
) -> None:
    """Take a tool out of retrieval (reversible with `tools restore`)."""
    with open_library(ctx) as lib:
        info = lib.set_status(name, "quarantined", reason)
    typer.echo(clean(f"{info.name} is quarantined"))


@tools_app.command("restore")
def tools_restore(ctx: typer.Context, name: str) -> None:
    """Bring a quarantined or archived tool back to active."""
    with open_library(ctx) as lib:
        info = lib.restore(name, "restored by hand")
    typer.echo(clean(f"{info.name} is active again (v{info.version})"))


@tools_app.command("prune")
def tools_prune(
    ctx: typer.Context,
    dry_run: DryRunOpt = False,
    min_uses: Annotated[
        int | None,
        typer.Option(help="Uses before the failure rate counts.", rich_help_panel="Thresholds"),
    ] = None,
    max_fail_rate: Annotated[
        float | None,
        typer.Option(help="Failure rate that quarantines.", rich_help_panel="Thresholds"),
    ] = None,
    grace: Annotated[
        int | None,
        typer.Option(
            help="Episodes a tool gets before it can be archived.", rich_help_panel="Thresholds"
        ),
    ] = None,
    log_scale: Annotated[
        float | None,
        typer.Option(
            help="Archive below scale*log10(episodes since added) uses.",
            rich_help_panel="Thresholds",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Quarantine unreliable tools and archive rarely used ones (reversible)."""
    with open_library(ctx) as lib:
        changes = lib.prune(
            dry_run,
            min_uses=min_uses,
            max_fail_rate=max_fail_rate,
            grace_episodes=grace,
            log_scale=log_scale,
        )
    print_changes(changes, dry_run, as_json)


@tools_app.command("export")
def tools_export(
    ctx: typer.Context,
    directory: Path,
    status: Annotated[
        str, typer.Option(help="Which tools: active, quarantined, archived or all.")
    ] = "active",
    replace: Annotated[
        bool, typer.Option("--replace", help="Replace a non-empty folder whole.")
    ] = False,
) -> None:
    """Write one NAME.py and test_NAME.py per tool, plus tools.json (provenance, tasks).

    The folder must be new or empty: with --replace, an existing folder is replaced
    whole (no stale NAME.py of an earlier export is left beside the new ones)."""
    import shutil
    import tempfile

    if directory.exists() and not directory.is_dir():
        raise LibraryError(f"{directory} is a file: give a folder to export to")
    if directory.is_dir() and any(directory.iterdir()) and not replace:
        raise LibraryError(
            f"{directory} is not empty: export into a new folder, or pass --replace to "
            "replace it whole"
        )
    from memory.transfer import export_manifest

    with open_library(ctx) as lib:
        tools = lib.list_tools(status)
        manifest = export_manifest(lib, tools)
    try:
        directory.parent.mkdir(parents=True, exist_ok=True)
        # Written beside it, then swapped in: a reader never sees a half-written bundle.
        staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
        for t in tools:
            (staging / f"{t.name}.py").write_text(t.source, encoding="utf-8")
            (staging / f"test_{t.name}.py").write_text(t.tests, encoding="utf-8")
        (staging / "tools.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        staging.chmod(0o755)
        if directory.exists():
            old = directory.with_name(f".{directory.name}.old-{staging.name[-8:]}")
            directory.rename(old)
            staging.rename(directory)
            shutil.rmtree(old, ignore_errors=True)
        else:
            staging.rename(directory)
    except OSError as exc:
        raise LibraryError(
            f"cannot write the export to {directory} ({exc.strerror or exc}): "
            "give a folder you can write to"
        ) from exc
    typer.echo(clean(f"exported {len(tools)} tool(s) to {directory}"))


@tools_app.command("path")
def tools_path(ctx: typer.Context) -> None:
    """Print the path of the library database."""
    from memory.library import DB_FILE

    typer.echo(str(Path(settings_of(ctx).home) / DB_FILE))


# --------------------------------------------------------------- admitting tools


@tools_app.command("add")
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


@tools_app.command("test")
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
    from toolforge.retest import test_stored_tools

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
            reports = test_stored_tools(tools, sandbox, settings.forge, library)
    if as_json:
        typer.echo(json.dumps([rep.to_dict() for rep in reports], indent=2))
    else:
        for rep in reports:
            mark = "ok  " if rep.passed else "FAIL"
            typer.echo(
                clean(f"{mark} {rep.tool} v{rep.version}: {rep.n_passed}/{rep.n_tests} tests pass")
            )
            for line in rep.failures:
                typer.echo(clean(f"       {line}"))
    if not all(rep.passed for rep in reports):
        raise typer.Exit(1)


@tools_app.command("import")
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


# --------------------------------------------------------------- the MCP server


class Transport(StrEnum):
    stdio = "stdio"
    http = "http"


TransportOpt = Annotated[Transport, option("stdio (an MCP client starts this command) or http.")]
StatusOpt_ = Annotated[
    str, option("Serve the tools of this status: active, quarantined, archived, all.")
]
TokenOpt = Annotated[
    str | None,
    typer.Option(
        envvar="EVOAGENT_MCP_TOKEN",
        help="Bearer token HTTP clients must send (generated and printed when needed).",
        show_default=False,
    ),
]
TimeoutOpt = Annotated[
    float | None,
    typer.Option(help="Seconds a call may run (default: the sandbox's timeout_s).", min=0.1),
]


@tools_app.command("serve")
def tools_serve(
    ctx: typer.Context,
    transport: TransportOpt = Transport.stdio,
    host: HostOpt = "127.0.0.1",
    port: PortOpt = 8765,
    status: StatusOpt_ = "active",
    token: TokenOpt = None,
    timeout: TimeoutOpt = None,
) -> None:
    """Serve the library's tools to any MCP client; every call runs in the sandbox."""
    import anyio

    from agent import mcp_server, mcp_transport
    from memory.errors import LibraryError
    from memory.library import DB_FILE, Library
    from sandbox import get_sandbox

    settings = settings_of(ctx)
    if status not in mcp_server.STATUSES:
        raise LibraryError(f"unknown status {status!r}: use {', '.join(mcp_server.STATUSES)}")
    if not (settings.home / DB_FILE).is_file():
        raise LibraryError(
            f"no library at {settings.home}: check --home or $EVOAGENT_HOME, or create one "
            "with a task (`evoagent solve`) or `evoagent tools import DIR`"
        )
    sock = None
    if transport is Transport.http:
        if token is None and mcp_transport.needs_token(host):
            token = mcp_transport.new_token()
            typer.echo(f"bearer token (clients send 'Authorization: Bearer …'): {token}", err=True)
        sock = mcp_transport.bind(host, port)  # before the slow parts: a port in use says so now
    timeout_s = timeout or settings.sandbox.timeout_s
    with Library.open(settings.home, settings.memory, own_index=False) as library:
        sandbox = get_sandbox(settings.sandbox)
        try:
            server = mcp_server.LibraryMCP(library, sandbox, status=status, timeout_s=timeout_s)
            try:
                if sock is None:
                    anyio.run(mcp_transport.serve_stdio, server)
                else:

                    def ready(url: str) -> None:
                        typer.echo(f"evoagent MCP server on {url}", err=True)

                    anyio.run(
                        lambda: mcp_transport.serve_http(server, sock, token=token, ready=ready)
                    )
            finally:
                server.close()  # the usage records still queued
        finally:
            sandbox.close()
            if sock is not None:
                sock.close()
