"""Benchmark rows for every model variant, kept with their lineage, and the model card."""

import json
import os
import subprocess
import time
from datetime import UTC, datetime

import dagster as dg
import polars as pl

from vazhi_assets.export.assets import FILE_TYPES, GGUF_ASSETS, gguf_path
from vazhi_assets.gates import require_passing_checks
from vazhi_assets.metadata import markdown_table, png_markdown
from vazhi_assets.resources import VazhiStorage
from vazhi_assets.settings import PROJECT_ROOT
from vazhi_assets.storage import atomic_write_text
from vazhi_assets.training.ablation import ABLATIONS
from vazhi_assets.training.assets import (
    base_model,
    chat_templates,
    cpt_adapter,
    heldout_texts,
    merged_model,
    sft_shards,
    tokenizer_for,
)
from vazhi_assets.training.resources import RecipeResource

GROUP = "evaluation"
LINEAGE_ASSETS = ["raw_crawl", "deduplicated_corpus", "pretraining_mix", "cpt_shards",
                  "sft_dataset", "cpt_adapter", "sft_adapter", "merged_model",
                  *[a.key.to_user_string() for a in GGUF_ASSETS.values()]]


def code_version() -> str:
    """The git commit of the checkout (with ``+dirty`` for local edits), else the package
    version."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=PROJECT_ROOT,
                              capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=PROJECT_ROOT, capture_output=True, text=True).stdout.strip()
        return head + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        from importlib.metadata import version

        return f"vazhi_assets=={version('vazhi_assets')}"


def lineage(instance: dg.DagsterInstance) -> dict[str, str]:
    """Run id of the latest materialization of each upstream asset."""
    out = {}
    for name in LINEAGE_ASSETS:
        event = instance.get_latest_materialization_event(dg.AssetKey(name))
        if event is not None:
            out[name] = event.run_id
    return out


def _variants(storage: VazhiStorage, recipe: RecipeResource) -> list[tuple[str, object]]:
    from vazhi_assets.evaluation.runners import HFRunner, LlamaCppRunner

    spec = recipe.load()
    models = storage.base / "models" / spec.name
    base_dir = models / "base_model" / "model"
    cpt = [("cpt", lambda: HFRunner(base_dir, name="cpt",
                                    adapters=[models / "cpt_adapter" / "adapter"]))]
    return [
        ("base", lambda: HFRunner(base_dir, name="base")),
        *(cpt if spec.has_cpt else []),
        ("sft_merged_fp16", lambda: HFRunner(models / "merged_model" / "model",
                                             name="sft_merged_fp16")),
        *[(f"gguf_{t.lower()}", (lambda t=t: LlamaCppRunner(gguf_path(storage, recipe, t),
                                                            name=f"gguf_{t.lower()}")))
          for t in FILE_TYPES],
    ]


def _stamp(context: dg.AssetExecutionContext, spec: object) -> dict[str, str]:
    """Columns that tie a benchmark row to its run, recipe, code and upstream data."""
    return {
        "run_id": context.run_id,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "recipe": spec.name,
        "recipe_hash": spec.content_hash(),
        "code_version": code_version(),
        "lineage": json.dumps(lineage(context.instance), sort_keys=True),
    }


def _chart(rows: pl.DataFrame) -> str:
    languages = [c for c in ("ppl_ur", "ppl_ta", "ppl_en") if c in rows.columns]

    def draw(ax: object) -> None:
        variants = rows["variant"].to_list()
        width = 0.8 / max(1, len(languages))
        for i, column in enumerate(languages):
            xs = [x + i * width for x in range(len(variants))]
            ax.bar(xs, rows[column].fill_null(0).to_list(), width, label=column)
        ax.set_xticks([x + width for x in range(len(variants))], variants, rotation=25,
                      ha="right")
        ax.set_ylabel("held-out perplexity")
        ax.legend()

    return png_markdown(draw, "Held-out perplexity per variant", (8, 4))


@dg.asset(
    deps=[base_model, cpt_adapter, merged_model, *GGUF_ASSETS.values()],
    group_name=GROUP,
    kinds={"duckdb", "llama.cpp", "transformers"},
    owners=["team:ml"],
    tags={"stage": "evaluation"},
    description="Every variant (base, CPT, SFT-merged fp16, each GGUF) measured side by side: "
    "held-out perplexity per language, answer script purity, chrF on UDHR pairs, Thirukkural "
    "citation exact match, urdu-eval minimal pairs, size, tokens/s. Rows are appended to the "
    "DuckDB table benchmark_results with the recipe, data lineage, code version and run id.",
)
def benchmark_table(
    context: dg.AssetExecutionContext, storage: VazhiStorage, recipe: RecipeResource
) -> dg.MaterializeResult:
    from vazhi_assets.evaluation.eval_sets import load_eval_sets
    from vazhi_assets.evaluation.metrics import evaluate_variant

    spec = recipe.load()
    for file_type, asset in GGUF_ASSETS.items():
        checks = ["gguf_answers"] + (["quantization_drift"] if file_type != "F16" else [])
        require_passing_checks(context, asset.key, checks, recipe=spec.name)
    sets = load_eval_sets(heldout_texts(storage, recipe, spec.export.eval_items),
                          max_items=spec.export.eval_items)
    stamp = _stamp(context, spec)
    rows, answers = [], {}
    for name, make in _variants(storage, recipe):
        started = time.monotonic()
        with make() as runner:
            result = evaluate_variant(runner, sets, languages=spec.data.languages)
        answers[name] = result.pop("answers", [])
        rows.append({"variant": name, **stamp, **result})
        context.log.info(f"{name}: measured in {time.monotonic() - started:.0f} s")
    table = pl.DataFrame(rows)
    storage.catalog.append_rows("benchmark_results", table)
    out = recipe.workdir(storage.base, "benchmark_table")
    atomic_write_text(out / "latest.json", json.dumps(
        {"rows": rows, "answers": answers}, ensure_ascii=False, indent=2, default=str))
    shown = table.drop("run_id", "measured_at", "recipe_hash", "code_version", "lineage")
    history = storage.catalog.query(
        "select count(*) as n from benchmark_results")["n"][0]
    return dg.MaterializeResult(
        metadata={
            "recipe": spec.name,
            "recipe_hash": spec.content_hash(),
            "code_version": stamp["code_version"],
            "dagster/row_count": table.height,
            "rows_in_history": int(history),
            "benchmark": dg.MetadataValue.md(markdown_table(shown)),
            "perplexity_chart": dg.MetadataValue.md(_chart(table)),
            "lineage": dg.MetadataValue.json(json.loads(stamp["lineage"])),
        }
    )


ablation_partitions = dg.StaticPartitionsDefinition(list(ABLATIONS))


@dg.asset(
    deps=[base_model, cpt_adapter, sft_shards],
    partitions_def=ablation_partitions,
    group_name=GROUP,
    kinds={"trl", "duckdb"},
    owners=["team:ml"],
    tags={"stage": "evaluation"},
    description="One ablation per partition (SFT replay share 10/20/30%, SFT LoRA rank): the "
    "SFT stage re-trained with that one setting changed on the recipe's CPT adapter, merged, "
    "and measured like benchmark_table; rows land in benchmark_results with the ablation key. "
    "Backfill all partitions to run the sweep.",
)
def ablation_benchmark(
    context: dg.AssetExecutionContext, storage: VazhiStorage, recipe: RecipeResource
) -> dg.MaterializeResult:
    from vazhi_assets.evaluation.eval_sets import load_eval_sets
    from vazhi_assets.evaluation.metrics import evaluate_variant
    from vazhi_assets.evaluation.runners import HFRunner
    from vazhi_assets.training.ablation import run_ablation

    require_passing_checks(context, sft_shards.key, ["mask_coverage"], recipe=recipe.load().name)
    from vazhi_assets.training.sft_table import frame_to_samples

    feedback = storage.read_table("feedback_sft_examples")
    key = context.partition_key
    spec = recipe.load()
    models = storage.base / "models" / spec.name
    run = run_ablation(
        spec, key, base_dir=models / "base_model" / "model",
        cpt_adapter=models / "cpt_adapter" / "adapter" if spec.has_cpt else None,
        tokenizer=tokenizer_for(storage, recipe), template=chat_templates(storage, recipe)[0],
        work=recipe.workdir(storage.base, f"ablations/{key}"),
        extra_samples=frame_to_samples(feedback) if feedback is not None else [],
        log=context.log.info)
    sets = load_eval_sets(heldout_texts(storage, recipe, spec.export.eval_items),
                          max_items=spec.export.eval_items)
    with HFRunner(run.merged_dir, name=f"ablation:{key}") as runner:
        result = evaluate_variant(runner, sets, languages=spec.data.languages)
    result.pop("answers", None)
    row = {"variant": f"sft_merged_fp16[{key}]", **_stamp(context, run.recipe),
           "ablation": key, **result}
    storage.catalog.append_rows("benchmark_results", pl.DataFrame([row]))
    history = storage.catalog.query(
        "select * from benchmark_results where (recipe = ? or starts_with(recipe, ?)) "
        "and starts_with(variant, 'sft_merged_fp16') order by measured_at desc limit 20",
        [spec.name, f"{spec.name}["])
    wanted = ["variant", "recipe", "ablation", *[f"{m}_{lang}" for m in ("ppl", "purity")
                                                 for lang in (*spec.data.languages, "en")],
              *[c for c in history.columns if c.startswith("chrf_")], "measured_at"]
    compared = history.select([c for c in dict.fromkeys(wanted) if c in history.columns])
    return dg.MaterializeResult(metadata={
        **recipe.tags(), "ablation": key, "ablation_recipe_hash": run.recipe.content_hash(),
        "sft_samples": run.shard_stats["samples"], **run.replay,
        "final_eval_loss": run.train.final_eval_loss,
        "compared_with_recipe": dg.MetadataValue.md(markdown_table(compared)),
    })


def _latest_metadata(instance: dg.DagsterInstance, name: str) -> dict:
    event = instance.get_latest_materialization_event(dg.AssetKey(name))
    if event is None:
        return {}
    return {k: v.value for k, v in event.asset_materialization.metadata.items()}


def _check_rows(instance: dg.DagsterInstance) -> list[dict]:
    from vazhi_assets.definitions import ALL_CHECKS

    keys = [key for check in ALL_CHECKS for key in check.check_keys]
    records = instance.event_log_storage.get_latest_asset_check_execution_by_key(keys)
    return [{"asset": key.asset_key.to_user_string(), "check": key.name,
             "status": records[key].status.value if key in records else "not run"}
            for key in keys
            if key.asset_key.to_user_string() not in {"cleaning_report"}]


@dg.asset(
    deps=[benchmark_table],
    group_name=GROUP,
    kinds={"markdown"},
    owners=["team:ml"],
    tags={"stage": "evaluation"},
    description="The published set: GGUF files and Modelfiles whose checks passed, with an "
    "HF-style model card generated from lineage (sources, retention, tokens, replay share, "
    "hyperparameters, check results, benchmark rows).",
)
def model_card(
    context: dg.AssetExecutionContext, storage: VazhiStorage, recipe: RecipeResource
) -> dg.MaterializeResult:
    from vazhi_assets.evaluation.model_card import render_model_card

    spec = recipe.load()
    instance = context.instance
    published = recipe.workdir(storage.base, "published")
    files = []
    for file_type in FILE_TYPES:
        source = gguf_path(storage, recipe, file_type)
        for path in (source, source.with_suffix(".Modelfile")):
            if not path.exists():
                continue
            target = published / path.name
            target.unlink(missing_ok=True)
            os.link(path, target)
        files.append({"file": source.name, "type": file_type,
                      "size_mb": round(source.stat().st_size / 1e6, 1)})
    bench_run = instance.get_latest_materialization_event(benchmark_table.key).run_id
    latest = storage.catalog.query(
        "select * from benchmark_results where run_id = ? order by variant", [bench_run])
    shown = latest.select([c for c in latest.columns if c not in {
        "run_id", "measured_at", "recipe_hash", "code_version", "lineage", "recipe"}])
    retention = storage.catalog.query("select source, fetched, kept, retention "
                                      "from retention_by_source order by source")
    card = render_model_card(
        spec,
        base=_latest_metadata(instance, "base_model"),
        retention=retention,
        shards=_latest_metadata(instance, "cpt_shards"),
        training={"cpt": _latest_metadata(instance, "cpt_adapter"),
                  "sft": _latest_metadata(instance, "sft_adapter")},
        checks=_check_rows(instance),
        benchmarks=shown,
        files=files,
    )
    path = published / "README.md"
    atomic_write_text(path, card)
    return dg.MaterializeResult(metadata={
        "recipe": spec.name, "recipe_hash": spec.content_hash(),
        "path": dg.MetadataValue.path(str(path)),
        "card": dg.MetadataValue.md(card.split("---", 2)[2][:20000]),
        "files": dg.MetadataValue.json(files)})


EVALUATION_ASSETS = [benchmark_table, model_card, ablation_benchmark]
