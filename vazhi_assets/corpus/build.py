"""Plain functions between crawl rows, cleaning steps and corpus tables (no Dagster here)."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable
from dataclasses import dataclass

import polars as pl

from vazhi_assets.corpus.scripts import script_purity
from vazhi_assets.corpus.steps import Document

CORPUS_SCHEMA: dict[str, pl.DataType] = {
    "doc_id": pl.String(),
    "source": pl.String(),
    "language": pl.String(),
    "url": pl.String(),
    #: sha256 of the crawled page the document came from (its lineage back to the crawl)
    "page_hash": pl.String(),
    "text": pl.String(),
    "n_words": pl.Int32(),
    "n_chars": pl.Int32(),
    "script_purity": pl.Float64(),
    "lang_pred": pl.String(),
    "lang_prob": pl.Float64(),
}

REJECT_SCHEMA: dict[str, pl.DataType] = {
    "doc_id": pl.String(),
    "source": pl.String(),
    "language": pl.String(),
    "url": pl.String(),
    "step": pl.String(),
    "reason": pl.String(),
    "text": pl.String(),
}


def doc_id_for(source: str, url: str) -> str:
    return hashlib.sha1(f"{source}\n{url}".encode()).hexdigest()[:16]


def documents_from_crawl(pages: pl.DataFrame) -> list[Document]:
    """Usable crawled pages as documents: crawl4ai's filtered markdown, raw markdown if empty."""
    docs = []
    for row in pages.filter(pl.col("ok")).sort(["source", "url"]).iter_rows(named=True):
        text = row["markdown_fit"] or ""
        if not text.strip():
            text = row["markdown_raw"] or ""
        docs.append(
            Document(
                doc_id=doc_id_for(row["source"], row["url"]),
                text=text,
                source=row["source"],
                language=row["language"],
                url=row["url"],
                meta={"title": row["title"], "content_hash": row["content_hash"]},
            )
        )
    return docs


def corpus_frame(docs: Iterable[Document]) -> pl.DataFrame:
    rows = []
    for doc in docs:
        purity = doc.meta.get("script_purity")
        rows.append(
            {
                "doc_id": doc.doc_id,
                "source": doc.source,
                "language": doc.language,
                "url": doc.url,
                "page_hash": doc.meta.get("content_hash"),
                "text": doc.text,
                "n_words": len(doc.text.split()),
                "n_chars": len(doc.text),
                "script_purity": purity if purity is not None
                else script_purity(doc.text, doc.language),
                "lang_pred": doc.meta.get("lang_pred"),
                "lang_prob": doc.meta.get("lang_prob"),
            }
        )
    return pl.DataFrame(rows, schema=CORPUS_SCHEMA)


def documents_from_frame(frame: pl.DataFrame) -> list[Document]:
    return [
        Document(
            doc_id=row["doc_id"],
            text=row["text"],
            source=row["source"],
            language=row["language"],
            url=row["url"],
            meta={**{k: row[k] for k in ("script_purity", "lang_pred", "lang_prob") if k in row},
                  "content_hash": row.get("page_hash")},
        )
        for row in frame.iter_rows(named=True)
    ]


@dataclass(frozen=True)
class MixSummary:
    target_words: int
    replay_words: int
    requested_ratio: float

    @property
    def achieved_ratio(self) -> float:
        total = self.target_words + self.replay_words
        return self.replay_words / total if total else 0.0


def replay_mix(
    target: pl.DataFrame, replay: pl.DataFrame, replay_ratio: float, seed: int = 0
) -> tuple[pl.DataFrame, MixSummary]:
    """Target documents plus English replay documents making up ``replay_ratio`` of all words.

    Replay documents are drawn in a seeded random order until the budget
    ``ratio / (1 - ratio) * target_words`` is met; if English runs out the achieved ratio is lower
    and says so. Rows carry ``role`` = target | replay.
    """
    if not 0.0 <= replay_ratio < 1.0:
        raise ValueError(f"replay_ratio must be in [0, 1), got {replay_ratio}")
    target_words = int(target["n_words"].sum() or 0)
    budget = replay_ratio / (1.0 - replay_ratio) * target_words
    order = list(range(replay.height))
    random.Random(seed).shuffle(order)
    chosen, words = [], 0
    counts = replay["n_words"].to_list()
    for index in order:
        if words >= budget:
            break
        # take a document only if it brings the total closer to the budget
        if words + counts[index] - budget > budget - words:
            continue
        chosen.append(index)
        words += counts[index]
    picked = replay[sorted(chosen)] if chosen else replay.clear()
    mix = pl.concat(
        [
            target.select(CORPUS_SCHEMA.keys()).with_columns(role=pl.lit("target")),
            picked.select(CORPUS_SCHEMA.keys()).with_columns(role=pl.lit("replay")),
        ]
    )
    return mix, MixSummary(target_words, words, replay_ratio)


def reject_frame(dropped: Iterable[object]) -> pl.DataFrame:
    """Dropped documents with the step and reason that dropped them (nothing is lost)."""
    rows = [{k: record.as_dict().get(k) for k in REJECT_SCHEMA} for record in dropped]
    return pl.DataFrame(rows, schema=REJECT_SCHEMA)


def dedup_reject_frame(*results: object) -> pl.DataFrame:
    """Documents the dedup passes dropped, with the pass and the document kept instead."""
    rows = [{"doc_id": doc.doc_id, "source": doc.source, "language": doc.language,
             "url": doc.url, "step": result.stats.step, "reason": f"duplicate of {kept}",
             "text": doc.text}
            for result in results for doc, kept in result.dropped]
    return pl.DataFrame(rows, schema=REJECT_SCHEMA)


def cluster_frame(result: object) -> pl.DataFrame:
    """One row per near-duplicate cluster: size, the kept doc_id and all members."""
    rows = result.cluster_rows()
    return pl.DataFrame(
        rows,
        schema={"cluster": pl.Int64(), "size": pl.Int64(), "kept": pl.String(),
                "members": pl.List(pl.String())},
    ).rename({"size": "cluster_size"})


def dedup_funnel(corpus: pl.DataFrame, exact: object, near: object) -> pl.DataFrame:
    """Funnel rows (per source) for the two dedup passes, continuing the cleaning funnel."""
    source_of = dict(zip(corpus["doc_id"], corpus["source"], strict=True))
    rows = []
    seen = corpus.group_by("source").agg(n=pl.len())
    current = dict(zip(seen["source"], seen["n"], strict=True))
    for order, result in ((100, exact), (101, near)):
        lost: dict[str, int] = {}
        for doc, _ in result.dropped:
            source = source_of.get(doc.doc_id, doc.source)
            lost[source] = lost.get(source, 0) + 1
        for source in sorted(current):
            before = current[source]
            dropped = lost.get(source, 0)
            rows.append({"source": source, "step": result.stats.step, "order": order,
                         "seen": before, "kept": before - dropped, "dropped": dropped})
            current[source] = before - dropped
    return pl.DataFrame(rows)
