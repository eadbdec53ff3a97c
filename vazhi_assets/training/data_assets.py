"""Model-half data assets, one partition per recipe: base model, tokenizer report, CPT shards,
SFT dataset and SFT shards, with the checks that guard them."""


import json
import shutil
import tempfile
from pathlib import Path

import dagster as dg
import polars as pl

from vazhi_assets.corpus.assets import english_replay, pretraining_mix
from vazhi_assets.feedback.assets import feedback_sft_examples
from vazhi_assets.gates import blocking_check, consume, consumed_metadata
from vazhi_assets.identity import code_version, dir_version, model_identity, table_version
from vazhi_assets.metadata import markdown_table
from vazhi_assets.resources import VazhiStorage
from vazhi_assets.storage import atomic_write_text, make_shareable
from vazhi_assets.training.base_model import load_tokenizer, resolve_shared_base_model
from vazhi_assets.training.recipe_assets import RecipeRun, load_snapshot, recipe, recipe_run
from vazhi_assets.training.recipe_registry import RECIPE_PARTITIONS
from vazhi_assets.training.recipe_tokenizer import recipe_tokenizer
from vazhi_assets.training.tokenizer_checks import check_tokenizer, prepare_padding
from vazhi_assets.training.workspace import RecipeWork

GROUP = "training"
PARTS = RECIPE_PARTITIONS


def _asset(**kwargs: object) -> dict:
    return {"partitions_def": PARTS, "group_name": GROUP, "owners": ["team:ml"],
            "tags": {"stage": "training"}, **kwargs}


def replace_dir(staging: Path, target: Path) -> None:
    """Swap a finished ``staging`` directory into ``target`` (the old one removed after)."""
    make_shareable(staging)
    old = target.with_name(f".{target.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    staging.rename(target)
    shutil.rmtree(old, ignore_errors=True)


def staging_dir(target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.tmp-"))


def read_base(context: dg.AssetExecutionContext, run: RecipeRun) -> tuple[dict, object]:
    """The partition's base model after its tokenizer check: identity and what was consumed."""
    identity = model_identity(run.work.base_model)
    consumed = consume(context, "base_model", partition=run.name,
                       content_hash=identity["content_hash"])
    return identity, consumed


@dg.asset(
    **_asset(kinds={"transformers", "safetensors"},
             code_version=code_version("vazhi_assets.training.base_model", after=[recipe])),
    deps=[recipe],
    description="The recipe's base model resolved into a local safetensors directory (offline "
    "SmolLM2-135M-Instruct by default; hub ids and local paths use the same loader).",
)
def base_model(context: dg.AssetExecutionContext, storage: VazhiStorage) -> dg.MaterializeResult:
    from vazhi_assets.training.train import cuda_available

    run = recipe_run(context, storage)
    problems = run.spec.machine_problems(cuda_available())
    if problems:
        raise dg.Failure("recipe cannot run on this machine:\n" + "\n".join(problems))
    info = resolve_shared_base_model(run.spec.model, storage.base / "base_models",
                                     run.work.base_model)
    identity = model_identity(run.work.base_model)
    context.log.info(f"base model {info.name}: {info.parameters:,} parameters at {info.path}")
    return dg.MaterializeResult(
        metadata={**run.tags(), **info.as_metadata(), **identity,
                  **consumed_metadata([run.consumed]),
                  "path": dg.MetadataValue.path(info.path)},
        data_version=dg.DataVersion(identity["content_hash"]),
    )


@blocking_check(asset=base_model, name="tokenizer_integrity",
                description="Contiguous vocabulary, special tokens and chat template present, "
                "padding set without adding tokens or touching eos/bos.")
def tokenizer_integrity(
    context: dg.AssetCheckExecutionContext, storage: VazhiStorage
) -> dg.AssetCheckResult:
    spec = load_snapshot(storage, context.partition_key)
    work = RecipeWork.of(storage.base, spec.name)
    tokenizer = load_tokenizer(work.base_model, spec.model.max_seq_length)
    prepare_padding(tokenizer)
    report = check_tokenizer(tokenizer)
    return dg.AssetCheckResult(
        passed=report.passed,
        metadata={**report.metadata(), "problems": dg.MetadataValue.json(report.problems)},
    )


def _fertility_sample(frames: dict[str, pl.DataFrame], per_language: int = 40
                      ) -> dict[str, list[str]]:
    from vazhi_assets.training.shards import split_of

    texts: dict[str, list[str]] = {}
    for language, frame in frames.items():
        held = [t for d, t in zip(frame["doc_id"], frame["text"], strict=True)
                if split_of(d, 0.05) == "val" or len(frame) < 40]
        texts[language] = (held or frame["text"].to_list())[:per_language]
    return texts


@dg.asset(
    **_asset(kinds={"transformers"},
             code_version=code_version("vazhi_assets.training.fertility",
                                       after=[base_model, english_replay])),
    deps=[base_model, "cleaned_urdu_corpus", "cleaned_tamil_corpus", english_replay],
    description="Tokenizer fertility (tokens per character and per word) on held-out Urdu, "
    "Tamil and English text: how much of a context window each language costs.",
)
def tokenizer_report(
    context: dg.AssetExecutionContext, storage: VazhiStorage
) -> dg.MaterializeResult:
    from vazhi_assets.training.fertility import fertility

    run = recipe_run(context, storage)
    _, read_base_model = read_base(context, run)
    frames, consumed = {}, [run.consumed, read_base_model]
    for name, language in (("cleaned_urdu_corpus", "ur"), ("cleaned_tamil_corpus", "ta"),
                           ("english_replay", "en")):
        if storage.read_table(name) is None:
            continue
        frames[language], read = storage.read_checked(context, name, "doc_id")
        consumed.append(read)
    table = fertility(recipe_tokenizer(run.spec, run.work.base_model).tokenizer,
                      _fertility_sample(frames))
    table = table.with_columns(recipe=pl.lit(run.name))
    storage.write_table("tokenizer_report", table, run.name)
    content = table_version(table, "language")
    return dg.MaterializeResult(
        data_version=dg.DataVersion(content),
        metadata={**run.tags(), "content_hash": content, **consumed_metadata(consumed),
                  "fertility": dg.MetadataValue.md(markdown_table(table)),
                  **{f"tokens_per_char_{r['language']}": round(r["tokens_per_char"], 3)
                     for r in table.iter_rows(named=True)}}
    )


NO_CPT = "no-cpt"


@dg.asset(
    **_asset(kinds={"parquet"},
             code_version=code_version("vazhi_assets.training.shards",
                                       after=[base_model, pretraining_mix, english_replay])),
    deps=[pretraining_mix, english_replay, base_model],
    description="The pretraining mix tokenized and packed to the recipe's sequence length, "
    "as parquet shards with a manifest (tokens per language and source, replay share, split) "
    "and the list of every packed document (its lineage back to the crawled page).",
)
def cpt_shards(context: dg.AssetExecutionContext, storage: VazhiStorage) -> dg.MaterializeResult:
    from vazhi_assets.training.shards import build_cpt_shards

    run = recipe_run(context, storage)
    spec, out = run.spec, run.work.cpt_shards
    _, read_base_model = read_base(context, run)
    if not spec.has_cpt:
        shutil.rmtree(out, ignore_errors=True)
        return dg.MaterializeResult(
            data_version=dg.DataVersion(NO_CPT),
            metadata={**run.tags(), "content_hash": NO_CPT, "skipped": "recipe has no CPT",
                      **consumed_metadata([run.consumed, read_base_model])})
    mix, read_mix = storage.read_checked(context, pretraining_mix, "doc_id")
    replay, read_replay = storage.read_checked(context, english_replay, "doc_id")
    target = mix.filter((pl.col("role") == "target")
                        & pl.col("language").is_in(spec.data.languages))
    mixed_replay = mix.filter(pl.col("role") == "replay").select(replay.columns)
    pool = pl.concat([mixed_replay, replay.filter(~pl.col("doc_id").is_in(mixed_replay["doc_id"]))
                      .sort("doc_id")])
    staging = staging_dir(out)
    try:
        manifest = build_cpt_shards(
            target, pool, recipe_tokenizer(spec, run.work.base_model).tokenizer, staging,
            seq_length=spec.model.max_seq_length, val_fraction=spec.data.val_fraction,
            replay_ratio=spec.data.replay_ratio, tokenizer_name=spec.model.name,
        )
        if manifest.blocks.get("train", 0) == 0 or manifest.blocks.get("val", 0) == 0:
            raise dg.Failure(f"too little text for {spec.model.max_seq_length}-token blocks: "
                             f"{manifest.blocks}; the shards of the last good run are kept")
        replace_dir(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    content = dir_version(out)
    rows = [{"split": s, "language": lang, "tokens": n}
            for s, langs in manifest.tokens_by_split_language.items()
            for lang, n in sorted(langs.items())]
    return dg.MaterializeResult(
        data_version=dg.DataVersion(content),
        metadata={
            **run.tags(), "content_hash": content,
            **consumed_metadata([run.consumed, read_base_model, read_mix, read_replay]),
            "path": dg.MetadataValue.path(str(out)),
            "seq_length": manifest.seq_length,
            "train_blocks": manifest.blocks["train"],
            "val_blocks": manifest.blocks["val"],
            "train_tokens": manifest.blocks["train"] * manifest.seq_length,
            "documents": dg.MetadataValue.json(manifest.documents_by_split),
            "replay_token_share": manifest.replay_token_share,
            "replay_ratio_requested": spec.data.replay_ratio,
            "tokens": dg.MetadataValue.md(markdown_table(pl.DataFrame(rows))),
            "tokens_by_source": dg.MetadataValue.json(manifest.tokens_by_source),
            "dropped_tail_tokens": manifest.dropped_tail_tokens,
        }
    )


@dg.asset(
    **_asset(kinds={"polars", "parquet"},
             code_version=code_version("vazhi_assets.training.sft_build",
                                       "vazhi_assets.training.sft_stage",
                                       after=[feedback_sft_examples])),
    deps=[feedback_sft_examples],
    description="Instruction data normalised to chat messages from every seed format "
    "(ChatML JSONL, Alpaca JSONL/.xlsx, Thirukkural citations, UDHR translation pairs), "
    "language-verified and de-duplicated at ROUGE-L ≥ 0.7.",
)
def sft_dataset(context: dg.AssetExecutionContext, storage: VazhiStorage) -> dg.MaterializeResult:
    from vazhi_assets.training import sft_table
    from vazhi_assets.training.sft_stage import recipe_sft_samples

    run = recipe_run(context, storage)
    feedback, read_feedback = storage.read_checked(context, feedback_sft_examples, "sample_id",
                                                   partition=run.name)
    build, samples, replay = recipe_sft_samples(run.spec, sft_table.frame_to_samples(feedback))
    frame = sft_table.samples_to_frame(samples)
    path = storage.write_table("sft_dataset", frame, run.name)
    counts = frame.group_by("language", "format").agg(samples=pl.len()).sort("language",
                                                                             "format")
    content = table_version(frame, "sample_id")
    return dg.MaterializeResult(
        data_version=dg.DataVersion(content),
        metadata={
            **run.tags(), "content_hash": content,
            **consumed_metadata([run.consumed, read_feedback]),
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


def _sft_frame(storage: VazhiStorage, context: dg.AssetCheckExecutionContext) -> pl.DataFrame:
    frame = storage.read_table("sft_dataset", context.partition_key)
    if frame is None:
        raise dg.Failure(f"sft_dataset[{context.partition_key}] has no file")
    return frame


@blocking_check(asset=sft_dataset, name="chatml_validity",
                description="Every sample has non-empty user and assistant turns in a valid "
                "order, no template markers in content, one format (messages) throughout.")
def chatml_validity(
    context: dg.AssetCheckExecutionContext, storage: VazhiStorage
) -> dg.AssetCheckResult:
    from vazhi_assets.training import sft_table

    frame = _sft_frame(storage, context)
    problems = sft_table.validate_chatml(sft_table.frame_to_samples(frame))
    return dg.AssetCheckResult(
        passed=not problems,
        metadata={"samples": frame.height, "invalid_samples": len(problems),
                  "examples": dg.MetadataValue.json([str(p) for p in problems[:10]])},
    )


@blocking_check(asset=sft_dataset, name="sft_script_purity",
                description="Assistant targets are in their labelled language's script "
                "(mean purity ≥ 0.9 per language, none below 0.5).")
def sft_script_purity(
    context: dg.AssetCheckExecutionContext, storage: VazhiStorage
) -> dg.AssetCheckResult:
    frame = _sft_frame(storage, context)
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
    **_asset(kinds={"parquet"},
             code_version=code_version("vazhi_assets.training.sft_stage",
                                       "vazhi_assets.training.sft_render",
                                       after=[sft_dataset, base_model])),
    deps=[sft_dataset, base_model],
    description="SFT samples rendered with the model's chat template, with assistant-only "
    "loss masks, split train/val; each row keeps its sample's source and feedback row.",
)
def sft_shards(
    context: dg.AssetExecutionContext, storage: VazhiStorage, config: SftRenderConfig
) -> dg.MaterializeResult:
    from vazhi_assets.training import sft_table
    from vazhi_assets.training.sft_stage import render_sft_shards

    run = recipe_run(context, storage)
    spec, out = run.spec, run.work.sft_shards
    frame, read_dataset = storage.read_checked(context, sft_dataset, "sample_id",
                                               partition=run.name)
    _, read_base_model = read_base(context, run)
    samples = sft_table.frame_to_samples(frame)
    if not samples:
        raise dg.Failure("sft_dataset is empty: no source of data.sft_sources has samples in "
                         f"data.languages {spec.data.languages}")
    tokens = recipe_tokenizer(spec, run.work.base_model)
    template = config.chat_template or tokens.training_template
    staging = staging_dir(out)
    try:
        _, stats = render_sft_shards(samples, tokens.tokenizer, template, spec, staging)
        atomic_write_text(staging / "stats.json", json.dumps(stats, indent=2))
        replace_dir(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    content = dir_version(out)
    return dg.MaterializeResult(
        data_version=dg.DataVersion(content),
        metadata={**run.tags(), **stats, "content_hash": content,
                  **consumed_metadata([run.consumed, read_dataset, read_base_model]),
                  "path": dg.MetadataValue.path(str(out))})


@blocking_check(asset=sft_shards, name="mask_coverage",
                description="Every sample keeps ≥ 1 trained (assistant) token after truncation "
                "and the training template renders exactly like the stock one.")
def mask_coverage(
    context: dg.AssetCheckExecutionContext, storage: VazhiStorage
) -> dg.AssetCheckResult:
    out = RecipeWork.of(storage.base, context.partition_key).sft_shards
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


DATA_ASSETS = [base_model, tokenizer_report, cpt_shards, sft_dataset, sft_shards]
DATA_CHECKS = [tokenizer_integrity, chatml_validity, sft_script_purity, mask_coverage]
