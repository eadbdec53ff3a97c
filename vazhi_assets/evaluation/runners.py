"""One interface over the two ways a variant is run: transformers model dirs and GGUF files.

:class:`ModelRunner` is what :func:`vazhi_assets.evaluation.metrics.evaluate_variant` needs:
greedy chat answers, perplexity, the log-probability of a sentence, and the generation speed of
the last ``answer()`` call. :class:`HFRunner` implements it with transformers (optionally with
LoRA adapters merged in with peft), :class:`LlamaCppRunner` with llama-cpp-python.

Conventions shared by both, so that their numbers are comparable:

* **Scoring context.** A text is scored after one start token: the vocabulary's BOS token
  (``<|im_start|>`` for SmolLM2), or its EOS token when it has no BOS. Every token of the text
  is therefore predicted, including the first one (which matters for minimal pairs whose
  sentences differ in their first word). The text itself is tokenized without special tokens.
* **Perplexity** is ``exp(-sum(log p) / n)`` over all scored tokens of all texts (token-level,
  not a mean of per-text perplexities); each text is cut to its first ``max_tokens`` tokens.
  llama.cpp's BPE pre-tokenizer can split a few strings differently from the HF tokenizer
  (same vocabulary), so a GGUF and its source model may score a slightly different number of
  tokens: compare perplexities, not raw sums.
* **Answers** are greedy (temperature 0, no repetition penalty), rendered with the model's own
  chat template (HF: the tokenizer's; GGUF: ``tokenizer.chat_template`` from the file's metadata,
  which llama-cpp-python turns into a Jinja formatter), stopped at end-of-turn, stripped.
* **Budget.** ``max_new_tokens`` caps the generated tokens, except that a character cut in the
  middle of its UTF-8 bytes is completed first (up to three more tokens): llama-cpp-python's
  completion loop does this, and ``HFRunner`` does the same so that both return equal text.
* **Speed.** ``tokens_per_second`` = generated tokens (end-of-turn token not counted) / wall
  seconds of the generation calls in the last ``answer()`` call, prompt processing included (the
  same for both runners: what a user waits for).
* **Threads.** ``threads=None``: ``LlamaCppRunner`` uses every core the process may run on
  (llama-cpp-python would otherwise take half of them for generation); ``HFRunner`` keeps
  torch's current setting (by default the core count). A given ``threads`` sets torch's
  *process-wide* thread count.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import os
import time
import weakref
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

__all__ = [
    "HFRunner",
    "LlamaCppRunner",
    "ModelRunner",
    "amx_build",
    "available_threads",
]

Messages = list[dict[str, str]]


@runtime_checkable
class ModelRunner(Protocol):
    """What the evaluation needs from a model variant."""

    name: str
    kind: Literal["transformers", "gguf"]
    size_bytes: int

    def answer(
        self, messages_list: list[Messages], max_new_tokens: int, repetition_penalty: float = 1.0
    ) -> list[str]:
        """Greedy chat answers, one per conversation, stopped at end-of-turn."""
        ...

    def perplexity(self, texts: list[str], max_tokens: int = 512) -> float:
        """Token-level perplexity over ``texts``, each cut to ``max_tokens`` tokens."""
        ...

    def sequence_logprob(self, text: str) -> float:
        """Sum of the log-probabilities of the tokens of ``text`` (natural log)."""
        ...

    @property
    def tokens_per_second(self) -> float:
        """Generated tokens per second during the last ``answer()`` call."""
        ...


def available_threads() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _perplexity(total_logprob: float, total_tokens: int) -> float:
    return math.exp(-total_logprob / total_tokens) if total_tokens else float("nan")


class _SpeedMixin:
    """Bookkeeping of the last ``answer()`` call, ``with runner:`` closing the runner, and
    perplexity / log-probabilities from the subclass's ``tokenize`` and ``_score``."""

    generated_tokens: int = 0
    generation_seconds: float = 0.0

    def perplexity(self, texts: list[str], max_tokens: int = 512) -> float:
        total, count = 0.0, 0
        for text in texts:
            logprob, n = self._score(self.tokenize(text)[:max_tokens])
            total += logprob
            count += n
        return _perplexity(total, count)

    def sequence_logprob(self, text: str) -> float:
        return self._score(self.tokenize(text))[0]

    def close(self) -> None:
        pass

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def tokens_per_second(self) -> float:
        if self.generation_seconds <= 0:
            return 0.0
        return self.generated_tokens / self.generation_seconds


# --------------------------------------------------------------------------- transformers


class HFRunner(_SpeedMixin):
    """A transformers model directory, optionally with LoRA adapters merged in (in order).

    ``dtype`` is the torch dtype the weights are loaded in (``float32``, ``bfloat16``,
    ``float16``). ``size_bytes`` is what the variant takes on disk, like a GGUF's file size: the
    model dir's weight files plus the adapters' (so an fp16 merged dir counts as fp16 even when
    run in float32); ``memory_bytes`` is the size of the loaded, merged weights in ``dtype``
    (tied weights counted once).
    """

    kind: Literal["transformers", "gguf"] = "transformers"

    def __init__(
        self,
        model_dir: Path,
        name: str,
        adapters: Sequence[Path] = (),
        dtype: str = "float32",
        threads: int | None = None,
    ) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from vazhi_assets.training.merge import end_of_turn_ids

        if dtype not in ("float32", "bfloat16", "float16"):
            raise ValueError(f"dtype must be float32, bfloat16 or float16, not {dtype!r}")
        if threads:
            torch.set_num_threads(threads)
        self.name = name
        self.model_dir = Path(model_dir)
        self.adapters = [Path(a) for a in adapters]
        self.dtype = dtype
        self.tokenizer = AutoTokenizer.from_pretrained(str(self.model_dir))
        model = AutoModelForCausalLM.from_pretrained(str(self.model_dir),
                                                     dtype=getattr(torch, dtype))
        if self.adapters:
            from peft import PeftModel

            for adapter in self.adapters:
                model = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
        model.eval()
        self.model = model
        self.stop_ids = end_of_turn_ids(self.tokenizer)
        from vazhi_assets.training.chat_format import stop_strings

        self.stop_strings = stop_strings(self.tokenizer.chat_template)
        self.start_id = self._start_id()
        self.memory_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
        weights = [*self.model_dir.glob("*.safetensors"), *self.model_dir.glob("*.bin")]
        for adapter in self.adapters:
            weights += [*adapter.glob("*.safetensors"), *adapter.glob("*.bin")]
        self.size_bytes = sum(p.stat().st_size for p in weights)

    def _start_id(self) -> int:
        for token_id in (self.tokenizer.bos_token_id, self.tokenizer.eos_token_id):
            if token_id is not None:
                return int(token_id)
        raise ValueError(f"{self.model_dir}: the tokenizer has neither a BOS nor an EOS token")

    def tokenize(self, text: str) -> list[int]:
        """Token ids of ``text`` without special tokens."""
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def count_tokens(self, text: str) -> int:
        return len(self.tokenize(text))

    def _score(self, token_ids: list[int]) -> tuple[float, int]:
        """(sum of log p(token | earlier tokens), number of predicted tokens) for the ids after
        the start token."""
        import torch

        ids = [self.start_id, *token_ids]
        if len(ids) < 2:
            return 0.0, 0
        with torch.no_grad():
            batch = torch.tensor([ids], dtype=torch.long)
            logits = self.model(input_ids=batch).logits[0, :-1].float()
            logprobs = torch.log_softmax(logits, dim=-1)
            picked = logprobs.gather(1, batch[0, 1:].unsqueeze(1)).squeeze(1)
        return float(picked.sum()), len(ids) - 1

    def answer(
        self, messages_list: list[Messages], max_new_tokens: int, repetition_penalty: float = 1.0
    ) -> list[str]:
        import torch
        from transformers import GenerationConfig

        config = GenerationConfig(
            do_sample=False,
            max_new_tokens=max_new_tokens,
            eos_token_id=self.stop_ids,
            pad_token_id=(self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None
                          else self.stop_ids[0]),
            repetition_penalty=repetition_penalty,
            stop_strings=self.stop_strings or None,
        )
        answers, generated, seconds = [], 0, 0.0
        for messages in messages_list:
            inputs = self.tokenizer.apply_chat_template(
                messages, add_generation_prompt=True, return_tensors="pt", return_dict=True,
            )
            prompt_length = inputs["input_ids"].shape[1]
            start = time.perf_counter()
            with torch.no_grad():
                out = self.model.generate(**inputs, generation_config=config,
                                          tokenizer=self.tokenizer)
                new = out[0, prompt_length:].tolist()
                new = self._finish_character(out[0].tolist(), new, config)
            seconds += time.perf_counter() - start
            while new and new[-1] in self.stop_ids:
                new.pop()
            generated += len(new)
            text = self.tokenizer.decode(new, skip_special_tokens=True)
            for stop in self.stop_strings:  # generation stops after the stop text; drop it
                text = text.split(stop)[0]
            answers.append(text.strip())
        self.generated_tokens, self.generation_seconds = generated, seconds
        return answers

    def _finish_character(self, sequence: list[int], new: list[int], config: Any) -> list[int]:
        """When the budget ran out inside a multi-byte UTF-8 character (byte-level BPE splits
        Tamil and Urdu letters), generate up to three more tokens until it is complete, as
        llama-cpp-python's completion loop does, so both runners return the same text."""
        import torch

        if not new or new[-1] in self.stop_ids or len(new) < config.max_new_tokens:
            return new
        for _ in range(3):
            if not self.tokenizer.decode(new, skip_special_tokens=True).endswith("\ufffd"):
                break
            logits = self.model(input_ids=torch.tensor([sequence])).logits[0, -1]
            token = int(logits.argmax())
            sequence.append(token)
            new.append(token)
            if token in self.stop_ids:
                break
        return new

    def close(self) -> None:
        self.model = None

    def __repr__(self) -> str:
        return f"HFRunner({self.name!r}, {self.model_dir}, adapters={len(self.adapters)})"


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


class LlamaCppRunner(_SpeedMixin):
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
