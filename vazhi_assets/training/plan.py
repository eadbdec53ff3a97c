"""Dry run of a recipe: resolve and validate it, then print the training plan without weights.

The architecture is built from its ``config.json`` on PyTorch's meta device (shapes, no
memory), the recipe's LoRA is applied with PEFT, and PEFT counts the trainable parameters, so
the figures are those a real run prints. Tokens, steps and memory follow from the schedule;
memory is an estimate (weights + trainable state + activations), labelled as such.

``python -m vazhi_assets.training.plan qalb-urdu [--json]``
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import asdict, dataclass, field
from typing import Any

from vazhi_assets.training.recipe import LoraSpec, Recipe, ScheduleSpec, load_recipe

GIB = 1024**3
#: Bytes per weight of the frozen base (4-bit NF4 stores ~0.5 byte + block scales).
WEIGHT_BYTES = {"float32": 4.0, "bfloat16": 2.0, "float16": 2.0, "nf4": 0.55}
#: Llama-family Q4_K_M averages about 4.85 bits per weight (mixed Q4_K/Q6_K tensors).
Q4_K_M_BITS = 4.85


@dataclass
class StagePlan:
    stage: str
    trainable_parameters: int
    total_parameters: int
    trainable_share: float
    tokens_per_step: int
    steps: int | None
    tokens: int | None
    memory_gib: dict[str, float] = field(default_factory=dict)


@dataclass
class TrainingPlan:
    recipe: str
    recipe_hash: str
    model: str
    architecture: str
    base_parameters: int
    stages: list[StagePlan]
    gguf_q4_k_m_mb: float
    size_budget_mb: float | None
    needs_gpu: list[str]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def architecture_config(recipe: Recipe) -> tuple[str, Any]:
    """The model's config: the bundled facts of ``model.architecture``, else the hub config
    (only the small ``config.json``, no weights) of ``model.name``."""
    from transformers import AutoConfig

    path = recipe.model.architecture_config()
    if path is not None:
        data = json.loads(path.read_text(encoding="utf-8"))
        data.pop("_source", None)
        return path.stem, AutoConfig.for_model(data.pop("model_type"), **data)
    if recipe.model.name.startswith("offline:"):
        raise ValueError(f"recipe {recipe.name}: set model.architecture to plan an offline model")
    return recipe.model.name, AutoConfig.from_pretrained(recipe.model.name,
                                                         revision=recipe.model.revision)


def _meta_model(config: Any) -> Any:
    import torch
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(config)


def count_lora_parameters(config: Any, lora: LoraSpec) -> tuple[int, int]:
    """(trainable, total) as PEFT counts them for ``lora`` on this architecture; the
    ``modules_to_save`` copies count in both, as in ``print_trainable_parameters``."""
    import torch
    from peft import get_peft_model

    from vazhi_assets.training.train import lora_config

    with torch.device("meta"):
        model = get_peft_model(_meta_model(config), lora_config(lora))
    return model.get_nb_trainable_parameters()


def _activation_bytes(config: Any, schedule: ScheduleSpec, seq: int, act_bytes: int) -> float:
    """Rough activation memory of one micro-batch: with gradient checkpointing one hidden
    state per layer plus one layer's full activations; without, ~34 hidden-sized tensors per
    layer (attention scores not materialised by SDPA). Logits in fp32 on top."""
    hidden, layers = config.hidden_size, config.num_hidden_layers
    batch = schedule.per_device_batch_size
    per_layer_full = 34 * seq * batch * hidden * act_bytes
    if schedule.gradient_checkpointing:
        stored = layers * seq * batch * hidden * act_bytes + per_layer_full
    else:
        stored = layers * per_layer_full
    return stored + 2 * seq * batch * config.vocab_size * 4


def plan_stage(
    stage: str, config: Any, recipe: Recipe, lora: LoraSpec, schedule: ScheduleSpec,
    base_parameters: int,
) -> StagePlan:
    trainable, total = count_lora_parameters(config, lora)
    seq = recipe.model.max_seq_length
    samples_per_step = schedule.per_device_batch_size * schedule.gradient_accumulation_steps
    tokens_per_step = seq * samples_per_step
    steps = schedule.max_steps
    if steps is None and schedule.num_train_epochs is not None:
        if stage == "cpt" and recipe.data.planned_cpt_tokens:
            steps = math.ceil(recipe.data.planned_cpt_tokens * schedule.num_train_epochs
                              / tokens_per_step)
        elif stage == "sft" and recipe.data.planned_sft_samples:
            steps = math.ceil(recipe.data.planned_sft_samples * schedule.num_train_epochs
                              / samples_per_step)
    weight = WEIGHT_BYTES["nf4" if recipe.model.load_in_4bit else recipe.model.dtype]
    optimizer_state = 2 if "8bit" in schedule.optimizer else 8
    act_bytes = 4 if schedule.precision == "fp32" else 2
    memory = {
        "frozen_weights": base_parameters * weight / GIB,
        # trainable weights kept in fp32, their gradients, and the optimizer's moments
        "trainable_state": trainable * (4 + 4 + optimizer_state) / GIB,
        "activations": _activation_bytes(config, schedule, seq, act_bytes) / GIB,
    }
    memory["total"] = sum(memory.values())
    return StagePlan(
        stage=stage, trainable_parameters=trainable, total_parameters=total,
        trainable_share=round(trainable / total, 4), tokens_per_step=tokens_per_step,
        steps=steps, tokens=steps * tokens_per_step if steps else None,
        memory_gib={k: round(v, 2) for k, v in memory.items()},
    )


def training_plan(recipe: Recipe) -> TrainingPlan:
    name, config = architecture_config(recipe)
    base_parameters = sum(p.numel() for p in _meta_model(config).parameters())
    stages = []
    if recipe.cpt is not None:
        stages.append(plan_stage("cpt", config, recipe, recipe.cpt_lora, recipe.cpt,
                                 base_parameters))
    stages.append(plan_stage("sft", config, recipe, recipe.sft_lora, recipe.sft,
                             base_parameters))
    return TrainingPlan(
        recipe=recipe.name, recipe_hash=recipe.content_hash(), model=recipe.model.name,
        architecture=name, base_parameters=base_parameters, stages=stages,
        gguf_q4_k_m_mb=round(base_parameters * Q4_K_M_BITS / 8 / 1e6),
        size_budget_mb=recipe.export.size_budget_mb,
        needs_gpu=recipe.machine_problems(cuda=False),
    )


def format_plan(plan: TrainingPlan) -> str:
    lines = [f"recipe {plan.recipe} (hash {plan.recipe_hash})",
             f"model {plan.model}: architecture {plan.architecture}, "
             f"{plan.base_parameters:,} parameters", "",
             f"{'stage':<5} {'trainable':>15} {'of total':>15} {'share':>7} {'tokens/step':>12} "
             f"{'steps':>8} {'tokens':>15} {'memory GiB (est.)':>18}"]
    for s in plan.stages:
        steps = f"{s.steps:,}" if s.steps else "?"
        tokens = f"{s.tokens:,}" if s.tokens else "?"
        lines.append(f"{s.stage:<5} {s.trainable_parameters:>15,} {s.total_parameters:>15,} "
                     f"{s.trainable_share:>7.2%} {s.tokens_per_step:>12,} {steps:>8} "
                     f"{tokens:>15} {s.memory_gib['total']:>18.1f}")
        lines.append("      memory: " + ", ".join(f"{k} {v}" for k, v in s.memory_gib.items()
                                                  if k != "total"))
    budget = (f" (budget {plan.size_budget_mb:.0f} MB)" if plan.size_budget_mb else "")
    lines += ["", f"GGUF Q4_K_M size (est.): {plan.gguf_q4_k_m_mb:,.0f} MB{budget}"]
    if plan.needs_gpu:
        lines += ["", "needs a CUDA GPU for:",
                  *[f"  - {p}" for p in plan.needs_gpu]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipes", nargs="+", help="recipe names or YAML paths")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    plans = []
    for name in args.recipes:
        try:
            plans.append(training_plan(load_recipe(name)))
        except (ValueError, FileNotFoundError) as exc:
            print(f"recipe {name}: {exc}", file=sys.stderr)
            return 2
    if args.json:
        print(json.dumps([p.to_dict() for p in plans], indent=2))
    else:
        print("\n\n".join(format_plan(p) for p in plans))
    return 0


if __name__ == "__main__":
    sys.exit(main())

