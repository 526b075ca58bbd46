"""`evoagent ui`'s pages through Starlette's test client: what each shows on an empty and
a seeded home, curation with its preview, CSRF and stale-form refusals, the 404 page, the
token gate, and the live figures of a run."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from agent.config import load_settings
from memory import HashEmbedder, Library
from memory.config import MemoryConfig
from tests.agent.ui.ui_kit import append_results, seed_home, write_run
from tests.memory.conftest import make_draft


@pytest.fixture
def client(home: Path, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    monkeypatch.setenv("EVOAGENT_MEMORY__EMBEDDER", "hash")
    # a rollback re-tests the rolled-back tool's callers in the sandbox
    monkeypatch.setenv("EVOAGENT_SANDBOX__BACKEND", "local")
    from agent.ui import create_app

    with TestClient(create_app(load_settings())) as c:
        yield c  # type: ignore[misc]


@pytest.fixture
def seeded(home: Path, client: TestClient) -> TestClient:
    seed_home(home)
    return client


def _form(page: str) -> dict[str, str]:
    fields = re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', page)
    return dict(fields)


def _library(home: Path) -> Library:
    return Library.open(home, MemoryConfig(embedder="hash"), HashEmbedder())


def test_every_page_works_on_an_empty_home(client: TestClient) -> None:
    for path, says in (
        ("/tools", "No active tool yet"),
        ("/runs", "No runs yet"),
        ("/tips", "No tips yet"),
        ("/failures", "No failures yet"),
        ("/prune", "nothing to change"),
    ):
        page = client.get(path)
        assert page.status_code == 200 and says in page.text, path
    assert client.get("/").url.path == "/tools"


def test_the_library_table_filters_sorts_and_searches(seeded: TestClient) -> None:
    page = seeded.get("/tools?sort=uses").text
    names = re.findall(r'<a href="/tools/(\w+)">', page)
    assert names[0] == "sort_words" and set(names) == {"sort_words", "count_items", "shout"}
    assert "trusted" in page or "probation" in page
    found = seeded.get("/tools?q=count+the+words").text
    assert re.findall(r'<a href="/tools/(\w+)">', found)[0] == "count_items"
    assert "No quarantined tool yet" in seeded.get("/tools?status=quarantined").text
    assert seeded.get("/tools?sort=nonsense").status_code == 400


def test_a_tool_page_shows_source_versions_evidence_usage_and_calls(seeded: TestClient) -> None:
    page = seeded.get("/tools/sort_words").text
    assert "v2" in page and "diff v1→v2" in page
    assert 'class="hl"' in page  # highlighted source
    assert "agreement" in page and "label_match" in page and "t7" in page
    assert "<svg class='usage'" in page and "3 right" in page and "1 failed" in page
    assert 'called by: <a href="/tools/count_items">count_items</a>' in page
    callee = seeded.get("/tools/count_items").text
    assert 'calls: <a href="/tools/sort_words">sort_words</a>' in callee
    old = seeded.get("/tools/sort_words?v=1").text
    assert "current: <a" in old


def test_markup_in_a_tool_is_text_never_run(seeded: TestClient) -> None:
    page = seeded.get("/tools/shout").text
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(" in page


def test_a_version_diff(seeded: TestClient) -> None:
    page = seeded.get("/tools/sort_words/diff?a=1&b=2").text
    assert '<span class="del">-' in page and '<span class="add">+' in page
    assert "key=str.lower" in page
    assert seeded.get("/tools/sort_words/diff?a=1&b=9").status_code == 400


def test_quarantine_shows_a_preview_then_applies_what_the_cli_sees(
    seeded: TestClient, home: Path
) -> None:
    preview = seeded.get("/tools/sort_words/do/quarantine")
    assert "now: active" in preview.text and "after: quarantined" in preview.text
    with _library(home) as lib:
        assert lib.get_tool("sort_words").status == "active"  # a preview changes nothing
    done = seeded.post("/tools/sort_words/do/quarantine", data=_form(preview.text))
    assert done.status_code == 200 and "/tools/sort_words" in str(done.url)
    with _library(home) as lib:
        assert lib.get_tool("sort_words").status == "quarantined"
    restore = seeded.get("/tools/sort_words/do/restore")
    seeded.post("/tools/sort_words/do/restore", data=_form(restore.text))
    pin = seeded.get("/tools/sort_words/do/pin")
    seeded.post("/tools/sort_words/do/pin", data=_form(pin.text))
    with _library(home) as lib:
        tool = lib.get_tool("sort_words")
        assert tool.status == "active" and tool.pinned


def test_a_form_without_the_csrf_token_is_refused(seeded: TestClient, home: Path) -> None:
    preview = seeded.get("/tools/sort_words/do/quarantine")
    form = {**_form(preview.text), "csrf": "forged"}
    refused = seeded.post("/tools/sort_words/do/quarantine", data=form)
    assert refused.status_code == 403 and "CSRF" in refused.text
    with _library(home) as lib:
        assert lib.get_tool("sort_words").status == "active"


def test_a_stale_form_is_refused_not_applied(seeded: TestClient, home: Path) -> None:
    preview = seeded.get("/tools/sort_words/do/quarantine")
    with _library(home) as lib:  # another process changes the tool meanwhile
        lib.pin("sort_words", "pinned from the CLI")
    stale = seeded.post("/tools/sort_words/do/quarantine", data=_form(preview.text))
    assert stale.status_code == 409 and "changed since the preview" in stale.text
    with _library(home) as lib:
        assert lib.get_tool("sort_words").status == "active"


def test_a_verdict_on_a_use_is_previewed_then_recorded(seeded: TestClient, home: Path) -> None:
    preview = seeded.get("/tools/sort_words/verdict?task_id=t7&right=0")
    assert "answered task t7 wrong" in preview.text
    done = seeded.post("/tools/sort_words/verdict", data=_form(preview.text))
    assert done.status_code == 200 and "user_wrong" in done.text
    with _library(home) as lib:
        kinds = [e.kind for e in lib.tool_evidence("sort_words") if e.task_id == "t7"]
    assert "user_wrong" in kinds
    # A task the tool was never used on: refused with what to do, nothing recorded.
    preview = seeded.get("/tools/sort_words/verdict?task_id=t99&right=1")
    refused = seeded.post("/tools/sort_words/verdict", data=_form(preview.text))
    assert refused.status_code == 400 and "no episode of task &#39;t99&#39;" in refused.text


def test_prune_lists_what_it_would_archive_and_refuses_a_changed_list(
    seeded: TestClient, home: Path
) -> None:
    with _library(home) as lib:  # a tool that fails most of its uses, long enough ago
        from memory.types import UsageEvent

        lib.record_usage([UsageEvent("shout", False, error_type="E")] * 30, solved=False)
    preview = seeded.get("/prune")
    if "nothing to change" in preview.text:
        pytest.skip("the pruning rules keep every tool of this home")
    assert "shout" in preview.text
    form = _form(preview.text)
    done = seeded.post("/prune", data=form)
    assert done.status_code == 200 and "pruned" in done.text
    again = seeded.post("/prune", data=form)  # the same preview, applied twice
    assert again.status_code == 409


def test_unknown_tool_or_run_is_a_404_that_lists_what_exists(
    seeded: TestClient, home: Path
) -> None:
    write_run(home, "r1", 10, 4)
    for path in ("/tools/no_such_tool", "/runs/no-such-run", "/nowhere"):
        page = seeded.get(path)
        assert page.status_code == 404, path
        assert 'href="/tools/sort_words"' in page.text and 'href="/runs/r1"' in page.text


def test_a_run_page_and_its_live_figures_follow_the_folder(seeded: TestClient, home: Path) -> None:
    folder = write_run(home, "live", 20, 5, status="running")
    page = seeded.get("/runs/live")
    assert page.status_code == 200 and "Rolling solve rate" in page.text
    assert seeded.get("/runs").text.count('href="/runs/live"') == 1
    first = seeded.get("/runs/live/live.json").json()
    append_results(folder, 5, 5)
    second = seeded.get("/runs/live/live.json").json()
    assert (first["n_done"], second["n_done"]) == (5, 10)
    assert second["n_tasks"] == 20 and 0 <= second["rolling_solve_rate"] <= 1


def test_tips_and_failures_list_and_search(seeded: TestClient) -> None:
    assert "compare words case-insensitively" in seeded.get("/tips").text
    assert "compare words" in seeded.get("/tips?q=sort+words").text
    assert "check the order twice" in seeded.get("/failures?q=sort").text


def test_an_address_other_than_loopback_needs_the_token(home: Path, monkeypatch) -> None:
    monkeypatch.setenv("EVOAGENT_MEMORY__EMBEDDER", "hash")
    from agent.ui import create_app

    with TestClient(create_app(load_settings(), token="s3cret")) as c:
        assert c.get("/tools").status_code == 401
        assert c.get("/tools?token=wrong").status_code == 401
        assert c.get("/tools?token=s3cret").status_code == 200
        assert c.get("/runs").status_code == 200  # the cookie the first visit set


def test_an_earlier_version_is_made_current_again_through_a_preview(
    seeded: TestClient, home: Path
) -> None:
    with _library(home) as lib:
        lib.add_tool(
            make_draft(
                "first_word",
                doc="The first word in case-insensitive order.",
                body="from tools import sort_words\n    return sort_words(text).split()[0]",
                tests="from tools import first_word\n\n\ndef test_case():\n"
                "    assert first_word('a B') == 'a'\n",
            )
        )
    assert "make current…" in seeded.get("/tools/sort_words").text
    preview = seeded.get("/tools/sort_words/rollback?v=1")
    assert "v1 becomes current again as v3" in preview.text
    assert "the tools that call it (count_items, first_word) have their stored tests" in (
        preview.text
    )
    seeded.post("/tools/sort_words/rollback", data=_form(preview.text))
    with _library(home) as lib:
        tool = lib.get_tool("sort_words")
        first = lib.get_tool("sort_words", 1)
        assert tool.version == 3 and tool.source == first.source
        assert tool.provenance[0].parent_version == 1
        # its callers' tests ran again with v3 (v1's case-sensitive order): one still
        # passes and stays in use, the other fails and is quarantined, the change named
        assert lib.get_tool("count_items").status == "active"
        broken = lib.get_tool("first_word")
        assert broken.status == "quarantined"
        assert "its stored tests fail with sort_words v3, which it calls" in (broken.status_reason)
        assert any(e.kind == "versioned" for e in lib.tool_history("sort_words"))
    stale = seeded.post("/tools/sort_words/rollback", data=_form(preview.text))
    assert stale.status_code == 409


def test_a_rollback_whose_callers_cannot_be_tested_quarantines_them(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVOAGENT_MEMORY__EMBEDDER", "hash")
    monkeypatch.setenv("EVOAGENT_SANDBOX__BACKEND", "docker")
    monkeypatch.setenv("DOCKER_HOST", f"unix://{home}/no-docker.sock")
    seed_home(home)
    from agent.ui import create_app

    with TestClient(create_app(load_settings())) as c:
        preview = c.get("/tools/sort_words/rollback?v=1")
        assert c.post("/tools/sort_words/rollback", data=_form(preview.text)).status_code == 200
    with _library(home) as lib:
        assert lib.get_tool("sort_words").version == 3
        caller = lib.get_tool("count_items")
        assert caller.status == "quarantined"
        assert "evoagent tools test count_items" in caller.status_reason


def test_on_loopback_only_this_machines_names_are_answered(home: Path, monkeypatch) -> None:
    monkeypatch.setenv("EVOAGENT_MEMORY__EMBEDDER", "hash")
    from agent.ui import create_app

    app = create_app(load_settings(), hosts=["127.0.0.1", "localhost"])
    with TestClient(app, base_url="http://127.0.0.1:8777") as c:
        assert c.get("/tools").status_code == 200
    with TestClient(app, base_url="http://attacker.example:8777") as c:
        assert c.get("/tools").status_code == 400  # a rebound name: refused
