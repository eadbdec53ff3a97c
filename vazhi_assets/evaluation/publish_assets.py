"""``model_card``: the published set of a recipe partition. A GGUF file is published only when
every blocking check in its own lineage passed on exactly the materializations it came from;
otherwise it is refused, naming the check, the asset and the run."""


import os
import shutil
from pathlib import Path

import dagster as dg
import polars as pl

from vazhi_assets.evaluation.benchmark_assets import HIDDEN, benchmark_table
from vazhi_assets.export.assets import FILE_TYPES, GGUF_ASSETS, gguf_path, modelfile_path
from vazhi_assets.gates import (
    Consumed,
    LineageWalk,
    consume,
    consumed_metadata,
    latest_materialization,
    lineage_problems,
)
from vazhi_assets.identity import code_version, sha256_bytes, sha256_file
from vazhi_assets.identity import version as short
from vazhi_assets.provenance.assets import provenance_store, read_pointer
from vazhi_assets.provenance.manifest import load_manifest, manifest_dir
from vazhi_assets.resources import VazhiStorage
from vazhi_assets.storage import atomic_write_text
from vazhi_assets.training.data_assets import replace_dir, staging_dir
from vazhi_assets.training.recipe_assets import RecipeRun, recipe_run
from vazhi_assets.training.recipe_registry import RECIPE_PARTITIONS

GROUP = "evaluation"


def review_file(instance: dg.DagsterInstance, run: RecipeRun,
                file_type: str) -> tuple[Consumed | None, LineageWalk | None, list[str]]:
    """The latest materialization of the partition's ``file_type`` GGUF, its lineage walk, and
    why it may not be published (empty when it may)."""
    asset = GGUF_ASSETS[file_type]
    path = gguf_path(run.work, file_type)
    record = latest_materialization(instance, asset.key, run.name)
    if record is None:
        return None, None, [f"{asset.key.to_user_string()}[{run.name}] was never materialized"]
    meta = record.asset_materialization.metadata
    recorded = meta["sha256"].value if "sha256" in meta else None
    ref = Consumed(asset.key.to_user_string(), run.name, record.storage_id, record.run_id,
                   meta["content_hash"].value if "content_hash" in meta else None)
    if not path.exists():
        return ref, None, [f"{path.name} is missing on disk"]
    if recorded is None or sha256_file(path) != recorded:
        return ref, None, [f"{path.name} on disk is not the file materialized in run "
                           f"{record.run_id[:8]} (sha256 differs)"]
    walk = lineage_problems(instance, ref)
    return ref, walk, walk.problems


def _node(walk: LineageWalk, name: str) -> dict:
    for node in walk.nodes:
        if node["name"] == name:
            return node["metadata"]
    return {}


def _sources_table(walk: LineageWalk, manifest_documents: pl.DataFrame) -> pl.DataFrame:
    crawled = [{"source": n["asset"].split("[", 1)[1].rstrip("]"),
                "pages_ok": n["metadata"].get("pages_ok")}
               for n in walk.nodes if n["name"] == "raw_crawl"]
    trained = manifest_documents.group_by("source").agg(trained_documents=pl.len())
    frame = pl.DataFrame(crawled, schema={"source": pl.String, "pages_ok": pl.Int64})
    return frame.join(trained, on="source", how="full", coalesce=True).sort("source")


@dg.asset(
    partitions_def=RECIPE_PARTITIONS,
    deps=[benchmark_table],
    group_name=GROUP,
    kinds={"markdown"},
    owners=["team:ml"],
    tags={"stage": "evaluation"},
    code_version=code_version("vazhi_assets.evaluation.model_card", "vazhi_assets.gates",
                              after=[benchmark_table]),
    description="The published set: each GGUF file and Modelfile whose every blocking check in "
    "its own lineage passed on the exact materializations it came from, the provenance "
    "manifest, and an HF-style model card generated from that lineage (sources, tokens, "
    "hyperparameters, check results, benchmark rows). Files that do not qualify are refused "
    "with the check, asset and run that stopped them.",
)
def model_card(context: dg.AssetExecutionContext, storage: VazhiStorage) -> dg.MaterializeResult:
    from vazhi_assets.evaluation.model_card import render_model_card

    run = recipe_run(context, storage)
    spec, work = run.spec, run.work
    bench = consume(context, benchmark_table.key, partition=run.name)
    files, refused, walks, consumed = [], [], {}, [run.consumed, bench]
    for file_type in FILE_TYPES:
        ref, walk, problems = review_file(context.instance, run, file_type)
        name = gguf_path(work, file_type).name
        if problems:
            refused.append({"file": name, "type": file_type, "why": "; ".join(problems)})
            context.log.warning(f"not publishing {name}: {'; '.join(problems)}")
            continue
        walks[file_type] = walk
        consumed.append(ref)
        files.append({"file": name, "type": file_type,
                      "size_mb": round(gguf_path(work, file_type).stat().st_size / 1e6, 1),
                      "sha256": sha256_file(gguf_path(work, file_type))})
    if not files:
        raise dg.Failure(description="nothing to publish for recipe "
                         f"{run.name}: " + " | ".join(f"{r['file']}: {r['why']}"
                                                      for r in refused))
    walk = next(iter(walks.values()))
    root = read_pointer(work)["root"]
    manifest = load_manifest(provenance_store(storage), root)
    latest = storage.catalog.query(
        "select * from benchmark_results where run_id = ? order by variant", [bench.run_id])
    shown = latest.select([c for c in latest.columns if c not in {*HIDDEN, "recipe"}])
    checks = [{"asset": node["asset"], "check": check, "passed": passed}
              for w in walks.values() for node in w.nodes
              for check, passed in node["checks"].items()]
    checks = list({(c["asset"], c["check"]): c for c in checks}.values())
    card = render_model_card(
        spec,
        base=_node(walk, "base_model"),
        retention=_sources_table(walk, manifest.documents),
        shards=_node(walk, "cpt_shards"),
        training={"cpt": _node(walk, "cpt_adapter"), "sft": _node(walk, "sft_adapter")},
        checks=sorted(checks, key=lambda c: (c["asset"], c["check"])),
        benchmarks=shown,
        files=[{k: v for k, v in f.items() if k != "sha256"} for f in files],
        provenance={**manifest.header, "root": root, "documents": manifest.documents.height,
                    "samples": manifest.samples.height},
        refused=refused,
    )
    published = work.published
    staging = staging_dir(published)
    try:
        for entry in files:
            source = gguf_path(work, entry["type"])
            for path in (source, modelfile_path(source)):
                os.link(path, staging / path.name)
        shutil.copytree(manifest_dir(provenance_store(storage), root), staging / "provenance")
        atomic_write_text(staging / "README.md", card)
        replace_dir(staging, published)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    content = short(sha256_bytes(card.encode() + "".join(f["sha256"] for f in files).encode()))
    return dg.MaterializeResult(
        data_version=dg.DataVersion(content),
        metadata={
            **run.tags(), "content_hash": content, **consumed_metadata(consumed),
            "provenance_root": root,
            "path": dg.MetadataValue.path(str(published / "README.md")),
            "card": dg.MetadataValue.md(card.split("---", 2)[2][:20000]),
            "files": dg.MetadataValue.json(files),
            "refused": dg.MetadataValue.json(refused),
            "lineage_checks": len(checks),
        })


def published_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_file()) if folder.exists() else []
