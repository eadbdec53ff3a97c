"""Held-out text of a recipe partition: the documents its CPT shards put in the val split."""

from __future__ import annotations

import polars as pl

from vazhi_assets.resources import VazhiStorage
from vazhi_assets.training.recipe import Recipe
from vazhi_assets.training.workspace import RecipeWork


def heldout_texts(
    storage: VazhiStorage, spec: Recipe, work: RecipeWork, per_language: int = 8
) -> dict[str, list[str]]:
    """Texts of the documents ``cpt_shards`` put in its val split: never trained on. A recipe
    without CPT uses the answers of its held-out SFT samples instead."""
    from vazhi_assets.training.shards import ShardManifest

    if not spec.has_cpt:
        from vazhi_assets.training.sft_build import build_sft_dataset

        held = build_sft_dataset(spec.data.sft_sources, split="heldout",
                                 languages=spec.data.languages).samples
        return {lang: [s.assistant_text for s in held if s.language == lang][:per_language]
                for lang in spec.data.languages}
    manifest = ShardManifest.load(work.cpt_shards / "manifest.json")
    frames = [storage.read_table(n) for n in ("deduplicated_corpus", "english_replay")]
    docs = pl.concat([f.select("doc_id", "text") for f in frames if f is not None])
    text_of = dict(zip(docs["doc_id"], docs["text"], strict=True))
    held = dict(manifest.val_documents)
    if not held.get("en") and manifest.unused_replay_documents:
        # English the mix never took (the replay budget stopped before it): the forgetting
        # measure still has text the model was not trained on
        held["en"] = manifest.unused_replay_documents
    return {lang: [text_of[d] for d in ids[:per_language] if d in text_of]
            for lang, ids in held.items()}
