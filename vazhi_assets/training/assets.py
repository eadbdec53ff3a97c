"""Model assets: base model, tokenizer report, shards, LoRA CPT → SFT, fp16 merge."""

import json
import shutil
from pathlib import Path

import dagster as dg
import polars as pl

from vazhi_assets.corpus.assets import english_replay, pretraining_mix
from vazhi_assets.feedback.assets import feedback_rows_used, feedback_sft_examples
from vazhi_assets.gates import require_passing_checks
from vazhi_assets.metadata import markdown_table, png_markdown
from vazhi_assets.resources import VazhiStorage
from vazhi_assets.storage import atomic_write_text
from vazhi_assets.training import answers as ev
from vazhi_assets.training.base_model import load_tokenizer, resolve_base_model
from vazhi_assets.training.recipe import Recipe
from vazhi_assets.training.resources import RecipeResource
from vazhi_assets.training.tokenizer_checks import check_tokenizer, prepare_padding

GROUP = "training"


def _meta(recipe_res: RecipeResource) -> dict:
    return recipe_res.tags()


def _base_dir(storage: VazhiStorage, recipe_res: RecipeResource) -> Path:
    return recipe_res.workdir(storage.base, "base_model") / "model"


def chat_templates(storage: VazhiStorage, recipe_res: RecipeResource) -> tuple[str, str | None]:
    """``(training template, template the merged model ships or None)`` for the recipe."""
    from vazhi_assets.training.sft_render import recipe_templates

    recipe = recipe_res.load()
    spec = recipe.model
    stock = load_tokenizer(_base_dir(storage, recipe_res), spec.max_seq_length).chat_template
    return recipe_templates(spec.chat_template, stock, spec.system_prompt,
                            assistant_only=recipe.assistant_only_loss)


def tokenizer_for(storage: VazhiStorage, recipe_res: RecipeResource) -> object:
    """The base tokenizer with padding set and, when the recipe picks another chat template or
    a system prompt, that template: what training renders with and the merged model ships."""
    recipe = recipe_res.load()
    tokenizer = load_tokenizer(_base_dir(storage, recipe_res), recipe.model.max_seq_length)
    prepare_padding(tokenizer)
    if recipe.model.chat_template != "model" or recipe.model.system_prompt is not None:
        tokenizer.chat_template = chat_templates(storage, recipe_res)[1]
    return tokenizer


@dg.asset(
    group_name=GROUP,
    kinds={"transformers", "safetensors"},
    owners=["team:ml"],
    tags={"stage": "training"},
    description="The recipe's base model resolved into a local safetensors directory (offline "
    "SmolLM2-135M-Instruct by default; hub ids and local paths use the same loader).",
)
def base_model(
    context: dg.AssetExecutionContext, storage: VazhiStorage, recipe: RecipeResource
) -> dg.MaterializeResult:
    from vazhi_assets.training.train import cuda_available

    problems = recipe.load().machine_problems(cuda_available())
    if problems:
        raise dg.Failure("recipe cannot run on this machine:\n" + "\n".join(problems))
    spec = recipe.load().model
    info = resolve_base_model(spec, _base_dir(storage, recipe))
    context.log.info(f"base model {info.name}: {info.parameters:,} parameters at {info.path}")
    return dg.MaterializeResult(
        metadata={**_meta(recipe), **info.as_metadata(),
                  "path": dg.MetadataValue.path(info.path)},
        data_version=dg.DataVersion(f"{info.source_sha256[:16]}-{info.dtype}"),
    )


@dg.asset_check(asset=base_model, name="tokenizer_integrity", blocking=True,
                description="Contiguous vocabulary, special tokens and chat template present, "
                "padding set without adding tokens or touching eos/bos.")
def tokenizer_integrity(storage: VazhiStorage, recipe: RecipeResource) -> dg.AssetCheckResult:
    spec = recipe.load().model
    tokenizer = load_tokenizer(_base_dir(storage, recipe), spec.max_seq_length)
    prepare_padding(tokenizer)
    report = check_tokenizer(tokenizer)
    return dg.AssetCheckResult(
        passed=report.passed,
        metadata={**report.metadata(), "problems": dg.MetadataValue.json(report.problems)},
    )


def heldout_texts(
    storage: VazhiStorage, recipe: RecipeResource, per_language: int = 8
) -> dict[str, list[str]]:
    """Texts of the documents ``cpt_shards`` put in its val split: never trained on. A recipe
    without CPT uses the answers of its held-out SFT samples instead."""
    from vazhi_assets.training.shards import ShardManifest

    spec = recipe.load()
    if not spec.has_cpt:
        from vazhi_assets.training.sft_build import build_sft_dataset

        held = build_sft_dataset(spec.data.sft_sources, split="heldout",
                                 languages=spec.data.languages).samples
        return {lang: [s.assistant_text for s in held if s.language == lang][:per_language]
                for lang in spec.data.languages}
    manifest = ShardManifest.load(recipe.workdir(storage.base, "cpt_shards") / "manifest.json")
    frames = [storage.read_table(n) for n in ("deduplicated_corpus", "english_replay")]
    docs = pl.concat([f.select("doc_id", "text") for f in frames if f is not None])
    text_of = dict(zip(docs["doc_id"], docs["text"], strict=True))
    held = dict(manifest.val_documents)
    if not held.get("en") and manifest.unused_replay_documents:
        # English the mix never took (the replay budget stopped before it): the forgetting
        # measure still has text the model was not trained on
        held["en"] = manifest.unused_replay_documents
    return {lang: [text_of[d] for d in ids[:per_language] if d in text_of]
            for lang, ids in held.items()}


def _fertility_sample(storage: VazhiStorage, per_language: int = 40) -> dict[str, list[str]]:
    from vazhi_assets.training.shards import split_of

    texts: dict[str, list[str]] = {}
    for name, language in (("cleaned_urdu_corpus", "ur"), ("cleaned_tamil_corpus", "ta"),
                           ("english_replay", "en")):
        frame = storage.read_table(name)
        if frame is None:
            continue
        held = [t for d, t in zip(frame["doc_id"], frame["text"], strict=True)
                if split_of(d, 0.05) == "val" or len(frame) < 40]
        texts[language] = (held or frame["text"].to_list())[:per_language]
    return texts


@dg.asset(
    deps=[base_model, "cleaned_urdu_corpus", "cleaned_tamil_corpus", english_replay],
    group_name=GROUP,
    kinds={"transformers"},
    owners=["team:ml"],
    tags={"stage": "training"},
    description="Tokenizer fertility (tokens per character and per word) on held-out Urdu, "
    "Tamil and English text: how much of a context window each language costs.",
)
def tokenizer_report(
    context: dg.AssetExecutionContext, storage: VazhiStorage, recipe: RecipeResource
) -> dg.MaterializeResult:
    from vazhi_assets.training.fertility import fertility

    require_passing_checks(context, base_model.key, ["tokenizer_integrity"],
                           recipe=recipe.load().name)
    table = fertility(tokenizer_for(storage, recipe), _fertility_sample(storage))
    storage.write_table("tokenizer_report", table.with_columns(recipe=pl.lit(recipe.load().name)))
    return dg.MaterializeResult(
        metadata={**_meta(recipe), "fertility": dg.MetadataValue.md(markdown_table(table)),
                  **{f"tokens_per_char_{r['language']}": round(r["tokens_per_char"], 3)
                     for r in table.iter_rows(named=True)}}
    )


@dg.asset(
    deps=[pretraining_mix, english_replay, base_model],
    group_name=GROUP,
    kinds={"parquet"},
    owners=["team:ml"],
    tags={"stage": "training"},
    description="The pretraining mix tokenized and packed to the recipe's sequence length, "
    "as parquet shards with a manifest (tokens per language and source, replay share, split).",
)
def cpt_shards(
    context: dg.AssetExecutionContext, storage: VazhiStorage, recipe: RecipeResource
) -> dg.MaterializeResult:
    from vazhi_assets.training.shards import build_cpt_shards

    require_passing_checks(context, base_model.key, ["tokenizer_integrity"],
                           recipe=recipe.load().name)
    spec = recipe.load()
    out = recipe.workdir(storage.base, "cpt_shards")
    if not spec.has_cpt:
        shutil.rmtree(out, ignore_errors=True)
        return dg.MaterializeResult(metadata={**_meta(recipe), "skipped": "recipe has no CPT"})
    mix = storage.read_table("pretraining_mix")
    if mix is None:
        raise dg.Failure("pretraining_mix is missing; materialize the corpus assets first")
    target = mix.filter((pl.col("role") == "target")
                        & pl.col("language").is_in(spec.data.languages))
    replay = storage.read_table("english_replay")
    mixed_replay = mix.filter(pl.col("role") == "replay").select(replay.columns)
    pool = pl.concat([mixed_replay, replay.filter(~pl.col("doc_id").is_in(mixed_replay["doc_id"]))
                      .sort("doc_id")])
    staging = out.parent / ".cpt_shards.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    manifest = build_cpt_shards(
        target, pool, tokenizer_for(storage, recipe), staging,
        seq_length=spec.model.max_seq_length, val_fraction=spec.data.val_fraction,
        replay_ratio=spec.data.replay_ratio, tokenizer_name=spec.model.name,
    )
    shutil.rmtree(out, ignore_errors=True)
    staging.rename(out)
    if manifest.blocks.get("train", 0) == 0 or manifest.blocks.get("val", 0) == 0:
        raise dg.Failure(f"too little text for {spec.model.max_seq_length}-token blocks: "
                         f"{manifest.blocks}")
    rows = [{"split": s, "language": lang, "tokens": n}
            for s, langs in manifest.tokens_by_split_language.items()
            for lang, n in sorted(langs.items())]
    return dg.MaterializeResult(
        metadata={
            **_meta(recipe),
            "path": dg.MetadataValue.path(str(out)),
            "seq_length": manifest.seq_length,
            "train_blocks": manifest.blocks["train"],
            "val_blocks": manifest.blocks["val"],
            "train_tokens": manifest.blocks["train"] * manifest.seq_length,
            "replay_token_share": manifest.replay_token_share,
            "replay_ratio_requested": spec.data.replay_ratio,
            "tokens": dg.MetadataValue.md(markdown_table(pl.DataFrame(rows))),
            "tokens_by_source": dg.MetadataValue.json(manifest.tokens_by_source),
            "dropped_tail_tokens": manifest.dropped_tail_tokens,
        }
    )


@dg.asset(
    deps=[feedback_sft_examples],
    group_name=GROUP,
    kinds={"polars", "parquet"},
    owners=["team:ml"],
    tags={"stage": "training"},
    description="Instruction data normalised to chat messages from every seed format "
    "(ChatML JSONL, Alpaca JSONL/.xlsx, Thirukkural citations, UDHR translation pairs), "
    "language-verified and de-duplicated at ROUGE-L ≥ 0.7.",
)
def sft_dataset(
    context: dg.AssetExecutionContext, storage: VazhiStorage, recipe: RecipeResource
) -> dg.MaterializeResult:
    from vazhi_assets.training import sft_table as sft_data
    from vazhi_assets.training.sft_stage import recipe_sft_samples

    feedback = storage.read_table("feedback_sft_examples")
    build, samples, replay = recipe_sft_samples(
        recipe.load(), sft_data.frame_to_samples(feedback) if feedback is not None else [])
    frame = sft_data.samples_to_frame(samples)
    path = storage.write_table("sft_dataset", frame)
    counts = frame.group_by("language", "format").agg(samples=pl.len()).sort("language",
                                                                             "format")
    return dg.MaterializeResult(
        metadata={
            **_meta(recipe),
            "dagster/row_count": frame.height,
            "path": dg.MetadataValue.path(str(path)),
            "samples": dg.MetadataValue.md(markdown_table(counts)),
            "dropped": len(build.dropped),
            "flagged": len(build.flagged),
            "drop_reasons": dg.MetadataValue.json(
                sorted({f"{d.stage}: {d.reason}" for d in build.dropped})[:20]),
            "stats": dg.MetadataValue.json(build.stats),
            **replay,
        }
    )


@dg.asset_check(asset=sft_dataset, name="chatml_validity", blocking=True,
                description="Every sample has non-empty user and assistant turns in a valid "
                "order, no template markers in content, one format (messages) throughout.")
def chatml_validity(storage: VazhiStorage) -> dg.AssetCheckResult:
    from vazhi_assets.training import sft_table as sft_data

    frame = storage.read_table("sft_dataset")
    problems = sft_data.validate_chatml(sft_data.frame_to_samples(frame))
    return dg.AssetCheckResult(
        passed=not problems,
        metadata={"samples": frame.height, "invalid_samples": len(problems),
                  "examples": dg.MetadataValue.json([str(p) for p in problems[:10]])},
    )


@dg.asset_check(asset=sft_dataset, name="sft_script_purity", blocking=True,
                description="Assistant targets are in their labelled language's script "
                "(mean purity ≥ 0.9 per language, none below 0.5).")
def sft_script_purity(storage: VazhiStorage) -> dg.AssetCheckResult:
    frame = storage.read_table("sft_dataset")
    per_language = frame.group_by("language").agg(
        samples=pl.len(), mean=pl.col("purity").mean(), min=pl.col("purity").min()
    ).sort("language")
    bad = per_language.filter((pl.col("mean") < 0.9) | (pl.col("min") < 0.5))
    return dg.AssetCheckResult(
        passed=bad.is_empty(),
        metadata={"purity": dg.MetadataValue.md(markdown_table(per_language))},
    )


class SftRenderConfig(dg.Config):
    """Override the training chat template (it must carry ``{% generation %}`` blocks)."""

    chat_template: str | None = None


@dg.asset(
    deps=[sft_dataset, base_model],
    group_name=GROUP,
    kinds={"parquet"},
    owners=["team:ml"],
    tags={"stage": "training"},
    description="SFT samples rendered with the model's chat template, with assistant-only "
    "loss masks, split train/val.",
)
def sft_shards(
    context: dg.AssetExecutionContext, storage: VazhiStorage, recipe: RecipeResource,
    config: SftRenderConfig,
) -> dg.MaterializeResult:
    from vazhi_assets.training import sft_table as sft_data
    from vazhi_assets.training.sft_stage import render_sft_shards

    require_passing_checks(context, sft_dataset.key, ["chatml_validity", "sft_script_purity"],
                           recipe=recipe.load().name)
    require_passing_checks(context, base_model.key, ["tokenizer_integrity"],
                           recipe=recipe.load().name)
    spec = recipe.load()
    samples = sft_data.frame_to_samples(storage.read_table("sft_dataset"))
    template = config.chat_template or chat_templates(storage, recipe)[0]
    out = recipe.workdir(storage.base, "sft_shards")
    if not samples:
        raise dg.Failure("sft_dataset is empty: no source of data.sft_sources has samples in "
                         f"data.languages {spec.data.languages}")
    _, stats = render_sft_shards(samples, tokenizer_for(storage, recipe), template, spec, out)
    atomic_write_text(out / "stats.json", json.dumps(stats, indent=2))
    return dg.MaterializeResult(metadata={**_meta(recipe), **stats,
                                          "path": dg.MetadataValue.path(str(out))})


@dg.asset_check(asset=sft_shards, name="mask_coverage", blocking=True,
                description="Every sample keeps ≥ 1 trained (assistant) token after truncation "
                "and the training template renders exactly like the stock one.")
def mask_coverage(storage: VazhiStorage, recipe: RecipeResource) -> dg.AssetCheckResult:
    out = recipe.workdir(storage.base, "sft_shards")
    stats = json.loads((out / "stats.json").read_text())
    frame = pl.concat([pl.read_parquet(out / f"{s}.parquet") for s in ("train", "val")])
    per_language = frame.group_by("language").agg(
        samples=pl.len(), trained_share=pl.col("trained_tokens").sum() / pl.col("n_tokens").sum(),
        truncated=(pl.col("assistant_tokens_truncated") > 0).sum(),
    ).sort("language")
    passed = (stats["samples_without_trained_tokens"] == 0
              and stats["template_disagreements"] == 0 and stats["trained_token_share"] > 0)
    return dg.AssetCheckResult(
        passed=passed,
        metadata={**stats, "per_language": dg.MetadataValue.md(markdown_table(per_language))},
    )


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


def _train_metadata(recipe: RecipeResource, result: object, title: str) -> dict:
    return {
        **_meta(recipe),
        "global_step": result.global_step,
        "resumed_from": result.resumed_from or "",
        "seconds": result.seconds,
        "steps_per_second": result.steps_per_second,
        "tokens_per_second": result.tokens_per_second,
        "trainable_parameters": result.trainable_parameters,
        "trainable_share": round(result.trainable_parameters / result.total_parameters, 5),
        "final_eval_loss": result.final_eval_loss,
        "final_eval_perplexity": ev_perplexity(result.final_eval_loss),
        "loss_curve": dg.MetadataValue.md(_loss_chart(result, title)),
        "loss_history": dg.MetadataValue.text(_loss_text(result)),
        "adapter": dg.MetadataValue.path(result.adapter_dir),
    }


def ev_perplexity(loss: float | None) -> float | None:
    from vazhi_assets.training.train import perplexity_from_loss

    return perplexity_from_loss(loss)


@dg.asset(
    deps=[cpt_shards, sft_shards, base_model],
    group_name=GROUP,
    kinds={"peft", "trl"},
    owners=["team:ml"],
    tags={"stage": "training"},
    description="A few-step CPT → SFT → merge → generate rehearsal on a slice; the full "
    "training runs only when it produced target-script answers.",
)
def training_preflight(
    context: dg.AssetExecutionContext, storage: VazhiStorage, recipe: RecipeResource
) -> dg.MaterializeResult:
    from vazhi_assets.training.preflight import run_preflight

    require_passing_checks(context, sft_shards.key, ["mask_coverage"], recipe=recipe.load().name)
    spec = recipe.load()
    work = recipe.workdir(storage.base, "training_preflight")
    result = run_preflight(
        spec, _base_dir(storage, recipe),
        recipe.workdir(storage.base, "cpt_shards") if spec.has_cpt else None,
        recipe.workdir(storage.base, "sft_shards"), work / "run",
        tokenizer_for(storage, recipe), log=context.log.info,
    )
    atomic_write_text(work / "result.json", json.dumps(result.__dict__, ensure_ascii=False,
                                                       indent=2))
    return dg.MaterializeResult(
        metadata={
            **_meta(recipe),
            "passed": result.passed,
            "seconds": dg.MetadataValue.json(result.seconds),
            "answers": dg.MetadataValue.md(markdown_table(pl.DataFrame(result.answers))),
            "problems": dg.MetadataValue.json(result.problems),
        }
    )


@dg.asset_check(asset=training_preflight, name="preflight_passed", blocking=True,
                description="The rehearsal trained, merged and answered in the target script.")
def preflight_passed(storage: VazhiStorage, recipe: RecipeResource) -> dg.AssetCheckResult:
    path = recipe.workdir(storage.base, "training_preflight") / "result.json"
    result = json.loads(path.read_text(encoding="utf-8"))
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
    deps=[cpt_shards, base_model, training_preflight],
    group_name=GROUP,
    kinds={"peft", "pytorch"},
    owners=["team:ml"],
    tags={"stage": "training"},
    description="LoRA continued pre-training on the packed mix (cosine schedule, warmup, "
    "clipping, accumulation, eval on val shards, checkpoints, resume after a crash).",
)
def cpt_adapter(
    context: dg.AssetExecutionContext, storage: VazhiStorage, recipe: RecipeResource,
    config: TrainingConfig,
) -> dg.MaterializeResult:
    from vazhi_assets.training.train import load_base, load_with_adapters, train_cpt

    require_passing_checks(context, training_preflight.key, ["preflight_passed"],
                           recipe=recipe.load().name)
    spec = recipe.load()
    if not spec.has_cpt:
        shutil.rmtree(recipe.workdir(storage.base, "cpt_adapter"), ignore_errors=True)
        return dg.MaterializeResult(metadata={**_meta(recipe), "skipped": "recipe has no CPT"})
    base_dir = _base_dir(storage, recipe)
    shards = recipe.workdir(storage.base, "cpt_shards")
    result = train_cpt(base_dir, shards, recipe.workdir(storage.base, "cpt_adapter"),
                       model_spec=spec.model, lora=spec.cpt_lora, schedule=spec.cpt,
                       log=context.log.info)
    blocks = _val_blocks_by_language(shards, config.perplexity_blocks)
    base = load_base(base_dir, spec.model)
    adapted = load_with_adapters(base_dir, [Path(result.adapter_dir)], spec.model)
    rows = [{"language": lang, "blocks": len(b),
             "base_perplexity": round(ev.block_perplexity(base, b), 3),
             "cpt_perplexity": round(ev.block_perplexity(adapted, b), 3)}
            for lang, b in sorted(blocks.items())]
    table = pl.DataFrame(rows)
    storage.write_table("heldout_perplexity", table.with_columns(
        recipe=pl.lit(spec.name), stage=pl.lit("cpt")))
    return dg.MaterializeResult(
        metadata={**_train_metadata(recipe, result, "CPT loss"),
                  "heldout_perplexity": dg.MetadataValue.md(markdown_table(table)),
                  **{f"ppl_{r['language']}_base": r["base_perplexity"] for r in rows},
                  **{f"ppl_{r['language']}_cpt": r["cpt_perplexity"] for r in rows}}
    )


@dg.asset(
    deps=[cpt_adapter, sft_shards],
    group_name=GROUP,
    kinds={"trl", "peft"},
    owners=["team:ml"],
    tags={"stage": "training"},
    description="SFT with TRL on top of the CPT adapter (merged into the base), assistant-only "
    "loss on the rendered chat samples.",
)
def sft_adapter(
    context: dg.AssetExecutionContext, storage: VazhiStorage, recipe: RecipeResource
) -> dg.MaterializeResult:
    from vazhi_assets.training.train import train_sft

    require_passing_checks(context, sft_shards.key, ["mask_coverage"], recipe=recipe.load().name)
    spec = recipe.load()
    cpt_dir = recipe.workdir(storage.base, "cpt_adapter") / "adapter" if spec.has_cpt else None
    result = train_sft(
        _base_dir(storage, recipe), cpt_dir, recipe.workdir(storage.base, "sft_shards"),
        recipe.workdir(storage.base, "sft_adapter"), model_spec=spec.model, lora=spec.sft_lora,
        schedule=spec.sft, tokenizer=tokenizer_for(storage, recipe), log=context.log.info,
    )
    return dg.MaterializeResult(metadata=_train_metadata(recipe, result, "SFT loss"))


@dg.asset(
    deps=[base_model, cpt_adapter, sft_adapter],
    group_name=GROUP,
    kinds={"transformers", "safetensors"},
    owners=["team:ml"],
    tags={"stage": "training"},
    description="Base reloaded in fp16 with the CPT and SFT adapters merged; saved with "
    "tokenizer, chat template and the recipe's generation defaults.",
)
def merged_model(
    context: dg.AssetExecutionContext, storage: VazhiStorage, recipe: RecipeResource
) -> dg.MaterializeResult:
    from vazhi_assets.training.merge import end_of_turn_ids, merge_adapter_fp16

    spec = recipe.load()
    tokenizer = tokenizer_for(storage, recipe)
    adapters = [recipe.workdir(storage.base, name) / "adapter"
                for name in (("cpt_adapter",) if spec.has_cpt else ()) + ("sft_adapter",)]
    out = recipe.workdir(storage.base, "merged_model") / "model"
    info = merge_adapter_fp16(_base_dir(storage, recipe), adapters, out, tokenizer=tokenizer,
                              inference=spec.inference, dtype=spec.export.merge_dtype)
    comparison = _answers_before_after(spec, tokenizer, _base_dir(storage, recipe), out,
                                       end_of_turn_ids(tokenizer))
    atomic_write_text(out.parent / "answers.json",
                      json.dumps(comparison.to_dicts(), ensure_ascii=False, indent=2))
    purity = comparison.group_by("language", "model").agg(pl.col("purity").mean()).sort(
        "language", "model")
    feedback = feedback_rows_used(storage, recipe.workdir(storage.base, "sft_shards"))
    atomic_write_text(out.parent / "feedback_rows.json", json.dumps(feedback, indent=2))
    context.log.info(f"merged model at {out} ({info['bytes'] / 1e6:.0f} MB), "
                     f"{len(feedback)} feedback rows in its SFT set")
    return dg.MaterializeResult(
        metadata={**_meta(recipe), "path": dg.MetadataValue.path(str(out)),
                  "dtype": info["dtype"], "size_mb": round(info["bytes"] / 1e6, 1),
                  "stop_token_ids": dg.MetadataValue.json(info["stop_token_ids"]),
                  "feedback_rows": dg.MetadataValue.json(feedback),
                  "feedback_row_count": len(feedback),
                  "answer_purity_before_after": dg.MetadataValue.md(markdown_table(purity)),
                  "answers": dg.MetadataValue.md(markdown_table(comparison))}
    )


def _answers_before_after(
    spec: Recipe, tokenizer: object, base_dir: Path, merged_dir: Path, stops: list[int]
) -> pl.DataFrame:
    """Greedy answers of the base and the merged model to the golden prompts."""
    from transformers import AutoModelForCausalLM

    prompts = ev.golden_prompts()
    rows = []
    for label, path in (("base", base_dir), ("merged", merged_dir)):
        model = AutoModelForCausalLM.from_pretrained(str(path), dtype="float32")
        for language in spec.data.languages:
            # as the merged model ships (generation_config) and as the GGUF probe asks
            answers = ev.greedy_answers(model, tokenizer, prompts[language], 64, stops,
                                        spec.inference.repetition_penalty)
            for check in ev.check_answers(language, prompts[language], answers):
                rows.append({"model": label, "language": language, "prompt": check.prompt,
                             "answer": check.answer, "purity": check.purity,
                             "loop": check.loop, "echo": check.echo})
    return pl.DataFrame(rows)


@dg.asset_check(asset=merged_model, name="merged_model_sanity", blocking=True,
                description="Greedy answers to golden prompts (with the repetition penalty the "
                "model ships) are non-empty, loop-free and mostly in the target script (mean "
                "purity ≥ 0.5 per language).")
def merged_model_sanity(storage: VazhiStorage, recipe: RecipeResource) -> dg.AssetCheckResult:
    path = recipe.workdir(storage.base, "merged_model") / "answers.json"
    answers = [row for row in json.loads(path.read_text(encoding="utf-8"))
               if row["model"] == "merged"]
    passed, per_language = ev.answers_verdict(answers)
    return dg.AssetCheckResult(
        passed=passed,
        metadata={"per_language": dg.MetadataValue.md(markdown_table(per_language))},
    )


@dg.asset_check(asset=merged_model, name="answers_add_content", blocking=False,
                description="Warns when most golden answers only repeat the prompt: the model "
                "is in the right script but has not learned to answer yet.")
def answers_add_content(storage: VazhiStorage, recipe: RecipeResource) -> dg.AssetCheckResult:
    path = recipe.workdir(storage.base, "merged_model") / "answers.json"
    answers = pl.DataFrame(json.loads(path.read_text(encoding="utf-8")))
    echo = answers.group_by("model").agg(echo_share=pl.col("echo").mean()).sort("model")
    merged = echo.filter(pl.col("model") == "merged")["echo_share"].to_list()
    return dg.AssetCheckResult(
        passed=bool(merged) and merged[0] < 0.5,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"echo_share": dg.MetadataValue.md(markdown_table(echo))},
    )


TRAINING_ASSETS = [base_model, tokenizer_report, cpt_shards, sft_dataset, sft_shards,
                   training_preflight, cpt_adapter, sft_adapter, merged_model]
TRAINING_CHECKS = [tokenizer_integrity, chatml_validity, sft_script_purity, mask_coverage,
                   preflight_passed, merged_model_sanity, answers_add_content]
