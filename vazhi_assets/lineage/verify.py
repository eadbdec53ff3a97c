"""Is this GGUF one this project produced, from which recipe partition and run, and what trained
it? Answered from the Dagster instance and the provenance store, never from the file alone."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg

from vazhi_assets.identity import sha256_file
from vazhi_assets.provenance.manifest import ProvenanceError, ProvenanceManifest, load_manifest

GGUF_ASSET_NAMES = ("gguf_f16", "gguf_q8_0", "gguf_q4_k_m")
VERIFIED, MODIFIED, UNKNOWN = "verified", "modified", "unknown"


@dataclass
class Produced:
    """The materialization that produced a file."""

    asset: str
    partition: str | None
    run_id: str
    storage_id: int
    timestamp: float
    metadata: dict[str, Any]


def find_produced(instance: dg.DagsterInstance, sha256: str) -> Produced | None:
    """The GGUF materialization (any asset, any partition) whose recorded sha256 is ``sha256``."""
    for name in GGUF_ASSET_NAMES:
        cursor = None
        while True:
            result = instance.fetch_materializations(dg.AssetKey(name), limit=200,
                                                     cursor=cursor)
            for record in result.records:
                meta = record.asset_materialization.metadata
                if "sha256" in meta and meta["sha256"].value == sha256:
                    return Produced(name, record.partition_key, record.run_id,
                                    record.storage_id, record.timestamp,
                                    {k: v.value for k, v in meta.items()})
            if not result.has_more:
                break
            cursor = result.cursor
    return None


@dataclass
class Verification:
    status: str
    path: Path
    sha256: str
    message: str
    embedded: dict[str, str] = field(default_factory=dict)
    produced: Produced | None = None
    manifest: ProvenanceManifest | None = None
    seconds: float = 0.0

    @property
    def exit_code(self) -> int:
        return {VERIFIED: 0, MODIFIED: 1, UNKNOWN: 2}[self.status]


def verify_file(path: Path, instance: dg.DagsterInstance, store: Path) -> Verification:
    """Recompute the file's sha256, find the materialization that recorded it, and recompute
    the provenance root from the stored manifest: all three roots (inside the file, on the
    materialization, recomputed from the records) must agree."""
    from vazhi_assets.export.provenance_stamp import read_provenance

    started = time.perf_counter()
    path = Path(path)
    sha = sha256_file(path)  # read now: a verifier trusts no cache
    try:
        embedded = read_provenance(path)
    except Exception as exc:  # not a GGUF, or a damaged header
        embedded, unreadable = {}, f"{type(exc).__name__}: {exc}"
    else:
        unreadable = ""
    produced = find_produced(instance, sha)

    def done(status: str, message: str, manifest: ProvenanceManifest | None = None
             ) -> Verification:
        return Verification(status, path, sha, message, embedded, produced, manifest,
                            round(time.perf_counter() - started, 3))

    if produced is None:
        if embedded.get("root"):
            return done(MODIFIED, (
                f"MODIFIED: {path.name} carries this project's provenance (recipe "
                f"{embedded.get('recipe')}, root {embedded['root'][:16]}…) but its sha256 "
                f"{sha[:16]}… matches no file this instance produced: it was changed after "
                "export, or made by another instance"))
        why = f" ({unreadable[:120]})" if unreadable else ""
        return done(UNKNOWN, f"UNKNOWN: {path.name} was not produced by this project: no "
                             f"provenance metadata and sha256 {sha[:16]}… is not in this "
                             f"instance{why}")
    recorded = produced.metadata.get("provenance_root", "")
    where = (f"{produced.asset}[{produced.partition}] in run {produced.run_id[:8]}")
    try:
        manifest = load_manifest(store, recorded)
    except ProvenanceError as exc:
        return done(MODIFIED, f"MISMATCH: {where} produced this file, but {exc}")
    recomputed = manifest.recompute_root()
    if not (recomputed == recorded == embedded.get("root")):
        return done(MODIFIED, (
            f"MISMATCH: {where} produced this file, but the roots disagree (in file "
            f"{embedded.get('root', '-')[:16]}, recorded {recorded[:16]}, recomputed "
            f"{recomputed[:16]})"), manifest)
    return done(VERIFIED, (
        f"VERIFIED: {path.name} was produced by this project: recipe partition "
        f"'{produced.partition}', asset {produced.asset}, run {produced.run_id}; provenance root "
        f"{recorded} recomputed from {manifest.documents.height:,} corpus documents and "
        f"{manifest.samples.height:,} SFT samples; code version "
        f"{manifest.header.get('code_version')}"), manifest)
