"""Corpus-wide deduplication: exact (on :func:`text_key`) and near-duplicate (MinHash LSH).

Both functions work across sources and return a :class:`DedupResult` whose ``stats`` is a
:class:`~vazhi_assets.corpus.steps.StepStats` named ``exact_dedup`` / ``minhash_dedup``, so
they join the per-source retention funnel like any cleaning step. :class:`ExactDedup` and
:class:`MinHashDedup` wrap them as steps for the cleaning pipeline.

Determinism: which copy survives never depends on input order. Documents are ranked by
``(source, url or doc_id, doc_id)``; the exact pass keeps the first copy in that order, the
near-duplicate pass keeps the longest document of a cluster (most words of its key, then most
characters) and breaks ties by the same order. ``kept`` is returned in input order.
"""

from __future__ import annotations

import hashlib
import time
from abc import abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from .normalize import text_key
from .steps import Document, DroppedDoc, Step, StepStats

if TYPE_CHECKING:
    from datasketch import MinHash

__all__ = [
    "DedupResult",
    "ExactDedup",
    "MinHashDedup",
    "exact_dedup",
    "minhash_dedup",
    "shingle_hashes",
    "shingles",
]


def _rank(doc: Document) -> tuple[str, str, str]:
    return (doc.source, doc.url or doc.doc_id, doc.doc_id)


@dataclass
class DedupResult:
    """Outcome of one deduplication pass.

    ``dropped`` pairs each removed document with the ``doc_id`` it duplicates. ``clusters``
    lists every group of two or more documents as doc_ids, **kept document first**.
    ``seconds`` is the wall time of the pass.
    """

    kept: list[Document]
    dropped: list[tuple[Document, str]]
    clusters: list[list[str]]
    stats: StepStats
    seconds: float = 0.0
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def docs_per_second(self) -> float:
        seen = self.stats.seen
        return seen / self.seconds if self.seconds > 0 else float("inf")

    def cluster_rows(self) -> list[dict[str, Any]]:
        """One row per cluster: ``cluster`` (index), ``size``, ``kept`` and ``members``."""
        return [
            {"cluster": i, "size": len(ids), "kept": ids[0], "members": list(ids)}
            for i, ids in enumerate(self.clusters)
        ]

    def duplicate_of(self) -> dict[str, str]:
        """doc_id of every dropped document -> doc_id of the document kept in its place."""
        return {doc.doc_id: kept_id for doc, kept_id in self.dropped}


def _result(
    docs: Sequence[Document],
    kept_ids: set[str],
    duplicate_of: dict[str, str],
    clusters: list[list[str]],
    step: str,
    reason: str,
    started: float,
    params: dict[str, Any],
) -> DedupResult:
    stats = StepStats(step)
    kept: list[Document] = []
    dropped: list[tuple[Document, str]] = []
    for doc in docs:
        if doc.doc_id in kept_ids:
            stats.record(doc.source, kept=True)
            kept.append(doc)
        else:
            stats.record(doc.source, kept=False, reason=reason)
            dropped.append((doc, duplicate_of[doc.doc_id]))
    return DedupResult(kept, dropped, clusters, stats, time.perf_counter() - started, params)


def _check_unique_ids(docs: Sequence[Document]) -> None:
    seen: set[str] = set()
    for doc in docs:
        if doc.doc_id in seen:
            raise ValueError(f"doc_id {doc.doc_id!r} occurs twice; dedup needs unique ids")
        seen.add(doc.doc_id)


# =============================================================================================
# Exact
# =============================================================================================
def exact_dedup(
    docs: Sequence[Document], key: Callable[[str], str] = text_key
) -> DedupResult:
    """Drop documents whose ``key(text)`` (default :func:`text_key`) equals an earlier one's.

    "Earlier" is the ``(source, url or doc_id, doc_id)`` order, not the input order. Keys are
    compared through a 128-bit BLAKE2 digest. Reason: ``exact_duplicate``.
    """
    started = time.perf_counter()
    _check_unique_ids(docs)
    first: dict[bytes, str] = {}
    groups: dict[str, list[str]] = {}
    duplicate_of: dict[str, str] = {}
    for doc in sorted(docs, key=_rank):
        digest = hashlib.blake2b(key(doc.text).encode("utf-8"), digest_size=16).digest()
        owner = first.setdefault(digest, doc.doc_id)
        if owner != doc.doc_id:
            duplicate_of[doc.doc_id] = owner
            groups.setdefault(owner, [owner]).append(doc.doc_id)
    kept_ids = {d.doc_id for d in docs} - duplicate_of.keys()
    return _result(
        docs, kept_ids, duplicate_of, list(groups.values()), "exact_dedup",
        "exact_duplicate", started, {"key": getattr(key, "__name__", str(key))},
    )


# =============================================================================================
# MinHash
# =============================================================================================
def _key_shingles(words: list[str], n: int) -> set[str]:
    if len(words) < n:
        return {" ".join(words)} if words else set()
    return {" ".join(words[i : i + n]) for i in range(len(words) - n + 1)}


def shingles(text: str, shingle_words: int = 5, key: Callable[[str], str] = text_key) -> set[str]:
    """Word n-grams of ``key(text)``; a text shorter than ``shingle_words`` words is one shingle
    (the whole key); an empty key gives no shingles. (For inspection and tests: MinHash uses
    :func:`shingle_hashes`, the same shingles as 32-bit hashes.)"""
    return _key_shingles(key(text).split(), shingle_words)


_WORD_HASHES: dict[str, int] = {}
_MASK64 = (1 << 64) - 1
_ROLL = np.uint64(0x100000001B3)  # odd 64-bit multiplier (FNV prime)
_MIX1, _MIX2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


def _word_hash(word: str) -> int:
    value = _WORD_HASHES.get(word)
    if value is None:
        value = int.from_bytes(hashlib.blake2b(word.encode("utf-8"), digest_size=8).digest())
        if len(_WORD_HASHES) >= 1_000_000:
            _WORD_HASHES.clear()
        _WORD_HASHES[word] = value
    return value


def shingle_hashes(words: Sequence[str], shingle_words: int = 5) -> list[int]:
    """Distinct 32-bit hashes of the ``shingle_words``-word shingles of ``words``.

    Each word gets a cached 64-bit BLAKE2 hash; a shingle's hash is the polynomial
    ``sum(h_k * R**(n-1-k)) mod 2**64`` of its words' hashes in order (vectorised with numpy
    over all positions), passed through the splitmix64 finalizer and cut to its top 32 bits.
    Equal shingles get equal hashes; different shingles collide with probability ~2**-32.
    Fewer words than ``shingle_words`` make one shingle of all of them.
    """
    if not words:
        return []
    n = min(shingle_words, len(words))
    values = np.fromiter(map(_word_hash, words), dtype=np.uint64, count=len(words))
    m = len(words) - n + 1
    h = values[:m].copy()
    for k in range(1, n):
        h *= _ROLL
        h += values[k : k + m]
    h ^= h >> np.uint64(30)
    h *= _MIX1
    h ^= h >> np.uint64(27)
    h *= _MIX2
    h ^= h >> np.uint64(31)
    return np.unique(h >> np.uint64(32)).tolist()


class _UnionFind:
    def __init__(self, n: int):
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        parent = self.parent
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


SKETCH_CHUNK = 4096


def minhash_dedup(
    docs: Sequence[Document],
    shingle_words: int = 5,
    num_perm: int = 112,
    bands: int = 14,
    rows: int = 8,
    seed: int = 1,
    threshold: float | None = None,
    key: Callable[[str], str] = text_key,
) -> DedupResult:
    """Near-duplicate removal with MinHash LSH (FineWeb-2 setting by default).

    Each document becomes the set of ``shingle_words``-word shingles of its :func:`text_key`
    (whole key if shorter; hashed by :func:`shingle_hashes`), sketched into a
    ``num_perm``-permutation MinHash with ``MinHash.bulk``.
    ``MinHashLSH(params=(bands, rows))`` proposes candidate pairs: two documents are candidates
    when all ``rows`` values of any band agree, which happens with probability
    ``1 - (1 - J**rows)**bands`` for Jaccard similarity ``J`` (for 14 × 8: 0.05 at J = 0.5,
    0.5 at J ≈ 0.69, 0.65 at the nominal threshold (1/14)**(1/8) ≈ 0.72, 0.90 at J = 0.79,
    0.99 at J = 0.85). With ``threshold`` set, a candidate
    pair is only accepted if the MinHash estimate of its Jaccard similarity reaches it.

    Accepted pairs are joined with union-find (so clusters are transitive), and each cluster
    keeps its longest document (ties: ``(source, url or doc_id, doc_id)`` order). Documents
    without any words are never clustered. Reason: ``near_duplicate``.
    """
    from datasketch import MinHash, MinHashLSH  # imported here: ~0.5 s, only when used

    if bands * rows > num_perm:
        raise ValueError(f"bands*rows = {bands * rows} exceeds num_perm = {num_perm}")
    started = time.perf_counter()
    _check_unique_ids(docs)
    order = sorted(range(len(docs)), key=lambda i: _rank(docs[i]))
    ordered = [docs[i] for i in order]
    # Sketch in chunks and keep only the sketches and word counts: word and shingle lists of a
    # whole corpus would dominate memory (~27 KB per document).
    n_words: list[int] = []
    minhashes: dict[int, MinHash] = {}
    for start in range(0, len(ordered), SKETCH_CHUNK):
        chunk = ordered[start:start + SKETCH_CHUNK]
        words = [key(doc.text).split() for doc in chunk]
        n_words.extend(len(w) for w in words)
        hashed = [shingle_hashes(w, shingle_words) for w in words]
        hashable = [i for i, h in enumerate(hashed) if h]
        # The shingle hashes are already uniform 32-bit integers: MinHash's input hash is int().
        sketches = MinHash.bulk([hashed[i] for i in hashable], num_perm=num_perm, seed=seed,
                                hashfunc=int)
        minhashes.update({start + i: m for i, m in zip(hashable, sketches, strict=True)})
        del words, hashed
    lsh = MinHashLSH(num_perm=num_perm, params=(bands, rows))
    with lsh.insertion_session() as session:
        for i, m in minhashes.items():
            session.insert(i, m, check_duplication=False)

    uf = _UnionFind(len(ordered))
    checked: set[tuple[int, int]] = set()
    for i, m in minhashes.items():
        for j in lsh.query(m):
            if j == i:
                continue
            pair = (min(i, j), max(i, j))
            if pair in checked:
                continue
            checked.add(pair)
            if threshold is None or m.jaccard(minhashes[j]) >= threshold:
                uf.union(i, j)

    members: dict[int, list[int]] = {}
    for i in range(len(ordered)):
        members.setdefault(uf.find(i), []).append(i)
    clusters: list[list[str]] = []
    duplicate_of: dict[str, str] = {}
    for group in members.values():
        if len(group) < 2:
            continue
        # longest first (words of the key, then characters); ties by rank = index in `ordered`
        best = min(group, key=lambda i: (-n_words[i], -len(ordered[i].text), i))
        ids = [ordered[best].doc_id] + [ordered[i].doc_id for i in group if i != best]
        clusters.append(ids)
        for doc_id in ids[1:]:
            duplicate_of[doc_id] = ids[0]
    clusters.sort(key=lambda ids: (-len(ids), ids[0]))
    kept_ids = {d.doc_id for d in docs} - duplicate_of.keys()
    params = {
        "shingle_words": shingle_words,
        "num_perm": num_perm,
        "bands": bands,
        "rows": rows,
        "seed": seed,
        "threshold": threshold,
        "candidate_pairs": len(checked),
    }
    return _result(
        docs, kept_ids, duplicate_of, clusters, "minhash_dedup", "near_duplicate", started, params
    )


# =============================================================================================
# As pipeline steps
# =============================================================================================
class _CorpusStep(Step):
    """A step that needs the whole list at once; ``process`` on one document is meaningless."""

    last_result: DedupResult | None = None

    def process(self, doc: Document) -> Document:
        raise TypeError(f"{self.name} works on a whole corpus: call run(docs)")

    @abstractmethod
    def dedup(self, docs: Sequence[Document]) -> DedupResult:
        """Deduplicate the whole list."""

    def run(self, docs: Sequence[Document]) -> tuple[list[Document], list[DroppedDoc]]:
        result = self.dedup(list(docs))
        self.last_result = result
        self.stats = result.stats
        self.stats.step = self.name
        reason = next(iter(result.stats.reasons), "duplicate")
        dropped: list[DroppedDoc] = [
            (replace(doc, meta={**doc.meta, "duplicate_of": kept_id}), self.name, reason)
            for doc, kept_id in result.dropped
        ]
        return result.kept, dropped


class ExactDedup(_CorpusStep):
    """:func:`exact_dedup` as a pipeline step (dropped docs get ``meta["duplicate_of"]``)."""

    name = "exact_dedup"

    def dedup(self, docs: Sequence[Document]) -> DedupResult:
        return exact_dedup(docs)


class MinHashDedup(_CorpusStep):
    """:func:`minhash_dedup` as a pipeline step; keyword arguments are passed through."""

    name = "minhash_dedup"

    def __init__(self, name: str | None = None, **params: Any):
        super().__init__(name)
        self.params = params

    def dedup(self, docs: Sequence[Document]) -> DedupResult:
        return minhash_dedup(docs, **self.params)
