"""A Merkle tree over provenance records: one root that changes when any record changes.

Leaves are the SHA-256 of each record's canonical JSON (sorted keys, no whitespace, UTF-8);
leaves are sorted, so the root does not depend on the order records were collected in. Inner
nodes hash ``0x01 || left || right`` and leaves ``0x00 || record`` (domain separation, so an
inner node can never be passed off as a leaf); an odd node is carried up unchanged.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

EMPTY_ROOT = hashlib.sha256(b"").hexdigest()


def canonical_json(record: Mapping[str, Any]) -> bytes:
    """The one byte encoding of a record that every hash in this package is taken over."""
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=str).encode("utf-8")


def leaf_hash(record: Mapping[str, Any]) -> str:
    return hashlib.sha256(b"\x00" + canonical_json(record)).hexdigest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def merkle_root(leaves: Iterable[str]) -> str:
    """Root over hex leaf hashes (sorted first); the hash of nothing for no leaves."""
    level = [bytes.fromhex(h) for h in sorted(leaves)]
    if not level:
        return EMPTY_ROOT
    while len(level) > 1:
        paired = [_node(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0].hex()


def root_of(records: Iterable[Mapping[str, Any]]) -> str:
    return merkle_root(leaf_hash(r) for r in records)
