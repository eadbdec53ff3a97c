"""Corpus assets: cleaned corpora per language, English replay, dedup, the pretraining mix."""


import dagster as dg
import polars as pl

from vazhi_assets.corpus import build, report
from vazhi_assets.corpus.dedup import exact_dedup, minhash_dedup
from vazhi_assets.corpus.pipeline import CleaningPipeline, default_steps
from vazhi_assets.corpus.quality import MIN_CHARS, MIN_WORDS, PURITY_BARS
from vazhi_assets.crawl.assets import REGISTRY, crawl_version, raw_crawl
from vazhi_assets.gates import blocking_check, consume, consumed_metadata
from vazhi_assets.identity import code_version, table_version
from vazhi_assets.metadata import markdown_table
from vazhi_assets.resources import VazhiStorage

CORPUS_CHECKS = ["script_purity", "length_limits"]
#: The cleaning code: editing any step changes the corpora's code version (and downstream).
CLEANING_MODULES = ("vazhi_assets.corpus.steps", "vazhi_assets.corpus.edit_steps",
                    "vazhi_assets.corpus.filters", "vazhi_assets.corpus.pipeline",
                    "vazhi_assets.corpus.normalize", "vazhi_assets.corpus.scripts",
                    "vazhi_assets.corpus.build", "vazhi_assets.corpus.quality")
LANGUAGE_NAMES = {"ur": "Urdu", "ta": "Tamil", "en": "English"}
#: Evaluated only while the opt-in ``corpus_freshness`` sensor is running: eager, except that
#: a source never crawled does not hold back a refresh after another source's re-crawl.
CORPUS_AUTOMATION = dg.AutomationCondition.eager().without(
    ~dg.AutomationCondition.any_deps_missing())


class CleaningConfig(dg.Config):
    """Run-time knobs of the cleaning steps (the checks hold their own bars)."""

    min_words: int = MIN_WORDS
    min_chars: int = MIN_CHARS
    min_purity: float | None = None
    repeated_line_share: float = 0.3
    langid_min_confidence: float = 0.5


def _clean(
    context: dg.AssetExecutionContext,
    storage: VazhiStorage,
    config: CleaningConfig,
    language: str,
    role: str,
    asset_name: str,
) -> dg.MaterializeResult:
    sources = [s for s in REGISTRY.sources if s.language == language and s.role == role]
    frames = storage.read_partitions("raw_crawl", [s.name for s in sources])
    missing = sorted({s.name for s in sources} - frames.keys())
    if missing:
        context.log.warning(f"sources not crawled yet, skipped: {missing}")
    if not frames:
        raise dg.Failure(f"no crawled pages for {LANGUAGE_NAMES[language]}; materialize raw_crawl")
    consumed = [consume(context, raw_crawl.key, partition=name, content_hash=crawl_version(frame))
                for name, frame in sorted(frames.items())]
    pages = pl.concat(list(frames.values()), how="vertical_relaxed")
    docs = build.documents_from_crawl(pages)
    patterns = {s.name: s.boilerplate_patterns for s in sources}
    steps = default_steps(
        language,
        boilerplate_patterns=patterns,
        min_words=config.min_words,
        min_chars=config.min_chars,
        min_purity=config.min_purity if config.min_purity is not None
        else PURITY_BARS[language].floor,
        repeated_line_share=config.repeated_line_share,
        langid_min_confidence=config.langid_min_confidence,
    )
    result = CleaningPipeline(steps).run(docs)
    corpus = build.corpus_frame(result.kept)
    rejects = build.reject_frame(result.dropped)
    funnel = pl.DataFrame(result.funnel()).with_columns(corpus=pl.lit(asset_name))
    path = storage.write_table(asset_name, corpus)
    storage.write_table("rejected_documents", rejects, asset_name)
    storage.write_table("cleaning_funnel", funnel, asset_name)
    by_source = (
        corpus.group_by("source")
        .agg(docs=pl.len(), words=pl.col("n_words").sum(), purity=pl.col("script_purity").mean())
        .sort("source")
    )
    reasons = rejects.group_by("step", "reason").agg(docs=pl.len()).sort("docs", descending=True)
    context.log.info(f"{asset_name}: kept {corpus.height} of {len(docs)} documents")
    content = table_version(corpus, "doc_id")
    return dg.MaterializeResult(
        metadata={
            "content_hash": content,
            **consumed_metadata(consumed),
            "dagster/row_count": corpus.height,
            "path": dg.MetadataValue.path(str(path)),
            "documents_in": len(docs),
            "documents_kept": corpus.height,
            "retention": round(corpus.height / len(docs), 4) if docs else 0.0,
            "words": int(corpus["n_words"].sum() or 0),
            "characters": int(corpus["n_chars"].sum() or 0),
            "mean_script_purity": round(float(corpus["script_purity"].mean() or 0.0), 4),
            "by_source": dg.MetadataValue.md(markdown_table(by_source)),
            "drop_reasons": dg.MetadataValue.md(markdown_table(reasons.head(20))),
            "sources": dg.MetadataValue.json(sorted(frames)),
        },
        data_version=dg.DataVersion(content),
    )


def _corpus_checks(asset_key: dg.AssetKey, language: str) -> list[dg.AssetChecksDefinition]:
    bar = PURITY_BARS[language]

    @blocking_check(asset=asset_key, name="script_purity",
                    description=f"Mean target-script share ≥ {bar.mean}, every document ≥ "
                                f"{bar.floor}.")
    def script_purity_check(storage: VazhiStorage) -> dg.AssetCheckResult:
        corpus = storage.read_table(asset_key.path[-1])
        if corpus is None or corpus.is_empty():
            return dg.AssetCheckResult(passed=False, description="corpus is empty")
        mean = float(corpus["script_purity"].mean())
        below = corpus.filter(pl.col("script_purity") < bar.floor)
        return dg.AssetCheckResult(
            passed=mean >= bar.mean and below.is_empty(),
            metadata={
                "mean_purity": round(mean, 4),
                "min_purity": round(float(corpus["script_purity"].min()), 4),
                "bar_mean": bar.mean,
                "bar_floor": bar.floor,
                "documents_below_floor": below.height,
                "examples_below_floor": dg.MetadataValue.md(
                    markdown_table(below.select("url", "script_purity").head(10))
                ),
            },
        )

    @blocking_check(asset=asset_key, name="length_limits",
                    description=f"No document under {MIN_WORDS} words or {MIN_CHARS} characters.")
    def length_limits_check(storage: VazhiStorage) -> dg.AssetCheckResult:
        corpus = storage.read_table(asset_key.path[-1])
        if corpus is None:
            return dg.AssetCheckResult(passed=False, description="corpus missing")
        short = corpus.filter((pl.col("n_words") < MIN_WORDS) | (pl.col("n_chars") < MIN_CHARS))
        return dg.AssetCheckResult(
            passed=short.is_empty(),
            metadata={
                "documents_too_short": short.height,
                "examples": dg.MetadataValue.md(
                    markdown_table(short.select("url", "n_words", "n_chars").head(10))
                ),
            },
        )

    return [script_purity_check, length_limits_check]


def cleaned_corpus(name: str, language: str, role: str = "target") -> dg.AssetsDefinition:
    """Factory: one cleaning asset per language (same steps, per-language settings)."""

    @dg.asset(
        name=name,
        deps=[raw_crawl],
        code_version=code_version(*CLEANING_MODULES, after=[raw_crawl]),
        group_name="corpus",
        automation_condition=CORPUS_AUTOMATION,
        kinds={"polars", "parquet"},
        owners=["team:data"],
        tags={"stage": "corpus", "language": language},
        description=(
            f"{LANGUAGE_NAMES[language]} documents from every '{language}' source after the "
            "named cleaning steps (boilerplate, normalisation, junk, length, language ID, "
            "script purity). Rejected documents are kept, with reasons, in rejected_documents."
        ),
    )
    def _asset(
        context: dg.AssetExecutionContext, storage: VazhiStorage, config: CleaningConfig
    ) -> dg.MaterializeResult:
        return _clean(context, storage, config, language, role, name)

    return _asset


cleaned_urdu_corpus = cleaned_corpus("cleaned_urdu_corpus", "ur")
cleaned_tamil_corpus = cleaned_corpus("cleaned_tamil_corpus", "ta")
english_replay = cleaned_corpus("english_replay", "en", role="replay")
TARGET_CORPORA = [cleaned_urdu_corpus, cleaned_tamil_corpus]

corpus_checks = [
    *_corpus_checks(cleaned_urdu_corpus.key, "ur"),
    *_corpus_checks(cleaned_tamil_corpus.key, "ta"),
    *_corpus_checks(english_replay.key, "en"),
]


class DedupConfig(dg.Config):
    """MinHash LSH settings (FineWeb-2: 5-word shingles, 14 bands x 8 rows)."""

    shingle_words: int = 5
    bands: int = 14
    rows: int = 8
    seed: int = 1


@dg.asset(
    deps=TARGET_CORPORA,
    code_version=code_version("vazhi_assets.corpus.dedup", "vazhi_assets.corpus.normalize",
                              "vazhi_assets.corpus.build", after=TARGET_CORPORA),
    group_name="corpus",
    automation_condition=CORPUS_AUTOMATION,
    kinds={"datasketch", "parquet"},
    owners=["team:data"],
    tags={"stage": "corpus"},
    description="Target-language corpora after exact dedup on normalised text and MinHash LSH "
    "near-dedup across sources (one document kept per cluster).",
)
def deduplicated_corpus(
    context: dg.AssetExecutionContext, storage: VazhiStorage, config: DedupConfig
) -> dg.MaterializeResult:
    frames, consumed = [], []
    for corpus in TARGET_CORPORA:
        frame, read = storage.read_checked(context, corpus, "doc_id")
        frames.append(frame)
        consumed.append(read)
    merged = pl.concat(frames, how="vertical_relaxed")
    docs = build.documents_from_frame(merged)
    exact = exact_dedup(docs)
    near = minhash_dedup(
        exact.kept,
        shingle_words=config.shingle_words,
        num_perm=config.bands * config.rows,
        bands=config.bands,
        rows=config.rows,
        seed=config.seed,
    )
    kept_ids = {d.doc_id for d in near.kept}
    corpus = merged.filter(pl.col("doc_id").is_in(kept_ids)).sort(["language", "source", "url"])
    clusters = build.cluster_frame(near)
    funnel = build.dedup_funnel(merged, exact, near)
    path = storage.write_table("deduplicated_corpus", corpus)
    storage.write_table("near_duplicate_clusters", clusters)
    storage.write_table("rejected_documents", build.dedup_reject_frame(exact, near),
                        "deduplicated_corpus")
    storage.write_table("dedup_funnel", funnel)
    sizes = clusters.group_by("cluster_size").agg(clusters=pl.len()).sort("cluster_size")
    content = table_version(corpus, "doc_id")
    return dg.MaterializeResult(
        data_version=dg.DataVersion(content),
        metadata={
            "content_hash": content,
            **consumed_metadata(consumed),
            "dagster/row_count": corpus.height,
            "path": dg.MetadataValue.path(str(path)),
            "documents_in": merged.height,
            "exact_duplicates_removed": merged.height - len(exact.kept),
            "near_duplicates_removed": len(exact.kept) - len(near.kept),
            "near_duplicate_clusters": clusters.height,
            "cluster_sizes": dg.MetadataValue.md(markdown_table(sizes)),
            "per_language": dg.MetadataValue.md(
                markdown_table(corpus.group_by("language").agg(docs=pl.len(),
                               words=pl.col("n_words").sum()).sort("language"))
            ),
            "lsh": f"{config.bands} bands x {config.rows} rows, {config.shingle_words}-word "
            "shingles",
        }
    )


@blocking_check(asset=deduplicated_corpus, name="no_exact_duplicates",
                description="No two documents share the same normalised text.")
def no_exact_duplicates(storage: VazhiStorage) -> dg.AssetCheckResult:
    from vazhi_assets.corpus.normalize import text_key

    corpus = storage.read_table("deduplicated_corpus")
    if corpus is None:
        return dg.AssetCheckResult(passed=False, description="corpus missing")
    keys = corpus.select(key=pl.col("text").map_elements(text_key, return_dtype=pl.String))
    duplicated = corpus.height - keys["key"].n_unique()
    return dg.AssetCheckResult(passed=duplicated == 0,
                               metadata={"duplicate_documents": duplicated})


class MixConfig(dg.Config):
    """English replay share of the pretraining mix, in words (Qalb ≈ 0.07, Alif-style ≈ 0.2)."""

    replay_ratio: float = 0.07
    seed: int = 0


@dg.asset(
    deps=[deduplicated_corpus, english_replay],
    code_version=code_version("vazhi_assets.corpus.build",
                              after=[deduplicated_corpus, english_replay]),
    group_name="corpus",
    automation_condition=CORPUS_AUTOMATION,
    kinds={"polars", "parquet"},
    owners=["team:data"],
    tags={"stage": "corpus"},
    description="Deduplicated target-language text plus a seeded sample of English replay text "
    "making up the configured share of words (guards against forgetting English).",
)
def pretraining_mix(
    context: dg.AssetExecutionContext, storage: VazhiStorage, config: MixConfig
) -> dg.MaterializeResult:
    target, read_target = storage.read_checked(context, deduplicated_corpus, "doc_id")
    replay, read_replay = storage.read_checked(context, english_replay, "doc_id")
    mix, summary = build.replay_mix(target, replay, config.replay_ratio, config.seed)
    if summary.achieved_ratio < 0.8 * config.replay_ratio:
        context.log.warning(
            f"not enough English replay text: achieved {summary.achieved_ratio:.3f} "
            f"of requested {config.replay_ratio:.3f}"
        )
    path = storage.write_table("pretraining_mix", mix)
    composition = (
        mix.group_by("role", "language").agg(docs=pl.len(), words=pl.col("n_words").sum())
        .sort("role", "language")
    )
    content = table_version(mix, "doc_id")
    return dg.MaterializeResult(
        data_version=dg.DataVersion(content),
        metadata={
            "content_hash": content,
            **consumed_metadata([read_target, read_replay]),
            "dagster/row_count": mix.height,
            "path": dg.MetadataValue.path(str(path)),
            "replay_ratio_requested": config.replay_ratio,
            "replay_ratio_achieved": round(summary.achieved_ratio, 4),
            "target_words": summary.target_words,
            "replay_words": summary.replay_words,
            "composition": dg.MetadataValue.md(markdown_table(composition)),
        }
    )


@dg.asset(
    deps=[raw_crawl, *TARGET_CORPORA, english_replay, deduplicated_corpus],
    code_version=code_version("vazhi_assets.corpus.report",
                              after=[*TARGET_CORPORA, english_replay, deduplicated_corpus]),
    group_name="corpus",
    automation_condition=CORPUS_AUTOMATION,
    kinds={"duckdb", "matplotlib"},
    owners=["team:data"],
    tags={"stage": "corpus"},
    description="Retention funnel per source and step (crawl → cleaning steps → dedup) as a "
    "table, a chart and the DuckDB table cleaning_report, beside Qalb's 67.8%.",
)
def cleaning_report(
    context: dg.AssetExecutionContext, storage: VazhiStorage
) -> dg.MaterializeResult:
    crawls = storage.read_partitions("raw_crawl", REGISTRY.names)
    pages = pl.concat(list(crawls.values()), how="vertical_relaxed")
    # a report shows what happened even when a check failed: lineage without the gate
    consumed = [consume(context, raw_crawl.key, partition=name, content_hash=crawl_version(f),
                        checks=[]) for name, f in sorted(crawls.items())]
    parts = [report.crawl_funnel(pages)]
    for name in ("cleaned_urdu_corpus", "cleaned_tamil_corpus", "english_replay"):
        part = storage.read_table("cleaning_funnel", name)
        if part is not None:
            parts.append(part.select(report.FUNNEL_COLUMNS))
    dedup = storage.read_table("dedup_funnel")
    if dedup is not None:
        parts.append(dedup)
    funnel = report.assemble_funnel(parts)
    retention = report.retention_by_source(funnel)
    storage.write_table("cleaning_report", funnel)
    storage.catalog.replace_table("retention_by_source", retention)
    finals = [storage.read_table(n) for n in ("deduplicated_corpus", "english_replay")]
    consumed += [consume(context, name, content_hash=table_version(frame, "doc_id"), checks=[])
                 for name, frame in zip(("deduplicated_corpus", "english_replay"), finals,
                                        strict=True) if frame is not None]
    content = table_version(funnel, ["source", "step"])
    volume = report.volume_retention(
        pages, pl.concat([f.select("source", "text") for f in finals if f is not None]))
    storage.catalog.replace_table("volume_retention", volume)
    target_volume = volume.filter(pl.col("source").is_in(
        [s.name for s in REGISTRY.sources if s.role == "target"]))
    overall = retention.filter(pl.col("source").is_in(
        [s.name for s in REGISTRY.sources if s.role == "target"]))
    total_retention = float(overall["kept"].sum() / max(1, overall["fetched"].sum()))
    return dg.MaterializeResult(
        data_version=dg.DataVersion(content),
        metadata={
            "content_hash": content,
            **consumed_metadata(consumed),
            "dagster/row_count": funnel.height,
            "target_retention": round(total_retention, 4),
            "qalb_retention": 0.678,
            "target_volume_retention": round(
                float(target_volume["kept_chars"].sum() / max(1, target_volume["raw_chars"].sum())),
                4),
            "volume_retention": dg.MetadataValue.md(markdown_table(volume)),
            "retention_by_source": dg.MetadataValue.md(markdown_table(retention)),
            "funnel": dg.MetadataValue.md(markdown_table(report.wide_funnel(funnel))),
            "funnel_chart": dg.MetadataValue.md(report.funnel_chart(funnel)),
        }
    )


@dg.asset_check(asset=cleaning_report, name="retention_within_bounds", blocking=False,
                description="Each source's retention lies within its registry's expected bounds.")
def retention_within_bounds(storage: VazhiStorage) -> dg.AssetCheckResult:
    funnel = storage.read_table("cleaning_report")
    if funnel is None:
        return dg.AssetCheckResult(passed=False, description="report missing")
    retention = report.retention_by_source(funnel)
    outside = []
    for row in retention.iter_rows(named=True):
        low, high = REGISTRY.get(row["source"]).expected_retention
        if row["retention"] is None or not low <= row["retention"] <= high:
            outside.append(f"{row['source']}: {row['retention']} not in [{low}, {high}]")
    return dg.AssetCheckResult(
        passed=not outside,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"outside_bounds": dg.MetadataValue.json(outside)},
    )


corpus_freshness = dg.AutomationConditionSensorDefinition(
    "corpus_freshness",
    target=dg.AssetSelection.groups("corpus"),
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Opt-in: turn it on to re-clean, re-deduplicate and re-mix the corpus whenever "
    "a raw_crawl partition is materialized (a re-crawl or a new source's backfill). Training "
    "stays manual or on the feedback sensor.",
)
