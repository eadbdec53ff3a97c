"""GGUF -> Q8_0 / Q4_K_M / ... through llama.cpp's ``llama_model_quantize``.

Called via the ``llama_cpp`` ctypes binding (llama-cpp-python ships no ``llama-quantize``
command); an importance matrix (``imatrix``) is handed to the quantizer when given.
"""

from __future__ import annotations

import ctypes
import logging
import time
from pathlib import Path
from typing import Any, Literal

from vazhi_assets.export.gguf_files import (
    ExportError,
    check_magic,
    publish,
    read_gguf_metadata,
    staging_path,
)
from vazhi_assets.export.imatrix import read_imatrix
from vazhi_assets.export.llama_runtime import capture_llama_log, import_llama_cpp, llama_log_errors

log = logging.getLogger(__name__)

QuantType = Literal[
    "F16", "BF16", "Q8_0", "Q6_K", "Q5_K_M", "Q5_K_S", "Q5_1", "Q5_0", "Q4_K_M", "Q4_K_S",
    "Q4_1", "Q4_0", "Q3_K_L", "Q3_K_M", "Q3_K_S", "Q2_K", "IQ4_XS", "IQ4_NL",
]
QUANT_TYPES: tuple[str, ...] = QuantType.__args__


def llama_ftype(ftype: str) -> int:
    """The ``llama_ftype`` number for a quantization name such as ``Q4_K_M``."""
    llama_cpp = import_llama_cpp()
    name = ftype.upper()
    if name not in QUANT_TYPES:
        raise ExportError(f"unsupported quantization {ftype!r}; choose one of {QUANT_TYPES}")
    value = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{name}", None)
    if value is None:
        raise ExportError(f"this llama-cpp-python has no LLAMA_FTYPE_MOSTLY_{name}")
    return int(value)


def quantize_gguf(
    src: Path,
    dst: Path,
    ftype: QuantType,
    imatrix: Path | None = None,
    *,
    nthread: int = 0,
    allow_requantize: bool = False,
) -> Path:
    """Quantize a F16/BF16/F32 GGUF with llama.cpp's ``llama_model_quantize``.

    ``imatrix`` is an importance-matrix file in llama.cpp's GGUF imatrix layout (as written by
    ``compute_imatrix`` or ``llama-imatrix``). ``nthread`` 0 uses every core. Atomic: written to
    a temporary name beside ``dst`` and renamed; raises ``ExportError`` (with llama.cpp's log
    tail) when llama.cpp returns non-zero.
    """
    llama_cpp = import_llama_cpp()
    src, dst = Path(src), Path(dst)
    if src.resolve() == dst.resolve():
        raise ExportError("quantize_gguf needs distinct source and destination paths")
    source_meta = read_gguf_metadata(src)  # fails clearly on a missing or truncated source
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = llama_ftype(ftype)
    params.nthread = int(nthread)
    params.allow_requantize = bool(allow_requantize)
    keep_alive: list[Any] = []
    if imatrix is not None:
        entries = read_imatrix(Path(imatrix))
        params.imatrix = _imatrix_struct(llama_cpp, entries, keep_alive)
    staging = staging_path(dst)
    started = time.perf_counter()
    try:
        with capture_llama_log() as lines:
            code = llama_cpp.llama_model_quantize(
                str(src).encode(), str(staging).encode(), ctypes.byref(params))
        if code != 0:
            raise ExportError(
                f"llama_model_quantize {src.name} -> {ftype} returned {code}; llama.cpp log "
                f"tail:\n{llama_log_errors(lines)}")
        check_magic(staging)
        publish(staging, dst)
    finally:
        staging.unlink(missing_ok=True)
    fallbacks = [line.strip() for line in lines if "falling back" in line]
    log.info("quantized %s (%s) -> %s %s (%.1f MB) in %.1f s; %d tensor(s) fell back",
             src.name, source_meta.get("file_type_name"), dst.name, ftype,
             dst.stat().st_size / 1e6, time.perf_counter() - started, len(fallbacks))
    return dst


def _imatrix_struct(llama_cpp: Any, entries: dict[str, Any], keep_alive: list[Any]) -> Any:
    """A NULL-terminated ``llama_model_imatrix_data`` array; ``keep_alive`` owns the memory."""
    import numpy as np

    array_type = llama_cpp.llama_model_imatrix_data * (len(entries) + 1)
    array = array_type()
    for index, (name, values) in enumerate(sorted(entries.items())):
        data = np.ascontiguousarray(values, dtype=np.float32)
        encoded = name.encode()
        keep_alive += [data, encoded]
        array[index].name = encoded
        array[index].data = data.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
        array[index].size = data.size
    keep_alive.append(array)  # the last element stays zeroed: name == NULL ends the list
    return ctypes.cast(array, ctypes.POINTER(llama_cpp.llama_model_imatrix_data))
