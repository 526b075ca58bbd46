"""`provider:model` chat models through LangChain's `init_chat_model`, and their failures.

The provider's model is wrapped in `ProviderModel`, which only turns the provider's
transport and API exceptions (openai.APIConnectionError, an HTTP 500, a timeout...) into
`ModelCallError` with a message naming the endpoint and what to check. Every caller —
the graph through `invoke_step`, toolforge through a plain `model.invoke` — then sees
one exception type, and the CLI prints one line instead of a provider traceback.

A step's reply format travels too: the step's GBNF grammar (the one the `local:` engine
decodes under) goes in the request's `grammar` field to a self-hosted OpenAI-compatible
server (`base_url` set): llama.cpp's `llama-server` and `python -m llama_cpp.server` decode
under it, so the reply parses by construction there as well. `server_grammar` says when:
`auto` (the default) sends it to a `base_url` server and stops for good the first time the
server refuses the field (HTTP 400/422 naming it), the call then repeated without it;
`send` always sends it; `off` never does. A server that ignores the field (vLLM names its
own `guided_grammar`; Ollama has none) leaves the replies to the parse-and-re-ask path.
"""

from __future__ import annotations

import os
import threading
from typing import Any, Literal

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.exceptions import ModelError as LangChainModelError
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatResult
from pydantic import PrivateAttr

from agent.errors import ModelError
from agent.models.errors import ModelCallError
from agent.models.steps import GRAMMAR_KEY, MAX_TOKENS_KEY, N_KEY, TEMPERATURE_KEY, step_of_run

# langchain-core >= 1.x integrations raise `langchain_core.exceptions.ModelError`
# subclasses (ModelAPIError for 5xx, ModelConnectionError, ModelTimeoutError, ...).
# Exceptions raised from these top-level modules are the provider's transport or API
# failures (the SDKs and the HTTP stacks under them), never a bug in evoagent.
PROVIDER_ERROR_MODULES = frozenset(
    {
        "openai",
        "anthropic",
        "ollama",
        "groq",
        "mistralai",
        "cohere",
        "google",
        "httpx",
        "httpcore",
        "requests",
        "urllib3",
        "aiohttp",
    }
)

# vLLM's convention for "no key": OpenAI-compatible local servers ignore the key, but the
# openai client refuses to start without one.
PLACEHOLDER_API_KEY = "EMPTY"

ServerGrammar = Literal["auto", "send", "off"]
SERVER_GRAMMAR_FIELD = "grammar"
"""The request field llama.cpp's servers read a GBNF grammar from."""


def build_provider_model(
    spec: str,
    *,
    base_url: str | None = None,
    timeout_s: float | None = None,
    max_retries: int | None = None,
    server_grammar: ServerGrammar = "auto",
    **kwargs: Any,
) -> ProviderModel:
    """`openai:gpt-4o-mini`, `anthropic:claude-...`, `ollama:llama3.1`, ... as a chat model."""
    provider, _, name = spec.partition(":")
    provider, name = provider.strip(), name.strip()
    if not provider or not name:
        raise ModelError(
            f"model {spec!r} is not provider:model: write e.g. openai:gpt-4o-mini, "
            "ollama:llama3.1, scripted:FILE.yaml or replay:CASSETTE.jsonl"
        )
    try:
        from langchain.chat_models import init_chat_model
    except ImportError as exc:
        raise ModelError(
            "provider models need the `langchain` package: pip install langchain"
        ) from exc

    options = dict(kwargs)
    if base_url:
        options["base_url"] = base_url
        if provider == "openai" and not os.environ.get("OPENAI_API_KEY"):
            options.setdefault("api_key", PLACEHOLDER_API_KEY)
    if timeout_s is not None:
        options["timeout"] = timeout_s
    if max_retries is not None:
        options["max_retries"] = max_retries
    try:
        inner = init_chat_model(name, model_provider=provider, **options)
    except ImportError as exc:
        package = "langchain-" + provider.replace("_", "-")
        raise ModelError(
            f"model {spec!r} needs the provider package: {exc}. "
            f"Install it (e.g. pip install {package}) or pick another provider."
        ) from exc
    except ValueError as exc:
        if "Unsupported" in str(exc):
            raise ModelError(
                f"unknown model provider {provider!r} in {spec!r}. {_flat(exc)}; "
                "or use scripted:FILE.yaml / replay:CASSETTE.jsonl"
            ) from exc
        raise ModelError(f"cannot build model {spec!r}: {_flat(exc)}") from exc
    except Exception as exc:  # the SDKs raise their own types for a missing key etc.
        hint = ""
        if "api_key" in str(exc).lower() or "api key" in str(exc).lower():
            hint = f" Set {provider.upper()}_API_KEY (or give --base-url for a local server)."
        raise ModelError(f"cannot build model {spec!r}: {_flat(exc)}.{hint}") from exc
    return ProviderModel(
        inner=inner,
        spec=spec,
        base_url=base_url,
        # Only the OpenAI client forwards extra request fields (`extra_body`).
        server_grammar=server_grammar if provider == "openai" else "off",
    )


class ProviderModel(BaseChatModel):
    """A provider's chat model whose call failures come out as `ModelCallError`.

    `inner` is the provider's own model (e.g. `ChatOpenAI`), for provider-specific use.
    """

    inner: BaseChatModel
    spec: str
    base_url: str | None = None
    server_grammar: ServerGrammar = "auto"
    _grammar_refused: bool = PrivateAttr(default=False)
    _grammar_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @property
    def _llm_type(self) -> str:
        return f"evoagent-provider:{self.inner._llm_type}"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"spec": self.spec, "base_url": self.base_url}

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        # The inner model's `_generate` rather than its `invoke`: this call's run (and so
        # every callback: counter, recorder) stays the outer one, counted once.
        metadata = getattr(run_manager, "metadata", None) or {}
        cap = metadata.get(MAX_TOKENS_KEY)
        if cap and "max_tokens" not in kwargs:
            kwargs["max_tokens"] = int(cap)  # the step's reply cap: tokens cost time
        temperature = metadata.get(TEMPERATURE_KEY)
        if temperature is not None and "temperature" not in kwargs:
            kwargs["temperature"] = float(temperature)  # a retry samples, so that it can differ
        n = int(metadata.get(N_KEY) or 1)
        if n > 1 and "n" in type(self.inner).model_fields and "n" not in kwargs:
            kwargs["n"] = n  # several replies to one prompt in one request (OpenAI's `n`)
        grammar = metadata.get(GRAMMAR_KEY)
        with_grammar = isinstance(grammar, str) and bool(grammar) and self.sends_grammar()
        try:
            if with_grammar:
                try:
                    extra = {**(kwargs.get("extra_body") or {}), SERVER_GRAMMAR_FIELD: grammar}
                    return self.inner._generate(
                        messages,
                        stop=stop,
                        run_manager=run_manager,
                        **{**kwargs, "extra_body": extra},
                    )
                except Exception as exc:
                    if self.server_grammar != "auto" or not refuses_grammar(exc):
                        raise
                    with self._grammar_lock:
                        self._grammar_refused = True  # this server has no grammars: ask plainly
            return self.inner._generate(messages, stop=stop, run_manager=run_manager, **kwargs)
        except ModelError:
            raise
        except Exception as exc:
            if not is_model_failure(exc):
                raise
            step = step_of_run(run_manager)
            raise ModelCallError(
                describe_failure(exc, self.spec, self.base_url, step), step=step
            ) from exc

    def sends_grammar(self) -> bool:
        """Whether the next call carries its step's grammar to the server."""
        if self.server_grammar == "send":
            return True
        if self.server_grammar == "off" or not self.base_url:
            return False
        with self._grammar_lock:
            return not self._grammar_refused


def refuses_grammar(exc: BaseException) -> bool:
    """Whether `exc` is a server saying it does not take the `grammar` field (HTTP 400 or
    422 whose message names it), as the OpenAI API does for any field it does not know."""
    status = getattr(exc, "status_code", None)
    return status in (400, 422) and SERVER_GRAMMAR_FIELD in str(exc).lower()


def is_model_failure(exc: BaseException) -> bool:
    """Whether `exc` is a model failure (endpoint down, HTTP error, timeout, no scripted
    rule, no recording) that should end a task with status `error`, not a bug."""
    if isinstance(exc, ModelError | LangChainModelError | ConnectionError | TimeoutError):
        return True
    # Integrations without langchain-core's typed errors raise their SDK's own types.
    return any(
        cls.__module__.split(".", 1)[0] in PROVIDER_ERROR_MODULES for cls in type(exc).__mro__
    )


def describe_failure(
    exc: BaseException, spec: str, base_url: str | None = None, step: str | None = None
) -> str:
    """One line for a person: which model, which endpoint, what happened, what to check."""
    where = f"model {spec}" + (f" at {base_url}" if base_url else "")
    during = f" (step {step})" if step else ""
    name = type(exc).__name__
    status = getattr(exc, "status_code", None)
    detail = _flat(exc)
    if isinstance(status, int):
        if status in (401, 403):
            todo = "check the API key"
        elif status == 404:
            todo = "check the model name and the base URL (it usually ends in /v1)"
        elif status == 429:
            todo = "the provider is rate limiting: wait or lower the concurrency"
        elif status >= 500:
            todo = "the server failed: check its log, then try again"
        else:
            todo = "check the request the server rejected"
        return f"{where}{during} answered HTTP {status}: {detail} — {todo}"
    if "Timeout" in name or isinstance(exc, TimeoutError):
        return f"{where}{during} did not answer in time ({name}): is it overloaded?"
    if "Connection" in name or isinstance(exc, ConnectionError):
        return (
            f"cannot reach {where}{during} ({name}: {detail}): is the server running? "
            "Check --base-url / OPENAI_BASE_URL."
        )
    return f"{where}{during} failed ({name}: {detail})"


def _flat(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"
