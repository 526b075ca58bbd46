"""User-facing errors of the forge.

Bad forge *input* (an empty trace, a garbled model reply) is never an exception: it is a
`ForgeOutcome` with the reason. `ForgeError` is for a person's mistake at the command
line (a missing file, an unknown tool name); the CLI root shows it as one red line.
"""


class ForgeError(Exception):
    """A person's mistake with the forge; the message says what to do."""
