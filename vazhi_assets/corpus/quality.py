"""Quality bars the corpus checks enforce, independent of how a run configured its filters."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PurityBar:
    """Mean share of target-script letters a corpus must reach, and the per-document floor."""

    mean: float
    floor: float


PURITY_BARS: dict[str, PurityBar] = {
    "ur": PurityBar(mean=0.95, floor=0.80),
    "ta": PurityBar(mean=0.95, floor=0.80),
    "en": PurityBar(mean=0.95, floor=0.80),
}

MIN_WORDS = 10
MIN_CHARS = 50

QALB_RETENTION = 0.678
