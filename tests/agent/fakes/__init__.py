"""Real small implementations the agent's tests run against (see the brief: fakes are
real implementations, reached through the same seams as the real thing)."""
