"""Typed exceptions of the agent. Errors caused by the model go back to the model as
observations; these are for the person running evoagent, and say what to do."""

from memory.errors import LibraryError
from sandbox.base import SandboxError
from toolforge.errors import ForgeError


class AgentError(Exception):
    """A user-facing failure of the agent (bad task input, model not configured...)."""


class ModelError(AgentError):
    """The model could not be built or reached (unknown provider, endpoint refused, ...)."""


class ConfigError(ValueError):
    """A setting is malformed; the message names it and says how to fix it."""


#: errors a person can fix: shown as one line with what to do, never as a traceback
USER_ERRORS: tuple[type[Exception], ...] = (
    ConfigError,
    SandboxError,
    LibraryError,
    ForgeError,
    AgentError,
)
