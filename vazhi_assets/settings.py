"""Where vazhi_assets keeps its data: one directory, set with ``VAZHI_DATA_DIR``."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PACKAGE_DIR = Path(__file__).resolve().parent


def data_dir() -> Path:
    """Root of everything the pipeline writes (corpora, crawls, catalog, vendor text).

    Defaults to ``./data`` beside the project; ``VAZHI_DATA_DIR`` points it elsewhere.
    """
    root = Path(os.environ.get("VAZHI_DATA_DIR", PROJECT_ROOT / "data")).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    return root.resolve()


def vendor_dir() -> Path:
    """Third-party text fetched by the setup step from package registries (never committed)."""
    path = data_dir() / "vendor"
    path.mkdir(parents=True, exist_ok=True)
    return path
