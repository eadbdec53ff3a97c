"""Build the demo site: place the drafts on five "news sites" under one host, add problem pages
under ``/bad/``, and write it all with its ``manifest.json``.

The build is deterministic (seeded), so rebuilding gives identical bytes.
"""

from __future__ import annotations

import random
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from vazhi_assets.demo.site_content import (
    ENGLISH_DOCS,
    TAMIL_NEWS,
    TAMIL_UDHR,
    TIMEZONES,
    URDU_BLOG,
    URDU_NEWS,
    Draft,
    Slot,
    Theme,
    dedupe,
    doc_drafts,
    group_sections,
    kural_drafts,
    to_cp1256_legacy,
    udhr_draft,
)
from vazhi_assets.demo.site_manifest import (
    MANIFEST_NAME,
    BadPage,
    CrossPost,
    NearDuplicate,
    Page,
    Route,
    Section,
    SiteManifest,
)
from vazhi_assets.demo.site_render import (
    HTML_UTF8,
    Context,
    esc,
    render_article,
    render_index,
    small_page,
)
from vazhi_assets.settings import data_dir
from vazhi_assets.textsources import udhr_sections

LINKS_PER_INDEX = 50
HUGE_PAGE_BYTES = 6_000_000
LEGACY_ARTICLE = 19  # UDHR article served as windows-1256 (its letters encode after mapping)
CROSS_POSTED_ARTICLE = 1
ENGLISH_IN_URDU = 3
LEGACY_CHARSET = "windows-1256"

# ----------------------------------------------------------------------------- site assembly


@dataclass
class _Site:
    """Files and routes accumulated during a build."""

    files: dict[str, bytes] = field(default_factory=dict)
    routes: list[Route] = field(default_factory=list)

    def add(
        self, path: str, data: bytes, content_type: str = HTML_UTF8, slow: bool = False
    ) -> None:
        file = f"{path}index.html" if path.endswith("/") else path
        file = file.lstrip("/")
        self.files[file] = data
        self.routes.append(Route(path, file, content_type, slow))


@dataclass(frozen=True)
class _SectionPlan:
    """Everything needed to render one section."""

    name: str
    theme: Theme
    slots: list[Slot]
    extra_index_links: list[str]
    english_only_paths: list[str] = field(default_factory=list)
    cross_posts: list[CrossPost] = field(default_factory=list)

    @property
    def prefix(self) -> str:
        return f"/{self.name}/"


def _random_time(rng: random.Random, lang: str, first_year: int = 2022, years: int = 4) -> datetime:
    start = datetime(first_year, 1, 1, tzinfo=TIMEZONES[lang])
    return start + timedelta(days=rng.randrange(365 * years - 60), minutes=rng.randrange(360, 1439))


def _place(
    rng: random.Random,
    draft: Draft,
    path: str,
    encoding: str = "utf-8",
    published: datetime | None = None,
) -> Slot:
    return Slot(
        draft=draft,
        path=path,
        published=published or _random_time(rng, draft.language),
        views=rng.randrange(150, 250_000),
        eastern_date=rng.random() < 0.5,
        eastern_views=rng.random() < 0.5,
        encoding=encoding,
    )


def _context(rng: random.Random, slots: list[Slot], position: int) -> Context:
    others = slots[:position] + slots[position + 1 :]
    related = [others[(position + k) % len(others)] for k in range(3)]
    return Context(rng.sample(others, 5), related, rng.choice(others))


def _render_section(plan: _SectionPlan, bad_links: list[str], site: _Site) -> Section:
    rng = random.Random(f"vazhi-demo-site:{plan.name}:render")
    theme = plan.theme
    pages: list[Page] = []
    for position, slot in enumerate(plan.slots):
        page_html, lines = render_article(
            theme, plan.prefix, slot, _context(rng, plan.slots, position)
        )
        strings = [*theme.article_strings(), *lines]
        draft = slot.draft
        title, text = draft.title, draft.text
        if slot.encoding == LEGACY_CHARSET:
            page_html, strings = to_cp1256_legacy(page_html), [to_cp1256_legacy(s) for s in strings]
            title, text = to_cp1256_legacy(title), to_cp1256_legacy(text)
        site.add(slot.path, page_html.encode(slot.encoding), f"text/html; charset={slot.encoding}")
        published = slot.published.isoformat()
        pages.append(
            Page(
                slot.path,
                title,
                draft.language,
                text,
                published,
                draft.source,
                dedupe(strings),
                slot.encoding,
            )
        )
    index_paths = _write_indexes(plan, bad_links, site)
    index_strings = [theme.index_title, theme.next_page, theme.previous_page]
    all_strings = [*theme.article_strings(), *index_strings]
    all_strings += [s for page in pages for s in page.boilerplate_strings]
    return Section(
        name=plan.name,
        prefix=plan.prefix,
        language=theme.lang,
        site_name=theme.site_name,
        layout=theme.layout,
        index_paths=index_paths,
        pages=pages,
        template_strings=theme.article_strings(),
        boilerplate_strings=dedupe(all_strings),
        english_only_paths=plan.english_only_paths,
        cross_posts=plan.cross_posts,
        linked_bad_paths=[*plan.extra_index_links, *bad_links],
    )


def _write_indexes(plan: _SectionPlan, bad_links: list[str], site: _Site) -> list[str]:
    newest_first = sorted(plan.slots, key=lambda s: s.published, reverse=True)
    chunks = [
        newest_first[i : i + LINKS_PER_INDEX] for i in range(0, len(newest_first), LINKS_PER_INDEX)
    ]
    paths = [plan.prefix] + [f"{plan.prefix}index-{n}.html" for n in range(2, len(chunks) + 1)]
    for n, chunk in enumerate(chunks):
        pager = (paths[n - 1] if n else None, paths[n + 1] if n + 1 < len(paths) else None)
        extra = [*plan.extra_index_links, *bad_links] if n == 0 else []
        site.add(paths[n], render_index(plan.theme, plan.prefix, chunk, pager, extra).encode())
    return paths


# ----------------------------------------------------------------------------- section plans

_URDU_NEWS_MISSING = "/urdu-news/archive/2019/deleted-story.html"
_URDU_NEWS_SLOW = "/urdu-news/live/taza-tareen.html"
_PRIVATE_PATH = "/private/x"


def _urdu_plans(
    docs_for_urdu: list[Draft],
) -> tuple[_SectionPlan, _SectionPlan, list[NearDuplicate]]:
    urd, urd2 = udhr_sections("urd"), udhr_sections("urd_2")
    groups = group_sections(urd)
    rng_news, rng_blog = (
        random.Random("vazhi-demo-site:urdu-news"),
        random.Random("vazhi-demo-site:urdu-blog"),
    )
    ids = rng_news.sample(range(1_000_000, 9_999_999), len(groups) + len(docs_for_urdu))
    news_by_group: list[Slot] = []
    for n, group in enumerate(groups):
        draft = udhr_draft("urd", urd, group, "ur")
        if group == [LEGACY_ARTICLE]:
            when = _random_time(rng_news, "ur", first_year=2010, years=2)
            path = f"/urdu-news/archive/{ids[n]}.html"
            news_by_group.append(_place(rng_news, draft, path, LEGACY_CHARSET, when))
        else:
            news_by_group.append(_place(rng_news, draft, f"/urdu-news/news/{ids[n]}.html"))
    english = [
        _place(rng_news, draft, f"/urdu-news/news/{ids[len(groups) + k]}.html")
        for k, draft in enumerate(docs_for_urdu)
    ]
    blog_by_group: list[Slot] = []
    for group in groups:
        when = _random_time(rng_blog, "ur")
        path = f"/urdu-blog/{when:%Y/%m}/tahrir-{group[0]:02d}.html"
        draft = udhr_draft("urd_2", urd2, group, "ur")
        blog_by_group.append(_place(rng_blog, draft, path, published=when))
    near = [
        NearDuplicate(news.path, blog.path, "UDHR urd vs urd_2 (two Urdu spellings)")
        for news, blog in zip(news_by_group, blog_by_group, strict=True)
    ]
    crossed_group = next(n for n, g in enumerate(groups) if CROSS_POSTED_ARTICLE in g)
    original = news_by_group[crossed_group]
    when = original.published + timedelta(days=3, hours=5)
    copy = _place(
        rng_blog, original.draft, f"/urdu-blog/{when:%Y/%m}/naql-shuda.html", published=when
    )
    middle = len(blog_by_group) // 2
    blog_slots = [*blog_by_group[:middle], copy, *blog_by_group[middle:]]
    news = _SectionPlan(
        "urdu-news",
        URDU_NEWS,
        [*news_by_group, *english],
        extra_index_links=[_URDU_NEWS_MISSING, _URDU_NEWS_SLOW, _PRIVATE_PATH],
        english_only_paths=[s.path for s in english],
    )
    blog = _SectionPlan(
        "urdu-blog", URDU_BLOG, blog_slots, [], [], [CrossPost(original.path, copy.path)]
    )
    return news, blog, near


def _tamil_plans() -> tuple[_SectionPlan, _SectionPlan]:
    rng_news, rng_org = (
        random.Random("vazhi-demo-site:tamil-news"),
        random.Random("vazhi-demo-site:tamil-udhr"),
    )
    news_slots = [
        _place(rng_news, draft, f"/tamil-news/ilakkiyam/kural-{n:03d}.html")
        for n, draft in enumerate(kural_drafts(), start=1)
    ]
    tam = udhr_sections("tam")
    org_slots = [
        _place(
            rng_org,
            udhr_draft("tam", tam, group, "ta"),
            f"/tamil-udhr/avanam/urimai-{group[0]:02d}.html",
        )
        for group in group_sections(tam)
    ]
    original = news_slots[0]
    copy_when = original.published + timedelta(days=11, hours=2)
    copy = _place(
        rng_org, original.draft, "/tamil-udhr/katturai/kural-vazhi.html", published=copy_when
    )
    org_slots.insert(len(org_slots) // 2, copy)
    news = _SectionPlan("tamil-news", TAMIL_NEWS, news_slots, [])
    org = _SectionPlan(
        "tamil-udhr", TAMIL_UDHR, org_slots, [], [], [CrossPost(original.path, copy.path)]
    )
    return news, org


def _english_plan(docs: list[Draft]) -> _SectionPlan:
    rng = random.Random("vazhi-demo-site:english-docs")
    slugs: dict[str, int] = {}
    slots = []
    for draft in docs:
        slug = re.sub(r"[^a-z0-9]+", "-", draft.title.lower()).strip("-")
        slugs[slug] = slugs.get(slug, 0) + 1
        suffix = f"-{slugs[slug]}" if slugs[slug] > 1 else ""
        slots.append(_place(rng, draft, f"/english-docs/reference/{slug}{suffix}.html"))
    return _SectionPlan("english-docs", ENGLISH_DOCS, slots, [])


def _split_docs(docs: list[Draft]) -> tuple[list[Draft], list[Draft]]:
    """Reserve a few mid-sized topics for the Urdu section; the rest form the English site."""
    medium = [d for d in docs if 500 <= len(d.text) <= 3000][:ENGLISH_IN_URDU]
    return medium, [d for d in docs if d not in medium]


# ----------------------------------------------------------------------------- problem pages


def _bad_pages(site: _Site) -> list[BadPage]:
    urdu = "\n\n".join(p for s in udhr_sections("urd") for p in s.paragraphs)
    pdf = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n" + random.Random("vazhi-demo-site:binary").randbytes(
        48 * 1024
    )
    specials = [
        ("/bad/empty", "empty", b"", HTML_UTF8, "200 with an empty body: nothing to keep"),
        (
            "/bad/huge",
            "huge",
            _huge_page(urdu),
            HTML_UTF8,
            "about 6 MB of repeated text: cap the page size or drop it",
        ),
        (
            "/bad/plain-nocharset",
            "plain-nocharset",
            urdu.encode("utf-8"),
            "text/plain",
            "Urdu UTF-8 bytes served as text/plain without charset: decode as UTF-8 or drop",
        ),
        ("/bad/binary", "binary", pdf + b"\n%%EOF\n", "application/pdf", "not HTML: skip"),
        (
            "/bad/slow",
            "slow",
            small_page("Slow page", "This answer was delayed."),
            HTML_UTF8,
            "the server waits slow_seconds before answering: expect a timeout",
        ),
        (
            _URDU_NEWS_SLOW,
            "slow",
            small_page("تازہ ترین", "براہ راست کوریج جاری ہے"),
            HTML_UTF8,
            "live page inside the Urdu section that answers after slow_seconds: expect a timeout",
        ),
    ]
    bad = []
    for path, kind, data, content_type, expected in specials:
        site.add(path, data, content_type, slow=kind == "slow")
        bad.append(BadPage(path, kind, 200, content_type, expected))
    for path in ("/bad/missing", _URDU_NEWS_MISSING):
        bad.append(BadPage(path, "missing", 404, HTML_UTF8, "404 not found: record and skip"))
    listing = "".join(f'<li><a href="{b.path}">{b.kind}</a></li>' for b in bad)
    site.add("/bad/", small_page("Problem pages", f"<ul>{listing}</ul>", escape=False))
    return bad


def _huge_page(urdu: str) -> bytes:
    paragraphs = urdu.split("\n\n")
    parts = [
        '<!doctype html>\n<html lang="ur" dir="rtl"><head><meta charset="utf-8">'
        "<title>آرکائیو</title></head><body><main>\n"
    ]
    size, n = len(parts[0].encode()), 0
    while size < HUGE_PAGE_BYTES:
        line = f"<p>{n + 1}. {esc(paragraphs[n % len(paragraphs)])}</p>\n"
        parts.append(line)
        size += len(line.encode())
        n += 1
    parts.append("</main></body></html>\n")
    return "".join(parts).encode()


def _root_pages(site: _Site, sections: list[Section]) -> None:
    site.add("/robots.txt", b"User-agent: *\nDisallow: /private/\n", "text/plain; charset=utf-8")
    links = "".join(f'<li><a href="{s.prefix}">{esc(s.site_name)}</a></li>' for s in sections)
    site.add("/", small_page("Demo news portal", f"<ul>{links}</ul>", escape=False))
    site.add(_PRIVATE_PATH, small_page("Members only", "Robots may not fetch this page."))


# ----------------------------------------------------------------------------- build


def _check_boilerplate(sections: list[Section]) -> None:
    """Boilerplate must never occur inside any ground-truth body, or the truth is ambiguous."""
    bodies = "\x00".join(page.text for s in sections for page in s.pages)
    clashes = sorted({b for s in sections for b in s.boilerplate_strings if b in bodies})
    if clashes:
        raise ValueError(f"boilerplate strings also occur in article bodies: {clashes}")


def _assemble() -> tuple[SiteManifest, _Site]:
    site = _Site()
    for_urdu, docs = _split_docs(doc_drafts())
    urdu_news, urdu_blog, near = _urdu_plans(for_urdu)
    tamil_news, tamil_udhr = _tamil_plans()
    plans = [urdu_news, urdu_blog, tamil_news, tamil_udhr, _english_plan(docs)]
    bad = _bad_pages(site)
    bad_links = [b.path for b in bad if b.path.startswith("/bad/")]
    sections = [_render_section(plan, bad_links, site) for plan in plans]
    _check_boilerplate(sections)
    _root_pages(site, sections)
    manifest = SiteManifest(
        sections=sections,
        cross_posts=[c for s in sections for c in s.cross_posts],
        near_duplicates=near,
        bad_pages=bad,
        robots_disallow=["/private/"],
        private_paths=[_PRIVATE_PATH],
        routes=sorted(site.routes, key=lambda r: r.path),
    )
    return manifest, site


def build_demo_site(root: Path) -> SiteManifest:
    """Write the demo site under ``root`` and return its manifest.

    The site is built in a sibling temporary directory and swapped in; an existing identical
    site is left untouched, so concurrent builders and running servers are not disturbed.
    """
    root = Path(root).resolve()
    manifest, site = _assemble()
    site.files[MANIFEST_NAME] = manifest.to_json().encode("utf-8")
    if _is_current(root, site.files):
        return manifest
    root.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{root.name}-new-", dir=root.parent))
    try:
        staging.chmod(0o755)
        for rel, data in site.files.items():
            target = staging / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        _swap_into_place(staging, root)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return manifest


def _is_current(root: Path, files: dict[str, bytes]) -> bool:
    manifest = root / MANIFEST_NAME
    if not manifest.is_file() or manifest.read_bytes() != files[MANIFEST_NAME]:
        return False
    on_disk = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
    return on_disk == set(files) and all((root / r).read_bytes() == d for r, d in files.items())


def _swap_into_place(staging: Path, root: Path) -> None:
    trash = Path(tempfile.mkdtemp(prefix=f".{root.name}-old-", dir=root.parent))
    try:
        if root.exists():
            root.rename(trash / "site")
        staging.rename(root)
    except OSError:
        if not (root / MANIFEST_NAME).is_file():  # lost a race only if the winner finished
            raise
    finally:
        shutil.rmtree(trash, ignore_errors=True)


def default_site_root() -> Path:
    """Where the pipeline keeps the built demo site: ``data_dir()/demo_site``."""
    return data_dir() / "demo_site"
