"""Atomic files, parquet tables and the DuckDB catalog under the data directory."""

from __future__ import annotations

import functools
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import polars as pl


@functools.cache
def _umask() -> int:
    # os.umask can only be read by setting it: do that once, not around every write (another
    # thread creating a file in between would get mode 0666)
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


def umask_mode(directory: bool = False) -> int:
    """The mode a plain ``open``/``mkdir`` would give under the process's umask."""
    return (0o777 if directory else 0o666) & ~_umask()


def make_shareable(path: Path) -> None:
    """mkstemp/mkdtemp create 0600/0700 entries; give ``path`` (and a tree under it) the
    umask's modes, as files written in place would have."""
    os.chmod(path, umask_mode(path.is_dir()))
    if path.is_dir():
        for entry in path.rglob("*"):
            os.chmod(entry, umask_mode(entry.is_dir()))


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so readers see the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, umask_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def write_parquet(frame: pl.DataFrame, path: Path) -> Path:
    """Atomically write a parquet file (loadable with ``datasets.load_dataset("parquet")``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        frame.write_parquet(tmp, compression="zstd", statistics=True)
        os.chmod(tmp, umask_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_parquet(path: Path) -> pl.DataFrame | None:
    return pl.read_parquet(path) if path.exists() else None


class Catalog:
    """The DuckDB file that exposes every table the pipeline writes.

    Corpora stay parquet files; the catalog holds views over them plus small report tables, so
    ``duckdb data/catalog.duckdb`` answers questions across the whole lineage.
    """

    def __init__(self, path: Path, lock_timeout_s: float = 60.0) -> None:
        self.path = path
        self.lock_timeout_s = lock_timeout_s
        path.parent.mkdir(parents=True, exist_ok=True)

    def connect(self, read_only: bool = False) -> duckdb.DuckDBPyConnection:
        """Open the file, waiting while another process holds its write lock."""
        deadline = time.monotonic() + self.lock_timeout_s
        while True:
            try:
                return duckdb.connect(str(self.path), read_only=read_only)
            except duckdb.IOException as exc:
                if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def register_parquet_view(self, name: str, pattern: Path | str) -> None:
        """(Re)create view ``name`` over parquet file(s) matching ``pattern``."""
        with self.connect() as con:
            con.execute(
                f'CREATE OR REPLACE VIEW "{name}" AS '
                f"SELECT * FROM read_parquet('{pattern}', union_by_name = true)"
            )

    @contextmanager
    def _with_frame(self, frame: pl.DataFrame) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection in a transaction, with ``frame`` registered as ``incoming``."""
        with self.connect() as con:
            con.register("incoming", frame.to_arrow())
            con.execute("BEGIN TRANSACTION")
            try:
                yield con
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
            finally:
                con.unregister("incoming")

    def replace_table(self, name: str, frame: pl.DataFrame) -> None:
        """Swap table ``name`` for ``frame`` in one transaction."""
        with self._with_frame(frame) as con:
            con.execute(f'CREATE OR REPLACE TABLE "{name}" AS SELECT * FROM incoming')

    def append_rows(self, name: str, frame: pl.DataFrame) -> None:
        """Append ``frame`` to table ``name`` (created on first use; new columns are added, so
        history from earlier runs is kept as the schema grows)."""
        with self._with_frame(frame) as con:
            con.execute(f'CREATE TABLE IF NOT EXISTS "{name}" AS SELECT * FROM incoming LIMIT 0')
            existing = dict(con.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_name = ?", [name]).fetchall())
            for column, dtype, *_ in con.execute("DESCRIBE incoming").fetchall():
                if column not in existing:
                    con.execute(f'ALTER TABLE "{name}" ADD COLUMN "{column}" {dtype}')
                elif existing[column] == '"NULL"' or existing[column] == "NULL":
                    if dtype != "NULL":  # a column only ever null so far gets its real type
                        con.execute(f'ALTER TABLE "{name}" ALTER COLUMN "{column}" TYPE {dtype}')
            con.execute(f'INSERT INTO "{name}" BY NAME SELECT * FROM incoming')

    def has_table(self, name: str) -> bool:
        if not self.path.exists():
            return False
        with self.connect(read_only=True) as con:
            return bool(con.execute("select count(*) from information_schema.tables where "
                                    "table_name = ?", [name]).fetchone()[0])

    def query(self, sql: str, params: list | None = None) -> pl.DataFrame:
        """Rows of ``sql`` (``?`` placeholders bound to ``params``)."""
        with self.connect(read_only=True) as con:
            return pl.from_arrow(con.sql(sql, params=params).to_arrow_table())
