"""Materialize the default demo graph end to end into the local Dagster instance.

``python -m vazhi_assets.demo`` registers every recipe as a partition, crawls every registry
source (one run per partition, so each shows up as its own backfillable partition in the UI),
materializes the corpus with its checks, then the model half of one recipe partition
(default ``demo``: the offline SmolLM2-135M-Instruct). ``dagster dev`` afterwards shows the
runs, metadata and lineage.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import dagster as dg

from vazhi_assets.settings import PROJECT_ROOT


def _instance() -> dg.DagsterInstance:
    home = Path(os.environ.setdefault("DAGSTER_HOME", str(PROJECT_ROOT / ".dagster_home")))
    home.mkdir(parents=True, exist_ok=True)
    return dg.DagsterInstance.get()


def run_demo(sources: list[str] | None = None, recipe: str | None = None,
             model_only: bool = False) -> int:
    from vazhi_assets.crawl.assets import raw_crawl
    from vazhi_assets.definitions import (
        ALL_ASSETS,
        ALL_CHECKS,
        CORPUS_SELECTION,
        MODEL_SELECTION,
        RESOURCES,
    )
    from vazhi_assets.training.recipe_registry import add_recipe, register_recipes

    instance = _instance()
    partitions = [] if model_only else (sources or raw_crawl.partitions_def.get_partition_keys())
    resources = dict(RESOURCES)
    name = recipe or os.environ.get("VAZHI_RECIPE") or "demo"
    if name.endswith((".yaml", ".yml")):  # a user's own file becomes a partition first
        name = add_recipe(Path(name), instance).name
    new = register_recipes(instance)
    print(f"recipe partitions: {len(instance.get_dynamic_partitions('recipe'))} "
          f"({len(new)} new); this run: {name}")
    quiet = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}
    timings: list[tuple[str, float, bool]] = []
    for key in partitions:
        started = time.monotonic()
        result = dg.materialize(
            [raw_crawl], partition_key=key, instance=instance, resources=resources,
            run_config=quiet, raise_on_error=False,
        )
        timings.append((f"raw_crawl[{key}]", time.monotonic() - started, result.success))
    if not model_only:
        started = time.monotonic()
        corpus = dg.materialize(
            [*ALL_ASSETS, *ALL_CHECKS], selection=CORPUS_SELECTION, instance=instance,
            resources=resources, run_config=quiet, raise_on_error=False,
        )
        timings.append(("corpus assets + checks", time.monotonic() - started, corpus.success))
    started = time.monotonic()
    result = dg.materialize(
        [*ALL_ASSETS, *ALL_CHECKS], selection=MODEL_SELECTION, partition_key=name,
        instance=instance, resources=resources, run_config=quiet, raise_on_error=False,
    )
    timings.append((f"model half [{name}] + checks", time.monotonic() - started,
                    result.success))
    print(f"\nwall time per step of the model run [{name}]:")
    for event in result.all_events:
        if event.is_step_success or event.is_step_failure:
            seconds = (event.event_specific_data.duration_ms or 0) / 1000 if \
                event.is_step_success else float("nan")
            print(f"  {'ok  ' if event.is_step_success else 'FAIL'} {event.step_key:<44} "
                  f"{seconds:8.1f} s")
    print("\nruns:")
    for name, seconds, ok in timings:
        print(f"{'ok  ' if ok else 'FAIL'} {name:<32} {seconds:7.1f} s")
    print(f"\nDagster instance: {instance.root_directory}")
    print("Open the UI with:  make dev   (dagster dev on http://127.0.0.1:3000)")
    return 0 if all(ok for _, _, ok in timings) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", action="append", help="crawl only these sources")
    parser.add_argument("--recipe", help="recipe name or YAML path (default $VAZHI_RECIPE or "
                        "demo), e.g. qalb-urdu-demo")
    parser.add_argument("--model-only", action="store_true",
                        help="reuse the materialized crawl and corpus; run the model half only")
    args = parser.parse_args(argv)
    return run_demo(args.source, args.recipe, args.model_only)


if __name__ == "__main__":
    sys.exit(main())
