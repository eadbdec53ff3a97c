"""Provenance inside the GGUF: the manifest's Merkle root, the recipe and the code version as
``vazhi.*`` metadata keys. The F16 file is stamped after conversion; llama.cpp's quantizer
copies every key into the Q8_0 / Q4_K_M files."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

PROVENANCE_KEYS = {
    "root": "vazhi.provenance.root",
    "recipe": "vazhi.recipe",
    "recipe_hash": "vazhi.recipe_hash",
    "code_version": "vazhi.code_version",
}


def stamp_provenance(path: Path, values: dict[str, str]) -> None:
    """Rewrite ``path`` with ``values`` (keys of :data:`PROVENANCE_KEYS`) added to its metadata,
    atomically; tensors and every other key are copied unchanged."""
    import gguf
    from gguf.scripts.gguf_new_metadata import MetadataDetails, copy_with_new_metadata

    unknown = set(values) - set(PROVENANCE_KEYS)
    if unknown:
        raise KeyError(f"unknown provenance keys {sorted(unknown)}")
    reader = gguf.GGUFReader(path, "r")
    arch = reader.get_field(gguf.Keys.General.ARCHITECTURE).contents()
    staging = path.with_name(f".{path.name}.stamp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        writer = gguf.GGUFWriter(staging, arch=arch, endianess=reader.endianess)
        new = {PROVENANCE_KEYS[k]: MetadataDetails(gguf.GGUFValueType.STRING, str(v))
               for k, v in values.items()}
        copy_with_new_metadata(reader, writer, new, remove_metadata=[])
        del reader
        os.replace(staging, path)
    finally:
        staging.unlink(missing_ok=True)


def provenance_of(metadata: dict) -> dict[str, str]:
    """The provenance keys in what :func:`~vazhi_assets.export.gguf_files.read_gguf_metadata`
    returned (its ``vazhi`` entry)."""
    keys = metadata.get("vazhi", {})
    return {name: keys[key] for name, key in PROVENANCE_KEYS.items() if key in keys}


def read_provenance(path: Path) -> dict[str, str]:
    """The ``vazhi.*`` keys of a GGUF, read from the file now (empty for a file not made by
    this project); what a verifier uses, never a cache."""
    import gguf

    reader = gguf.GGUFReader(path, "r")
    found = {}
    for name, key in PROVENANCE_KEYS.items():
        field = reader.get_field(key)
        if field is not None:
            found[name] = str(field.contents())
    return found
