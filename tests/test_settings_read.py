"""Every setting is read where it matters: the settings loader refuses unknown keys so
that a typo is not silently lost, and a setting its component never reads would be lost
the same way. Each setting names the module whose code decides with it (`WHERE`); that
module must read it as an attribute (`config.name`), and a new setting needs its row."""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

from pydantic import BaseModel

from agent.config import Settings

ROOT = Path(__file__).resolve().parents[1]

#: setting -> the module that acts on it
WHERE = {
    "home": "agent/deps.py",
    "model": "agent/deps.py",
    "base_url": "agent/deps.py",
    "server_grammar": "agent/deps.py",
    "mcp": "agent/deps.py",
    "agent.max_attempts": "agent/nodes/verify.py",
    "agent.max_steps": "agent/nodes/act.py",
    "agent.max_tokens": "agent/nodes/common.py",
    "agent.max_seconds": "agent/nodes/common.py",
    "agent.k_tools": "agent/nodes/recall.py",
    "agent.k_mcp_tools": "agent/nodes/recall.py",
    "agent.tool_min_similarity": "agent/nodes/recall.py",
    "agent.k_tips": "agent/nodes/recall.py",
    "agent.k_failures": "agent/nodes/recall.py",
    "agent.feedback": "agent/solve.py",
    "agent.model_timeout_s": "agent/deps.py",
    "agent.model_max_retries": "agent/deps.py",
    "agent.learn": "agent/solve.py",
    "agent.retry_temperature": "agent/nodes/act.py",
    "agent.free_last_attempt": "agent/nodes/act.py",
    "agent.plan_without_tools": "agent/nodes/plan.py",
    "agent.explore": "agent/nodes/explore.py",
    "agent.explore_k": "agent/nodes/explore.py",
    "agent.explore_per_task": "agent/nodes/explore.py",
    "agent.explore_per_stream": "agent/deps.py",
    "agent.explore_temperature": "agent/nodes/explore.py",
    "agent.fast_path": "agent/nodes/plan.py",
    "agent.fast_path_similarity": "agent/nodes/plan.py",
    "agent.fast_path_min_reliability": "agent/nodes/plan.py",
    "agent.check_route": "agent/nodes/verify.py",
    "agent.audit_rate": "agent/nodes/verify.py",
    "agent.answer_types": "agent/nodes/act.py",
    "sandbox.backend": "sandbox/__init__.py",
    "sandbox.image": "sandbox/docker_backend.py",
    "sandbox.timeout_s": "agent/nodes/execute.py",
    "sandbox.memory_mb": "sandbox/docker_backend.py",
    "sandbox.cpus": "sandbox/docker_backend.py",
    "sandbox.pids_limit": "sandbox/docker_backend.py",
    "sandbox.tmpfs_mb": "sandbox/docker_backend.py",
    "sandbox.output_limit_bytes": "sandbox/docker_backend.py",
    "sandbox.pool_size": "sandbox/docker_backend.py",
    "sandbox.extra_packages": "sandbox/image.py",
    "sandbox.debian_mirror": "sandbox/image.py",
    "sandbox.build_cache_dir": "sandbox/image.py",
    "sandbox.base_image": "sandbox/image.py",
    "memory.embedding_model_path": "memory/embed.py",
    "memory.embedder": "memory/embed.py",
    "memory.index": "memory/library.py",
    "memory.index_numpy_below": "memory/library.py",
    "memory.busy_timeout_s": "memory/library.py",
    "memory.hash_dim": "memory/embed.py",
    "memory.embed_batch_size": "memory/embed.py",
    "memory.prior_success": "memory/tool_rows.py",
    "memory.prior_fail": "memory/tool_rows.py",
    "memory.weight_reliability": "memory/rank.py",
    "memory.weight_recency": "memory/rank.py",
    "memory.recency_half_life_days": "memory/rank.py",
    "memory.candidates": "memory/rank.py",
    "memory.tip_merge_similarity": "memory/consolidate.py",
    "memory.tip_min_shown": "memory/consolidate.py",
    "memory.tip_min_help_rate": "memory/consolidate.py",
    "memory.trust_support": "memory/tool_rows.py",
    "memory.quarantine_min_uses": "memory/consolidate.py",
    "memory.quarantine_fail_rate": "memory/consolidate.py",
    "memory.archive_grace_episodes": "memory/consolidate.py",
    "memory.archive_log_scale": "memory/consolidate.py",
    "memory.gc_usage_days": "memory/gc.py",
    "memory.gc_rejection_days": "memory/gc.py",
    "memory.gc_max_rejections": "memory/gc.py",
    "memory.gc_log_hours": "memory/gc.py",
    "forge.test_timeout_s": "toolforge/verify.py",
    "forge.use_model": "toolforge/pipeline.py",
    "forge.candidates": "toolforge/pipeline.py",
    "forge.max_repairs_per_batch": "agent/stream/batchend.py",
    "forge.per_test_timeout_s": "toolforge/verify.py",
    "forge.run_overhead_s": "toolforge/verify.py",
    "forge.max_run_timeout_s": "toolforge/verify.py",
    "forge.parallel_runs": "toolforge/verify.py",
    "forge.parallel_distill": "toolforge/pipeline.py",
    "forge.accept_verdicts": "toolforge/pipeline.py",
    "forge.min_tests": "toolforge/judge.py",
    "forge.min_model_tests": "toolforge/judge.py",
    "forge.max_tests": "toolforge/static_gate.py",
    "forge.max_source_chars": "toolforge/static_gate.py",
    "forge.max_tests_chars": "toolforge/static_gate.py",
    "forge.max_function_lines": "toolforge/static_gate.py",
    "forge.max_observed_tests": "toolforge/extract.py",
    "forge.max_perturbations": "toolforge/comparisons.py",
    "forge.perturbation_seed": "toolforge/pipeline.py",
    "forge.perturbation_tolerated_errors": "toolforge/judge.py",
    "forge.task_literal_min_chars": "toolforge/hardcode.py",
    "forge.extra_imports": "toolforge/static_gate.py",
    "forge.neighbours": "toolforge/pipeline.py",
    "forge.neighbour_min_similarity": "toolforge/pipeline.py",
    "forge.batch_min_similarity": "toolforge/comparisons.py",
    "forge.max_prompt_chars": "toolforge/distill.py",
    "local.models_dir": "agent/models/local.py",
    "local.n_ctx": "agent/models/local.py",
    "local.n_threads": "agent/models/local.py",
    "local.prompt_cache_mb": "agent/models/local.py",
    "local.grammars": "agent/models/local.py",
}


def _settings(model: type[BaseModel], prefix: str = "") -> list[str]:
    """The dotted path of every leaf setting."""
    out = []
    for name, info in model.model_fields.items():
        kind = info.annotation
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            out += _settings(kind, f"{prefix}{name}.")
        else:
            out.append(prefix + name)
    return out


@cache
def _attributes_read(module: str) -> frozenset[str]:
    """Every attribute name the module's code reads (`x.name` in a load context)."""
    tree = ast.parse((ROOT / module).read_text(encoding="utf-8"))
    return frozenset(
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load)
    )


def test_every_setting_has_the_module_that_acts_on_it() -> None:
    leaves = _settings(Settings)
    assert len(leaves) > 80  # the walk reaches into every nested model
    assert sorted(set(leaves) - set(WHERE)) == [], "a new setting: say where it is read"
    assert sorted(set(WHERE) - set(leaves)) == [], "a setting was removed: drop its row"


def test_each_setting_is_read_by_its_module() -> None:
    unread = [
        f"{dotted} in {module}"
        for dotted, module in WHERE.items()
        if dotted.rpartition(".")[2] not in _attributes_read(module)
    ]
    assert not unread, f"settings their module does not read (wire them or remove them): {unread}"


def test_the_check_tells_a_read_from_a_write(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f(config):\n    config.written = 1\n    return config.read\n")
    read = _attributes_read.__wrapped__(str(module))  # an absolute path joins as itself
    assert "read" in read and "written" not in read
