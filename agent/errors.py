"""Typed exceptions of the agent. Errors caused by the model go back to the model as
observations; these are for the person running evoagent, and say what to do."""


class AgentError(Exception):
    """A user-facing failure of the agent (bad task input, model not configured...)."""


class ModelError(AgentError):
    """The model could not be built or reached (unknown provider, endpoint refused, ...)."""
