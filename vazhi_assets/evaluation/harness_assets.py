"""Opt-in lm-evaluation-harness scores of the merged model (needs ``.[harness]`` and hub access).

Not part of the offline demo: the harness tasks fetch their datasets from the Hugging Face hub.
Rows are appended to the DuckDB table ``harness_results`` with the recipe and run id, so scores
from successive runs stay comparable side by side.
"""

from datetime import UTC, datetime

import dagster as dg
import polars as pl
from pydantic import Field, field_validator

from vazhi_assets.evaluation.harness import DEFAULT_HARNESS_TASKS, HarnessError, run_harness
from vazhi_assets.gates import consume, consumed_metadata
from vazhi_assets.identity import model_identity
from vazhi_assets.metadata import markdown_table
from vazhi_assets.resources import VazhiStorage
from vazhi_assets.training.recipe_assets import recipe_run
from vazhi_assets.training.recipe_registry import RECIPE_PARTITIONS
from vazhi_assets.training.train_assets import merged_model

GROUP = "evaluation"
TABLE = "harness_results"


class HarnessConfig(dg.Config):
    tasks: list[str] = Field(
        default=list(DEFAULT_HARNESS_TASKS),
        description="lm-eval task, group or tag names (`lm-eval ls tasks` lists them).")
    limit: int | None = Field(
        default=None, ge=1,
        description="At most this many documents per task (a quick look; not comparable with "
        "published scores). None scores every document.")
    batch_size: int = Field(default=8, ge=1)
    device: str = "cpu"

    @field_validator("tasks")
    @classmethod
    def _some_tasks(cls, tasks: list[str]) -> list[str]:
        names = [t.strip() for t in tasks]
        if not names or not all(names):
            raise ValueError("tasks must name at least one lm-eval task, and no blank names")
        if len(set(names)) != len(names):
            raise ValueError(f"tasks lists a name twice: {names}")
        return names


@dg.asset(
    partitions_def=RECIPE_PARTITIONS,
    deps=[merged_model],
    group_name=GROUP,
    kinds={"duckdb", "transformers"},
    owners=["team:ml"],
    tags={"stage": "evaluation"},
    description="Optional: the merged model scored with EleutherAI's lm-evaluation-harness "
    "(Belebele Urdu/Tamil and Urdu XNLI by default). Needs `pip install -e '.[harness]'` and "
    "Hugging Face hub access for the task datasets. Rows are appended to the DuckDB table "
    "harness_results with the recipe and run id.",
)
def harness_scores(
    context: dg.AssetExecutionContext,
    config: HarnessConfig,
    storage: VazhiStorage,
) -> dg.MaterializeResult:
    run = recipe_run(context, storage)
    spec = run.spec
    model_dir = run.work.merged_model
    if not model_dir.exists():
        raise dg.Failure(f"merged_model[{run.name}] has no model on disk; materialize it first")
    merged = consume(context, merged_model.key, partition=run.name,
                     content_hash=model_identity(model_dir)["content_hash"])
    try:
        rows = run_harness(model_dir, config.tasks, limit=config.limit,
                           batch_size=config.batch_size, device=config.device)
    except HarnessError as exc:
        raise dg.Failure(description=str(exc)) from exc
    if not rows:
        raise dg.Failure(f"lm-eval returned no numeric metrics for {config.tasks}")
    scores = pl.DataFrame(rows)
    table = scores.with_columns(
        run_id=pl.lit(context.run.run_id),
        measured_at=pl.lit(datetime.now(UTC).isoformat(timespec="seconds")),
        recipe=pl.lit(spec.name),
        recipe_hash=pl.lit(spec.content_hash()),
        limit=pl.lit(config.limit, dtype=pl.Int64),
    )
    storage.catalog.append_rows(TABLE, table)
    history = storage.catalog.query(f"select count(*) as n from {TABLE}")["n"][0]
    return dg.MaterializeResult(metadata={
        **run.tags(), **consumed_metadata([run.consumed, merged]),
        "scores": dg.MetadataValue.md(markdown_table(scores)),
        "tasks": dg.MetadataValue.json(config.tasks),
        "limit": config.limit or "all",
        "dagster/row_count": table.height,
        "rows_in_history": int(history),
    })
