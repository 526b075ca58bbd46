"""`evoagent serve`: `evoagent solve` hands its task to a warm server of the same home, and
solves in its own process when no server takes it (none, stale socket, other settings)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from agent.config import load_settings
from agent.deps import AgentDeps, open_checkpointer
from agent.errors import AgentError
from agent.models import get_model
from agent.serve import Server, socket_path
from tests.agent.graph_kit import check_reply, solve_app, write_script

REPO = Path(__file__).resolve().parents[2]
TASK = "Sort the following words alphabetically: List: pear apple fig"
LATER = "Sort the following words alphabetically: List: oak elm ash birch"
TASK_TOOL = '''def sort_word_list(task: str) -> str:
    """The words after "List:" in `task`, sorted alphabetically, joined with spaces."""
    return " ".join(sorted(task.split("List:", 1)[1].split(), key=str.lower))
'''
RULES = [
    {"step": "plan", "reply": "TOOLS: none\nPLAN: write sort_word_list(task) and call it\n"},
    {"step": "act", "reply": f"```python\n{TASK_TOOL}\n\nanswer = sort_word_list(TASK)\n```\n"},
    {"step": "check", "when": "pear apple fig", "reply": check_reply("apple fig pear")},
    {"step": "check", "when": "oak elm ash birch", "reply": check_reply("ash birch elm oak")},
    {
        "step": "distill",
        "reply": f"```python\n{TASK_TOOL}```\n\n```python\nfrom tools import sort_word_list\n\n\n"
        "def test_sorts():\n"
        '    assert sort_word_list("Sort: List: pear apple fig") == "apple fig pear"\n```\n',
    },
    {"step": "reflect", "reply": "TIP: none"},
]


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, sandbox_image: str, tmp_path: Path) -> dict[str, str]:
    monkeypatch.setenv("EVOAGENT_SANDBOX__IMAGE", sandbox_image)
    monkeypatch.setenv("EVOAGENT_MEMORY__EMBEDDER", "hash")  # MiniLM is not the point here
    script = write_script(tmp_path / "sort.yaml", RULES)
    return {"model": f"scripted:{script}"}


@pytest.fixture
def server(home: Path, env: dict[str, str], any_sandbox: Any) -> Iterator[Server]:
    """A server of `home` in a thread, with the session's sandbox."""
    from memory import Library

    settings = load_settings(home=home).model_copy(update={"model": env["model"]})
    checkpointer, conn = open_checkpointer(home)
    deps = AgentDeps(
        model=get_model(env["model"]),
        library=Library.open(home, config=settings.memory),
        sandbox=any_sandbox,
        settings=settings,
        checkpointer=checkpointer,
    )
    deps._owned = [conn, deps.library]
    served = Server(settings, deps)
    served.bind()
    thread = threading.Thread(target=served.serve_forever, daemon=True)
    thread.start()
    yield served
    served.stop()
    thread.join(timeout=10)
    deps.close()


def solve(home: Path, *args: str) -> Any:
    return CliRunner().invoke(solve_app(), ["--home", str(home), "solve", *args])


def test_solve_runs_in_the_server_of_its_home(
    home: Path, env: dict[str, str], server: Server
) -> None:
    first = solve(home, TASK, "--model", env["model"], "--expect", "apple fig pear")
    assert first.exit_code == 0, first.output
    assert "solved by `evoagent serve`" in first.output
    assert first.stdout.strip().splitlines()[0] == "apple fig pear"
    assert "new tools: sort_word_list" in first.output  # the server's library learned

    later = solve(home, LATER, "--model", env["model"], "--expect", "ash birch elm oak", "--json")
    assert later.exit_code == 0, later.output
    episode = json.loads(later.stdout[later.stdout.index("{") :])
    assert episode["answer"] == "ash birch elm oak" and episode["status"] == "solved"
    assert "sort_word_list" in episode["tools_used"]  # reuse, in the warm process
    assert server.served == 2


def test_other_settings_are_solved_in_the_clients_own_process(
    home: Path, env: dict[str, str], server: Server, tmp_path: Path
) -> None:
    other = write_script(tmp_path / "other.yaml", RULES)
    out = solve(home, TASK, "--model", f"scripted:{other}", "--expect", "apple fig pear")
    assert out.exit_code == 0, out.output
    assert "not solved by `evoagent serve`: other model than the server's" in out.output
    assert "apple fig pear" in out.stdout
    assert server.served == 0
    # --no-server: in this process even with the server's own settings
    out = solve(home, TASK, "--model", env["model"], "--no-server")
    assert out.exit_code == 0 and server.served == 0


def test_a_stale_socket_is_solved_around_then_replaced(home: Path, env: dict[str, str]) -> None:
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(socket_path(home)))  # a server killed with SIGKILL leaves this behind
    dead.close()
    out = solve(home, TASK, "--model", env["model"], "--expect", "apple fig pear")
    assert out.exit_code == 0, out.output
    assert "stale socket" in out.output and "apple fig pear" in out.stdout
    fresh = Server(load_settings(home=home), deps=None)
    fresh.bind()  # the stale file is no obstacle
    try:
        with pytest.raises(AgentError, match="a server already serves"):
            Server(load_settings(home=home), deps=None).bind()
        assert socket_path(home).stat().st_mode & 0o777 == 0o600
    finally:
        fresh.close()
    assert not socket_path(home).exists()


def _exchange(home: Path, payload: bytes) -> list[dict[str, Any]]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(30)
        sock.connect(str(socket_path(home)))
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return [json.loads(line) for line in data.splitlines()]


@pytest.mark.parametrize(
    ("payload", "says"),
    [
        (b"not json at all\n", "not one JSON line"),
        (b'{"v": 99}\n', "not a protocol 1 request"),
        (b'{"v": 1, "settings": {}, "task": "x", "forge": "now"}\n', "'task' must be a dict"),
        (
            b'{"v": 1, "settings": {"agent": {"max_attempts": "many"}}, "task": {}, "forge": "now"}\n',
            "validation error",
        ),
        (b"[" * 100_000 + b"\n", "not one JSON line"),
    ],
)
def test_bad_requests_get_an_error_and_the_server_keeps_serving(
    home: Path, env: dict[str, str], server: Server, payload: bytes, says: str
) -> None:
    [line] = _exchange(home, payload)
    assert says in line["error"] and line["code"] in (1, 5)
    out = solve(home, TASK, "--model", env["model"], "--expect", "apple fig pear")
    assert out.exit_code == 0 and "solved by `evoagent serve`" in out.output


def test_a_real_server_process_serves_then_stops_on_sigterm(
    home: Path, env: dict[str, str]
) -> None:
    cli = [str(Path(sys.executable).parent / "evoagent"), "--home", str(home)]
    server = subprocess.Popen(
        [*cli, "serve", "--model", env["model"]],
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env=dict(os.environ),
    )
    try:
        deadline = time.monotonic() + 120
        while not socket_path(home).exists():
            assert server.poll() is None, server.stderr.read() if server.stderr else ""
            assert time.monotonic() < deadline, "the server never listened"
            time.sleep(0.2)
        done = subprocess.run(
            [*cli, "solve", TASK, "--model", env["model"], "--expect", "apple fig pear"],
            capture_output=True,
            text=True,
            cwd=REPO,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "apple fig pear"
        assert "solved by `evoagent serve`" in done.stderr
    finally:
        server.send_signal(signal.SIGTERM)
        _, err = server.communicate(timeout=30)
    assert server.returncode == 0, err
    assert "stopped after 1 task(s)" in err
    assert not socket_path(home).exists()
