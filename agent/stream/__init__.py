"""Task streams: `evoagent run` and its results, figures and report.

Front door:

```python
from agent.stream import load_stream, RunOptions, start_run, resume_run, write_report
loaded = load_stream("examples/bbh/stream.jsonl")          # or BBH .json files
outcome = start_run(loaded.tasks, settings, RunOptions(workers=4, batch=8))
write_report(RunStore.open(settings.home, outcome.run_id))
```
Importing this package loads nothing heavy: its names load on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agent.stream.errors import StreamError
    from agent.stream.inputs import BadEntry, LoadedStream, load_stream
    from agent.stream.launch import RunHooks, resume_run, start_run
    from agent.stream.options import Resume, RunOptions
    from agent.stream.report import Report, write_report
    from agent.stream.runner import Progress, RunOutcome
    from agent.stream.store import RunInfo, RunStore, list_runs

_WHERE = {
    "BadEntry": "agent.stream.inputs",
    "LoadedStream": "agent.stream.inputs",
    "Progress": "agent.stream.runner",
    "Report": "agent.stream.report",
    "Resume": "agent.stream.options",
    "RunHooks": "agent.stream.launch",
    "RunInfo": "agent.stream.store",
    "RunOptions": "agent.stream.options",
    "RunOutcome": "agent.stream.runner",
    "RunStore": "agent.stream.store",
    "StreamError": "agent.stream.errors",
    "list_runs": "agent.stream.store",
    "load_stream": "agent.stream.inputs",
    "resume_run": "agent.stream.launch",
    "start_run": "agent.stream.launch",
    "write_report": "agent.stream.report",
}

__all__ = [
    "BadEntry",
    "LoadedStream",
    "Progress",
    "Report",
    "Resume",
    "RunHooks",
    "RunInfo",
    "RunOptions",
    "RunOutcome",
    "RunStore",
    "StreamError",
    "list_runs",
    "load_stream",
    "resume_run",
    "start_run",
    "write_report",
]


def __getattr__(name: str) -> Any:
    # The names load on first use: `agent.stream.errors` (the command line's error
    # handling) does not load the runner and the library with it.
    if name not in _WHERE:
        raise AttributeError(f"module 'agent.stream' has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name]), name)
    globals()[name] = value
    return value
