"""Cleaning steps that edit a document's text: markdown to plain text, Unicode normalisation,
and removal of boilerplate lines, lines repeated across a source, and junk lines (timestamps,
counters, URLs, metadata labels, numeric debris). A document is dropped only when nothing is
left of it.
"""

from __future__ import annotations

import html
import math
import re
from collections import Counter, defaultdict
from collections.abc import Sequence

from .normalize import normalize_unicode, normalize_whitespace, text_key
from .scripts import is_letter
from .steps import Document, Drop, Step, join_lines, with_text

__all__ = [
    "BOILERPLATE_BY_LANGUAGE",
    "DEFAULT_BOILERPLATE",
    "BoilerplatePatterns",
    "JunkRemoval",
    "MarkdownToText",
    "RepeatedLineRemoval",
    "UnicodeNormalize",
]


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
        return with_text(doc, text)


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
        return with_text(doc, text)


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
        text = join_lines(kept)
        if not text:
            raise Drop("empty_after_boilerplate")
        return with_text(doc, text)


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
        text = join_lines(kept)
        if not text:
            raise Drop("empty_after_repeated_lines")
        return with_text(doc, text)


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
        text = join_lines(out)
        if not text:
            raise Drop("empty_after_junk")
        return with_text(doc, text)
