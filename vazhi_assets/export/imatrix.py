"""Importance matrix for K-quants, measured with PyTorch on the HF model.

The ``llama_cpp`` binding cannot compute one (``llama-imatrix`` is a separate tool, and the
binding exposes no ggml tensor API to collect activations from the eval callback), but the
quantize parameters accept importance data. ``compute_imatrix`` therefore measures it with
PyTorch forward hooks on the HF model (the same statistic as ``llama-imatrix``: per input
column, the sum of squared activations entering each weight matrix, and the token count),
writes it in llama.cpp's GGUF imatrix layout, and ``read_imatrix`` reads such a file back for
``quantize_gguf(..., imatrix=path)``. Legacy ``.dat`` imatrix files are not read.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vazhi_assets.export.gguf_files import (
    ExportError,
    check_magic,
    gguf_reader,
    publish,
    staging_path,
)

log = logging.getLogger(__name__)


def _hf_to_gguf_names(model: Any, arch_name: str) -> dict[str, str]:
    """HF ``nn.Linear`` module name -> GGUF weight tensor name, via ``gguf``'s name map."""
    import gguf
    import torch

    arch = next((a for a, n in gguf.MODEL_ARCH_NAMES.items() if n == arch_name), None)
    if arch is None:
        raise ExportError(f"no GGUF tensor-name map for model_type {arch_name!r}")
    n_blocks = int(getattr(model.config, "num_hidden_layers", 0))
    name_map = gguf.get_tensor_name_map(arch, n_blocks)
    tied = bool(getattr(model.config, "tie_word_embeddings", False))
    names = {}
    for module_name, module in model.named_modules():
        if not isinstance(module, torch.nn.Linear):
            continue
        target = name_map.get_name(f"{module_name}.weight", try_suffixes=(".weight",))
        if target is None or (tied and target == "output.weight"):
            continue  # tied output reuses token_embd, which is a lookup, not a matmul
        names[module_name] = target
    if not names:
        raise ExportError(f"no weight matrices of this {arch_name} model map to GGUF names")
    return names


def compute_imatrix(
    model_dir: Path,
    texts: Sequence[str],
    out_path: Path,
    *,
    chunk_size: int = 512,
    max_chunks: int | None = None,
    dataset: str = "vazhi",
) -> Path:
    """Measure an importance matrix on ``texts`` with the HF model and write it as GGUF.

    The statistic is llama.cpp's: for every weight matrix, per input column, the sum over tokens
    of the squared activation entering it (``<tensor>.in_sum2``) and the token count
    (``<tensor>.counts``). The texts are tokenized as one stream and cut into ``chunk_size``
    chunks (a last partial chunk counts too). Use target-language text: it decides which
    columns K-quants keep precise.
    """
    import gguf
    import numpy as np
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model_dir, out_path = Path(model_dir), Path(out_path)
    texts = [t for t in texts if t and t.strip()]
    if not texts:
        raise ExportError("compute_imatrix needs at least one non-empty text")
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
    model.eval()
    names = _hf_to_gguf_names(model, str(model.config.model_type))

    stream: list[int] = []
    separator = tokenizer.encode("\n\n", add_special_tokens=False)
    for text in texts:
        stream += tokenizer.encode(text, add_special_tokens=False) + separator
    chunks = [stream[i:i + chunk_size] for i in range(0, len(stream), chunk_size)]
    chunks = [c for c in chunks if len(c) > 1][:max_chunks]

    sums: dict[str, torch.Tensor] = {}
    counts: Counter[str] = Counter()

    def hook_for(gguf_name: str):
        def hook(module: torch.nn.Module, args: tuple) -> None:
            x = args[0].detach().to(torch.float64)
            x = x.reshape(-1, x.shape[-1])
            squared = (x * x).sum(dim=0)
            if gguf_name in sums:
                sums[gguf_name] += squared
            else:
                sums[gguf_name] = squared
            counts[gguf_name] += x.shape[0]
        return hook

    handles = [module.register_forward_pre_hook(hook_for(names[name]))
               for name, module in model.named_modules() if name in names]
    try:
        with torch.no_grad():
            for chunk in chunks:
                model(input_ids=torch.tensor([chunk], dtype=torch.long), use_cache=False)
    finally:
        for handle in handles:
            handle.remove()

    staging = staging_path(out_path)
    try:
        writer = gguf.GGUFWriter(str(staging), arch=str(model.config.model_type))
        writer.add_type("imatrix")
        writer.add_array(gguf.Keys.IMatrix.DATASETS, [dataset])
        writer.add_uint32(gguf.Keys.IMatrix.CHUNK_COUNT, len(chunks))
        writer.add_uint32(gguf.Keys.IMatrix.CHUNK_SIZE, chunk_size)
        for name in sorted(sums):
            # GGUF shapes are ne0-first: in_sum2 is [columns, experts], counts [1, experts].
            writer.add_tensor(f"{name}.in_sum2",
                              sums[name].to(torch.float32).numpy().reshape(1, -1))
            writer.add_tensor(f"{name}.counts",
                              np.array([[counts[name]]], dtype=np.float32))
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        publish(staging, out_path)
    finally:
        staging.unlink(missing_ok=True)
    log.info("imatrix: %d tensors, %d chunks, %d tokens -> %s", len(sums), len(chunks),
             sum(len(c) for c in chunks), out_path)
    return out_path


def read_imatrix(path: Path) -> dict[str, Any]:
    """A GGUF imatrix file -> {weight tensor name: mean squared activation per column}.

    Entries with zero count get ones (no preference), as llama.cpp's loader does.
    """
    import numpy as np

    path = Path(path)
    _check_magic_imatrix(path)
    reader = gguf_reader(path)
    tensors = {t.name: t for t in reader.tensors}
    result: dict[str, Any] = {}
    for name, tensor in tensors.items():
        if not name.endswith(".in_sum2"):
            continue
        base = name[: -len(".in_sum2")]
        count_tensor = tensors.get(f"{base}.counts")
        if count_tensor is None:
            raise ExportError(f"imatrix {path}: {base} has in_sum2 but no counts")
        if tensor.tensor_type.name != "F32" or count_tensor.tensor_type.name != "F32":
            raise ExportError(f"imatrix {path}: {base} is not float32")
        sums = np.asarray(tensor.data, dtype=np.float32).reshape(-1)
        counts = np.asarray(count_tensor.data, dtype=np.float32).reshape(-1)
        if counts.size == 0 or sums.size % counts.size:
            raise ExportError(f"imatrix {path}: {base} has {sums.size} sums for "
                              f"{counts.size} counts")
        per_expert = sums.reshape(counts.size, -1)
        values = np.ones_like(per_expert)
        seen = counts > 0
        values[seen] = per_expert[seen] / counts[seen, None]
        if not np.isfinite(values).all():
            raise ExportError(f"imatrix {path}: {base} holds non-finite values")
        result[base] = values.reshape(-1)
    if not result:
        raise ExportError(f"imatrix {path} holds no <tensor>.in_sum2 entries")
    return result


def _check_magic_imatrix(path: Path) -> None:
    try:
        check_magic(path)
    except ExportError as exc:
        raise ExportError(f"{exc}; only GGUF imatrix files are supported (legacy .dat "
                          "files are not: recompute with compute_imatrix)") from exc
