"""Tokenize the pretraining mix and pack it into fixed-length blocks, written as parquet shards.

Blocks never mix languages (so held-out perplexity can be read per language), documents are
joined with the end-of-text token, and the train/val split is decided per document by a hash
of its id: the same inputs always give the same shards.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

import polars as pl

from vazhi_assets.storage import atomic_write_text, write_parquet

BLOCKS_PER_SHARD = 2048
DOCUMENTS_FILE = "documents.parquet"


def split_of(doc_id: str, val_fraction: float) -> str:
    """Deterministic train/val assignment of one document."""
    bucket = int(hashlib.sha1(doc_id.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "val" if bucket < val_fraction else "train"


@dataclass
class ShardManifest:
    seq_length: int
    tokenizer: str
    separator_token_id: int
    val_fraction: float
    blocks: dict[str, int] = field(default_factory=dict)
    tokens_by_split_language: dict[str, dict[str, int]] = field(default_factory=dict)
    tokens_by_source: dict[str, int] = field(default_factory=dict)
    documents_by_split: dict[str, int] = field(default_factory=dict)
    replay_token_share: float = 0.0
    dropped_tail_tokens: int = 0
    files: dict[str, str] = field(default_factory=dict)
    val_documents: dict[str, list[str]] = field(default_factory=dict)
    #: replay documents the budget left out of the mix: never trained on, so held out too
    unused_replay_documents: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def load(cls, path: Path) -> ShardManifest:
        return cls(**json.loads(path.read_text(encoding="utf-8")))


def pack(
    token_lists: list[list[int]], seq_length: int, separator: int
) -> tuple[list[list[int]], int]:
    """Concatenate documents (each followed by ``separator``) and cut into full blocks.

    Returns the blocks and the number of tail tokens that did not fill a last block.
    """
    stream: list[int] = []
    for ids in token_lists:
        stream.extend(ids)
        stream.append(separator)
    full = len(stream) // seq_length
    blocks = [stream[i * seq_length:(i + 1) * seq_length] for i in range(full)]
    return blocks, len(stream) - full * seq_length


def assign_splits(frame: pl.DataFrame, val_fraction: float, min_val_docs: int = 3) -> pl.DataFrame:
    """Add ``split``: a document is in val when the hash of its id falls below
    ``val_fraction`` (so adding documents never moves the others), topped up per language with
    the lowest hashes to at least ``min_val_docs``, and never more than half."""
    ranked = frame.with_columns(
        _bucket=pl.col("doc_id").map_elements(
            lambda d: int(hashlib.sha1(d.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF,
            return_dtype=pl.Float64),
    ).with_columns(
        _rank=pl.col("_bucket").rank("ordinal").over("language"),
        _n=pl.len().over("language"),
    )
    floor = pl.min_horizontal(pl.lit(min_val_docs), (pl.col("_n") / 2).floor())
    val = ((pl.col("_bucket") < val_fraction) | (pl.col("_rank") <= floor)) & (
        pl.col("_rank") <= (pl.col("_n") / 2).floor())
    return ranked.with_columns(
        split=pl.when(val).then(pl.lit("val")).otherwise(pl.lit("train"))
    ).drop("_bucket", "_rank", "_n")


def _replay_budget(
    target_tokens: int, pool: list[tuple[dict, list[int]]], ratio: float
) -> list[tuple[dict, list[int]]]:
    """Replay documents, in pool order, until they are ``ratio`` of all tokens."""
    budget = ratio / (1.0 - ratio) * target_tokens
    chosen, tokens = [], 0
    for row, ids in pool:
        if tokens >= budget:
            break
        chosen.append((row, ids))
        tokens += len(ids)
    return chosen


def build_cpt_shards(
    target: pl.DataFrame,
    replay_pool: pl.DataFrame,
    tokenizer: object,
    out_dir: Path,
    *,
    seq_length: int,
    val_fraction: float,
    replay_ratio: float,
    tokenizer_name: str,
) -> ShardManifest:
    """Write ``train-*.parquet`` / ``val-*.parquet`` blocks and ``manifest.json`` to ``out_dir``.

    ``replay_ratio`` is enforced in tokens (the corpus mix can only count words, and a Tamil
    word costs ~10x the tokens of an English one): replay documents are taken from
    ``replay_pool`` in order until they make up that share of all tokens.
    """
    vocab = tokenizer.get_vocab()
    separator = vocab.get("<|endoftext|>", vocab.get("<|end_of_text|>", tokenizer.eos_token_id))
    manifest = ShardManifest(seq_length, tokenizer_name, separator, val_fraction)

    def encode(frame: pl.DataFrame) -> list[tuple[dict, list[int]]]:
        if frame.is_empty():
            return []
        ids = tokenizer(frame["text"].to_list(), add_special_tokens=False)["input_ids"]
        return list(zip(frame.iter_rows(named=True), ids, strict=True))

    targets = encode(target.sort("doc_id"))
    target_tokens = sum(len(ids) for _, ids in targets)
    pool = encode(replay_pool)
    replay = _replay_budget(target_tokens, pool, replay_ratio)
    manifest.unused_replay_documents = [row["doc_id"] for row, _ in pool[len(replay):]][:64]
    docs = targets + replay
    table = pl.DataFrame([row for row, _ in docs], infer_schema_length=None).with_columns(
        n_tokens=pl.Series([len(ids) for _, ids in docs]))
    table = assign_splits(table, val_fraction)
    split_by_id = dict(zip(table["doc_id"], table["split"], strict=True))
    for (language,), part in table.filter(pl.col("split") == "val").group_by("language"):
        manifest.val_documents[language] = sorted(part["doc_id"].to_list())
    groups: dict[tuple[str, str], list[list[int]]] = defaultdict(list)
    for row, ids in docs:
        groups[(split_by_id[row["doc_id"]], row["language"])].append(ids)
        manifest.tokens_by_source[row["source"]] = (
            manifest.tokens_by_source.get(row["source"], 0) + len(ids))
    for split, count in table.group_by("split").len().iter_rows():
        manifest.documents_by_split[split] = count
    roles = {row["doc_id"]: "target" for row, _ in targets}
    lineage = [c for c in ("url", "page_hash") if c in table.columns]
    documents = table.select(
        "doc_id", "source", *lineage, "language", "split", "n_tokens",
        role=pl.col("doc_id").map_elements(lambda d: roles.get(d, "replay"),
                                           return_dtype=pl.String),
    ).with_columns(pl.lit(None, pl.String).alias(c) for c in ("url", "page_hash")
                   if c not in lineage).sort("doc_id")
    replay_tokens = sum(len(ids) for _, ids in replay)
    manifest.replay_token_share = round(replay_tokens / max(1, target_tokens + replay_tokens), 4)

    rows: dict[str, list[dict]] = defaultdict(list)
    for (split, language), token_lists in sorted(groups.items()):
        blocks, tail = pack(token_lists, seq_length, separator)
        manifest.dropped_tail_tokens += tail
        per_language = manifest.tokens_by_split_language.setdefault(split, {})
        per_language[language] = per_language.get(language, 0) + len(blocks) * seq_length
        rows[split].extend({"input_ids": b, "language": language} for b in blocks)
    out_dir.mkdir(parents=True, exist_ok=True)
    # every document packed into the shards, with its split: the CPT stage's lineage
    write_parquet(documents, out_dir / DOCUMENTS_FILE)
    for split in ("train", "val"):
        blocks = rows.get(split, [])
        manifest.blocks[split] = len(blocks)
        for start in range(0, max(1, len(blocks)), BLOCKS_PER_SHARD):
            chunk = blocks[start:start + BLOCKS_PER_SHARD]
            name = f"{split}-{start // BLOCKS_PER_SHARD:05d}.parquet"
            frame = pl.DataFrame(
                chunk, schema={"input_ids": pl.List(pl.Int32()), "language": pl.String()}
            )
            path = write_parquet(frame, out_dir / name)
            manifest.files[name] = hashlib.sha256(path.read_bytes()).hexdigest()
    atomic_write_text(out_dir / "manifest.json", manifest.to_json())
    return manifest


def shard_files(out_dir: Path, split: str) -> list[str]:
    return sorted(str(p) for p in out_dir.glob(f"{split}-*.parquet"))
