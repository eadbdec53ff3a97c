"""The llama.cpp runner: a GGUF file run with llama-cpp-python (see
:mod:`vazhi_assets.training.model_runner` for the conventions every runner follows)."""

from __future__ import annotations

import contextlib
import inspect
import time
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from vazhi_assets.training.model_runner import (
    Messages,
    SpeedMixin,
    available_threads,
)

# --------------------------------------------------------------------------- llama.cpp


def amx_build() -> bool:
    """True when the installed llama.cpp was compiled with the AMX int8 kernels."""
    import llama_cpp

    return b"AMX_INT8 = 1" in (llama_cpp.llama_print_system_info() or b"")


@contextlib.contextmanager
def _model_params(use_extra_bufts: bool) -> Iterator[dict[str, Any]]:
    """Make the next ``Llama(...)`` load with ``use_extra_bufts`` set as given.

    Yields extra keyword arguments for ``Llama``: the flag itself where ``Llama.__init__``
    accepts it; otherwise (llama-cpp-python 0.3.36 builds the model params and loads the model
    inside ``__init__``) the params factory it calls is wrapped for the duration of the block.
    """
    import llama_cpp

    if "use_extra_bufts" in inspect.signature(llama_cpp.Llama.__init__).parameters:
        yield {"use_extra_bufts": use_extra_bufts}
        return
    module = llama_cpp.llama_cpp
    original = module.llama_model_default_params

    def default_params() -> Any:
        params = original()
        params.use_extra_bufts = use_extra_bufts
        return params

    module.llama_model_default_params = default_params
    try:
        yield {}
    finally:
        module.llama_model_default_params = original


class LlamaCppRunner(SpeedMixin):
    """A GGUF file run with llama-cpp-python.

    The model is created with ``logits_all=True`` so that :meth:`perplexity` and
    :meth:`sequence_logprob` can read the logits of every position after ``Llama.eval``
    (``Llama.scores``). Chat answers go through ``create_chat_completion`` with the chat
    template stored in the GGUF; a file without one is refused (llama-cpp-python would quietly
    fall back to the Llama-2 format and every answer would be wrong). ``size_bytes`` is the
    file size.

    ``extra_buffers`` controls llama.cpp's extra CPU weight buffers (``use_extra_bufts``: weight
    repacking and the AMX kernels). ``None`` = off when the build has AMX int8 kernels, else on:
    on a CPU with AMX (like these machines), the AMX matmul of the llama.cpp bundled with
    llama-cpp-python 0.3.36 crashes the process with a segfault on the first decode of a
    Q8_0/Q4_1 (and other AMX-supported quant types) model (llama.cpp issue #20824); F16 files
    do not use it. Off costs the repacking speed-up; :attr:`extra_buffers` records what was
    used.
    """

    kind: Literal["transformers", "gguf"] = "gguf"

    def __init__(
        self,
        gguf_path: Path,
        name: str,
        n_ctx: int = 1024,
        threads: int | None = None,
        extra_buffers: bool | None = None,
    ) -> None:
        import llama_cpp

        self.name = name
        self.gguf_path = Path(gguf_path)
        if not self.gguf_path.is_file():
            raise FileNotFoundError(self.gguf_path)
        threads = threads or available_threads()
        self.extra_buffers = not amx_build() if extra_buffers is None else extra_buffers
        with _model_params(self.extra_buffers) as extra:
            self.llama = llama_cpp.Llama(
                model_path=str(self.gguf_path),
                n_ctx=n_ctx,
                logits_all=True,
                n_threads=threads,
                n_threads_batch=threads,
                verbose=False,
                **extra,
            )
        # freed at close(), garbage collection or interpreter exit (while modules still exist:
        # Llama.__del__ during module teardown raises "'NoneType' object is not callable")
        self._finalizer = weakref.finalize(self, self.llama.close)
        self.n_ctx = n_ctx
        self.chat_format = self.llama.chat_format
        from vazhi_assets.training.chat_format import stop_strings

        self.stop_strings = stop_strings(self.llama.metadata.get("tokenizer.chat_template"))
        if "tokenizer.chat_template" not in self.llama.metadata:
            self.close()
            raise ValueError(f"{self.gguf_path} carries no tokenizer.chat_template: chat "
                             "answers would use a wrong format")
        self.size_bytes = self.gguf_path.stat().st_size
        bos, eos = self.llama.token_bos(), self.llama.token_eos()
        self.start_id = bos if bos >= 0 else eos
        if self.start_id < 0:
            raise ValueError(f"{self.gguf_path}: the vocabulary has neither BOS nor EOS")

    def tokenize(self, text: str) -> list[int]:
        """Token ids of ``text`` without BOS and with special-token text kept as plain text."""
        return list(self.llama.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def count_tokens(self, text: str) -> int:
        return len(self.tokenize(text))

    def _score(self, token_ids: list[int]) -> tuple[float, int]:
        import numpy as np

        ids = [self.start_id, *token_ids]
        if len(ids) < 2:
            return 0.0, 0
        if len(ids) > self.n_ctx:
            raise ValueError(f"{len(ids)} tokens do not fit n_ctx={self.n_ctx}")
        self.llama.reset()
        self.llama.eval(ids)
        logits = self.llama.scores[: len(ids) - 1]  # row i: the logits after token i
        peak = logits.max(axis=1, keepdims=True)
        log_norm = np.log(np.exp(logits - peak).sum(axis=1, dtype=np.float64)) + peak[:, 0]
        targets = np.asarray(ids[1:])
        picked = logits[np.arange(len(targets)), targets].astype(np.float64) - log_norm
        return float(picked.sum()), len(targets)

    def perplexity(self, texts: list[str], max_tokens: int = 512) -> float:
        if max_tokens >= self.n_ctx:
            raise ValueError(f"max_tokens={max_tokens} must be below n_ctx={self.n_ctx}")
        return super().perplexity(texts, max_tokens)

    def answer(
        self, messages_list: list[Messages], max_new_tokens: int, repetition_penalty: float = 1.0
    ) -> list[str]:
        answers, generated, seconds = [], 0, 0.0
        for messages in messages_list:
            self.llama.reset()  # no KV reuse across prompts: timed like HFRunner's calls
            start = time.perf_counter()
            out: Any = self.llama.create_chat_completion(
                messages=messages,
                temperature=0.0,
                max_tokens=max_new_tokens,
                repeat_penalty=repetition_penalty,
                stop=self.stop_strings or None,
                seed=0,
            )
            seconds += time.perf_counter() - start
            generated += int(out["usage"]["completion_tokens"])
            answers.append((out["choices"][0]["message"].get("content") or "").strip())
        self.generated_tokens, self.generation_seconds = generated, seconds
        return answers

    def close(self) -> None:
        finalizer = getattr(self, "_finalizer", None)
        if finalizer is not None:
            finalizer()
        self.llama = None

    def __repr__(self) -> str:
        return f"LlamaCppRunner({self.name!r}, {self.gguf_path})"
