"""The SFT data stage as plain functions: a recipe's samples, and their rendered shards.

``sft_dataset``/``sft_shards`` wrap these for the recipe's own run; ``ablation_benchmark``
calls them again with an overridden recipe, so both paths build SFT data the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from vazhi_assets.storage import write_parquet
from vazhi_assets.training.chat_format import has_generation_markers
from vazhi_assets.training.recipe import Recipe
from vazhi_assets.training.sft_build import SftBuild, apply_replay_ratio, build_sft_dataset
from vazhi_assets.training.sft_loaders import load_chatml_jsonl
from vazhi_assets.training.sft_render import (
    Rendered,
    render,
    templates_agree,
)
from vazhi_assets.training.sft_samples import Sample
from vazhi_assets.training.shards import split_of


def recipe_sft_samples(
    spec: Recipe, extra_samples: list[Sample] | None = None,
) -> tuple[SftBuild, list[Sample], dict[str, Any]]:
    """The recipe's SFT build (sources, languages + English, ROUGE-L dedup, per-source cap,
    extra ChatML files, ``extra_samples`` such as user feedback) and its samples after the
    English replay ratio, with replay stats."""
    extra = [sample for path in spec.data.sft_files
             for sample in load_chatml_jsonl(Path(path), source=Path(path).stem)]
    extra += list(extra_samples or [])
    build = build_sft_dataset(
        spec.data.sft_sources,
        split="train",
        languages=[*spec.data.languages, "en"],
        rouge_threshold=spec.data.instruction_dedup_rouge_l,
        max_per_source=spec.data.sft_max_per_source,
        extra=extra,
        drop_invalid=False,
    )
    samples, replay = list(build.samples), {}
    if spec.data.sft_replay_ratio is not None:
        samples, replay = apply_replay_ratio(samples, spec.data.sft_replay_ratio)
    return build, samples, replay


def full_sequence_loss(rendered: Rendered) -> Rendered:
    """Every kept token carries loss (``assistant_only_loss: false``)."""
    n = len(rendered.input_ids)
    return Rendered(rendered.input_ids, [1] * n, rendered.tokens_before_truncation, n, 0)


#: One rendered SFT sample per row (explicit: ``feedback_id`` is null for every bundled sample,
#: so inferring from the first rows would type it Null and fail on the first feedback row).
SFT_SHARD_SCHEMA = {
    "sample_id": pl.String, "language": pl.String, "format": pl.String, "source": pl.String,
    "feedback_id": pl.String, "split": pl.String,
    "input_ids": pl.List(pl.Int64), "assistant_masks": pl.List(pl.Int64),
    "n_tokens": pl.Int64, "tokens_before_truncation": pl.Int64, "trained_tokens": pl.Int64,
    "assistant_tokens_truncated": pl.Int64,
}


def render_sft_shards(
    samples: list[Sample], tokenizer: Any, template: str, spec: Recipe, out: Path,
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Render every sample with ``template`` (assistant-only masks), split train/val by
    sample id, write ``train.parquet``/``val.parquet`` to ``out``; returns rows and stats.

    A sample whose answer starts beyond the window has nothing to learn from and is dropped
    (counted); the tokenizer's own template must render exactly like ``template``. User
    feedback always goes to train (it was collected to be learned). With
    ``assistant_only_loss: false`` every token carries loss."""
    if not samples:
        raise ValueError("no SFT samples to render: check data.sft_sources and data.languages")
    disagreements = templates_agree(tokenizer, template, [s.messages for s in samples])
    rows, beyond_window = [], 0
    for sample in samples:
        rendered = render(tokenizer, sample.messages, template, spec.model.max_seq_length)
        if not spec.assistant_only_loss:
            rendered = full_sequence_loss(rendered)
        if rendered.trained_tokens == 0 and rendered.assistant_tokens_truncated > 0:
            beyond_window += 1
            continue
        split = ("train" if sample.format == "feedback"
                 else split_of(sample.sample_id, max(spec.data.val_fraction, 0.1)))
        rows.append({
            "sample_id": sample.sample_id, "language": sample.language, "format": sample.format,
            "source": sample.source, "feedback_id": (sample.meta or {}).get("feedback_id"),
            "split": split,
            "input_ids": rendered.input_ids, "assistant_masks": rendered.assistant_masks,
            "n_tokens": len(rendered.input_ids),
            "tokens_before_truncation": rendered.tokens_before_truncation,
            "trained_tokens": rendered.trained_tokens,
            "assistant_tokens_truncated": rendered.assistant_tokens_truncated,
        })
    frame = pl.DataFrame(rows, schema=SFT_SHARD_SCHEMA)
    out.mkdir(parents=True, exist_ok=True)
    for split in ("train", "val"):
        write_parquet(frame.filter(pl.col("split") == split), out / f"{split}.parquet")
    stats = {
        "samples": frame.height,
        "dropped_answer_beyond_window": beyond_window,
        "template_disagreements": len(disagreements),
        "template_has_generation_blocks": has_generation_markers(template),
        "assistant_only_loss": spec.assistant_only_loss,
        "trained_token_share": round(frame["trained_tokens"].sum() / frame["n_tokens"].sum(), 4),
        "samples_without_trained_tokens": frame.filter(pl.col("trained_tokens") == 0).height,
        "samples_with_truncated_assistant": frame.filter(
            pl.col("assistant_tokens_truncated") > 0).height,
        "train_samples": frame.filter(pl.col("split") == "train").height,
        "val_samples": frame.filter(pl.col("split") == "val").height,
    }
    return frame, stats
