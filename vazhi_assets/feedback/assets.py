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
    from vazhi_assets.training.sft_table import samples_to_frame

    store = feedback_store(storage)
    for result in store.ingest_inbox(inbox(storage)):
        context.log.info(f"ingested {result}")
    spec = recipe.load()
    rows = store.usable(0, spec.data.languages, spec.feedback.use_upvoted)
    samples, reasons = feedback_samples(rows) if rows.height else ([], {})
    if reasons:
        context.log.warning(f"{len(reasons)} feedback rows excluded: {reasons}")
        store.exclude(reasons)
    frame = samples_to_frame(samples)
    storage.write_table("feedback_sft_examples", frame)
    all_rows = store.rows()
    summary = (all_rows.group_by("language", "rating").agg(rows=pl.len()).sort("language",
                                                                              "rating")
               if all_rows.height else pl.DataFrame({"rows": [0]}))
    return dg.MaterializeResult(
        metadata={
            **recipe.tags(),
            "dagster/row_count": frame.height,
            "feedback_rows": dg.MetadataValue.json([s.meta["feedback_id"] for s in samples]),
            "excluded_rows": dg.MetadataValue.json(reasons),
            "max_seq": int(rows["seq"].max()) if rows.height else 0,
            "store_rows": all_rows.height,
            "rejected_rows": store.rejects().height,
            "store": dg.MetadataValue.md(markdown_table(summary)),
        },
        data_version=dg.DataVersion(str(int(rows["seq"].max()) if rows.height else 0)),
    )


def feedback_rows_used(storage: VazhiStorage, shards_dir) -> list[str]:  # noqa: ANN001
    """Feedback ids of the samples the SFT stage trained on: kept by ``sft_dataset``'s cleaning
    and present in the train split of ``sft_shards`` (``shards_dir``)."""
    frame = storage.read_table("sft_dataset")
    train = shards_dir / "train.parquet"
    if frame is None or "format" not in frame.columns or not train.exists():
        return []
    trained = set(pl.read_parquet(train, columns=["sample_id"])["sample_id"].to_list())
    used = frame.filter((pl.col("format") == "feedback") & pl.col("sample_id").is_in(trained))
    return [json.loads(m).get("feedback_id") for m in used["meta"].to_list()]


# base_model is cheap when its files exist, and re-recording it keeps the job valid in an
# instance where another recipe was materialized last (the gates compare recipes)
RETRAIN_ASSETS = ["base_model", "feedback_sft_examples", "sft_dataset", "sft_shards",
                  "sft_adapter",
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
