"""Tokenizer fertility: how many tokens a language costs per character and per word.

SmolLM2's 49k BPE vocabulary was trained on mostly English text: Urdu and Tamil fall apart into
byte-level pieces (the field notes measured ~0.20 tokens/char for English, ~1.21 for Urdu, ~1.73
for Tamil), so a 256-token window holds only ~150-200 Tamil characters. Reported, not "fixed".
"""

from __future__ import annotations

from typing import Any

import polars as pl

SCHEMA = {
    "language": pl.String,
    "documents": pl.Int64,
    "characters": pl.Int64,
    "words": pl.Int64,
    "tokens": pl.Int64,
    "tokens_per_char": pl.Float64,
    "tokens_per_word": pl.Float64,
}


def count_tokens(tokenizer: Any, texts: list[str], batch_size: int = 256) -> int:
    """Tokens for ``texts`` without special tokens and without truncation."""
    total = 0
    for start in range(0, len(texts), batch_size):
        batch = texts[start:start + batch_size]
        encoded = tokenizer(batch, add_special_tokens=False, truncation=False, verbose=False)
        total += sum(len(ids) for ids in encoded["input_ids"])
    return total


def fertility(tokenizer: Any, texts: dict[str, list[str]]) -> pl.DataFrame:
    """One row per language: documents, characters (all, incl. spaces), whitespace words,
    tokens (no special tokens), tokens per character and per word (null when undefined)."""
    rows = []
    for language, docs in texts.items():
        docs = [d for d in docs if isinstance(d, str) and d]
        characters = sum(len(d) for d in docs)
        words = sum(len(d.split()) for d in docs)
        tokens = count_tokens(tokenizer, docs) if docs else 0
        rows.append({
            "language": language,
            "documents": len(docs),
            "characters": characters,
            "words": words,
            "tokens": tokens,
            "tokens_per_char": tokens / characters if characters else None,
            "tokens_per_word": tokens / words if words else None,
        })
    return pl.DataFrame(rows, schema=SCHEMA)
