"""ROUGE-L near-duplicate removal of SFT instructions.

* The dedup follows Alif (threshold 0.7, first sample wins), per language variety. The stock
  ``rouge_score`` tokenizer keeps only ``[a-z0-9]`` and so turns Urdu or Tamil into an empty
  token list (every score 0.0: nothing would ever be removed); here the text is first reduced
  with :func:`~vazhi_assets.corpus.normalize.text_key` and split on whitespace.
* For templated instructions the compared text is the part that varies (the English line of a
  translation pair, ``meta["dedup_text"]``), and the Saudi rows are compared per dialect: the
  same English line rendered in Najdi and in Hijazi is two samples, not a duplicate. Kural
  citations are exempt (their prompts differ only in a number; one sample per kural by
  construction).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence

from vazhi_assets.corpus.normalize import text_key
from vazhi_assets.training.sft_samples import Dropped, Sample


class WhitespaceTokenizer:
    """A ``rouge_score`` tokenizer for any script: ``text_key`` then split on whitespace.

    ``rouge_score``'s default tokenizer lower-cases and replaces everything outside
    ``[a-z0-9]`` with spaces, so Urdu and Tamil come out as no tokens at all.
    """

    def tokenize(self, text: str) -> list[str]:
        return text_key(text).split()


def _dedup_text(sample: Sample) -> str | None:
    if sample.meta.get("dedup_exempt"):
        return None
    return str(sample.meta.get("dedup_text") or sample.user_text)


def _dedup_group(sample: Sample) -> tuple[str, str]:
    return sample.language, str(sample.meta.get("variety") or "")


def rouge_l_dedup(
    samples: Sequence[Sample], threshold: float = 0.7
) -> tuple[list[Sample], list[Dropped]]:
    """Drop samples whose instruction has ROUGE-L F1 >= ``threshold`` with an earlier kept one.

    Compared per language variety (language plus ``meta["variety"]``), on ``meta["dedup_text"]``
    if set (the varying part of templated instructions) else the user turns, tokenised by
    :class:`WhitespaceTokenizer`. Samples with ``meta["dedup_exempt"]`` are kept unchecked.
    An upper bound (2·shared tokens / total tokens ≥ ROUGE-L F1) skips hopeless pairs, so only
    candidates sharing enough words go through ``rouge_score``'s LCS.
    """
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], tokenizer=WhitespaceTokenizer())
    kept: list[Sample] = []
    dropped: list[Dropped] = []
    # per group: postings token -> list of (kept index, count), and kept token counts
    postings: dict[tuple[str, str], dict[str, list[tuple[int, int]]]] = defaultdict(dict)
    kept_info: dict[tuple[str, str], list[tuple[Sample, str, int]]] = defaultdict(list)
    for sample in samples:
        text = _dedup_text(sample)
        if text is None:
            kept.append(sample)
            continue
        tokens = WhitespaceTokenizer().tokenize(text)
        group = _dedup_group(sample)
        index = postings[group]
        bag = Counter(tokens)
        shared: Counter[int] = Counter()
        for token, count in bag.items():
            for other, other_count in index.get(token, ()):
                shared[other] += min(count, other_count)
        match: tuple[Sample, float] | None = None
        for other, overlap in shared.items():
            other_sample, other_text, other_len = kept_info[group][other]
            if 2 * overlap / (len(tokens) + other_len) < threshold:
                continue  # LCS <= shared tokens, so ROUGE-L F1 cannot reach the threshold
            score = scorer.score(other_text, text)["rougeL"].fmeasure
            if score >= threshold:
                match = (other_sample, score)
                break
        if match is not None:
            first, score = match
            dropped.append(Dropped(sample.sample_id, sample.source, sample.language,
                                   "rouge_l_dedup",
                                   f"near-duplicate instruction of {first.sample_id} "
                                   f"({first.source}), ROUGE-L {score:.2f} >= {threshold}"))
            continue
        position = len(kept_info[group])
        kept_info[group].append((sample, text, len(tokens)))
        for token, count in bag.items():
            index.setdefault(token, []).append((position, count))
        kept.append(sample)
    return kept, dropped
