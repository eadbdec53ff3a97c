"""Egress guard, registry validation and the no-data-loss merge of re-crawls."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from vazhi_assets.crawl.browser import host_resolver_rules
from vazhi_assets.crawl.crawler import RAW_CRAWL_SCHEMA, merge_with_previous
from vazhi_assets.crawl.guard import UrlGuard, UrlRefused
from vazhi_assets.crawl.registry import load_registry


def test_guard_refuses_hosts_outside_allow_list() -> None:
    guard = UrlGuard(("93.184.215.14", "example.org"))
    guard.check("https://93.184.215.14/a")
    with pytest.raises(UrlRefused, match="allow-list"):
        guard.check("https://evil.test/a")
    with pytest.raises(UrlRefused, match="cannot resolve"):  # fails closed without DNS
        guard.check("https://news.example.invalid.example.org/a")
    with pytest.raises(UrlRefused, match="scheme"):
        guard.check("file:///etc/passwd")


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1/x", "http://10.1.2.3/", "http://169.254.169.254/latest",
            "http://[::1]/", "http://192.168.0.4/"]
)
def test_guard_refuses_private_and_link_local_unless_allowed(url: str) -> None:
    host = url.split("/")[2].strip("[]")
    with pytest.raises(UrlRefused, match="non-public"):
        UrlGuard((host,)).check(url)
    UrlGuard((host,), allow_private=True).check(url)


def test_guard_limits_paths() -> None:
    guard = UrlGuard(("127.0.0.1",), ("/urdu-news/", "/bad/"), allow_private=True)
    assert guard.allows("http://127.0.0.1:8765/urdu-news/a.html")
    assert not guard.allows("http://127.0.0.1:8765/tamil-news/a.html")


def test_resolver_rules_exclude_only_allowed_hosts() -> None:
    assert host_resolver_rules(["127.0.0.1"]) == "MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"


def test_registry_defaults_and_errors(tmp_path: Path) -> None:
    registry = load_registry()
    assert {"urdu_news", "tamil_news", "english_docs"} <= set(registry.names)
    for source in registry.sources:
        assert source.policy.max_pages >= 1
    bad = tmp_path / "bad.yaml"
    bad.write_text("sources:\n  - name: x\n    language: ur\n    seeds: [http://a.b/]\n"
                   "    allowed_hosts: [a.b]\n    max_pagez: 3\n")
    with pytest.raises(ValueError, match="max_pagez"):
        load_registry(bad)


def _row(url: str, ok: bool, content_hash: str | None, error: str | None = None) -> dict:
    now = datetime.now(UTC)
    row = dict.fromkeys(RAW_CRAWL_SCHEMA)
    row.update(source="s", language="ur", url=url, final_url=url, depth=0, ok=ok,
               status=200 if ok else None, fetched_at=now, content_hash=content_hash,
               markdown_fit="text " + (content_hash or ""), error=error, last_attempt_at=now,
               last_attempt_error=error, times_seen=1, html_bytes=10)
    return row


def _frame(rows: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=RAW_CRAWL_SCHEMA)


def test_merge_keeps_good_pages_when_a_recrawl_fails() -> None:
    previous = _frame([_row("u1", True, "h1"), _row("u2", True, "h2"), _row("u3", True, "h3")])
    fresh = _frame([_row("u1", True, "h1"), _row("u2", False, None, "timeout"),
                    _row("u4", True, "h4")])
    merged, stats = merge_with_previous(fresh, previous)
    by_url = {r["url"]: r for r in merged.iter_rows(named=True)}
    assert set(by_url) == {"u1", "u2", "u3", "u4"}
    assert by_url["u2"]["ok"] and by_url["u2"]["markdown_fit"] == "text h2"
    assert by_url["u2"]["last_attempt_error"] == "timeout"
    assert by_url["u1"]["times_seen"] == 2
    assert (stats.unchanged, stats.failed_kept_previous, stats.new, stats.carried_over) == (
        1, 1, 1, 1)


def test_merge_replaces_changed_pages() -> None:
    previous = _frame([_row("u1", True, "h1")])
    merged, stats = merge_with_previous(_frame([_row("u1", True, "h9")]), previous)
    assert merged["content_hash"].to_list() == ["h9"] and stats.changed == 1
