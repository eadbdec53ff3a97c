"""The corpus half materialized in process against the demo site, with the real browser."""

from __future__ import annotations

import dagster as dg
import polars as pl
import pytest

from vazhi_assets.corpus.normalize import normalize_unicode, normalize_whitespace
from vazhi_assets.demo.site_manifest import SiteManifest
from vazhi_assets.storage import Catalog
from vazhi_assets_tests.conftest import Materialized, copy_crawl, seed_crawl

CORPUS_OF = {"ur": "cleaned_urdu_corpus", "ta": "cleaned_tamil_corpus", "en": "english_replay"}
SOURCE_OF = {"urdu-news": "urdu_news", "urdu-blog": "urdu_blog", "tamil-news": "tamil_news",
             "tamil-udhr": "tamil_udhr", "english-docs": "english_docs"}


def table(run: Materialized, name: str, partition: str | None = None) -> pl.DataFrame:
    frame = run.resources["storage"].read_table(name, partition)
    assert frame is not None, name
    return frame


def manifest(run: Materialized) -> SiteManifest:
    return SiteManifest.load(run.data_dir / "demo_site")


def checks_of(result: dg.ExecuteInProcessResult) -> dict[str, bool]:
    return {f"{e.asset_key.to_user_string()}:{e.check_name}": e.passed
            for e in result.get_asset_check_evaluations()}


def test_every_run_succeeds_and_blocking_checks_pass(corpus_run: Materialized) -> None:
    assert all(r.success for r in corpus_run.crawl_results.values())
    assert corpus_run.downstream.success
    checks = checks_of(corpus_run.downstream)
    blocking = {k: v for k, v in checks.items() if "retention_within_bounds" not in k}
    assert len(blocking) == 7 and all(blocking.values()), checks


def test_bad_pages_are_recorded_with_their_error(corpus_run: Materialized) -> None:
    pages = table(corpus_run, "raw_crawl", "urdu_news")
    by_path = {row["url"].removeprefix("{demo_site}/"): row
               for row in pages.iter_rows(named=True)}
    expected = {
        "bad/missing": "HTTP 404", "urdu-news/archive/2019/deleted-story.html": "HTTP 404",
        "bad/slow": "Timeout", "urdu-news/live/taza-tareen.html": "Timeout",
        "bad/binary": "application/pdf", "bad/plain-nocharset": "without a charset",
        "bad/huge": "too large", "bad/empty": "", "private/x": "robots.txt",
    }
    for path, needle in expected.items():
        row = by_path[path]
        assert not row["ok"] and row["error"] and needle in row["error"], (path, row["error"])
        assert row["markdown_fit"] is None and row["html_path"] is None
    legacy = next(p for s in manifest(corpus_run).sections for p in s.pages
                  if p.encoding != "utf-8")
    row = by_path[legacy.path.lstrip("/")]
    assert row["ok"] and legacy.text.split("\n")[0][:40] in row["markdown_raw"]


def test_cleaned_corpora_hold_no_boilerplate(corpus_run: Materialized) -> None:
    site = manifest(corpus_run)
    for section in site.sections:
        corpus = table(corpus_run, CORPUS_OF[section.language])
        texts = corpus.filter(pl.col("source") == SOURCE_OF[section.name])["text"].to_list()
        assert texts, section.name
        leaked = {b for b in section.boilerplate_strings for t in texts if b in t}
        assert not leaked, (section.name, sorted(leaked)[:5])


def test_english_pages_never_reach_the_urdu_corpus(corpus_run: Materialized) -> None:
    section = manifest(corpus_run).section("urdu-news")
    urdu = table(corpus_run, "cleaned_urdu_corpus")
    rejected = table(corpus_run, "rejected_documents", "cleaned_urdu_corpus")
    for path in section.english_only_paths:
        assert not urdu.filter(pl.col("url").str.ends_with(path)).height
        reasons = rejected.filter(pl.col("url").str.ends_with(path))["reason"].to_list()
        assert reasons and reasons[0].startswith("lang_mismatch:en"), (path, reasons)


def test_cross_posted_article_survives_once(corpus_run: Materialized) -> None:
    site = manifest(corpus_run)
    dedup = table(corpus_run, "deduplicated_corpus")
    checked = 0
    for cross in site.cross_posts:
        page = site.page(cross.original)
        # the corpus holds normalised text (NFC, Urdu letter forms): compare like with like
        first = normalize_whitespace(normalize_unicode(page.text.split("\n")[0],
                                                       page.language))[:60]
        copies = dedup.filter(pl.col("text").str.contains(first, literal=True))
        pages = pl.concat(corpus_run.resources["storage"].read_partitions(
            "raw_crawl", list(SOURCE_OF.values())).values())
        crawled = pages.filter(pl.col("ok") & (pl.col("url").str.ends_with(cross.original)
                                               | pl.col("url").str.ends_with(cross.copy)))
        if crawled.height == 2:
            assert copies.height == 1, cross
            checked += 1
    assert checked >= 1


def test_near_duplicates_found_across_sources(corpus_run: Materialized) -> None:
    clusters = table(corpus_run, "near_duplicate_clusters")
    dedup = table(corpus_run, "deduplicated_corpus")
    assert clusters.height >= 5
    cleaned = pl.concat([table(corpus_run, "cleaned_urdu_corpus"),
                         table(corpus_run, "cleaned_tamil_corpus")])
    source_of = dict(zip(cleaned["doc_id"], cleaned["source"], strict=True))
    cross_source = [m for m in clusters["members"].to_list()
                    if len({source_of[d] for d in m}) > 1]
    assert cross_source, "urd vs urd_2 spellings should cluster across urdu_news/urdu_blog"
    kept = set(dedup["doc_id"])
    for row in clusters.iter_rows(named=True):
        assert len(kept & set(row["members"])) == 1


def test_mix_report_and_catalog(corpus_run: Materialized) -> None:
    mix = table(corpus_run, "pretraining_mix")
    words = mix.group_by("role").agg(pl.col("n_words").sum())
    share = dict(zip(words["role"], words["n_words"], strict=True))
    assert abs(share["replay"] / (share["replay"] + share["target"]) - 0.07) < 0.02
    catalog = Catalog(corpus_run.data_dir / "catalog.duckdb")
    retention = catalog.query("select * from retention_by_source order by source")
    assert set(retention["source"]) == set(SOURCE_OF.values())
    assert catalog.query("select count(*) as n from deduplicated_corpus")["n"][0] > 100
    funnel = table(corpus_run, "cleaning_report")
    for (source,), part in funnel.filter(pl.col("order") >= 0).group_by("source"):
        ordered = part.sort("order")
        assert (ordered["seen"] == ordered["kept"] + ordered["dropped"]).all(), source


def test_corpus_loads_with_datasets(corpus_run: Materialized) -> None:
    from datasets import load_dataset

    path = corpus_run.resources["storage"].table_path("deduplicated_corpus")
    dataset = load_dataset("parquet", data_files=str(path), split="train")
    assert dataset.num_rows == table(corpus_run, "deduplicated_corpus").height
    assert {"text", "language", "source", "script_purity"} <= set(dataset.column_names)


def test_recrawl_skips_unchanged_pages(corpus_run: Materialized) -> None:
    from vazhi_assets.crawl.assets import raw_crawl

    before = table(corpus_run, "raw_crawl", "urdu_blog")
    result = dg.materialize([raw_crawl], partition_key="urdu_blog",
                            instance=corpus_run.instance, resources=corpus_run.resources)
    metadata = result.asset_materializations_for_node("raw_crawl")[0].metadata
    after = table(corpus_run, "raw_crawl", "urdu_blog")
    ok = before.filter(pl.col("ok")).height
    assert metadata["unchanged_pages"].value == ok and metadata["new_pages"].value == 0
    joined = before.join(after, on="url", suffix="_after")
    assert (joined["fetched_at"] == joined["fetched_at_after"]).all()
    assert (joined["times_seen_after"] == joined["times_seen"] + 1).filter(joined["ok"]).all()


def test_failing_blocking_check_stops_downstream(corpus_run: Materialized, tmp_path) -> None:
    """Loosened filters let short pages through; the length check fails and blocks dedup,
    in that run and in any later run that would read the bad table."""
    from vazhi_assets.corpus.assets import cleaned_urdu_corpus, deduplicated_corpus
    from vazhi_assets.definitions import ALL_ASSETS, ALL_CHECKS
    from vazhi_assets.resources import VazhiStorage

    copy_crawl(corpus_run.data_dir, tmp_path)
    resources = {**corpus_run.resources, "storage": VazhiStorage(root=str(tmp_path))}
    instance = dg.DagsterInstance.ephemeral()
    seed_crawl(instance, tmp_path)
    selection = dg.AssetSelection.assets("cleaned_urdu_corpus", "cleaned_tamil_corpus",
                                         "deduplicated_corpus")
    loose = {"ops": {"cleaned_urdu_corpus": {"config": {"min_words": 1, "min_chars": 1}}}}
    result = dg.materialize([*ALL_ASSETS, *ALL_CHECKS], selection=selection,
                            instance=instance, resources=resources, run_config=loose,
                            raise_on_error=False)
    checks = checks_of(result)
    assert checks["cleaned_urdu_corpus:length_limits"] is False
    materialized = {e.asset_key for e in result.get_asset_materialization_events()}
    assert cleaned_urdu_corpus.key in materialized
    assert deduplicated_corpus.key not in materialized
    skipped = [e for e in result.all_events if e.step_key == "deduplicated_corpus"]
    assert not any(e.is_step_success for e in skipped)

    later = dg.materialize([*ALL_ASSETS, *ALL_CHECKS],
                           selection=dg.AssetSelection.assets(deduplicated_corpus),
                           instance=instance, resources=resources, raise_on_error=False)
    assert not later.success
    failure = next(e for e in later.all_events if e.is_step_failure)
    assert "length_limits on cleaned_urdu_corpus: FAILED" in str(
        failure.event_specific_data.error)
    assert VazhiStorage(root=str(tmp_path)).read_table("deduplicated_corpus") is None


@pytest.mark.parametrize("source", ["urdu_news", "tamil_news", "english_docs"])
def test_crawl_metadata_reports_throughput(corpus_run: Materialized, source: str) -> None:
    metadata = corpus_run.crawl_results[source].asset_materializations_for_node(
        "raw_crawl")[0].metadata
    assert metadata["pages_ok"].value > 20
    assert metadata["pages_per_second"].value > 0.5
