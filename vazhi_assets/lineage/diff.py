"""Lineage diff: which documents and SFT samples entered or left training between two models,
grouped by source and by the step that dropped them, beside the benchmark deltas."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from vazhi_assets.provenance.manifest import ProvenanceManifest

NOT_OFFERED = "not_in_corpus"


@dataclass(frozen=True)
class LineageDiff:
    old_root: str
    new_root: str
    #: change (entered | left), doc_id, source, url, step, reason
    documents: pl.DataFrame
    #: change (entered | left), sample_id, source, format, feedback_id
    samples: pl.DataFrame

    @property
    def unchanged(self) -> bool:
        return self.documents.is_empty() and self.samples.is_empty()

    def by_source(self) -> pl.DataFrame:
        """Documents and samples entered/left per source; documents that left, per step."""
        schema = {"change": pl.String, "source": pl.String, "why": pl.String,
                  "documents": pl.UInt32, "samples": pl.UInt32}
        docs = (self.documents.group_by("change", "source", "step")
                .agg(documents=pl.len()).rename({"step": "why"})
                .with_columns(samples=pl.lit(0, pl.UInt32)))
        samples = (self.samples.group_by("change", "source")
                   .agg(samples=pl.len())
                   .with_columns(why=pl.lit("sft"), documents=pl.lit(0, pl.UInt32)))
        frames = [f.select([pl.col(c).cast(t) for c, t in schema.items()])
                  for f in (docs, samples) if f.height]
        if not frames:
            return pl.DataFrame(schema=schema)
        return pl.concat(frames).sort("change", "source", "why")


def diff_manifests(old: ProvenanceManifest, new: ProvenanceManifest,
                   excluded_new: pl.DataFrame, excluded_old: pl.DataFrame | None = None,
                   ) -> LineageDiff:
    """What trained ``new`` but not ``old`` (entered), and the reverse (left). A document that
    left is explained by ``excluded_new`` (the step that dropped it when ``new`` was trained);
    one that entered, by ``excluded_old`` when it was held back before."""
    old_ids = set(old.documents["doc_id"].to_list())
    new_ids = set(new.documents["doc_id"].to_list())
    entered = new.documents.filter(~pl.col("doc_id").is_in(list(old_ids)))
    left = old.documents.filter(~pl.col("doc_id").is_in(list(new_ids)))

    def explain(frame: pl.DataFrame, excluded: pl.DataFrame | None, default: str) -> pl.DataFrame:
        base = frame.select("doc_id", "source", "url")
        if excluded is None or excluded.is_empty():
            return base.with_columns(step=pl.lit(default), reason=pl.lit(""))
        reasons = excluded.select("doc_id", "step", "reason").unique("doc_id", keep="first")
        return base.join(reasons, on="doc_id", how="left").with_columns(
            step=pl.col("step").fill_null(default), reason=pl.col("reason").fill_null(""))

    documents = pl.concat([
        explain(entered, excluded_old, "new_document").with_columns(change=pl.lit("entered")),
        explain(left, excluded_new, NOT_OFFERED).with_columns(change=pl.lit("left")),
    ]).select("change", "doc_id", "source", "url", "step", "reason").sort(
        "change", "source", "doc_id")
    old_samples = set(old.samples["sample_id"].to_list())
    new_samples = set(new.samples["sample_id"].to_list())
    samples = pl.concat([
        new.samples.filter(~pl.col("sample_id").is_in(list(old_samples)))
        .with_columns(change=pl.lit("entered")),
        old.samples.filter(~pl.col("sample_id").is_in(list(new_samples)))
        .with_columns(change=pl.lit("left")),
    ]).select("change", "sample_id", "source", "format", "feedback_id").sort(
        "change", "source", "sample_id")
    return LineageDiff(old.root, new.root, documents, samples)


METRIC_SKIP = {"variant", "run_id", "measured_at", "recipe", "recipe_hash", "code_version",
               "lineage", "ablation", "provenance_root", "max_new_tokens"}


def benchmark_deltas(old: pl.DataFrame, new: pl.DataFrame) -> pl.DataFrame:
    """Per variant and numeric metric: old value, new value and the difference."""
    rows = []
    old_by_variant = {r["variant"]: r for r in old.iter_rows(named=True)}
    for row in new.iter_rows(named=True):
        before = old_by_variant.get(row["variant"])
        if before is None:
            continue
        for metric, value in row.items():
            if metric in METRIC_SKIP or not isinstance(value, int | float):
                continue
            previous = before.get(metric)
            if isinstance(value, bool) or not isinstance(previous, int | float):
                continue
            rows.append({"variant": row["variant"], "metric": metric,
                         "old": float(previous), "new": float(value),
                         "delta": round(float(value) - float(previous), 4)})
    return pl.DataFrame(rows, schema={"variant": pl.String, "metric": pl.String,
                                      "old": pl.Float64, "new": pl.Float64,
                                      "delta": pl.Float64})
