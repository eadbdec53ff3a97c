"""Merge LoRA adapters into a half-precision copy of the base and save a deployable model dir."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from vazhi_assets.training.recipe import InferenceSpec


def merge_adapter_fp16(
    base_dir: Path,
    adapters: list[Path],
    out_dir: Path,
    *,
    tokenizer: object,
    inference: InferenceSpec,
    dtype: str = "float16",
) -> dict:
    """Reload the base in ``dtype`` (never 4-bit), merge each adapter in turn, save safetensors,
    tokenizer, chat template and a generation config with the recipe's inference defaults."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, GenerationConfig

    if dtype not in {"float16", "bfloat16", "float32"}:
        raise ValueError(f"merge dtype must be float16/bfloat16/float32, not {dtype}")
    model = AutoModelForCausalLM.from_pretrained(str(base_dir), dtype=getattr(torch, dtype))
    for adapter in adapters:
        model = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    stops = end_of_turn_ids(tokenizer)
    model.generation_config = GenerationConfig(
        do_sample=inference.temperature > 0,
        temperature=inference.temperature,
        top_p=inference.top_p,
        repetition_penalty=inference.repetition_penalty,
        max_new_tokens=inference.max_new_tokens,
        eos_token_id=stops,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
    )
    staging = out_dir.parent / f".{out_dir.name}.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    model.save_pretrained(str(staging), safe_serialization=True)
    tokenizer.save_pretrained(str(staging))
    info = {
        "dtype": dtype,
        "adapters": [str(a) for a in adapters],
        "stop_token_ids": stops,
        "parameters": sum(p.numel() for p in model.parameters()),
        "bytes": sum(f.stat().st_size for f in staging.glob("*.safetensors")),
    }
    (staging / "vazhi_merge.json").write_text(json.dumps(info, indent=2), encoding="utf-8")
    shutil.rmtree(out_dir, ignore_errors=True)
    staging.rename(out_dir)
    return info


def end_of_turn_ids(tokenizer: object) -> list[int]:
    """Ids that end an assistant turn: eos plus the template's end-of-turn tokens."""
    ids = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    vocab = tokenizer.get_vocab()
    for token in ("<|im_end|>", "<|eot_id|>", "<|end_of_text|>", "<|endoftext|>"):
        if token in vocab and vocab[token] not in ids:
            ids.append(vocab[token])
    return ids
