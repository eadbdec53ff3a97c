"""The provenance manifest of one trained model: what made it, as records under a Merkle root.

Records are of three kinds: ``header`` (recipe name and hash, code version, base-model and
tokenizer hashes, adapter hashes), ``corpus_document`` (every document the CPT stage trained
on: doc_id, source, url, crawl page content hash) and ``sft_sample`` (every SFT sample it
trained on: id, source, format, feedback row). The root covers all of them; it is written into
the GGUF metadata, the Modelfile and the model card, so a file can be traced back to exactly
these records. Manifests are stored content-addressed (``provenance/<root>/``) and never
rewritten, so older models stay verifiable and diffable after newer ones are trained.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from vazhi_assets.provenance.merkle import leaf_hash, merkle_root
from vazhi_assets.storage import make_shareable, write_parquet

DOCUMENT_COLUMNS = ["doc_id", "source", "url", "page_hash", "language", "role"]
SAMPLE_COLUMNS = ["sample_id", "source", "format", "language", "feedback_id"]
HEADER_KEYS = ("recipe", "recipe_hash", "code_version", "base_model", "base_model_sha256",
               "tokenizer_sha256", "cpt_adapter_sha256", "sft_adapter_sha256")


class ProvenanceError(ValueError):
    """A manifest that cannot be built or does not recompute to its root."""


def _records(kind: str, frame: pl.DataFrame, columns: list[str]) -> list[dict[str, Any]]:
    return [{"kind": kind, **row} for row in frame.select(columns).iter_rows(named=True)]


def _with_leaves(kind: str, frame: pl.DataFrame, columns: list[str]) -> pl.DataFrame:
    leaves = [leaf_hash(r) for r in _records(kind, frame, columns)]
    return frame.select(columns).with_columns(leaf=pl.Series(leaves, dtype=pl.String))


@dataclass(frozen=True)
class ProvenanceManifest:
    root: str
    header: dict[str, Any]
    documents: pl.DataFrame
    samples: pl.DataFrame

    @classmethod
    def build(cls, header: dict[str, Any], documents: pl.DataFrame,
              samples: pl.DataFrame) -> ProvenanceManifest:
        missing = [k for k in HEADER_KEYS if k not in header]
        if missing:
            raise ProvenanceError(f"provenance header lacks {missing}")
        for name, frame, columns in (("documents", documents, DOCUMENT_COLUMNS),
                                     ("samples", samples, SAMPLE_COLUMNS)):
            absent = [c for c in columns if c not in frame.columns]
            if absent:
                raise ProvenanceError(f"provenance {name} lack columns {absent}")
        documents = _with_leaves("corpus_document", documents.sort("doc_id"), DOCUMENT_COLUMNS)
        samples = _with_leaves("sft_sample", samples.sort("sample_id"), SAMPLE_COLUMNS)
        leaves = [*cls._header_leaves(header), *documents["leaf"], *samples["leaf"]]
        return cls(merkle_root(leaves), dict(header), documents, samples)

    @staticmethod
    def _header_leaves(header: dict[str, Any]) -> list[str]:
        return [leaf_hash({"kind": "header", "key": k, "value": header[k]}) for k in HEADER_KEYS]

    def recompute_root(self) -> str:
        """The root recomputed from the records themselves (not from the stored leaves)."""
        leaves = [*self._header_leaves(self.header),
                  *(leaf_hash(r) for r in _records("corpus_document", self.documents,
                                                   DOCUMENT_COLUMNS)),
                  *(leaf_hash(r) for r in _records("sft_sample", self.samples, SAMPLE_COLUMNS))]
        return merkle_root(leaves)

    def summary(self) -> dict[str, Any]:
        by_source = (self.documents.group_by("source").agg(documents=pl.len()).sort("source")
                     if self.documents.height else pl.DataFrame({"source": [], "documents": []}))
        samples = (self.samples.group_by("source").agg(samples=pl.len()).sort("source")
                   if self.samples.height else pl.DataFrame({"source": [], "samples": []}))
        return {
            "root": self.root, **self.header,
            "documents": self.documents.height, "samples": self.samples.height,
            "documents_by_source": dict(by_source.iter_rows()),
            "samples_by_source": dict(samples.iter_rows()),
        }


def manifest_dir(store: Path, root: str) -> Path:
    return store / root


EXCLUDED_COLUMNS = ["doc_id", "source", "url", "step", "reason"]


def save_manifest(manifest: ProvenanceManifest, store: Path,
                  excluded: pl.DataFrame | None = None) -> Path:
    """Write ``store/<root>/`` (manifest.json, documents.parquet, samples.parquet) atomically;
    an existing manifest with the same root is the same content and is kept as it is.

    ``excluded`` (outside the root) records why the documents the corpus offered did not
    train: the cleaning or dedup step that dropped them, the val split, the replay budget. A
    lineage diff reads it to say why a document left."""
    target = manifest_dir(store, manifest.root)
    if (target / "manifest.json").exists():
        return target
    store.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=store, prefix=f".{manifest.root[:12]}-"))
    try:
        write_parquet(manifest.documents, staging / "documents.parquet")
        write_parquet(manifest.samples, staging / "samples.parquet")
        if excluded is not None:
            write_parquet(excluded.select(EXCLUDED_COLUMNS), staging / "excluded.parquet")
        (staging / "manifest.json").write_text(
            json.dumps(manifest.summary(), ensure_ascii=False, indent=2, sort_keys=True),
            encoding="utf-8")
        make_shareable(staging)
        try:
            os.rename(staging, target)
        except OSError:  # a parallel run stored the same root first: same content
            if not (target / "manifest.json").exists():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def load_manifest(store: Path, root: str) -> ProvenanceManifest:
    folder = manifest_dir(store, root)
    if not (folder / "manifest.json").exists():
        raise ProvenanceError(f"no provenance manifest {root} in {store}")
    summary = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    header = {k: summary.get(k) for k in HEADER_KEYS}
    return ProvenanceManifest(summary["root"], header,
                              pl.read_parquet(folder / "documents.parquet"),
                              pl.read_parquet(folder / "samples.parquet"))


def load_excluded(store: Path, root: str) -> pl.DataFrame:
    path = manifest_dir(store, root) / "excluded.parquet"
    if not path.exists():
        return pl.DataFrame(schema={c: pl.String for c in EXCLUDED_COLUMNS})
    return pl.read_parquet(path)


def manifest_bytes(store: Path, root: str) -> int:
    return sum(p.stat().st_size for p in manifest_dir(store, root).iterdir() if p.is_file())
