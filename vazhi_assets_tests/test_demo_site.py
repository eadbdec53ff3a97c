"""The bundled demo news site: build (ground truth, determinism) and server behaviour."""

from __future__ import annotations

import html
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from vazhi_assets.demo.site_build import build_demo_site
from vazhi_assets.demo.site_manifest import SiteManifest
from vazhi_assets.demo.site_server import DemoSiteServer, main

NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))




@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SiteManifest]:
    root = tmp_path_factory.mktemp("site") / "demo_site"
    return root, build_demo_site(root)


@pytest.fixture(scope="module")
def server(site: tuple[Path, SiteManifest]) -> Iterator[DemoSiteServer]:
    with DemoSiteServer(site[0], slow_seconds=0.3) as running:
        yield running


def fetch(url: str, timeout: float = 5.0) -> tuple[int, str, bytes]:
    """(status, Content-Type, body) for a GET; HTTP errors are answers too."""
    try:
        with NO_PROXY.open(url, timeout=timeout) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read()


def page_text(root: Path, manifest: SiteManifest, path: str) -> str:
    route = next(r for r in manifest.routes if r.path == path)
    charset = route.content_type.partition("charset=")[2] or "utf-8"
    return html.unescape((root / route.file).read_bytes().decode(charset))


def links(document: str) -> set[str]:
    return set(re.findall(r'href="(/[^"#]*)"', document))


# ----------------------------------------------------------------------------- build


def test_build_is_deterministic_and_atomic(site: tuple[Path, SiteManifest], tmp_path: Path) -> None:
    root, manifest = site
    again = tmp_path / "again"
    (again / "stale").mkdir(parents=True)
    assert build_demo_site(again) == manifest
    assert not (again / "stale").exists()
    first = {p.relative_to(root): p.read_bytes() for p in root.rglob("*") if p.is_file()}
    second = {p.relative_to(again): p.read_bytes() for p in again.rglob("*") if p.is_file()}
    assert first == second
    assert [p.name for p in tmp_path.iterdir()] == ["again"]  # no staging leftovers
    assert SiteManifest.load(root) == manifest
    inode = (root / "robots.txt").stat().st_ino
    assert build_demo_site(root) == manifest
    assert (root / "robots.txt").stat().st_ino == inode  # identical site left untouched


def test_sections_and_page_counts(site: tuple[Path, SiteManifest]) -> None:
    _, manifest = site
    counts = {s.name: len(s.pages) for s in manifest.sections}
    assert counts == {
        "urdu-news": 33,
        "urdu-blog": 31,
        "tamil-news": 133,
        "tamil-udhr": 26,
        "english-docs": 71,
    }
    languages = {s.name: s.language for s in manifest.sections}
    assert languages["urdu-news"] == "ur" and languages["tamil-news"] == "ta"
    tamil_news = manifest.section("tamil-news")
    assert tamil_news.index_paths == [
        "/tamil-news/",
        "/tamil-news/index-2.html",
        "/tamil-news/index-3.html",
    ]
    for section in manifest.sections:
        assert all(p.path.startswith(section.prefix) for p in section.pages)
        assert all(len(p.text.split()) >= 15 for p in section.pages), section.name


def test_every_article_carries_its_boilerplate_and_body(site: tuple[Path, SiteManifest]) -> None:
    root, manifest = site
    for section in manifest.sections:
        for page in section.pages:
            text = page_text(root, manifest, page.path)
            missing = [s for s in page.boilerplate_strings if s not in text]
            assert not missing, (page.path, missing)
            assert all(p in text for p in page.paragraphs), page.path
            assert set(page.boilerplate_strings) <= set(section.boilerplate_strings)
            if page.encoding == "utf-8":
                assert set(section.template_strings) <= set(page.boilerplate_strings)
            article = text.split("<article>", 1)[1].split("</article>", 1)[0]
            assert page.boilerplate_strings[-2] in article  # timestamp inside <article>
            assert page.boilerplate_strings[-1] in article  # view counter inside <article>


def test_boilerplate_is_varied_and_never_part_of_a_body(site: tuple[Path, SiteManifest]) -> None:
    _, manifest = site
    bodies = [p.text for s in manifest.sections for p in s.pages]
    every = {b for s in manifest.sections for b in s.boilerplate_strings}
    assert not [b for b in every if any(b in body for body in bodies)]
    urdu = manifest.section("urdu-news")
    counters = [p.boilerplate_strings[-1] for p in urdu.pages if p.encoding == "utf-8"]
    assert any(re.search("[۰-۹]", c) for c in counters)
    assert any(re.search("[0-9]", c) for c in counters)
    stamps = [p.boilerplate_strings[-2] for s in manifest.sections for p in s.pages]
    assert len(set(stamps)) > 0.9 * len(stamps)


def test_english_pages_hidden_in_urdu_section(site: tuple[Path, SiteManifest]) -> None:
    _, manifest = site
    urdu = manifest.section("urdu-news")
    assert len(urdu.english_only_paths) == 3
    for path in urdu.english_only_paths:
        page = manifest.page(path)
        letters = [c for c in page.text if c.isalpha()]
        assert page.language == "en"
        assert sum(c.isascii() for c in letters) / len(letters) > 0.99
        assert "روزنامہ صبحِ نو" in page.boilerplate_strings
    english_sources = {p.source for p in manifest.section("english-docs").pages}
    assert not english_sources & {manifest.page(p).source for p in urdu.english_only_paths}


def test_cross_posts_and_near_duplicates(site: tuple[Path, SiteManifest]) -> None:
    root, manifest = site
    assert {(c.original.split("/")[1], c.copy.split("/")[1]) for c in manifest.cross_posts} == {
        ("urdu-news", "urdu-blog"),
        ("tamil-news", "tamil-udhr"),
    }
    for cross in manifest.cross_posts:
        original, copy = manifest.page(cross.original), manifest.page(cross.copy)
        assert original.text == copy.text
        assert original.published != copy.published
        assert set(original.boilerplate_strings) != set(copy.boilerplate_strings)
    assert len(manifest.near_duplicates) == 30
    for pair in manifest.near_duplicates:
        first, second = manifest.page(pair.first), manifest.page(pair.second)
        assert first.source.split(":")[2] == second.source.split(":")[2]
    differing = [
        n
        for n in manifest.near_duplicates
        if manifest.page(n.first).text != manifest.page(n.second).text
    ]
    assert len(differing) > 10


def test_index_pages_link_everything(site: tuple[Path, SiteManifest]) -> None:
    root, manifest = site
    for section in manifest.sections:
        linked: set[str] = set()
        for path in section.index_paths:
            linked |= links(page_text(root, manifest, path))
        assert {p.path for p in section.pages} <= linked, section.name
        assert {b.path for b in manifest.bad_pages if b.path.startswith("/bad/")} <= linked
    urdu_index = links(page_text(root, manifest, "/urdu-news/"))
    assert {"/private/x", "/urdu-news/live/taza-tareen.html"} <= urdu_index
    assert "/urdu-news/archive/2019/deleted-story.html" in urdu_index
    robots = (root / "robots.txt").read_text()
    assert "User-agent: *" in robots and "Disallow: /private/" in robots
    assert manifest.robots_disallow == ["/private/"]


def test_bad_pages_on_disk(site: tuple[Path, SiteManifest]) -> None:
    root, manifest = site
    kinds = {b.kind for b in manifest.bad_pages}
    assert kinds == {"empty", "huge", "plain-nocharset", "binary", "slow", "missing"}
    assert (root / "bad" / "empty").stat().st_size == 0
    assert 5_900_000 < (root / "bad" / "huge").stat().st_size < 7_000_000
    assert (root / "bad" / "binary").read_bytes().startswith(b"%PDF-")


# ----------------------------------------------------------------------------- server


def test_server_serves_pages_with_their_charsets(
    site: tuple[Path, SiteManifest], server: DemoSiteServer
) -> None:
    _, manifest = site
    page = manifest.page(manifest.section("tamil-news").pages[0].path)
    status, content_type, body = fetch(server.base_url + page.path)
    assert (status, content_type) == (200, "text/html; charset=utf-8")
    assert page.paragraphs[0] in html.unescape(body.decode("utf-8"))
    status, content_type, body = fetch(server.base_url + "/robots.txt")
    assert status == 200 and body.startswith(b"User-agent")


def test_server_windows_1256_page(site: tuple[Path, SiteManifest], server: DemoSiteServer) -> None:
    _, manifest = site
    [legacy] = [p for p in manifest.section("urdu-news").pages if p.encoding != "utf-8"]
    status, content_type, body = fetch(server.base_url + legacy.path)
    assert (status, content_type) == (200, "text/html; charset=windows-1256")
    with pytest.raises(UnicodeDecodeError):
        body.decode("utf-8")
    decoded = html.unescape(body.decode("cp1256"))
    assert '<meta charset="windows-1256">' in decoded
    assert legacy.text in decoded and "حق حاصل ہے" in legacy.text
    assert "ي" in legacy.text and "ی" not in legacy.text  # legacy Arabic yeh


def test_server_problem_pages(server: DemoSiteServer) -> None:
    base = server.base_url
    assert fetch(base + "/bad/missing")[0] == 404
    assert fetch(base + "/urdu-news/archive/2019/deleted-story.html")[0] == 404
    assert fetch(base + "/bad/empty") == (200, "text/html; charset=utf-8", b"")
    status, content_type, body = fetch(base + "/bad/plain-nocharset")
    assert (status, content_type) == (200, "text/plain")
    assert "انسانی حقوق" in body.decode("utf-8")
    status, content_type, body = fetch(base + "/bad/binary")
    assert (status, content_type) == (200, "application/pdf") and body[:5] == b"%PDF-"
    request = urllib.request.Request(base + "/bad/huge", method="HEAD")
    with NO_PROXY.open(request, timeout=5) as response:
        assert int(response.headers["Content-Length"]) > 5_900_000
    assert ("/bad/missing", 404) in server.requests
    assert ("/bad/empty", 200) in server.requests


def test_slow_page_waits_slow_seconds(server: DemoSiteServer) -> None:
    started = time.monotonic()
    status, _, _ = fetch(server.base_url + "/bad/slow")
    assert status == 200 and 0.3 <= time.monotonic() - started < 3


def test_slow_page_times_out_and_stop_is_prompt(site: tuple[Path, SiteManifest]) -> None:
    with DemoSiteServer(site[0], slow_seconds=30) as slow_server:
        url = slow_server.base_url + "/urdu-news/live/taza-tareen.html"
        with pytest.raises(TimeoutError):
            fetch(url, timeout=0.3)
        pending = threading.Thread(target=lambda: fetch_quietly(url), daemon=True)
        pending.start()
        time.sleep(0.2)
        started = time.monotonic()
        slow_server.stop()
        assert time.monotonic() - started < 1.5
        pending.join(timeout=2)
        assert not pending.is_alive()


def fetch_quietly(url: str) -> None:
    try:
        fetch(url, timeout=10)
    except (OSError, urllib.error.URLError):
        pass


def test_cli_build(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["build", "--root", str(tmp_path / "cli_site")]) == 0
    assert (tmp_path / "cli_site" / "manifest.json").is_file()
    assert "294 article pages" in capsys.readouterr().out
