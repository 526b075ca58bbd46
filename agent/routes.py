"""Independent routes to a task's answer: what confirms an answer when there is no label.

The code route (act) writes a function of the task's text. A route here reaches the
answer another way and never sees that code, nor its answer, nor a library tool's:

- `answer`: the model answers in words, one line, decoded under a grammar of the form
  the task states (`toolforge.properties.task_form`: its options, its words, closing
  brackets, a number, True/False);
- `reasoned`: the same after at most three short `WORK:` lines;
- `program`: a second program, framed otherwise: a script for this one task with the
  task's values written into it (no parsing of the text), run in the sandbox.

Two answers *agree* when they are equal under the task's checker normalisation (for a
checker that needs no label, under `normalized`). Agreement is the evidence that lets a
label-free answer count as solved, a candidate tool be admitted, and a tool on probation
earn trust; the critic's approval of its own answer is not (`bench/routes.py` measures how
often each route agrees with a wrong code answer on the shared BBH families).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from agent import prompts
from agent.checkers import Checker, normalize, parse_checker
from toolforge.properties import Form, task_form

if TYPE_CHECKING:
    from agent.task import Task
    from sandbox.base import Sandbox

ROUTES = ("answer", "reasoned", "program")
#: the step name every route's model call carries: audit spending is counted under it
CHECK_STEP = "check"
#: one model call of a route: (messages, grammar) -> the reply's text
Ask = Callable[[list[dict[str, str]], str], str]


@dataclass(frozen=True)
class RouteAnswer:
    """What an independent route gave: its answer (None when it gave none) and why not."""

    route: str
    answer: Any = None
    problem: str = ""

    @property
    def ok(self) -> bool:
        return self.answer is not None and not self.problem

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RouteAnswer:
        return cls(str(data.get("route", "")), data.get("answer"), str(data.get("problem", "")))


def form_line(form: Form) -> str:
    """The prompt's line stating the answer's form."""
    return prompts.render("check", f"form_{form.kind}", options=", ".join(form.options))


def ask_route(route: str, task: str, ask: Ask, sandbox: Sandbox, timeout_s: float) -> RouteAnswer:
    """The answer of `route` to `task`: one model call through `ask` (the graph's is a
    budget-checked call of step `check`), plus one sandbox run for the `program` route.
    What `ask` raises (a limit, the endpoint failing) goes up; a reply or a run that
    gives no answer is a `problem`."""
    # agent.nodes imports this module (verify): its parsers are imported when used.
    from agent.nodes.parse import FormatError, answer_grammar, parse_answer

    if route not in ROUTES:
        raise ValueError(f"unknown route {route!r}: use one of {', '.join(ROUTES)}")
    form = task_form(task)
    user = prompts.render("check", "user", task=task, form=form_line(form))
    if route == "program":
        return _program(user, ask, sandbox, timeout_s)
    system = prompts.render("check", "reasoned" if route == "reasoned" else "system")
    reply = ask(
        [{"role": "system", "content": system}, {"role": "user", "content": user}],
        answer_grammar(form, reasoned=route == "reasoned"),
    )
    try:
        return RouteAnswer(route, parse_answer(reply))
    except FormatError as exc:
        return RouteAnswer(route, None, f"the reply gave no answer: {exc}")


def _program(user: str, ask: Ask, sandbox: Sandbox, timeout_s: float) -> RouteAnswer:
    from agent.nodes.parse import ACT_GRAMMAR, FormatError, parse_code

    reply = ask(
        [
            {"role": "system", "content": prompts.render("check", "program")},
            {"role": "user", "content": user},
        ],
        ACT_GRAMMAR,
    )
    try:
        code = parse_code(reply)
    except FormatError as exc:
        return RouteAnswer("program", None, f"the reply held no code: {exc}")
    res = sandbox.run(code, timeout_s=timeout_s)
    if not (res.ok and res.has_answer) or res.answer is None:
        why = res.error_type or ("timeout" if res.timed_out else "no answer was set")
        return RouteAnswer("program", None, f"the program gave no answer ({why})")
    return RouteAnswer("program", res.answer)


def agreement_checker(task: Task) -> Checker:
    """How two answers to `task` are compared: its own checker when that compares with an
    expected answer (exact, normalized, numeric), else `normalized`."""
    if task.checker:
        checker = parse_checker(task.checker, has_expected=True)
        if checker.needs_expected:
            return checker
    return parse_checker(None)


def agree(task: Task, a: object, b: object) -> bool:
    """Whether two answers to `task` are the same answer."""
    if a is None or b is None:
        return False
    return agreement_checker(task).check(a, b).ok


def answer_choices(task: str) -> list[set[str]] | None:
    """The answers a task allows, when it allows few (each as the normalized spellings of
    one answer: an option's label and its text): True/False, or the listed options.
    None: the answer is open (a number, some words)."""
    form = task_form(task)
    if form.kind == "boolean":
        return [{"true"}, {"false"}]
    if form.kind != "choice":
        return None
    options = list(form.options)
    if options and re.fullmatch(r"\(\w+\)", options[0]):
        pairs = zip(options[::2], options[1::2], strict=False)  # (label, text) lines
        return [{normalize(label), normalize(text)} for label, text in pairs]
    return [{normalize(o)} for o in options]


def by_elimination(task: str, refuted: list[str], answer: object) -> bool:
    """Whether `answer` is the only one the task allows that the route has not already
    refuted in this task. Told that its earlier answer differs from the route's, a model
    finds the route's answer to a True/False task by elimination, so agreeing with it
    then is no evidence."""
    choices = answer_choices(task)
    if not choices or answer is None:
        return False
    mine = {i for i, c in enumerate(choices) if normalize(answer) in c}
    out = {i for i, c in enumerate(choices) for r in refuted if r in c}
    return len(out - mine) >= len(choices) - 1


def audit_due(rate: float, tool: str, task: str) -> bool:
    """Whether a trusted tool's answer to `task` is audited anyway: a `rate` share of its
    uses, chosen by a hash of the tool and the task (the same task is audited the same way
    in every run, so a run replays)."""
    if rate <= 0:
        return False
    if rate >= 1:
        return True
    digest = hashlib.sha1(f"{tool}\n{normalize(task)}".encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32 < rate
