"""Text cleaning for the Urdu/Tamil corpora: plain, Dagster-free building blocks.

* :mod:`.scripts` — which script a text's letters are in (``script_purity``).
* :mod:`.normalize` — Unicode/whitespace normalisation and the dedup key ``text_key``.
* :mod:`.steps` — :class:`Document` and the cleaning steps, each with its own stats.
* :mod:`.pipeline` — :class:`CleaningPipeline` runs steps and builds the retention funnel.
* :mod:`.dedup` — exact and MinHash-LSH deduplication across sources.
"""

from .dedup import DedupResult, ExactDedup, MinHashDedup, exact_dedup, minhash_dedup
from .normalize import normalize_unicode, normalize_whitespace, text_key
from .pipeline import CleaningPipeline, CleaningResult, DroppedRecord
from .scripts import SCRIPT_RANGES, dominant_script, script_purity
from .steps import (
    BoilerplatePatterns,
    Document,
    Drop,
    Dropped,
    JunkRemoval,
    LanguageIDFilter,
    LengthFilter,
    MarkdownToText,
    RepeatedLineRemoval,
    ScriptPurityFilter,
    Step,
    StepStats,
    UnicodeNormalize,
    default_steps,
)

__all__ = [
    "SCRIPT_RANGES",
    "BoilerplatePatterns",
    "CleaningPipeline",
    "CleaningResult",
    "DedupResult",
    "Document",
    "Drop",
    "DroppedRecord",
    "Dropped",
    "ExactDedup",
    "JunkRemoval",
    "LanguageIDFilter",
    "LengthFilter",
    "MarkdownToText",
    "MinHashDedup",
    "RepeatedLineRemoval",
    "ScriptPurityFilter",
    "Step",
    "StepStats",
    "UnicodeNormalize",
    "default_steps",
    "dominant_script",
    "exact_dedup",
    "minhash_dedup",
    "normalize_unicode",
    "normalize_whitespace",
    "script_purity",
    "text_key",
]
