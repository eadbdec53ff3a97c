"""The provenance manifest and its Merkle root, and the lineage diff, on plain records."""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl
import pytest

from vazhi_assets.lineage.diff import benchmark_deltas, diff_manifests
from vazhi_assets.provenance.manifest import (
    ProvenanceError,
    ProvenanceManifest,
    load_excluded,
    load_manifest,
    save_manifest,
)
from vazhi_assets.provenance.merkle import EMPTY_ROOT, leaf_hash, merkle_root, root_of

HEADER = {"recipe": "demo", "recipe_hash": "abc", "code_version": "deadbeef",
          "base_model": "offline:smollm2-135m-instruct", "base_model_sha256": "1" * 64,
          "tokenizer_sha256": "2" * 64, "cpt_adapter_sha256": "3" * 16,
          "sft_adapter_sha256": "4" * 16}


def docs(*ids: str, source: str = "urdu_news") -> pl.DataFrame:
    return pl.DataFrame({"doc_id": list(ids), "source": source,
                         "url": [f"{{demo_site}}/{i}.html" for i in ids],
                         "page_hash": [f"h{i}" for i in ids], "language": "ur",
                         "role": "target"})


def samples(*ids: str) -> pl.DataFrame:
    return pl.DataFrame({"sample_id": list(ids), "source": "bundled_ur", "format": "chatml",
                         "language": "ur", "feedback_id": [None] * len(ids)},
                        schema_overrides={"feedback_id": pl.String})


def test_root_is_order_free_and_moves_with_any_record() -> None:
    records = [{"kind": "x", "n": i} for i in range(7)]
    assert root_of(records) == root_of(list(reversed(records)))
    changed = [*records[:3], {"kind": "x", "n": 99}, *records[4:]]
    assert root_of(changed) != root_of(records)
    assert root_of(records[:6]) != root_of(records)  # a record left out
    assert merkle_root([]) == EMPTY_ROOT
    assert merkle_root([leaf_hash(records[0])]) == leaf_hash(records[0])


def test_manifest_round_trip_and_recompute(tmp_path: Path) -> None:
    manifest = ProvenanceManifest.build(HEADER, docs("b", "a"), samples("s1"))
    assert manifest.documents["doc_id"].to_list() == ["a", "b"]
    folder = save_manifest(manifest, tmp_path)
    assert folder.name == manifest.root
    again = load_manifest(tmp_path, manifest.root)
    assert again.recompute_root() == manifest.root
    assert save_manifest(manifest, tmp_path) == folder  # same root: stored once, kept
    # staged with mkdtemp/mkstemp, stored with the modes a plain write would give
    umask = os.umask(0o022)
    os.umask(umask)
    for entry in [folder, *folder.iterdir()]:
        expected = (0o777 if entry.is_dir() else 0o666) & ~umask
        assert entry.stat().st_mode & 0o777 == expected, entry
    other = ProvenanceManifest.build({**HEADER, "code_version": "cafe"}, docs("a", "b"),
                                     samples("s1"))
    assert other.root != manifest.root  # the code version is part of what made the model
    with pytest.raises(ProvenanceError, match="lacks"):
        ProvenanceManifest.build({"recipe": "demo"}, docs("a"), samples())
    with pytest.raises(ProvenanceError, match="no provenance manifest"):
        load_manifest(tmp_path, "0" * 64)


def test_diff_names_what_entered_and_why_documents_left(tmp_path: Path) -> None:
    old = ProvenanceManifest.build(HEADER, docs("a", "b", "c"), samples("s1", "s2"))
    new = ProvenanceManifest.build(
        HEADER, pl.concat([docs("a", "c"), docs("d", source="urdu_blog")]), samples("s1", "s3"))
    excluded = pl.DataFrame({"doc_id": ["b"], "source": ["urdu_news"], "url": ["u"],
                             "step": ["minhash_dedup"], "reason": ["duplicate of d"]})
    save_manifest(new, tmp_path, excluded)
    diff = diff_manifests(old, new, load_excluded(tmp_path, new.root))
    rows = {(r["change"], r["doc_id"]): r for r in diff.documents.iter_rows(named=True)}
    assert set(rows) == {("entered", "d"), ("left", "b")}
    assert rows[("left", "b")]["step"] == "minhash_dedup"
    assert rows[("entered", "d")]["source"] == "urdu_blog"
    assert set(zip(diff.samples["change"], diff.samples["sample_id"], strict=True)) == {
        ("entered", "s3"), ("left", "s2")}
    summary = diff.by_source()
    left = summary.filter((pl.col("change") == "left") & (pl.col("documents") > 0))
    assert left["why"].to_list() == ["minhash_dedup"]
    assert diff_manifests(new, new, excluded).unchanged


def test_benchmark_deltas_pair_variants_and_skip_text() -> None:
    old = pl.DataFrame({"variant": ["base", "gguf_q8_0"], "ppl_ur": [10.0, 10.5],
                        "recipe": ["demo", "demo"]})
    new = pl.DataFrame({"variant": ["base", "gguf_q8_0", "gguf_q4_k_m"],
                        "ppl_ur": [9.0, 9.75, 11.0], "recipe": ["demo"] * 3})
    deltas = benchmark_deltas(old, new)
    assert deltas.select("variant", "delta").rows() == [("base", -1.0), ("gguf_q8_0", -0.75)]
