"""Cleaning steps: small named units that keep, edit or drop one document at a time.

Every step is a :class:`Step` with

* ``name`` — what the funnel calls it;
* ``process(doc)`` — returns the document (the same object, or an edited copy made with
  :func:`dataclasses.replace`; input documents are never mutated), or drops it with a short
  reason such as ``"too_few_words"`` by raising :class:`Drop` or returning :class:`Dropped`;
* ``fit(docs)`` — only for steps that must see a whole source first
  (``needs_fit = True``, e.g. :class:`RepeatedLineRemoval`);
* ``stats`` — a :class:`StepStats` with seen/kept/dropped/modified, drop ``reasons`` and
  ``edits`` (what was changed inside kept documents, e.g. ``"line_removed:timestamp"``), overall
  and per source in ``stats.by_source``.

``apply(doc)`` runs ``process`` and records the stats; ``run(docs)`` does that for a list (after
``fit`` if the step needs it) and returns the kept documents and ``(doc, step, reason)`` for the
dropped ones. Steps hold no Dagster or I/O code and are testable on one document.

The steps themselves: :mod:`.edit_steps` (text edits and line removal) and :mod:`.filters`
(keep or drop whole documents); :func:`~.pipeline.default_steps` puts them in the standard
order.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from .normalize import normalize_whitespace

__all__ = [
    "Document",
    "Drop",
    "Dropped",
    "DroppedDoc",
    "Step",
    "StepStats",
    "join_lines",
    "with_text",
]


# =============================================================================================
# Documents and statistics
# =============================================================================================
@dataclass
class Document:
    """One text with where it came from. ``language`` is the expected language ("ur", "ta",
    "en"), set by the source, and is what the filters check the text against."""

    doc_id: str
    text: str
    source: str
    language: str
    url: str = ""
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class StepStats:
    """Counts for one step; ``by_source`` holds the same counts per document source.

    Invariant (checked in the tests): ``seen == kept + dropped``; ``modified <= kept`` counts
    kept documents whose text the step changed. ``reasons`` counts drop reasons; ``edits``
    counts changes inside kept or dropped documents (lines removed and why).
    """

    step: str
    seen: int = 0
    kept: int = 0
    dropped: int = 0
    modified: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    edits: Counter[str] = field(default_factory=Counter)
    by_source: dict[str, StepStats] = field(default_factory=dict)

    def source(self, source: str) -> StepStats:
        """The per-source counts for ``source`` (created on first use)."""
        stats = self.by_source.get(source)
        if stats is None:
            stats = self.by_source[source] = StepStats(self.step)
        return stats

    def _add(self, source: str, attr: str, n: int = 1) -> None:
        setattr(self, attr, getattr(self, attr) + n)
        sub = self.source(source)
        setattr(sub, attr, getattr(sub, attr) + n)

    def record(self, source: str, *, kept: bool, modified: bool = False, reason: str = "") -> None:
        """Count one document decision."""
        self._add(source, "seen")
        if kept:
            self._add(source, "kept")
            if modified:
                self._add(source, "modified")
        else:
            self._add(source, "dropped")
            self.reasons[reason] += 1
            self.source(source).reasons[reason] += 1

    def note(self, source: str, edit: str, n: int = 1) -> None:
        """Count an edit (e.g. one removed line) without deciding about the document."""
        if n:
            self.edits[edit] += n
            self.source(source).edits[edit] += n

    def as_dict(self, *, per_source: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "step": self.step,
            "seen": self.seen,
            "kept": self.kept,
            "dropped": self.dropped,
            "modified": self.modified,
            "reasons": dict(self.reasons.most_common()),
            "edits": dict(self.edits.most_common()),
        }
        if per_source:
            out["by_source"] = {
                src: sub.as_dict(per_source=False) for src, sub in sorted(self.by_source.items())
            }
        return out


class Drop(Exception):  # noqa: N818 - it is a verdict, not an error
    """Raised by ``Step.process`` to drop the document; ``reason`` goes into the stats."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Dropped:
    """Alternative to raising :class:`Drop`: ``process`` may return ``Dropped("reason")``."""

    reason: str


DroppedDoc = tuple[Document, str, str]  # (document, step name, reason)


# =============================================================================================
# Step base class
# =============================================================================================
class Step(ABC):
    """Base class; subclasses set ``name`` and implement ``process``."""

    name: str = "step"
    needs_fit: bool = False

    def __init__(self, name: str | None = None):
        if name is not None:
            self.name = name
        self.stats = StepStats(self.name)

    def reset_stats(self) -> None:
        self.stats = StepStats(self.name)

    def fit(self, docs: Sequence[Document]) -> None:  # noqa: B027 - optional hook
        """Look at all documents before processing them (default: nothing)."""

    @abstractmethod
    def process(self, doc: Document) -> Document | Dropped:
        """Return the (possibly edited) document, or drop it with a reason."""

    def note(self, doc: Document, edit: str, n: int = 1) -> None:
        """Record an edit made to ``doc`` (for use inside ``process``)."""
        self.stats.note(doc.source, edit, n)

    def judge(self, doc: Document) -> tuple[Document | None, str]:
        """Process ``doc`` and record it: ``(new_doc, "")`` if kept, ``(None, reason)`` if not."""
        try:
            out = self.process(doc)
        except Drop as verdict:
            out = Dropped(verdict.reason)
        if isinstance(out, Dropped):
            self.stats.record(doc.source, kept=False, reason=out.reason)
            return None, out.reason
        self.stats.record(doc.source, kept=True, modified=out.text != doc.text)
        return out, ""

    def apply(self, doc: Document) -> Document | None:
        """Process one document: the (possibly edited) document, or None if dropped."""
        return self.judge(doc)[0]

    def run(self, docs: Sequence[Document]) -> tuple[list[Document], list[DroppedDoc]]:
        """Fit (if the step needs it), then judge every document in order."""
        docs = list(docs)
        if self.needs_fit:
            self.fit(docs)
        kept: list[Document] = []
        dropped: list[DroppedDoc] = []
        for doc in docs:
            out, reason = self.judge(doc)
            if out is None:
                dropped.append((doc, self.name, reason))
            else:
                kept.append(out)
        return kept, dropped

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


def with_text(doc: Document, text: str, **meta: Any) -> Document:
    """Copy of ``doc`` with new text (and extra meta); the original is left untouched."""
    if text == doc.text and not meta:
        return doc
    return replace(doc, text=text, meta={**doc.meta, **meta} if meta else dict(doc.meta))


def join_lines(lines: Iterable[str]) -> str:
    return normalize_whitespace("\n".join(lines))
