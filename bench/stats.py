"""What the benchmarks share: latency percentiles of timed samples."""

from __future__ import annotations

import statistics


def percentiles(samples: list[float]) -> dict[str, float]:
    """p50 and p95 in milliseconds of samples in seconds, and how many there were."""
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 1),
        "p95_ms": round(p95 * 1000, 1),
        "n": len(ordered),
    }
