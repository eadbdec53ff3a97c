"""Unicode and whitespace normalisation for Urdu, Tamil and English text.

Three functions with different jobs:

``normalize_unicode(text, language)``
    Changes *what is written* as little as possible while giving every letter one encoding.
    Its output is the text we keep and train on.

``normalize_whitespace(text)``
    Line and space layout only.

``text_key(text)``
    A lossy matching key for exact deduplication and MinHash shingles. It may fold spelling
    variants and drop punctuation because nobody reads it.

Decisions taken in ``normalize_unicode`` (all languages)
    * NFC. Invisible format characters that only steer rendering are removed: bidi marks and
      embeddings (LRM, RLM, ALM, LRE…PDF, LRI…PDI), BOM/ZWNBSP, word joiner, soft hyphen, C0/C1
      control characters other than tab and newline, and tatweel (U+0640, pure elongation).
    * ZERO WIDTH SPACE is removed, except that in Urdu a ZWSP *between two Arabic-script letters*
      becomes ZWNJ: there it was used as an invisible word break, and ZWNJ keeps the letters
      unjoined as the writer intended.
    * ZWNJ (U+200C) and ZWJ (U+200D) are kept: ZWNJ separates morphemes in Urdu/Persian
      spelling and chooses Tamil conjunct shapes; ZWJ picks letter shapes and builds emoji.
      Only meaningless copies are dropped: repeated runs collapse to one, and those touching
      whitespace or the start/end of a line are removed.

Urdu (``"ur"``)
    * Arabic Presentation Forms (U+FB50–FDCF, U+FE70–FEFE, typical of text extracted from PDFs
      and legacy encodings) are folded to the base letters with NFKC, per character. The word
      ligatures U+FDF0–FDFF (e.g. ﷺ, ﷲ) are left alone: they are symbols with a meaning.
    * Arabic yeh ``ي`` U+064A and alef maksura ``ى`` U+0649 become Farsi/Urdu yeh ``ی`` U+06CC
      in every position. Urdu has no dotted-yeh letter of its own: the dots in a medial ``ی`` are
      only its shape, and the hamza seat ``ئ`` is a different code point (U+0626) that is kept.
      ``ی`` + hamza above (U+06CC U+0654) is *not* turned into ``ئ``: it is the izafat spelling
      of a word ending in ``ی`` (``آزادیٔ فکر`` in the UDHR), not a hamza seat.
    * Arabic kaf ``ك`` U+0643 becomes keheh ``ک`` U+06A9.
    * Arabic heh ``ه`` U+0647 becomes heh goal ``ہ`` U+06C1, and ``ۀ`` U+06C0 becomes ``ۂ``
      U+06C2. Heh doachashmee ``ھ`` U+06BE (aspiration, as in ``بھی``) is never touched and never
      produced. Known limit: texts typed on Arabic/Persian keyboards sometimes use ``ه`` for
      *both* letters (``بهی`` for ``بھی`` next to ``بهت`` for ``بہت``); telling them apart needs a
      lexicon, so such ``ه`` become ``ہ`` and the aspiration spelling stays wrong.
    * Teh marbuta ``ة`` U+0629 becomes Urdu teh marbuta goal ``ۃ`` U+06C3 (``زکوٰۃ``, ``صلوٰۃ``).
    * Arabic-Indic digits ``٠…٩`` U+0660–0669 become Extended Arabic-Indic (Urdu) digits
      ``۰…۹`` U+06F0–06F9. ASCII digits, common in Urdu web text, are kept as written.

Tamil (``"ta"``)
    * NFC already composes the two-part vowel signs: ``ெ``+``ா`` → ``ொ`` U+0BCA, ``ே``+``ா`` →
      ``ோ`` U+0BCB, ``ெ``+``ௗ`` → ``ௌ`` U+0BCC, and ``ஒ``+``ௗ`` → ``ஔ`` U+0B94.
    * Text converted from legacy visual-order fonts puts the pre-base vowel signs ``ெ ே ை``
      *before* their consonant (``ெகா`` for ``கொ``). A pre-base sign that does not follow a
      consonant (where it is invalid) is moved behind the consonant after it, and NFC then
      composes any two-part sign.
    * A dependent vowel sign or pulli typed twice in a row (``க்்``) is kept once.
    * Not changed, because it is ambiguous: ``ஒள`` for ``ஔ`` and ``ெள`` for ``ௌ`` (``ஒளி``,
      "light", is a real word). Tamil digits ``௦…௯`` are kept.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["normalize_unicode", "normalize_whitespace", "text_key"]

ZWSP, ZWNJ, ZWJ = "\u200b", "\u200c", "\u200d"

# --- format characters removed everywhere --------------------------------------------------
_REMOVE_ALWAYS = (
    "\u200e\u200f\u061c"  # LRM, RLM, ARABIC LETTER MARK
    "\u202a\u202b\u202c\u202d\u202e"  # LRE, RLE, PDF, LRO, RLO
    "\u2066\u2067\u2068\u2069"  # LRI, RLI, FSI, PDI
    "\ufeff\u2060\u2061\u2062\u2063\u2064"  # BOM/ZWNBSP, word joiner, invisible operators
    "\u00ad\u0640\ufffc"  # soft hyphen, tatweel, object replacement
)
_CONTROL_KEEP = {"\t", "\n", "\r", "\x0b", "\x0c"}  # whitespace controls: normalize_whitespace
_REMOVE_TABLE: dict[int, None] = {ord(c): None for c in _REMOVE_ALWAYS}
for _cp in [*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0)]:
    if chr(_cp) not in _CONTROL_KEEP and _cp != 0x85:  # U+0085 NEL is a line break
        _REMOVE_TABLE[_cp] = None

# Joiners next to whitespace, or at the start/end of the text, do nothing.
_JOINER_RUNS = re.compile(r"([\u200c\u200d])[\u200c\u200d]*")
_STRAY_JOINERS = re.compile(r"(?:^|(?<=\s))[\u200c\u200d]+|[\u200c\u200d]+(?=\s|$)")

# --- Urdu ------------------------------------------------------------------------------------
_ARABIC_LETTER = r"[\u0620-\u064a\u066e-\u06d3\u06d5\u06fa-\u06ff\u0750-\u077f\u08a0-\u08ff]"
_URDU_ZWSP = re.compile(rf"(?<={_ARABIC_LETTER}){ZWSP}(?={_ARABIC_LETTER})")
_PRESENTATION_FORM = re.compile(r"[\ufb50-\ufdcf\ufe70-\ufefe]")
_URDU_TABLE = {
    0x064A: 0x06CC,  # ARABIC LETTER YEH -> FARSI YEH
    0x0649: 0x06CC,  # ALEF MAKSURA -> FARSI YEH
    0x0643: 0x06A9,  # ARABIC LETTER KAF -> KEHEH
    0x0647: 0x06C1,  # ARABIC LETTER HEH -> HEH GOAL
    0x06C0: 0x06C2,  # HEH WITH YEH ABOVE -> HEH GOAL WITH HAMZA ABOVE
    0x0629: 0x06C3,  # TEH MARBUTA -> TEH MARBUTA GOAL
    **{0x0660 + i: 0x06F0 + i for i in range(10)},  # Arabic-Indic -> Extended (Urdu) digits
}

# --- Tamil -----------------------------------------------------------------------------------
_TA_CONSONANT = "\u0b95-\u0bb9"
_TA_PREBASE_FIRST = re.compile(rf"(?<![{_TA_CONSONANT}])([\u0bc6\u0bc7\u0bc8])([{_TA_CONSONANT}])")
_TA_DOUBLED_SIGN = re.compile(r"([\u0bbe-\u0bcd\u0bd7])\1+")

# --- whitespace ------------------------------------------------------------------------------
_LINE_BREAKS = re.compile(r"\r\n|[\r\x0b\x0c\x85\u2028\u2029]")
_SPACES = re.compile(r"[ \t\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]+")
_BLANK_RUNS = re.compile(r"\n{3,}")


def _remove_format_chars(text: str, language: str) -> str:
    text = text.translate(_REMOVE_TABLE)
    if ZWSP in text:
        if language == "ur":
            text = _URDU_ZWSP.sub(ZWNJ, text)
        text = text.replace(ZWSP, "")
    if ZWNJ in text or ZWJ in text:
        text = _JOINER_RUNS.sub(r"\1", text)
        text = _STRAY_JOINERS.sub("", text)
    return text


def _normalize_urdu(text: str) -> str:
    if _PRESENTATION_FORM.search(text):
        text = _PRESENTATION_FORM.sub(lambda m: unicodedata.normalize("NFKC", m.group()), text)
    text = text.translate(_URDU_TABLE)
    # e.g. ہ + ٔ from a mapped ه + ٔ composes to ۂ only now.
    return unicodedata.normalize("NFC", text)


def _normalize_tamil(text: str) -> str:
    text = _TA_PREBASE_FIRST.sub(r"\2\1", text)
    text = _TA_DOUBLED_SIGN.sub(r"\1", text)
    return unicodedata.normalize("NFC", text)


def normalize_unicode(text: str, language: str) -> str:
    """One encoding per letter for ``language`` (``"ur"``, ``"ta"``, ``"en"``; others: NFC only).

    See the module docstring for every rule. Idempotent: applying it twice changes nothing.
    """
    text = unicodedata.normalize("NFC", _remove_format_chars(text, language))
    if language == "ur":
        text = _normalize_urdu(text)
    elif language == "ta":
        text = _normalize_tamil(text)
    return text


def normalize_whitespace(text: str) -> str:
    """Unify line breaks, turn NBSP/tabs/odd spaces into one space, strip every line, and keep at
    most one blank line between paragraphs. Leading/trailing blank lines are removed."""
    text = _LINE_BREAKS.sub("\n", text)
    text = _SPACES.sub(" ", text)
    text = "\n".join(line.strip() for line in text.split("\n"))
    return _BLANK_RUNS.sub("\n\n", text).strip()


# --- matching key ----------------------------------------------------------------------------
_KEY_TABLE: dict[int, str | None] | None = None
_KEY_LETTER_FOLDS = {
    # Urdu/Arabic letter variants (as in normalize_unicode, so the key also works on raw text)
    "\u064a": "\u06cc",  # ي -> ی
    "\u0649": "\u06cc",  # ى -> ی
    "\u0643": "\u06a9",  # ك -> ک
    "\u0647": "\u06c1",  # ه -> ہ
    "\u0629": "\u06c3",  # ة -> ۃ
    "\u06d5": "\u06c1",  # ە (decomposed ۀ) -> ہ
    "\u0671": "\u0627",  # ٱ -> ا
}
_KEY_ARABIC_MARKS = frozenset(
    [
        *range(0x064B, 0x0660),  # harakat, shadda, sukun, madda, hamza above/below, …
        0x0670,  # superscript alef
        *range(0x06D6, 0x06DD),
        *range(0x06DF, 0x06E5),
        0x06E7,
        0x06E8,
        *range(0x06EA, 0x06EE),
    ]
)
_KEY_DOUBLE_YEH = re.compile("\u06cc{2,}")


def _key_char(ch: str) -> str:
    """Key form of one character already decomposed (NFKD) and casefolded."""
    cp = ord(ch)
    if cp in _KEY_ARABIC_MARKS or cp == 0x0640:
        return ""
    if ch in _KEY_LETTER_FOLDS:
        return _KEY_LETTER_FOLDS[ch]
    cat = unicodedata.category(ch)
    if cat[0] in "PSZ" or cat == "Cc":
        return " "
    if cat == "Cf":
        return ""  # ZWNJ/ZWJ, bidi marks, BOM, soft hyphen
    if cat == "Nd":
        return str(unicodedata.decimal(ch))
    return ch


def _key_table() -> dict[int, str | None]:
    """Translation table for ``text_key``, built once (BMP + emoji planes, ~0.2 s).

    Every character maps straight to its final key form: its compatibility decomposition
    (NFKD: presentation forms, full-width forms, ligatures, ``آ`` → ``ا`` + madda, ``ئ`` → ``ي``
    + hamza, Tamil ``ொ`` → ``ெ`` + ``ா``), casefolded, with every resulting character folded by
    ``_key_char``. One ``str.translate`` then does the work of NFKC + folding, without paying
    for NFKC on Tamil text (whose vowel signs make the normalisation quick-check fail).
    """
    global _KEY_TABLE
    if _KEY_TABLE is None:
        table: dict[int, str | None] = {}
        for cp in [*range(0x10000), *range(0x1F000, 0x1FB00)]:
            ch = chr(cp)
            if 0xD800 <= cp <= 0xDFFF:
                continue
            decomposed = unicodedata.normalize("NFKD", ch).casefold()
            out = "".join(_key_char(c) for c in decomposed)
            if out != ch:
                table[cp] = out or None
        _KEY_TABLE = table
    return _KEY_TABLE


_WORD_KEYS: dict[str, str] = {}
_WORD_KEYS_MAX = 500_000


def _word_key(word: str) -> str:
    """Key of one whitespace-free token (cached: word frequencies are Zipfian, so most tokens of
    a corpus are looked up, not recomputed)."""
    key = _WORD_KEYS.get(word)
    if key is None:
        key = word.casefold().translate(_key_table())
        if "\u06cc\u06cc" in key:
            key = _KEY_DOUBLE_YEH.sub("\u06cc", key)
        key = " ".join(key.split())
        if len(_WORD_KEYS) >= _WORD_KEYS_MAX:
            _WORD_KEYS.clear()
        _WORD_KEYS[word] = key
    return key


def text_key(text: str) -> str:
    """Lossy key for matching: equal keys mean "the same text" for deduplication.

    Casefold, compatibility-decompose (NFKD) every character, every digit to ASCII,
    punctuation/symbols to spaces, format characters (ZWNJ/ZWJ, bidi marks) and tatweel
    removed, Arabic diacritics, madda and hamza marks removed, Urdu letter variants folded (so
    ``لئے``/``لیے``, ``چاہیئے``/``چاہیے``, ``آزادیٔ``/``آزادی``, ``ك``/``ک`` match), whitespace
    collapsed to single spaces. Tamil vowel signs and pulli are kept (in decomposed order).
    The key is for comparing, never for display. Computed word by word with a cache.
    """
    return " ".join(filter(None, map(_word_key, text.split())))
