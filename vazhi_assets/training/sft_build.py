"""Assemble the SFT set: load the configured sources, clean them, apply the replay ratio.

Sources (see :mod:`.sft_loaders` and :mod:`.sft_derived`): the bundled ChatML and Alpaca seeds,
the Saudi-dialect sheet, Thirukkural citations and UDHR translation pairs; ``feedback`` is
reserved for conversations collected from users (passed in as ``extra`` samples).

:func:`build_sft_dataset` cleans them in this order: language filter →
:func:`~.sft_table.validate_chatml` (on the raw rows, so normalisation cannot hide a leaked
template marker) → Unicode/whitespace normalisation → exact duplicates →
:func:`~.sft_language.verify_language` → :func:`~.sft_dedup.rouge_l_dedup`. Every sample
removed on the way is kept as a :class:`~.sft_samples.Dropped` record with its reason.

Length. The seeds keep answers under 80 words, but the demo base model's byte-level BPE
(SmolLM2) spends about 1.7 tokens per Tamil character and 1.2 per Urdu character, so most Tamil
and Urdu conversations are longer than a 256-token window.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vazhi_assets.corpus.normalize import normalize_unicode, normalize_whitespace
from vazhi_assets.training.sft_dedup import rouge_l_dedup
from vazhi_assets.training.sft_derived import (
    DEFAULT_UDHR_PAIRS,
    kural_citation_samples,
    udhr_translation_samples,
)
from vazhi_assets.training.sft_language import language_verdict
from vazhi_assets.training.sft_loaders import (
    load_alpaca_jsonl,
    load_alpaca_xlsx,
    load_chatml_jsonl,
)
from vazhi_assets.training.sft_samples import (
    BUNDLED_FILES,
    SFT_DATA_DIR,
    Dropped,
    Sample,
    Split,
    split_of_number,
)
from vazhi_assets.training.sft_sheet import write_saudi_demo_sheet
from vazhi_assets.training.sft_table import samples_to_frame, validate_chatml

#: Source names accepted by :func:`build_sft_dataset`; group names expand to their members.
SOURCE_GROUPS: dict[str, tuple[str, ...]] = {
    "bundled": ("bundled_ur", "bundled_ta", "bundled_en"),
    "corpus": ("kural", "udhr"),
    "saudi": ("saudi",),
}
SOURCES = ("bundled_ur", "bundled_ta", "bundled_en", "kural", "udhr", "saudi")
SAUDI_HELDOUT_EVERY = 8


@dataclass
class SftBuild:
    """Result of :func:`build_sft_dataset`."""

    samples: list[Sample]
    dropped: list[Dropped]
    flagged: list[Dropped]
    stats: dict[str, Any]

    def frame(self) -> Any:
        return samples_to_frame(self.samples)


def resolve_sources(names: Iterable[str]) -> list[str]:
    out: list[str] = []
    for name in names:
        members = SOURCE_GROUPS.get(name, (name,) if name in SOURCES else None)
        if members is None:
            raise ValueError(f"unknown SFT source {name!r}; known: "
                             f"{sorted({*SOURCE_GROUPS, *SOURCES})}")
        out += [m for m in members if m not in out]
    return out


def _load_source(
    name: str,
    split: Split,
    sft_dir: Path,
    chapters: Sequence[Any] | None,
    declaration_dir: Path | None,
    kural_heldout_every: int,
    udhr_heldout_every: int,
    udhr_pairs: Sequence[tuple[str, str]],
) -> list[Sample]:
    if name in ("bundled_ur", "bundled_ta", "bundled_en") and split != "train":
        return []  # the hand-written seeds are training data only
    if name == "bundled_ur":
        return load_chatml_jsonl(sft_dir / BUNDLED_FILES["urdu_instructions"],
                                 "urdu_instructions", "ur")
    if name == "bundled_ta":
        return load_chatml_jsonl(sft_dir / BUNDLED_FILES["tamil_instructions"],
                                 "tamil_instructions", "ta")
    if name == "bundled_en":
        return load_alpaca_jsonl(sft_dir / BUNDLED_FILES["english_alpaca"],
                                 "english_alpaca", "en")
    if name == "saudi":  # every SAUDI_HELDOUT_EVERY-th sheet row is held out for chrF
        rows = load_alpaca_xlsx(sft_dir / BUNDLED_FILES["saudi_dialect"], "saudi_dialect")
        return [r for r in rows if split_of_number(r.meta["row"], SAUDI_HELDOUT_EVERY) == split]
    if name == "kural":
        if chapters is None:
            from vazhi_assets.textsources import thirukkural_chapters

            chapters = thirukkural_chapters()
        return kural_citation_samples(chapters, split, kural_heldout_every)
    if name == "udhr":
        return udhr_translation_samples(udhr_pairs, split, udhr_heldout_every, declaration_dir)
    raise ValueError(f"unknown SFT source {name!r}")


def normalize_sample(sample: Sample) -> Sample:
    """Unicode normalisation for the sample's language and tidy whitespace in every turn; a
    changed sample gets a new id computed from the normalised content."""
    messages = []
    for message in sample.messages:
        content = message.get("content")
        if isinstance(content, str):
            content = normalize_whitespace(normalize_unicode(content, sample.language))
        messages.append({**message, "content": content})
    if messages == sample.messages:
        return sample
    meta = {**sample.meta, "normalized": True}
    return Sample(messages, sample.language, sample.source, sample.format, meta=meta)


def _count(items: Iterable[str]) -> dict[str, int]:
    return dict(sorted(Counter(items).items()))


def build_sft_dataset(
    sources: Sequence[str] = ("bundled", "corpus", "saudi"),
    *,
    split: Split = "train",
    languages: Sequence[str] | None = None,
    rouge_threshold: float = 0.7,
    min_purity: float = 0.7,
    kural_heldout_every: int = 10,
    udhr_heldout_every: int = 10,
    udhr_pairs: Sequence[tuple[str, str]] = DEFAULT_UDHR_PAIRS,
    chapters: Sequence[Any] | None = None,
    declaration_dir: Path | None = None,
    sft_dir: Path | None = None,
    extra: Sequence[Sample] = (),
    max_per_source: int | None = None,
    drop_invalid: bool = True,
) -> SftBuild:
    """Assemble and clean the SFT set from ``sources`` (groups ``bundled``, ``corpus``,
    ``saudi`` or members ``bundled_ur``, ``bundled_ta``, ``bundled_en``, ``kural``, ``udhr``,
    ``saudi``) plus ``extra`` samples.

    ``split="heldout"`` returns only the held-out samples: corpus-derived ones and every
    8th row of the Saudi sheet (the other bundled seeds are training data). ``languages``
    keeps only those languages (counted as filtered, not dropped). ``max_per_source`` caps
    every loaded source at that many samples, taken evenly spaced over it (the kural
    citations alone are ~1,200 samples against ~40 per seed file).
    Cleaning order and reasons: see the module docstring. With ``drop_invalid=False``
    structurally invalid samples are kept untouched (counted in ``stats["invalid"]``) so that a
    blocking ChatML check downstream reports them instead of the build hiding them.
    """
    names = resolve_sources(sources)
    base = Path(sft_dir) if sft_dir else SFT_DATA_DIR
    loaded: list[Sample] = []
    capped: dict[str, list[int]] = {}
    for name in names:
        part = _load_source(name, split, base, chapters, declaration_dir,
                            kural_heldout_every, udhr_heldout_every, udhr_pairs)
        if max_per_source is not None and len(part) > max_per_source:
            capped[name] = [len(part), max_per_source]
            part = [part[i * len(part) // max_per_source] for i in range(max_per_source)]
        loaded += part
    loaded += list(extra)
    stats: dict[str, Any] = {
        "sources": names,
        "split": split,
        "loaded": len(loaded),
        "loaded_by_source": _count(s.source for s in loaded),
        "capped": capped,
    }
    wanted = set(languages) if languages is not None else None
    selected = [s for s in loaded if wanted is None or s.language in wanted]
    stats["filtered_language"] = _count(
        s.language for s in loaded if wanted is not None and s.language not in wanted
    )

    dropped: list[Dropped] = []
    flagged: list[Dropped] = []

    def drop(sample: Sample, stage: str, reason: str) -> None:
        dropped.append(Dropped(sample.sample_id, sample.source, sample.language, stage, reason))

    # 1. structure first, on the raw rows (normalisation must not hide a leaked marker)
    valid, invalid = [], []
    for sample in selected:
        problems = validate_chatml([sample])
        if problems and not drop_invalid:
            invalid.append(sample)
        elif problems:
            drop(sample, "validate_chatml", "; ".join(p.problem for p in problems))
        else:
            valid.append(sample)

    # 2. normalisation and exact duplicates
    seen: set[str] = set()
    unique = []
    for sample in map(normalize_sample, valid):
        if sample.sample_id in seen:
            drop(sample, "exact_dedup", "identical conversation already kept")
            continue
        seen.add(sample.sample_id)
        unique.append(sample)

    # 3. language of the answers
    verified = []
    for sample in unique:
        reason, flag, purity, label = language_verdict(sample, min_purity)
        sample.meta["purity"] = round(purity, 4)
        sample.meta["script_label"] = label
        if reason:
            drop(sample, "verify_language", reason)
            continue
        if flag:
            flagged.append(Dropped(sample.sample_id, sample.source, sample.language,
                                   "verify_language", flag))
        verified.append(sample)

    # 4. near-duplicate instructions
    kept, near = rouge_l_dedup(verified, rouge_threshold)
    dropped += near
    kept += invalid

    stats.update(
        {
            "kept": len(kept),
            "invalid": len(invalid),
            "by_source": _count(s.source for s in kept),
            "by_format": _count(s.format for s in kept),
            "by_language": _count(s.language for s in kept),
            "by_source_language": _count(f"{s.source}/{s.language}" for s in kept),
            "dropped": len(dropped),
            "dropped_by_stage": _count(d.stage for d in dropped),
            "dropped_by_source": _count(d.source for d in dropped),
            "flagged": _count(f.reason for f in flagged),
            "user_chars_max": max((len(s.user_text) for s in kept), default=0),
            "assistant_chars_max": max((len(s.assistant_text) for s in kept), default=0),
        }
    )
    return SftBuild(kept, dropped, flagged, stats)


def apply_replay_ratio(
    samples: Sequence[Sample], ratio: float, replay_language: str = "en"
) -> tuple[list[Sample], dict[str, Any]]:
    """Keep English (replay) samples at ``ratio`` of the result, taken evenly spaced in their
    order; every target-language sample is kept. Reports the achieved share (lower than asked
    when there is not enough English)."""
    target = [s for s in samples if s.language != replay_language]
    replay = [s for s in samples if s.language == replay_language]
    wanted = round(ratio / (1 - ratio) * len(target)) if ratio < 1 else len(replay)
    kept = min(wanted, len(replay))
    chosen = [replay[i * len(replay) // kept] for i in range(kept)] if kept else []
    out = target + chosen
    stats = {"replay_ratio_requested": ratio, "replay_available": len(replay),
             "replay_kept": kept,
             "replay_ratio_achieved": round(kept / len(out), 4) if out else 0.0}
    return out, stats


def _main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write-sheet", action="store_true",
                        help=f"regenerate {BUNDLED_FILES['saudi_dialect']} in {SFT_DATA_DIR}")
    parser.add_argument("--split", choices=["train", "heldout"], default="train")
    parser.add_argument("sources", nargs="*", default=["bundled", "corpus", "saudi"])
    args = parser.parse_args()
    if args.write_sheet:
        print(write_saudi_demo_sheet(SFT_DATA_DIR / BUNDLED_FILES["saudi_dialect"]))
    build = build_sft_dataset(args.sources, split=args.split)
    print(json.dumps(build.stats, ensure_ascii=False, indent=2))
    for item in build.dropped[:20]:
        print(f"dropped {item.sample_id} [{item.source}/{item.language}] {item.stage}: "
              f"{item.reason}")


if __name__ == "__main__":
    _main()
