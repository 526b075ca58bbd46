"""The stream runner's user-facing error (a subclass of `AgentError`, so the CLI root
shows it as one line with what to do)."""

from agent.errors import AgentError


class StreamError(AgentError):
    """A bad stream file, an unknown run, or a run that cannot be resumed."""
