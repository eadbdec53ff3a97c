"""Benchmark rows per recipe partition, kept with the exact lineage of what was measured, and
the ablation sweep as recipe x ablation partitions."""


import json
import time
from datetime import UTC, datetime

import dagster as dg
import polars as pl

from vazhi_assets.export.assets import FILE_TYPES, GGUF_ASSETS, gguf_path
from vazhi_assets.gates import Consumed, consume, consumed_metadata
from vazhi_assets.identity import (
    code_version,
    model_identity,
    project_version,
    sha256_bytes,
    sha256_file,
)
from vazhi_assets.identity import version as short
from vazhi_assets.lineage.diff import benchmark_deltas, diff_manifests
from vazhi_assets.metadata import markdown_table, png_markdown
from vazhi_assets.provenance.assets import provenance_store, read_pointer, training_provenance
from vazhi_assets.provenance.manifest import ProvenanceError, load_excluded, load_manifest
from vazhi_assets.resources import VazhiStorage
from vazhi_assets.storage import atomic_write_text
from vazhi_assets.training.ablation import ABLATIONS
from vazhi_assets.training.data_assets import base_model, read_base, sft_shards
from vazhi_assets.training.heldout import heldout_texts
from vazhi_assets.training.recipe_assets import RecipeRun, recipe_run
from vazhi_assets.training.recipe_registry import RECIPE_PARTITIONS
from vazhi_assets.training.recipe_tokenizer import recipe_tokenizer
from vazhi_assets.training.train_assets import (
    cpt_adapter,
    merged_model,
    read_adapter,
    read_shards,
)

GROUP = "evaluation"
BENCHMARK_CODE = ("vazhi_assets.evaluation.metrics", "vazhi_assets.evaluation.eval_sets",
                  "vazhi_assets.evaluation.runners")
HIDDEN = ("run_id", "measured_at", "recipe_hash", "code_version", "lineage", "provenance_root")


class BenchmarkConfig(dg.Config):
    """Generation budgets of the benchmark (they bound its time; rows record them)."""

    max_new_tokens: int = 96
    max_task_tokens: int = 256


def _variants(run: RecipeRun) -> list[tuple[str, object]]:
    from vazhi_assets.evaluation.runners import HFRunner
    from vazhi_assets.export.llama_runner import LlamaCppRunner

    work = run.work
    cpt = [("cpt", lambda: HFRunner(work.base_model, name="cpt", adapters=[work.cpt_adapter]))]
    return [
        ("base", lambda: HFRunner(work.base_model, name="base")),
        *(cpt if run.spec.has_cpt else []),
        ("sft_merged_fp16", lambda: HFRunner(work.merged_model, name="sft_merged_fp16")),
        *[(f"gguf_{t.lower()}", (lambda t=t: LlamaCppRunner(gguf_path(work, t),
                                                            name=f"gguf_{t.lower()}")))
          for t in FILE_TYPES],
    ]


def stamp(context: dg.AssetExecutionContext, run: RecipeRun, consumed: list[Consumed],
          provenance_root: str | None) -> dict[str, str | None]:
    """Columns that tie a benchmark row to its run, recipe, code and the exact lineage."""
    return {
        "run_id": context.run.run_id,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "recipe": run.name,
        "recipe_hash": run.spec.content_hash(),
        "code_version": project_version(),
        "provenance_root": provenance_root,
        "lineage": json.dumps({c.label: {"run_id": c.run_id, "content_hash": c.content_hash}
                               for c in consumed}, sort_keys=True),
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


def _consume_models(context: dg.AssetExecutionContext, run: RecipeRun) -> list[Consumed]:
    work = run.work
    consumed = [run.consumed, read_base(context, run)[1],
                read_adapter(context, run, "cpt_adapter",
                             work.cpt_adapter if run.spec.has_cpt else None),
                consume(context, merged_model.key, partition=run.name,
                        content_hash=model_identity(work.merged_model)["content_hash"])]
    for file_type, asset in GGUF_ASSETS.items():
        consumed.append(consume(context, asset.key, partition=run.name,
                                content_hash=short(sha256_file(gguf_path(work, file_type)))))
    return consumed


def previous_rows(storage: VazhiStorage, recipe: str, run_id: str) -> pl.DataFrame | None:
    """The benchmark rows of the partition's latest earlier run, if there is one."""
    earlier = storage.catalog.query(
        "select run_id from benchmark_results where recipe = ? and run_id != ? "
        "and provenance_root is not null order by measured_at desc limit 1", [recipe, run_id])
    if earlier.is_empty():
        return None
    return storage.catalog.query("select * from benchmark_results where run_id = ?",
                                 [earlier["run_id"][0]])


def lineage_diff_metadata(storage: VazhiStorage, previous: pl.DataFrame,
                          current: pl.DataFrame, root: str) -> dict[str, dg.MetadataValue]:
    """The documents and samples that entered or left training since the previous row of the
    partition, beside the benchmark deltas."""
    old_root = previous["provenance_root"][0]
    store = provenance_store(storage)
    deltas = benchmark_deltas(previous, current)
    out = {"compared_with_run": dg.MetadataValue.text(previous["run_id"][0]),
           "benchmark_deltas": dg.MetadataValue.md(markdown_table(deltas))}
    try:
        diff = diff_manifests(load_manifest(store, old_root), load_manifest(store, root),
                              load_excluded(store, root), load_excluded(store, old_root))
    except ProvenanceError as exc:
        out["lineage_diff"] = dg.MetadataValue.md(f"_not available: {exc}_")
        return out
    out["lineage_diff"] = dg.MetadataValue.md(
        "unchanged: the same documents and samples trained both models" if diff.unchanged
        else markdown_table(diff.by_source()))
    out["documents_entered"] = int((diff.documents["change"] == "entered").sum())
    out["documents_left"] = int((diff.documents["change"] == "left").sum())
    out["samples_entered"] = int((diff.samples["change"] == "entered").sum())
    out["samples_left"] = int((diff.samples["change"] == "left").sum())
    return out


@dg.asset(
    partitions_def=RECIPE_PARTITIONS,
    deps=[base_model, cpt_adapter, merged_model, training_provenance, *GGUF_ASSETS.values()],
    group_name=GROUP,
    kinds={"duckdb", "llama.cpp", "transformers"},
    owners=["team:ml"],
    tags={"stage": "evaluation"},
    code_version=code_version(*BENCHMARK_CODE,
                              after=[merged_model, training_provenance,
                                     *GGUF_ASSETS.values()]),
    description="Every variant (base, CPT, SFT-merged fp16, each GGUF) measured side by side: "
    "held-out perplexity per language, answer script purity, chrF on UDHR pairs, Thirukkural "
    "citation exact match, urdu-eval minimal pairs, size, tokens/s. Rows are appended to the "
    "DuckDB table benchmark_results with the recipe, the exact lineage, the provenance root, "
    "code version and run id; when the partition has an earlier row, the documents and samples "
    "that entered or left training are shown beside the benchmark deltas.",
)
def benchmark_table(
    context: dg.AssetExecutionContext, storage: VazhiStorage, config: BenchmarkConfig
) -> dg.MaterializeResult:
    from vazhi_assets.evaluation.eval_sets import load_eval_sets
    from vazhi_assets.evaluation.metrics import evaluate_variant

    run = recipe_run(context, storage)
    spec = run.spec
    consumed = _consume_models(context, run)
    root = read_pointer(run.work)["root"]
    consumed.append(consume(context, training_provenance.key, partition=run.name,
                            content_hash=root[:16]))
    sets = load_eval_sets(heldout_texts(storage, spec, run.work, spec.export.eval_items),
                          max_items=spec.export.eval_items)
    columns = stamp(context, run, consumed, root)
    rows, answers = [], {}
    for name, make in _variants(run):
        started = time.monotonic()
        with make() as runner:
            result = evaluate_variant(runner, sets, languages=spec.data.languages,
                                      max_new_tokens=config.max_new_tokens,
                                      max_task_tokens=config.max_task_tokens)
        answers[name] = result.pop("answers", [])
        rows.append({"variant": name, **columns, **result,
                     "max_new_tokens": config.max_new_tokens})
        context.log.info(f"{name}: measured in {time.monotonic() - started:.0f} s")
    table = pl.DataFrame(rows)
    storage.catalog.append_rows("benchmark_results", table)
    out = run.work.dir("benchmark_table")
    atomic_write_text(out / f"{context.run.run_id}.json", json.dumps(
        {"rows": rows, "answers": answers}, ensure_ascii=False, indent=2, default=str))
    shown = table.drop(*HIDDEN)
    history = storage.catalog.query(
        "select count(*) as n from benchmark_results where recipe = ?", [run.name])["n"][0]
    previous = previous_rows(storage, run.name, context.run.run_id)
    diff = (lineage_diff_metadata(storage, previous, table, root) if previous is not None
            else {"lineage_diff": dg.MetadataValue.md("_first benchmark of this partition_")})
    content = short(sha256_bytes(json.dumps(rows, sort_keys=True, default=str).encode()))
    return dg.MaterializeResult(
        metadata={
            **run.tags(), "content_hash": content, **consumed_metadata(consumed),
            "code_version": columns["code_version"],
            "provenance_root": root,
            "dagster/row_count": table.height,
            "rows_in_history": int(history),
            "benchmark": dg.MetadataValue.md(markdown_table(shown)),
            "perplexity_chart": dg.MetadataValue.md(_chart(table)),
            **diff,
        }
    )


ablation_partitions = dg.MultiPartitionsDefinition({
    "recipe": RECIPE_PARTITIONS,
    "ablation": dg.StaticPartitionsDefinition(list(ABLATIONS)),
})


@dg.asset(
    partitions_def=ablation_partitions,
    deps=[base_model, cpt_adapter, sft_shards],
    group_name=GROUP,
    kinds={"trl", "duckdb"},
    owners=["team:ml"],
    tags={"stage": "evaluation"},
    code_version=code_version("vazhi_assets.training.ablation", *BENCHMARK_CODE,
                              after=[cpt_adapter, sft_shards]),
    description="One ablation per partition (recipe x sweep value: SFT replay share "
    "10/20/30%, SFT LoRA rank): the SFT stage re-trained with that one setting changed on the "
    "recipe's CPT adapter, merged, and measured like benchmark_table; rows land in "
    "benchmark_results with the ablation key. Backfill a recipe's row of partitions to run "
    "the sweep.",
)
def ablation_benchmark(
    context: dg.AssetExecutionContext, storage: VazhiStorage, config: BenchmarkConfig
) -> dg.MaterializeResult:
    from vazhi_assets.evaluation.eval_sets import load_eval_sets
    from vazhi_assets.evaluation.metrics import evaluate_variant
    from vazhi_assets.evaluation.runners import HFRunner
    from vazhi_assets.training.ablation import run_ablation
    from vazhi_assets.training.sft_table import frame_to_samples

    run = recipe_run(context, storage)
    spec, work = run.spec, run.work
    key = context.partition_key.keys_by_dimension["ablation"]
    consumed = [run.consumed, read_base(context, run)[1],
                read_shards(context, run, sft_shards, work.sft_shards),
                read_adapter(context, run, "cpt_adapter",
                             work.cpt_adapter if spec.has_cpt else None)]
    feedback = storage.read_table("feedback_sft_examples", run.name)
    tokens = recipe_tokenizer(spec, work.base_model)
    result_run = run_ablation(
        spec, key, base_dir=work.base_model,
        cpt_adapter=work.cpt_adapter if spec.has_cpt else None,
        tokenizer=tokens.tokenizer, template=tokens.training_template,
        work=work.dir(f"ablations/{key}"),
        extra_samples=frame_to_samples(feedback) if feedback is not None else [],
        log=context.log.info)
    sets = load_eval_sets(heldout_texts(storage, spec, work, spec.export.eval_items),
                          max_items=spec.export.eval_items)
    with HFRunner(result_run.merged_dir, name=f"ablation:{key}") as runner:
        result = evaluate_variant(runner, sets, languages=spec.data.languages,
                                  max_new_tokens=config.max_new_tokens,
                                  max_task_tokens=config.max_task_tokens)
    result.pop("answers", None)
    columns = stamp(context, run, consumed, None)
    columns["recipe"], columns["recipe_hash"] = (result_run.recipe.name,
                                                 result_run.recipe.content_hash())
    row = {"variant": f"sft_merged_fp16[{key}]", **columns, "ablation": key, **result,
           "max_new_tokens": config.max_new_tokens}
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
        **run.tags(), **consumed_metadata(consumed),
        "ablation": key, "ablation_recipe_hash": result_run.recipe.content_hash(),
        "sft_samples": result_run.shard_stats["samples"], **result_run.replay,
        "final_eval_loss": result_run.train.final_eval_loss,
        "compared_with_recipe": dg.MetadataValue.md(markdown_table(compared)),
    })
