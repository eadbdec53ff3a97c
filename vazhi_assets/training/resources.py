"""The recipe a run trains with, selectable from the launchpad or ``VAZHI_RECIPE``."""

import os
from pathlib import Path

import dagster as dg

from vazhi_assets.training.recipe import Recipe, load_recipe


class RecipeResource(dg.ConfigurableResource):
    """Which recipe drives the model assets (a name under ``vazhi_assets/recipes`` or a path)."""

    name: str = ""

    def load(self) -> Recipe:
        return load_recipe(self.name or os.environ.get("VAZHI_RECIPE") or "demo")

    def tags(self) -> dict[str, str]:
        recipe = self.load()
        return {"recipe": recipe.name, "recipe_hash": recipe.content_hash()}

    def workdir(self, base: Path, asset: str) -> Path:
        """Per-recipe directory for a model artifact, so recipes never overwrite each other."""
        recipe = self.load()
        path = base / "models" / recipe.name / asset
        path.mkdir(parents=True, exist_ok=True)
        return path
