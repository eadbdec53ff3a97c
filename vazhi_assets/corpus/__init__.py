"""Text cleaning for the Urdu/Tamil corpora: plain, Dagster-free building blocks.

* :mod:`.scripts` — which script a text's letters are in (``script_purity``).
* :mod:`.normalize` — Unicode/whitespace normalisation and the dedup key ``text_key``.
* :mod:`.steps` — :class:`Document` and the :class:`Step` base class, with its stats.
* :mod:`.edit_steps` — steps that edit text (markdown, normalisation, boilerplate, junk lines).
* :mod:`.filters` — steps that keep or drop whole documents (length, language ID, script).
* :mod:`.pipeline` — :class:`CleaningPipeline` runs steps and builds the retention funnel;
  :func:`default_steps` is the standard order.
* :mod:`.dedup` — exact and MinHash-LSH deduplication across sources.
"""

from .dedup import DedupResult, ExactDedup, MinHashDedup, exact_dedup, minhash_dedup
from .edit_steps import (
    BoilerplatePatterns,
    JunkRemoval,
    MarkdownToText,
    RepeatedLineRemoval,
    UnicodeNormalize,
)
from .filters import LanguageIDFilter, LengthFilter, ScriptPurityFilter
from .normalize import normalize_unicode, normalize_whitespace, text_key
from .pipeline import CleaningPipeline, CleaningResult, DroppedRecord, default_steps
from .scripts import SCRIPT_RANGES, dominant_script, script_purity
from .steps import Document, Drop, Dropped, Step, StepStats

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
