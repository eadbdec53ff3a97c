"""Dagster resources: where data lives and the bundled demo web site."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import polars as pl

from vazhi_assets.gates import Consumed, consume
from vazhi_assets.identity import table_version
from vazhi_assets.settings import data_dir
from vazhi_assets.storage import Catalog, read_parquet, write_parquet


class VazhiStorage(dg.ConfigurableResource):
    """All files of the pipeline under one directory (default ``$VAZHI_DATA_DIR`` or ``./data``)."""

    root: str = ""

    @property
    def base(self) -> Path:
        path = Path(self.root).expanduser() if self.root else data_dir()
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def catalog(self) -> Catalog:
        return Catalog(self.base / "catalog.duckdb")

    def table_path(self, name: str, partition: str | None = None) -> Path:
        if partition is None:
            return self.base / "tables" / f"{name}.parquet"
        return self.base / "tables" / name / f"{partition}.parquet"

    def write_table(self, name: str, frame: pl.DataFrame, partition: str | None = None) -> Path:
        """Write a table atomically and expose it as a view in the catalog."""
        path = write_parquet(frame, self.table_path(name, partition))
        pattern = path if partition is None else path.parent / "*.parquet"
        self.catalog.register_parquet_view(name, pattern)
        return path

    def read_table(self, name: str, partition: str | None = None) -> pl.DataFrame | None:
        return read_parquet(self.table_path(name, partition))

    def read_partitions(self, name: str, partitions: list[str]) -> dict[str, pl.DataFrame]:
        """The stored partitions among ``partitions`` (missing ones are simply absent)."""
        found = {}
        for key in partitions:
            frame = self.read_table(name, key)
            if frame is not None:
                found[key] = frame
        return found

    def read_checked(
        self, context: dg.AssetExecutionContext, asset: object, key: str | list[str],
        partition: str | None = None, name: str | None = None,
    ) -> tuple[pl.DataFrame, Consumed]:
        """A table asset's file, after its blocking checks passed on the materialization whose
        content hash equals this file's; returns the frame and what was consumed."""
        asset_key = dg.AssetKey.from_coercible_or_definition(asset)
        table = name or asset_key.path[-1]
        frame = self.read_table(table, partition)
        if frame is None:
            raise dg.Failure(f"{table} has no file for partition {partition!r}; materialize "
                             f"{asset_key.to_user_string()} first")
        consumed = consume(context, asset_key, partition=partition,
                           content_hash=table_version(frame, key))
        return frame, consumed

    @property
    def html_dir(self) -> Path:
        return self.base / "raw_html"

    @property
    def crawler_state_dir(self) -> Path:
        return self.base / "crawl4ai"


class DemoSite(dg.ConfigurableResource):
    """The bundled mini news site, built from real Urdu/Tamil/English text, on 127.0.0.1.

    ``port`` 0 (the default) serves each run on a free port, so parallel crawls never collide;
    crawled URLs are stored as ``{demo_site}/path`` whatever the port was."""

    port: int = 0
    slow_seconds: float = 20.0
    root: str = ""

    @contextmanager
    def serve(self) -> Iterator[str]:
        """Build the site (deterministic) and serve it; yields the base URL."""
        from vazhi_assets.demo.site_build import build_demo_site
        from vazhi_assets.demo.site_server import DemoSiteServer

        site_root = Path(self.root) if self.root else data_dir() / "demo_site"
        build_demo_site(site_root)
        server = DemoSiteServer(site_root, port=self.port, slow_seconds=self.slow_seconds)
        with server:
            yield server.base_url
