"""Words the agent shares, as types: where the verifier's feedback comes from, and when a
solved task is forged (how a task ended is `memory.episode.Status`)."""

from __future__ import annotations

from typing import Literal

#: `labels`: the task's expected answer decides; `none`: an independent route's agreement
Feedback = Literal["none", "labels"]

#: forge a solved task's trace at once, at the stream's batch end, or not at all
ForgeMode = Literal["now", "defer", "off"]
