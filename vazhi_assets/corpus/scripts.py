"""Which writing system a text is in, measured on its letters.

A *letter* here is any code point whose Unicode general category is ``L*`` (letters) or
``M*`` (combining marks). Marks are counted because Tamil writes its vowels after a consonant
as spacing or non-spacing marks (``ா`` U+0BBE is ``Mc``, ``ி`` U+0BBF is ``Mc``, ``்``
U+0BCD is ``Mn``) and Urdu writes its short vowels and ``ٔ`` (hamza above) as ``Mn``; ignoring
them would make Tamil look roughly a third shorter than it is. Digits, punctuation, symbols and
whitespace are not letters and are ignored everywhere in this module.

The one exception: marks from the script-neutral combining blocks (Unicode script
``Inherited``: U+0300–036F, U+1AB0–1AFF, U+1DC0–1DFF, U+20D0–20FF, U+FE20–FE2F) belong to
whatever letter they sit on, so they are skipped instead of being counted as "other".

Everything is computed from a per-character cache, so a document costs one ``Counter`` over
its characters plus a dictionary look-up per *distinct* character.
"""

from __future__ import annotations

import unicodedata
from collections import Counter

__all__ = [
    "SCRIPT_RANGES",
    "dominant_script",
    "is_letter",
    "script_counts",
    "script_of",
    "script_purity",
    "SCRIPT_ALIASES",
]

#: Code point ranges (inclusive) that make up each language's script.
SCRIPT_RANGES: dict[str, tuple[tuple[int, int], ...]] = {
    # Urdu: Arabic, Arabic Supplement, Arabic Extended-A, Presentation Forms-A and -B.
    "ur": (
        (0x0600, 0x06FF),
        (0x0750, 0x077F),
        (0x08A0, 0x08FF),
        (0xFB50, 0xFDFF),
        (0xFE70, 0xFEFF),
    ),
    # Tamil block (letters, vowel signs, Tamil digits and symbols; only L*/M* are counted).
    "ta": ((0x0B80, 0x0BFF),),
    # English: Basic Latin, Latin-1 Supplement, Latin Extended-A/-B, Latin Extended Additional.
    "en": (
        (0x0000, 0x007F),
        (0x0080, 0x00FF),
        (0x0100, 0x017F),
        (0x0180, 0x024F),
        (0x1E00, 0x1EFF),
    ),
}

#: Languages written in another language's script key: Arabic uses the Arabic block ("ur").
SCRIPT_ALIASES: dict[str, str] = {"ar": "ur"}

#: Marks that take the script of their base character (Unicode script "Inherited").
_INHERITED_MARKS: tuple[tuple[int, int], ...] = (
    (0x0300, 0x036F),
    (0x1AB0, 0x1AFF),
    (0x1DC0, 0x1DFF),
    (0x20D0, 0x20FF),
    (0xFE20, 0xFE2F),
)

OTHER = "other"
_NOT_LETTER = ""  # cache value for characters that are ignored

_char_cache: dict[str, str] = {}


def _in_ranges(cp: int, ranges: tuple[tuple[int, int], ...]) -> bool:
    return any(lo <= cp <= hi for lo, hi in ranges)


def is_letter(ch: str) -> bool:
    """True if ``ch`` counts as a letter (category L* or M*, excluding inherited marks)."""
    return bool(_classify(ch))


def _classify(ch: str) -> str:
    """Script key of ``ch``, ``"other"`` for letters of unknown scripts, ``""`` if no letter."""
    hit = _char_cache.get(ch)
    if hit is not None:
        return hit
    cat = unicodedata.category(ch)
    cp = ord(ch)
    if cat[0] not in "LM" or (cat[0] == "M" and _in_ranges(cp, _INHERITED_MARKS)):
        result = _NOT_LETTER
    else:
        result = OTHER
        for key, ranges in SCRIPT_RANGES.items():
            if _in_ranges(cp, ranges):
                result = key
                break
    _char_cache[ch] = result
    return result


def script_of(ch: str) -> str | None:
    """Script key (``"ur"``, ``"ta"``, ``"en"``, ``"other"``) of one letter; None if no letter."""
    return _classify(ch) or None


def script_counts(text: str) -> Counter[str]:
    """Number of letters per script key (``"other"`` for scripts not in ``SCRIPT_RANGES``)."""
    counts: Counter[str] = Counter()
    for ch, n in Counter(text).items():
        key = _classify(ch)
        if key:
            counts[key] += n
    return counts


def script_purity(text: str, language: str) -> float:
    """Share of the letters of ``text`` that lie in ``language``'s script (0.0 if no letters).

    >>> script_purity("ہر شخص 2024", "ur")
    1.0
    """
    language = SCRIPT_ALIASES.get(language, language)
    if language not in SCRIPT_RANGES:
        raise KeyError(f"no script ranges for language {language!r}; known: {list(SCRIPT_RANGES)}")
    counts = script_counts(text)
    total = sum(counts.values())
    if not total:
        return 0.0
    return counts[language] / total


def dominant_script(text: str) -> str | None:
    """Script key holding the most letters (``"other"`` possible); None for text without letters.

    Ties are broken in the order of ``SCRIPT_RANGES`` (then ``"other"``).
    """
    counts = script_counts(text)
    if not counts:
        return None
    order = [*SCRIPT_RANGES, OTHER]
    return max(order, key=lambda key: (counts[key], -order.index(key)))
