"""`local` models: a GGUF file run by llama.cpp (llama-cpp-python) in this process.

Why in-process rather than a managed `llama_cpp.server`: on 2 cores the engine is the
bottleneck either way, and in-process it is one object this module controls: grammars
per call (the step's reply format), prompt-state reuse across calls, exact token counts
of what was evaluated, no port, no second process to start, watch and stop, and no HTTP
round trip or JSON re-encoding per call. Measured in `bench/model.py`.

One engine per GGUF file per process, shared by every model object and thread; one
generation at a time (a lock): llama.cpp's context is not thread-safe, and on a small
machine two generations at once would each run at half speed anyway.

Per call, from the step's config metadata (see `agent.models.steps`):
- `evoagent_grammar`: a GBNF grammar the reply must follow (the step's fixed format),
- `evoagent_max_tokens`: the most tokens the step's reply may take.
- `evoagent_temperature`: sampling temperature (default 0: greedy decoding, the same
  prompt gives the same reply; a retry samples, so that it can differ). Seeded per
  call from the prompt (or `evoagent_seed`), so a run still reproduces.
- `evoagent_n`: that many replies, decoded together (`agent.models.local_sampling`).
"""

from __future__ import annotations

import atexit
import json
import os
import threading
import time
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import PrivateAttr

from agent.errors import ModelError
from agent.models.errors import ModelCallError
from agent.models.local_sampling import BatchSampler, Sampled
from agent.models.steps import (
    GRAMMAR_KEY,
    MAX_TOKENS_KEY,
    N_KEY,
    SEED_KEY,
    TEMPERATURE_KEY,
    content_text,
    step_of_run,
)

if TYPE_CHECKING:
    from agent.config import LocalConfig

DEFAULT_MAX_TOKENS = 512
ENGINE_HINT = (
    "the local model engine (llama-cpp-python) is not installed: run `make setup`, or "
    "CMAKE_ARGS='-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON' "
    "pip install -c constraints.txt llama-cpp-python==0.3.36"
)
_ROLES = {"system": "system", "human": "user", "ai": "assistant", "tool": "user"}


def ram_cache(llama_cpp: object, capacity_bytes: int) -> Any:
    """llama.cpp's prompt-state cache, bounded by what it really holds.

    `LlamaRAMCache` counts only each state's llama.cpp bytes against its capacity, but
    every state also keeps a copy of the logits of all its prompt tokens (151,936 floats
    a token for Qwen2.5: 0.6 MB), which it does not count: with a 1 GB capacity a 1.5B
    run grew past 8 GB. This one counts every array a state keeps.
    """

    class BoundedRAMCache(llama_cpp.LlamaRAMCache):  # type: ignore[misc,name-defined]
        @property
        def cache_size(self) -> int:
            return sum(
                int(state.llama_state_size) + state.scores.nbytes + state.input_ids.nbytes
                for state in self.cache_state.values()
            )

    return BoundedRAMCache(capacity_bytes=capacity_bytes)


class Engine:
    """One loaded GGUF model: the llama.cpp object, its lock and its grammar cache."""

    def __init__(self, path: Path, n_ctx: int, n_threads: int, cache_mb: int) -> None:
        try:
            import llama_cpp
        except ImportError as exc:
            raise ModelError(ENGINE_HINT) from exc
        started = time.perf_counter()
        try:
            self.llm = llama_cpp.Llama(
                model_path=str(path),
                n_ctx=n_ctx,
                n_threads=n_threads,
                n_batch=512,
                verbose=False,
            )
        except (ValueError, RuntimeError, OSError) as exc:
            raise ModelError(
                f"llama.cpp could not load {path} ({exc}): the file is truncated, damaged or "
                "not a model llama.cpp supports: pull it again (`evoagent models pull NAME "
                "--force`) or give another .gguf"
            ) from exc
        self.load_seconds = time.perf_counter() - started
        if cache_mb > 0:
            self.llm.set_cache(ram_cache(llama_cpp, cache_mb << 20))
        self.name = str(self.llm.metadata.get("general.name") or path.name)
        self.lock = threading.Lock()
        self._grammars: dict[str, Any] = {}
        self._llama_cpp = llama_cpp
        self._n_ctx, self._n_threads = n_ctx, n_threads
        self._sampler: BatchSampler | None = None
        self._formatter: Any = None

    def grammar(self, text: str | None) -> Any:
        if not text:
            return None
        if text not in self._grammars:
            self._grammars[text] = self._llama_cpp.LlamaGrammar.from_string(text, verbose=False)
        return self._grammars[text]

    def complete(
        self,
        messages: list[dict[str, str]],
        grammar: str | None,
        max_tokens: int,
        stop: Any,
        temperature: float = 0.0,
        seed: int | None = None,
    ) -> tuple[dict[str, Any], int, float]:
        """(llama.cpp's reply, prompt tokens actually evaluated, seconds)."""
        with self.lock:
            ctx = self.llm._ctx.ctx
            self._llama_cpp.llama_perf_context_reset(ctx)
            started = time.perf_counter()
            out = self.llm.create_chat_completion(
                messages=messages,  # type: ignore[arg-type]
                max_tokens=max_tokens,
                temperature=temperature,
                grammar=self.grammar(grammar),
                stop=stop,
                # The same prompt samples the same reply: a run reproduces.
                seed=zlib.crc32(json.dumps(messages).encode()) if seed is None else seed,
            )
            seconds = time.perf_counter() - started
            evaluated = int(self._llama_cpp.llama_perf_context(ctx).n_p_eval)
        return out, evaluated, seconds  # type: ignore[return-value]

    def complete_n(
        self,
        messages: list[dict[str, str]],
        n: int,
        grammar: str | None,
        max_tokens: int,
        temperature: float,
        seed: int | None = None,
    ) -> Sampled:
        """`n` samples of a reply, decoded together (`agent.models.local_sampling`)."""
        with self.lock:
            if self._sampler is None or self._sampler.n_seq < n:
                if self._sampler is not None:
                    self._sampler.close()
                self._sampler = BatchSampler(
                    self._llama_cpp, self.llm, self._n_ctx, self._n_threads, max(n, 4)
                )
            prompt = self._prompt_tokens(messages)
            if seed is None:
                seed = zlib.crc32(json.dumps(messages).encode())
            return self._sampler.sample(prompt, n, grammar, max_tokens, temperature, seed)

    def _prompt_tokens(self, messages: list[dict[str, str]]) -> list[int]:
        """The chat as the model's own template renders it, as tokens (what
        `create_chat_completion` evaluates for the same messages)."""
        if self._formatter is None:
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter

            template = self.llm.metadata.get("tokenizer.chat_template")
            if not template:
                raise ModelError(f"{self.name} has no chat template: it cannot sample replies")
            model = self.llm._model
            eos, bos = self.llm.token_eos(), self.llm.token_bos()
            self._formatter = Jinja2ChatFormatter(
                template=template,
                eos_token=model.token_get_text(eos) if eos != -1 else "",
                bos_token=model.token_get_text(bos) if bos != -1 else "",
            )
        rendered = self._formatter(messages=messages)
        return list(
            self.llm.tokenize(
                rendered.prompt.encode("utf-8"), add_bos=not rendered.added_special, special=True
            )
        )

    def close(self) -> None:
        with self.lock:
            if self._sampler is not None:
                self._sampler.close()
                self._sampler = None
            self.llm.close()


_engines: dict[tuple[str, int, int, int], Engine] = {}
_engines_lock = threading.Lock()


@atexit.register
def close_engines() -> None:
    """Free every loaded model before the interpreter tears its modules down.

    Left to the garbage collector at exit, llama.cpp's destructors run after the
    bindings they call are gone, and print "Exception ignored in Llama.__del__".
    """
    with _engines_lock:
        engines = list(_engines.values())
        _engines.clear()
    for engine in engines:
        engine.close()


def engine_for(path: Path, n_ctx: int, n_threads: int | None, cache_mb: int) -> Engine:
    """The process's engine for this file (loaded on first use, then shared)."""
    threads = n_threads or os.cpu_count() or 1
    key = (str(path.resolve()), n_ctx, threads, cache_mb)
    with _engines_lock:
        engine = _engines.get(key)
        if engine is None:
            engine = _engines[key] = Engine(path, n_ctx, threads, cache_mb)
        return engine


class LocalChatModel(BaseChatModel):
    """A chat model backed by a local GGUF file; see the module docstring."""

    model_name: str
    path: str
    n_ctx: int = 8192
    n_threads: int | None = None
    prompt_cache_mb: int = 1024
    grammars: bool = True
    _engine: Engine | None = PrivateAttr(default=None)

    @property
    def _llm_type(self) -> str:
        return "evoagent-local"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": self.model_name, "path": self.path}

    def engine(self) -> Engine:
        """Load the model now (the first call would); a ModelError says what to fix."""
        if self._engine is None:
            self._engine = engine_for(
                Path(self.path), self.n_ctx, self.n_threads, self.prompt_cache_mb
            )
        return self._engine

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        meta = dict(getattr(run_manager, "metadata", None) or {})
        grammar = meta.get(GRAMMAR_KEY) if self.grammars else None
        max_tokens = int(meta.get(MAX_TOKENS_KEY) or kwargs.get("max_tokens") or DEFAULT_MAX_TOKENS)
        temperature = float(meta.get(TEMPERATURE_KEY) or 0.0)
        chat = [
            {"role": _ROLES.get(m.type, "user"), "content": content_text(m.content)}
            for m in messages
        ]
        engine = self.engine()
        n = max(1, int(meta.get(N_KEY) or 1))
        seed = meta.get(SEED_KEY)
        seed = None if seed is None else int(seed)
        try:
            if n > 1:
                sampled = engine.complete_n(chat, n, grammar, max_tokens, temperature, seed)
                return ChatResult(generations=self._generations(sampled, bool(grammar)))
            out, evaluated, seconds = engine.complete(
                chat, grammar, max_tokens, stop, temperature, seed
            )
        except ValueError as exc:
            # llama.cpp's way of saying the prompt does not fit the context window.
            step = step_of_run(run_manager) or "?"
            raise ModelCallError(
                f"the local model refused the {step} call: {exc} (raise -c local.n_ctx)",
                step=step,
            ) from exc
        choice = out["choices"][0]
        text = choice["message"].get("content") or ""
        usage = out.get("usage") or {}
        tokens_in = int(usage.get("prompt_tokens") or 0)
        tokens_out = int(usage.get("completion_tokens") or 0)
        message = AIMessage(
            content=text,
            usage_metadata={
                "input_tokens": tokens_in,
                "output_tokens": tokens_out,
                "total_tokens": tokens_in + tokens_out,
            },
            response_metadata={
                "model_name": self.model_name,
                "finish_reason": choice.get("finish_reason"),
                # What llama.cpp evaluated: the prompt minus the prefix it reused.
                "prompt_tokens_evaluated": evaluated,
                "seconds": round(seconds, 3),
                "grammar": bool(grammar),
            },
        )
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _generations(self, sampled: Sampled, grammar: bool) -> list[ChatGeneration]:
        """One generation per sample; the shared prompt's tokens are counted on the first
        (it was read once), each sample's own tokens on it."""
        out = []
        for i, sample in enumerate(sampled.samples):
            tokens_in = sampled.prompt_tokens if i == 0 else 0
            message = AIMessage(
                content=sample.text,
                usage_metadata={
                    "input_tokens": tokens_in,
                    "output_tokens": sample.tokens,
                    "total_tokens": tokens_in + sample.tokens,
                },
                response_metadata={
                    "model_name": self.model_name,
                    "finish_reason": sample.finish,
                    "prompt_tokens_evaluated": sampled.evaluated if i == 0 else 0,
                    "seconds": round(sampled.seconds, 3) if i == 0 else 0.0,
                    "grammar": grammar,
                    "batched": len(sampled.samples),
                },
            )
            out.append(ChatGeneration(message=message))
        return out


def build_local_model(spec: str, config: LocalConfig | None) -> LocalChatModel:
    """`local`, `local:NAME` or `local:PATH.gguf`, with the `[local]` settings."""
    from agent.config import LocalConfig
    from agent.models import weights

    config = config or LocalConfig()
    directory = weights.models_dir(config.models_dir)
    path = weights.resolve(spec, directory)
    weights.check_memory(path)
    name = spec.partition(":")[2].strip() or weights.DEFAULT
    return LocalChatModel(
        model_name=f"local:{name}",
        path=str(path),
        n_ctx=config.n_ctx,
        n_threads=config.n_threads,
        prompt_cache_mb=config.prompt_cache_mb,
        grammars=config.grammars,
    )
