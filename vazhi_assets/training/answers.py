"""Answers of a model in training: the golden prompts, greedy answers, loop and echo detection,
the answers verdict, and held-out block perplexity."""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import yaml

from vazhi_assets.corpus.scripts import script_purity
from vazhi_assets.settings import PACKAGE_DIR
from vazhi_assets.training.chat_format import stop_strings

GOLDEN_PROMPTS = PACKAGE_DIR / "data" / "golden_prompts.yaml"


def golden_prompts(path: Path = GOLDEN_PROMPTS) -> dict[str, list[str]]:
    """Prompts per language that every trained model must answer sensibly."""
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def block_perplexity(model: object, blocks: list[list[int]], batch_size: int = 8) -> float:
    """exp(mean token negative log-likelihood) over packed blocks."""
    import torch

    model.eval()
    total_loss, total_tokens = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(blocks), batch_size):
            batch = torch.tensor(blocks[start:start + batch_size], dtype=torch.long)
            out = model(input_ids=batch, labels=batch)
            tokens = batch.numel() - batch.shape[0]
            total_loss += float(out.loss) * tokens
            total_tokens += tokens
    return math.exp(total_loss / total_tokens) if total_tokens else float("nan")


def greedy_answers(
    model: object, tokenizer: object, prompts: list[str], max_new_tokens: int = 64,
    stop_ids: list[int] | None = None, repetition_penalty: float = 1.0,
) -> list[str]:
    """Deterministic answers to single-turn chat prompts (greedy; ``repetition_penalty`` as
    the model ships it, so a check judges the model the way users run it)."""
    import torch

    stops = stop_strings(tokenizer.chat_template)
    model.eval()
    answers = []
    for prompt in prompts:
        ids = tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], add_generation_prompt=True,
            return_tensors="pt", return_dict=True,
        )
        with torch.no_grad():
            out = model.generate(
                **ids, max_new_tokens=max_new_tokens, do_sample=False,
                eos_token_id=stop_ids or tokenizer.eos_token_id,
                pad_token_id=tokenizer.pad_token_id, repetition_penalty=repetition_penalty,
                stop_strings=stops or None, tokenizer=tokenizer,
            )
        new = out[0][ids["input_ids"].shape[1]:]
        text = tokenizer.decode(new, skip_special_tokens=True)
        for stop in stops:
            text = text.split(stop)[0]
        answers.append(text.strip())
    return answers


def repetition_loop(text: str, n: int = 3, times: int = 4) -> bool:
    """True when some word n-gram repeats ``times`` or more (a degenerate loop)."""
    words = re.findall(r"\w+", text)
    grams = Counter(tuple(words[i:i + n]) for i in range(len(words) - n + 1))
    return bool(grams) and max(grams.values()) >= times


def echoes_prompt(prompt: str, answer: str, share: float = 0.8) -> bool:
    """True when (nearly) every word of the answer is taken from the prompt."""
    answer_words = re.findall(r"\w+", answer)
    if not answer_words:
        return False
    prompt_words = set(re.findall(r"\w+", prompt))
    return sum(w in prompt_words for w in answer_words) / len(answer_words) >= share


@dataclass(frozen=True)
class AnswerCheck:
    language: str
    prompt: str
    answer: str
    purity: float
    loop: bool
    echo: bool = False

    @property
    def ok(self) -> bool:
        return bool(self.answer.strip()) and not self.loop


def check_answers(language: str, prompts: list[str], answers: list[str]) -> list[AnswerCheck]:
    return [
        AnswerCheck(language, p, a, round(script_purity(a, language), 4), repetition_loop(a),
                    echoes_prompt(p, a))
        for p, a in zip(prompts, answers, strict=True)
    ]


def answers_verdict(answers: list[dict], min_purity: float = 0.5) -> tuple[bool, object]:
    """Per-language summary of answer rows (language, answer, purity, loop) and whether every
    language passes: mean purity >= ``min_purity``, no empty answer, no loop."""
    import polars as pl

    frame = pl.DataFrame(answers)
    per_language = frame.group_by("language").agg(
        purity=pl.col("purity").mean(), empty=(pl.col("answer").str.strip_chars() == "").sum(),
        loops=pl.col("loop").sum()).sort("language")
    bad = per_language.filter((pl.col("purity") < min_purity) | (pl.col("empty") > 0)
                              | (pl.col("loops") > 0))
    return bad.is_empty(), per_language
