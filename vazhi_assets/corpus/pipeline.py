"""Run cleaning steps in order and keep the books: what survived, what was dropped where, why.

``CleaningPipeline(steps).run(docs)`` runs stage by stage: every step sees the complete list of
documents that survived the previous step (so a step that must ``fit`` on a whole source, like
repeated-line removal, fits exactly on what reaches it). Corpus-wide steps (the dedup steps in
:mod:`.dedup`) fit in the same way because each step owns its ``run``.

The result gives the per-source retention funnel (one row per source and step) and the overall
retention per source. :func:`default_steps` is the standard order of the cleaning steps.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .edit_steps import (
    BOILERPLATE_BY_LANGUAGE,
    BoilerplatePatterns,
    JunkRemoval,
    MarkdownToText,
    RepeatedLineRemoval,
    UnicodeNormalize,
)
from .filters import LanguageIDFilter, LengthFilter, ScriptPurityFilter
from .steps import Document, Step, StepStats

__all__ = ["CleaningPipeline", "CleaningResult", "DroppedRecord", "default_steps"]


@dataclass(frozen=True)
class DroppedRecord:
    """One dropped document: where (``step``) and why (``reason``). ``doc`` is the document
    as it entered the dropping step."""

    doc_id: str
    source: str
    step: str
    reason: str
    doc: Document | None = None

    def as_dict(self, *, text: bool = True) -> dict[str, Any]:
        row: dict[str, Any] = {
            "doc_id": self.doc_id,
            "source": self.source,
            "language": self.doc.language if self.doc else None,
            "url": self.doc.url if self.doc else None,
            "step": self.step,
            "reason": self.reason,
        }
        if text:
            row["text"] = self.doc.text if self.doc else None
        return row


def _top_reasons(reasons: Counter[str], n: int) -> str:
    return ", ".join(f"{reason}={count}" for reason, count in reasons.most_common(n))


@dataclass
class CleaningResult:
    """Kept documents, dropped records and the stats of every step, in order."""

    kept: list[Document]
    dropped: list[DroppedRecord]
    stats: list[StepStats]
    input_by_source: Counter[str] = field(default_factory=Counter)
    seconds_by_step: dict[str, float] = field(default_factory=dict)

    def funnel(self, top: int = 3) -> list[dict[str, Any]]:
        """Rows ``{source, step, order, seen, kept, dropped, modified, top_reasons}``.

        One row per source and step, ``order`` starting at 0. For each source and step
        ``seen == kept + dropped``, and a step's ``seen`` equals the previous step's ``kept``.
        A source that lost every document earlier still gets rows (with zeros), so the funnel
        is rectangular. ``top_reasons`` is ``"reason=count, …"`` for the ``top`` commonest.
        """
        rows: list[dict[str, Any]] = []
        sources = sorted(self.input_by_source)
        for order, stats in enumerate(self.stats):
            for source in sources:
                sub = stats.by_source.get(source) or StepStats(stats.step)
                rows.append(
                    {
                        "source": source,
                        "step": stats.step,
                        "order": order,
                        "seen": sub.seen,
                        "kept": sub.kept,
                        "dropped": sub.dropped,
                        "modified": sub.modified,
                        "top_reasons": _top_reasons(sub.reasons, top),
                    }
                )
        return rows

    def retention(self) -> dict[str, dict[str, Any]]:
        """Per source: ``input`` documents, ``kept`` documents and ``retention`` (kept/input)."""
        kept = Counter(doc.source for doc in self.kept)
        return {
            source: {
                "input": n,
                "kept": kept[source],
                "retention": round(kept[source] / n, 4) if n else 0.0,
            }
            for source, n in sorted(self.input_by_source.items())
        }

    def reasons(self) -> Counter[tuple[str, str]]:
        """Drop counts by ``(step, reason)`` over all sources."""
        return Counter((r.step, r.reason) for r in self.dropped)

    def step_stats(self, name: str) -> StepStats:
        for stats in self.stats:
            if stats.step == name:
                return stats
        raise KeyError(name)


class CleaningPipeline:
    """An ordered list of steps. Step names must be unique (they label the funnel)."""

    def __init__(self, steps: Sequence[Step]):
        names = [s.name for s in steps]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"step names must be unique, repeated: {duplicates}")
        self.steps = list(steps)

    def run(self, docs: Sequence[Document]) -> CleaningResult:
        """Run every step on the documents that survived the previous one. Stats are reset at
        the start, so running twice gives the same numbers."""
        current = list(docs)
        input_by_source = Counter(doc.source for doc in current)
        dropped: list[DroppedRecord] = []
        seconds: dict[str, float] = {}
        for step in self.steps:
            step.reset_stats()
            started = time.perf_counter()
            current, lost = step.run(current)
            seconds[step.name] = round(time.perf_counter() - started, 4)
            dropped += [
                DroppedRecord(doc.doc_id, doc.source, name, reason, doc)
                for doc, name, reason in lost
            ]
        return CleaningResult(
            kept=current,
            dropped=dropped,
            stats=[step.stats for step in self.steps],
            input_by_source=input_by_source,
            seconds_by_step=seconds,
        )

    def __repr__(self) -> str:
        return f"CleaningPipeline([{', '.join(s.name for s in self.steps)}])"


# =============================================================================================
# Standard order
# =============================================================================================
def default_steps(
    language: str | None = None,
    *,
    markdown: bool = True,
    boilerplate_patterns: dict[str, list[str]] | list[str] | None = None,
    repeated_line_share: float = 0.3,
    repeated_line_min_docs: int = 3,
    junk_patterns: list[str] | None = None,
    min_words: int = 10,
    min_chars: int = 50,
    langid_min_confidence: float = 0.5,
    min_purity: float | dict[str, float] | None = None,
) -> list[Step]:
    """The standard cleaning order for crawled documents (deduplication comes after, corpus-wide):

    1. ``markdown_to_text`` (skip with ``markdown=False`` for plain-text sources)
    2. ``unicode_normalize`` — before any matching, so patterns see one spelling
    3. ``boilerplate_patterns`` — built-in patterns plus ``boilerplate_patterns`` (a list for
       every source, or a dict keyed by source name, ``"*"`` for every source)
    4. ``repeated_line_removal`` — per-source navigation/footers (fits on the source first)
    5. ``junk_removal`` — timestamps, counters, URLs, metadata labels, numeric debris
    6. ``length_filter`` — after the line removals, so the length is the length of the prose
    7. ``language_id``
    8. ``script_purity``

    ``language`` ("ur", "ta", "en") selects the built-in boilerplate patterns: English ones
    (sites in every language carry English furniture) plus that language's; None takes all.
    ``min_purity`` may be one number (used for ``language``, or for every language when
    ``language`` is None) or a dict per language; default 0.9. Every step still reads each
    document's own ``language``.
    """
    if language is None:
        builtin = [p for pats in BOILERPLATE_BY_LANGUAGE.values() for p in pats]
    else:
        builtin = [*BOILERPLATE_BY_LANGUAGE["en"]]
        if language != "en":
            builtin += BOILERPLATE_BY_LANGUAGE.get(language, [])
    patterns: dict[str, list[str]] = {"*": builtin}
    if boilerplate_patterns:
        extra = (
            boilerplate_patterns
            if isinstance(boilerplate_patterns, dict)
            else {"*": list(boilerplate_patterns)}
        )
        for key, pats in extra.items():
            patterns.setdefault(key, []).extend(pats or [])
    purity: dict[str, float] = {"ur": 0.9, "ta": 0.9, "en": 0.9}
    if isinstance(min_purity, dict):
        purity.update(min_purity)
    elif min_purity is not None:
        for key in [language] if language else list(purity):
            purity[key] = float(min_purity)
    steps: list[Step] = []
    if markdown:
        steps.append(MarkdownToText())
    steps += [
        UnicodeNormalize(),
        BoilerplatePatterns(patterns),
        RepeatedLineRemoval(min_share=repeated_line_share, min_docs=repeated_line_min_docs),
        JunkRemoval(junk_patterns),
        LengthFilter(min_words=min_words, min_chars=min_chars),
        LanguageIDFilter(min_confidence=langid_min_confidence),
        ScriptPurityFilter(purity),
    ]
    return steps
