"""Ablations: the SFT stage re-run with one recipe setting changed, on the recipe's own CPT.

The sweeps are the ones the Alif paper proposes: the English replay share of the SFT blend
(10/20/30%) and the LoRA rank. Each sweep value is one partition of ``ablation_benchmark``, so a
backfill over the partitions launches the whole sweep and lands comparable benchmark rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vazhi_assets.training.recipe import Recipe, _deep_merge

#: Partition key -> override of the resolved recipe.
ABLATIONS: dict[str, dict[str, Any]] = {
    "sft_replay_0.10": {"data": {"sft_replay_ratio": 0.10}},
    "sft_replay_0.20": {"data": {"sft_replay_ratio": 0.20}},
    "sft_replay_0.30": {"data": {"sft_replay_ratio": 0.30}},
    "sft_lora_r8": {"sft_lora": {"r": 8, "alpha": 16}},
    "sft_lora_r32": {"sft_lora": {"r": 32, "alpha": 64}},
    "sft_lora_r128": {"sft_lora": {"r": 128, "alpha": 256}},
}


def ablation_recipe(spec: Recipe, key: str) -> Recipe:
    """``spec`` with the partition's override applied and validated, named ``name[key]``."""
    if key not in ABLATIONS:
        raise KeyError(f"unknown ablation {key!r}; known: {sorted(ABLATIONS)}")
    data = _deep_merge(spec.model_dump(mode="json"), ABLATIONS[key])
    data["name"] = f"{spec.name}[{key}]"
    return Recipe.model_validate(data)


@dataclass
class AblationRun:
    recipe: Recipe
    merged_dir: Path
    shard_stats: dict[str, Any]
    replay: dict[str, Any]
    train: Any


def run_ablation(
    spec: Recipe, key: str, *, base_dir: Path, cpt_adapter: Path | None, tokenizer: Any,
    template: str, work: Path, extra_samples: list | None = None, log: Any = print,
) -> AblationRun:
    """Build the overridden recipe's SFT data (with the same ``extra_samples``, e.g. user
    feedback, as the recipe's own run), check and render it, train SFT on top of
    ``cpt_adapter`` and merge; everything under ``work`` (training resumes from its
    checkpoints when its inputs are unchanged)."""
    from vazhi_assets.training.merge import merge_adapter_fp16
    from vazhi_assets.training.sft_stage import recipe_sft_samples, render_sft_shards
    from vazhi_assets.training.sft_table import validate_chatml
    from vazhi_assets.training.train import train_sft

    variant = ablation_recipe(spec, key)
    _, samples, replay = recipe_sft_samples(variant, extra_samples)
    problems = validate_chatml(samples)
    if problems:
        raise ValueError(f"ablation {key}: {len(problems)} SFT samples fail the ChatML checks, "
                         f"e.g. {problems[0]}")
    _, stats = render_sft_shards(samples, tokenizer, template, variant, work / "sft_shards")
    if stats["samples_without_trained_tokens"] or stats["template_disagreements"]:
        raise ValueError(f"ablation {key}: SFT shards fail the mask checks: {stats}")
    result = train_sft(base_dir, cpt_adapter, work / "sft_shards", work / "sft_adapter",
                       model_spec=variant.model, lora=variant.sft_lora, schedule=variant.sft,
                       tokenizer=tokenizer, log=log)
    adapters = [*([cpt_adapter] if cpt_adapter else []), Path(result.adapter_dir)]
    merged = work / "merged_model"
    merge_adapter_fp16(base_dir, adapters, merged, tokenizer=tokenizer,
                       inference=variant.inference, dtype=variant.export.merge_dtype)
    return AblationRun(variant, merged, stats, replay, result)
