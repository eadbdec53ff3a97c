"""Where one recipe partition keeps its model artifacts: ``models/<recipe>/<asset>/``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RecipeWork:
    """Per-recipe folders, so recipes (and their parallel runs) never share a file."""

    root: Path

    @classmethod
    def of(cls, data_root: Path, recipe: str) -> RecipeWork:
        return cls(data_root / "models" / recipe)

    def dir(self, asset: str) -> Path:
        path = self.root / asset
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def snapshot(self) -> Path:
        return self.root / "recipe" / "recipe.json"

    @property
    def base_model(self) -> Path:
        return self.root / "base_model" / "model"

    @property
    def cpt_shards(self) -> Path:
        return self.root / "cpt_shards"

    @property
    def sft_shards(self) -> Path:
        return self.root / "sft_shards"

    @property
    def cpt_adapter(self) -> Path:
        return self.root / "cpt_adapter" / "adapter"

    @property
    def sft_adapter(self) -> Path:
        return self.root / "sft_adapter" / "adapter"

    @property
    def merged_model(self) -> Path:
        return self.root / "merged_model" / "model"

    @property
    def provenance(self) -> Path:
        return self.root / "training_provenance"

    def gguf(self, recipe: str, file_type: str) -> Path:
        return self.root / "gguf" / f"{recipe}-{file_type}.gguf"

    @property
    def published(self) -> Path:
        return self.root / "published"
