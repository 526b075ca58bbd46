"""The benchmarks run: each script a long real-model run depends on, driven end to end on
the demo's scripted model and the local sandbox in seconds, so a change that breaks a
benchmark fails here and not an hour into a run. The figures themselves are the
benchmarks' own business (bench/README.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def _bench(script: str, *args: str) -> dict[str, object]:
    env = {
        **os.environ,
        "EVOAGENT_SANDBOX__BACKEND": "local",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), *args],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    data = json.loads(out.stdout)
    assert isinstance(data, dict)
    return data


def test_the_real_stream_bench_runs_both_modes_to_its_figures() -> None:
    model = f"scripted:{ROOT / 'examples' / 'bbh' / 'model.yaml'}"
    data = _bench(
        "real_stream.py",
        "--model",
        model,
        "--per-family",
        "2",
        "--families",
        "word_sorting",
        "--modes",
        "labels",
        "none",
    )
    runs = data["runs"]
    assert isinstance(runs, dict)
    assert {"labels/learn", "labels/no-learn", "none/learn", "none/no-learn"} <= set(runs)
    learn = runs["none/learn"]
    assert {"all", "second_half", "evidence", "library_health"} <= set(learn)
