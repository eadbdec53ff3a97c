"""Two recipes materializing at once, in two processes against one instance and one data
directory, as a backfill or two users would run them: each process re-crawls a source (each
serves the demo site on its own free port) and then trains its own recipe partition; nothing
collides (ports, folders, the DuckDB catalog)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
import yaml

from vazhi_assets_tests.conftest import Materialized, corpus_instance, disk_instance

pytestmark = pytest.mark.slow

WORKER = """
import json, sys, time
import dagster as dg
from vazhi_assets.crawl.assets import raw_crawl
from vazhi_assets.definitions import ALL_ASSETS, ALL_CHECKS, RESOURCES
source, recipe, go = sys.argv[1], sys.argv[2], float(sys.argv[3])
instance = dg.DagsterInstance.get()
while time.time() < go:  # both workers start their crawl at the same moment
    time.sleep(0.05)
started = time.time()
crawl = dg.materialize([raw_crawl], partition_key=source, instance=instance,
                       resources=RESOURCES, raise_on_error=False)
crawled = time.time()
train = dg.materialize([*ALL_ASSETS, *ALL_CHECKS], selection=dg.AssetSelection.assets(
    "recipe", "feedback_sft_examples", "base_model", "tokenizer_report", "cpt_shards",
    "sft_dataset", "sft_shards", "training_preflight", "cpt_adapter", "sft_adapter",
    "training_provenance"), partition_key=recipe, instance=instance, resources=RESOURCES,
    raise_on_error=False)
print(json.dumps({"crawl": crawl.success, "train": train.success, "crawl_run": crawl.run_id,
                  "train_run": train.run_id, "started": started, "crawled": crawled,
                  "finished": time.time(),
                  "failed": [e.step_key for e in train.get_step_failure_events()]}))
"""


def test_two_recipes_at_once_do_not_collide(corpus_run: Materialized, tiny_base_dir: Path,
                                             tmp_path: Path, record_property: object) -> None:
    from vazhi_assets.training.recipe_registry import add_recipe

    instance, home = disk_instance(tmp_path)
    instance, resources = corpus_instance(corpus_run, tmp_path, instance=instance)
    data = tmp_path / "data"
    jobs = {"tiny-par-a": "urdu_blog", "tiny-par-b": "tamil_udhr"}
    for name in jobs:
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump({
            "inherits": "demo", "name": name,
            "model": {"name": str(tiny_base_dir), "max_seq_length": 128},
            "data": {"sft_max_per_source": 12},
            "cpt": {"max_steps": 2, "eval_steps": 50, "save_steps": 50,
                     "max_eval_samples": 16},
            "sft": {"max_steps": 2, "eval_steps": 50, "save_steps": 50,
                     "max_eval_samples": 16},
            "preflight_steps": 1, "preflight_check_answers": False}), encoding="utf-8")
        add_recipe(path, instance, user_dir=data / "recipes")
    script = tmp_path / "worker.py"
    script.write_text(WORKER, encoding="utf-8")
    env = {**os.environ, "DAGSTER_HOME": str(home), "VAZHI_DATA_DIR": str(data)}
    go = time.time() + 8  # after both interpreters have imported dagster
    workers = {name: subprocess.Popen([sys.executable, str(script), source, name, str(go)],
                                      env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True)
               for name, source in jobs.items()}
    reports = {}
    for name, worker in workers.items():
        out, err = worker.communicate(timeout=1200)
        assert worker.returncode == 0, err[-3000:]
        reports[name] = json.loads(out.strip().splitlines()[-1])
    for name, report in reports.items():
        assert report["crawl"] and report["train"], (name, report["failed"])
    a, b = reports.values()
    assert max(a["started"], b["started"]) < min(a["crawled"], b["crawled"])  # crawls overlap
    assert max(a["crawled"], b["crawled"]) < min(a["finished"], b["finished"])  # so do runs
    record_property("parallel_seconds", round(max(r["finished"] for r in reports.values())
                                              - min(r["started"] for r in reports.values()), 1))

    # each run wrote only its own partition's folders and files
    for name, report in reports.items():
        other = next(n for n in jobs if n != name)
        record = instance.fetch_materializations(dg.AssetRecordsFilter(
            asset_key=dg.AssetKey("training_provenance"), asset_partitions=[name]),
            limit=1).records[0]
        assert record.run_id == report["train_run"]
        meta = record.asset_materialization.metadata
        assert all(c["partition"] in {None, name, *jobs.values(), "urdu_news", "tamil_news",
                                      "english_docs"}
                   for c in meta["consumed"].value)
        assert other not in json.dumps(meta["consumed"].value)
        assert (data / "models" / name / "training_provenance" / "root.json").exists()
    # the catalog took both partitions' rows (two writers on one DuckDB file)
    storage = resources["storage"]
    fertility = storage.catalog.query("select distinct recipe from tokenizer_report")
    assert set(fertility["recipe"]) == set(jobs)
    perplexity = storage.catalog.query("select distinct recipe from heldout_perplexity")
    assert set(perplexity["recipe"]) == set(jobs)
    # both re-crawls found the pages they had: the corpus they feed is unchanged
    for source in jobs.values():
        runs = instance.fetch_materializations(dg.AssetRecordsFilter(
            asset_key=dg.AssetKey("raw_crawl"), asset_partitions=[source]), limit=2).records
        assert len(runs) == 2
        hashes = {r.asset_materialization.metadata["content_hash"].value for r in runs}
        assert len(hashes) == 1, source
        frame = pl.read_parquet(data / "tables" / "raw_crawl" / f"{source}.parquet")
        assert frame["url"].str.starts_with("{demo_site}/").filter(frame["ok"]).all()
