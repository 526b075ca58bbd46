"""Words the packages share, as types: how a task ended, where the verifier's feedback
comes from, and when a solved task is forged."""

from __future__ import annotations

from typing import Literal

#: how a task ended: right on evidence (a label, an independent route's agreement, a
#: trusted tool), answered but with nothing to back the answer (`unverified`: without a
#: label no independent route confirmed it), wrong or unanswered after every attempt, its
#: token or time budget spent, or an error (the model endpoint, the sandbox) that says
#: nothing about the task
TaskStatus = Literal["solved", "unverified", "failed", "budget_exhausted", "error"]

#: `labels`: the task's expected answer decides; `none`: an independent route's agreement
Feedback = Literal["none", "labels"]

#: forge a solved task's trace at once, at the stream's batch end, or not at all
ForgeMode = Literal["now", "defer", "off"]
