"""The model half on a tiny random Llama with the real SmolLM2 tokenizer: same code paths as the
real model, seconds per step."""

from __future__ import annotations

import json
import multiprocessing
import time
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
import yaml

from vazhi_assets_tests.conftest import Materialized, corpus_instance

TRAINING = ["recipe", "feedback_sft_examples", "base_model", "tokenizer_report", "cpt_shards",
            "sft_dataset", "sft_shards", "training_preflight", "cpt_adapter", "sft_adapter",
            "merged_model", "training_provenance"]


def tiny_recipe(path: Path, tiny_base_dir: Path, name: str = "tiny-test", **data: object) -> Path:
    recipe = {
        "inherits": "demo",
        "name": name,
        "model": {"name": str(tiny_base_dir), "max_seq_length": 128},
        "data": {"sft_max_per_source": 24, **data},
        "cpt": {"max_steps": 4, "eval_steps": 2, "save_steps": 2, "max_eval_samples": 16},
        "sft": {"max_steps": 4, "eval_steps": 2, "save_steps": 2, "max_eval_samples": 16},
        "preflight_steps": 1,
        # a random model cannot answer; the rehearsal here checks the mechanics only
        "preflight_check_answers": False,
    }
    path.write_text(yaml.safe_dump(recipe), encoding="utf-8")
    return path


@dataclass
class Shared:
    """One instance and data dir with the corpus materialized; each test trains its own
    recipe partition in it (recipes are partitions, so they never share a file)."""

    root: Path
    instance: dg.DagsterInstance
    resources: dict

    @property
    def data(self) -> Path:
        return self.root / "data"


@pytest.fixture(scope="module")
def shared(corpus_run: Materialized, tmp_path_factory: pytest.TempPathFactory) -> Shared:
    root = tmp_path_factory.mktemp("training")
    instance, resources = corpus_instance(corpus_run, root)
    return Shared(root, instance, resources)


def run_training(shared: Shared, recipe: Path, run_config: dict | None = None,
                 selection: list[str] | None = None) -> dg.ExecuteInProcessResult:
    from vazhi_assets.definitions import ALL_ASSETS, ALL_CHECKS
    from vazhi_assets.training.recipe_registry import add_recipe

    spec = add_recipe(recipe, shared.instance, user_dir=shared.data / "recipes")
    return dg.materialize(
        [*ALL_ASSETS, *ALL_CHECKS], selection=dg.AssetSelection.assets(*(selection or TRAINING)),
        partition_key=spec.name, instance=shared.instance, resources=shared.resources,
        run_config=run_config, raise_on_error=False,
    )


def materialized(result: dg.ExecuteInProcessResult) -> set[str]:
    return {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}


def checks(result: dg.ExecuteInProcessResult) -> dict[str, bool]:
    return {e.check_name: e.passed for e in result.get_asset_check_evaluations()}


def metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict:
    return {k: v.value for k, v in
            result.asset_materializations_for_node(asset)[0].metadata.items()}


@pytest.fixture(scope="module")
def chain(shared: Shared, tiny_base_dir: Path) -> dg.ExecuteInProcessResult:
    return run_training(shared, tiny_recipe(shared.root / "tiny.yaml", tiny_base_dir))


def test_chain_materializes_to_merged_model(chain: dg.ExecuteInProcessResult,
                                           shared: Shared) -> None:
    result = chain
    assert materialized(result) == set(TRAINING)
    verdicts = checks(result)
    for name in ("tokenizer_integrity", "chatml_validity", "sft_script_purity",
                 "mask_coverage", "preflight_passed", "provenance_complete"):
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
    # what each asset read is recorded as the exact upstream materialization and its hash
    consumed = {c["asset"]: c for c in cpt["consumed"]}
    assert consumed["cpt_shards"]["partition"] == "tiny-test"
    assert consumed["cpt_shards"]["content_hash"] == shards["content_hash"]
    provenance = metadata(result, "training_provenance")
    assert provenance["documents"] > 0 and provenance["sft_samples"] > 0

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


def test_export_refuses_a_model_whose_sanity_check_failed(chain: dg.ExecuteInProcessResult,
                                                          shared: Shared) -> None:
    """The blocking check stopped the export in the chain's run; a later run of the export
    alone is refused too, naming the check, the asset and the run."""
    from vazhi_assets.definitions import ALL_ASSETS, ALL_CHECKS

    later = dg.materialize([*ALL_ASSETS, *ALL_CHECKS], selection=dg.AssetSelection.assets(
        "gguf_f16"), partition_key="tiny-test", instance=shared.instance,
        resources=shared.resources, raise_on_error=False)
    assert not later.success
    [failure] = later.get_step_failure_events()
    message = str(failure.event_specific_data.error)
    assert (f"merged_model_sanity on merged_model[tiny-test]: FAILED in run "
            f"{chain.run_id[:8]}") in message


def test_ablation_partition_lands_a_benchmark_row(chain: dg.ExecuteInProcessResult,
                                                  shared: Shared) -> None:
    """SFT again with LoRA r=8 on the same CPT adapter, measured; the row lands in
    benchmark_results tagged with the ablation; the partition is recipe x ablation."""
    from vazhi_assets.definitions import ALL_ASSETS, ALL_CHECKS

    key = dg.MultiPartitionKey({"recipe": "tiny-test", "ablation": "sft_lora_r8"})
    ablation = dg.materialize([*ALL_ASSETS, *ALL_CHECKS],
                              selection=dg.AssetSelection.assets("ablation_benchmark"),
                              partition_key=key, instance=shared.instance,
                              resources=shared.resources, raise_on_error=False,
                              run_config={"ops": {"ablation_benchmark": {"config": {
                                  "max_new_tokens": 16}}}})
    assert ablation.success
    meta = metadata(ablation, "ablation_benchmark")
    assert meta["ablation"] == "sft_lora_r8" and meta["sft_samples"] > 0
    rows = shared.resources["storage"].catalog.query(
        "select * from benchmark_results where ablation = 'sft_lora_r8'")
    assert rows["variant"].to_list() == ["sft_merged_fp16[sft_lora_r8]"]
    assert rows["recipe"][0] == "tiny-test[sft_lora_r8]" and rows["ablation"][0] == "sft_lora_r8"
    assert rows["ppl_ur"][0] > 1 and rows["ppl_ta"][0] > 1
    adapter = json.loads((shared.data / "models" / "tiny-test" / "ablations" /
                          "sft_lora_r8" / "sft_adapter" / "adapter" /
                          "adapter_config.json").read_text())
    assert adapter["r"] == 8


def test_recipe_without_cpt_trains_alpaca_sft_only(shared: Shared, tiny_base_dir: Path,
                                                   tmp_path: Path) -> None:
    path = tmp_path / "dialect.yaml"
    path.write_text(yaml.safe_dump({
        "inherits": "saudi-dialect-demo", "name": "tiny-dialect",
        "model": {"name": str(tiny_base_dir), "max_seq_length": 128},
        "sft": {"max_steps": 4, "eval_steps": 2, "save_steps": 2, "max_eval_samples": 16},
        "preflight_steps": 1, "preflight_check_answers": False,
    }), encoding="utf-8")
    result = run_training(shared, path)
    assert materialized(result) == set(TRAINING)
    assert metadata(result, "cpt_adapter")["skipped"] == "recipe has no CPT"
    assert metadata(result, "cpt_shards")["skipped"] == "recipe has no CPT"
    verdicts = checks(result)
    assert verdicts["mask_coverage"] and verdicts["chatml_validity"]
    shards = metadata(result, "sft_shards")
    assert shards["samples"] == 35 and shards["template_has_generation_blocks"]
    models = shared.data / "models" / "tiny-dialect"
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


def test_invalid_chatml_blocks_training(shared: Shared, tiny_base_dir: Path,
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
    recipe = tiny_recipe(tmp_path / "tiny.yaml", tiny_base_dir, name="tiny-bad-chatml",
                         sft_files=[str(bad)])
    result = run_training(shared, recipe)
    assert checks(result)["chatml_validity"] is False
    done = materialized(result)
    assert "sft_dataset" in done
    for blocked in ("sft_shards", "training_preflight", "cpt_adapter", "sft_adapter",
                    "merged_model"):
        assert blocked not in done, blocked


def test_broken_mask_blocks_training(shared: Shared, tiny_base_dir: Path,
                                     tmp_path: Path) -> None:
    """The stock SmolLM2 template has no generation blocks: every mask comes out empty."""
    from vazhi_assets.training.base_model import load_tokenizer

    stock = load_tokenizer(tiny_base_dir, 128).chat_template
    recipe = tiny_recipe(tmp_path / "tiny.yaml", tiny_base_dir, name="tiny-bad-mask")
    config = {"ops": {"sft_shards": {"config": {"chat_template": stock}}}}
    result = run_training(shared, recipe, run_config=config)
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


def test_sft_shards_keep_a_feedback_row_after_many_bundled_ones(tiny_base_dir: Path,
                                                                 tmp_path: Path) -> None:
    """The demo's SFT set has ~300 bundled samples (no feedback id) before the first user
    correction; the shard table must type the column from the schema, not the first rows."""
    from vazhi_assets.training.base_model import load_tokenizer
    from vazhi_assets.training.recipe import load_recipe
    from vazhi_assets.training.sft_render import training_template
    from vazhi_assets.training.sft_samples import Sample
    from vazhi_assets.training.sft_stage import render_sft_shards

    tokenizer = load_tokenizer(tiny_base_dir, 256)
    samples = [Sample([{"role": "user", "content": f"سوال {i}"},
                       {"role": "assistant", "content": f"جواب {i}"}], "ur", "bundled_ur",
                      "chatml") for i in range(150)]
    samples.append(Sample([{"role": "user", "content": "دارالحکومت؟"},
                           {"role": "assistant", "content": "اسلام آباد۔"}], "ur", "feedback",
                          "feedback", meta={"feedback_id": "1ab84dddb6ac6798d4a3"}))
    frame, stats = render_sft_shards(samples, tokenizer, training_template(
        tokenizer.chat_template), load_recipe("demo"), tmp_path)
    assert frame.height == stats["samples"] == 151
    train = pl.read_parquet(tmp_path / "train.parquet")
    [row] = train.filter(pl.col("feedback_id").is_not_null()).iter_rows(named=True)
    assert row["feedback_id"] == "1ab84dddb6ac6798d4a3" and row["split"] == "train"


@pytest.mark.parametrize("flag", ["load_in_4bit", "use_unsloth"])
def test_gpu_only_options_fail_clearly_on_cpu(flag: str) -> None:
    from vazhi_assets.training.recipe import ModelSpec
    from vazhi_assets.training.train import cuda_available, require_gpu_features

    if cuda_available():
        pytest.skip("a GPU is present")
    spec = ModelSpec(dtype="bfloat16", **{flag: True})
    with pytest.raises(RuntimeError, match=f"model.{flag}"):
        require_gpu_features(spec)
