"""Task streams: `evoagent run` and its results, figures and report.

Front door:

```python
from agent.stream import load_stream, RunOptions, start_run, resume_run, write_report
loaded = load_stream("examples/bbh/stream.jsonl")          # or BBH .json files
outcome = start_run(loaded.tasks, settings, RunOptions(workers=4, batch=8))
write_report(RunStore.open(settings.home, outcome.run_id))
```
Importing this package loads nothing heavy (the runner imports the graph lazily).
"""

from agent.stream.errors import StreamError
from agent.stream.inputs import BadEntry, LoadedStream, load_stream
from agent.stream.launch import RunHooks, resume_run, start_run
from agent.stream.options import Resume, RunOptions
from agent.stream.report import Report, write_report
from agent.stream.runner import Progress, RunOutcome
from agent.stream.store import RunInfo, RunStore, list_runs

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
