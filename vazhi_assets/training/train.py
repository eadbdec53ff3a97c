"""LoRA training: continued pre-training (transformers Trainer) and SFT (TRL SFTTrainer).

Both resume from the last checkpoint in their output directory, log progress through a callback
(the Dagster asset passes its logger) and keep the loss history for plots. GPU-only paths
(unsloth, bitsandbytes 4-bit) are imported only when a recipe asks for them and CUDA is present.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from vazhi_assets.identity import sha256_file
from vazhi_assets.storage import atomic_write_text
from vazhi_assets.training.recipe import LoraSpec, ModelSpec, ScheduleSpec

Log = Callable[[str], None]


@dataclass
class TrainResult:
    adapter_dir: str
    global_step: int
    max_steps: int
    resumed_from: str | None
    seconds: float
    steps_per_second: float
    tokens_per_second: float
    trainable_parameters: int
    total_parameters: int
    train_loss: list[tuple[int, float]] = field(default_factory=list)
    eval_loss: list[tuple[int, float]] = field(default_factory=list)

    @property
    def final_eval_loss(self) -> float | None:
        return self.eval_loss[-1][1] if self.eval_loss else None

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def load(cls, path: Path) -> TrainResult:
        data = json.loads(path.read_text(encoding="utf-8"))
        data["train_loss"] = [tuple(x) for x in data["train_loss"]]
        data["eval_loss"] = [tuple(x) for x in data["eval_loss"]]
        return cls(**data)


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def require_gpu_features(spec: ModelSpec) -> None:
    """Refuse GPU-only options on a machine without CUDA, naming the field."""
    if cuda_available():
        return
    for flag in ("load_in_4bit", "use_unsloth"):
        if getattr(spec, flag):
            raise RuntimeError(f"recipe model.{flag}=true needs a CUDA GPU; none is available")


def load_base(base_dir: Path, spec: ModelSpec) -> object:
    """The base model for training: unsloth or 4-bit only when asked for and CUDA exists."""
    import torch

    require_gpu_features(spec)
    dtype = getattr(torch, spec.dtype)
    if spec.use_unsloth:
        from unsloth import FastLanguageModel  # GPU-only, imported on demand

        model, _ = FastLanguageModel.from_pretrained(
            str(base_dir), max_seq_length=spec.max_seq_length, load_in_4bit=spec.load_in_4bit
        )
        return model
    from transformers import AutoModelForCausalLM

    kwargs: dict = {"dtype": dtype}
    if spec.load_in_4bit:
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=dtype
        )
    return AutoModelForCausalLM.from_pretrained(str(base_dir), **kwargs)


def lora_config(spec: LoraSpec) -> object:
    from peft import LoraConfig

    return LoraConfig(
        r=spec.r,
        lora_alpha=spec.alpha,
        lora_dropout=spec.dropout,
        target_modules=spec.target_modules,
        modules_to_save=spec.modules_to_save or None,
        use_rslora=spec.use_rslora,
        # a tied embed_tokens/lm_head pair stays one matrix when both are trained copies
        ensure_weight_tying=bool(spec.modules_to_save),
        bias="none",
        task_type="CAUSAL_LM",
    )


def _training_kwargs(schedule: ScheduleSpec, output_dir: Path) -> dict:
    on_gpu = cuda_available()
    if schedule.precision != "fp32" and not on_gpu:
        raise RuntimeError(f"precision {schedule.precision} needs a CUDA GPU; none is available")
    return {
        "output_dir": str(output_dir),
        "max_steps": schedule.max_steps or -1,
        "num_train_epochs": schedule.num_train_epochs or 1.0,
        "per_device_train_batch_size": schedule.per_device_batch_size,
        "per_device_eval_batch_size": schedule.per_device_batch_size,
        "gradient_accumulation_steps": schedule.gradient_accumulation_steps,
        "learning_rate": schedule.learning_rate,
        "lr_scheduler_type": schedule.lr_scheduler,
        "warmup_steps": schedule.warmup_ratio,
        "max_grad_norm": schedule.max_grad_norm,
        "weight_decay": schedule.weight_decay,
        "optim": schedule.optimizer,
        "eval_strategy": "steps",
        "eval_steps": schedule.eval_steps,
        "save_strategy": "steps",
        "save_steps": schedule.save_steps,
        "save_total_limit": 2,
        "logging_steps": schedule.logging_steps,
        "seed": schedule.seed,
        "data_seed": schedule.seed,
        "gradient_checkpointing": schedule.gradient_checkpointing,
        "use_cpu": not on_gpu,
        "bf16": schedule.precision == "bf16",
        "fp16": schedule.precision == "fp16",
        "report_to": [],
        "dataloader_num_workers": 0,
        "disable_tqdm": True,
        "save_only_model": False,
    }


def embedding_aware_optimizer(model: object, args: object, lora: LoraSpec) -> object | None:
    """The Trainer's own optimizer class for ``args.optim``, with embeddings and lm_head (the
    ``modules_to_save`` copies) at ``lora.embedding_lr``; None when the recipe sets none."""
    if lora.embedding_lr is None or not lora.modules_to_save:
        return None
    from transformers import Trainer

    embedding, rest = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        is_embedding = "modules_to_save" in name and any(
            m in name for m in lora.modules_to_save)
        (embedding if is_embedding else rest).append(param)
    if not embedding:
        raise ValueError(f"lora.embedding_lr is set but no trainable copy of "
                         f"{lora.modules_to_save} was found")
    optimizer_cls, kwargs = Trainer.get_optimizer_cls_and_kwargs(args, model)
    groups = [
        {"params": rest, "weight_decay": args.weight_decay},
        {"params": embedding, "weight_decay": 0.0, "lr": lora.embedding_lr},
    ]
    return optimizer_cls(groups, **kwargs)


def _progress_callback(log: Log, label: str, max_steps: int) -> object:
    from transformers import TrainerCallback

    class Progress(TrainerCallback):
        """Send each logged step (loss, lr, eval loss) to ``log``; time the optimizer steps
        alone (evaluation and checkpointing excluded) for throughput figures."""

        def __init__(self) -> None:
            self.step_seconds = 0.0
            self.steps = 0
            self._started = 0.0

        def on_step_begin(self, args, state, control, **kwargs):  # noqa: ANN001
            self._started = time.monotonic()

        def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001
            self.step_seconds += time.monotonic() - self._started
            self.steps += 1

        def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: ANN001
            logs = logs or {}
            parts = [f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                     for k, v in logs.items() if k in {"loss", "eval_loss", "learning_rate",
                                                       "grad_norm"}]
            if parts:
                log(f"{label} step {state.global_step}/{state.max_steps or max_steps}: "
                    + ", ".join(parts))

        def on_save(self, args, state, control, **kwargs):  # noqa: ANN001
            log(f"{label} checkpoint saved at step {state.global_step}")

    return Progress()


def _history(trainer: object) -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:
    train, evals = [], []
    for entry in trainer.state.log_history:
        if "loss" in entry:
            train.append((int(entry["step"]), float(entry["loss"])))
        if "eval_loss" in entry:
            evals.append((int(entry["step"]), float(entry["eval_loss"])))
    return train, evals


def _finish(
    trainer: object,
    model: object,
    out_dir: Path,
    started: float,
    resumed_from: str | None,
    progress: object,
    tokens_per_step: int,
) -> TrainResult:
    """Save the adapter atomically and summarise the run (throughput over training steps
    only; ``seconds`` is the whole wall time including evaluation and checkpoints)."""
    seconds = time.monotonic() - started
    adapter_dir = out_dir / "adapter"
    staging = out_dir / ".adapter.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    model.save_pretrained(str(staging))
    shutil.rmtree(adapter_dir, ignore_errors=True)
    staging.rename(adapter_dir)
    steps_done, step_seconds = progress.steps, progress.step_seconds
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    train, evals = _history(trainer)
    result = TrainResult(
        adapter_dir=str(adapter_dir),
        global_step=trainer.state.global_step,
        max_steps=trainer.state.max_steps,
        resumed_from=resumed_from,
        seconds=round(seconds, 2),
        steps_per_second=round(steps_done / step_seconds, 4) if step_seconds else 0.0,
        tokens_per_second=(round(steps_done * tokens_per_step / step_seconds, 1)
                           if step_seconds else 0.0),
        trainable_parameters=trainable,
        total_parameters=total,
        train_loss=train,
        eval_loss=evals,
    )
    atomic_write_text(out_dir / "train_result.json", result.to_json())
    return result


def inputs_fingerprint(base_dir: Path, data_files: list[Path], adapters: list[Path],
                       **settings: object) -> str:
    """What a training run depends on: base model identity, data bytes, adapters it starts
    from and its settings. Checkpoints are only resumed under the same fingerprint."""
    marker = base_dir / "vazhi_base.json"
    payload = {
        "base": marker.read_text(encoding="utf-8") if marker.exists() else str(base_dir),
        "data": [sha256_file(f) for f in sorted(data_files)],
        "adapters": [sha256_file(a / "adapter_model.safetensors") for a in adapters
                     if (a / "adapter_model.safetensors").exists()],
        "settings": {k: v.model_dump(mode="json") if hasattr(v, "model_dump") else v
                     for k, v in sorted(settings.items())},
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def claim_checkpoints(checkpoints: Path, fingerprint: str, log: Log, label: str) -> None:
    """Keep ``checkpoints`` only if they were written for the same inputs; otherwise start
    fresh (new data must be trained on, not skipped by resuming a finished run)."""
    stamp = checkpoints / "inputs.sha256"
    if checkpoints.exists():
        previous = stamp.read_text().strip() if stamp.exists() else None
        if previous == fingerprint:
            return
        log(f"{label}: inputs changed since the checkpoints in {checkpoints} were written; "
            "starting fresh")
        shutil.rmtree(checkpoints)
    checkpoints.mkdir(parents=True, exist_ok=True)
    atomic_write_text(stamp, fingerprint + "\n")


def _resume_point(checkpoints: Path, log: Log, label: str) -> tuple[str | None, int]:
    from transformers.trainer_utils import get_last_checkpoint

    if not checkpoints.exists():
        return None, 0
    last = get_last_checkpoint(str(checkpoints))
    if last is None:
        return None, 0
    state = json.loads((Path(last) / "trainer_state.json").read_text())
    log(f"{label}: resuming from {Path(last).name} (step {state['global_step']})")
    return last, int(state["global_step"])


def eval_subset(dataset: Any, schedule: ScheduleSpec) -> Any:
    """The validation rows evaluated during training: all of them, or ``max_eval_samples``
    drawn with the schedule's seed (the same rows at every evaluation and on resume)."""
    limit = schedule.max_eval_samples
    if limit is None or len(dataset) <= limit:
        return dataset
    return dataset.shuffle(seed=schedule.seed).select(range(limit))


def train_cpt(
    base_dir: Path,
    shards_dir: Path,
    out_dir: Path,
    *,
    model_spec: ModelSpec,
    lora: LoraSpec,
    schedule: ScheduleSpec,
    log: Log = print,
) -> TrainResult:
    """Continued pre-training of a LoRA adapter on packed blocks (labels = inputs)."""
    from datasets import load_dataset
    from peft import get_peft_model
    from transformers import Trainer, TrainingArguments, default_data_collator

    from vazhi_assets.training.shards import shard_files

    files = {s: shard_files(shards_dir, s) for s in ("train", "val")}
    data = load_dataset("parquet", data_files=files)
    data = data.map(lambda b: {"labels": b["input_ids"]}, batched=True,
                    remove_columns=["language"])
    checkpoints = out_dir / "checkpoints"
    claim_checkpoints(checkpoints, inputs_fingerprint(
        base_dir, [Path(f) for split in files.values() for f in split], [],
        model=model_spec, lora=lora, schedule=schedule), log, "cpt")
    model = get_peft_model(load_base(base_dir, model_spec), lora_config(lora))
    args = TrainingArguments(**_training_kwargs(schedule, checkpoints))
    progress = _progress_callback(log, "cpt", schedule.max_steps or 0)
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=data["train"],
        eval_dataset=eval_subset(data["val"], schedule),
        data_collator=default_data_collator,
        callbacks=[progress],
    )
    trainer.optimizer = embedding_aware_optimizer(trainer.model, trainer.args, lora)
    resumed, _ = _resume_point(checkpoints, log, "cpt")
    started = time.monotonic()
    trainer.train(resume_from_checkpoint=resumed)
    trainer.evaluate()
    tokens_per_step = (model_spec.max_seq_length * schedule.per_device_batch_size
                       * schedule.gradient_accumulation_steps)
    return _finish(trainer, model, out_dir, started, resumed, progress, tokens_per_step)


def load_with_adapters(base_dir: Path, adapters: list[Path], spec: ModelSpec) -> object:
    """Base model with each adapter merged in turn (CPT, then SFT, ...)."""
    from peft import PeftModel

    model = load_base(base_dir, spec)
    for adapter in adapters:
        model = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    return model


def train_sft(
    base_dir: Path,
    cpt_adapter: Path | None,
    sft_dir: Path,
    out_dir: Path,
    *,
    model_spec: ModelSpec,
    lora: LoraSpec,
    schedule: ScheduleSpec,
    tokenizer: object,
    log: Log = print,
) -> TrainResult:
    """SFT with TRL on pre-rendered samples (``input_ids`` + ``assistant_masks``), on top of the
    CPT adapter merged into the base; only assistant tokens carry loss."""
    from datasets import load_dataset
    from trl import SFTConfig, SFTTrainer

    files = {s: str(sft_dir / f"{s}.parquet") for s in ("train", "val")}
    data = load_dataset("parquet", data_files=files).select_columns(
        ["input_ids", "assistant_masks"])
    # The samples were rendered with assistant masks already (and checked for coverage):
    # labels are the assistant tokens, -100 elsewhere, and TRL uses them as they are.
    data = data.map(
        lambda ex: {"labels": [t if m else -100
                               for t, m in zip(ex["input_ids"], ex["assistant_masks"],
                                               strict=True)]},
        remove_columns=["assistant_masks"],
    )
    checkpoints = out_dir / "checkpoints"
    claim_checkpoints(checkpoints, inputs_fingerprint(
        base_dir, [Path(f) for f in files.values()], [cpt_adapter] if cpt_adapter else [],
        model=model_spec, lora=lora, schedule=schedule), log, "sft")
    model = load_with_adapters(base_dir, [cpt_adapter] if cpt_adapter else [], model_spec)
    progress = _progress_callback(log, "sft", schedule.max_steps or 0)
    config = SFTConfig(
        **_training_kwargs(schedule, checkpoints),
        max_length=model_spec.max_seq_length,
        packing=False,
        dataset_num_proc=None,
    )
    trainer = SFTTrainer(
        model=model,
        args=config,
        train_dataset=data["train"],
        eval_dataset=eval_subset(data["val"], schedule),
        processing_class=tokenizer,
        peft_config=lora_config(lora),
        callbacks=[progress],
    )
    trainer.optimizer = embedding_aware_optimizer(trainer.model, trainer.args, lora)
    resumed, _ = _resume_point(checkpoints, log, "sft")
    started = time.monotonic()
    trainer.train(resume_from_checkpoint=resumed)
    trainer.evaluate()
    mean_len = sum(len(x) for x in data["train"]["input_ids"]) / max(1, len(data["train"]))
    tokens_per_step = int(mean_len * schedule.per_device_batch_size
                          * schedule.gradient_accumulation_steps)
    return _finish(trainer, trainer.model, out_dir, started, resumed, progress,
                   tokens_per_step)


def perplexity_from_loss(loss: float | None) -> float | None:
    return round(math.exp(loss), 3) if loss is not None else None
