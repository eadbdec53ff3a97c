"""Lineage of what was consumed, on the tiny model: a source added and the recipe retrained,
the lineage diff lists exactly the new documents; data and code versions make Dagster's
stale marks mean something (re-running with nothing changed leaves everything fresh, editing
a cleaning step marks the corpus and everything downstream stale)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
import yaml

from vazhi_assets_tests.conftest import Materialized, corpus_instance, disk_instance

pytestmark = pytest.mark.slow

ADDED = "tamil_udhr"
UP_TO_PROVENANCE = ["recipe", "feedback_sft_examples", "base_model", "cpt_shards",
                    "sft_dataset", "sft_shards", "training_preflight", "cpt_adapter",
                    "sft_adapter", "training_provenance"]
STALE_PROBE = """
import json, sys
import dagster as dg
from dagster._utils.test.data_versions import get_stale_status_resolver
from vazhi_assets.definitions import ALL_ASSETS
instance = dg.DagsterInstance.get()
resolver = get_stale_status_resolver(instance, ALL_ASSETS)
keys = json.loads(sys.argv[1])
print(json.dumps({f"{k}[{p}]" if p else k:
                  resolver.get_status(dg.AssetKey(k), p).value for k, p in keys}))
"""
PROBED = [("raw_crawl", "tamil_news"), ("cleaned_tamil_corpus", None),
          ("deduplicated_corpus", None), ("pretraining_mix", None),
          ("cpt_shards", "tiny-diff"), ("cpt_adapter", "tiny-diff"),
          ("training_provenance", "tiny-diff")]


@dataclass
class Retrained:
    root: Path
    home: Path
    instance: dg.DagsterInstance
    resources: dict
    first: dg.ExecuteInProcessResult
    second: dg.ExecuteInProcessResult

    @property
    def data(self) -> Path:
        return self.root / "data"

    def env(self, **extra: str) -> dict[str, str]:
        return {**os.environ, "DAGSTER_HOME": str(self.home), "VAZHI_DATA_DIR": str(self.data),
                **extra}


def _train(instance: dg.DagsterInstance, resources: dict) -> dg.ExecuteInProcessResult:
    from vazhi_assets.definitions import ALL_ASSETS, ALL_CHECKS

    result = dg.materialize([*ALL_ASSETS, *ALL_CHECKS],
                            selection=dg.AssetSelection.assets(*UP_TO_PROVENANCE),
                            partition_key="tiny-diff", instance=instance, resources=resources,
                            raise_on_error=False)
    assert result.success, [e.step_key for e in result.get_step_failure_events()]
    return result


@pytest.fixture(scope="module")
def retrained(corpus_run: Materialized, tiny_base_dir: Path,
              tmp_path_factory: pytest.TempPathFactory) -> Retrained:
    """The tiny recipe trained on the corpus without one Tamil source, then that source is
    crawled (a new partition of raw_crawl), the corpus refreshed and the recipe retrained."""
    from vazhi_assets.crawl.assets import raw_crawl
    from vazhi_assets.definitions import ALL_ASSETS, ALL_CHECKS, CORPUS_SELECTION
    from vazhi_assets.training.recipe_registry import add_recipe

    root = tmp_path_factory.mktemp("lineage")
    instance, home = disk_instance(root)
    instance, resources = corpus_instance(corpus_run, root, skip=(ADDED,), instance=instance)
    recipe = root / "tiny-diff.yaml"
    recipe.write_text(yaml.safe_dump({
        "inherits": "demo", "name": "tiny-diff",
        "model": {"name": str(tiny_base_dir), "max_seq_length": 128},
        # Tamil only and no English replay: what changes is the Tamil corpus alone
        "data": {"languages": ["ta"], "replay_ratio": 0.0, "sft_max_per_source": 12},
        "cpt": {"max_steps": 2, "eval_steps": 50, "save_steps": 50,
                     "max_eval_samples": 16},
        "sft": {"max_steps": 2, "eval_steps": 50, "save_steps": 50,
                     "max_eval_samples": 16},
        "preflight_steps": 1, "preflight_check_answers": False,
    }), encoding="utf-8")
    add_recipe(recipe, instance, user_dir=root / "data" / "recipes")
    first = _train(instance, resources)
    crawl = dg.materialize([raw_crawl], partition_key=ADDED, instance=instance,
                           resources=resources)
    assert crawl.success
    refreshed = dg.materialize([*ALL_ASSETS, *ALL_CHECKS], selection=CORPUS_SELECTION,
                               instance=instance, resources=resources)
    assert refreshed.success
    second = _train(instance, resources)
    return Retrained(root, home, instance, resources, first, second)


def _root(result: dg.ExecuteInProcessResult) -> str:
    [event] = [e for e in result.get_asset_materialization_events()
               if e.asset_key.to_user_string() == "training_provenance"]
    return event.materialization.metadata["provenance_root"].value


def test_diff_after_adding_a_source_lists_exactly_its_documents(
        retrained: Retrained, record_property: object) -> None:
    t = retrained
    old, new = _root(t.first), _root(t.second)
    assert old != new
    out = subprocess.run([sys.executable, "-m", "vazhi_assets.lineage.cli", "diff", old, new],
                         env=t.env(), capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    rows = [[c.strip() for c in line.strip("|").split("|")]
            for line in out.stdout.splitlines() if line.startswith("| entered |")
            or line.startswith("| left |")]
    entered = {r[3] for r in rows if r[0] == "entered" and r[3].startswith("{demo_site}")}
    packed = pl.read_parquet(t.data / "models" / "tiny-diff" / "cpt_shards" /
                             "documents.parquet")
    new_docs = set(packed.filter((pl.col("source") == ADDED)
                                 & (pl.col("split") == "train"))["url"])
    assert new_docs and entered == new_docs, (entered ^ new_docs)
    assert {r[1] for r in rows if r[0] == "entered"} == {ADDED}
    # a document of the other source may leave only because the new source now holds the
    # kept copy of a cross-posted article, and the diff says so
    left = [r for r in rows if r[0] == "left"]
    assert all(r[1] == "tamil_news" and r[2] in {"exact_dedup", "minhash_dedup"}
               for r in left), left
    seconds = float(out.stdout.rsplit("(", 1)[1].split(" s)")[0])
    record_property("diff_seconds", seconds)
    record_property("documents_entered", len(entered))
    record_property("documents_left", len(left))


def test_rerun_with_nothing_changed_is_fresh_and_a_cleaning_edit_is_stale(
        retrained: Retrained, tmp_path: Path) -> None:
    from vazhi_assets.crawl.assets import raw_crawl
    from vazhi_assets.definitions import ALL_ASSETS, ALL_CHECKS, CORPUS_SELECTION

    t = retrained
    # the same page crawled again and the corpus rebuilt: the same data versions
    assert dg.materialize([raw_crawl], partition_key=ADDED, instance=t.instance,
                          resources=t.resources).success
    assert dg.materialize([*ALL_ASSETS, *ALL_CHECKS], selection=CORPUS_SELECTION,
                          instance=t.instance, resources=t.resources).success

    def statuses(pythonpath: str | None = None) -> dict[str, str]:
        env = t.env(**({"PYTHONPATH": pythonpath} if pythonpath else {}))
        out = subprocess.run([sys.executable, "-c", STALE_PROBE, json.dumps(PROBED)], env=env,
                             capture_output=True, text=True, timeout=300, cwd=tmp_path)
        assert out.returncode == 0, out.stderr[-2000:]
        return json.loads(out.stdout.strip().splitlines()[-1])

    assert set(statuses().values()) == {"FRESH"}

    # a cleaning step edited (one comment line in a copy of the package): the corpus and every
    # asset downstream of it, through the recipe's model, is stale; the crawl is not
    import vazhi_assets

    copy = tmp_path / "edited"
    shutil.copytree(Path(vazhi_assets.__file__).parent, copy / "vazhi_assets",
                    ignore=shutil.ignore_patterns("__pycache__"))
    filters = copy / "vazhi_assets" / "corpus" / "filters.py"
    filters.write_text(filters.read_text(encoding="utf-8") + "\n# an edited cleaning step\n",
                       encoding="utf-8")
    edited = statuses(str(copy))
    assert edited.pop("raw_crawl[tamil_news]") == "FRESH"
    assert set(edited.values()) == {"STALE"}, edited
