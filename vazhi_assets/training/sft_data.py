"""Supervised fine-tuning (SFT) samples: load, derive, check and assemble chat conversations.

Every sample, whatever file or corpus it came from, becomes one :class:`Sample` holding a list
of ChatML-style messages (``system``/``user``/``assistant``). Inputs:

``chatml``            JSON lines ``{"messages": [...], "language": ...}`` (the bundled Urdu and
                      Tamil seeds).
``alpaca``            JSON lines ``{"instruction", "input", "output"}`` (the English replay set).
``alpaca_xlsx``       the Saudi-dialect translation sheet (columns ``Dialect``, ``English Text``,
                      ``Dialect Translation``, ``In-Game Context``) turned into translation
                      instructions.
``kural_citation``    Tamil questions about a Thirukkural couplet whose answers *quote* the verse
                      from ``kural.db`` (never generated text) plus a prose commentary.
``udhr_translation``  translation pairs from the aligned UDHR translations.
``feedback``          reserved for conversations collected from users (no loader here).

:func:`build_sft_dataset` assembles configured sources and cleans them in this order:
language filter → :func:`validate_chatml` (on the raw rows, so normalisation cannot hide a
leaked template marker) → Unicode/whitespace normalisation → exact duplicates →
:func:`verify_language` → :func:`rouge_l_dedup`. Every sample removed on the way is kept as a
:class:`Dropped` record with its reason.

Decisions worth knowing
    * ``ur`` and ``ar`` share the Arabic Unicode block, so script purity alone cannot tell them
      apart. :func:`verify_language` looks for letters only Urdu uses (``ٹ ڈ ڑ ں ے ہ ھ`` …) and
      letters Urdu spelling never uses but Arabic text is full of (``ي ك ه ة ى``; Urdu writes
      ``ی ک ہ ۃ``; the Urdu input is normalised first, so keyboard variants do not count).
      A text with neither kind is labelled ``"arabic-script"``: it is accepted for both
      languages but flagged.
    * The ROUGE-L instruction dedup follows Alif (threshold 0.7, first sample wins), per language
      variety. The stock ``rouge_score`` tokenizer keeps only ``[a-z0-9]`` and so turns Urdu or
      Tamil into an empty token list (every score 0.0: nothing would ever be removed); here the
      text is first reduced with :func:`~vazhi_assets.corpus.normalize.text_key` and split on
      whitespace.
    * For templated instructions the compared text is the part that varies (the English line of
      a translation pair, ``meta["dedup_text"]``), and the Saudi rows are compared per dialect:
      the same English line rendered in Najdi and in Hijazi is two samples, not a duplicate.
      Kural citations are exempt (their prompts differ only in a number; one sample per kural
      by construction).
    * Length. The seeds keep answers under 80 words, but the demo base model's byte-level BPE
      (SmolLM2) spends about 1.7 tokens per Tamil character and 1.2 per Urdu character, so
      most Tamil and Urdu conversations are longer than a 256-token window. Kural answers put
      the verse first, so truncation cuts the commentary before the quotation.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from vazhi_assets.corpus.normalize import normalize_unicode, normalize_whitespace, text_key
from vazhi_assets.corpus.scripts import script_counts, script_purity
from vazhi_assets.settings import PACKAGE_DIR

__all__ = [
    "BUNDLED_FILES",
    "CHAT_TEMPLATE_MARKERS",
    "FORMATS",
    "LANGUAGES",
    "SAUDI_DEMO_ROWS",
    "SFT_DATA_DIR",
    "SOURCE_GROUPS",
    "Dropped",
    "Problem",
    "Sample",
    "SftBuild",
    "build_sft_dataset",
    "content_id",
    "frame_to_samples",
    "kural_citation_samples",
    "load_alpaca_jsonl",
    "load_alpaca_xlsx",
    "load_chatml_jsonl",
    "rouge_l_dedup",
    "samples_to_frame",
    "udhr_translation_samples",
    "validate_chatml",
    "verify_language",
    "write_saudi_demo_sheet",
]

SFT_DATA_DIR = PACKAGE_DIR / "data" / "sft"
BUNDLED_FILES = {
    "urdu_instructions": "urdu_instructions.jsonl",
    "tamil_instructions": "tamil_instructions.jsonl",
    "english_alpaca": "english_alpaca.jsonl",
    "saudi_dialect": "saudi_dialect.xlsx",
}

FORMATS = ("chatml", "alpaca", "alpaca_xlsx", "kural_citation", "udhr_translation", "feedback")
LANGUAGES = ("ur", "ta", "en", "ar")
ROLES = ("system", "user", "assistant")
Split = Literal["train", "heldout"]

#: Special tokens of common chat templates; in message *content* they mean a rendering leaked.
CHAT_TEMPLATE_MARKERS = (
    "<|im_start|>",
    "<|im_end|>",
    "<|endoftext|>",
    "<|eot_id|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|begin_of_text|>",
    "[INST]",
    "[/INST]",
    "</s>",
    "<s>",
)


# --------------------------------------------------------------------------- data model


def content_id(messages: Sequence[Mapping[str, Any]] | Any) -> str:
    """Stable id of a conversation: the first 16 hex digits of SHA-256 over its canonical JSON
    (role and content of each turn, in order). Equal conversations get equal ids."""
    if isinstance(messages, Sequence) and not isinstance(messages, str):
        canonical: Any = [
            [m.get("role"), m.get("content")] if isinstance(m, Mapping) else m for m in messages
        ]
    else:
        canonical = messages
    blob = json.dumps(canonical, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


@dataclass
class Sample:
    """One conversation; ``sample_id`` defaults to :func:`content_id` of the messages."""

    messages: list[dict[str, str]]
    language: str
    source: str
    format: str
    sample_id: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.sample_id:
            self.sample_id = content_id(self.messages)

    def texts(self, role: str) -> list[str]:
        """Contents of the turns with ``role``, in order."""
        return [
            m["content"]
            for m in self.messages
            if isinstance(m, Mapping)
            and m.get("role") == role
            and isinstance(m.get("content"), str)
        ]

    @property
    def user_text(self) -> str:
        return "\n\n".join(self.texts("user"))

    @property
    def assistant_text(self) -> str:
        return "\n\n".join(self.texts("assistant"))


@dataclass(frozen=True)
class Problem:
    """A structural problem of one row found by :func:`validate_chatml`."""

    sample_id: str
    problem: str


@dataclass(frozen=True)
class Dropped:
    """A sample removed (or, in ``SftBuild.flagged``, only marked) with the reason."""

    sample_id: str
    source: str
    language: str
    stage: str
    reason: str


@dataclass
class SftBuild:
    """Result of :func:`build_sft_dataset`."""

    samples: list[Sample]
    dropped: list[Dropped]
    flagged: list[Dropped]
    stats: dict[str, Any]

    def frame(self) -> Any:
        return samples_to_frame(self.samples)


def _chat(user: str, assistant: str, system: str | None = None) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": system}] if system else []
    messages += [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
    return messages


# --------------------------------------------------------------------------- file loaders


def _json_lines(path: Path) -> Iterable[tuple[int, dict[str, Any]]]:
    with Path(path).open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}:{number}: not valid JSON ({error.msg})") from error
            if not isinstance(row, dict):
                raise ValueError(f"{path}:{number}: expected a JSON object, got {type(row)}")
            yield number, row


def load_chatml_jsonl(path: Path | str, source: str, language: str | None = None) -> list[Sample]:
    """Samples from JSON lines ``{"messages": [{"role", "content"}, ...], "language": ...}``.

    ``language`` is the fallback for lines without one. Keys other than ``messages`` and
    ``language`` go to ``meta``. A line without ``messages`` is an error (a raw-text row in a
    chat file means the file mixes formats).
    """
    samples = []
    for number, row in _json_lines(Path(path)):
        messages = row.get("messages")
        if not isinstance(messages, list):
            raise ValueError(f"{path}:{number}: no 'messages' list (keys: {sorted(row)})")
        lang = row.get("language", language)
        if lang is None:
            raise ValueError(f"{path}:{number}: no 'language' and no default given")
        # kept as written (only role and content): validate_chatml judges broken turns
        turns = [
            {"role": m.get("role"), "content": m.get("content")} if isinstance(m, Mapping) else m
            for m in messages
        ]
        meta = {k: v for k, v in row.items() if k not in {"messages", "language"}}
        meta["line"] = number
        samples.append(Sample(turns, lang, source, "chatml", meta=meta))
    return samples


def load_alpaca_jsonl(path: Path | str, source: str, language: str) -> list[Sample]:
    """Samples from Alpaca JSON lines: user = instruction (+ blank line + input), assistant =
    output."""
    samples = []
    for number, row in _json_lines(Path(path)):
        instruction = str(row.get("instruction", "")).strip()
        extra = str(row.get("input", "") or "").strip()
        output = str(row.get("output", "")).strip()
        user = f"{instruction}\n\n{extra}" if extra else instruction
        meta = {"line": number, "instruction": instruction, "input": extra}
        samples.append(Sample(_chat(user, output), language, source, "alpaca", meta=meta))
    return samples


XLSX_COLUMNS = ("Dialect", "English Text", "Dialect Translation", "In-Game Context")


def saudi_instruction(dialect: str, context: str | None) -> str:
    """The instruction of a sheet row: target dialect plus the in-game context, if any."""
    instruction = f"Translate into the {dialect} Arabic dialect."
    if context:
        instruction += f" In-game context: {context}"
    return instruction


def load_alpaca_xlsx(path: Path | str, source: str) -> list[Sample]:
    """Translation samples from the Saudi-dialect sheet (first worksheet, header in row 1).

    Each row becomes Alpaca-style: instruction ``Translate into the <Dialect> Arabic dialect.``
    plus the in-game context, the English text as input, the dialect translation as output;
    language ``"ar"``, ``meta["variety"]`` = the dialect. Rows missing the English text or the
    translation are skipped. Uses openpyxl in read-only mode.
    """
    from openpyxl import load_workbook

    workbook = load_workbook(Path(path), read_only=True, data_only=True)
    try:
        sheet = workbook.worksheets[0]
        rows = sheet.iter_rows(values_only=True)
        header = [str(c).strip() if c is not None else "" for c in next(rows, ())]
        missing = [c for c in XLSX_COLUMNS if c not in header]
        if missing:
            raise ValueError(f"{path}: sheet {sheet.title!r} lacks columns {missing}")
        col = {name: header.index(name) for name in XLSX_COLUMNS}
        samples = []
        for number, row in enumerate(rows, start=2):
            cells = {
                name: str(row[i]).strip() if i < len(row) and row[i] is not None else ""
                for name, i in col.items()
            }
            english, target = cells["English Text"], cells["Dialect Translation"]
            if not english or not target:
                continue
            dialect, context = cells["Dialect"] or "Saudi", cells["In-Game Context"]
            instruction = saudi_instruction(dialect, context)
            meta = {
                "row": number,
                "instruction": instruction,
                "input": english,
                "variety": dialect,
                "context": context,
                "dedup_text": english,
            }
            samples.append(
                Sample(_chat(f"{instruction}\n\n{english}", target), "ar", source,
                       "alpaca_xlsx", meta=meta)
            )
    finally:
        workbook.close()
    return samples


# --------------------------------------------------------------------------- Saudi demo sheet

#: The bundled demo sheet: (dialect, English text, dialect translation, in-game context).
#: Najdi (central Arabia: وش، وين، الحين، تبي) and Hijazi (west coast: إيش، فين، دحين، تبغى).
SAUDI_DEMO_ROWS: tuple[tuple[str, str, str, str], ...] = (
    ("Najdi", "Welcome, traveller! Come in and rest.",
     "يا هلا والله بالمسافر! تفضل ارتاح.", "Innkeeper greets the player at the door"),
    ("Hijazi", "Welcome, traveller! Come in and rest.",
     "أهلين يا مسافر! اتفضل ارتاح شوية.", "Innkeeper greets the player at the door"),
    ("Najdi", "What do you want to buy?",
     "وش تبي تشتري؟", "Shop menu opens"),
    ("Hijazi", "What do you want to buy?",
     "إيش تبغى تشتري؟", "Shop menu opens"),
    ("Najdi", "Where are you going?",
     "وين رايح؟", "Guard stops the player at the city gate"),
    ("Hijazi", "Where are you going?",
     "فين رايح؟", "Guard stops the player at the city gate"),
    ("Najdi", "I don't have enough money.",
     "ما عندي فلوس تكفي.", "Player tries to buy an item they cannot afford"),
    ("Hijazi", "I don't have enough money.",
     "ما معايا فلوس كفاية.", "Player tries to buy an item they cannot afford"),
    ("Najdi", "Hurry up, the storm is coming!",
     "عجل، العاصفة جاية!", "Sandstorm warning before a desert crossing"),
    ("Hijazi", "Hurry up, the storm is coming!",
     "يلا بسرعة، العاصفة جاية!", "Sandstorm warning before a desert crossing"),
    ("Najdi", "I don't know where the key is.",
     "ما أدري وين المفتاح.", "Villager answers a quest question"),
    ("Hijazi", "I don't know where the key is.",
     "ما أدري فين المفتاح.", "Villager answers a quest question"),
    ("Najdi", "Give me the map, please.",
     "عطني الخريطة لو سمحت.", "Companion asks the player for the map"),
    ("Hijazi", "Give me the map, please.",
     "ادّيني الخريطة لو سمحت.", "Companion asks the player for the map"),
    ("Najdi", "Let's go now, it's getting late.",
     "يلا نمشي الحين، تأخر الوقت.", "Companion urges the player to leave the market"),
    ("Hijazi", "Let's go now, it's getting late.",
     "يلا نمشي دحين، الوقت تأخر.", "Companion urges the player to leave the market"),
    ("Najdi", "Don't worry, I'll help you.",
     "لا تشيل هم، أنا بساعدك.", "Ally offers help after a failed quest"),
    ("Hijazi", "Don't worry, I'll help you.",
     "لا تشيل هم، أنا حساعدك.", "Ally offers help after a failed quest"),
    ("Najdi", "What is this?",
     "وش ذا؟", "Player inspects an unknown object"),
    ("Hijazi", "What is this?",
     "إيش دا؟", "Player inspects an unknown object"),
    ("Najdi", "This sword is very good.",
     "هالسيف زين مرة.", "Blacksmith praises a weapon"),
    ("Hijazi", "This sword is very good.",
     "السيف دا حلو مرة.", "Blacksmith praises a weapon"),
    ("Najdi", "Why are you late?",
     "ليش تأخرت؟", "Quest giver when the player returns after the deadline"),
    ("Hijazi", "Why are you late?",
     "ليش اتأخرت؟", "Quest giver when the player returns after the deadline"),
    ("Najdi", "Come back tomorrow.",
     "تعال بكرة.", "Shop is closed at night"),
    ("Hijazi", "Come back tomorrow.",
     "تعال بكرة.", "Shop is closed at night"),
    ("Najdi", "How are you, my friend?",
     "وش لونك يا صاحبي؟", "Old friend meets the player in the village"),
    ("Hijazi", "How are you, my friend?",
     "كيفك يا صاحبي؟", "Old friend meets the player in the village"),
    ("Najdi", "The road to the oasis is dangerous.",
     "الطريق للواحة خطير.", "Scout warns before the player leaves the camp"),
    ("Hijazi", "The road to the oasis is dangerous.",
     "الطريق للواحة خطير.", "Scout warns before the player leaves the camp"),
    ("Najdi", "I want to rent a camel.",
     "أبي أستأجر ناقة.", "Player talks to the stable master"),
    ("Hijazi", "I want to rent a camel.",
     "أبغى أستأجر ناقة.", "Player talks to the stable master"),
    ("Najdi", "Enough talking, let's fight!",
     "خلاص يكفي كلام، يلا نتقاتل!", "Bandit leader before a boss fight"),
    ("Hijazi", "Enough talking, let's fight!",
     "خلاص كفاية كلام، يلا نتضارب!", "Bandit leader before a boss fight"),
    ("Najdi", "Thank you, may God reward you.",
     "مشكور، الله يجزاك خير.", "Villager thanks the player after a rescue"),
    ("Hijazi", "Thank you, may God reward you.",
     "شكرًا، الله يجزاك خير.", "Villager thanks the player after a rescue"),
    ("Najdi", "The well is dry, we need water.",
     "البير ناشف، نبي موية.", "Farmer explains the village's problem"),
    ("Hijazi", "The well is dry, we need water.",
     "البير ناشف، نبغى موية.", "Farmer explains the village's problem"),
    ("Najdi", "Wait here until I come back.",
     "انتظر هنا لين أرجع.", "Companion leaves to scout ahead"),
    ("Hijazi", "Wait here until I come back.",
     "استنى هنا لين أرجع.", "Companion leaves to scout ahead"),
)


def write_saudi_demo_sheet(
    path: Path | str, rows: Sequence[tuple[str, str, str, str]] = ()
) -> Path:
    """Write the Saudi-dialect demo sheet (``SAUDI_DEMO_ROWS`` unless ``rows``) as .xlsx.

    The output is byte-for-byte reproducible: openpyxl stamps the save time into
    ``docProps/core.xml`` and into every zip entry, so the workbook is re-zipped with a fixed
    timestamp (2024-01-01) and regenerating the file only changes it when the rows change.
    """
    import io
    import re
    import zipfile

    from openpyxl import Workbook
    from openpyxl.styles import Font

    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "translations"
    sheet.append(list(XLSX_COLUMNS))
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in rows or SAUDI_DEMO_ROWS:
        sheet.append(list(row))
    for letter, width in zip("ABCD", (10, 42, 42, 48), strict=True):
        sheet.column_dimensions[letter].width = width
    workbook.properties.creator = "vazhi_assets"
    buffer = io.BytesIO()
    workbook.save(buffer)

    stamp = "2024-01-01T00:00:00Z"
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    out = io.BytesIO()
    with zipfile.ZipFile(buffer) as source, zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            data = source.read(info.filename)
            if info.filename == "docProps/core.xml":
                text = re.sub(r"(<dcterms:(?:created|modified)[^>]*>)[^<]*", rf"\g<1>{stamp}",
                              data.decode("utf-8"))
                data = text.encode("utf-8")
            entry = zipfile.ZipInfo(info.filename, date_time=(2024, 1, 1, 0, 0, 0))
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o644 << 16
            target.writestr(entry, data)
    path.write_bytes(out.getvalue())
    return path


# --------------------------------------------------------------------------- corpus-derived


def _split_of(number: int, every: int) -> Split:
    if every < 2:
        raise ValueError(f"heldout_every must be >= 2, got {every}")
    return "heldout" if number % every == 0 else "train"


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
            if _split_of(n, heldout_every) != split:
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
            samples.append(Sample(_chat(user, answer), "ta", "thirukkural", "kural_citation",
                                  meta=meta))
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
            if _split_of(a.index, heldout_every) != split:
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
                samples.append(Sample(_chat(f"{instruction}\n\n{source_text}", target_text),
                                      tgt_lang, f"udhr_{src}_{tgt}", "udhr_translation",
                                      meta=meta))
    return samples


# --------------------------------------------------------------------------- validation

_ROLE_SET = frozenset(ROLES)


def _row_messages(row: Any, index: int) -> tuple[str, Any, str | None]:
    """(sample id, messages or None, problem with the row itself or None)."""
    if isinstance(row, Sample):
        return row.sample_id, row.messages, None
    if isinstance(row, Mapping):
        if "messages" in row:
            sid = str(row.get("sample_id") or content_id(row["messages"]))
            return sid, row["messages"], None
        keys = ", ".join(sorted(map(str, row))) or "none"
        return (f"row-{index}", None,
                f"row is not a conversation (no 'messages'; keys: {keys}): "
                "a dataset must hold chat messages only")
    if isinstance(row, str):
        return (f"row-{index}", None,
                f"raw text row ({row[:40]!r}…) mixed into a chat dataset")
    return f"row-{index}", None, f"unsupported row type {type(row).__name__}"


def _message_problems(messages: Any) -> list[str]:
    if not isinstance(messages, list) or not messages:
        return ["'messages' must be a non-empty list"]
    problems: list[str] = []
    roles: list[str] = []
    for position, message in enumerate(messages):
        if not isinstance(message, Mapping):
            problems.append(f"turn {position} is {type(message).__name__}, not an object")
            roles.append("?")
            continue
        role, content = message.get("role"), message.get("content")
        roles.append(str(role))
        if role not in _ROLE_SET:
            problems.append(f"turn {position} has invalid role {role!r}")
        if not isinstance(content, str):
            problems.append(f"turn {position} ({role}) content is {type(content).__name__}")
            continue
        if not content.strip():
            problems.append(f"turn {position} ({role}) is empty")
        for marker in CHAT_TEMPLATE_MARKERS:
            if marker in content:
                problems.append(f"turn {position} ({role}) contains template marker {marker!r}")
    if "user" not in roles:
        problems.append("no user turn")
    if "assistant" not in roles:
        problems.append("no assistant turn")
    body = roles[1:] if roles and roles[0] == "system" else roles
    offset = len(roles) - len(body)
    for position, role in enumerate(body):
        expected = "user" if position % 2 == 0 else "assistant"
        if role != expected:
            problems.append(
                f"turn order: turn {position + offset} is {role!r}, expected {expected!r} "
                "(optional single leading system, then user/assistant alternating)"
            )
            break
    else:
        if body and body[-1] != "assistant":
            problems.append("conversation must end with an assistant turn")
    return problems


def validate_chatml(samples: Iterable[Any]) -> list[Problem]:
    """Structural problems of a chat dataset; an empty list means it is fit for training.

    Rows may be :class:`Sample` objects or plain dicts. Checked: every row is a conversation
    (a dict without ``messages`` or a bare string is reported: one format per dataset); roles
    are ``system``/``user``/``assistant``; order is an optional single leading system turn,
    then user/assistant alternating, ending with assistant; there is at least one user and one
    assistant turn and no turn is empty; no chat-template special token
    (:data:`CHAT_TEMPLATE_MARKERS`) appears in any content; ``Sample.format``/``language`` are
    known values.
    """
    problems: list[Problem] = []
    for index, row in enumerate(samples):
        sid, messages, row_problem = _row_messages(row, index)
        if row_problem:
            problems.append(Problem(sid, row_problem))
            continue
        for text in _message_problems(messages):
            problems.append(Problem(sid, text))
        if isinstance(row, Sample):
            if row.format not in FORMATS:
                problems.append(Problem(sid, f"unknown format {row.format!r}"))
            if row.language not in LANGUAGES:
                problems.append(Problem(sid, f"unknown language {row.language!r}"))
    return problems


# --------------------------------------------------------------------------- language check

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


# --------------------------------------------------------------------------- ROUGE-L dedup


class WhitespaceTokenizer:
    """A ``rouge_score`` tokenizer for any script: ``text_key`` then split on whitespace.

    ``rouge_score``'s default tokenizer lower-cases and replaces everything outside
    ``[a-z0-9]`` with spaces, so Urdu and Tamil come out as no tokens at all.
    """

    def tokenize(self, text: str) -> list[str]:
        return text_key(text).split()


def _dedup_text(sample: Sample) -> str | None:
    if sample.meta.get("dedup_exempt"):
        return None
    return str(sample.meta.get("dedup_text") or sample.user_text)


def _dedup_group(sample: Sample) -> tuple[str, str]:
    return sample.language, str(sample.meta.get("variety") or "")


def rouge_l_dedup(
    samples: Sequence[Sample], threshold: float = 0.7
) -> tuple[list[Sample], list[Dropped]]:
    """Drop samples whose instruction has ROUGE-L F1 >= ``threshold`` with an earlier kept one.

    Compared per language variety (language plus ``meta["variety"]``), on ``meta["dedup_text"]``
    if set (the varying part of templated instructions) else the user turns, tokenised by
    :class:`WhitespaceTokenizer`. Samples with ``meta["dedup_exempt"]`` are kept unchecked.
    An upper bound (2·shared tokens / total tokens ≥ ROUGE-L F1) skips hopeless pairs, so only
    candidates sharing enough words go through ``rouge_score``'s LCS.
    """
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], tokenizer=WhitespaceTokenizer())
    kept: list[Sample] = []
    dropped: list[Dropped] = []
    # per group: postings token -> list of (kept index, count), and kept token counts
    postings: dict[tuple[str, str], dict[str, list[tuple[int, int]]]] = defaultdict(dict)
    kept_info: dict[tuple[str, str], list[tuple[Sample, str, int]]] = defaultdict(list)
    for sample in samples:
        text = _dedup_text(sample)
        if text is None:
            kept.append(sample)
            continue
        tokens = WhitespaceTokenizer().tokenize(text)
        group = _dedup_group(sample)
        index = postings[group]
        bag = Counter(tokens)
        shared: Counter[int] = Counter()
        for token, count in bag.items():
            for other, other_count in index.get(token, ()):
                shared[other] += min(count, other_count)
        match: tuple[Sample, float] | None = None
        for other, overlap in shared.items():
            other_sample, other_text, other_len = kept_info[group][other]
            if 2 * overlap / (len(tokens) + other_len) < threshold:
                continue  # LCS <= shared tokens, so ROUGE-L F1 cannot reach the threshold
            score = scorer.score(other_text, text)["rougeL"].fmeasure
            if score >= threshold:
                match = (other_sample, score)
                break
        if match is not None:
            first, score = match
            dropped.append(Dropped(sample.sample_id, sample.source, sample.language,
                                   "rouge_l_dedup",
                                   f"near-duplicate instruction of {first.sample_id} "
                                   f"({first.source}), ROUGE-L {score:.2f} >= {threshold}"))
            continue
        position = len(kept_info[group])
        kept_info[group].append((sample, text, len(tokens)))
        for token, count in bag.items():
            index.setdefault(token, []).append((position, count))
        kept.append(sample)
    return kept, dropped


# --------------------------------------------------------------------------- frames


def samples_to_frame(samples: Sequence[Sample]) -> Any:
    """A polars DataFrame, one row per sample; ``messages`` and ``meta`` as JSON strings."""
    import polars as pl

    rows = []
    for sample in samples:
        rows.append(
            {
                "sample_id": sample.sample_id,
                "language": sample.language,
                "source": sample.source,
                "format": sample.format,
                "messages": json.dumps(sample.messages, ensure_ascii=False),
                "user_chars": sum(len(t) for t in sample.texts("user")),
                "assistant_chars": sum(len(t) for t in sample.texts("assistant")),
                "purity": float(verify_language(sample)[1]),
                "meta": json.dumps(sample.meta, ensure_ascii=False, default=str),
            }
        )
    schema = {
        "sample_id": pl.String,
        "language": pl.String,
        "source": pl.String,
        "format": pl.String,
        "messages": pl.String,
        "user_chars": pl.Int64,
        "assistant_chars": pl.Int64,
        "purity": pl.Float64,
        "meta": pl.String,
    }
    return pl.DataFrame(rows, schema=schema)


def frame_to_samples(df: Any) -> list[Sample]:
    """Inverse of :func:`samples_to_frame` (a missing ``meta`` column gives empty metas)."""
    has_meta = "meta" in df.columns
    samples = []
    for row in df.iter_rows(named=True):
        samples.append(
            Sample(
                messages=json.loads(row["messages"]),
                language=row["language"],
                source=row["source"],
                format=row["format"],
                sample_id=row["sample_id"],
                meta=json.loads(row["meta"]) if has_meta and row["meta"] else {},
            )
        )
    return samples


# --------------------------------------------------------------------------- assembly

#: Source names accepted by :func:`build_sft_dataset`; group names expand to their members.
SOURCE_GROUPS: dict[str, tuple[str, ...]] = {
    "bundled": ("bundled_ur", "bundled_ta", "bundled_en"),
    "corpus": ("kural", "udhr"),
    "saudi": ("saudi",),
}
SOURCES = ("bundled_ur", "bundled_ta", "bundled_en", "kural", "udhr", "saudi")
SAUDI_HELDOUT_EVERY = 8


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
        return [r for r in rows if _split_of(r.meta["row"], SAUDI_HELDOUT_EVERY) == split]
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
