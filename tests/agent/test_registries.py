"""Model kinds and sandbox backends come from registries that installed packages extend
through entry points (`evoagent.models`, `evoagent.sandboxes`), like simonw/llm's
plugins. The plugins here are real distributions on `sys.path` (a dist-info folder with
its entry_points.txt), found by importlib.metadata as pip-installed ones are."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

PLUGIN = """
from langchain_core.language_models.fake_chat_models import FakeListChatModel

from agent.models import ModelKind
from sandbox import SandboxKind
from sandbox.local import LocalSandbox


def _echo(spec, options):
    return FakeListChatModel(responses=[spec.partition(":")[2] or "echo"])


KIND = ModelKind("echo", "answers with what follows echo:", _echo)
CLASH = ModelKind("local", "tries to replace the built-in local kind", _echo)
BACKEND = SandboxKind("plain", "the local backend under another name", LocalSandbox)
"""


def _install(root: Path, models: str, sandboxes: str = "") -> None:
    """A distribution `evoagent-echo` whose entry points are `models` and `sandboxes`."""
    (root / "evoagent_echo.py").write_text(PLUGIN, encoding="utf-8")
    info = root / "evoagent_echo-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: evoagent-echo\nVersion: 0.1\n")
    points = f"[evoagent.models]\n{models}\n"
    if sandboxes:
        points += f"[evoagent.sandboxes]\n{sandboxes}\n"
    (info / "entry_points.txt").write_text(points, encoding="utf-8")


@pytest.fixture
def plugin_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    yield root
    sys.modules.pop("evoagent_echo", None)


def test_a_packages_model_kind_is_built_from_its_prefix_and_listed(plugin_root: Path) -> None:
    from agent.cli import app
    from agent.models import get_model

    _install(
        plugin_root, "echo = evoagent_echo:KIND\nlocal = evoagent_echo:CLASH\nbroken = nowhere:X"
    )
    model = get_model("echo:hello there")
    assert model.invoke("hi").content == "hello there"
    out = CliRunner().invoke(app, ["models", "list", "--json"])
    assert out.exit_code == 0, out.output
    listed = json.loads(out.output)
    kinds = {k["kind"]: k["origin"] for k in listed["kinds"]}
    assert kinds["echo"] == "evoagent-echo" and kinds["local"] == "built-in"
    problems = " ".join(listed["problems"])
    assert "'local' is built in; not replaced" in problems
    assert "'broken' failed to load" in problems
    # The table a person reads names the kind and the package it comes from.
    shown = CliRunner().invoke(app, ["models", "list"])
    assert "echo" in shown.output and "evoagent-echo" in shown.output


def test_a_packages_sandbox_backend_is_chosen_by_name(plugin_root: Path) -> None:
    from sandbox import SandboxConfig, SandboxError, get_sandbox

    _install(plugin_root, "", "plain = evoagent_echo:BACKEND")
    sandbox = get_sandbox(SandboxConfig(backend="plain"))
    try:
        res = sandbox.run("answer = 6 * 7", timeout_s=20)
        assert res.ok and res.answer == 42
    finally:
        sandbox.close()
    with pytest.raises(SandboxError, match="unknown sandbox backend 'nope': choose one of"):
        get_sandbox(SandboxConfig(backend="nope"))
