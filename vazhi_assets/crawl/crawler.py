"""Crawl one source with crawl4ai: a breadth-first frontier behind the egress guard.

crawl4ai renders each page in chromium, applies its pruning content filter (``markdown_fit``),
checks robots.txt and paces requests; this module decides which URLs to visit, refuses what the
source does not allow and turns every attempt, failed or not, into a row.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urldefrag

import polars as pl

from vazhi_assets.crawl.browser import ChromiumProcess
from vazhi_assets.crawl.guard import UrlGuard, UrlRefused
from vazhi_assets.crawl.registry import DEMO_SITE_PLACEHOLDER, Source
from vazhi_assets.storage import atomic_write_bytes

log = logging.getLogger(__name__)

RAW_CRAWL_SCHEMA: dict[str, pl.DataType] = {
    "source": pl.String(),
    "language": pl.String(),
    "url": pl.String(),
    "final_url": pl.String(),
    "depth": pl.Int32(),
    "status": pl.Int32(),
    "ok": pl.Boolean(),
    "fetched_at": pl.Datetime("us", "UTC"),
    "content_type": pl.String(),
    "content_hash": pl.String(),
    "html_bytes": pl.Int64(),
    "title": pl.String(),
    "markdown_raw": pl.String(),
    "markdown_fit": pl.String(),
    "html_path": pl.String(),
    "error": pl.String(),
    "last_attempt_at": pl.Datetime("us", "UTC"),
    "last_attempt_error": pl.String(),
    "times_seen": pl.Int32(),
}

MAX_PAGE_BYTES = 4_000_000


@dataclass
class CrawlStats:
    """What one crawl of one source did."""

    attempted: int = 0
    ok: int = 0
    failed: int = 0
    refused_links: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    @property
    def pages_per_second(self) -> float:
        return self.attempted / self.seconds if self.seconds else 0.0


def _setup_crawl4ai_env(state_dir: Path) -> None:
    os.environ.setdefault("CRAWL4_AI_BASE_DIRECTORY", str(state_dir))
    os.environ.setdefault("CRAWL4AI_NO_CLOUD_NOTICE", "1")
    state_dir.mkdir(parents=True, exist_ok=True)


def _error_kind(message: str | None, status: int | None) -> str:
    text = (message or "").lower()
    if "robots" in text:
        return "robots_disallowed"
    if status and status >= 400:
        return f"http_{status}"
    for needle, kind in (
        ("timeout", "timeout"),
        ("content type", "not_html"),
        ("too large", "too_large"),
        ("empty", "empty"),
        ("anti-bot", "antibot_flagged"),
    ):
        if needle in text:
            return kind
    return "fetch_failed"


TRANSIENT_ERRORS = ("has been closed", "Target closed", "net::ERR_ABORTED")
HTML_TYPES = ("text/html", "application/xhtml+xml")


def _short_error(message: str | None) -> str | None:
    """The informative line of a crawl4ai error (it appends code context and call logs)."""
    if not message:
        return None
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    for line in lines:
        if line.startswith(("Page.goto:", "net::")):
            return line[:300]
    return lines[0][:300] if lines else None


def _content_type_problem(content_type: str | None) -> str | None:
    """Why a response is not usable text, judged from its Content-Type header."""
    if not content_type:
        return None
    mime = content_type.split(";")[0].strip().lower()
    if mime in HTML_TYPES:
        return None
    if mime == "text/plain":
        if "charset=" in content_type.lower():
            return None
        return "unsupported content type: text/plain without a charset (encoding unknown)"
    return f"unsupported content type: {mime}"


def _page_row(source: Source, url: str, depth: int, result: object, html_dir: Path) -> dict:
    """One ``raw_crawl`` row from a crawl4ai ``CrawlResult``; failures keep their error."""
    now = datetime.now(UTC)
    html: str = getattr(result, "html", "") or ""
    status = getattr(result, "status_code", None)
    headers = getattr(result, "response_headers", None) or {}
    content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), None)
    error = _short_error(getattr(result, "error_message", None))
    success = bool(getattr(result, "success", False))
    type_problem = _content_type_problem(content_type)
    if type_problem:
        error, success = type_problem, False
    markdown = getattr(result, "markdown", None)
    raw_md = getattr(markdown, "raw_markdown", None) if markdown is not None else None
    fit_md = getattr(markdown, "fit_markdown", None) if markdown is not None else None
    encoded = html.encode("utf-8")
    if len(encoded) > MAX_PAGE_BYTES:
        error = f"page too large: {len(encoded):,} bytes > {MAX_PAGE_BYTES:,}"
        raw_md = fit_md = None
        success = False
    ok = success and status == 200 and bool(encoded.strip()) and not error
    if status and status != 200:
        error = f"HTTP {status}" + (f" ({error})" if error else "")
    if not ok and not error:
        error = "empty page" if not encoded.strip() else "rejected by crawler (success=False)"
    content_hash = hashlib.sha256(encoded).hexdigest() if encoded else None
    html_path = None
    if ok and content_hash:
        path = html_dir / content_hash[:2] / f"{content_hash}.html"
        if not path.exists():
            atomic_write_bytes(path, encoded)
        html_path = str(path)
    metadata = getattr(result, "metadata", None) or {}
    return {
        "source": source.name,
        "language": source.language,
        "url": url,
        "final_url": getattr(result, "redirected_url", None) or url,
        "depth": depth,
        "status": status,
        "ok": ok,
        "fetched_at": now,
        "content_type": content_type,
        "content_hash": content_hash if ok else None,
        "html_bytes": len(encoded),
        "title": metadata.get("title"),
        "markdown_raw": raw_md if ok else None,
        "markdown_fit": fit_md if ok else None,
        "html_path": html_path,
        "error": None if ok else error,
        "last_attempt_at": now,
        "last_attempt_error": None if ok else error,
        "times_seen": 1,
    }


def _links(result: object) -> list[str]:
    links = getattr(result, "links", None) or {}
    hrefs = [link.get("href") for kind in ("internal", "external") for link in links.get(kind, [])]
    return [urldefrag(h)[0] for h in hrefs if h]


async def _crawl(
    source: Source,
    seeds: list[str],
    cdp_url: str,
    html_dir: Path,
    progress: Callable[[str], None],
) -> tuple[list[dict], CrawlStats]:
    from crawl4ai import AsyncWebCrawler, BrowserConfig, CacheMode, CrawlerRunConfig
    from crawl4ai.async_dispatcher import RateLimiter, SemaphoreDispatcher
    from crawl4ai.content_filter_strategy_lxml import PruningContentFilterLXML
    from crawl4ai.markdown_generation_strategy import DefaultMarkdownGenerator

    policy = source.policy
    guard = UrlGuard(tuple(source.allowed_hosts), tuple(source.include_paths), source.allow_private)
    run_config = CrawlerRunConfig(
        cache_mode=CacheMode.BYPASS,
        markdown_generator=DefaultMarkdownGenerator(content_filter=PruningContentFilterLXML()),
        page_timeout=int(policy.page_timeout_s * 1000),
        check_robots_txt=policy.respect_robots,
        verbose=False,
    )
    delay = policy.politeness_delay_s
    stats = CrawlStats()
    rows: list[dict] = []
    seen: set[str] = set()
    frontier: list[tuple[str, int]] = []
    for seed in seeds:
        url = urldefrag(seed)[0]
        try:
            guard.check(url)
        except UrlRefused as exc:
            stats.refused_links[str(exc).split(":")[0]] += 1
            raise
        frontier.append((url, 0))
        seen.add(url)

    started = time.monotonic()
    browser = BrowserConfig(browser_mode="cdp", cdp_url=cdp_url, headless=True, verbose=False)
    async with AsyncWebCrawler(config=browser) as crawler:
        while frontier and stats.attempted < policy.max_pages:
            room = policy.max_pages - stats.attempted
            batch, frontier = frontier[:room], frontier[room:]
            dispatcher = SemaphoreDispatcher(
                semaphore_count=policy.concurrency,
                rate_limiter=RateLimiter(base_delay=(delay, delay * 1.5 + 1e-3), max_retries=1),
            )
            results = await crawler.arun_many(
                [u for u, _ in batch], config=run_config, dispatcher=dispatcher
            )
            by_url = {getattr(r, "url", None): r for r in results}
            for url in [u for u, r in by_url.items() if _is_transient(r)]:
                by_url[url] = await crawler.arun(url, config=run_config)
            for url, depth in batch:
                result = by_url.get(url)
                if result is None:
                    row = _missing_row(source, url, depth)
                else:
                    row = _page_row(source, url, depth, result, html_dir)
                rows.append(row)
                stats.attempted += 1
                if row["ok"]:
                    stats.ok += 1
                else:
                    stats.failed += 1
                    stats.errors[_error_kind(row["error"], row["status"])] += 1
                if result is None or depth >= policy.max_depth:
                    continue
                for link in _links(result):
                    if link in seen:
                        continue
                    seen.add(link)
                    try:
                        guard.check(link)
                    except UrlRefused as exc:
                        stats.refused_links[_refusal_kind(str(exc))] += 1
                        continue
                    frontier.append((link, depth + 1))
            progress(
                f"{source.name}: {stats.attempted}/{policy.max_pages} pages "
                f"({stats.ok} ok, {stats.failed} failed, {len(frontier)} queued)"
            )
    stats.seconds = time.monotonic() - started
    return rows, stats


def _is_transient(result: object) -> bool:
    message = getattr(result, "error_message", None) or ""
    return not getattr(result, "success", False) and any(t in message for t in TRANSIENT_ERRORS)


def _refusal_kind(message: str) -> str:
    for kind in ("scheme", "host", "path", "resolves", "cannot resolve"):
        if message.startswith(kind) or f" {kind} " in message[:40]:
            return kind.replace(" ", "_")
    return "other"


def _missing_row(source: Source, url: str, depth: int) -> dict:
    now = datetime.now(UTC)
    row = dict.fromkeys(RAW_CRAWL_SCHEMA)
    row.update(
        source=source.name, language=source.language, url=url, final_url=url, depth=depth,
        ok=False, fetched_at=now, html_bytes=0, error="crawler returned no result",
        last_attempt_at=now, last_attempt_error="crawler returned no result", times_seen=1,
    )
    return row


def _reset_loop_bound_state() -> None:
    """Drop crawl4ai's process-wide page lock, which binds to the first event loop using it.

    Without this a second crawl in the same process (another partition run in-process, a test)
    fails every page with "... is bound to a different event loop".
    """
    from crawl4ai.browser_manager import BrowserManager

    BrowserManager._global_pages_lock = None
    BrowserManager._global_pages_in_use.clear()


def crawl_source(
    source: Source,
    *,
    html_dir: Path,
    state_dir: Path,
    demo_site_url: str | None = None,
    progress: Callable[[str], None] = log.info,
) -> tuple[pl.DataFrame, CrawlStats]:
    """Crawl ``source`` in a fresh chromium; one row per attempted page, failures included."""
    _setup_crawl4ai_env(state_dir)
    _reset_loop_bound_state()
    seeds = source.resolve_seeds(demo_site_url)
    with ChromiumProcess(source.allowed_hosts) as chromium:
        rows, stats = asyncio.run(_crawl(source, seeds, chromium.cdp_url, html_dir, progress))
    frame = pl.DataFrame(rows, schema=RAW_CRAWL_SCHEMA)
    return canonical_demo_urls(frame, demo_site_url) if demo_site_url else frame, stats


def canonical_demo_urls(frame: pl.DataFrame, demo_site_url: str) -> pl.DataFrame:
    """Store demo-site pages under ``{demo_site}/path``, not under the port this run's server
    happened to get: document ids and re-crawl matching stay the same from run to run, and
    parallel runs can each serve the site on a free port."""
    origin = demo_site_url.rstrip("/")
    return frame.with_columns(
        pl.col(c).str.replace(origin, DEMO_SITE_PLACEHOLDER, literal=True, n=1)
        for c in ("url", "final_url"))


@dataclass
class MergeStats:
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    failed_kept_previous: int = 0
    failed_new: int = 0
    carried_over: int = 0


def merge_with_previous(
    fresh: pl.DataFrame, previous: pl.DataFrame | None
) -> tuple[pl.DataFrame, MergeStats]:
    """Fold a new crawl into the stored one without losing good pages.

    - unchanged pages (same content hash) keep their original row (``fetched_at`` stays), with
      the new attempt time;
    - a page that fails now but was fetched fine before keeps its good content and records the
      new error in ``last_attempt_error``;
    - pages not reached this time are carried over unchanged.
    """
    stats = MergeStats()
    if previous is None or previous.is_empty():
        stats.new = fresh.filter(pl.col("ok")).height
        stats.failed_new = fresh.height - stats.new
        return fresh.select(RAW_CRAWL_SCHEMA.keys()), stats
    old_by_url = {row["url"]: row for row in previous.iter_rows(named=True)}
    merged: list[dict] = []
    for row in fresh.iter_rows(named=True):
        old = old_by_url.pop(row["url"], None)
        if old is None:
            merged.append(row)
            if row["ok"]:
                stats.new += 1
            else:
                stats.failed_new += 1
            continue
        seen = (old["times_seen"] or 0) + 1
        if row["ok"] and old["ok"] and row["content_hash"] == old["content_hash"]:
            merged.append({**old, "last_attempt_at": row["last_attempt_at"],
                           "last_attempt_error": None, "times_seen": seen})
            stats.unchanged += 1
        elif not row["ok"] and old["ok"]:
            merged.append({**old, "last_attempt_at": row["last_attempt_at"],
                           "last_attempt_error": row["error"], "times_seen": seen})
            stats.failed_kept_previous += 1
        else:
            merged.append({**row, "times_seen": seen})
            if row["ok"]:
                stats.changed += 1
            else:
                stats.failed_new += 1
    merged.extend(old_by_url.values())
    stats.carried_over = len(old_by_url)
    frame = pl.DataFrame(merged, schema=RAW_CRAWL_SCHEMA).sort("url")
    return frame, stats
