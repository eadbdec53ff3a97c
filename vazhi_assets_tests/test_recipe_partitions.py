"""Two recipes as partitions of one instance, on the real offline SmolLM2-135M-Instruct, end to
end: each has its own model card, benchmark rows, lineage and published files; a GGUF is
verified against the instance and traced back to its crawled pages; a failing check on one
partition refuses that partition's files only.

The recipes are the demo recipe at the smallest scale that still trains (two steps per stage,
64-token blocks, Urdu only, one evaluation item, short generation budgets): the code paths are
the demo's, the minutes are not. (128-token windows: at 64 most Urdu SFT samples would not fit.)
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
import yaml

from vazhi_assets_tests.conftest import Materialized, corpus_instance, disk_instance
from vazhi_assets_tests.model_fixtures import gguf_tools_missing

pytestmark = pytest.mark.slow

BENCH_CONFIG = {"ops": {"benchmark_table": {"config": {"max_new_tokens": 8,
                                                        "max_task_tokens": 24}}}}
SMALL = {
    "inherits": "demo",
    "model": {"max_seq_length": 128},
    "data": {"languages": ["ur"], "sft_max_per_source": 12},
    "sft": {"max_steps": 2, "eval_steps": 50, "save_steps": 50, "per_device_batch_size": 2,
            "max_eval_samples": 16},
    "preflight_steps": 1,
    # one held-out text and three golden prompts: one answer flipping script moves the mean
    # purity by a third, so the drift tolerance is wide at this scale
    "export": {"eval_items": 1, "max_purity_drop": 0.7},
    "feedback": {"min_new_corrections": 1},
}
RECIPES = {
    # continued pre-training, then SFT
    "real-a": {**SMALL, "description": "Urdu, CPT then SFT (test scale)",
               "cpt": {"max_steps": 2, "eval_steps": 50, "save_steps": 50,
                       "per_device_batch_size": 2, "max_eval_samples": 16}},
    # SFT only, like the Saudi-dialect recipe
    "real-b": {**SMALL, "description": "Urdu, SFT only (test scale)", "cpt": None},
}


@dataclass
class TwoRecipes:
    root: Path
    data: Path
    home: Path
    instance: dg.DagsterInstance
    resources: dict
    results: dict[str, dg.ExecuteInProcessResult]
    seconds: dict[str, float]

    def work(self, name: str) -> Path:
        return self.data / "models" / name

    def env(self) -> dict[str, str]:
        return {**os.environ, "DAGSTER_HOME": str(self.home), "VAZHI_DATA_DIR": str(self.data)}


def write_recipe(folder: Path, name: str, spec: dict) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump({**spec, "name": name}), encoding="utf-8")
    return path


def materialize_recipe(instance: dg.DagsterInstance, resources: dict, name: str,
                       selection: object = None) -> dg.ExecuteInProcessResult:
    from vazhi_assets.definitions import ALL_ASSETS, ALL_CHECKS, MODEL_SELECTION

    config = BENCH_CONFIG if selection is None else None
    return dg.materialize([*ALL_ASSETS, *ALL_CHECKS], selection=selection or MODEL_SELECTION,
                          partition_key=name, instance=instance, resources=resources,
                          run_config=config, raise_on_error=False)


@pytest.fixture(scope="module")
def two_recipes(corpus_run: Materialized, tmp_path_factory: pytest.TempPathFactory
                ) -> TwoRecipes:
    missing = gguf_tools_missing()
    if missing:
        pytest.fail(f"the GGUF tools are part of the setup: {missing}")
    from vazhi_assets.training.recipe_registry import add_recipe, register_recipes

    root = tmp_path_factory.mktemp("recipes")
    instance, home = disk_instance(root)
    instance, resources = corpus_instance(corpus_run, root, instance=instance)
    data = root / "data"
    register_recipes(instance, user_dir=data / "recipes")  # the bundled ones, as the demo does
    results, seconds = {}, {}
    for name, spec in RECIPES.items():
        add_recipe(write_recipe(root, name, spec), instance, user_dir=data / "recipes")
        started = time.monotonic()
        results[name] = materialize_recipe(instance, resources, name)
        seconds[name] = time.monotonic() - started
    return TwoRecipes(root, data, home, instance, resources, results, seconds)


def _meta(result: dg.ExecuteInProcessResult, asset: str) -> dict:
    [event] = [e for e in result.get_asset_materialization_events()
               if e.asset_key.to_user_string() == asset]
    return {k: v.value for k, v in event.materialization.metadata.items()}


def test_each_partition_names_only_its_own_recipe(two_recipes: TwoRecipes,
                                                  record_property: object) -> None:
    from vazhi_assets.export.provenance_stamp import read_provenance
    from vazhi_assets.gates import Consumed, latest_materialization, lineage_problems

    t = two_recipes
    for name, result in t.results.items():
        failures = [e.step_key for e in result.get_step_failure_events()]
        assert result.success, (name, failures)
        record_property(f"{name}_seconds", round(t.seconds[name], 1))
    assert {"real-a", "real-b", "demo", "qalb-urdu"} <= set(
        t.instance.get_dynamic_partitions("recipe"))
    roots = {}
    for name in RECIPES:
        other = next(n for n in RECIPES if n != name)
        published = t.work(name) / "published"
        files = sorted(p.name for p in published.iterdir() if p.is_file())
        assert files == sorted([f"{name}-{ft}.{ext}" for ft in ("F16", "Q8_0", "Q4_K_M")
                                for ext in ("gguf", "Modelfile")] + ["README.md"])
        card = (published / "README.md").read_text(encoding="utf-8")
        assert f"# {name}" in card and other not in card
        root = _meta(t.results[name], "training_provenance")["provenance_root"]
        roots[name] = root
        assert root in card
        for ft in ("F16", "Q8_0", "Q4_K_M"):
            stamp = read_provenance(published / f"{name}-{ft}.gguf")
            assert stamp["recipe"] == name and stamp["root"] == root
            modelfile = (published / f"{name}-{ft}.Modelfile").read_text(encoding="utf-8")
            assert f"vazhi provenance root: {root}" in modelfile
        rows = t.resources["storage"].catalog.query(
            "select * from benchmark_results where recipe = ?", [name])
        assert set(rows["run_id"]) == {t.results[name].run_id}
        assert set(rows["provenance_root"]) == {root}
        labels = set().union(*(json.loads(x) for x in rows["lineage"]))
        assert all(other not in label for label in labels), labels
        assert f"merged_model[{name}]" in labels
        # every model-half materialization in the published file's lineage is this recipe's
        record = latest_materialization(t.instance, dg.AssetKey("gguf_q8_0"), name)
        walk = lineage_problems(t.instance, Consumed("gguf_q8_0", name, record.storage_id,
                                                     record.run_id, None))
        assert walk.problems == []
        partitions = {n["asset"].split("[")[1].rstrip("]") for n in walk.nodes
                      if "[" in n["asset"] and not n["asset"].startswith("raw_crawl")}
        assert partitions == {name}
        assets = {n["asset"] for n in walk.nodes}
        assert {f"merged_model[{name}]", f"sft_shards[{name}]"} <= assets
        # the corpus is in the lineage of the model that was pre-trained on it, and only there
        corpus = {"cleaned_urdu_corpus", "deduplicated_corpus"}
        if RECIPES[name]["cpt"]:
            assert corpus <= assets, assets
        else:
            assert not corpus & assets, assets
    assert roots["real-a"] != roots["real-b"]
    # the SFT-only recipe trained on no corpus document; the CPT one on the Urdu sources
    manifests = {n: json.loads((t.work(n) / "published" / "provenance" /
                                "manifest.json").read_text()) for n in RECIPES}
    assert manifests["real-b"]["documents"] == 0 and manifests["real-a"]["documents"] > 0
    assert set(manifests["real-a"]["documents_by_source"]) <= {"urdu_news", "urdu_blog",
                                                                "english_docs"}


def lineage_cli(t: TwoRecipes, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vazhi_assets.lineage.cli", *args],
                          env=t.env(), capture_output=True, text=True, timeout=300)


def test_verify_passes_fails_on_one_byte_and_knows_a_stranger(
        two_recipes: TwoRecipes, tmp_path: Path, record_property: object) -> None:
    from vazhi_assets.training.base_model import smollm2_gguf_path

    t = two_recipes
    produced = t.work("real-a") / "published" / "real-a-Q8_0.gguf"
    started = time.monotonic()
    ok = lineage_cli(t, "verify", str(produced))
    record_property("verify_seconds", round(time.monotonic() - started, 2))
    assert ok.returncode == 0, ok.stderr
    assert "VERIFIED" in ok.stdout and "'real-a'" in ok.stdout
    assert t.results["real-a"].run_id in ok.stdout

    flipped = tmp_path / "real-a-Q8_0.gguf"
    shutil.copyfile(produced, flipped)
    with flipped.open("r+b") as handle:
        handle.seek(flipped.stat().st_size // 2)
        byte = handle.read(1)
        handle.seek(-1, os.SEEK_CUR)
        handle.write(bytes([byte[0] ^ 0x01]))
    bad = lineage_cli(t, "verify", str(flipped))
    assert bad.returncode == 1 and "MODIFIED" in bad.stdout, bad.stdout

    stranger = lineage_cli(t, "verify", str(smollm2_gguf_path()))
    assert stranger.returncode == 2 and "UNKNOWN" in stranger.stdout, stranger.stdout


def test_trace_lists_exactly_a_sources_pages(two_recipes: TwoRecipes,
                                             record_property: object) -> None:
    t = two_recipes
    produced = t.work("real-a") / "published" / "real-a-Q4_K_M.gguf"
    started = time.monotonic()
    traced = lineage_cli(t, "trace", str(produced), "--source", "urdu_blog")
    record_property("trace_seconds", round(time.monotonic() - started, 2))
    assert traced.returncode == 0, traced.stderr
    listed = {line.split("|")[1].strip() for line in traced.stdout.splitlines()
              if line.startswith("| {demo_site}")}
    packed = pl.read_parquet(t.work("real-a") / "cpt_shards" / "documents.parquet")
    expected = set(packed.filter((pl.col("source") == "urdu_blog")
                                 & (pl.col("split") == "train"))["url"])
    assert listed == expected and expected
    assert all("/urdu-blog/" in url for url in listed)
    none = lineage_cli(t, "trace", str(produced), "--source", "tamil_news")
    assert none.returncode == 0 and "0 corpus documents" in none.stdout


def test_feedback_retrain_shows_what_entered_beside_the_deltas(two_recipes: TwoRecipes) -> None:
    """A correction for real-b: the sensor asks for a retrain of that partition only; the new
    benchmark row comes with the lineage diff (the feedback sample entered) and the deltas."""
    from vazhi_assets.definitions import ALL_ASSETS, ALL_CHECKS
    from vazhi_assets.feedback.assets import feedback_sensor, retrain_from_feedback

    t = two_recipes
    inbox = t.data / "feedback" / "inbox"
    inbox.mkdir(parents=True, exist_ok=True)
    row = {"prompt": "پاکستان کا دارالحکومت کون سا شہر ہے؟", "answer": "لاہور",
           "rating": "down", "correction": "پاکستان کا دارالحکومت اسلام آباد ہے۔",
           "language": "ur", "model_version": "real-b", "created_at": "2026-12-01T10:00:00Z"}
    (inbox / "week-1.jsonl").write_text(json.dumps(row, ensure_ascii=False) + "\n", "utf-8")
    settled = time.time() - 60
    os.utime(inbox / "week-1.jsonl", (settled, settled))
    context = dg.build_sensor_context(instance=t.instance, resources=t.resources)
    result = feedback_sensor(context)
    assert isinstance(result, dg.SensorResult)
    requests = {r.partition_key: r for r in result.run_requests}
    assert set(requests) == {"real-a", "real-b"}  # both trained models take Urdu feedback
    defs = dg.Definitions(assets=ALL_ASSETS, asset_checks=ALL_CHECKS,
                          jobs=[retrain_from_feedback], resources=t.resources)
    run = defs.resolve_job_def("retrain_from_feedback").execute_in_process(
        instance=t.instance, partition_key="real-b", tags=requests["real-b"].tags,
        run_config=BENCH_CONFIG, raise_on_error=False)
    assert run.success, [e.step_key for e in run.get_step_failure_events()]
    meta = _meta(run, "benchmark_table")
    assert meta["compared_with_run"] == t.results["real-b"].run_id
    assert meta["samples_entered"] == 1 and meta["documents_entered"] == 0
    assert "feedback" in meta["lineage_diff"] and "| entered |" in meta["lineage_diff"]
    assert "purity_ur" in meta["benchmark_deltas"]
    rows = t.resources["storage"].catalog.query(
        "select distinct run_id from benchmark_results where recipe = 'real-a'")
    assert rows.height == 1  # the other partition was not retrained
    # the console diff of the partition's last two benchmark runs says the same
    cli = lineage_cli(t, "diff", "--recipe", "real-b")
    assert cli.returncode == 0, cli.stderr
    assert f"{t.results['real-b'].run_id[:8]}" in cli.stdout and run.run_id[:8] in cli.stdout
    assert "| entered |" in cli.stdout and "feedback" in cli.stdout
    single = lineage_cli(t, "diff", "--recipe", "real-a")
    assert single.returncode == 2 and "has 1 benchmark runs" in single.stderr


def _recheck(t: TwoRecipes, asset: str, check: str, partition: str) -> dg.ExecuteInProcessResult:
    """Re-run one check alone on a partition, as the UI's "Execute" on a check does."""
    from vazhi_assets.definitions import ALL_ASSETS, ALL_CHECKS

    job = dg.define_asset_job("recheck", selection=dg.AssetSelection.checks(
        dg.AssetCheckKey(dg.AssetKey(asset), check)))
    defs = dg.Definitions(assets=ALL_ASSETS, asset_checks=ALL_CHECKS, jobs=[job],
                          resources=t.resources)
    return defs.resolve_job_def("recheck").execute_in_process(
        instance=t.instance, tags={"dagster/partition": partition}, raise_on_error=False)


def test_a_failed_check_refuses_that_partitions_file_only(two_recipes: TwoRecipes) -> None:
    from vazhi_assets.definitions import ALL_ASSETS, ALL_CHECKS

    t = two_recipes
    # real-b now wants its phone file under 1 MB: the snapshot changes, the check re-run alone
    # fails on the Q4_K_M file that is already published
    path = t.data / "recipes" / "real-b.yaml"
    spec = yaml.safe_load(path.read_text())
    spec["export"] = {**spec.get("export", {}), "size_budget_mb": 1}
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    snapshot = materialize_recipe(t.instance, t.resources, "real-b",
                                  dg.AssetSelection.assets("recipe"))
    assert snapshot.success
    recheck = _recheck(t, "gguf_q4_k_m", "size_budget", "real-b")
    assert [e.passed for e in recheck.get_asset_check_evaluations()] == [False]

    card = materialize_recipe(t.instance, t.resources, "real-b",
                              dg.AssetSelection.assets("model_card"))
    assert card.success
    meta = _meta(card, "model_card")
    assert [f["type"] for f in meta["files"]] == ["F16", "Q8_0"]
    [refused] = meta["refused"]
    assert refused["type"] == "Q4_K_M"
    q4 = t.instance.fetch_materializations(dg.AssetRecordsFilter(
        asset_key=dg.AssetKey("gguf_q4_k_m"), asset_partitions=["real-b"]), limit=1).records[0]
    assert (f"size_budget on gguf_q4_k_m[real-b] (materialized in run {q4.run_id[:8]}): "
            f"FAILED in run {recheck.run_id[:8]}" in refused["why"])
    published = sorted(p.name for p in (t.work("real-b") / "published").iterdir())
    assert "real-b-Q4_K_M.gguf" not in published and "real-b-Q8_0.gguf" in published

    # real-a is untouched: all three files still publish
    other = dg.materialize([*ALL_ASSETS, *ALL_CHECKS], selection=dg.AssetSelection.assets(
        "model_card"), partition_key="real-a", instance=t.instance, resources=t.resources)
    assert [f["type"] for f in _meta(other, "model_card")["files"]] == ["F16", "Q8_0", "Q4_K_M"]
