"""Words the packages share, as types: how a task ended, where the verifier's feedback
comes from, and when a solved task is forged."""

from __future__ import annotations

from typing import Literal

#: how a task ended: right (or accepted by the critic), wrong after every attempt, its
#: token or time budget spent, or an error (the model endpoint, the sandbox) that says
#: nothing about the task
TaskStatus = Literal["solved", "failed", "budget_exhausted", "error"]

#: `labels`: the task's expected answer decides; `none`: the model's critic does
Feedback = Literal["none", "labels"]

#: forge a solved task's trace at once, at the stream's batch end, or not at all
ForgeMode = Literal["now", "defer", "off"]
