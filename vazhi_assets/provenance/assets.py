"""``training_provenance``: per recipe partition, the manifest of everything that trained the
model, under a Merkle root that the GGUF files, Modelfiles and model card then carry."""


import json

import dagster as dg
import polars as pl

from vazhi_assets.gates import blocking_check, consumed_metadata
from vazhi_assets.identity import code_version, dir_version, project_version
from vazhi_assets.metadata import markdown_table
from vazhi_assets.provenance.manifest import (
    DOCUMENT_COLUMNS,
    EXCLUDED_COLUMNS,
    SAMPLE_COLUMNS,
    ProvenanceManifest,
    load_manifest,
    manifest_bytes,
    save_manifest,
)
from vazhi_assets.resources import VazhiStorage
from vazhi_assets.storage import atomic_write_text
from vazhi_assets.training.data_assets import cpt_shards, read_base, sft_shards
from vazhi_assets.training.recipe_assets import RecipeRun, recipe_run
from vazhi_assets.training.recipe_registry import RECIPE_PARTITIONS
from vazhi_assets.training.shards import DOCUMENTS_FILE
from vazhi_assets.training.train_assets import cpt_adapter, read_adapter, read_shards, sft_adapter
from vazhi_assets.training.workspace import RecipeWork

GROUP = "training"
POINTER = "root.json"


def provenance_store(storage: VazhiStorage):  # noqa: ANN201 - a Path
    return storage.base / "provenance"


def trained_documents(run: RecipeRun) -> pl.DataFrame:
    """The CPT stage's train-split documents (none for a recipe without CPT)."""
    path = run.work.cpt_shards / DOCUMENTS_FILE
    if not run.spec.has_cpt:
        return pl.DataFrame(schema={c: pl.String for c in DOCUMENT_COLUMNS})
    frame = pl.read_parquet(path).filter(pl.col("split") == "train")
    return frame.select([pl.col(c).cast(pl.String) for c in DOCUMENT_COLUMNS])


def trained_samples(run: RecipeRun) -> pl.DataFrame:
    frame = pl.read_parquet(run.work.sft_shards / "train.parquet")
    for column in ("source", "feedback_id"):
        if column not in frame.columns:
            frame = frame.with_columns(pl.lit(None, pl.String).alias(column))
    return frame.select([pl.col(c).cast(pl.String) for c in SAMPLE_COLUMNS])


REJECT_TABLES = ("cleaned_urdu_corpus", "cleaned_tamil_corpus", "english_replay",
                 "deduplicated_corpus")


def excluded_documents(storage: VazhiStorage, run: RecipeRun) -> pl.DataFrame:
    """Why the documents the corpus offered did not train this model (cleaning and dedup
    rejects, the val split, English replay beyond the budget)."""
    parts = []
    for name in REJECT_TABLES:
        frame = storage.read_table("rejected_documents", name)
        if frame is not None and frame.height:
            parts.append(frame.select(EXCLUDED_COLUMNS))
    documents = run.work.cpt_shards / DOCUMENTS_FILE
    if run.spec.has_cpt and documents.exists():
        packed = pl.read_parquet(documents)
        parts.append(packed.filter(pl.col("split") == "val").select(
            "doc_id", "source", "url", step=pl.lit("held_out"),
            reason=pl.lit("val split: evaluation only")))
        replay = storage.read_table("english_replay")
        if replay is not None:
            unused = replay.filter(~pl.col("doc_id").is_in(packed["doc_id"].unique().to_list()))
            parts.append(unused.select("doc_id", "source", "url", step=pl.lit("replay_budget"),
                                       reason=pl.lit("English replay beyond the recipe's share")))
    if not parts:
        return pl.DataFrame(schema={c: pl.String for c in EXCLUDED_COLUMNS})
    return pl.concat([p.select([pl.col(c).cast(pl.String) for c in EXCLUDED_COLUMNS])
                      for p in parts]).unique("doc_id", keep="first", maintain_order=True)


def build_provenance(run: RecipeRun, base: dict) -> ProvenanceManifest:
    work, spec = run.work, run.spec
    header = {
        "recipe": spec.name, "recipe_hash": spec.content_hash(),
        "code_version": project_version(),
        "base_model": spec.model.name,
        "base_model_sha256": base["weights_sha256"],
        "tokenizer_sha256": base["tokenizer_sha256"],
        "cpt_adapter_sha256": dir_version(work.cpt_adapter) if spec.has_cpt else None,
        "sft_adapter_sha256": dir_version(work.sft_adapter),
    }
    return ProvenanceManifest.build(header, trained_documents(run), trained_samples(run))


def read_pointer(work: RecipeWork) -> dict:
    path = work.provenance / POINTER
    if not path.exists():
        raise dg.Failure(f"no provenance for {work.root.name}: materialize training_provenance")
    return json.loads(path.read_text(encoding="utf-8"))


@dg.asset(
    partitions_def=RECIPE_PARTITIONS,
    deps=[cpt_shards, sft_shards, cpt_adapter, sft_adapter],
    group_name=GROUP,
    kinds={"parquet"},
    owners=["team:ml"],
    tags={"stage": "training"},
    code_version=code_version("vazhi_assets.provenance.manifest",
                              "vazhi_assets.provenance.merkle",
                              after=[cpt_shards, sft_shards, cpt_adapter, sft_adapter]),
    description="Everything that trained this partition's model — recipe name and hash, code "
    "version, base-model and tokenizer hashes, adapter hashes, every corpus document (doc_id, "
    "source, url, crawled page hash) and every SFT sample (id, source, feedback row) — as a "
    "content-addressed manifest under one Merkle root, which the GGUF files carry.",
)
def training_provenance(
    context: dg.AssetExecutionContext, storage: VazhiStorage
) -> dg.MaterializeResult:
    run = recipe_run(context, storage)
    work = run.work
    base, read_base_model = read_base(context, run)
    consumed = [run.consumed, read_base_model,
                read_shards(context, run, cpt_shards, work.cpt_shards),
                read_shards(context, run, sft_shards, work.sft_shards),
                read_adapter(context, run, "cpt_adapter",
                             work.cpt_adapter if run.spec.has_cpt else None),
                read_adapter(context, run, "sft_adapter", work.sft_adapter)]
    manifest = build_provenance(run, base)
    store = provenance_store(storage)
    folder = save_manifest(manifest, store, excluded_documents(storage, run))
    work.provenance.mkdir(parents=True, exist_ok=True)
    atomic_write_text(work.provenance / POINTER, json.dumps(
        {"root": manifest.root, "manifest": str(folder)}, indent=2))
    summary = manifest.summary()
    by_source = pl.DataFrame([{"source": s, "documents": n}
                              for s, n in summary["documents_by_source"].items()]
                             or [{"source": "-", "documents": 0}])
    return dg.MaterializeResult(
        data_version=dg.DataVersion(manifest.root[:16]),
        metadata={
            **run.tags(), "content_hash": manifest.root[:16],
            **consumed_metadata(consumed),
            "provenance_root": manifest.root,
            "code_version": manifest.header["code_version"],
            "documents": manifest.documents.height,
            "sft_samples": manifest.samples.height,
            "manifest_bytes": manifest_bytes(store, manifest.root),
            "documents_by_source": dg.MetadataValue.md(markdown_table(by_source)),
            "samples_by_source": dg.MetadataValue.json(summary["samples_by_source"]),
            "manifest": dg.MetadataValue.path(str(folder)),
        },
    )


@blocking_check(asset=training_provenance, name="provenance_complete",
                description="The manifest recomputes to its root, and every trained document "
                "leads back to a crawled page (url and page hash) and every SFT sample to a "
                "source.")
def provenance_complete(
    context: dg.AssetCheckExecutionContext, storage: VazhiStorage
) -> dg.AssetCheckResult:
    work = RecipeWork.of(storage.base, context.partition_key)
    root = read_pointer(work)["root"]
    manifest = load_manifest(provenance_store(storage), root)
    recomputed = manifest.recompute_root()
    docs = manifest.documents
    untraced = docs.filter(pl.col("url").is_null() | pl.col("page_hash").is_null()).height
    unsourced = manifest.samples.filter(pl.col("source").is_null()).height
    return dg.AssetCheckResult(
        passed=recomputed == root and untraced == 0 and unsourced == 0,
        metadata={"root": root, "recomputed_root": recomputed,
                  "documents_without_page": untraced, "samples_without_source": unsourced},
    )
