"""The retention funnel: documents left per source after each crawl, cleaning and dedup step."""

from __future__ import annotations

import polars as pl

from vazhi_assets.corpus.quality import QALB_RETENTION
from vazhi_assets.metadata import png_markdown

FUNNEL_COLUMNS = ["source", "step", "order", "seen", "kept", "dropped"]


def crawl_funnel(pages: pl.DataFrame) -> pl.DataFrame:
    """Funnel rows for the crawl itself: pages attempted and pages fetched fine."""
    counts = pages.group_by("source").agg(
        attempted=pl.len().cast(pl.Int64), ok=pl.col("ok").sum().cast(pl.Int64)
    )
    counts_cols = ("order", "seen", "kept", "dropped")
    crawled = counts.select("source", step=pl.lit("crawled"), order=pl.lit(-2),
                            seen=pl.col("attempted"), kept=pl.col("attempted"), dropped=pl.lit(0))
    fetched = counts.select("source", step=pl.lit("fetched_ok"), order=pl.lit(-1),
                            seen=pl.col("attempted"), kept=pl.col("ok"),
                            dropped=pl.col("attempted") - pl.col("ok"))
    return pl.concat(
        [f.with_columns(pl.col(c).cast(pl.Int64) for c in counts_cols) for f in (crawled, fetched)]
    )


def assemble_funnel(parts: list[pl.DataFrame]) -> pl.DataFrame:
    """Stack funnel parts and add each step's retention relative to the fetched pages."""
    counts = ("order", "seen", "kept", "dropped")
    funnel = pl.concat(
        [p.select(FUNNEL_COLUMNS).with_columns(pl.col(c).cast(pl.Int64) for c in counts)
         for p in parts],
        how="vertical_relaxed",
    ).sort("source", "order")
    fetched = funnel.filter(pl.col("step") == "fetched_ok").select("source", fetched="kept")
    return funnel.join(fetched, on="source", how="left").with_columns(
        retention=pl.when(pl.col("fetched") > 0)
        .then(pl.col("kept") / pl.col("fetched"))
        .otherwise(None)
    )


def retention_by_source(funnel: pl.DataFrame) -> pl.DataFrame:
    """Final documents per source over documents fetched, beside Qalb's published retention."""
    last = funnel.sort("order").group_by("source").agg(
        fetched=pl.col("fetched").first(), final_step=pl.col("step").last(),
        kept=pl.col("kept").last()
    )
    return last.with_columns(
        retention=(pl.col("kept") / pl.col("fetched")).round(4),
        qalb_retention=pl.lit(QALB_RETENTION),
    ).sort("source")


def wide_funnel(funnel: pl.DataFrame) -> pl.DataFrame:
    """One row per source, one column per step (documents left after it)."""
    steps = funnel.sort("order").select("step").unique(maintain_order=True)["step"].to_list()
    wide = funnel.pivot(on="step", index="source", values="kept", aggregate_function="first")
    return wide.select("source", *[s for s in steps if s in wide.columns]).sort("source")


def funnel_chart(funnel: pl.DataFrame) -> str:
    """Markdown with an inline PNG: retention after each step, one line per source."""
    steps = funnel.sort("order").select("step").unique(maintain_order=True)["step"].to_list()

    def draw(ax: object) -> None:
        for source in sorted(funnel["source"].unique().to_list()):
            part = funnel.filter(pl.col("source") == source)
            values = dict(zip(part["step"], part["retention"], strict=True))
            xs = [i for i, s in enumerate(steps) if s in values and s != "crawled"]
            ax.plot(xs, [values[steps[i]] for i in xs], marker="o", label=source)
        ax.axhline(QALB_RETENTION, color="grey", linestyle="--", label="Qalb 67.8%")
        ax.set_xticks(range(len(steps)), steps, rotation=35, ha="right")
        ax.set_ylabel("documents kept / pages fetched")
        ax.set_ylim(0, 1.05)
        ax.legend(fontsize=7, loc="lower left")

    return png_markdown(draw, "Retention funnel per source", (9, 4.5))


def volume_retention(pages: pl.DataFrame, final: pl.DataFrame) -> pl.DataFrame:
    """Characters kept per source: fetched raw markdown vs final cleaned text (the measure
    Qalb's 67.8% is closest to — boilerplate is removed inside documents that stay)."""
    raw = pages.filter(pl.col("ok")).group_by("source").agg(
        raw_chars=pl.col("markdown_raw").str.len_chars().sum().cast(pl.Int64))
    kept = final.group_by("source").agg(kept_chars=pl.col("text").str.len_chars().sum()
                                        .cast(pl.Int64))
    return raw.join(kept, on="source", how="left").with_columns(
        pl.col("kept_chars").fill_null(0),
        volume_retention=(pl.col("kept_chars").fill_null(0) / pl.col("raw_chars")).round(4),
    ).sort("source")
