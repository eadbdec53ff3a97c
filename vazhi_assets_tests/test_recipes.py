"""The seed-system recipes: validation before anything runs, inheritance, the dry-run plan, and
the ablation overrides."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
import yaml
from pydantic import ValidationError

from vazhi_assets.training.recipe import list_recipes, load_recipe

SEEDS = ("qalb-urdu", "alif-urdu", "vazhi-tamil", "saudi-dialect")


def write(path: Path, recipe: dict) -> str:
    path.write_text(yaml.safe_dump(recipe, allow_unicode=True), encoding="utf-8")
    return str(path)


@pytest.mark.parametrize("name", SEEDS)
def test_each_seed_has_a_full_and_a_demo_scale(name: str) -> None:
    full, demo = load_recipe(name), load_recipe(f"{name}-demo")
    assert {name, f"{name}-demo"} <= set(list_recipes())
    assert demo.name == f"{name}-demo" and full.name == name
    assert full.model.name != demo.model.name == "offline:smollm2-135m-instruct"
    # full scale asks for a GPU and says which fields; demo scale runs here
    assert full.machine_problems(cuda=False)
    assert demo.machine_problems(cuda=False) == []
    assert full.machine_problems(cuda=True) == []
    # demo scale keeps what makes the system itself
    assert demo.data.languages == full.data.languages
    assert demo.data.sft_sources == full.data.sft_sources
    assert demo.has_cpt == full.has_cpt
    assert demo.sft_lora.target_modules == full.sft_lora.target_modules
    assert demo.content_hash() != full.content_hash()


def test_published_settings_are_encoded() -> None:
    qalb, alif = load_recipe("qalb-urdu"), load_recipe("alif-urdu")
    vazhi, saudi = load_recipe("vazhi-tamil"), load_recipe("saudi-dialect")
    assert (qalb.cpt_lora.r, qalb.cpt_lora.alpha, qalb.model.max_seq_length) == (128, 32, 2048)
    assert qalb.cpt.per_device_batch_size * qalb.cpt.gradient_accumulation_steps == 128
    assert qalb.cpt.warmup_ratio == 0.05 and qalb.data.replay_ratio == 0.07
    assert qalb.sft.learning_rate == 5e-5 and qalb.sft.num_train_epochs == 2
    assert qalb.model.chat_template == "llama3" and qalb.model.system_prompt
    assert alif.sft_lora.use_rslora and alif.sft_lora.embedding_lr < alif.sft.learning_rate
    assert {"embed_tokens", "lm_head"} <= set(alif.sft_lora.modules_to_save)
    assert alif.data.sft_replay_ratio == 0.2 and alif.data.instruction_dedup_rouge_l == 0.7
    assert vazhi.sft.learning_rate == 2e-5 and vazhi.model.max_seq_length == 1024
    assert vazhi.export.size_budget_mb == 1000 and vazhi.sft_lora.r == 16
    assert saudi.cpt is None and saudi.model.load_in_4bit
    assert saudi.sft_lora.target_modules == ["q_proj", "v_proj"]
    assert (saudi.sft_lora.r, saudi.sft_lora.alpha, saudi.sft.learning_rate) == (8, 16, 2e-4)
    assert saudi.sft.gradient_accumulation_steps == 8 and saudi.model.chat_template == "alpaca"


@pytest.mark.parametrize(("override", "field"), [
    ({"cpt": {"learnin_rate": 1e-4}}, "cpt.learnin_rate"),
    ({"model": {"chat_template": "vicuna"}}, "model.chat_template"),
    ({"export": {"merge_dtype": "nf4"}}, "export.merge_dtype"),
    ({"sft": {"max_steps": None}}, "sft"),
    ({"model": {"load_in_4bit": True}}, "model.load_in_4bit"),
    ({"model": {"load_in_4bit": True, "dtype": "float16"}}, "model.load_in_4bit with a cpt"),
])
def test_invalid_recipes_name_the_field(tmp_path: Path, override: dict, field: str) -> None:
    path = write(tmp_path / "bad.yaml", {"inherits": "demo", **override})
    with pytest.raises(ValidationError) as err:
        load_recipe(path)
    # the field is named: in the error's location, or (for cross-field rules) in its message
    named = [".".join(map(str, e["loc"])) or e["msg"] for e in err.value.errors()]
    assert any(field in n for n in named), named
    if field == "export.merge_dtype":
        assert "cannot be merged into quantized weights" in str(err.value)


def test_template_without_generation_blocks_is_refused(tmp_path: Path) -> None:
    template = tmp_path / "plain.jinja"
    template.write_text("{% for m in messages %}{{ m['content'] }}{% endfor %}")
    path = write(tmp_path / "r.yaml", {"inherits": "demo",
                                        "model": {"chat_template": str(template)}})
    with pytest.raises(ValidationError, match=r"model.chat_template: .* no \{% generation"):
        load_recipe(path)
    # without assistant-only loss the same template is fine
    path = write(tmp_path / "r2.yaml", {"inherits": "demo", "assistant_only_loss": False,
                                         "model": {"chat_template": str(template)}})
    assert load_recipe(path).model.chat_template == str(template)


def test_inheritance_loops_are_reported(tmp_path: Path) -> None:
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    write(a, {"inherits": str(b)})
    write(b, {"inherits": str(a)})
    with pytest.raises(ValueError, match="inheritance loops"):
        load_recipe(str(a))


def test_qlora_on_the_cpu_stops_before_loading_anything(tmp_path: Path) -> None:
    from vazhi_assets.definitions import RESOURCES
    from vazhi_assets.resources import VazhiStorage
    from vazhi_assets.training.data_assets import base_model
    from vazhi_assets.training.recipe_assets import recipe
    from vazhi_assets.training.recipe_registry import add_recipe

    path = write(tmp_path / "qlora.yaml", {"inherits": "saudi-dialect-demo",
                                            "model": {"load_in_4bit": True,
                                                      "dtype": "float16"}})
    instance = dg.DagsterInstance.ephemeral()
    add_recipe(Path(path), instance, user_dir=tmp_path / "recipes")
    result = dg.materialize(
        [recipe, base_model], resources={**RESOURCES, "storage": VazhiStorage(root=str(tmp_path))},
        partition_key="qlora", instance=instance, raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    message = failure.event_specific_data.error.message
    assert "model.load_in_4bit: true needs a CUDA GPU" in message
    assert not (tmp_path / "models" / "qlora" / "base_model" / "model").exists()


def test_dry_run_plans_the_real_architectures() -> None:
    from vazhi_assets.training.plan import format_plan, main, training_plan

    qalb = training_plan(load_recipe("qalb-urdu"))
    assert qalb.base_parameters == 8_030_261_248
    cpt = qalb.stages[0]
    # LoRA r=128 on all 7 projections (335.5M) + trainable copies of embed_tokens and lm_head
    assert cpt.trainable_parameters == 335_544_320 + 2 * 128_256 * 4096
    assert cpt.trainable_share == pytest.approx(0.147, abs=0.001)
    assert cpt.steps == 7515 and cpt.tokens_per_step == 2048 * 128
    assert qalb.stages[1].trainable_parameters == 335_544_320
    assert "needs a CUDA GPU" in format_plan(qalb)

    saudi = training_plan(load_recipe("saudi-dialect"))
    assert [s.stage for s in saudi.stages] == ["sft"]
    # r=8 on q_proj (2048->2048) and v_proj (2048->512) of LFM2's 6 attention layers
    assert saudi.stages[0].trainable_parameters == 6 * 8 * ((2048 + 2048) + (2048 + 512))
    vazhi = training_plan(load_recipe("vazhi-tamil"))
    assert vazhi.gguf_q4_k_m_mb < vazhi.size_budget_mb
    assert main(["qalb-urdu-demo", "--json"]) == 0


def test_ablation_overrides_one_setting() -> None:
    from vazhi_assets.training.ablation import ABLATIONS, ablation_recipe

    spec = load_recipe("alif-urdu-demo")
    for key in ("sft_replay_0.10", "sft_replay_0.30"):
        variant = ablation_recipe(spec, key)
        assert variant.name == f"alif-urdu-demo[{key}]"
        assert variant.data.sft_replay_ratio == ABLATIONS[key]["data"]["sft_replay_ratio"]
        assert variant.sft_lora == spec.sft_lora and variant.cpt == spec.cpt
    ranked = ablation_recipe(spec, "sft_lora_r8")
    assert ranked.sft_lora.r == 8 and ranked.data == spec.data
    with pytest.raises(KeyError, match="unknown ablation"):
        ablation_recipe(spec, "sft_replay_0.5")


def test_replay_ratio_of_the_sft_blend() -> None:
    from vazhi_assets.training.sft_stage import recipe_sft_samples

    spec = load_recipe("alif-urdu-demo")
    _, samples, replay = recipe_sft_samples(spec)
    english = sum(s.language == "en" for s in samples)
    assert english > 0 and replay["replay_kept"] == english
    assert replay["replay_ratio_achieved"] == pytest.approx(0.2, abs=0.02)
    assert {s.language for s in samples} == {"ur", "en"}


def test_generation_markers_and_default_system_prompts() -> None:
    from vazhi_assets.training.chat_format import has_generation_markers
    from vazhi_assets.training.sft_render import training_template

    for marker in ("{% generation %}", "{%- generation -%}", "{% generation -%}",
                   "{%-generation%}"):
        assert has_generation_markers(f"x{marker}y{{% endgeneration %}}"), marker
    assert not has_generation_markers("{{ message['content'] }} generation")
    # Qwen2.5-style: a system block built in the tools branch comes first; the literal default
    # is the one in the plain branch
    stock = ("{%- if tools %}{{- '<|im_start|>system\\n' }}{%- if messages[0]['role'] == "
             "'system' %}{{- messages[0]['content'] }}{%- endif %}{%- else %}{%- if "
             "messages[0]['role'] == 'system' %}{{- '<|im_start|>system\\n' + "
             "messages[0]['content'] + '<|im_end|>\\n' }}{%- else %}{{- '<|im_start|>system"
             "\\nYou are Qwen, a helpful assistant.<|im_end|>\\n' }}{%- endif %}{%- endif %}"
             "{%- for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + "
             "'<|im_end|>\\n' }}{%- endfor %}")
    template = training_template(stock)
    assert "You are Qwen, a helpful assistant." in template
    assert "messages[0]['content'] + '<|im_end|>" not in template.split("generation")[0]


def test_a_users_recipe_becomes_a_partition(tmp_path: Path) -> None:
    """`vazhi-recipe add` validates, stores the file (relative paths made absolute) and
    registers the partition; bad files are refused with the reason, nothing registered."""
    from vazhi_assets.training.recipe_registry import RecipeError, add_recipe, register_recipes

    instance = dg.DagsterInstance.ephemeral()
    user = tmp_path / "data" / "recipes"
    origin = tmp_path / "mine"
    origin.mkdir()
    (origin / "extra.jsonl").write_text("", encoding="utf-8")
    path = origin / "my-urdu.yaml"
    write(path, {"inherits": "alif-urdu-demo", "name": "my-urdu",
                 "data": {"sft_files": ["extra.jsonl"]}})
    spec = add_recipe(path, instance, user_dir=user)
    assert spec.name == "my-urdu" and instance.has_dynamic_partition("recipe", "my-urdu")
    stored = yaml.safe_load((user / "my-urdu.yaml").read_text())
    assert stored["data"]["sft_files"] == [str(origin / "extra.jsonl")]
    assert load_recipe("my-urdu", user).data.sft_files == [str(origin / "extra.jsonl")]

    for bad, needle in (({"inherits": "demo", "name": "demo"}, "is a bundled recipe"),
                        ({"inherits": "demo", "name": "Bad Name"}, "cannot be a partition key"),
                        ({"inherits": "demo", "name": "x", "cpt": {"max_stepz": 1}},
                         "max_stepz")):
        with pytest.raises(RecipeError, match=needle):
            add_recipe(Path(write(tmp_path / "bad.yaml", bad)), instance, user_dir=user)
    assert instance.get_dynamic_partitions("recipe") == ["my-urdu"]
    new = register_recipes(instance, user_dir=user)
    assert "demo" in new and "my-urdu" not in new and set(list_recipes()) <= set(
        instance.get_dynamic_partitions("recipe"))


def test_recipe_files_sensor_registers_and_snapshots(tmp_path: Path) -> None:
    from vazhi_assets.resources import VazhiStorage
    from vazhi_assets.training.recipe_assets import recipe_files

    instance = dg.DagsterInstance.ephemeral()
    storage = VazhiStorage(root=str(tmp_path / "data"))
    user = tmp_path / "data" / "recipes"
    user.mkdir(parents=True)
    write(user / "mine.yaml", {"inherits": "demo", "name": "mine"})
    write(user / "broken.yaml", {"inherits": "demo", "name": "broken", "cpt": {"nope": 1}})

    def tick(cursor: str | None) -> dg.SensorResult | dg.SkipReason:
        context = dg.build_sensor_context(instance=instance, cursor=cursor,
                                          resources={"storage": storage})
        return recipe_files(context)

    first = tick(None)
    [added] = first.dynamic_partitions_requests
    assert "mine" in added.partition_keys and "demo" in added.partition_keys
    assert "broken" not in added.partition_keys  # invalid: logged, never a partition
    assert {r.partition_key for r in first.run_requests} >= {"mine", "demo"}
    instance.add_dynamic_partitions("recipe", list(added.partition_keys))
    assert isinstance(tick(first.cursor), dg.SkipReason)  # nothing new, nothing changed

    write(user / "mine.yaml", {"inherits": "demo", "name": "mine", "sft": {"max_steps": 3}})
    changed = tick(first.cursor)
    [request] = changed.run_requests
    assert request.partition_key == "mine" and request.run_key.startswith("recipe-mine-")
    assert not changed.dynamic_partitions_requests
