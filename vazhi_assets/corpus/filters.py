"""Cleaning steps that keep or drop whole documents: length, language ID (with the Urdu
rescue rule) and script purity. They edit nothing but ``doc.meta``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from .scripts import SCRIPT_RANGES, script_counts
from .steps import Document, Dropped, Step, with_text

__all__ = [
    "URDU_MARKERS",
    "LanguageIDFilter",
    "LengthFilter",
    "ScriptPurityFilter",
    "get_language_identifier",
    "urdu_marker_share",
]


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
        return with_text(doc, doc.text, n_words=n_words, n_chars=n_chars)


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
        out = with_text(
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
        out = with_text(doc, doc.text, script_purity=round(purity, 4))
        if purity < threshold:
            return Dropped("low_script_purity")
        return out
