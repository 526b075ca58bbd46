"""Helpers of the graph and `solve` tests: scripted models written from Python rules,
deps on a temp home (real Library with the hash embedder, real checkpointer), and a
CLI app that mounts `solve` under the same root callback as `agent.cli`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from typer.core import TyperGroup

try:  # typer >= 0.20 vendors click: only its own ClickException is shown as one line
    from typer._click.exceptions import ClickException
except ImportError:  # pragma: no cover - older typer uses click itself
    from click import ClickException

from agent.config import AgentConfig, Settings, load_settings
from agent.deps import AgentDeps, open_checkpointer
from agent.errors import AgentError, ConfigError
from sandbox.config import SandboxConfig

TASK = "Sort the following words alphabetically: List: pear apple fig"
ANSWER = "apple fig pear"

# Code a scripted model writes to create a tool (a typed, documented function) and use it.
CREATE_CODE = '''```python
def sort_words(words: list[str]) -> list[str]:
    """Sort words alphabetically, ignoring case."""
    return sorted(words, key=str.lower)


answer = " ".join(sort_words("pear apple fig".split()))
```'''

REUSE_CODE = """```python
from tools import sort_words

answer = " ".join(sort_words("kiwi banana cherry".split()))
```"""


# toolforge's distill reply: the tool module, then its tests.
DISTILL_REPLY = '''```python
def sort_words(words: list[str]) -> list[str]:
    """Return the words sorted alphabetically, ignoring case.

    Words that differ only in case keep their input order.
    """
    return sorted(words, key=str.lower)
```

```python
from tools import sort_words


def test_sorts_alphabetically():
    assert sort_words(["pear", "apple", "fig"]) == ["apple", "fig", "pear"]


def test_ignores_case():
    assert sort_words(["banana", "Apple", "cherry"]) == ["Apple", "banana", "cherry"]


def test_empty_list():
    assert sort_words([]) == []
```'''


def check_reply(answer: str) -> str:
    """The independent route's reply (step `check`, the `program` route): a program for
    this one task that sets its answer."""
    return f"```python\nanswer = {answer!r}\n```\n"


def write_script(
    path: Path, rules: list[dict[str, Any]], default: str | None = None, latency_s: float = 0
) -> Path:
    data: dict[str, Any] = {"rules": rules}
    if default is not None:
        data["default"] = default
    if latency_s:
        data["latency_s"] = latency_s
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def settings_for(home: Path, sandbox: SandboxConfig | None = None, **agent: Any) -> Settings:
    base = {"max_attempts": 2, "max_steps": 2, **agent}
    return Settings(home=home, agent=AgentConfig(**base), sandbox=sandbox or SandboxConfig())


def make_deps(home: Path, model: Any, sandbox: Any, **agent: Any) -> AgentDeps:
    """Deps with a real Library (hash embedder) and checkpointer on `home`; the caller
    keeps the sandbox (a session fixture)."""
    from memory import HashEmbedder, Library

    if isinstance(model, Path):
        from agent.models import get_model

        model = get_model(f"scripted:{model}")
    settings = settings_for(home, **agent)
    library = Library.open(home, embedder=HashEmbedder())
    checkpointer, conn = open_checkpointer(home)
    return AgentDeps(
        model=model,
        library=library,
        sandbox=sandbox,
        settings=settings,
        checkpointer=checkpointer,
        _owned=[conn, library],
    )


class _Group(TyperGroup):
    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (AgentError, ConfigError) as exc:
            raise ClickException(str(exc)) from exc


def solve_app() -> typer.Typer:
    """`agent.cli.app` once `solve` is registered there; until then a small app with the
    same root callback (settings into ctx.obj) and user-error handling."""
    try:
        from agent.cli import app

        if "solve" in {c.name for c in app.registered_commands}:
            return app
    except ImportError:
        pass
    from agent.commands.solve import solve_command

    app = typer.Typer(cls=_Group, no_args_is_help=True)

    @app.callback()
    def main(
        ctx: typer.Context,
        home: Annotated[Path | None, typer.Option()] = None,
        config: Annotated[list[str] | None, typer.Option("-c", "--config")] = None,
    ) -> None:
        ctx.obj = load_settings(home=home, overrides=config or [])

    app.command("solve")(solve_command)
    return app


if __name__ == "__main__":  # `python tests/agent/graph_kit.py solve ...`: the CLI in a subprocess
    solve_app()()
