"""A tiny, randomly initialised Llama with the real SmolLM2 tokenizer, for fast tests.

Same architecture family (``LlamaForCausalLM``, tied embeddings, grouped-query attention, RoPE
settings copied from the source) and the very same tokenizer and chat template as the resolved
base model, so data rendering, masking, LoRA, training, merging and export run through exactly
the code paths of the real model, in seconds. Its outputs are noise: never evaluate it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

from vazhi_assets.identity import sha256_file
from vazhi_assets.training.base_model import (
    MARKER,
    BaseModelInfo,
    count_parameters,
    stage_model_dir,
)

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja",
                   "special_tokens_map.json")


def _source_config(tokenizer_source: Path) -> dict[str, Any]:
    try:
        data = json.loads((tokenizer_source / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data.get("text_config", data)


def _tiny_hash(tokenizer_source: Path, params: dict[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode())
    for name in TOKENIZER_FILES:
        path = tokenizer_source / name
        if path.is_file():
            digest.update(name.encode() + b"\0" + sha256_file(path).encode() + b"\n")
    return digest.hexdigest()


def build_tiny_model(
    out_dir: Path,
    tokenizer_source: Path,
    *,
    hidden: int = 64,
    layers: int = 2,
    heads: int = 4,
    seed: int = 0,
) -> Path:
    """Write a tiny random ``LlamaForCausalLM`` + the source's tokenizer to ``out_dir``.

    Deterministic for a given torch version: the weights depend only on the arguments and the
    tokenizer. Written atomically; an existing directory built from the same inputs is reused.
    """
    import torch
    from transformers import AutoTokenizer, GenerationConfig, LlamaConfig, LlamaForCausalLM

    from vazhi_assets.training.tokenizer_checks import end_of_turn_token, prepare_padding

    if hidden % heads:
        raise ValueError(f"hidden={hidden} must be divisible by heads={heads}")
    out_dir, tokenizer_source = Path(out_dir), Path(tokenizer_source)
    params = {"hidden": hidden, "layers": layers, "heads": heads, "seed": seed,
              "torch": torch.__version__}
    source_sha = _tiny_hash(tokenizer_source, params)
    name = f"tiny-llama-h{hidden}-l{layers}-s{seed}"
    spec_key = {"name": name, "revision": None, "dtype": "float32"}
    try:
        marker = json.loads((out_dir / MARKER).read_text(encoding="utf-8"))
        if (marker.get("spec") == spec_key
                and marker.get("info", {}).get("source_sha256") == source_sha
                and (out_dir / "model.safetensors").is_file()):
            return out_dir
    except (OSError, ValueError):
        pass

    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_source))
    padding = prepare_padding(tokenizer)
    source = _source_config(tokenizer_source)
    kv_heads = heads // 2 if heads % 2 == 0 else heads  # grouped-query attention, like SmolLM2
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=hidden * 8 // 3 // 8 * 8 or hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        head_dim=hidden // heads,
        max_position_embeddings=int(source.get("max_position_embeddings", 8192)),
        rms_norm_eps=float(source.get("rms_norm_eps", 1e-5)),
        rope_parameters=source.get("rope_parameters")
        or {"rope_type": "default", "rope_theta": 100000.0},
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        architectures=["LlamaForCausalLM"],
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    model.to(torch.float32)
    stops = [tokenizer.eos_token_id]
    turn_end = end_of_turn_token(tokenizer)
    if turn_end is not None and tokenizer.convert_tokens_to_ids(turn_end) not in stops:
        stops.append(tokenizer.convert_tokens_to_ids(turn_end))
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=stops[0] if len(stops) == 1 else stops,
        pad_token_id=tokenizer.pad_token_id,
    )
    total, _ = count_parameters(model)
    info = BaseModelInfo(
        name=name,
        source_kind="local",
        revision=None,
        source_sha256=source_sha,
        parameters=total,
        dtype="float32",
        architecture="LlamaForCausalLM",
        vocab_size=config.vocab_size,
        hidden_size=hidden,
        num_layers=layers,
        max_position_embeddings=config.max_position_embeddings,
        chat_template_present=bool(tokenizer.chat_template),
        path=str(out_dir),
        caveat=f"randomly initialised test model with the tokenizer of {tokenizer_source}; "
        "its outputs are noise",
        pad_token=tokenizer.pad_token,
        eos_token=tokenizer.eos_token,
    )

    tmp = stage_model_dir(model, tokenizer, out_dir, spec_key, padding, info)
    try:
        if out_dir.exists():
            if any(out_dir.iterdir()) and not (out_dir / MARKER).is_file():
                raise FileExistsError(f"{out_dir} exists and was not built by build_tiny_model")
            shutil.rmtree(out_dir)
        tmp.replace(out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir
