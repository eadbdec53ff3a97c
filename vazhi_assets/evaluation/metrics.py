"""Metrics, and :func:`evaluate_variant`, which measures one model variant on the eval sets.

Every metric is a plain function of answers/references (or of a runner's log-probabilities), so
it can be unit-tested by hand and reused outside the evaluation run. An empty input gives
``nan`` (not 0): "not measured" must not look like "measured and bad".
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from typing import Any

from vazhi_assets.corpus.normalize import normalize_unicode
from vazhi_assets.corpus.scripts import SCRIPT_ALIASES, SCRIPT_RANGES, script_purity
from vazhi_assets.evaluation.eval_sets import EvalSets, MinimalPair
from vazhi_assets.training.answers import echoes_prompt, repetition_loop
from vazhi_assets.training.model_runner import ModelRunner

__all__ = [
    "METRIC_KEYS",
    "answer_purity",
    "chrf",
    "echo_share",
    "evaluate_variant",
    "exact_match_citation",
    "loop_share",
    "minimal_pair_accuracy",
    "sentence_chrf",
]

#: The keys :func:`evaluate_variant` always returns (``None`` when a part was not measured).
METRIC_KEYS = (
    "ppl_ur", "ppl_ta", "ppl_en",
    "purity_ur", "purity_ta", "purity_en",
    "chrf_en_ur", "chrf_en_ta",
    "citation_em",
    "urblimp_acc",
    "loop_share", "echo_share",
    "tokens_per_second", "generated_tokens",
    "size_mb",
)

#: Extra new tokens allowed beyond the reference's length (the citation answers of the SFT data
#: put a header such as ``குறள் 10 (அதிகாரம்):`` before the verse).
ANSWER_MARGIN_TOKENS = 48
#: Budgets are rounded up to a multiple of this, so that the few tokens by which llama.cpp's and
#: the HF tokenizer's splits of a reference may differ rarely change the budget of a variant.
BUDGET_STEP = 32


def _mean(values: Iterable[float]) -> float:
    values = list(values)
    return sum(values) / len(values) if values else float("nan")


# --------------------------------------------------------------------------- text metrics


def chrf(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Corpus-level chrF (sacrebleu defaults: character 6-grams, beta 2), 0–100."""
    from sacrebleu.metrics import CHRF

    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references")
    if not hypotheses:
        return float("nan")
    return float(CHRF().corpus_score(list(hypotheses), [list(references)]).score)


def sentence_chrf(hypothesis: str, reference: str) -> float:
    """chrF of one answer (for inspecting single items; aggregate with :func:`chrf`)."""
    from sacrebleu.metrics import CHRF

    return float(CHRF().sentence_score(hypothesis, [reference]).score)


def _flat(text: str, language: str) -> str:
    return " ".join(normalize_unicode(text, language).split())


def exact_match_citation(answer: str, reference_verse: str, language: str = "ta") -> bool:
    """True when every non-empty line of ``reference_verse`` occurs in ``answer``, in order.

    Both sides are Unicode-normalised for ``language`` and every run of whitespace (line breaks
    included) becomes one space, so a verse quoted on one line or with different spacing still
    matches; otherwise the match is exact (letters, marks and punctuation).
    """
    lines = [_flat(line, language) for line in reference_verse.splitlines() if line.strip()]
    if not lines:
        raise ValueError("the reference verse is empty")
    haystack = _flat(answer, language)
    position = 0
    for line in lines:
        found = haystack.find(line, position)
        if found < 0:
            return False
        position = found + len(line)
    return True


def answer_purity(answers: Sequence[str], language: str) -> float:
    """Mean share of letters in ``language``'s script (an answer without letters counts 0)."""
    return _mean(script_purity(a, language) for a in answers)


def loop_share(answers: Sequence[str]) -> float:
    """Share of answers caught in a repetition loop."""
    return _mean(float(repetition_loop(a)) for a in answers)


def echo_share(prompts: Sequence[str], answers: Sequence[str]) -> float:
    """Share of answers that (nearly) only repeat words of their prompt."""
    if len(prompts) != len(answers):
        raise ValueError(f"{len(prompts)} prompts but {len(answers)} answers")
    return _mean(float(echoes_prompt(p, a)) for p, a in zip(prompts, answers, strict=True))


def minimal_pair_accuracy(runner: Any, pairs: Sequence[MinimalPair]) -> float:
    """Share of pairs whose grammatical sentence gets the strictly higher log-probability."""
    return _mean(
        float(runner.sequence_logprob(p.good) > runner.sequence_logprob(p.bad)) for p in pairs
    )


# --------------------------------------------------------------------------- one variant


def _budget(runner: Any, reference: str, floor: int, cap: int) -> int:
    """New-token budget that lets ``reference`` be produced: its length in the runner's tokens
    (two per character without a ``count_tokens``) plus a margin, rounded up to a multiple of
    :data:`BUDGET_STEP`, within ``[floor, cap]``."""
    count = getattr(runner, "count_tokens", None)
    length = count(reference) if count else 2 * len(reference)
    wanted = -(-(length + ANSWER_MARGIN_TOKENS) // BUDGET_STEP) * BUDGET_STEP
    return max(floor, min(cap, wanted))


def _purity(answer: str, language: str) -> float | None:
    if language not in {*SCRIPT_RANGES, *SCRIPT_ALIASES}:
        return None
    return round(script_purity(answer, language), 4)


def _user_text(messages: list[dict[str, str]]) -> str:
    return "\n\n".join(m["content"] for m in messages if m.get("role") == "user")


def evaluate_variant(
    runner: ModelRunner,
    sets: EvalSets,
    *,
    languages: Sequence[str],
    max_new_tokens: int = 96,
    max_task_tokens: int = 256,
    ppl_max_tokens: int = 512,
) -> dict[str, Any]:
    """Measure ``runner`` on ``sets``; generation metrics for ``languages``.

    Parts and what they need: ``ppl_<lang>`` (held-out texts of that language in
    ``sets.heldout_texts``, whether or not it is in ``languages``: English perplexity is the
    forgetting measure of a model adapted to Urdu/Tamil), ``purity_<lang>`` (golden prompts of
    that language, ``max_new_tokens`` each), ``chrf_<src>_<lang>`` (translations into that
    language), ``citation_em`` (``ta``), ``urblimp_acc`` (``ur``). Each translation and
    citation gets a budget large enough for its reference plus a margin, at most
    ``max_task_tokens`` (and never below ``max_new_tokens``), so a citation is never cut off by
    the budget alone. The budget is
    counted in the runner's own tokens: variants sharing a vocabulary get the same budgets
    (rounded, see :func:`_budget`); a model with an extended vocabulary gets fewer tokens for
    the same text, as it needs fewer.

    Returns a flat dict: every key of :data:`METRIC_KEYS` (``None`` when not measured; other
    languages add their own ``ppl_``/``purity_``/``chrf_`` keys), plus
    ``name``, ``kind``, ``answers`` (one dict per generated answer) and ``seconds`` (wall time).
    ``tokens_per_second`` covers all answers of the evaluation.
    """
    start = time.perf_counter()
    wanted = list(dict.fromkeys(languages))
    result: dict[str, Any] = {"name": runner.name, "kind": runner.kind}
    result.update(dict.fromkeys(METRIC_KEYS))
    records: list[dict[str, Any]] = []
    speed = {"tokens": 0, "seconds": 0.0}

    def budgeted(messages_list: list[list[dict[str, str]]], budgets: list[int]) -> list[str]:
        """Answers in order, one ``answer()`` call per distinct budget."""
        answers = [""] * len(messages_list)
        for budget in sorted(set(budgets)):
            indices = [i for i, b in enumerate(budgets) if b == budget]
            for i, answer in zip(indices, timed([messages_list[i] for i in indices], budget),
                                 strict=True):
                answers[i] = answer
        return answers

    def timed(messages_list: list[list[dict[str, str]]], budget: int) -> list[str]:
        wall = time.perf_counter()
        answers = runner.answer(messages_list, budget)
        wall = time.perf_counter() - wall
        tokens = getattr(runner, "generated_tokens", None)
        seconds = getattr(runner, "generation_seconds", None)
        if tokens is None or seconds is None:  # a runner with only the protocol's property
            tokens, seconds = runner.tokens_per_second * wall, wall
        speed["tokens"] += int(round(tokens))
        speed["seconds"] += float(seconds)
        return answers

    for language, texts in sets.heldout_texts.items():
        if texts:
            result[f"ppl_{language}"] = round(runner.perplexity(texts, ppl_max_tokens), 4)

    for language in wanted:
        prompts = sets.golden.get(language)
        if not prompts:
            continue
        answers = timed([[{"role": "user", "content": p}] for p in prompts], max_new_tokens)
        if language in {*SCRIPT_RANGES, *SCRIPT_ALIASES}:
            result[f"purity_{language}"] = round(answer_purity(answers, language), 4)
        for prompt, answer in zip(prompts, answers, strict=True):
            records.append({
                "task": "golden", "language": language, "prompt": prompt, "answer": answer,
                "reference": None, "purity": _purity(answer, language),
                "loop": repetition_loop(answer), "echo": echoes_prompt(prompt, answer),
            })

    for language in wanted:
        items = [t for t in sets.translation_pairs if t.tgt_lang == language]
        for src in dict.fromkeys(t.src_lang for t in items):
            group = [t for t in items if t.src_lang == src]
            budgets = [_budget(runner, t.reference, max_new_tokens, max_task_tokens)
                       for t in group]
            answers = budgeted([t.messages for t in group], budgets)
            key = f"chrf_{src}_{language}"
            result[key] = round(chrf(answers, [t.reference for t in group]), 4)
            for item, answer, budget in zip(group, answers, budgets, strict=True):
                prompt = _user_text(item.messages)
                records.append({
                    "task": f"translation_{src}_{language}", "language": language,
                    "prompt": prompt, "answer": answer, "reference": item.reference,
                    "chrf": round(sentence_chrf(answer, item.reference), 2),
                    "purity": _purity(answer, language),
                    "loop": repetition_loop(answer), "echo": echoes_prompt(prompt, answer),
                    "budget": budget,
                })

    if "ta" in wanted and sets.citations:
        budgets = [_budget(runner, c.reference, max_new_tokens, max_task_tokens)
                   for c in sets.citations]
        answers = budgeted([c.messages for c in sets.citations], budgets)
        hits = [exact_match_citation(a, c.reference) for a, c in
                zip(answers, sets.citations, strict=True)]
        result["citation_em"] = round(_mean(float(h) for h in hits), 4)
        for item, answer, hit, budget in zip(sets.citations, answers, hits, budgets,
                                             strict=True):
            prompt = _user_text(item.messages)
            records.append({
                "task": "citation", "language": "ta", "prompt": prompt, "answer": answer,
                "reference": item.reference, "correct": hit,
                "purity": _purity(answer, "ta"),
                "loop": repetition_loop(answer), "echo": echoes_prompt(prompt, answer),
                "budget": budget, "kural_number": item.kural_number,
            })

    if "ur" in wanted and sets.minimal_pairs:
        result["urblimp_acc"] = round(minimal_pair_accuracy(runner, sets.minimal_pairs), 4)

    if records:
        result["loop_share"] = round(loop_share([r["answer"] for r in records]), 4)
        result["echo_share"] = round(
            echo_share([r["prompt"] for r in records], [r["answer"] for r in records]), 4)
    if speed["seconds"] > 0:
        result["tokens_per_second"] = round(speed["tokens"] / speed["seconds"], 2)
        result["generated_tokens"] = speed["tokens"]
    result["size_mb"] = round(runner.size_bytes / 1e6, 2)
    result["answers"] = records
    result["seconds"] = round(time.perf_counter() - start, 2)
    for key, value in result.items():
        if isinstance(value, float) and math.isnan(value):
            result[key] = None
    return result
