"""One interface over the two ways a model variant is run: transformers model dirs (``HFRunner``
in :mod:`vazhi_assets.evaluation.runners`) and GGUF files (``LlamaCppRunner`` in
:mod:`vazhi_assets.export.llama_runner`).

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

import math
import os
from typing import Any, Literal, Protocol, runtime_checkable

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


def perplexity_of(total_logprob: float, total_tokens: int) -> float:
    return math.exp(-total_logprob / total_tokens) if total_tokens else float("nan")


class SpeedMixin:
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
        return perplexity_of(total, count)

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


