"""The optional lm-evaluation-harness path: error messages, result flattening, the asset config
and the asset's catalog rows.

lm-eval is not part of the default install and its tasks need the Hugging Face hub, so the real
``simple_evaluate`` never runs here. Where a test needs lm-eval's plumbing, a stand-in module
takes its place in ``sys.modules``: it returns a results dict shaped like lm-eval 0.4.13's, or
fails the way lm-eval does offline, by asking the real ``datasets`` library for Belebele.
"""

import importlib.util
import sys
import types
from pathlib import Path

import dagster as dg
import pydantic
import pytest

from vazhi_assets.evaluation import harness as hx
from vazhi_assets.evaluation.harness_assets import TABLE, HarnessConfig, harness_scores
from vazhi_assets.resources import VazhiStorage

# What lm-eval 0.4.13's simple_evaluate returns for two tasks with limit=20 (abridged to the
# keys the flattening reads, plus neighbours it must skip): per-task metrics keyed
# "<metric>,<filter>", name/alias/sample_len beside them, a stderr lm-eval could not compute
# ("N/A"), and document counts under "n-samples".
LM_EVAL_RESULTS = {
    "results": {
        "belebele_urd_Arab": {
            "name": "belebele_urd_Arab", "alias": "belebele_urd_Arab", "sample_len": 20,
            "acc,none": 0.25, "acc_stderr,none": 0.09933992677987828,
            "acc_norm,none": 0.3, "acc_norm_stderr,none": 0.10513149660756935,
        },
        "xnli_ur": {
            "name": "xnli_ur", "alias": "xnli_ur", "sample_len": 20,
            "acc,none": 0.35, "acc_stderr,none": "N/A",
        },
    },
    "group_subtasks": {"belebele_urd_Arab": [], "xnli_ur": []},
    "configs": {"xnli_ur": {"task": "xnli_ur", "dataset_path": "xnli", "dataset_name": "ur"}},
    "versions": {"belebele_urd_Arab": 0.0, "xnli_ur": 1.0},
    "n-shot": {"belebele_urd_Arab": 0, "xnli_ur": 0},
    "higher_is_better": {"belebele_urd_Arab": {"acc": True, "acc_norm": True},
                         "xnli_ur": {"acc": True}},
    "n-samples": {"belebele_urd_Arab": {"original": 900, "effective": 20},
                  "xnli_ur": {"original": 5010, "effective": 20}},
    "config": {"model": "hf", "limit": 20.0, "batch_size": 8, "device": "cpu"},
    "git_hash": None,
    "date": 1795314920.0,
}

EXPECTED_ROWS = [
    {"task": "belebele_urd_Arab", "metric": "acc", "value": 0.25,
     "stderr": 0.09933992677987828, "n_samples": 20},
    {"task": "belebele_urd_Arab", "metric": "acc_norm", "value": 0.3,
     "stderr": 0.10513149660756935, "n_samples": 20},
    {"task": "xnli_ur", "metric": "acc", "value": 0.35, "stderr": None, "n_samples": 20},
]


def _model_dir(tmp_path: Path) -> Path:
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text('{"model_type": "llama"}', encoding="utf-8")
    return model


def _stand_in_lm_eval(monkeypatch: pytest.MonkeyPatch, simple_evaluate) -> list[dict]:
    """Put a minimal ``lm_eval`` (version, TaskManager, simple_evaluate) in sys.modules;
    returns the list that records each simple_evaluate call's keyword arguments."""
    calls: list[dict] = []

    class TaskManager:
        all_tasks = sorted(hx.DEFAULT_HARNESS_TASKS)

    def record(**kwargs):
        calls.append(kwargs)
        return simple_evaluate(**kwargs)

    package = types.ModuleType("lm_eval")
    package.__version__ = "0.4.13"
    package.simple_evaluate = record
    tasks = types.ModuleType("lm_eval.tasks")
    tasks.TaskManager = TaskManager
    package.tasks = tasks
    monkeypatch.setitem(sys.modules, "lm_eval", package)
    monkeypatch.setitem(sys.modules, "lm_eval.tasks", tasks)
    return calls


def test_flatten_results_one_row_per_task_and_metric() -> None:
    assert hx.flatten_results(LM_EVAL_RESULTS) == EXPECTED_ROWS
    filtered = {"results": {"t": {"alias": "t", "exact_match,strict-match": 0.5,
                                  "exact_match_stderr,strict-match": 0.1}}}
    assert hx.flatten_results(filtered) == [
        {"task": "t", "metric": "exact_match,strict-match", "value": 0.5, "stderr": 0.1,
         "n_samples": None}]
    assert hx.flatten_results({"results": {}}) == []


def test_missing_lm_eval_names_the_extra(monkeypatch: pytest.MonkeyPatch,
                                         tmp_path: Path) -> None:
    if importlib.util.find_spec("lm_eval") is not None:
        monkeypatch.setitem(sys.modules, "lm_eval", None)  # makes `import lm_eval` fail
    with pytest.raises(hx.HarnessError, match=r"pip install -e '\.\[harness\]'"):
        hx.run_harness(_model_dir(tmp_path), ["xnli_ur"])


def test_bad_requests_fail_before_lm_eval(monkeypatch: pytest.MonkeyPatch,
                                          tmp_path: Path) -> None:
    calls = _stand_in_lm_eval(monkeypatch, lambda **_: LM_EVAL_RESULTS)
    with pytest.raises(hx.HarnessError, match="materialize merged_model first"):
        hx.run_harness(tmp_path / "nowhere", ["xnli_ur"])
    with pytest.raises(hx.HarnessError, match="no lm-eval tasks"):
        hx.run_harness(_model_dir(tmp_path), [])
    with pytest.raises(hx.HarnessError, match=r"no task\(s\) \['xnli_urd'\]"):
        hx.run_harness(tmp_path / "model", ["xnli_urd"])
    assert calls == []


def test_offline_hub_gives_a_clear_message(monkeypatch: pytest.MonkeyPatch,
                                           tmp_path: Path) -> None:
    import datasets
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "datasets-cache"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)

    def fetch_belebele(**_):  # what a Belebele task does first: load its hub dataset
        datasets.load_dataset("facebook/belebele", "urd_Arab",
                              cache_dir=str(tmp_path / "datasets-cache"))

    _stand_in_lm_eval(monkeypatch, fetch_belebele)
    with pytest.raises(hx.HarnessError) as caught:
        hx.run_harness(_model_dir(tmp_path), ["belebele_urd_Arab"])
    message = str(caught.value)
    assert "HF_HUB_OFFLINE is set" in message, message
    assert "download their datasets from the Hugging Face hub" in message, message
    assert "ConnectionError: Couldn't reach 'facebook/belebele'" in message, message
    assert hx.is_hub_problem(caught.value)

    # An error that has nothing to do with the hub is passed on as it is.
    def broken(**_):
        raise KeyError("Spec 'x' is not a registered task/group/tag name")

    _stand_in_lm_eval(monkeypatch, broken)
    with pytest.raises(KeyError, match="not a registered task"):
        hx.run_harness(tmp_path / "model", ["xnli_ur"])


def test_config_defaults_and_rejects_an_empty_task_list() -> None:
    config = HarnessConfig()
    assert config.tasks == list(hx.DEFAULT_HARNESS_TASKS) and config.limit is None
    for bad in ({"tasks": []}, {"tasks": ["xnli_ur", " "]}, {"tasks": ["xnli_ur"] * 2},
                {"limit": 0}):
        with pytest.raises(pydantic.ValidationError):
            HarnessConfig(**bad)


def _resources(tmp_path: Path) -> dict:
    return {"storage": VazhiStorage(root=str(tmp_path / "data"))}


def _demo_partition(instance: dg.DagsterInstance, resources: dict) -> None:
    """The demo recipe as a partition, its snapshot materialized (nothing trained)."""
    from vazhi_assets.training.recipe_assets import recipe

    instance.add_dynamic_partitions("recipe", ["demo"])
    assert dg.materialize([recipe], partition_key="demo", instance=instance,
                          resources=resources).success


def test_asset_rejects_empty_tasks_and_an_unchecked_merge(tmp_path: Path) -> None:
    instance = dg.DagsterInstance.ephemeral()
    _demo_partition(instance, _resources(tmp_path))
    empty = dg.materialize([harness_scores], instance=instance, resources=_resources(tmp_path),
                           run_config={"ops": {"harness_scores": {"config": {"tasks": []}}}},
                           partition_key="demo", raise_on_error=False)
    assert not empty.success
    cause = empty.get_step_failure_events()[0].step_failure_data.error.cause
    assert "tasks must name at least one lm-eval task" in cause.message

    unchecked = dg.materialize([harness_scores], instance=instance, partition_key="demo",
                               resources=_resources(tmp_path), raise_on_error=False)
    assert not unchecked.success
    error = unchecked.get_step_failure_events()[0].step_failure_data.error
    assert "merged_model[demo] has no model on disk" in error.message

    model = tmp_path / "data" / "models" / "demo" / "merged_model" / "model"
    model.mkdir(parents=True)
    (model / "model.safetensors").write_bytes(b"weights")
    (model / "config.json").write_text("{}", encoding="utf-8")
    unchecked = dg.materialize([harness_scores], instance=instance, partition_key="demo",
                               resources=_resources(tmp_path), raise_on_error=False)
    error = unchecked.get_step_failure_events()[0].step_failure_data.error
    assert "merged_model[demo] has never been materialized" in error.message


def test_asset_appends_rows_to_the_catalog(monkeypatch: pytest.MonkeyPatch,
                                           tmp_path: Path) -> None:
    from vazhi_assets.identity import model_identity
    from vazhi_assets.training.recipe import load_recipe

    resources = _resources(tmp_path)
    storage = resources["storage"]
    instance = dg.DagsterInstance.ephemeral()
    _demo_partition(instance, resources)
    model = storage.base / "models" / "demo" / "merged_model" / "model"
    model.mkdir(parents=True)
    (model / "model.safetensors").write_bytes(b"weights")
    (model / "config.json").write_text("{}", encoding="utf-8")
    # a merge recorded as materialized, its sanity check passed (training is not under test)
    instance.report_runless_asset_event(dg.AssetMaterialization(
        "merged_model", partition="demo",
        metadata={"content_hash": model_identity(model)["content_hash"]}))
    instance.report_runless_asset_event(dg.AssetCheckEvaluation(
        asset_key=dg.AssetKey("merged_model"), check_name="merged_model_sanity", passed=True,
        partition="demo"))
    calls = _stand_in_lm_eval(monkeypatch, lambda **_: LM_EVAL_RESULTS)

    runs = [dg.materialize([harness_scores], instance=instance, resources=resources,
                           partition_key="demo",
                           run_config={"ops": {"harness_scores": {"config": {
                               "tasks": ["belebele_urd_Arab", "xnli_ur"], "limit": 20}}}})
            for _ in range(2)]
    assert calls[0]["model"] == "hf" and calls[0]["tasks"] == ["belebele_urd_Arab", "xnli_ur"]
    assert calls[0]["model_args"] == {"pretrained": str(model), "dtype": "float32"}
    assert calls[0]["limit"] == 20 and calls[0]["device"] == "cpu"

    table = storage.catalog.query(
        f"select * from {TABLE} order by measured_at, run_id, task, metric")
    assert table.height == 2 * len(EXPECTED_ROWS)
    assert set(table["run_id"]) == {r.run_id for r in runs}
    spec = load_recipe("demo")
    assert set(table["recipe"]) == {spec.name} and set(table["recipe_hash"]) == {
        spec.content_hash()}
    first = table.filter(table["run_id"] == runs[0].run_id).select(
        "task", "metric", "value", "stderr", "n_samples").sort("task", "metric")
    assert first.to_dicts() == EXPECTED_ROWS
    meta = runs[1].asset_materializations_for_node("harness_scores")[0].metadata
    assert meta["rows_in_history"].value == 6 and meta["dagster/row_count"].value == 3
    assert "| xnli_ur | acc | 0.35 |" in meta["scores"].value
