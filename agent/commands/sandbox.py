"""`evoagent sandbox build | status | run | check`: the sandbox that runs all untrusted code."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from agent.commands.common import console, option, settings_of
from sandbox.base import SandboxError
from sandbox.config import SandboxConfig

app = typer.Typer(
    name="sandbox",
    help="Build, inspect and test the sandbox that runs all untrusted code.",
    no_args_is_help=True,
)


def _config(ctx: typer.Context) -> SandboxConfig:
    return settings_of(ctx).sandbox


@app.command()
def build(
    ctx: typer.Context,
    force: Annotated[
        bool, typer.Option("--force", help="Rebuild even if the image is present.")
    ] = False,
) -> None:
    """Build the sandbox image (offline from debootstrap when no base image can be pulled)."""
    from sandbox.image import ensure_image, image_tag

    config = _config(ctx)
    out = console()
    started = time.monotonic()
    tag = ensure_image(config, force=force, progress=lambda msg: out.print(f"  {msg}"))
    seconds = time.monotonic() - started
    if seconds < 1.0 and not force:
        out.print(f"{tag} is present and current ({image_tag(config)})")
    else:
        out.print(f"[green]built[/green] {tag} in {seconds:.1f} s")


@app.command()
def status(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Docker reachable? Image present? Sandbox containers alive or orphaned?

    Exit code 1 when Docker is not reachable, so scripts and CI can test for it."""
    from sandbox import docker_status
    from sandbox.image import image_tag

    config = _config(ctx)
    reachable, message = docker_status()
    info: dict[str, Any] = {
        "backend": config.backend,
        "docker": {"reachable": reachable, "message": message},
        "image": image_tag(config),
        "image_present": None,
        "pool_size": config.pool_size,
        "containers": None,
        "orphans": None,
    }
    if reachable:
        from sandbox.engine import connect
        from sandbox.image import _present
        from sandbox.owners import owner_alive, sandbox_containers

        client = connect()
        try:
            info["image_present"] = _present(client, info["image"])
            found = sandbox_containers(client)
            info["containers"] = len(found)
            info["orphans"] = sum(not owner_alive(c.get("Labels") or {}) for c in found)
        finally:
            client.close()
    if as_json:
        typer.echo(json.dumps(info, indent=2))
    else:
        _print_status(config, info, reachable, message)
    if not reachable:
        raise typer.Exit(1)


def _print_status(
    config: SandboxConfig, info: dict[str, Any], reachable: bool, message: str
) -> None:
    out = console()
    mark = {True: "[green]yes[/green]", False: "[red]no[/red]", None: "?"}
    out.print(f"backend      {config.backend}")
    out.print(f"docker       {mark[reachable]}  {message}")
    present = info["image_present"]
    out.print(f"image        {info['image']}  present: {mark[present]}")
    if present is False:
        out.print("             run `evoagent sandbox build`")
    out.print(f"pool size    {config.pool_size}")
    if reachable:
        out.print(
            f"containers   {info['containers']} sandbox containers, {info['orphans']} orphaned "
            "(removed when the next sandbox starts)"
        )


RunFileArg = Annotated[
    Path,
    typer.Argument(exists=True, dir_okay=False, readable=True, help="Python file to run."),
]
RunToolsOpt = Annotated[
    Path | None,
    typer.Option(
        "--tools",
        exists=True,
        file_okay=False,
        help="Folder of tool modules (NAME.py with a function NAME), importable as `from tools import NAME`.",
    ),
]
RunTimeoutOpt = Annotated[float | None, option("Seconds before the run is killed.")]
RunAsJsonOpt = Annotated[bool, option("Print the whole result as JSON.", "--json")]


@app.command()
def run(
    ctx: typer.Context,
    file: RunFileArg,
    tools: RunToolsOpt = None,
    timeout: RunTimeoutOpt = None,
    as_json: RunAsJsonOpt = False,
) -> None:
    """Run FILE.py in the sandbox and show its output, answer and tool calls."""
    from sandbox import get_sandbox

    code = _read_text(file)
    sources = (
        {p.stem: _read_text(p) for p in sorted(tools.glob("*.py")) if not p.stem.startswith("_")}
        if tools
        else {}
    )
    # One run: a warm pool would only start containers to throw them away.
    sandbox = get_sandbox(_config(ctx).model_copy(update={"pool_size": 0}))
    try:
        result = sandbox.run(code, tools=sources, timeout_s=timeout)
    finally:
        sandbox.close()
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2, default=repr))
    else:
        out = console()
        if result.stdout:
            out.out(_inert(result.stdout), end="" if result.stdout.endswith("\n") else "\n")
        if result.stderr:
            out.print(f"[dim]{_escape(result.stderr)}[/dim]")
        for call in result.tool_calls:
            outcome = (
                f"-> {call.result!r}"
                if call.ok
                else f"raised {call.error_type}: {call.error_message}"
            )
            out.print(
                _escape(
                    f"tool {call.tool}(args={call.args!r}, kwargs={call.kwargs!r}) {outcome} [{call.seconds * 1000:.2f} ms]"
                ),
                style="cyan",
            )
        if result.error_type:
            out.print(
                _escape(result.traceback or f"{result.error_type}: {result.error_message}"),
                style="red",
            )
        flags = [n for n in ("timed_out", "oom_killed", "truncated") if getattr(result, n)]
        if flags:
            out.print(f"[yellow]{', '.join(flags)}[/yellow]")
        if result.has_answer:
            out.print(_escape(f"answer: {result.answer!r}"), style="bold")
        out.print(
            f"[dim]{sandbox.kind} sandbox, exit {result.exit_code}, {result.duration_s:.2f} s[/dim]"
        )
    if not result.ok:
        raise typer.Exit(1)


@app.command()
def check(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Security self-test against the live sandbox; exits non-zero if any check fails."""
    from sandbox import get_sandbox
    from sandbox.check import bridge_gateway, run_checks

    config = _config(ctx)
    sandbox = get_sandbox(config)
    gateway = bridge_gateway(sandbox.client) if hasattr(sandbox, "client") else None
    try:
        checks = run_checks(sandbox, config, gateway=gateway)
    finally:
        sandbox.close()
    failed = [c for c in checks if not c.ok]
    if as_json:
        typer.echo(json.dumps([c.__dict__ for c in checks], indent=2))
    else:
        from rich.table import Table

        table = Table(title=f"sandbox security self-test ({sandbox.kind})")
        table.add_column("check")
        table.add_column("result")
        table.add_column("detail")
        for c in checks:
            table.add_row(
                c.name, "[green]pass[/green]" if c.ok else "[red]FAIL[/red]", _escape(c.detail)
            )
        console().print(table)
    if failed:
        raise typer.Exit(1)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SandboxError(f"cannot read {path}: {exc}") from exc


def _inert(text: str) -> str:
    """What the sandboxed code printed, without its control characters (cursor moves,
    colours, a terminal title)."""
    import re

    return re.sub(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]", "", text)


def _escape(text: str) -> str:
    """`_inert` text whose brackets are not read as Rich markup either."""
    from rich.markup import escape

    return escape(_inert(text))
