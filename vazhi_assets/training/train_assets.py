"""Model-half training assets, one partition per recipe: preflight rehearsal, LoRA CPT, SFT and
the fp16 merge, with the checks that guard them."""


import json
import shutil
from pathlib import Path

import dagster as dg
import polars as pl

from vazhi_assets.feedback.assets import feedback_rows_used
from vazhi_assets.gates import blocking_check, consume, consumed_metadata, warning_check
from vazhi_assets.identity import (
    code_version,
    dir_version,
    model_identity,
    sha256_bytes,
    version,
)
from vazhi_assets.metadata import markdown_table, png_markdown
from vazhi_assets.resources import VazhiStorage
from vazhi_assets.storage import atomic_write_text
from vazhi_assets.training import answers as ev
from vazhi_assets.training.data_assets import (
    NO_CPT,
    base_model,
    cpt_shards,
    read_base,
    sft_shards,
)
from vazhi_assets.training.recipe import Recipe
from vazhi_assets.training.recipe_assets import RecipeRun, load_snapshot, recipe_run
from vazhi_assets.training.recipe_registry import RECIPE_PARTITIONS
from vazhi_assets.training.recipe_tokenizer import recipe_tokenizer
from vazhi_assets.training.workspace import RecipeWork

GROUP = "training"
TRAINING_CODE = ("vazhi_assets.training.train",)


def _asset(**kwargs: object) -> dict:
    return {"partitions_def": RECIPE_PARTITIONS, "group_name": GROUP, "owners": ["team:ml"],
            "tags": {"stage": "training"}, **kwargs}


def read_shards(context: dg.AssetExecutionContext, run: RecipeRun, asset: dg.AssetsDefinition,
                folder: Path) -> object:
    content = dir_version(folder) if folder.exists() else NO_CPT
    return consume(context, asset.key, partition=run.name, content_hash=content)


def read_adapter(context: dg.AssetExecutionContext, run: RecipeRun, name: str,
                 folder: Path | None) -> object:
    content = dir_version(folder) if folder is not None else NO_CPT
    return consume(context, name, partition=run.name, content_hash=content)


def _loss_chart(result: object, title: str) -> str:
    def draw(ax: object) -> None:
        if result.train_loss:
            steps, losses = zip(*result.train_loss, strict=True)
            ax.plot(steps, losses, label="train loss")
        if result.eval_loss:
            steps, losses = zip(*result.eval_loss, strict=True)
            ax.plot(steps, losses, marker="o", label="eval loss")
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        ax.legend()

    return png_markdown(draw, title, (7, 3.5))


def _loss_text(result: object) -> str:
    lines = [f"{step}\t{loss:.4f}" for step, loss in result.train_loss]
    evals = [f"{step}\t{loss:.4f}\teval" for step, loss in result.eval_loss]
    return "step\tloss\n" + "\n".join(lines + evals)


def _train_metadata(run: RecipeRun, result: object, title: str) -> dict:
    from vazhi_assets.training.train import perplexity_from_loss

    return {
        **run.tags(),
        "global_step": result.global_step,
        "resumed_from": result.resumed_from or "",
        "seconds": result.seconds,
        "steps_per_second": result.steps_per_second,
        "tokens_per_second": result.tokens_per_second,
        "trainable_parameters": result.trainable_parameters,
        "trainable_share": round(result.trainable_parameters / result.total_parameters, 5),
        "final_eval_loss": result.final_eval_loss,
        "final_eval_perplexity": perplexity_from_loss(result.final_eval_loss),
        "loss_curve": dg.MetadataValue.md(_loss_chart(result, title)),
        "loss_history": dg.MetadataValue.text(_loss_text(result)),
        "adapter": dg.MetadataValue.path(result.adapter_dir),
    }


@dg.asset(
    **_asset(kinds={"peft", "trl"},
             code_version=code_version("vazhi_assets.training.preflight", *TRAINING_CODE,
                                       after=[cpt_shards, sft_shards, base_model])),
    deps=[cpt_shards, sft_shards, base_model],
    description="A few-step CPT → SFT → merge → generate rehearsal on a slice; the full "
    "training runs only when it produced target-script answers.",
)
def training_preflight(
    context: dg.AssetExecutionContext, storage: VazhiStorage
) -> dg.MaterializeResult:
    from vazhi_assets.training.preflight import run_preflight

    run = recipe_run(context, storage)
    spec, work = run.spec, run.work
    consumed = [run.consumed, read_base(context, run)[1],
                read_shards(context, run, cpt_shards, work.cpt_shards),
                read_shards(context, run, sft_shards, work.sft_shards)]
    out = work.dir("training_preflight")
    result = run_preflight(
        spec, work.base_model, work.cpt_shards if spec.has_cpt else None, work.sft_shards,
        out / "run", recipe_tokenizer(spec, work.base_model).tokenizer, log=context.log.info,
    )
    text = json.dumps(result.__dict__, ensure_ascii=False, indent=2)
    atomic_write_text(out / "result.json", text)
    content = version(sha256_bytes(text.encode()))
    return dg.MaterializeResult(
        data_version=dg.DataVersion(content),
        metadata={
            **run.tags(), "content_hash": content, **consumed_metadata(consumed),
            "passed": result.passed,
            "seconds": dg.MetadataValue.json(result.seconds),
            "answers": dg.MetadataValue.md(markdown_table(pl.DataFrame(result.answers))),
            "problems": dg.MetadataValue.json(result.problems),
        }
    )


@blocking_check(asset=training_preflight, name="preflight_passed",
                description="The rehearsal trained, merged and answered in the target script.")
def preflight_passed(
    context: dg.AssetCheckExecutionContext, storage: VazhiStorage
) -> dg.AssetCheckResult:
    path = RecipeWork.of(storage.base, context.partition_key).root / "training_preflight"
    result = json.loads((path / "result.json").read_text(encoding="utf-8"))
    return dg.AssetCheckResult(passed=bool(result["passed"]),
                               metadata={"problems": dg.MetadataValue.json(result["problems"])})


def _val_blocks_by_language(shards: Path, cap: int) -> dict[str, list[list[int]]]:
    from vazhi_assets.training.shards import shard_files

    frame = pl.concat([pl.read_parquet(f) for f in shard_files(shards, "val")])
    return {lang: [list(x) for x in part["input_ids"].head(cap)]
            for (lang,), part in frame.group_by("language")}


class TrainingConfig(dg.Config):
    """Knobs that do not change the recipe: how many val blocks per language to score."""

    perplexity_blocks: int = 16


@dg.asset(
    **_asset(kinds={"peft", "pytorch"},
             code_version=code_version(*TRAINING_CODE,
                                       after=[cpt_shards, base_model, training_preflight])),
    deps=[cpt_shards, base_model, training_preflight],
    description="LoRA continued pre-training on the packed mix (cosine schedule, warmup, "
    "clipping, accumulation, eval on val shards, checkpoints, resume after a crash).",
)
def cpt_adapter(
    context: dg.AssetExecutionContext, storage: VazhiStorage, config: TrainingConfig
) -> dg.MaterializeResult:
    from vazhi_assets.training.train import load_base, load_with_adapters, train_cpt

    run = recipe_run(context, storage)
    spec, work = run.spec, run.work
    preflight = consume(context, training_preflight.key, partition=run.name)
    consumed = [run.consumed, preflight, read_base(context, run)[1],
                read_shards(context, run, cpt_shards, work.cpt_shards)]
    if not spec.has_cpt:
        shutil.rmtree(work.root / "cpt_adapter", ignore_errors=True)
        return dg.MaterializeResult(
            data_version=dg.DataVersion(NO_CPT),
            metadata={**run.tags(), "content_hash": NO_CPT, "skipped": "recipe has no CPT",
                      **consumed_metadata(consumed)})
    result = train_cpt(work.base_model, work.cpt_shards, work.dir("cpt_adapter"),
                       model_spec=spec.model, lora=spec.cpt_lora, schedule=spec.cpt,
                       log=context.log.info)
    blocks = _val_blocks_by_language(work.cpt_shards, config.perplexity_blocks)
    base = load_base(work.base_model, spec.model)
    adapted = load_with_adapters(work.base_model, [Path(result.adapter_dir)], spec.model)
    rows = [{"language": lang, "blocks": len(b),
             "base_perplexity": round(ev.block_perplexity(base, b), 3),
             "cpt_perplexity": round(ev.block_perplexity(adapted, b), 3)}
            for lang, b in sorted(blocks.items())]
    table = pl.DataFrame(rows)
    storage.write_table("heldout_perplexity", table.with_columns(
        recipe=pl.lit(spec.name), stage=pl.lit("cpt")), run.name)
    content = dir_version(work.cpt_adapter)
    return dg.MaterializeResult(
        data_version=dg.DataVersion(content),
        metadata={**_train_metadata(run, result, "CPT loss"), "content_hash": content,
                  **consumed_metadata(consumed),
                  "heldout_perplexity": dg.MetadataValue.md(markdown_table(table)),
                  **{f"ppl_{r['language']}_base": r["base_perplexity"] for r in rows},
                  **{f"ppl_{r['language']}_cpt": r["cpt_perplexity"] for r in rows}}
    )


@dg.asset(
    **_asset(kinds={"trl", "peft"},
             code_version=code_version(*TRAINING_CODE, after=[cpt_adapter, sft_shards])),
    deps=[cpt_adapter, sft_shards],
    description="SFT with TRL on top of the CPT adapter (merged into the base), assistant-only "
    "loss on the rendered chat samples.",
)
def sft_adapter(context: dg.AssetExecutionContext, storage: VazhiStorage) -> dg.MaterializeResult:
    from vazhi_assets.training.train import train_sft

    run = recipe_run(context, storage)
    spec, work = run.spec, run.work
    cpt_dir = work.cpt_adapter if spec.has_cpt else None
    consumed = [run.consumed, read_base(context, run)[1],
                read_shards(context, run, sft_shards, work.sft_shards),
                read_adapter(context, run, "cpt_adapter", cpt_dir)]
    result = train_sft(
        work.base_model, cpt_dir, work.sft_shards, work.dir("sft_adapter"),
        model_spec=spec.model, lora=spec.sft_lora, schedule=spec.sft,
        tokenizer=recipe_tokenizer(spec, work.base_model).tokenizer, log=context.log.info,
    )
    content = dir_version(work.sft_adapter)
    return dg.MaterializeResult(
        data_version=dg.DataVersion(content),
        metadata={**_train_metadata(run, result, "SFT loss"), "content_hash": content,
                  **consumed_metadata(consumed)})


@dg.asset(
    **_asset(kinds={"transformers", "safetensors"},
             code_version=code_version("vazhi_assets.training.merge",
                                       after=[base_model, cpt_adapter, sft_adapter])),
    deps=[base_model, cpt_adapter, sft_adapter],
    description="Base reloaded in fp16 with the CPT and SFT adapters merged; saved with "
    "tokenizer, chat template and the recipe's generation defaults.",
)
def merged_model(context: dg.AssetExecutionContext, storage: VazhiStorage) -> dg.MaterializeResult:
    from vazhi_assets.training.merge import end_of_turn_ids, merge_adapter_fp16

    run = recipe_run(context, storage)
    spec, work = run.spec, run.work
    adapters = [*([work.cpt_adapter] if spec.has_cpt else []), work.sft_adapter]
    consumed = [run.consumed, read_base(context, run)[1],
                read_adapter(context, run, "cpt_adapter",
                             work.cpt_adapter if spec.has_cpt else None),
                read_adapter(context, run, "sft_adapter", work.sft_adapter),
                read_shards(context, run, sft_shards, work.sft_shards)]
    tokenizer = recipe_tokenizer(spec, work.base_model).tokenizer
    out = work.merged_model
    info = merge_adapter_fp16(work.base_model, adapters, out, tokenizer=tokenizer,
                              inference=spec.inference, dtype=spec.export.merge_dtype)
    comparison = answers_before_after(spec, tokenizer, work.base_model, out,
                                      end_of_turn_ids(tokenizer),
                                      cache_dir=storage.base / "cache" / "base_answers")
    atomic_write_text(out.parent / "answers.json",
                      json.dumps(comparison.to_dicts(), ensure_ascii=False, indent=2))
    purity = comparison.group_by("language", "model").agg(pl.col("purity").mean()).sort(
        "language", "model")
    feedback = feedback_rows_used(storage, run.name, work.sft_shards)
    atomic_write_text(out.parent / "feedback_rows.json", json.dumps(feedback, indent=2))
    identity = model_identity(out)
    context.log.info(f"merged model at {out} ({info['bytes'] / 1e6:.0f} MB), "
                     f"{len(feedback)} feedback rows in its SFT set")
    return dg.MaterializeResult(
        data_version=dg.DataVersion(identity["content_hash"]),
        metadata={**run.tags(), **identity, **consumed_metadata(consumed),
                  "path": dg.MetadataValue.path(str(out)),
                  "dtype": info["dtype"], "size_mb": round(info["bytes"] / 1e6, 1),
                  "stop_token_ids": dg.MetadataValue.json(info["stop_token_ids"]),
                  "feedback_rows": dg.MetadataValue.json(feedback),
                  "feedback_row_count": len(feedback),
                  "answer_purity_before_after": dg.MetadataValue.md(markdown_table(purity)),
                  "answers": dg.MetadataValue.md(markdown_table(comparison))}
    )


def answers_before_after(
    spec: Recipe, tokenizer: object, base_dir: Path, merged_dir: Path, stops: list[int],
    cache_dir: Path | None = None,
) -> pl.DataFrame:
    """Greedy answers of the base and the merged model to the golden prompts. The base's
    answers are kept in ``cache_dir`` under a key of everything they depend on (weights,
    template, prompts, budget, stops, penalty): recipes and retrains on the same base reuse
    them."""
    prompts = ev.golden_prompts()
    rows = []
    for label, path in (("base", base_dir), ("merged", merged_dir)):
        key = None
        if label == "base" and cache_dir is not None:
            key = sha256_bytes(json.dumps({
                "weights": model_identity(path)["weights_sha256"],
                "template": tokenizer.chat_template, "languages": spec.data.languages,
                "prompts": {lang: prompts[lang] for lang in spec.data.languages},
                "max_new_tokens": 64, "stops": stops,
                "repetition_penalty": spec.inference.repetition_penalty,
            }, sort_keys=True, ensure_ascii=False).encode())
            cached = cache_dir / f"{key}.json"
            if cached.exists():
                rows += json.loads(cached.read_text(encoding="utf-8"))
                continue
        found = _golden_answers(spec, tokenizer, path, label, prompts, stops)
        if key is not None:
            atomic_write_text(cache_dir / f"{key}.json",
                              json.dumps(found, ensure_ascii=False, indent=2))
        rows += found
    return pl.DataFrame(rows)


def _golden_answers(spec: Recipe, tokenizer: object, path: Path, label: str,
                    prompts: dict[str, list[str]], stops: list[int]) -> list[dict]:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(path), dtype="float32")
    rows = []
    for language in spec.data.languages:
        # as the merged model ships (generation_config) and as the GGUF probe asks
        answers = ev.greedy_answers(model, tokenizer, prompts[language], 64, stops,
                                    spec.inference.repetition_penalty)
        for check in ev.check_answers(language, prompts[language], answers):
            rows.append({"model": label, "language": language, "prompt": check.prompt,
                         "answer": check.answer, "purity": check.purity,
                         "loop": check.loop, "echo": check.echo})
    return rows


def _answers(storage: VazhiStorage, context: dg.AssetCheckExecutionContext) -> list[dict]:
    spec = load_snapshot(storage, context.partition_key)
    path = RecipeWork.of(storage.base, spec.name).root / "merged_model" / "answers.json"
    return json.loads(path.read_text(encoding="utf-8"))


@blocking_check(asset=merged_model, name="merged_model_sanity",
                description="Greedy answers to golden prompts (with the repetition penalty the "
                "model ships) are non-empty, loop-free and mostly in the target script (mean "
                "purity ≥ 0.5 per language).")
def merged_model_sanity(
    context: dg.AssetCheckExecutionContext, storage: VazhiStorage
) -> dg.AssetCheckResult:
    answers = [row for row in _answers(storage, context) if row["model"] == "merged"]
    passed, per_language = ev.answers_verdict(answers)
    return dg.AssetCheckResult(
        passed=passed,
        metadata={"per_language": dg.MetadataValue.md(markdown_table(per_language))},
    )


@warning_check(asset=merged_model, name="answers_add_content",
               description="Warns when most golden answers only repeat the prompt: the model "
               "is in the right script but has not learned to answer yet.")
def answers_add_content(
    context: dg.AssetCheckExecutionContext, storage: VazhiStorage
) -> dg.AssetCheckResult:
    answers = pl.DataFrame(_answers(storage, context))
    echo = answers.group_by("model").agg(echo_share=pl.col("echo").mean()).sort("model")
    merged = echo.filter(pl.col("model") == "merged")["echo_share"].to_list()
    return dg.AssetCheckResult(
        passed=bool(merged) and merged[0] < 0.5,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"echo_share": dg.MetadataValue.md(markdown_table(echo))},
    )


TRAIN_ASSETS = [training_preflight, cpt_adapter, sft_adapter, merged_model]
TRAIN_CHECKS = [preflight_passed, merged_model_sanity, answers_add_content]
