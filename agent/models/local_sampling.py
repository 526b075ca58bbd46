"""Several replies to one prompt, decoded together by llama.cpp (the local engine's `n`).

Why not n calls: on a CPU the cost of a decode step is reading the weights, nearly the
same for one token as for four, and the prompt (most of a call's time on 2 cores) is the
same for every sample. So the prompt is evaluated once, on sequence 0, its cache cells are
shared with sequences 1..n-1 (`llama_memory_seq_cp` in a unified KV cache), and each step
decodes one token of every live sequence in one batch. Each sequence has its own sampler
chain (its grammar's state, its own seed), so the samples differ and each follows the
step's grammar.

The sampler owns a second llama.cpp context on the engine's model (the weights are
shared; only the KV cache and buffers are its own), created on first use and kept: the
prompt prefix it evaluated last is reused by the next call, as the engine's own context
reuses its prefix. It is used under the engine's lock, like the engine's context.
"""

from __future__ import annotations

import ctypes
import time
from dataclasses import dataclass, field
from typing import Any

#: top-k and min-p before temperature: the usual guard against the long tail at T ~ 0.7
TOP_K = 40
MIN_P = 0.05


@dataclass
class Sample:
    """One decoded sequence: its text's bytes, its token count, why it ended."""

    data: bytearray = field(default_factory=bytearray)
    tokens: int = 0
    finish: str = "length"

    @property
    def text(self) -> str:
        return self.data.decode("utf-8", errors="replace")


@dataclass
class Sampled:
    """What a batched call produced: the samples, the prompt's token count, the prompt
    tokens evaluated (the rest came from the previous call's prefix), seconds taken."""

    samples: list[Sample]
    prompt_tokens: int
    evaluated: int
    seconds: float


class BatchSampler:
    """`n` samples per prompt on a second context of `llm`'s model; see the module doc."""

    def __init__(self, llama_cpp: Any, llm: Any, n_ctx: int, n_threads: int, n_seq: int) -> None:
        self._lib = llama_cpp
        self._llm = llm
        self.n_seq = n_seq
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = n_ctx
        params.n_batch = 512
        params.n_ubatch = 512
        params.n_seq_max = n_seq
        params.kv_unified = True  # the prompt's cells are shared by every sequence
        params.n_threads = params.n_threads_batch = n_threads
        params.no_perf = True
        self.n_ctx = n_ctx
        self._ctx = llama_cpp.llama_init_from_model(llm._model.model, params)
        if not self._ctx:
            raise RuntimeError(f"llama.cpp could not create a {n_seq}-sequence context")
        self._memory = llama_cpp.llama_get_memory(self._ctx)
        self._vocab = llama_cpp.llama_model_get_vocab(llm._model.model)
        self._n_vocab = int(llama_cpp.llama_vocab_n_tokens(self._vocab))
        self._batch = llama_cpp.llama_batch_init(512, 0, n_seq)
        self._cached: list[int] = []  # the tokens sequence 0 holds, from position 0

    def close(self) -> None:
        if self._ctx:
            self._lib.llama_batch_free(self._batch)
            self._lib.llama_free(self._ctx)
            self._ctx = None

    def sample(
        self,
        prompt: list[int],
        n: int,
        grammar: str | None,
        max_tokens: int,
        temperature: float,
        seed: int,
    ) -> Sampled:
        """`n` (at most `n_seq`) samples of up to `max_tokens` tokens after `prompt`."""
        if not 1 <= n <= self.n_seq:
            raise ValueError(f"n must be 1..{self.n_seq}, got {n}")
        if len(prompt) + n * max_tokens > self.n_ctx:
            raise ValueError(
                f"Requested tokens ({len(prompt)} + {n} x {max_tokens}) exceed context "
                f"window of {self.n_ctx}"
            )
        started = time.perf_counter()
        evaluated = self._evaluate(prompt)
        for seq in range(1, n):
            self._lib.llama_memory_seq_cp(self._memory, 0, seq, -1, -1)
        chains = [self._chain(temperature, seed + i) for i in range(n)]
        rules = [self._grammar(grammar) for _ in range(n)] if grammar else [None] * n
        try:
            samples = self._decode(chains, rules, len(prompt), max_tokens)
        finally:
            for sampler in [*chains, *rules]:
                if sampler is not None:
                    self._lib.llama_sampler_free(sampler)
            for seq in range(1, n):  # the samples' cells go; the prompt's stay for reuse
                self._lib.llama_memory_seq_rm(self._memory, seq, -1, -1)
            self._lib.llama_memory_seq_rm(self._memory, 0, len(prompt), -1)
            self._cached = list(prompt)
        return Sampled(samples, len(prompt), evaluated, time.perf_counter() - started)

    def _evaluate(self, prompt: list[int]) -> int:
        """Put `prompt` on sequence 0, reusing the prefix it already holds (one token is
        always evaluated, for its logits); return how many tokens were evaluated."""
        keep = 0
        for old, new in zip(self._cached, prompt[:-1], strict=False):
            if old != new:
                break
            keep += 1
        self._lib.llama_memory_seq_rm(self._memory, 0, keep, -1)
        self._cached = prompt[:keep]
        todo = prompt[keep:]
        for start in range(0, len(todo), 512):
            chunk = todo[start : start + 512]
            last = start + len(chunk) == len(todo)
            self._fill(
                [
                    (tok, keep + start + i, 0, last and i == len(chunk) - 1)
                    for i, tok in enumerate(chunk)
                ]
            )
            self._check(self._lib.llama_decode(self._ctx, self._batch))
        return len(todo)

    def _grammar(self, grammar: str) -> Any:
        rule = self._lib.llama_sampler_init_grammar(self._vocab, grammar.encode(), b"root")
        if not rule:
            raise ValueError("llama.cpp could not parse the step's grammar")
        return rule

    def _chain(self, temperature: float, seed: int) -> Any:
        lib = self._lib
        chain = lib.llama_sampler_chain_init(lib.llama_sampler_chain_default_params())
        lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_top_k(TOP_K))
        lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_min_p(MIN_P, 1))
        lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_temp(temperature))
        lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_dist(seed & 0xFFFFFFFF))
        return chain

    def _pick(self, chain: Any, rule: Any, at: int) -> int:
        """The next token of a sequence: sampled freely, kept if its grammar allows it;
        else sampled again from the tokens the grammar allows (llama.cpp's own trick:
        checking one token costs nothing, masking the whole vocabulary ~20 ms)."""
        lib = self._lib
        token = int(lib.llama_sampler_sample(chain, self._ctx, at))
        if rule is None:
            return token
        one = (lib.llama_token_data * 1)(lib.llama_token_data(token, 0.0, 0.0))
        single = lib.llama_token_data_array(one, 1, -1, False)
        lib.llama_sampler_apply(rule, ctypes.byref(single))
        if one[0].logit != float("-inf"):
            lib.llama_sampler_accept(rule, token)
            return token
        import numpy as np

        n_vocab = self._n_vocab
        logits = np.ctypeslib.as_array(lib.llama_get_logits_ith(self._ctx, at), (n_vocab,))
        table = np.zeros(n_vocab, dtype=[("id", "<i4"), ("logit", "<f4"), ("p", "<f4")])
        table["id"] = np.arange(n_vocab)
        table["logit"] = logits
        data = table.ctypes.data_as(ctypes.POINTER(lib.llama_token_data))
        every = lib.llama_token_data_array(data, n_vocab, -1, False)
        lib.llama_sampler_apply(rule, ctypes.byref(every))
        lib.llama_sampler_apply(chain, ctypes.byref(every))
        token = int(every.data[every.selected].id)
        lib.llama_sampler_accept(rule, token)
        return token

    def _decode(
        self, chains: list[Any], rules: list[Any], n_prompt: int, max_tokens: int
    ) -> list[Sample]:
        """Decode every sequence a token at a time, all live ones in one batch."""
        lib = self._lib
        samples = [Sample() for _ in chains]
        live = list(range(len(chains)))
        logits_at = dict.fromkeys(live, -1)  # the prompt's last token, for every sequence
        piece = ctypes.create_string_buffer(256)
        for step in range(max_tokens):
            batch: list[tuple[int, int, int, bool]] = []
            for seq in live:
                token = self._pick(chains[seq], rules[seq], logits_at[seq])
                if lib.llama_vocab_is_eog(self._vocab, token):
                    samples[seq].finish = "stop"
                    continue
                size = lib.llama_token_to_piece(self._vocab, token, piece, len(piece), 0, False)
                samples[seq].data += piece.raw[: max(size, 0)]
                samples[seq].tokens += 1
                batch.append((token, n_prompt + step, seq, True))
            live = [seq for _, _, seq, _ in batch]
            if not live or step == max_tokens - 1:
                break
            self._fill(batch)
            self._check(lib.llama_decode(self._ctx, self._batch))
            logits_at = {seq: i for i, (_, _, seq, _) in enumerate(batch)}
        return samples

    def _fill(self, rows: list[tuple[int, int, int, bool]]) -> None:
        """(token, position, sequence, wants logits) rows into the batch."""
        batch = self._batch
        batch.n_tokens = len(rows)
        for i, (token, pos, seq, logits) in enumerate(rows):
            batch.token[i] = token
            batch.pos[i] = pos
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = seq
            batch.logits[i] = logits

    @staticmethod
    def _check(status: int) -> None:
        if status != 0:
            raise RuntimeError(f"llama_decode failed ({status}): the context is full or broken")
