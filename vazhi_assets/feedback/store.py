"""The feedback store: user ratings and corrections of model answers, in DuckDB.

Rows arrive as JSON lines (files dropped in the inbox folder, or ``vazhi-feedback add``). Each
row is validated; an accepted row gets an id derived from its content, so the same feedback
dropped twice is stored once, and a monotonically increasing ``seq`` that sensors use as their
cursor. A malformed row goes to ``feedback_rejects`` with the reason, its file and line. Each
file is ingested in one transaction: a crash mid-file leaves the store as it was.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import duckdb
import polars as pl
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from vazhi_assets.storage import Catalog

LANGUAGES = ("ur", "ta", "ar", "en")

_SCHEMA = """
CREATE SEQUENCE IF NOT EXISTS feedback_seq START 1;
CREATE TABLE IF NOT EXISTS feedback (
    seq BIGINT PRIMARY KEY DEFAULT nextval('feedback_seq'),
    feedback_id VARCHAR UNIQUE NOT NULL,
    prompt VARCHAR NOT NULL,
    answer VARCHAR NOT NULL,
    rating VARCHAR NOT NULL,
    correction VARCHAR,
    language VARCHAR NOT NULL,
    model_version VARCHAR NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    source VARCHAR NOT NULL,
    ingested_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS feedback_rejects (
    origin VARCHAR NOT NULL,
    line BIGINT,
    raw VARCHAR NOT NULL,
    reason VARCHAR NOT NULL,
    ingested_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS feedback_excluded (
    feedback_id VARCHAR PRIMARY KEY,
    reason VARCHAR NOT NULL,
    excluded_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS feedback_files (
    sha256 VARCHAR PRIMARY KEY,
    name VARCHAR NOT NULL,
    accepted BIGINT NOT NULL,
    duplicates BIGINT NOT NULL,
    rejected BIGINT NOT NULL,
    ingested_at TIMESTAMPTZ NOT NULL
);
"""


class FeedbackRow(BaseModel):
    """One rating of one answer. ``correction`` is the answer the user wanted instead."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    prompt: str = Field(min_length=1)
    answer: str = Field(min_length=1)
    rating: Literal["up", "down"]
    correction: str | None = None
    language: Literal["ur", "ta", "ar", "en"]
    model_version: str = Field(min_length=1)
    created_at: datetime | None = None
    source: str = Field("jsonl", min_length=1)

    @field_validator("correction")
    @classmethod
    def _empty_is_none(cls, value: str | None) -> str | None:
        return value or None

    @field_validator("created_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        return value if value is None or value.tzinfo else value.replace(tzinfo=UTC)

    def feedback_id(self) -> str:
        """Content id: the same rating of the same answer (at the same time, when the row says
        when) is one row, however often it is dropped."""
        when = self.created_at.isoformat() if self.created_at else None
        key = json.dumps([self.prompt, self.answer, self.rating, self.correction, self.language,
                          self.model_version, when], ensure_ascii=False)
        return hashlib.sha256(key.encode()).hexdigest()[:20]


@dataclass
class IngestResult:
    origin: str
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    skipped_file: bool = False


def _reason(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'row'}: {e['msg']}"
                     for e in exc.errors())


class FeedbackStore:
    """``feedback.duckdb`` beside the catalog (its own file: ingest never waits on a run)."""

    def __init__(self, path: Path) -> None:
        self.catalog = Catalog(path)
        with self.catalog.connect() as con:
            con.execute(_SCHEMA)

    def _ingest(self, con: duckdb.DuckDBPyConnection, origin: str,
                lines: Iterable[tuple[int, str]], result: IngestResult) -> None:
        now = datetime.now(UTC)
        for number, raw in lines:
            if not raw.strip():
                continue
            try:
                data = json.loads(raw)
                if not isinstance(data, dict):
                    raise ValueError("a row must be a JSON object")
                row = FeedbackRow.model_validate(data)
            except ValidationError as exc:
                reason = _reason(exc)
            except ValueError as exc:  # json.JSONDecodeError is a ValueError
                reason = f"not JSON: {exc}"
            else:
                inserted = con.execute(
                    "INSERT INTO feedback (feedback_id, prompt, answer, rating, correction, "
                    "language, model_version, created_at, source, ingested_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING seq",
                    [row.feedback_id(), row.prompt, row.answer, row.rating, row.correction,
                     row.language, row.model_version, row.created_at or now, row.source, now],
                ).fetchall()
                if inserted:
                    result.accepted += 1
                else:
                    result.duplicates += 1
                continue
            con.execute("INSERT INTO feedback_rejects VALUES (?, ?, ?, ?, ?)",
                        [origin, number, raw[:10000], reason, now])
            result.rejected += 1

    def ingest_lines(self, origin: str, lines: Iterable[str]) -> IngestResult:
        """Validate and store JSON lines in one transaction."""
        result = IngestResult(origin)
        with self.catalog.connect() as con:
            con.execute("BEGIN TRANSACTION")
            try:
                self._ingest(con, origin, enumerate(lines, start=1), result)
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        return result

    def ingest_file(self, path: Path) -> IngestResult:
        """One JSONL file; a file already ingested (same bytes) is skipped, not re-counted."""
        data = path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        result = IngestResult(path.name)
        with self.catalog.connect() as con:
            con.execute("BEGIN TRANSACTION")
            try:
                if con.execute("SELECT 1 FROM feedback_files WHERE sha256 = ?",
                               [digest]).fetchone():
                    result.skipped_file = True
                else:
                    text = data.decode("utf-8", errors="replace")
                    self._ingest(con, path.name, enumerate(text.splitlines(), start=1), result)
                    con.execute("INSERT INTO feedback_files VALUES (?, ?, ?, ?, ?, ?)",
                                [digest, path.name, result.accepted, result.duplicates,
                                 result.rejected, datetime.now(UTC)])
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        return result

    def ingest_inbox(self, inbox: Path, settle_seconds: float = 2.0) -> list[IngestResult]:
        """Every ``*.jsonl`` in ``inbox`` untouched for ``settle_seconds`` (a file still being
        written waits for the next call); ingested files move to ``inbox/done`` under a name
        prefixed with their digest, so equal names never overwrite each other."""
        results = []
        done = inbox / "done"
        for path in sorted(inbox.glob("*.jsonl")):
            try:
                if time.time() - path.stat().st_mtime < settle_seconds:
                    continue
                result = self.ingest_file(path)
                digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
                done.mkdir(parents=True, exist_ok=True)
                shutil.move(str(path), done / f"{digest}-{path.name}")
            except FileNotFoundError:
                continue  # another ingester (the sensor or the asset) took it first
            results.append(result)
        return results

    def exclude(self, reasons: dict[str, str]) -> int:
        """Keep accepted rows out of training (``feedback_id -> reason``), e.g. a correction
        that fails the SFT checks: it is listed in ``feedback_rejects`` instead of blocking
        every retrain. Returns how many rows were newly excluded."""
        if not reasons:
            return 0
        now = datetime.now(UTC)
        added = 0
        with self.catalog.connect() as con:
            con.execute("BEGIN TRANSACTION")
            try:
                for feedback_id, reason in reasons.items():
                    new = con.execute("INSERT INTO feedback_excluded VALUES (?, ?, ?) "
                                      "ON CONFLICT DO NOTHING RETURNING feedback_id",
                                      [feedback_id, reason, now]).fetchall()
                    if new:
                        con.execute("INSERT INTO feedback_rejects VALUES (?, NULL, ?, ?, ?)",
                                    [f"feedback:{feedback_id}", feedback_id, reason, now])
                        added += 1
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        return added

    def rows(self, after_seq: int = 0) -> pl.DataFrame:
        """Accepted rows after ``after_seq``, without the excluded ones."""
        with self.catalog.connect(read_only=True) as con:
            return pl.from_arrow(con.sql(
                f"SELECT * FROM feedback WHERE seq > {int(after_seq)} AND feedback_id NOT IN "
                "(SELECT feedback_id FROM feedback_excluded) ORDER BY seq"
            ).to_arrow_table())

    def rejects(self) -> pl.DataFrame:
        with self.catalog.connect(read_only=True) as con:
            return pl.from_arrow(con.sql(
                "SELECT * FROM feedback_rejects ORDER BY ingested_at, origin, line"
            ).to_arrow_table())

    def usable(self, after_seq: int, languages: Iterable[str], use_upvoted: bool) -> pl.DataFrame:
        """Rows that can become SFT samples: corrections (and up-voted answers if asked) in the
        recipe's languages, after ``after_seq``."""
        rows = self.rows(after_seq)
        if rows.is_empty():
            return rows
        wanted = pl.col("correction").is_not_null()
        if use_upvoted:
            wanted = wanted | (pl.col("rating") == "up")
        return rows.filter(wanted & pl.col("language").is_in(list(languages)))


def row_from_args(args: dict[str, Any]) -> str:
    """One JSON line from command-line fields (validated on ingest like any other row)."""
    return json.dumps({k: v for k, v in args.items() if v is not None}, ensure_ascii=False,
                      default=str)
