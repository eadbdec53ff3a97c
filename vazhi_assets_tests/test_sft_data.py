"""SFT data: bundled seeds, corpus-derived samples, checks and assembly (no network, < 20 s)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from vazhi_assets.settings import PROJECT_ROOT, vendor_dir
from vazhi_assets.textsources import ensure_udhr, thirukkural_chapters, udhr_sections
from vazhi_assets.training.sft_build import build_sft_dataset
from vazhi_assets.training.sft_dedup import rouge_l_dedup
from vazhi_assets.training.sft_derived import kural_citation_samples, udhr_translation_samples
from vazhi_assets.training.sft_language import verify_language
from vazhi_assets.training.sft_loaders import load_alpaca_jsonl, load_alpaca_xlsx, load_chatml_jsonl
from vazhi_assets.training.sft_samples import SFT_DATA_DIR, Sample
from vazhi_assets.training.sft_sheet import SAUDI_DEMO_ROWS, write_saudi_demo_sheet
from vazhi_assets.training.sft_table import frame_to_samples, samples_to_frame, validate_chatml

URDU = SFT_DATA_DIR / "urdu_instructions.jsonl"
TAMIL = SFT_DATA_DIR / "tamil_instructions.jsonl"
ENGLISH = SFT_DATA_DIR / "english_alpaca.jsonl"
SAUDI = SFT_DATA_DIR / "saudi_dialect.xlsx"


def chat(user: str, assistant: str, language: str, source: str = "test") -> Sample:
    messages = [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
    return Sample(messages, language, source, "chatml")


@pytest.fixture(scope="module")
def declaration_dir() -> Path:
    """The udhr text the setup step fetched (configured data dir, else the project's ./data)."""
    for root in (vendor_dir(), PROJECT_ROOT / "data" / "vendor"):
        candidate = root / "udhr" / "declaration"
        if (candidate / "eng.html").is_file():
            return candidate
    return ensure_udhr()


@pytest.fixture(scope="module")
def chapters() -> list:
    return thirukkural_chapters()


# --------------------------------------------------------------------------- bundled loaders


def test_bundled_urdu_chatml() -> None:
    samples = load_chatml_jsonl(URDU, "urdu_instructions")
    assert 38 <= len(samples) <= 45
    assert {s.language for s in samples} == {"ur"}
    assert {s.format for s in samples} == {"chatml"}
    assert validate_chatml(samples) == []
    systems = [s for s in samples if s.messages[0]["role"] == "system"]
    assert len(systems) >= 5  # Urdu system prompts in the Qalb manner
    assert all(verify_language(s)[0] == "ur" for s in samples)
    assert any(len(s.texts("assistant")) == 2 for s in samples)  # one multi-turn dialogue
    # Urdu letters, never the Arabic yeh/kaf/heh that Urdu spelling replaces
    text = "".join(m["content"] for s in samples for m in s.messages)
    assert {"ی", "ے", "ک", "ہ"} <= set(text)
    assert not set(text) & set("يكه")
    assert max(len(t.split()) for s in samples for t in s.texts("assistant")) <= 80
    assert len({s.sample_id for s in samples}) == len(samples)


def test_bundled_tamil_chatml_with_honest_unknowns() -> None:
    samples = load_chatml_jsonl(TAMIL, "tamil_instructions")
    assert 38 <= len(samples) <= 45
    assert {s.language for s in samples} == {"ta"}
    assert validate_chatml(samples) == []
    kinds = Counter(s.meta["kind"] for s in samples)
    assert kinds["unknowable"] + kinds["refusal"] >= 8
    unknown = [s for s in samples if s.meta["kind"] == "unknowable"]
    assert all("தெரியாது" in s.assistant_text or "முடியாது" in s.assistant_text for s in unknown)
    assert all(verify_language(s) == ("ta", 1.0) for s in samples)
    assert max(len(t.split()) for s in samples for t in s.texts("assistant")) <= 80


def test_bundled_english_alpaca() -> None:
    samples = load_alpaca_jsonl(ENGLISH, "english_alpaca", "en")
    assert len(samples) == 30
    assert validate_chatml(samples) == []
    assert all([m["role"] for m in s.messages] == ["user", "assistant"] for s in samples)
    with_input = [s for s in samples if s.meta["input"]]
    assert with_input and all(
        s.user_text == f"{s.meta['instruction']}\n\n{s.meta['input']}" for s in with_input
    )
    assert all(verify_language(s)[0] == "en" for s in samples)


def test_alpaca_loader_joins_input(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    rows = [
        {"instruction": "Add the numbers.", "input": "2, 3", "output": "5"},
        {"instruction": "Say hello.", "input": "", "output": "Hello!"},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n", encoding="utf-8")
    first, second = load_alpaca_jsonl(path, "t", "en")
    assert first.messages == [
        {"role": "user", "content": "Add the numbers.\n\n2, 3"},
        {"role": "assistant", "content": "5"},
    ]
    assert second.user_text == "Say hello." and second.format == "alpaca"


def test_chatml_loader_rejects_rows_without_messages(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    path.write_text('{"text": "raw pretraining text", "language": "ur"}\n', encoding="utf-8")
    with pytest.raises(ValueError, match="no 'messages'"):
        load_chatml_jsonl(path, "t")


# --------------------------------------------------------------------------- Saudi sheet


def _rows(samples: list[Sample]) -> list[tuple[str, str, str, str]]:
    return [(s.meta["variety"], s.meta["input"], s.assistant_text, s.meta["context"])
            for s in samples]


def test_saudi_sheet_round_trip(tmp_path: Path) -> None:
    written = write_saudi_demo_sheet(tmp_path / "sheet.xlsx")
    again = write_saudi_demo_sheet(tmp_path / "again.xlsx")
    assert written.read_bytes() == again.read_bytes()  # reproducible, no save timestamps
    fresh = load_alpaca_xlsx(written, "saudi_dialect")
    assert _rows(fresh) == list(SAUDI_DEMO_ROWS)
    bundled = load_alpaca_xlsx(SAUDI, "saudi_dialect")
    assert _rows(bundled) == list(SAUDI_DEMO_ROWS)  # the committed file matches the code
    assert len(bundled) == 40
    assert Counter(s.meta["variety"] for s in bundled) == {"Najdi": 20, "Hijazi": 20}
    sample = bundled[0]
    assert sample.language == "ar" and sample.format == "alpaca_xlsx"
    assert sample.user_text.startswith("Translate into the Najdi Arabic dialect. In-game context: ")
    assert sample.user_text.endswith("\n\nWelcome, traveller! Come in and rest.")
    assert validate_chatml(bundled) == []
    labels = Counter(verify_language(s)[0] for s in bundled)
    assert labels["ar"] >= 38 and labels["ur"] == 0


def test_saudi_sheet_skips_incomplete_rows(tmp_path: Path) -> None:
    rows = [("Najdi", "Hello.", "هلا.", "Greeting"), ("Hijazi", "No translation yet.", "", "")]
    samples = load_alpaca_xlsx(write_saudi_demo_sheet(tmp_path / "s.xlsx", rows), "s")
    assert [s.meta["input"] for s in samples] == ["Hello."]
    assert samples[0].user_text == (
        "Translate into the Najdi Arabic dialect. In-game context: Greeting\n\nHello."
    )


# --------------------------------------------------------------------------- Thirukkural


def test_kural_citations_quote_the_db_and_split_deterministically(chapters: list) -> None:
    train = kural_citation_samples(chapters, "train")
    heldout = kural_citation_samples(chapters, "heldout")
    assert len(train) + len(heldout) == 1330 and len(heldout) == 133
    train_numbers = {s.meta["kural_number"] for s in train}
    heldout_numbers = {s.meta["kural_number"] for s in heldout}
    assert not train_numbers & heldout_numbers
    assert all(n % 10 == 0 for n in heldout_numbers)
    again = kural_citation_samples(thirukkural_chapters(), "heldout")
    assert [s.sample_id for s in again] == [s.sample_id for s in heldout]

    by_number = {k.number: k for c in chapters for k in c.kurals}
    for sample in train + heldout:
        kural = by_number[sample.meta["kural_number"]]
        verse = "\n".join(kural.verse_lines)
        assert verse in sample.assistant_text
        assert sample.meta["reference"] == verse
        assert sample.language == "ta" and sample.format == "kural_citation"
    with_meaning = [s for s in train if s.meta["commentary_author"]]
    assert len(with_meaning) > len(train) / 2
    for sample in with_meaning[:50]:
        kural = by_number[sample.meta["kural_number"]]
        assert (kural.commentary_varadarasan in sample.assistant_text
                or kural.commentary_papaiah in sample.assistant_text)


def test_kural_verse_survives_the_build(chapters: list) -> None:
    build = build_sft_dataset(["kural"], split="heldout", chapters=chapters)
    assert build.stats["kept"] == 133 and build.dropped == []
    by_number = {k.number: k for c in chapters for k in c.kurals}
    for sample in build.samples:
        assert "\n".join(by_number[sample.meta["kural_number"]].verse_lines) in (
            sample.assistant_text
        )


# --------------------------------------------------------------------------- UDHR


def test_udhr_pairs_are_aligned(declaration_dir: Path) -> None:
    eng, urd = udhr_sections("eng", declaration_dir), udhr_sections("urd", declaration_dir)
    train = udhr_translation_samples([("eng", "urd")], "train", declaration_dir=declaration_dir)
    heldout = udhr_translation_samples([("eng", "urd")], "heldout",
                                       declaration_dir=declaration_dir)
    assert {s.meta["section"] for s in heldout} == {0, 10, 20, 30}
    assert not {s.meta["section"] for s in train} & {s.meta["section"] for s in heldout}
    for sample in train + heldout:
        i, p = sample.meta["section"], sample.meta["paragraph"]
        if sample.meta["level"] == "paragraph":
            assert sample.meta["input"] == eng[i].paragraphs[p]
            assert sample.assistant_text == urd[i].paragraphs[p]
        else:
            assert sample.assistant_text == "\n".join(urd[i].paragraphs)
        assert sample.user_text.endswith(sample.meta["input"])
        assert sample.language == "ur" and sample.source == "udhr_eng_urd"
    preamble = [s for s in heldout if s.meta["section"] == 0]
    assert [s.meta["level"] for s in preamble] == ["section"]  # 10 English vs 9 Urdu paragraphs
    article_26 = [s for s in train if s.meta["section"] == 26]
    assert [s.meta["paragraph"] for s in article_26] == [0, 1, 2]

    tamil = udhr_translation_samples([("eng", "tam")], "train", declaration_dir=declaration_dir)
    assert len(tamil) == len(train)
    assert all(verify_language(s)[0] == "ta" for s in tamil)
    assert all(verify_language(s)[0] == "ur" for s in train)


# --------------------------------------------------------------------------- ROUGE-L dedup


def test_rouge_dedup_removes_near_duplicate_urdu_instruction() -> None:
    from rouge_score import rouge_scorer

    first = "پاکستان کا سب سے بڑا شہر کون سا ہے؟"
    near = "پاکستان کا سب سے بڑا شہر کون سا ہے؟ بتائیں"
    other = "چائے بنانے کا آسان طریقہ بتائیں۔"
    # the stock tokenizer keeps only [a-z0-9]: Urdu becomes no tokens and every score 0.0
    stock = rouge_scorer.RougeScorer(["rougeL"])
    assert stock._tokenizer.tokenize(first) == []
    assert stock.score(first, first)["rougeL"].fmeasure == 0.0

    samples = [chat(first, "کراچی۔", "ur"), chat(near, "کراچی ہے۔", "ur"),
               chat(other, "پانی ابالیں۔", "ur")]
    kept, dropped = rouge_l_dedup(samples, threshold=0.7)
    assert [s.user_text for s in kept] == [first, other]
    assert len(dropped) == 1 and dropped[0].sample_id == samples[1].sample_id
    assert "ROUGE-L 0.9" in dropped[0].reason and samples[0].sample_id in dropped[0].reason


def test_rouge_dedup_is_per_language_variety_and_skips_kural(chapters: list) -> None:
    saudi = load_alpaca_xlsx(SAUDI, "saudi_dialect")
    kept, dropped = rouge_l_dedup(saudi)
    assert len(kept) == 40 and dropped == []  # Najdi and Hijazi renderings of one line
    kurals = kural_citation_samples(chapters[:5], "train")
    kept, dropped = rouge_l_dedup(kurals)
    assert len(kept) == len(kurals)  # prompts differ only in the number: exempt by design
    # same instruction in two languages is not a duplicate
    kept, _ = rouge_l_dedup([chat("ok then", "fine", "en"), chat("ok then", "ٹھیک ہے", "ur")])
    assert len(kept) == 2


# --------------------------------------------------------------------------- language check


def test_verify_language_flags_english_answer_labelled_urdu() -> None:
    wrong = chat("پاکستان کا دارالحکومت کون سا شہر ہے؟", "The capital of Pakistan is Islamabad.",
                 "ur", source="bad")
    label, purity = verify_language(wrong)
    assert label == "en" and purity == 0.0
    build = build_sft_dataset([], extra=[wrong, chat("کیا حال ہے؟", "ٹھیک ہوں، شکریہ۔", "ur")])
    assert build.stats["kept"] == 1
    (dropped,) = build.dropped
    assert dropped.stage == "verify_language" and "script mismatch" in dropped.reason


def test_verify_language_tells_urdu_from_arabic() -> None:
    assert verify_language(chat("q", "وش تبي تشتري؟", "ar"))[0] == "ar"
    assert verify_language(chat("q", "آپ کیا خریدنا چاہتے ہیں؟", "ur"))[0] == "ur"
    assert verify_language(chat("q", "وش ذا؟", "ar")) == ("arabic-script", 1.0)
    confused = chat("Translate into Najdi.", "آپ کیا خریدنا چاہتے ہیں؟", "ar")
    build = build_sft_dataset([], extra=[confused, chat("What is this?", "وش ذا؟", "ar")])
    assert "Urdu/Arabic confusion" in build.dropped[0].reason
    assert [f.reason for f in build.flagged] == ["ambiguous Arabic-script text declared ar"]


# --------------------------------------------------------------------------- validate_chatml


def test_validate_chatml_catches_broken_rows() -> None:
    good = chat("سوال", "جواب", "ur")
    empty = Sample([{"role": "user", "content": "سوال"}, {"role": "assistant", "content": "  "}],
                   "ur", "t", "chatml")
    order = Sample([{"role": "assistant", "content": "جواب"}, {"role": "user", "content": "سوال"}],
                   "ur", "t", "chatml")
    leaked = chat("سوال", "جواب<|im_end|>\n<|im_start|>user", "ur")
    two_systems = Sample([{"role": "system", "content": "a"}, {"role": "system", "content": "b"},
                          {"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}],
                         "en", "t", "chatml")
    raw_row = {"text": "یہ خام متن ہے", "language": "ur"}
    rows = [good, empty, order, leaked, two_systems, raw_row, "just a string"]
    problems = validate_chatml(rows)
    by_id: dict[str, list[str]] = {}
    for p in problems:
        by_id.setdefault(p.sample_id, []).append(p.problem)
    assert good.sample_id not in by_id
    assert any("(assistant) is empty" in p for p in by_id[empty.sample_id])
    assert any("turn order" in p for p in by_id[order.sample_id])
    assert any("'<|im_end|>'" in p for p in by_id[leaked.sample_id])
    assert any("'<|im_start|>'" in p for p in by_id[leaked.sample_id])
    assert any("turn order: turn 1 is 'system'" in p for p in by_id[two_systems.sample_id])
    assert any("no 'messages'" in p for p in by_id["row-5"])
    assert any("raw text row" in p for p in by_id["row-6"])
    ends_with_user = {"messages": [{"role": "user", "content": "q"},
                                   {"role": "assistant", "content": "a"},
                                   {"role": "user", "content": "q2"}]}
    assert [p.problem for p in validate_chatml([ends_with_user])] == [
        "conversation must end with an assistant turn"
    ]


def test_build_drops_invalid_samples_with_reasons() -> None:
    leaked = chat("Say hi.", "hi<|im_end|>", "en")
    build = build_sft_dataset([], extra=[leaked])
    assert build.samples == [] and build.dropped[0].stage == "validate_chatml"
    assert "<|im_end|>" in build.dropped[0].reason


# --------------------------------------------------------------------------- frames and build


def test_frame_round_trip() -> None:
    samples = load_chatml_jsonl(URDU, "urdu_instructions")[:5] + load_alpaca_xlsx(SAUDI, "s")[:3]
    df = samples_to_frame(samples)
    assert df.columns == ["sample_id", "language", "source", "format", "messages", "user_chars",
                          "assistant_chars", "purity", "meta"]
    assert df.height == 8 and df["purity"].min() == 1.0
    assert df["user_chars"][0] == len(samples[0].user_text)
    back = frame_to_samples(df)
    assert back == samples
    assert samples_to_frame([]).height == 0


def test_build_sft_dataset_counts(declaration_dir: Path, chapters: list) -> None:
    build = build_sft_dataset(["bundled", "corpus", "saudi"], chapters=chapters,
                              declaration_dir=declaration_dir)
    stats = build.stats
    assert stats["by_source"] == {
        "english_alpaca": 30,
        "saudi_dialect": 35,  # 40 rows, every 8th held out
        "tamil_instructions": 41,
        "thirukkural": 1197,
        "udhr_eng_tam": 46,
        "udhr_eng_urd": 46,
        "urdu_instructions": 42,
    }
    assert stats["by_language"] == {"ar": 35, "en": 30, "ta": 1284, "ur": 88}
    assert stats["dropped"] == 0 and stats["flagged"] == {
        "ambiguous Arabic-script text declared ar": 1
    }
    assert validate_chatml(build.samples) == []
    assert len({s.sample_id for s in build.samples}) == len(build.samples)

    only = build_sft_dataset(["bundled"], languages=["ur", "en"], max_per_source=10)
    assert only.stats["by_language"] == {"en": 10, "ur": 10}
    assert only.stats["filtered_language"] == {"ta": 10}
    assert only.stats["capped"]["bundled_ur"] == [42, 10]
    heldout = build_sft_dataset(["bundled", "corpus"], split="heldout", chapters=chapters,
                                declaration_dir=declaration_dir)
    assert set(heldout.stats["by_source"]) == {"thirukkural", "udhr_eng_tam", "udhr_eng_urd"}
    dialect_train = {s.meta["row"] for s in build.samples if s.language == "ar"}
    dialect_heldout = build_sft_dataset(["saudi"], split="heldout").samples
    assert {s.meta["row"] for s in dialect_heldout} == {8, 16, 24, 32, 40}
    assert not dialect_train & {s.meta["row"] for s in dialect_heldout}
    with pytest.raises(ValueError, match="unknown SFT source"):
        build_sft_dataset(["wikipedia"])
