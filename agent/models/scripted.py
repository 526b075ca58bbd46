"""`ScriptedModel` (`scripted:PATH`): a chat model that answers from a YAML file of rules.

The format (README "Models"; a complete example is `examples/scripted/hello.yaml`):

    rules:                      # first matching rule wins
      - step: act               # optional: plan | act | verify | distill | refine | reflect
        when: 'Sort the words'  # optional regex, searched in the prompt text (re.search)
        unless: 'sort_words'    # optional regex; the rule is skipped if it matches
        reply: |                # the model's whole reply, verbatim
          ...
        tool_call: {name: add_numbers, args: {a: 2}}   # optional: the reply calls a tool
        sample: 3               # optional: only the 3rd reply of a call that samples several
    default: "I don't know."    # reply when no rule matches (optional; else ModelError)
    latency_s: 0                # optional delay per call, to simulate a real model

The prompt text is every message's content joined with newlines (`steps.prompt_text`).
Regexes use Python's `re` without flags: write `(?i)` for case-insensitive, `(?s)` to
let `.` cross lines. A rule without `when` matches every prompt of its step.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from agent.errors import ModelError
from agent.models.errors import ModelCallError
from agent.models.steps import N_KEY, STEPS, estimated_usage, preview, prompt_text, step_of_run

TOP_KEYS = ("rules", "default", "latency_s")
RULE_KEYS = ("step", "when", "unless", "reply", "tool_call", "sample")


@dataclass(frozen=True)
class Rule:
    """One rule of a script; `index` is its 1-based position, for messages."""

    index: int
    reply: str
    step: str | None = None
    when: re.Pattern[str] | None = None
    unless: re.Pattern[str] | None = None
    #: a tool call the reply carries (`{name: ..., args: {...}}`), for agents that bind tools
    tool_call: tuple[str, dict[str, Any]] | None = None
    #: the rule answers only this reply (1-based) of a call that samples several
    sample: int | None = None

    def matches(self, prompt: str, step: str | None, sample: int = 1) -> bool:
        if self.step is not None and self.step != step:
            return False
        if self.sample is not None and self.sample != sample:
            return False
        if self.when is not None and not self.when.search(prompt):
            return False
        return not (self.unless is not None and self.unless.search(prompt))


@dataclass(frozen=True)
class Script:
    """A parsed, validated script: what `ScriptedModel` answers from."""

    rules: tuple[Rule, ...]
    default: str | None = None
    latency_s: float = 0.0
    source: str = "<script>"

    def reply_for(self, prompt: str, step: str | None) -> str:
        """The reply of the first matching rule, else the default, else ModelCallError."""
        return self.rule_for(prompt, step).reply

    def rule_for(self, prompt: str, step: str | None, sample: int = 1) -> Rule:
        """The first matching rule (the default as a rule), else ModelCallError."""
        for rule in self.rules:
            if rule.matches(prompt, step, sample):
                return rule
        if self.default is not None:
            return Rule(index=0, reply=self.default)
        raise ModelCallError(
            f"scripted model {self.source}: no rule matches this {step or 'unnamed'!s} call and "
            f"the script has no `default`; add a rule (step: {step or '...'}, when: a regex "
            f"found in the prompt) or a default. The prompt starts: {preview(prompt)!r}",
            step=step,
        )


def load_script(path: str | Path) -> Script:
    """Read and validate a script file; every problem is a ModelError saying what to fix."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise ModelError(
            f"scripted model file {file} does not exist: give the path of a YAML rules file "
            "(see examples/scripted/hello.yaml), e.g. --model scripted:examples/scripted/hello.yaml"
        )
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelError(f"scripted model file {file} cannot be read ({exc})") from exc
    return parse_script(text, source=str(file))


def parse_script(text: str, source: str = "<script>") -> Script:
    """Parse a script from YAML text (tests and the graph build scripts inline this way)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ModelError(f"scripted model file {source} is not valid YAML: {exc}") from exc
    return script_from_dict(data, source=source)


def script_from_dict(data: object, source: str = "<script>") -> Script:
    """Validate an already-loaded script (the YAML file's top-level mapping)."""
    where = f"scripted model file {source}"
    if not isinstance(data, Mapping):
        raise ModelError(
            f"{where} must be a mapping with `rules:` (and optionally `default:`, "
            f"`latency_s:`), not {type(data).__name__}: see examples/scripted/hello.yaml"
        )
    unknown = [str(key) for key in data if key not in TOP_KEYS]
    if unknown:
        raise ModelError(
            f"{where}: unknown top-level key(s) {', '.join(unknown)}; "
            f"allowed: {', '.join(TOP_KEYS)}"
        )
    raw_rules = data.get("rules")
    if raw_rules is None:
        raw_rules = []
    if not isinstance(raw_rules, list):
        raise ModelError(f"{where}: `rules` must be a list of rules (- when: ... reply: ...)")
    rules = tuple(_rule(raw, i, where) for i, raw in enumerate(raw_rules, start=1))
    default = data.get("default")
    if default is not None and not isinstance(default, str):
        raise ModelError(
            f"{where}: `default` must be text, got {type(default).__name__} {default!r}: quote it"
        )
    if not rules and default is None:
        raise ModelError(f"{where} has no rules and no default: add at least one of them")
    latency = data.get("latency_s", 0)
    if isinstance(latency, bool) or not isinstance(latency, int | float) or latency < 0:
        raise ModelError(f"{where}: `latency_s` must be a number of seconds >= 0, got {latency!r}")
    return Script(rules=rules, default=default, latency_s=float(latency), source=source)


def _rule(raw: object, index: int, where: str) -> Rule:
    at = f"{where}: rule {index}"
    if not isinstance(raw, Mapping):
        raise ModelError(f"{at} must be a mapping (step/when/unless/reply), got {raw!r}")
    unknown = [str(key) for key in raw if key not in RULE_KEYS]
    if unknown:
        raise ModelError(
            f"{at}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(RULE_KEYS)}"
        )
    if "reply" not in raw:
        raise ModelError(f"{at} has no `reply`: add the model's whole reply (reply: |)")
    reply = raw["reply"]
    if not isinstance(reply, str):
        raise ModelError(
            f"{at}: `reply` must be text, got {type(reply).__name__} {reply!r}: quote it, "
            f"e.g. reply: '{reply}'"
        )
    step = raw.get("step")
    if step is not None and step not in STEPS:
        raise ModelError(f"{at}: step {step!r} is not one of {', '.join(STEPS)}")
    sample = raw.get("sample")
    if sample is not None and (
        isinstance(sample, bool) or not isinstance(sample, int) or sample < 1
    ):
        raise ModelError(f"{at}: `sample` must be a reply's number, 1 or more, got {sample!r}")
    return Rule(
        sample=sample,
        index=index,
        reply=reply,
        step=step,
        when=_regex(raw.get("when"), "when", at),
        unless=_regex(raw.get("unless"), "unless", at),
        tool_call=_tool_call(raw.get("tool_call"), at),
    )


def _tool_call(raw: object, at: str) -> tuple[str, dict[str, Any]] | None:
    if raw is None:
        return None
    if (
        not isinstance(raw, Mapping)
        or not isinstance(raw.get("name"), str)
        or not isinstance(raw.get("args", {}), Mapping)
        or set(raw) - {"name", "args"}
    ):
        raise ModelError(
            f"{at}: `tool_call` must be a mapping with `name:` (text) and `args:` (a mapping), "
            f"got {raw!r}"
        )
    return str(raw["name"]), dict(raw.get("args") or {})


def _regex(raw: object, key: str, at: str) -> re.Pattern[str] | None:
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise ModelError(f"{at}: `{key}` must be a regex string, got {raw!r}: quote it")
    try:
        return re.compile(raw)
    except re.error as exc:
        raise ModelError(
            f"{at}: `{key}` is not a valid regex ({exc}): fix it, or escape special "
            f"characters with re.escape-style backslashes: {raw!r}"
        ) from exc


class ScriptedModel(BaseChatModel):
    """Answers each call with the reply of the first rule matching its prompt and step.

    Stateless apart from its immutable script, so one instance serves many threads.
    `usage_metadata` is estimated from text (`steps.estimate_tokens`).
    """

    script: Script

    @classmethod
    def from_file(cls, path: str | Path, **kwargs: object) -> ScriptedModel:
        return cls(script=load_script(path), **kwargs)

    @classmethod
    def from_rules(
        cls,
        rules: Sequence[Mapping[str, Any]],
        *,
        default: str | None = None,
        latency_s: float = 0.0,
        **kwargs: object,
    ) -> ScriptedModel:
        """Build from rule mappings in code, validated exactly like a file."""
        data: dict[str, Any] = {"rules": list(rules), "latency_s": latency_s}
        if default is not None:
            data["default"] = default
        return cls(script=script_from_dict(data, source="<rules>"), **kwargs)

    @property
    def _llm_type(self) -> str:
        return "evoagent-scripted"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"source": self.script.source, "n_rules": len(self.script.rules)}

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: object,
    ) -> ChatResult:
        prompt = prompt_text(messages)
        step = step_of_run(run_manager)
        metadata = getattr(run_manager, "metadata", None) or {}
        n = max(1, int(metadata.get(N_KEY) or 1))
        if self.script.latency_s:
            time.sleep(self.script.latency_s)
        generations = []
        for sample in range(1, n + 1):
            rule = self.script.rule_for(prompt, step, sample)
            calls = []
            if rule.tool_call is not None:
                name, args = rule.tool_call
                calls = [{"name": name, "args": args, "id": f"call-{rule.index}-{len(messages)}"}]
            usage = estimated_usage(prompt if sample == 1 else "", rule.reply)
            message = AIMessage(content=rule.reply, tool_calls=calls, usage_metadata=usage)  # type: ignore[arg-type]
            generations.append(ChatGeneration(message=message))
        return ChatResult(generations=generations)

    def bind_tools(self, tools: Sequence[object], **kwargs: object) -> ScriptedModel:
        """Tools are named by the script's `tool_call`s: binding changes nothing."""
        return self
