"""The model half on a tiny random Llama with the real SmolLM2 tokenizer: same code paths as the
real model, seconds per step."""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
import yaml

from vazhi_assets_tests.conftest import Materialized

TRAINING = ["base_model", "tokenizer_report", "cpt_shards", "sft_dataset", "sft_shards",
            "training_preflight", "cpt_adapter", "sft_adapter", "merged_model"]


def tiny_recipe(path: Path, tiny_base_dir: Path, **data: object) -> Path:
    recipe = {
        "inherits": "demo",
        "name": "tiny-test",
        "model": {"name": str(tiny_base_dir), "max_seq_length": 128},
        "data": {"sft_max_per_source": 24, **data},
        "cpt": {"max_steps": 4, "eval_steps": 2, "save_steps": 2},
        "sft": {"max_steps": 4, "eval_steps": 2, "save_steps": 2},
        "preflight_steps": 1,
        # a random model cannot answer; the rehearsal here checks the mechanics only
        "preflight_check_answers": False,
    }
    path.write_text(yaml.safe_dump(recipe), encoding="utf-8")
    return path


def run_training(corpus: Materialized, tmp_path: Path, recipe: Path,
                 run_config: dict | None = None, instance: dg.DagsterInstance | None = None,
                 ) -> tuple[dg.ExecuteInProcessResult, dict]:
    from vazhi_assets.definitions import ALL_ASSETS, ALL_CHECKS
    from vazhi_assets.resources import VazhiStorage
    from vazhi_assets.training.resources import RecipeResource

    shutil.copytree(corpus.data_dir / "tables", tmp_path / "data" / "tables")
    resources = {**corpus.resources, "storage": VazhiStorage(root=str(tmp_path / "data")),
                 "recipe": RecipeResource(name=str(recipe))}
    result = dg.materialize(
        [*ALL_ASSETS, *ALL_CHECKS], selection=dg.AssetSelection.assets(*TRAINING),
        instance=instance or dg.DagsterInstance.ephemeral(), resources=resources,
        run_config=run_config, raise_on_error=False,
    )
    return result, resources


def materialized(result: dg.ExecuteInProcessResult) -> set[str]:
    return {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}


def checks(result: dg.ExecuteInProcessResult) -> dict[str, bool]:
    return {e.check_name: e.passed for e in result.get_asset_check_evaluations()}


def metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict:
    return {k: v.value for k, v in
            result.asset_materializations_for_node(asset)[0].metadata.items()}


@dataclass
class Chain:
    """The tiny chain materialized once per module; later tests build on its instance."""

    root: Path
    instance: dg.DagsterInstance
    resources: dict
    result: dg.ExecuteInProcessResult


@pytest.fixture(scope="module")
def chain(corpus_run: Materialized, tiny_base_dir: Path,
          tmp_path_factory: pytest.TempPathFactory) -> Chain:
    root = tmp_path_factory.mktemp("chain")
    recipe = tiny_recipe(root / "tiny.yaml", tiny_base_dir)
    spec = yaml.safe_load(recipe.read_text())
    spec["feedback"] = {"min_new_corrections": 3}
    recipe.write_text(yaml.safe_dump(spec), encoding="utf-8")
    instance = dg.DagsterInstance.ephemeral()
    result, resources = run_training(corpus_run, root, recipe, instance=instance)
    return Chain(root, instance, resources, result)


def test_chain_materializes_to_merged_model(chain: Chain) -> None:
    result = chain.result
    assert materialized(result) == set(TRAINING)
    verdicts = checks(result)
    for name in ("tokenizer_integrity", "chatml_validity", "sft_script_purity",
                 "mask_coverage", "preflight_passed"):
        assert verdicts[name], name
    # a randomly initialised model cannot answer in Urdu or Tamil: the sanity check says so
    assert verdicts["merged_model_sanity"] is False

    shards = metadata(result, "cpt_shards")
    assert shards["train_blocks"] > 0 and shards["val_blocks"] > 0
    assert abs(shards["replay_token_share"] - 0.07) < 0.03
    cpt = metadata(result, "cpt_adapter")
    assert cpt["global_step"] == 4 and cpt["recipe"] == "tiny-test"
    assert cpt["loss_curve"].startswith("![CPT loss](data:image/png;base64,")
    assert {"ppl_ur_base", "ppl_ta_base", "ppl_en_base", "ppl_ur_cpt"} <= set(cpt)
    assert metadata(result, "sft_shards")["samples_without_trained_tokens"] == 0

    merged = Path(metadata(result, "merged_model")["path"])
    assert (merged / "model.safetensors").exists() and (merged / "tokenizer.json").exists()
    generation = json.loads((merged / "generation_config.json").read_text())
    assert generation["temperature"] == 0.1 and generation["top_p"] == 0.9
    assert generation["repetition_penalty"] == 1.1 and generation["max_new_tokens"] == 256
    assert 2 in generation["eos_token_id"]  # <|im_end|> ends a turn
    config = json.loads((merged / "config.json").read_text())
    assert config["dtype"] == "float16"
    tokenizer_config = json.loads((merged / "tokenizer_config.json").read_text())
    assert "<|im_start|>" in (tokenizer_config.get("chat_template")
                              or (merged / "chat_template.jinja").read_text())


def test_ablation_partition_lands_a_benchmark_row(chain: Chain) -> None:
    """SFT again with LoRA r=8 on the same CPT adapter, measured; the row lands in
    benchmark_results tagged with the ablation."""
    from vazhi_assets.definitions import ALL_ASSETS, ALL_CHECKS

    resources, tmp_path = chain.resources, chain.root
    ablation = dg.materialize([*ALL_ASSETS, *ALL_CHECKS],
                              selection=dg.AssetSelection.assets("ablation_benchmark"),
                              partition_key="sft_lora_r8", instance=chain.instance,
                              resources=resources, raise_on_error=False)
    assert ablation.success
    meta = metadata(ablation, "ablation_benchmark")
    assert meta["ablation"] == "sft_lora_r8" and meta["sft_samples"] > 0
    rows = resources["storage"].catalog.query("select * from benchmark_results")
    assert rows["variant"].to_list() == ["sft_merged_fp16[sft_lora_r8]"]
    assert rows["recipe"][0] == "tiny-test[sft_lora_r8]" and rows["ablation"][0] == "sft_lora_r8"
    assert rows["ppl_ur"][0] > 1 and rows["ppl_ta"][0] > 1
    adapter = json.loads((tmp_path / "data" / "models" / "tiny-test" / "ablations" /
                          "sft_lora_r8" / "sft_adapter" / "adapter" /
                          "adapter_config.json").read_text())
    assert adapter["r"] == 8


def test_feedback_sensor_requests_one_retrain_whose_model_lists_the_rows(chain: Chain) -> None:
    from vazhi_assets.definitions import ALL_ASSETS, ALL_CHECKS
    from vazhi_assets.feedback.assets import feedback_sensor, retrain_from_feedback
    from vazhi_assets.feedback.store import FeedbackStore
    from vazhi_assets_tests.test_feedback import jsonl, rows

    instance, resources, tmp_path = chain.instance, chain.resources, chain.root
    before = instance.get_latest_materialization_event(dg.AssetKey("merged_model"))

    inbox = tmp_path / "data" / "feedback" / "inbox"
    inbox.mkdir(parents=True, exist_ok=True)
    (inbox / "week-1.jsonl").write_text(jsonl(rows()[:2]), encoding="utf-8")
    settled = time.time() - 60  # the sensor leaves files modified in the last 2 s alone
    os.utime(inbox / "week-1.jsonl", (settled, settled))
    context = dg.build_sensor_context(instance=instance, resources=resources)
    assert isinstance(feedback_sensor(context), dg.SkipReason)  # 2 of 3: not yet

    (inbox / "week-2.jsonl").write_text(jsonl(rows()[2:] + ["{broken"]), encoding="utf-8")
    os.utime(inbox / "week-2.jsonl", (settled, settled))
    context = dg.build_sensor_context(instance=instance, resources=resources,
                                      cursor=context.cursor)
    result = feedback_sensor(context)
    assert isinstance(result, dg.SensorResult) and len(result.run_requests) == 1
    request = result.run_requests[0]
    assert request.run_key == "feedback-tiny-test-1-3" and result.cursor == "3"

    defs = dg.Definitions(assets=ALL_ASSETS, asset_checks=ALL_CHECKS,
                          jobs=[retrain_from_feedback], resources=resources)
    run = defs.resolve_job_def("retrain_from_feedback").execute_in_process(
        instance=instance, tags=request.tags, raise_on_error=False)
    done = materialized(run)
    assert {"feedback_sft_examples", "sft_dataset", "sft_shards", "sft_adapter",
            "merged_model"} <= done
    assert "cpt_adapter" not in done  # retraining starts from the recipe's CPT adapter
    # the random tiny model cannot answer, so the blocking sanity check stops the export:
    # that, and only that, is what failed
    assert [e.step_key for e in run.get_step_failure_events()] == [
        "merged_model_merged_model_sanity"]
    # the SFT data changed, so the finished checkpoints of the first run are not resumed
    sft = metadata(run, "sft_adapter")
    assert sft["resumed_from"] == "" and sft["global_step"] == 4
    after = instance.get_latest_materialization_event(dg.AssetKey("merged_model"))
    assert after.run_id == run.run_id != before.run_id
    meta = after.asset_materialization.metadata
    store = FeedbackStore(tmp_path / "data" / "feedback" / "feedback.duckdb")
    ids = store.rows()["feedback_id"].to_list()
    assert sorted(meta["feedback_rows"].value) == sorted(ids) and len(ids) == 3
    assert store.rejects().height == 1
    model_dir = tmp_path / "data" / "models" / "tiny-test" / "merged_model"
    assert sorted(json.loads((model_dir / "feedback_rows.json").read_text())) == sorted(ids)

    # nothing new: the next evaluation requests nothing
    context = dg.build_sensor_context(instance=instance, resources=resources,
                                      cursor=result.cursor)
    assert isinstance(feedback_sensor(context), dg.SkipReason)


def test_recipe_without_cpt_trains_alpaca_sft_only(corpus_run: Materialized,
                                                   tiny_base_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "dialect.yaml"
    path.write_text(yaml.safe_dump({
        "inherits": "saudi-dialect-demo", "name": "tiny-dialect",
        "model": {"name": str(tiny_base_dir), "max_seq_length": 128},
        "sft": {"max_steps": 4, "eval_steps": 2, "save_steps": 2},
        "preflight_steps": 1, "preflight_check_answers": False,
    }), encoding="utf-8")
    result, _ = run_training(corpus_run, tmp_path, path)
    assert materialized(result) == set(TRAINING)
    assert metadata(result, "cpt_adapter")["skipped"] == "recipe has no CPT"
    assert metadata(result, "cpt_shards")["skipped"] == "recipe has no CPT"
    verdicts = checks(result)
    assert verdicts["mask_coverage"] and verdicts["chatml_validity"]
    shards = metadata(result, "sft_shards")
    assert shards["samples"] == 35 and shards["template_has_generation_blocks"]
    models = tmp_path / "data" / "models" / "tiny-dialect"
    assert not (models / "cpt_adapter" / "adapter").exists()
    merged = Path(metadata(result, "merged_model")["path"])
    info = json.loads((merged / "vazhi_merge.json").read_text())
    assert [Path(a).parent.name for a in info["adapters"]] == ["sft_adapter"]
    # the merged model ships the Alpaca template it was trained with (without markers)
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(merged))
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Translate into the Najdi Arabic dialect.\n\nHello"}],
        tokenize=False, add_generation_prompt=True)
    assert prompt.startswith("Below is an instruction")
    assert prompt.endswith("### Input:\nHello\n\n### Response:\n")
    assert "generation" not in tokenizer.chat_template


def test_invalid_chatml_blocks_training(corpus_run: Materialized, tiny_base_dir: Path,
                                        tmp_path: Path) -> None:
    bad = tmp_path / "user_sft.jsonl"
    rows = [
        {"messages": [{"role": "assistant", "content": "جواب پہلے"},
                      {"role": "user", "content": "سوال بعد میں"}], "language": "ur"},
        {"messages": [{"role": "user", "content": "تعلیم کیوں ضروری ہے؟"},
                      {"role": "assistant", "content": "تعلیم ضروری ہے۔<|im_end|>"}],
         "language": "ur"},
    ]
    bad.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    recipe = tiny_recipe(tmp_path / "tiny.yaml", tiny_base_dir, sft_files=[str(bad)])
    result, _ = run_training(corpus_run, tmp_path, recipe)
    assert checks(result)["chatml_validity"] is False
    done = materialized(result)
    assert "sft_dataset" in done
    for blocked in ("sft_shards", "training_preflight", "cpt_adapter", "sft_adapter",
                    "merged_model"):
        assert blocked not in done, blocked


def test_broken_mask_blocks_training(corpus_run: Materialized, tiny_base_dir: Path,
                                     tmp_path: Path) -> None:
    """The stock SmolLM2 template has no generation blocks: every mask comes out empty."""
    from vazhi_assets.training.base_model import load_tokenizer

    stock = load_tokenizer(tiny_base_dir, 128).chat_template
    recipe = tiny_recipe(tmp_path / "tiny.yaml", tiny_base_dir)
    config = {"ops": {"sft_shards": {"config": {"chat_template": stock}}}}
    result, _ = run_training(corpus_run, tmp_path, recipe, run_config=config)
    assert checks(result)["mask_coverage"] is False
    done = materialized(result)
    assert "sft_shards" in done
    for blocked in ("training_preflight", "cpt_adapter", "sft_adapter", "merged_model"):
        assert blocked not in done, blocked


def _train_in_child(base: str, shards: str, out: str, recipe_path: str) -> None:
    from vazhi_assets.training.recipe import load_recipe
    from vazhi_assets.training.train import train_cpt

    recipe = load_recipe(recipe_path)
    train_cpt(Path(base), Path(shards), Path(out), model_spec=recipe.model,
              lora=recipe.cpt_lora, schedule=recipe.cpt, log=lambda _: None)


def test_killed_training_resumes_from_checkpoint(tiny_base_dir: Path, tmp_path: Path) -> None:
    from vazhi_assets.training.base_model import load_tokenizer
    from vazhi_assets.training.recipe import load_recipe
    from vazhi_assets.training.shards import build_cpt_shards
    from vazhi_assets.training.train import train_cpt

    texts = [f"دستاویز نمبر {i}: " + "ہر شخص کو تعلیم کا حق حاصل ہے۔ " * 40 for i in range(40)]
    docs = pl.DataFrame({"doc_id": [f"d{i}" for i in range(40)], "source": "s",
                         "language": "ur", "text": texts, "role": "target"})
    tokenizer = load_tokenizer(tiny_base_dir, 128)
    shards = tmp_path / "shards"
    build_cpt_shards(docs, docs.clear(), tokenizer, shards, seq_length=128, val_fraction=0.1,
                     replay_ratio=0.0, tokenizer_name="tiny")
    recipe_path = tiny_recipe(tmp_path / "r.yaml", tiny_base_dir)
    data = yaml.safe_load(recipe_path.read_text())
    data["cpt"] = {"max_steps": 400, "save_steps": 2, "eval_steps": 400}
    recipe_path.write_text(yaml.safe_dump(data))
    out = tmp_path / "cpt"
    child = multiprocessing.get_context("spawn").Process(
        target=_train_in_child, args=(str(tiny_base_dir), str(shards), str(out),
                                      str(recipe_path)))
    child.start()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not list((out / "checkpoints").glob("checkpoint-*")):
        time.sleep(0.2)
    time.sleep(1.0)
    child.kill()  # SIGKILL: no chance to clean up, like a crashed or preempted machine
    child.join()
    assert child.exitcode != 0
    saved = sorted(int(p.name.split("-")[1]) for p in (out / "checkpoints").glob("checkpoint-*")
                   if (p / "trainer_state.json").exists())
    assert saved and saved[-1] < 400, saved
    recipe = load_recipe(str(recipe_path))
    result = train_cpt(tiny_base_dir, shards, out, model_spec=recipe.model, lora=recipe.cpt_lora,
                       schedule=recipe.cpt, log=lambda _: None)
    assert result.resumed_from and result.resumed_from.endswith(f"checkpoint-{saved[-1]}")
    assert result.global_step == 400
    logged = [step for step, _ in result.train_loss]
    assert logged[0] <= saved[-1] + 1 and logged[-1] == 400
    assert (out / "adapter" / "adapter_model.safetensors").exists()


def test_shards_are_deterministic(tiny_base_dir: Path, tmp_path: Path) -> None:
    from vazhi_assets.training.base_model import load_tokenizer
    from vazhi_assets.training.shards import ShardManifest, build_cpt_shards, pack

    blocks, tail = pack([[1, 2, 3], [4, 5]], 3, 0)
    assert blocks == [[1, 2, 3], [0, 4, 5]] and tail == 1
    tokenizer = load_tokenizer(tiny_base_dir, 64)
    target = pl.DataFrame({"doc_id": [f"t{i}" for i in range(30)], "source": "tamil",
                           "language": "ta", "role": "target",
                           "text": [f"திருக்குறள் {i} அறம் பொருள் இன்பம் " * 8 for i in range(30)]})
    replay = pl.DataFrame({"doc_id": [f"e{i}" for i in range(30)], "source": "docs",
                           "language": "en", "role": "replay",
                           "text": [f"English replay text number {i}. " * 60 for i in range(30)]})
    manifests = [build_cpt_shards(target, replay, tokenizer, tmp_path / name, seq_length=64,
                                  val_fraction=0.1, replay_ratio=0.2, tokenizer_name="tiny")
                 for name in ("a", "b")]
    assert manifests[0].files == manifests[1].files
    assert manifests[0].documents_by_split["val"] >= 6  # at least 3 per language
    assert 0.18 <= manifests[0].replay_token_share <= 0.3
    assert ShardManifest.load(tmp_path / "a" / "manifest.json") == manifests[0]


def test_training_template_matches_stock_and_masks_assistant(tiny_base_dir: Path) -> None:
    from vazhi_assets.training.base_model import load_tokenizer
    from vazhi_assets.training.sft_render import render, templates_agree, training_template

    tokenizer = load_tokenizer(tiny_base_dir, 256)
    template = training_template(tokenizer.chat_template)
    conversations = [
        [{"role": "user", "content": "ہیلو"}, {"role": "assistant", "content": "جی، فرمائیے۔"}],
        [{"role": "system", "content": "مختصر جواب دیں۔"}, {"role": "user", "content": "سوال"},
         {"role": "assistant", "content": "جواب"}, {"role": "user", "content": "اور؟"},
         {"role": "assistant", "content": "بس۔"}],
    ]
    assert templates_agree(tokenizer, template, conversations) == []
    rendered = render(tokenizer, conversations[0], template, 256)
    trained = [t for t, m in zip(rendered.input_ids, rendered.assistant_masks, strict=True) if m]
    assert tokenizer.decode(trained) == "جی، فرمائیے۔<|im_end|>"
    assert render(tokenizer, conversations[0], tokenizer.chat_template, 256).trained_tokens == 0
    short = render(tokenizer, conversations[1], template, 12)
    assert short.assistant_tokens_truncated > 0 and len(short.input_ids) == 12


@pytest.mark.parametrize("flag", ["load_in_4bit", "use_unsloth"])
def test_gpu_only_options_fail_clearly_on_cpu(flag: str) -> None:
    from vazhi_assets.training.recipe import ModelSpec
    from vazhi_assets.training.train import cuda_available, require_gpu_features

    if cuda_available():
        pytest.skip("a GPU is present")
    spec = ModelSpec(dtype="bfloat16", **{flag: True})
    with pytest.raises(RuntimeError, match=f"model.{flag}"):
        require_gpu_features(spec)
