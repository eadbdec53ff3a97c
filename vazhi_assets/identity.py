"""Content identities: file, directory and table hashes, and code versions for Dagster.

Every asset records the hash of what it wrote as its Dagster data version and the hashes of
what it read; the same bytes always give the same identity, so re-running with nothing
changed leaves nothing stale.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

_FILE_CACHE: dict[tuple[str, int, int, int], str] = {}


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    """sha256 of a file, read from disk every time: what identities and integrity checks use
    (a file changed in place with its size and mtime kept must not pass as the old one)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_file_memo(path: Path) -> str:
    """:func:`sha256_file` memoised per (path, inode, size, mtime) within the process: only for
    read-only inputs hashed again and again (an installed wheel's model file)."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_ino, stat.st_size, stat.st_mtime_ns)
    if key not in _FILE_CACHE:
        _FILE_CACHE[key] = sha256_file(path)
    return _FILE_CACHE[key]


def dir_sha256(path: Path, pattern: str = "*", skip: Iterable[str] = ()) -> str:
    """One hash over the files of a directory matching ``pattern`` (names and contents,
    sorted by relative path; hidden staging files and ``skip`` names left out)."""
    skipped = set(skip)
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob(pattern) if p.is_file()
                   and not any(part.startswith(".") for part in p.relative_to(path).parts)
                   and p.name not in skipped)
    if not files:
        raise FileNotFoundError(f"{path}: nothing to hash (pattern {pattern!r})")
    for file in files:
        digest.update(f"{file.relative_to(path).as_posix()}\0{sha256_file(file)}\n".encode())
    return digest.hexdigest()


def rows_sha256(rows: Iterable[dict[str, Any]]) -> str:
    """Hash of rows in the order given (each as canonical JSON on its own line)."""
    digest = hashlib.sha256()
    for row in rows:
        digest.update(json.dumps(row, sort_keys=True, ensure_ascii=False, default=str).encode())
        digest.update(b"\n")
    return digest.hexdigest()


def frame_sha256(frame: Any, key: str | list[str], columns: list[str] | None = None) -> str:
    """Hash of a polars frame's ``columns`` (all by default), rows sorted by ``key``: the
    same table always hashes the same, whatever order it was built in."""
    selected = frame.select(columns) if columns else frame
    return rows_sha256(selected.sort(key).iter_rows(named=True))


def version(hexdigest: str) -> str:
    """The short form recorded as a Dagster data version (64 bits of the digest)."""
    return hexdigest[:16]


def module_source_hash(*modules: str) -> str:
    """Hash of the source files of ``modules`` (dotted names), without importing them."""
    digest = hashlib.sha256()
    for name in sorted(set(modules)):
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            raise ModuleNotFoundError(f"no source for module {name!r}")
        digest.update(name.encode() + b"\0" + Path(spec.origin).read_bytes() + b"\n")
    return digest.hexdigest()


def code_version(*modules: str, after: Iterable[Any] = ()) -> str:
    """A Dagster ``code_version`` over an asset's own code (``modules``) and the code versions
    of the assets it reads (``after``, AssetsDefinitions): editing a cleaning step changes the
    corpus's code version and that of everything downstream, so the UI marks them stale."""
    parts = [module_source_hash(*modules)]
    for assets_def in after:
        parts.extend(sorted(v or "" for v in assets_def.code_versions_by_key.values()))
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:12]


def table_version(frame: Any, key: str | list[str]) -> str:
    """The content hash a table asset records (and its readers recompute before reading)."""
    return version(frame_sha256(frame, key))


def dir_version(path: Path, pattern: str = "*", skip: Iterable[str] = ()) -> str:
    return version(dir_sha256(path, pattern, skip))


#: Files of a transformers checkpoint that make up its tokenizer (the rest is the weights).
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                   "chat_template.jinja", "tokenizer.model", "vocab.json", "merges.txt",
                   "added_tokens.json")
WEIGHT_FILES = ("config.json", "generation_config.json")


def model_identity(path: Path) -> dict[str, str]:
    """Separate hashes of a checkpoint's weights and of its tokenizer, and one content hash."""
    weights, tokenizer = hashlib.sha256(), hashlib.sha256()
    files = sorted(p for p in path.iterdir() if p.is_file())
    for file in files:
        line = f"{file.name}\0{sha256_file(file)}\n".encode()
        if file.name in TOKENIZER_FILES:
            tokenizer.update(line)
        elif file.suffix == ".safetensors" or file.name in WEIGHT_FILES:
            weights.update(line)
    if not any(f.suffix == ".safetensors" for f in files):
        raise FileNotFoundError(f"{path} holds no safetensors weights")
    identity = {"weights_sha256": weights.hexdigest(), "tokenizer_sha256": tokenizer.hexdigest()}
    identity["content_hash"] = version(
        hashlib.sha256((identity["weights_sha256"] + identity["tokenizer_sha256"]).encode())
        .hexdigest())
    return identity


def project_version() -> str:
    """The git commit of the checkout (``+dirty`` with local edits), else the package version:
    what is written into every benchmark row and provenance manifest."""
    import subprocess

    from vazhi_assets.settings import PROJECT_ROOT

    try:
        head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=PROJECT_ROOT,
                              capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=PROJECT_ROOT, capture_output=True, text=True).stdout.strip()
        return head + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        from importlib.metadata import version as package_version

        return f"vazhi_assets=={package_version('vazhi_assets')}"
