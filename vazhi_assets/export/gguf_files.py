"""GGUF files on disk: atomic publishing with a sha256 sidecar, metadata, verification.

- Every writer (converter, quantizer, imatrix) writes to a temporary name beside the final
  file (``staging_path``) and ``publish`` renames it into place with a ``.sha256`` sidecar
  (``sha256sum -c`` format) beside it.
- ``read_gguf_metadata`` / ``verify_gguf``: what a GGUF carries (architecture, file type, chat
  template, special token ids, tensor-type histogram), read with the ``gguf`` library; structure
  and (when a ``.sha256`` sidecar exists) content integrity. llama.cpp itself checks that tensor
  data lies within the file, but not what the bytes are: a bit-flipped file loads.
"""

from __future__ import annotations

import copy
import functools
import os
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from vazhi_assets.identity import sha256_file

GGUF_MAGIC = b"GGUF"
SETUP_HINT = "run `make gguf-tools`"
STDERR_TAIL_CHARS = 4000


class ExportError(RuntimeError):
    """A GGUF could not be produced, read, verified or loaded; the message says why."""


# ---------------------------------------------------------------------------------------------
# writing


def tail_text(text: str, limit: int = STDERR_TAIL_CHARS) -> str:
    text = text.strip()
    return text if len(text) <= limit else "..." + text[-limit:]


def staging_path(final: Path) -> Path:
    """A fresh temporary name in ``final``'s directory (so the final rename is atomic).

    The name carries no part of ``final``'s name: the converter expands ``{ftype}``-style
    placeholders in its output name.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    # Not pre-created (mkstemp would make it 0600): the writer creates it with the umask.
    return final.parent / f".gguf-partial-{os.getpid()}-{uuid.uuid4().hex[:12]}.gguf"


def sidecar_path(path: Path) -> Path:
    """``model.gguf`` -> ``model.gguf.sha256`` (``sha256sum -c`` format)."""
    return path.with_name(path.name + ".sha256")


def publish(staging: Path, final: Path) -> Path:
    """Rename a finished file into place and record its digest beside it."""
    digest = sha256_file(staging)
    sidecar = sidecar_path(final)
    sidecar.unlink(missing_ok=True)  # never leave a digest that describes an older file
    staging.replace(final)
    tmp_sidecar = sidecar.with_name(f".{sidecar.name}.tmp")
    tmp_sidecar.write_text(f"{digest}  {final.name}\n", encoding="utf-8")
    tmp_sidecar.replace(sidecar)
    return final


def check_magic(path: Path) -> None:
    try:
        with path.open("rb") as handle:
            magic = handle.read(4)
    except OSError as exc:
        raise ExportError(f"cannot read {path}: {exc}") from exc
    if magic != GGUF_MAGIC:
        raise ExportError(f"{path} is not a GGUF file (magic {magic!r}, expected {GGUF_MAGIC!r})")


# ---------------------------------------------------------------------------------------------
# reading and verifying


def gguf_reader(path: Path) -> Any:
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
    check_magic(path)
    st = path.stat()
    key = (str(path.resolve()), st.st_ino, st.st_size, st.st_mtime_ns)
    return copy.deepcopy(_read_metadata_cached(*key))


@functools.lru_cache(maxsize=32)
def _read_metadata_cached(resolved: str, inode: int, size: int, mtime_ns: int) -> dict[str, Any]:
    import gguf

    path = Path(resolved)
    reader = gguf_reader(path)
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
        # this project's own keys (the provenance root, recipe, code version)
        "vazhi": {name: str(get(name)) for name in fields if name.startswith("vazhi.")},
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
    actual = sha256_file(path)
    if expected is not None and actual != expected.lower():
        raise ExportError(f"{path} is corrupted: sha256 {actual} does not match the recorded "
                          f"{expected}")
    return {**meta, "sha256": actual, "sha256_checked": expected is not None}
