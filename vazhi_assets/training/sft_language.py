"""Is an SFT answer in its declared language? Script purity plus the Urdu/Arabic orthography.

``ur`` and ``ar`` share the Arabic Unicode block, so script purity alone cannot tell them
apart. :func:`verify_language` looks for letters only Urdu uses (``ٹ ڈ ڑ ں ے ہ ھ`` …) and
letters Urdu spelling never uses but Arabic text is full of (``ي ك ه ة ى``; Urdu writes
``ی ک ہ ۃ``; the Urdu input is normalised first, so keyboard variants do not count). A text
with neither kind is labelled ``"arabic-script"``: it is accepted for both languages but
flagged.
"""

from __future__ import annotations

from vazhi_assets.corpus.scripts import script_counts, script_purity
from vazhi_assets.training.sft_samples import Sample

#: Letters of the Arabic block that Urdu uses and Arabic does not.
URDU_ONLY_LETTERS = frozenset("ٹڈڑںےۓہۂۃھ")
#: Letters Urdu spelling replaces (ي→ی, ك→ک, ه→ہ/ھ, ة→ۃ, ى→ی) but Arabic text is full of.
ARABIC_ONLY_LETTERS = frozenset("يكهةى")
URDU_FULL_STOP = "۔"
_SCRIPT_OF_LANGUAGE = {"ur": "ur", "ar": "ur", "ta": "ta", "en": "en"}  # "ur" = Arabic block


def arabic_block_label(text: str) -> str:
    """``"ur"``, ``"ar"`` or ``"arabic-script"`` for text in the Arabic block, from the
    letters only one of the two orthographies uses (the majority wins if both occur)."""
    urdu = sum(1 for ch in text if ch in URDU_ONLY_LETTERS) + text.count(URDU_FULL_STOP)
    arabic = sum(1 for ch in text if ch in ARABIC_ONLY_LETTERS)
    if urdu > arabic:
        return "ur"
    if arabic > urdu:
        return "ar"
    return "arabic-script"


def verify_language(sample: Sample) -> tuple[str, float]:
    """``(label, purity)`` of the assistant text, by character analysis.

    ``label`` is the dominant script's language (``"ta"``, ``"en"``, ``"other"``, ``"none"``
    without letters); in the Arabic block it is ``"ur"``, ``"ar"`` or ``"arabic-script"`` (see
    :func:`arabic_block_label`). ``purity`` is the share of letters in the script of the
    sample's *declared* language (the Arabic block for both ``ur`` and ``ar``).
    """
    text = sample.assistant_text
    counts = script_counts(text)
    script = _SCRIPT_OF_LANGUAGE.get(sample.language)
    purity = script_purity(text, script) if script else 0.0
    if not counts:
        return "none", purity
    dominant = max(counts, key=lambda k: (counts[k], k))
    label = arabic_block_label(text) if dominant == "ur" else dominant
    return label, purity


def language_verdict(
    sample: Sample, min_purity: float = 0.7
) -> tuple[str | None, str | None, float, str]:
    """(reason to drop or None, reason to flag or None, purity, label)."""
    label, purity = verify_language(sample)
    declared = sample.language
    if label == "none":
        return "no letters in the assistant text", None, purity, label
    if purity < min_purity:
        return (f"script mismatch: declared {declared}, assistant text looks {label} "
                f"(purity {purity:.2f} < {min_purity})"), None, purity, label
    if declared in ("ur", "ar"):
        if label == "arabic-script":
            return None, f"ambiguous Arabic-script text declared {declared}", purity, label
        if label != declared:
            return (f"Urdu/Arabic confusion: declared {declared}, orthography says {label}",
                    None, purity, label)
    return None, None, purity, label
