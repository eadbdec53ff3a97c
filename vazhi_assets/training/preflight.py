"""A few-step rehearsal of CPT → SFT → merge → generate on a slice, before any full run."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from vazhi_assets.training import answers as ev
from vazhi_assets.training.merge import end_of_turn_ids, merge_adapter_fp16
from vazhi_assets.training.recipe import Recipe
from vazhi_assets.training.shards import shard_files
from vazhi_assets.training.train import train_cpt, train_sft


@dataclass
class PreflightResult:
    passed: bool
    seconds: dict[str, float] = field(default_factory=dict)
    answers: list[dict] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _slice_shards(cpt_dir: Path | None, sft_dir: Path, work: Path, blocks: int,
                  samples: int) -> None:
    (work / "cpt").mkdir(parents=True, exist_ok=True)
    (work / "sft").mkdir(parents=True, exist_ok=True)
    for split in ("train", "val"):
        if cpt_dir is not None:
            frame = pl.concat([pl.read_parquet(f) for f in shard_files(cpt_dir, split)])
            frame.head(blocks).write_parquet(work / "cpt" / f"{split}-00000.parquet")
        pl.read_parquet(sft_dir / f"{split}.parquet").head(samples).write_parquet(
            work / "sft" / f"{split}.parquet")


def run_preflight(
    recipe: Recipe,
    base_dir: Path,
    cpt_dir: Path | None,
    sft_dir: Path,
    work: Path,
    tokenizer: object,
    log: object = print,
    max_new_tokens: int = 24,
) -> PreflightResult:
    """Train ``recipe.preflight_steps`` of CPT and of SFT on a slice, merge, and answer one golden
    prompt per target language (no CPT part when ``cpt_dir`` is None: the recipe has none).
    Passes when every stage works and each answer is non-empty,
    loop-free and contains letters of the target script."""
    shutil.rmtree(work, ignore_errors=True)
    result = PreflightResult(passed=False)
    steps = recipe.preflight_steps
    batch = 2
    schedule = {"max_steps": steps, "per_device_batch_size": batch, "eval_steps": steps,
                "save_steps": steps, "warmup_ratio": 0.0}
    _slice_shards(cpt_dir, sft_dir, work / "data", blocks=steps * batch, samples=steps * batch)
    adapters: list[Path] = []
    if cpt_dir is not None and recipe.cpt is not None:
        clock = time.monotonic()
        cpt = train_cpt(base_dir, work / "data" / "cpt", work / "cpt", model_spec=recipe.model,
                        lora=recipe.cpt_lora, schedule=recipe.cpt.model_copy(update=schedule),
                        log=log)
        result.seconds["cpt"] = round(time.monotonic() - clock, 2)
        adapters.append(Path(cpt.adapter_dir))
    clock = time.monotonic()
    sft = train_sft(base_dir, adapters[0] if adapters else None, work / "data" / "sft",
                    work / "sft",
                    model_spec=recipe.model, lora=recipe.sft_lora,
                    schedule=recipe.sft.model_copy(update=schedule), tokenizer=tokenizer, log=log)
    result.seconds["sft"] = round(time.monotonic() - clock, 2)
    clock = time.monotonic()
    merge_adapter_fp16(base_dir, [*adapters, Path(sft.adapter_dir)],
                       work / "merged", tokenizer=tokenizer, inference=recipe.inference,
                       dtype="float32")
    result.seconds["merge"] = round(time.monotonic() - clock, 2)
    clock = time.monotonic()
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(work / "merged"))
    prompts = ev.golden_prompts()
    for language in recipe.data.languages:
        prompt = prompts[language][0]
        answer = ev.greedy_answers(model, tokenizer, [prompt], max_new_tokens,
                                   end_of_turn_ids(tokenizer))[0]
        check = ev.check_answers(language, [prompt], [answer])[0]
        result.answers.append({"language": language, "prompt": prompt, "answer": answer,
                               "purity": check.purity, "loop": check.loop})
        if not recipe.preflight_check_answers:
            continue
        if not check.answer.strip():
            result.problems.append(f"{language}: empty answer")
        elif check.loop:
            result.problems.append(f"{language}: repetition loop")
        elif check.purity <= 0.0:
            result.problems.append(f"{language}: no {language} script in the answer")
    result.seconds["generate"] = round(time.monotonic() - clock, 2)
    result.passed = not result.problems
    shutil.rmtree(work / "data", ignore_errors=True)
    return result
