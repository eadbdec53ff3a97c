"""The transformers runner: a model directory, optionally with LoRA adapters merged in (see
:mod:`vazhi_assets.training.model_runner` for the conventions every runner follows)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from vazhi_assets.training.model_runner import (
    Messages,
    SpeedMixin,
)

__all__ = ["HFRunner"]

# --------------------------------------------------------------------------- transformers


class HFRunner(SpeedMixin):
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


