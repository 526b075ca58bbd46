"""`local` models: the weights (pull, checks), the engine's bad inputs, and (marked
`model`) the real Qwen2.5-Coder-1.5B through llama.cpp."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from agent.errors import ModelError
from agent.models import weights

runner = CliRunner()
TASK = "Sort the following words alphabetically: List: pear apple fig"


def solve(*args: str) -> Any:
    from agent.cli import app

    return runner.invoke(app, ["-c", "memory.embedder=hash", "solve", TASK, *args])


def one_line_error(result: Any, *needles: str) -> None:
    assert result.exit_code in (1, 5), result.output
    assert "Traceback" not in result.output
    error = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(error) == 1, result.output
    for needle in needles:
        assert needle in result.output, (needle, result.output)


# --------------------------------------------------------------------------- bad input


def test_a_gguf_path_that_does_not_exist(tmp_path: Path) -> None:
    one_line_error(solve("--model", f"local:{tmp_path}/nope.gguf"), "does not exist")


def test_a_file_that_is_not_gguf(tmp_path: Path) -> None:
    bad = tmp_path / "model.gguf"
    bad.write_bytes(b"PK\x03\x04 not a model")
    one_line_error(solve("--model", f"local:{bad}"), "is not a GGUF file")


def test_a_truncated_gguf_file_names_the_fix(tmp_path: Path) -> None:
    pytest.importorskip("llama_cpp")  # installed by `make setup`: the engine says it
    bad = tmp_path / "cut.gguf"
    bad.write_bytes(b"GGUF" + b"\x03\x00\x00\x00" + b"\x00" * 100)
    one_line_error(solve("--model", f"local:{bad}"), "could not load", "truncated")


def test_a_known_model_of_the_wrong_size_is_truncated(tmp_path: Path) -> None:
    spec = weights.KNOWN["qwen2.5-coder-0.5b"]
    (tmp_path / spec.filename).write_bytes(b"GGUF" + b"\x00" * 1000)
    result = runner.invoke(
        __import__("agent.cli", fromlist=["app"]).app,
        [
            "-c",
            f"local.models_dir={tmp_path}",
            "-c",
            "memory.embedder=hash",
            "solve",
            TASK,
            "--model",
            "local:qwen2.5-coder-0.5b",
        ],
    )
    one_line_error(result, "truncated", "evoagent models pull qwen2.5-coder-0.5b --force")


def test_a_known_model_with_the_wrong_checksum(tmp_path: Path) -> None:
    spec = weights.KNOWN["qwen2.5-coder-0.5b"]
    path = tmp_path / spec.filename
    with open(path, "wb") as fh:
        fh.write(b"GGUF")
        fh.truncate(spec.size)  # the right size, the wrong bytes (sparse: costs no disk)
    with pytest.raises(
        ModelError, match=r"wrong checksum.*models pull qwen2\.5-coder-0\.5b --force"
    ):
        weights.resolve("local:qwen2.5-coder-0.5b", tmp_path)


def test_a_model_too_large_for_memory(tmp_path: Path) -> None:
    huge = tmp_path / "huge.gguf"
    with open(huge, "wb") as fh:
        fh.write(b"GGUF")
        fh.truncate(1 << 40)  # a terabyte, sparse
    one_line_error(solve("--model", f"local:{huge}"), "of memory", "smaller model")


def test_an_engine_that_is_not_installed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from agent.models.local import LocalChatModel

    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF")
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # import llama_cpp fails
    with pytest.raises(ModelError, match="llama-cpp-python\\) is not installed: run `make setup`"):
        LocalChatModel(model_name="local:m", path=str(model)).engine()


def test_an_unknown_model_name_lists_the_known_ones() -> None:
    with pytest.raises(ModelError, match=r"qwen2\.5-coder-1\.5b"):
        weights.resolve("local:llama-9000", Path("/nonexistent"))


def test_models_list_and_path_need_no_engine(tmp_path: Path) -> None:
    from agent.cli import app

    out = runner.invoke(app, ["-c", f"local.models_dir={tmp_path}", "models", "list", "--json"])
    assert out.exit_code == 0, out.output
    import json

    listed = json.loads(out.output)
    rows = {r["name"]: r for r in listed["local"]}
    assert {k["kind"] for k in listed["kinds"]} >= {"local", "scripted", "replay", "PROVIDER"}
    assert rows["qwen2.5-coder-1.5b"]["default"] and not rows["qwen2.5-coder-1.5b"]["present"]
    path = runner.invoke(app, ["-c", f"local.models_dir={tmp_path}", "models", "path"])
    assert path.output.strip() == str(tmp_path)


# --------------------------------------------------------------------------- the real model


@pytest.mark.model
def test_every_step_parses_under_its_grammar(local_models: Path) -> None:
    """Each step with a fixed format, driven once with the real model under its grammar:
    every reply parses (no format error, no re-ask)."""
    from agent.config import load_settings
    from agent.models import get_model, invoke_step
    from agent.nodes.parse import (
        ACT_GRAMMAR,
        MAX_TOKENS,
        answer_grammar,
        line_grammar,
        parse_answer,
        parse_code,
        parse_line,
        parse_plan,
        plan_grammar,
    )
    from toolforge.properties import task_form
    from toolforge.replies import MAX_REPLY_TOKENS, REPLY_GRAMMAR, parse_reply

    model = get_model("local", local=load_settings().local)
    offered = ["sort_words"]
    calls = [
        (
            "plan",
            f"Task:\n{TASK}\nLibrary tools offered:\n- sort_words: sort_words(text: str) -> str\n"
            "Reply with TOOLS: and PLAN: lines.",
            plan_grammar(offered),
            lambda t: parse_plan(t, offered),
        ),
        (
            "act",
            f"Write Python that solves the task and sets `answer`.\nTask: {TASK}",
            ACT_GRAMMAR,
            parse_code,
        ),
        (
            "check",
            f"Task:\n{TASK}\nAnswer it directly. Reply ANSWER: ...",
            answer_grammar(task_form(TASK), reasoned=True),
            parse_answer,
        ),
        (
            "reflect",
            "The task above needed a second try. Give one tip as TIP: ...",
            line_grammar("TIP"),
            lambda t: parse_line(t, "TIP"),
        ),
    ]
    for step, prompt, grammar, parse in calls:
        reply = invoke_step(model, step, prompt, grammar=grammar, max_tokens=MAX_TOKENS[step])
        parse(reply.content)  # raises FormatError if it did not
        assert reply.response_metadata["grammar"] is True
    reply = model.invoke(
        "Turn this solution into a reusable tool: a typed, documented function `sort_words` "
        "in one ```python block, then its pytest tests in a second block.\n"
        "answer = ' '.join(sorted('pear apple fig'.split()))",
        config={
            "metadata": {
                "evoagent_step": "distill",
                "evoagent_grammar": REPLY_GRAMMAR,
                "evoagent_max_tokens": MAX_REPLY_TOKENS,
            }
        },
    )
    parse_reply(str(reply.content))


@pytest.mark.model
def test_two_samples_decode_together_differ_follow_the_grammar_and_count_tokens(
    local_models: Path,
) -> None:
    """k=2 act samples in one call of the real engine: two programs, distinct, each under
    the act grammar; the shared prompt counted once, each sample's own tokens on it."""
    from agent.config import load_settings
    from agent.models import UsageCounter, get_model, invoke_step_n
    from agent.nodes.parse import ACT_GRAMMAR, parse_code

    model = get_model("local", local=load_settings().local)
    counter = UsageCounter()
    prompt = [
        {"role": "system", "content": "You write Python code that sets `answer`."},
        {"role": "user", "content": f"Task: {TASK}\nWrite a function, then call it."},
    ]
    texts = invoke_step_n(
        model, "explore", prompt, 2, counter, grammar=ACT_GRAMMAR, max_tokens=200, temperature=1.0
    )
    assert len(texts) == 2 and texts[0] != texts[1], texts
    for text in texts:
        parse_code(text)  # raises FormatError if the grammar did not hold
    explore = counter.snapshot()["by_step"]["explore"]
    assert explore["n_calls"] == 1
    # Reported by the engine: the prompt once, and each sample's tokens.
    single = UsageCounter()
    invoke_step_n(model, "explore", prompt, 1, single, grammar=ACT_GRAMMAR, max_tokens=1)
    assert explore["tokens_in"] == single.snapshot()["by_step"]["explore"]["tokens_in"]
    assert explore["tokens_out"] >= 2 * 10


@pytest.mark.model
@pytest.mark.docker
def test_solve_with_no_model_configured_uses_the_local_model(
    local_models: Path, sandbox_image: str
) -> None:
    """No --model, no config: the local default solves a word-sorting task, with
    `--feedback labels`, and reports the engine's own token counts."""
    import json

    from agent.cli import app

    result = runner.invoke(
        app,
        [
            "-c",
            "memory.embedder=hash",
            "solve",
            TASK,
            "--expect",
            "apple fig pear",
            "--feedback",
            "labels",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    episode = json.loads(result.output[result.output.index("{") :])
    assert episode["status"] == "solved" and episode["answer"] == "apple fig pear"
    assert episode["correct"] is True
    # One act call: no plan call without tools, and the checker verifies.
    assert episode["n_calls"] == 1 and episode["tokens_in"] > 0 and episode["tokens_out"] > 0


@pytest.mark.model
@pytest.mark.docker
def test_solve_with_no_flags_at_all_is_confirmed_by_an_independent_route(
    local_models: Path, sandbox_image: str
) -> None:
    """The first command as a new user types it: no label, so the answer the local model's
    code gives counts as solved only when the model, asked the task directly (the check
    route, one audit), reaches the same answer."""
    import json

    from agent.cli import app

    result = runner.invoke(app, ["-c", "memory.embedder=hash", "solve", TASK, "--json"])
    assert result.exit_code == 0, result.output
    episode = json.loads(result.output[result.output.index("{") :])
    assert episode["status"] == "solved" and episode["answer"] == "apple fig pear"
    # The act call and the check's: no plan call without tools.
    assert episode["n_calls"] == 2, episode
    assert episode["usage_by_step"]["check"]["n_calls"] == 1


def test_the_prompt_cache_counts_the_logits_its_states_keep() -> None:
    """llama-cpp-python's RAM cache counts only llama.cpp's bytes; ours counts the logits
    copy each state keeps too (0.6 MB a prompt token for Qwen2.5), so its capacity holds."""
    import numpy as np

    llama_cpp = pytest.importorskip("llama_cpp")
    from agent.models.local import ram_cache

    def state(tokens: int) -> Any:
        return llama_cpp.LlamaState(
            input_ids=np.zeros(tokens, dtype=np.intc),
            scores=np.zeros((tokens, 1000), dtype=np.single),  # 4 kB a token
            n_tokens=tokens,
            llama_state=b"",
            llama_state_size=1000,
            seed=0,
        )

    cache = ram_cache(llama_cpp, capacity_bytes=1 << 20)  # 1 MB
    for i in range(10):
        cache[[i] * 3 + list(range(100))] = state(100)  # ~0.4 MB each, as counted now
    assert cache.cache_size <= 1 << 20
    assert len(cache.cache_state) == 2
    plain = llama_cpp.LlamaRAMCache(capacity_bytes=1 << 20)
    for i in range(10):
        plain[[i] * 3 + list(range(100))] = state(100)
    assert len(plain.cache_state) == 10  # what it holds is 4 MB, four times its capacity
