"""Feedback → SFT samples, the retraining job, and the sensor (or schedule) that starts it."""

import json
from pathlib import Path

import dagster as dg
import polars as pl

from vazhi_assets.feedback.store import FeedbackStore
from vazhi_assets.gates import consumed_metadata, latest_materialization
from vazhi_assets.identity import code_version, table_version
from vazhi_assets.metadata import markdown_table
from vazhi_assets.resources import VazhiStorage
from vazhi_assets.training.recipe_assets import load_snapshot, recipe, recipe_run
from vazhi_assets.training.recipe_registry import RECIPE_PARTITIONS

GROUP = "feedback"


def feedback_store(storage: VazhiStorage) -> FeedbackStore:
    return FeedbackStore(storage.base / "feedback" / "feedback.duckdb")


def inbox(storage: VazhiStorage):  # noqa: ANN201 - a Path
    path = storage.base / "feedback" / "inbox"
    path.mkdir(parents=True, exist_ok=True)
    return path


def feedback_samples(rows: pl.DataFrame) -> tuple[list, dict[str, str]]:
    """SFT samples from usable rows, and the rows that cannot be samples with the reason.

    The prompt is the user turn, the correction (or the up-voted answer) the assistant turn;
    ``meta`` keeps the feedback id, seq and the model it rated. Only the latest row per
    (language, prompt) is used; a row failing the ChatML structure or the language check is
    returned as a reason instead of a sample (it would otherwise block every retrain). Feedback
    is exempt from the ROUGE-L instruction dedup: a correction overrides a seed answer."""
    from vazhi_assets.training.sft_language import language_verdict
    from vazhi_assets.training.sft_samples import Sample
    from vazhi_assets.training.sft_table import validate_chatml

    samples, reasons = [], {}
    latest = rows.sort("seq").unique(subset=["language", "prompt"], keep="last",
                                      maintain_order=True)
    for row in latest.iter_rows(named=True):
        target = row["correction"] or row["answer"]
        sample = Sample(
            [{"role": "user", "content": row["prompt"]},
             {"role": "assistant", "content": target}],
            row["language"], "feedback", "feedback",
            meta={"feedback_id": row["feedback_id"], "seq": row["seq"],
                  "rating": row["rating"], "rated_model": row["model_version"],
                  "dedup_exempt": True})
        problems = validate_chatml([sample])
        drop = "; ".join(p.problem for p in problems) or language_verdict(sample)[0]
        if drop:
            reasons[row["feedback_id"]] = f"not usable for SFT: {drop}"
        else:
            samples.append(sample)
    return samples, reasons


@dg.asset(
    deps=[recipe],
    partitions_def=RECIPE_PARTITIONS,
    code_version=code_version("vazhi_assets.feedback.store", after=[recipe]),
    group_name=GROUP,
    kinds={"duckdb", "polars"},
    owners=["team:ml"],
    tags={"stage": "feedback"},
    description="Accepted user corrections (and up-voted answers, if the recipe says so) from "
    "the DuckDB feedback store, as SFT samples; sft_dataset runs them through the same "
    "ChatML, script-purity and mask checks as every other source.",
)
def feedback_sft_examples(
    context: dg.AssetExecutionContext, storage: VazhiStorage
) -> dg.MaterializeResult:
    from vazhi_assets.training.sft_table import samples_to_frame

    run = recipe_run(context, storage)
    store = feedback_store(storage)
    for result in store.ingest_inbox(inbox(storage)):
        context.log.info(f"ingested {result}")
    spec = run.spec
    rows = store.usable(0, spec.data.languages, spec.feedback.use_upvoted)
    samples, reasons = feedback_samples(rows) if rows.height else ([], {})
    if reasons:
        context.log.warning(f"{len(reasons)} feedback rows excluded: {reasons}")
        store.exclude(reasons)
    frame = samples_to_frame(samples)
    storage.write_table("feedback_sft_examples", frame, run.name)
    content = table_version(frame, "sample_id")
    all_rows = store.rows()
    summary = (all_rows.group_by("language", "rating").agg(rows=pl.len()).sort("language",
                                                                              "rating")
               if all_rows.height else pl.DataFrame({"rows": [0]}))
    return dg.MaterializeResult(
        metadata={
            **run.tags(), "content_hash": content, **consumed_metadata([run.consumed]),
            "dagster/row_count": frame.height,
            "feedback_rows": dg.MetadataValue.json([s.meta["feedback_id"] for s in samples]),
            "excluded_rows": dg.MetadataValue.json(reasons),
            "max_seq": int(rows["seq"].max()) if rows.height else 0,
            "store_rows": all_rows.height,
            "rejected_rows": store.rejects().height,
            "store": dg.MetadataValue.md(markdown_table(summary)),
        },
        data_version=dg.DataVersion(content),
    )


def feedback_rows_used(storage: VazhiStorage, recipe_name: str, shards_dir: Path) -> list[str]:
    """Feedback ids of the samples the SFT stage trained on: kept by ``sft_dataset``'s cleaning
    and present in the train split of ``sft_shards`` (``shards_dir``)."""
    frame = storage.read_table("sft_dataset", recipe_name)
    train = shards_dir / "train.parquet"
    if frame is None or "format" not in frame.columns or not train.exists():
        return []
    trained = set(pl.read_parquet(train, columns=["sample_id"])["sample_id"].to_list())
    used = frame.filter((pl.col("format") == "feedback") & pl.col("sample_id").is_in(trained))
    return [json.loads(m).get("feedback_id") for m in used["meta"].to_list()]


#: SFT onwards on the recipe's own CPT adapter (the recipe snapshot and base model stay as
#: they were trained; the gates check them per partition).
RETRAIN_ASSETS = ["feedback_sft_examples", "sft_dataset", "sft_shards", "sft_adapter",
                  "merged_model", "training_provenance", "gguf_f16", "gguf_q8_0",
                  "gguf_q4_k_m", "benchmark_table", "model_card"]

retrain_from_feedback = dg.define_asset_job(
    "retrain_from_feedback",
    selection=dg.AssetSelection.assets(*RETRAIN_ASSETS),
    description="SFT → merge → GGUF → benchmarks again, on the recipe's CPT adapter, with the "
    "feedback corrections in the SFT set.",
)


def trained_recipes(instance: dg.DagsterInstance) -> list[str]:
    """Recipe partitions with a materialized merged model: the models feedback can retrain.

    A partition whose latest retrain failed still has its last good model (the failed run
    replaced nothing), so it stays retrainable; the partition status would say FAILED."""
    key = dg.AssetKey("merged_model")
    return sorted(name for name in instance.get_dynamic_partitions(RECIPE_PARTITIONS.name)
                  if latest_materialization(instance, key, name) is not None)


@dg.sensor(job=retrain_from_feedback, minimum_interval_seconds=60,
           default_status=dg.DefaultSensorStatus.STOPPED,
           description="Ingests dropped feedback files; for each recipe partition with a "
           "trained model, when at least its recipe's feedback.min_new_corrections usable "
           "corrections arrived since the last request, requests one retraining run of that "
           "partition (run_key = recipe + feedback seq range; cursor per recipe).")
def feedback_sensor(
    context: dg.SensorEvaluationContext, storage: VazhiStorage
) -> dg.SensorResult | dg.SkipReason:
    store = feedback_store(storage)
    store.ingest_inbox(inbox(storage))
    cursors = json.loads(context.cursor) if context.cursor else {}
    requests, waiting = [], []
    for name in trained_recipes(context.instance):
        spec = load_snapshot(storage, name)
        after = int(cursors.get(name, 0))
        new = store.usable(after, spec.data.languages, spec.feedback.use_upvoted)
        wanted = spec.feedback.min_new_corrections
        if new.height < wanted:
            waiting.append(f"{name}: {new.height} of {wanted} after seq {after}")
            continue
        first, last = int(new["seq"].min()), int(new["seq"].max())
        requests.append(dg.RunRequest(
            partition_key=name, run_key=f"feedback-{name}-{first}-{last}",
            tags={"recipe": name, "feedback_seq": f"{first}-{last}",
                  "feedback_rows": str(new.height)}))
        cursors[name] = last
    if not requests:
        return dg.SkipReason("new usable corrections: " + ("; ".join(waiting) or
                                                          "no recipe has a trained model"))
    return dg.SensorResult(run_requests=requests, cursor=json.dumps(cursors, sort_keys=True))


@dg.schedule(job=retrain_from_feedback, cron_schedule="0 3 * * 0",
             default_status=dg.DefaultScheduleStatus.STOPPED,
             description="The alternative to feedback_sensor: every Sunday at 03:00, retrain "
             "each recipe partition that has a trained model with whatever feedback arrived.")
def weekly_retrain(context: dg.ScheduleEvaluationContext) -> list[dg.RunRequest]:
    stamp = context.scheduled_execution_time.strftime("%Y-%m-%d")
    return [dg.RunRequest(partition_key=name, run_key=f"weekly-{name}-{stamp}",
                          tags={"recipe": name})
            for name in trained_recipes(context.instance)]
