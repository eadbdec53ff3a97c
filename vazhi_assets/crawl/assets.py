"""``raw_crawl``: one partition per registry source."""


import dagster as dg
import polars as pl

from vazhi_assets.crawl.crawler import crawl_source, merge_with_previous
from vazhi_assets.crawl.registry import load_registry
from vazhi_assets.identity import code_version, table_version
from vazhi_assets.metadata import markdown_table
from vazhi_assets.resources import DemoSite, VazhiStorage

REGISTRY = load_registry()
source_partitions = dg.StaticPartitionsDefinition(REGISTRY.names)
#: What cleaning reads of a crawl: fetch times and attempt counts are not part of it, so a
#: re-crawl that found the same pages leaves the corpus fresh.
CRAWL_CONTENT = ["url", "ok", "content_hash", "title", "markdown_fit", "markdown_raw"]


def crawl_version(pages: pl.DataFrame) -> str:
    """Content identity of one source's crawl: its pages and their content hashes."""
    return table_version(pages.select(CRAWL_CONTENT), "url")


@dg.asset(
    partitions_def=source_partitions,
    code_version=code_version("vazhi_assets.crawl.crawler", "vazhi_assets.crawl.browser",
                              "vazhi_assets.crawl.guard"),
    group_name="crawl",
    kinds={"crawl4ai", "chromium", "parquet"},
    owners=["team:data"],
    tags={"stage": "crawl"},
    description=(
        "Pages fetched from one registry source with crawl4ai in headless chromium: one row per "
        "attempted page (failures keep their error); unchanged pages keep their first fetch."
    ),
)
def raw_crawl(
    context: dg.AssetExecutionContext, storage: VazhiStorage, demo_site: DemoSite
) -> dg.MaterializeResult:
    source = REGISTRY.get(context.partition_key)
    previous = storage.read_table("raw_crawl", source.name)

    def crawl(site_url: str | None) -> tuple[pl.DataFrame, object]:
        return crawl_source(
            source,
            html_dir=storage.html_dir / source.name,
            state_dir=storage.crawler_state_dir,
            demo_site_url=site_url,
            progress=context.log.info,
        )

    if source.uses_demo_site:
        with demo_site.serve() as site_url:
            fresh, stats = crawl(site_url)
    else:
        fresh, stats = crawl(None)
    merged, merge = merge_with_previous(fresh, previous)
    path = storage.write_table("raw_crawl", merged, source.name)
    failures = fresh.filter(~pl.col("ok")).select("url", "status", "error")
    context.log.info(f"{source.name}: {stats.ok} ok, {stats.failed} failed, "
                     f"{stats.pages_per_second:.2f} pages/s")
    content = crawl_version(merged)
    return dg.MaterializeResult(
        data_version=dg.DataVersion(content),
        metadata={
            "content_hash": content,
            "dagster/row_count": merged.height,
            "path": dg.MetadataValue.path(str(path)),
            "language": source.language,
            "pages_attempted": stats.attempted,
            "pages_ok": stats.ok,
            "pages_failed": stats.failed,
            "pages_per_second": round(stats.pages_per_second, 2),
            "crawl_seconds": round(stats.seconds, 1),
            "errors": dg.MetadataValue.json(dict(stats.errors)),
            "refused_links": dg.MetadataValue.json(dict(stats.refused_links)),
            "new_pages": merge.new,
            "changed_pages": merge.changed,
            "unchanged_pages": merge.unchanged,
            "failed_kept_previous": merge.failed_kept_previous,
            "carried_over": merge.carried_over,
            "failed_pages": dg.MetadataValue.md(markdown_table(failures.head(20))),
        }
    )

