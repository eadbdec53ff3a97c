"""The recipe's tokenizer, loaded once per step: padding set and, when the recipe picks another
chat template or a system prompt, that template (what training renders with and the merged
model ships)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vazhi_assets.training.base_model import load_tokenizer
from vazhi_assets.training.recipe import Recipe
from vazhi_assets.training.sft_render import recipe_templates
from vazhi_assets.training.tokenizer_checks import prepare_padding


@dataclass(frozen=True)
class RecipeTokenizer:
    tokenizer: Any
    #: the template SFT renders with (``{% generation %}`` blocks for assistant-only loss)
    training_template: str
    #: the template the merged model ships, None when it keeps the base model's own
    shipped_template: str | None


def recipe_tokenizer(spec: Recipe, base_dir: Path) -> RecipeTokenizer:
    tokenizer = load_tokenizer(base_dir, spec.model.max_seq_length)
    prepare_padding(tokenizer)
    training, shipped = recipe_templates(spec.model.chat_template, tokenizer.chat_template,
                                         spec.model.system_prompt,
                                         assistant_only=spec.assistant_only_loss)
    if shipped is not None:
        tokenizer.chat_template = shipped
    return RecipeTokenizer(tokenizer, training, shipped)
