"""Feedback → SFT samples, the retraining job, and the sensor (or schedule) that starts it."""

import json

import dagster as dg
import polars as pl

from vazhi_assets.feedback.store import FeedbackStore
from vazhi_assets.metadata import markdown_table
from vazhi_assets.resources import VazhiStorage
from vazhi_assets.training.resources import RecipeResource

GROUP = "feedback"


def feedback_store(storage: VazhiStorage) -> FeedbackStore:
    return FeedbackStore(storage.base / "feedback" / "feedback.duckdb")


def inbox(storage: VazhiStorage):  # noqa: ANN201 - a Path
    path = storage.base / "feedback" / "inbox"
    path.mkdir(parents=True, exist_ok=True)
    return path


def feedback_samples(rows: pl.DataFrame) -> list:
    """One SFT sample per usable row: the prompt, and the correction (or the up-voted answer)
    as the assistant turn; ``meta`` keeps the feedback id, seq and the model it rated."""
    from vazhi_assets.training.sft_data import Sample

    samples = []
    for row in rows.iter_rows(named=True):
        target = row["correction"] or row["answer"]
        samples.append(Sample(
            [{"role": "user", "content": row["prompt"]},
             {"role": "assistant", "content": target}],
            row["language"], "feedback", "feedback",
            meta={"feedback_id": row["feedback_id"], "seq": row["seq"],
                  "rating": row["rating"], "rated_model": row["model_version"]}))
    return samples


@dg.asset(
    group_name=GROUP,
    kinds={"duckdb", "polars"},
    owners=["team:ml"],
    tags={"stage": "feedback"},
    description="Accepted user corrections (and up-voted answers, if the recipe says so) from "
    "the DuckDB feedback store, as SFT samples; sft_dataset runs them through the same "
    "ChatML, script-purity and mask checks as every other source.",
)
def feedback_sft_examples(
    context: dg.AssetExecutionContext, storage: VazhiStorage, recipe: RecipeResource
) -> dg.MaterializeResult:
    from vazhi_assets.training.sft_data import samples_to_frame

    store = feedback_store(storage)
    for result in store.ingest_inbox(inbox(storage)):
        context.log.info(f"ingested {result}")
    spec = recipe.load()
    rows = store.usable(0, spec.data.languages, spec.feedback.use_upvoted)
    frame = samples_to_frame(feedback_samples(rows))
    storage.write_table("feedback_sft_examples", frame)
    all_rows = store.rows()
    summary = (all_rows.group_by("language", "rating").agg(rows=pl.len()).sort("language",
                                                                              "rating")
               if all_rows.height else pl.DataFrame({"rows": [0]}))
    return dg.MaterializeResult(
        metadata={
            **recipe.tags(),
            "dagster/row_count": frame.height,
            "feedback_rows": dg.MetadataValue.json(rows["feedback_id"].to_list()
                                                   if rows.height else []),
            "max_seq": int(rows["seq"].max()) if rows.height else 0,
            "store_rows": all_rows.height,
            "rejected_rows": store.rejects().height,
            "store": dg.MetadataValue.md(markdown_table(summary)),
        },
        data_version=dg.DataVersion(str(int(rows["seq"].max()) if rows.height else 0)),
    )


def feedback_rows_used(storage: VazhiStorage) -> list[str]:
    """Feedback ids among the samples ``sft_dataset`` kept (after its cleaning)."""
    frame = storage.read_table("sft_dataset")
    if frame is None or "format" not in frame.columns:
        return []
    used = frame.filter(pl.col("format") == "feedback")
    return [json.loads(m).get("feedback_id") for m in used["meta"].to_list()]


RETRAIN_ASSETS = ["feedback_sft_examples", "sft_dataset", "sft_shards", "sft_adapter",
                  "merged_model", "gguf_f16", "gguf_q8_0", "gguf_q4_k_m", "benchmark_table",
                  "model_card"]

retrain_from_feedback = dg.define_asset_job(
    "retrain_from_feedback",
    selection=dg.AssetSelection.assets(*RETRAIN_ASSETS),
    description="SFT → merge → GGUF → benchmarks again, on the recipe's CPT adapter, with the "
    "feedback corrections in the SFT set.",
)


@dg.sensor(job=retrain_from_feedback, minimum_interval_seconds=60,
           default_status=dg.DefaultSensorStatus.STOPPED,
           description="Ingests dropped feedback files; when at least the recipe's "
           "feedback.min_new_corrections usable corrections arrived since the last request, "
           "requests one retraining run (run_key = the feedback seq range).")
def feedback_sensor(
    context: dg.SensorEvaluationContext, storage: VazhiStorage, recipe: RecipeResource
) -> dg.SensorResult | dg.SkipReason:
    store = feedback_store(storage)
    store.ingest_inbox(inbox(storage))
    spec = recipe.load()
    cursor = int(context.cursor or 0)
    new = store.usable(cursor, spec.data.languages, spec.feedback.use_upvoted)
    wanted = spec.feedback.min_new_corrections
    if new.height < wanted:
        return dg.SkipReason(f"{new.height} new usable corrections after seq {cursor}; "
                             f"waiting for {wanted} ({spec.name})")
    first, last = int(new["seq"].min()), int(new["seq"].max())
    return dg.SensorResult(
        run_requests=[dg.RunRequest(
            run_key=f"feedback-{spec.name}-{first}-{last}",
            tags={"recipe": spec.name, "feedback_seq": f"{first}-{last}",
                  "feedback_rows": str(new.height)})],
        cursor=str(last),
    )


weekly_retrain = dg.ScheduleDefinition(
    job=retrain_from_feedback, cron_schedule="0 3 * * 0",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="The alternative to feedback_sensor: retrain every Sunday at 03:00 with "
    "whatever feedback has arrived.")
