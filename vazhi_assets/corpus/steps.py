"""Cleaning steps: small named units that keep, edit or drop one document at a time.

Every step is a :class:`Step` with

* ``name`` — what the funnel calls it;
* ``process(doc)`` — returns the document (the same object, or an edited copy made with
  :func:`dataclasses.replace`; input documents are never mutated), or drops it with a short
  reason such as ``"too_few_words"`` by raising :class:`Drop` or returning :class:`Dropped`;
* ``fit(docs)`` — only for steps that must see a whole source first
  (``needs_fit = True``, e.g. :class:`RepeatedLineRemoval`);
* ``stats`` — a :class:`StepStats` with seen/kept/dropped/modified, drop ``reasons`` and
  ``edits`` (what was changed inside kept documents, e.g. ``"line_removed:timestamp"``), overall
  and per source in ``stats.by_source``.

``apply(doc)`` runs ``process`` and records the stats; ``run(docs)`` does that for a list (after
``fit`` if the step needs it) and returns the kept documents and ``(doc, step, reason)`` for the
dropped ones. Steps hold no Dagster or I/O code and are testable on one document.
"""

from __future__ import annotations

import html
import math
import re
import threading
from abc import ABC, abstractmethod
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from .normalize import normalize_unicode, normalize_whitespace, text_key
from .scripts import SCRIPT_RANGES, is_letter, script_counts

__all__ = [
    "BOILERPLATE_BY_LANGUAGE",
    "DEFAULT_BOILERPLATE",
    "BoilerplatePatterns",
    "Document",
    "Drop",
    "Dropped",
    "JunkRemoval",
    "LanguageIDFilter",
    "LengthFilter",
    "MarkdownToText",
    "RepeatedLineRemoval",
    "ScriptPurityFilter",
    "Step",
    "StepStats",
    "UnicodeNormalize",
    "default_steps",
    "get_language_identifier",
    "urdu_marker_share",
]


# =============================================================================================
# Documents and statistics
# =============================================================================================
@dataclass
class Document:
    """One text with where it came from. ``language`` is the expected language ("ur", "ta",
    "en"), set by the source, and is what the filters check the text against."""

    doc_id: str
    text: str
    source: str
    language: str
    url: str = ""
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class StepStats:
    """Counts for one step; ``by_source`` holds the same counts per document source.

    Invariant (checked in the tests): ``seen == kept + dropped``; ``modified <= kept`` counts
    kept documents whose text the step changed. ``reasons`` counts drop reasons; ``edits``
    counts changes inside kept or dropped documents (lines removed and why).
    """

    step: str
    seen: int = 0
    kept: int = 0
    dropped: int = 0
    modified: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    edits: Counter[str] = field(default_factory=Counter)
    by_source: dict[str, StepStats] = field(default_factory=dict)

    def source(self, source: str) -> StepStats:
        """The per-source counts for ``source`` (created on first use)."""
        stats = self.by_source.get(source)
        if stats is None:
            stats = self.by_source[source] = StepStats(self.step)
        return stats

    def _add(self, source: str, attr: str, n: int = 1) -> None:
        setattr(self, attr, getattr(self, attr) + n)
        sub = self.source(source)
        setattr(sub, attr, getattr(sub, attr) + n)

    def record(self, source: str, *, kept: bool, modified: bool = False, reason: str = "") -> None:
        """Count one document decision."""
        self._add(source, "seen")
        if kept:
            self._add(source, "kept")
            if modified:
                self._add(source, "modified")
        else:
            self._add(source, "dropped")
            self.reasons[reason] += 1
            self.source(source).reasons[reason] += 1

    def note(self, source: str, edit: str, n: int = 1) -> None:
        """Count an edit (e.g. one removed line) without deciding about the document."""
        if n:
            self.edits[edit] += n
            self.source(source).edits[edit] += n

    def as_dict(self, *, per_source: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "step": self.step,
            "seen": self.seen,
            "kept": self.kept,
            "dropped": self.dropped,
            "modified": self.modified,
            "reasons": dict(self.reasons.most_common()),
            "edits": dict(self.edits.most_common()),
        }
        if per_source:
            out["by_source"] = {
                src: sub.as_dict(per_source=False) for src, sub in sorted(self.by_source.items())
            }
        return out


class Drop(Exception):  # noqa: N818 - it is a verdict, not an error
    """Raised by ``Step.process`` to drop the document; ``reason`` goes into the stats."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Dropped:
    """Alternative to raising :class:`Drop`: ``process`` may return ``Dropped("reason")``."""

    reason: str


DroppedDoc = tuple[Document, str, str]  # (document, step name, reason)


# =============================================================================================
# Step base class
# =============================================================================================
class Step(ABC):
    """Base class; subclasses set ``name`` and implement ``process``."""

    name: str = "step"
    needs_fit: bool = False

    def __init__(self, name: str | None = None):
        if name is not None:
            self.name = name
        self.stats = StepStats(self.name)

    def reset_stats(self) -> None:
        self.stats = StepStats(self.name)

    def fit(self, docs: Sequence[Document]) -> None:  # noqa: B027 - optional hook
        """Look at all documents before processing them (default: nothing)."""

    @abstractmethod
    def process(self, doc: Document) -> Document | Dropped:
        """Return the (possibly edited) document, or drop it with a reason."""

    def note(self, doc: Document, edit: str, n: int = 1) -> None:
        """Record an edit made to ``doc`` (for use inside ``process``)."""
        self.stats.note(doc.source, edit, n)

    def judge(self, doc: Document) -> tuple[Document | None, str]:
        """Process ``doc`` and record it: ``(new_doc, "")`` if kept, ``(None, reason)`` if not."""
        try:
            out = self.process(doc)
        except Drop as verdict:
            out = Dropped(verdict.reason)
        if isinstance(out, Dropped):
            self.stats.record(doc.source, kept=False, reason=out.reason)
            return None, out.reason
        self.stats.record(doc.source, kept=True, modified=out.text != doc.text)
        return out, ""

    def apply(self, doc: Document) -> Document | None:
        """Process one document: the (possibly edited) document, or None if dropped."""
        return self.judge(doc)[0]

    def run(self, docs: Sequence[Document]) -> tuple[list[Document], list[DroppedDoc]]:
        """Fit (if the step needs it), then judge every document in order."""
        docs = list(docs)
        if self.needs_fit:
            self.fit(docs)
        kept: list[Document] = []
        dropped: list[DroppedDoc] = []
        for doc in docs:
            out, reason = self.judge(doc)
            if out is None:
                dropped.append((doc, self.name, reason))
            else:
                kept.append(out)
        return kept, dropped

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


def _with_text(doc: Document, text: str, **meta: Any) -> Document:
    """Copy of ``doc`` with new text (and extra meta); the original is left untouched."""
    if text == doc.text and not meta:
        return doc
    return replace(doc, text=text, meta={**doc.meta, **meta} if meta else dict(doc.meta))


def _join_lines(lines: Iterable[str]) -> str:
    return normalize_whitespace("\n".join(lines))


# =============================================================================================
# Markdown -> text
# =============================================================================================
_FENCE = re.compile(r"^\s*(```|~~~)")
_IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)|!\[[^\]]*\]\[[^\]]*\]")
_LINK = re.compile(r"\[([^\]]*)\]\((?:[^()]|\([^)]*\))*\)")
# A line that is nothing but links (a menu, a list of headlines), optionally with a list marker
# and a trailing date or count: navigation, not prose.
_LINK_ONLY_LINE = re.compile(
    r"^\s*(?:[-*+•]|\d+[.)])?\s*"
    r"(?:\[[^\]]*\]\((?:[^()]|\([^)]*\))*\)\s*[|·•,،/-]?\s*)+"
    r"[0-9\u0660-\u0669\u06f0-\u06f9\s/:.,-]*$"
)
_REF_LINK = re.compile(r"\[([^\]]+)\]\[[^\]]*\]")
_REF_DEF = re.compile(r"^\s*\[[^\]]+\]:\s*\S+")
_AUTOLINK = re.compile(r"<(?:https?://|mailto:|www\.)[^>]*>", re.I)
_BARE_URL = re.compile(r"(?:https?://|www\.)[^\s<>()\[\]]+", re.I)
_HTML_BREAK = re.compile(r"<br\s*/?>", re.I)
_HTML_TAG = re.compile(r"</?[a-zA-Z][^>]*>")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+|\s+#+\s*$")
_RULE_OR_SETEXT = re.compile(r"^\s*(?:[-=_*]\s*){3,}$")
_BLOCKQUOTE = re.compile(r"^\s*(?:>\s?)+")
_BULLET = re.compile(r"^\s*(?:[-*+•▪►●◦]|\d{1,3}[.)])\s+")
_TABLE_SEPARATOR = re.compile(r"^\s*\|?\s*:?-{2,}:?\s*(?:\|\s*:?-{2,}:?\s*)*\|?\s*$")
_EMPHASIS = (
    re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1"),
    re.compile(r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])"),
    re.compile(r"(?<![\w_])_(?=\S)([^_\n]+?)(?<=\S)_(?![\w_])"),
    re.compile(r"~~(?=\S)(.+?)(?<=\S)~~"),
)
_INLINE_CODE = re.compile(r"`+([^`]*)`+")
_MD_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!|>~])")
_EMPTY_BRACKETS = re.compile(r"\[\s*\]|\(\s*\)")


class MarkdownToText(Step):
    """Turn crawl4ai markdown into plain text lines, one block per line.

    Removed: images, link targets (the link text stays), reference-link definitions, autolinks
    and bare URLs, heading hashes, setext underlines and horizontal rules, emphasis markers
    (``**`` ``*`` ``__`` ``_`` ``~~``; underscores inside words are kept), inline code ticks,
    list bullets and ``1.`` markers, blockquote ``>``, table pipes and separator rows, HTML tags,
    HTML entities, and fenced code blocks (whole block, unless ``keep_code=True``). Soft line
    breaks are *not* joined: crawl4ai writes one paragraph per line, and keeping lines apart is
    what lets the line-level steps below find navigation and footers.
    """

    name = "markdown_to_text"

    def __init__(self, keep_code: bool = False, name: str | None = None):
        super().__init__(name)
        self.keep_code = keep_code

    def convert(self, markdown: str) -> tuple[str, Counter[str]]:
        """Plain text for ``markdown`` plus counts of what was removed."""
        counts: Counter[str] = Counter()
        out: list[str] = []
        in_fence = False
        for raw in markdown.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
            if _FENCE.match(raw):
                in_fence = not in_fence
                counts["code_fence"] += 1
                continue
            if in_fence:
                if self.keep_code:
                    out.append(raw.strip())
                else:
                    counts["code_line"] += 1
                continue
            line = raw
            if _REF_DEF.match(line) or (_TABLE_SEPARATOR.match(line) and "-" in line):
                counts["link_def_or_table_rule"] += 1
                continue
            if _RULE_OR_SETEXT.match(line):
                counts["rule"] += 1
                out.append("")
                continue
            if _LINK_ONLY_LINE.match(line):
                counts["link_only_line"] += 1
                continue
            line = _HTML_BREAK.sub("\n", line)
            line, n = _IMAGE.subn("", line)
            counts["image"] += n
            line, n = _LINK.subn(r"\1", line)
            counts["link"] += n
            line = _REF_LINK.sub(r"\1", line)
            line, n = _AUTOLINK.subn("", line)
            counts["url"] += n
            line, n = _BARE_URL.subn("", line)
            counts["url"] += n
            line = _HTML_TAG.sub("", line)
            line = _EMPTY_BRACKETS.sub("", line)
            for sub_line in line.split("\n"):
                out.append(self._clean_line(sub_line, counts))
        text = html.unescape("\n".join(out))
        return normalize_whitespace(text), +counts

    @staticmethod
    def _clean_line(line: str, counts: Counter[str]) -> str:
        line = _BLOCKQUOTE.sub("", line)
        line, n = _HEADING.subn("", line)
        counts["heading"] += bool(n)
        line, n = _BULLET.subn("", line)
        counts["bullet"] += n
        if line.count("|") >= 2 or line.lstrip().startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            line = " ".join(c for c in cells if c)
            counts["table_row"] += 1
        line = _INLINE_CODE.sub(r"\1", line)
        for pattern in _EMPHASIS:
            line = pattern.sub(lambda m: m.group(m.lastindex), line)
        line = _MD_ESCAPE.sub(r"\1", line)
        return line.strip()

    def process(self, doc: Document) -> Document:
        text, counts = self.convert(doc.text)
        for what, n in counts.items():
            self.note(doc, f"md:{what}", n)
        if not text:
            raise Drop("empty_after_markdown")
        return _with_text(doc, text)


# =============================================================================================
# Unicode normalisation
# =============================================================================================
class UnicodeNormalize(Step):
    """``normalize_unicode`` for the document's language, then ``normalize_whitespace``."""

    name = "unicode_normalize"

    def process(self, doc: Document) -> Document:
        text = normalize_whitespace(normalize_unicode(doc.text, doc.language))
        if not text:
            raise Drop("empty_after_normalize")
        return _with_text(doc, text)


# =============================================================================================
# Line-level removal
# =============================================================================================
#: Lines that are site furniture, per language. Matched with ``re.search`` against each
#: whitespace-normalised line, case-insensitively.
BOILERPLATE_BY_LANGUAGE: dict[str, list[str]] = {
    "en": [
        r"^(?:all rights reserved|copyright\b|©)",
        r"all rights reserved\.?$",
        r"^(?:share|share this|share on|follow us|subscribe)(?:\s+(?:on|to|us))?\s*(?:[:!|]|$)",
        r"^(?:read more|read also|see also|also read|click here|continue reading)\b.{0,40}$",
        r"^(?:read more|read also|see also|also read)\s*:",
        r"\b(?:we use cookies|cookie policy|accept (?:all )?cookies|privacy policy)\b",
        r"^(?:home|menu|search|login|log in|sign in|sign up|register)(?:\s*[|/>»]\s*\S+)*$",
        r"^(?:previous|next)\s+(?:post|article|page)\b",
        r"^(?:leave a (?:reply|comment)|post a comment|add comment)\b",
    ],
    "ur": [
        r"^(?:یہ بھی پڑھیں|یہ بھی پڑھیے|مزید پڑھیں|مزید پڑھیے|یہ بھی دیکھیں|مزید دیکھیں)",
        r"(?:جملہ حقوق محفوظ|تمام حقوق محفوظ)",
        r"^(?:ہمیں فالو کریں|ہمیں فیس بک پر|فالو کریں|شیئر کریں|سبسکرائب کریں)",
        r"^(?:اپنی رائے دیں|تبصرہ کریں|اپنا تبصرہ)",
        r"^(?:اشتہار|سپانسرڈ)$",
    ],
    "ta": [
        r"^(?:இதையும் படிக்க|இதையும் படிங்க|மேலும் படிக்க|மேலும் வாசிக்க|மேலும் செய்திகள்|"
        r"இவற்றையும் படிக்க)",
        r"(?:அனைத்து உரிமைகளும் பாதுகாக்கப்பட்டவை|காப்புரிமை)",
        r"^(?:பகிர்|பகிரவும்|பகிருங்கள்|எங்களைப் பின்தொடர)",
        r"^(?:உங்கள் கருத்தை|கருத்து தெரிவிக்க)",
        r"^(?:விளம்பரம்)$",
    ],
}

#: Every language's patterns for every source (key ``"*"``), the default of
#: :class:`BoilerplatePatterns`.
DEFAULT_BOILERPLATE: dict[str, list[str]] = {
    "*": [p for pats in BOILERPLATE_BY_LANGUAGE.values() for p in pats]
}


class BoilerplatePatterns(Step):
    """Remove lines that match boilerplate regexes; drop the doc only if nothing is left.

    ``patterns`` is a list (applied to every source) or a dict with key ``"*"`` for every source
    plus one key per source name for site-specific lines. Patterns are searched (``re.search``,
    case-insensitive) in each stripped line; anchor them with ``^``/``$`` for whole lines.
    In the default order this step runs after ``unicode_normalize``, so write Urdu patterns in
    normalised spelling (``ی ک ہ``, not ``ي ك ه``).
    Edits are counted as ``line_removed`` and ``pattern:<pattern>`` (first 40 characters).
    """

    name = "boilerplate_patterns"

    def __init__(
        self,
        patterns: dict[str, list[str]] | list[str] | None = None,
        name: str | None = None,
    ):
        super().__init__(name)
        if patterns is None:
            patterns = DEFAULT_BOILERPLATE
        if not isinstance(patterns, dict):
            patterns = {"*": list(patterns)}
        self._compiled: dict[str, list[re.Pattern[str]]] = {
            key: [re.compile(p, re.IGNORECASE) for p in pats] for key, pats in patterns.items()
        }

    def _patterns_for(self, source: str) -> list[re.Pattern[str]]:
        return [*self._compiled.get("*", []), *self._compiled.get(source, [])]

    def process(self, doc: Document) -> Document:
        patterns = self._patterns_for(doc.source)
        if not patterns:
            return doc
        kept: list[str] = []
        for line in doc.text.split("\n"):
            stripped = line.strip()
            hit = next((p for p in patterns if stripped and p.search(stripped)), None)
            if hit is None:
                kept.append(line)
            else:
                self.note(doc, "line_removed")
                self.note(doc, f"pattern:{hit.pattern[:40]}")
        if len(kept) == len(doc.text.split("\n")):
            return doc
        text = _join_lines(kept)
        if not text:
            raise Drop("empty_after_boilerplate")
        return _with_text(doc, text)


class RepeatedLineRemoval(Step):
    """Remove lines that recur across many documents *of the same source*.

    ``fit`` counts, per source, in how many documents each line occurs (a line is compared by
    its :func:`text_key`, so punctuation and digit-script differences do not matter). A line
    occurring in at least ``max(min_docs, ceil(min_share * documents_in_source))`` documents is
    site furniture (navigation, footer, cookie banner, "read also") and is removed from that
    source's documents. Sources never influence each other: a sentence that is common across
    *different* sites is content (a quotation, a news wire text) and is left to deduplication.
    Lines with an empty key (only punctuation) are ignored here.
    """

    name = "repeated_line_removal"
    needs_fit = True

    def __init__(self, min_share: float = 0.3, min_docs: int = 3, name: str | None = None):
        super().__init__(name)
        if not 0.0 < min_share <= 1.0:
            raise ValueError("min_share must be in (0, 1]")
        self.min_share = min_share
        self.min_docs = min_docs
        self.repeated: dict[str, set[str]] = {}
        self.docs_per_source: Counter[str] = Counter()

    def fit(self, docs: Sequence[Document]) -> None:
        counts: dict[str, Counter[str]] = defaultdict(Counter)
        self.docs_per_source = Counter()
        for doc in docs:
            self.docs_per_source[doc.source] += 1
            keys = {text_key(line) for line in doc.text.split("\n")}
            keys.discard("")
            counts[doc.source].update(keys)
        self.repeated = {}
        for source, counter in counts.items():
            need = max(self.min_docs, math.ceil(self.min_share * self.docs_per_source[source]))
            self.repeated[source] = {key for key, n in counter.items() if n >= need}

    def process(self, doc: Document) -> Document:
        repeated = self.repeated.get(doc.source)
        if not repeated:
            return doc
        lines = doc.text.split("\n")
        kept = [line for line in lines if text_key(line) not in repeated]
        if len(kept) == len(lines):
            return doc
        self.note(doc, "line_removed", len(lines) - len(kept))
        text = _join_lines(kept)
        if not text:
            raise Drop("empty_after_repeated_lines")
        return _with_text(doc, text)


# ---------------------------------------------------------------------------------------------
# Junk lines: timestamps, counters, URLs, metadata labels, numeric debris
# ---------------------------------------------------------------------------------------------
_MONTHS = """
january february march april may june july august september october november december
jan feb mar apr jun jul aug sep sept oct nov dec
جنوری فروری مارچ اپریل مئی جون جولائی اگست ستمبر اکتوبر نومبر دسمبر
محرم صفر ربیع الاول الثانی الآخر جمادی الاولی رجب شعبان رمضان شوال ذوالقعدہ ذوالحجہ
ஜனவரி பிப்ரவரி மார்ச் ஏப்ரல் மே ஜூன் ஜூலை ஆகஸ்ட் செப்டம்பர் அக்டோபர் நவம்பர் டிசம்பர்
ஜன பிப் மார் ஏப் ஜூலை ஆக செப் அக் நவ டிச
சித்திரை வைகாசி ஆனி ஆடி ஆவணி புரட்டாசி ஐப்பசி கார்த்திகை மார்கழி தை மாசி பங்குனி
"""
_WEEKDAYS = """
monday tuesday wednesday thursday friday saturday sunday mon tue tues wed thu thur thurs fri sat
sun پیر سوموار منگل بدھ جمعرات جمعہ ہفتہ اتوار بروز
ஞாயிறு திங்கள் செவ்வாய் புதன் வியாழன் வெள்ளி சனி ஞாயிற்றுக்கிழமை திங்கட்கிழமை
செவ்வாய்க்கிழமை புதன்கிழமை வியாழக்கிழமை வெள்ளிக்கிழமை சனிக்கிழமை கிழமை
"""
_TIME_WORDS = """
am pm a m p gmt utc pkt pst ist hrs hr h min mins minutes minute hours hour seconds sec
days day weeks week months month years year ago today yesterday
ء ھ ق بجے صبح شام رات دوپہر سہ پہر
منٹ سیکنڈ گھنٹے گھنٹہ گھنٹوں دن دنوں ہفتے مہینے سال پہلے قبل آج کل
மணி மணிக்கு மதியம் பிற்பகல் முற்பகல் அதிகாலை நிமிடம் நிமிடங்கள் மணிநேரம்
நாள் நாட்கள் முன்பு முன் காலை மாலை இரவு இன்று நேற்று
"""
_DATE_LABELS = """
published updated posted last modified on at date time edited by
شائع شدہ ہوا اپ ڈیٹ اپڈیٹ تازہ ترین تاریخ اشاعت وقت کو پوسٹ کیا گیا
வெளியிடப்பட்டது புதுப்பிக்கப்பட்டது நேரம் தேதி அன்று பதிவு செய்யப்பட்டது வெளியீடு
"""
_COUNTER_WORDS = """
views view viewed reads read shares share shared comments comment likes like liked reactions
followers subscribers retweets replies votes reached
ویوز ویو دیکھا دیکھی دیکھے تبصرے تبصرہ تبصروں لائکس لائک شیئرز شیئر پسند ناظرین قارئین
پڑھا کمنٹس کمنٹ جوابات
பார்வைகள் பார்வை பார்வையாளர்கள் பார்க்கப்பட்டது கருத்துகள் கருத்துக்கள் கருத்து பகிர்வுகள்
பகிர்வு விருப்பங்கள் லைக்குகள் லைக் வாசிப்புகள் படித்தவர்கள்
"""
_COUNTER_FILLER = """
times people this total k m
بار مرتبہ دفعہ گیا گئی گئے کیا کیے لوگوں افراد نے ہے ہیں اب تک
முறை பேர் இதுவரை மொத்தம் முறைகள்
"""
_META_LABELS = (
    r"tags?|labels?|categor(?:y|ies)|filed under|posted in|share(?: this)?(?: on)?|"
    r"related(?: posts| articles| news)?|follow us(?: on)?|keywords|"
    r"ٹیگز|ٹیگ|زمرہ جات|زمرہ|زمرے|شیئر کریں|شیئر|متعلقہ خبریں|متعلقہ|فالو کریں|کلیدی الفاظ|"
    r"குறிச்சொற்கள்|குறிச்சொல்|பகிர்|பகிரவும்|பிரிவுகள்|பிரிவு|தொடர்புடைய செய்திகள்|"
    r"தொடர்புடையவை|முக்கிய சொற்கள்"
)
_META_LINE = re.compile(rf"^\W*(?:{_META_LABELS})\s*(?:[:：\-–—|»]|$)", re.IGNORECASE)
_URL_OR_EMAIL = re.compile(
    r"^(?:https?://\S+|www\.\S+|[\w.+-]+@[\w-]+(?:\.[\w-]+)+|"
    r"[\w-]+(?:\.[\w-]+)*\.(?:com|org|net|pk|in|lk|io|info|edu|gov|co|tv|news)(?:/\S*)?)$",
    re.IGNORECASE,
)
_LABEL_PREFIX = re.compile(r"^[^\W\d][^:：/]{0,29}[:：]\s+")
_NUMBER_TOKEN = re.compile(
    r"^\d+(?:st|nd|rd|th|k|m|b|ء|ھ|am|pm|h|hr|hrs|min|mins|sec|s|t\d+|z)?$"
)
_ANY_DIGIT = "0-9\u0660-\u0669\u06f0-\u06f9\u0be6-\u0bef"
_DATE_SHAPE = re.compile(rf"[{_ANY_DIGIT}]\s?[/:.\-]\s?[{_ANY_DIGIT}]")
_FRAGMENT_SEP = re.compile(r"\s*[|•·►▪]\s*")


def _vocab(words: str) -> frozenset[str]:
    return frozenset(tok for w in words.split() for tok in text_key(w).split())


class JunkRemoval(Step):
    """Remove lines (and ``|``/``•``-separated fragments of lines) that are not prose.

    A line is removed, with the edit ``line_removed:<kind>``, when it is

    * ``url_or_email`` — only URLs/e-mail addresses (an optional short ``Label:`` before them);
    * ``metadata`` — starts with a label such as ``Tags:``, ``Share:``, ``Category:``,
      ``ٹیگز:``, ``زمرہ:``, ``குறிச்சொற்கள்:`` (followed by a colon/dash or nothing) and has
      at most ``max_meta_words`` words;
    * ``timestamp`` — every word is a number, a month (English, Urdu, Hijri, Tamil Gregorian
      and Tamil calendar), a weekday, a time word (``am``, ``بجے``, ``மணி``, ``ago``…) or a
      date label (``Published``, ``شائع``, ``வெளியிடப்பட்டது``…), with at least one number and
      either a month/weekday/time word or a date shape such as ``12/01`` or ``10:45``;
    * ``counter`` — every word is a number, a counter word (``views``, ``بار دیکھا گیا``,
      ``பார்வைகள்``, ``comments``…) or filler (``times``, ``مرتبہ``, ``முறை``), with at least
      one number and one counter word;
    * ``numeric`` — no letters at all, or fewer than half its visible characters are letters and
      it has fewer than ``min_words_numeric`` words containing letters (``© 2024``, ``12:30``,
      table rows of figures);
    * ``custom`` — matches one of ``extra_patterns`` (``re.search``, case-insensitive).

    Timestamp and counter checks only look at lines of at most ``max_tokens`` words: a real
    sentence that mentions a date or a number has other words and is kept. Documents left
    without text are dropped with ``empty_after_junk``.
    """

    name = "junk_removal"

    def __init__(
        self,
        extra_patterns: list[str] | None = None,
        *,
        max_tokens: int = 12,
        max_meta_words: int = 25,
        min_words_numeric: int = 4,
        name: str | None = None,
    ):
        super().__init__(name)
        self.extra = [re.compile(p, re.IGNORECASE) for p in extra_patterns or []]
        self.max_tokens = max_tokens
        self.max_meta_words = max_meta_words
        self.min_words_numeric = min_words_numeric
        self._date_names = _vocab(_MONTHS) | _vocab(_WEEKDAYS) | _vocab(_TIME_WORDS)
        self._date_vocab = self._date_names | _vocab(_DATE_LABELS)
        self._counter_words = _vocab(_COUNTER_WORDS)
        self._counter_vocab = self._counter_words | _vocab(_COUNTER_FILLER)

    # -- classification -------------------------------------------------------------------
    def classify(self, line: str) -> str | None:
        """Kind of junk ``line`` is, or None if it is (possibly) prose."""
        stripped = line.strip()
        if not stripped:
            return None
        for pattern in self.extra:
            if pattern.search(stripped):
                return "custom"
        words = stripped.split()
        if self._only_urls(words) or self._only_urls(_LABEL_PREFIX.sub("", stripped).split()):
            return "url_or_email"
        if len(words) <= self.max_meta_words and _META_LINE.match(stripped):
            return "metadata"
        letters = sum(1 for ch in stripped if is_letter(ch))
        if letters == 0:
            return "numeric"
        if len(words) <= self.max_tokens:
            kind = self._date_or_counter(stripped)
            if kind:
                return kind
        visible = sum(1 for ch in stripped if not ch.isspace())
        if letters / visible < 0.5:
            lettered = sum(1 for w in words if any(is_letter(ch) for ch in w))
            if lettered < self.min_words_numeric:
                return "numeric"
        return None

    @staticmethod
    def _only_urls(words: list[str]) -> bool:
        return bool(words) and all(_URL_OR_EMAIL.match(w.strip("<>()[]{}.,;،۔")) for w in words)

    def _date_or_counter(self, line: str) -> str | None:
        tokens = text_key(line).split()
        numbers = [t for t in tokens if _NUMBER_TOKEN.match(t)]
        if not numbers:
            return None
        words = [t for t in tokens if not _NUMBER_TOKEN.match(t)]
        if all(w in self._date_vocab for w in words):
            if any(w in self._date_names for w in words) or _DATE_SHAPE.search(line):
                return "timestamp"
        if words and all(w in self._counter_vocab for w in words):
            if any(w in self._counter_words for w in words):
                return "counter"
        return None

    # -- processing -----------------------------------------------------------------------
    def clean_line(self, line: str) -> tuple[str, list[str]]:
        """``line`` without its junk fragments, and the kinds removed."""
        kind = self.classify(line)
        if kind:
            return "", [kind]
        if not _FRAGMENT_SEP.search(line):
            return line, []
        fragments = [f for f in _FRAGMENT_SEP.split(line.strip()) if f.strip()]
        kinds = [self.classify(f) for f in fragments]
        if not any(kinds):
            return line, []
        kept = [f for f, k in zip(fragments, kinds, strict=True) if not k]
        return " | ".join(kept), [f"fragment:{k}" for k in kinds if k]

    def process(self, doc: Document) -> Document:
        out: list[str] = []
        changed = False
        for line in doc.text.split("\n"):
            cleaned, kinds = self.clean_line(line)
            for kind in kinds:
                self.note(doc, kind if kind.startswith("fragment:") else f"line_removed:{kind}")
            changed |= bool(kinds)
            if cleaned.strip() or not line.strip():
                out.append(cleaned)
        if not changed:
            return doc
        text = _join_lines(out)
        if not text:
            raise Drop("empty_after_junk")
        return _with_text(doc, text)


# =============================================================================================
# Document filters
# =============================================================================================
class LengthFilter(Step):
    """Drop documents under ``min_words`` whitespace-separated words (``too_few_words``) or
    under ``min_chars`` characters of stripped text (``too_few_chars``); Qalb used 10 and 50.
    The word rule is checked first. Stores ``n_words`` and ``n_chars`` in ``doc.meta``."""

    name = "length_filter"

    def __init__(self, min_words: int = 10, min_chars: int = 50, name: str | None = None):
        super().__init__(name)
        self.min_words = min_words
        self.min_chars = min_chars

    def process(self, doc: Document) -> Document:
        text = doc.text.strip()
        n_words, n_chars = len(text.split()), len(text)
        if n_words < self.min_words:
            return Dropped("too_few_words")
        if n_chars < self.min_chars:
            return Dropped("too_few_chars")
        return _with_text(doc, doc.text, n_words=n_words, n_chars=n_chars)


_IDENTIFIER = None
_IDENTIFIER_LOCK = threading.Lock()


def get_language_identifier():
    """The shared py3langid identifier with normalised probabilities (loaded once, ~0.5 s)."""
    global _IDENTIFIER
    if _IDENTIFIER is None:
        with _IDENTIFIER_LOCK:
            if _IDENTIFIER is None:
                from py3langid.langid import MODEL_FILE, LanguageIdentifier

                _IDENTIFIER = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    return _IDENTIFIER


#: Letters that Urdu uses and Arabic, Persian, Pashto, Kurdish and Uyghur do not. ہ (heh goal)
#: is excluded on purpose: normalize_unicode creates it from Arabic ه, so it proves nothing;
#: ھ is excluded because Uyghur uses it for every heh (2.3% of letters in its UDHR).
URDU_MARKERS = frozenset("ےںٹڈڑ")


def urdu_marker_share(text: str) -> tuple[float, int]:
    """Share of Arabic-script letters that are Urdu-only letters (``URDU_MARKERS``), and count."""
    counts = script_counts(text)
    arabic = counts.get("ur", 0)
    markers = sum(text.count(ch) for ch in URDU_MARKERS)
    return (markers / arabic if arabic else 0.0), markers


class LanguageIDFilter(Step):
    """Keep a document only if py3langid identifies it as its expected ``language``.

    Stores ``lang_pred``, ``lang_prob`` (normalised probability of the top label) and
    ``lang_rescued`` in ``doc.meta``. Reasons: ``lang_mismatch:<pred>`` when another language
    wins, ``lang_low_confidence:<pred>`` when the expected language wins with probability below
    ``min_confidence``.

    The Urdu rescue rule, and why it is honest: langid's Arabic-script labels (``fa``, ``ar``,
    ``ps``, ``uzs``…) overlap Urdu. py3langid 0.4 is good at Urdu (all 250 UDHR Urdu clauses
    of 3+ words come out ``ur`` with p ≥ 0.5), but short Urdu can lose (``۱۲٬۳۴۵ بار دیکھا
    گیا`` is ``fa`` at 0.76) and so may Urdu heavy with Arabic or Persian quotations. A
    document expected to be Urdu whose prediction is in
    ``urdu_rescue_labels`` (or is Urdu with low confidence) is still kept when the text itself
    says Urdu: its Urdu script purity is at least ``rescue_min_purity`` *and* the Urdu-only
    letters ے ں ٹ ڈ ڑ make up at least ``rescue_min_marker_share`` of its Arabic-script letters
    (with at least ``rescue_min_markers`` of them). Measured on the UDHR: Urdu 7.5% (no
    paragraph of 10+ words under 2.4%), Persian and Arabic 0%, Pashto 0.2%, Uyghur 0%.
    Limits: Punjabi (Shahmukhi) and Saraiki use the same letters (≈10%), and py3langid has no
    label for them (it calls their UDHR "ur"), so they pass as Urdu either way. Rescued
    documents are marked ``lang_rescued=True`` and counted as the edit ``rescued:<pred>``.
    """

    name = "language_id"
    #: Arabic-script labels of py3langid that may stand for Urdu text (only with evidence).
    URDU_RESCUE_LABELS = frozenset({"fa", "ar", "ary", "arz", "ps", "uzs", "sdh", "ug"})

    def __init__(
        self,
        min_confidence: float = 0.5,
        *,
        urdu_rescue_labels: Iterable[str] | None = None,
        rescue_min_purity: float = 0.9,
        rescue_min_marker_share: float = 0.015,
        rescue_min_markers: int = 3,
        max_chars: int = 20_000,
        name: str | None = None,
    ):
        super().__init__(name)
        self.min_confidence = min_confidence
        self.urdu_rescue_labels = frozenset(
            self.URDU_RESCUE_LABELS if urdu_rescue_labels is None else urdu_rescue_labels
        )
        self.rescue_min_purity = rescue_min_purity
        self.rescue_min_marker_share = rescue_min_marker_share
        self.rescue_min_markers = rescue_min_markers
        self.max_chars = max_chars

    def identify(self, text: str) -> tuple[str, float]:
        lang, prob = get_language_identifier().classify(text[: self.max_chars])
        return str(lang), float(prob)

    def _urdu_evidence(self, text: str) -> bool:
        counts = script_counts(text)
        total = sum(counts.values())
        purity = counts.get("ur", 0) / total if total else 0.0
        share, markers = urdu_marker_share(text)
        return (
            purity >= self.rescue_min_purity
            and share >= self.rescue_min_marker_share
            and markers >= self.rescue_min_markers
        )

    def process(self, doc: Document) -> Document | Dropped:
        pred, prob = self.identify(doc.text)
        expected = doc.language
        confident = pred == expected and prob >= self.min_confidence
        rescued = False
        if not confident and expected == "ur":
            candidates = self.urdu_rescue_labels | {expected}
            rescued = pred in candidates and self._urdu_evidence(doc.text)
        out = _with_text(
            doc, doc.text, lang_pred=pred, lang_prob=round(prob, 4), lang_rescued=rescued
        )
        if confident:
            return out
        if rescued:
            self.note(doc, f"rescued:{pred}")
            return out
        if pred == expected:
            return Dropped(f"lang_low_confidence:{pred}")
        return Dropped(f"lang_mismatch:{pred}")


class ScriptPurityFilter(Step):
    """Drop documents whose letters are not mostly in their language's script.

    ``script_purity`` (see :mod:`.scripts`) is stored in ``doc.meta["script_purity"]``; below
    ``min_purity[language]`` the reason is ``low_script_purity``. Languages without a threshold
    or without known script ranges pass unchanged (edit ``no_threshold``).
    """

    name = "script_purity"

    def __init__(self, min_purity: dict[str, float] | None = None, name: str | None = None):
        super().__init__(name)
        self.min_purity = {"ur": 0.9, "ta": 0.9, "en": 0.9} if min_purity is None else min_purity

    def process(self, doc: Document) -> Document | Dropped:
        threshold = self.min_purity.get(doc.language)
        if threshold is None or doc.language not in SCRIPT_RANGES:
            self.note(doc, "no_threshold")
            return doc
        counts = script_counts(doc.text)
        total = sum(counts.values())
        purity = counts.get(doc.language, 0) / total if total else 0.0
        out = _with_text(doc, doc.text, script_purity=round(purity, 4))
        if purity < threshold:
            return Dropped("low_script_purity")
        return out


# =============================================================================================
# Standard order
# =============================================================================================
def default_steps(
    language: str | None = None,
    *,
    markdown: bool = True,
    boilerplate_patterns: dict[str, list[str]] | list[str] | None = None,
    repeated_line_share: float = 0.3,
    repeated_line_min_docs: int = 3,
    junk_patterns: list[str] | None = None,
    min_words: int = 10,
    min_chars: int = 50,
    langid_min_confidence: float = 0.5,
    min_purity: float | dict[str, float] | None = None,
) -> list[Step]:
    """The standard cleaning order for crawled documents (deduplication comes after, corpus-wide):

    1. ``markdown_to_text`` (skip with ``markdown=False`` for plain-text sources)
    2. ``unicode_normalize`` — before any matching, so patterns see one spelling
    3. ``boilerplate_patterns`` — built-in patterns plus ``boilerplate_patterns`` (a list for
       every source, or a dict keyed by source name, ``"*"`` for every source)
    4. ``repeated_line_removal`` — per-source navigation/footers (fits on the source first)
    5. ``junk_removal`` — timestamps, counters, URLs, metadata labels, numeric debris
    6. ``length_filter`` — after the line removals, so the length is the length of the prose
    7. ``language_id``
    8. ``script_purity``

    ``language`` ("ur", "ta", "en") selects the built-in boilerplate patterns: English ones
    (sites in every language carry English furniture) plus that language's; None takes all.
    ``min_purity`` may be one number (used for ``language``, or for every language when
    ``language`` is None) or a dict per language; default 0.9. Every step still reads each
    document's own ``language``.
    """
    if language is None:
        builtin = [p for pats in BOILERPLATE_BY_LANGUAGE.values() for p in pats]
    else:
        builtin = [*BOILERPLATE_BY_LANGUAGE["en"]]
        if language != "en":
            builtin += BOILERPLATE_BY_LANGUAGE.get(language, [])
    patterns: dict[str, list[str]] = {"*": builtin}
    if boilerplate_patterns:
        extra = (
            boilerplate_patterns
            if isinstance(boilerplate_patterns, dict)
            else {"*": list(boilerplate_patterns)}
        )
        for key, pats in extra.items():
            patterns.setdefault(key, []).extend(pats or [])
    purity: dict[str, float] = {"ur": 0.9, "ta": 0.9, "en": 0.9}
    if isinstance(min_purity, dict):
        purity.update(min_purity)
    elif min_purity is not None:
        for key in [language] if language else list(purity):
            purity[key] = float(min_purity)
    steps: list[Step] = []
    if markdown:
        steps.append(MarkdownToText())
    steps += [
        UnicodeNormalize(),
        BoilerplatePatterns(patterns),
        RepeatedLineRemoval(min_share=repeated_line_share, min_docs=repeated_line_min_docs),
        JunkRemoval(junk_patterns),
        LengthFilter(min_words=min_words, min_chars=min_chars),
        LanguageIDFilter(min_confidence=langid_min_confidence),
        ScriptPurityFilter(purity),
    ]
    return steps
