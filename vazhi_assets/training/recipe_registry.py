"""Recipes as partitions: every bundled recipe and every recipe a user adds is one key of the
dynamic partitions set ``recipe``, so each has its own base model, adapters, GGUF files,
benchmark rows and model card in the UI, and a backfill can train several at once.

A user's YAML becomes a partition without a code change: ``vazhi-recipe add PATH`` validates
it, stores a copy in ``$VAZHI_DATA_DIR/recipes/`` (relative paths made absolute, since the
copy lives elsewhere) and registers the partition; a file dropped into that folder is picked
up by the ``recipe_files`` sensor.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import yaml

from vazhi_assets.storage import atomic_write_text
from vazhi_assets.training.recipe import (
    RECIPE_NAME,
    RECIPES_DIR,
    Recipe,
    load_recipe,
    recipe_files,
    user_recipes_dir,
)

RECIPE_PARTITIONS = dg.DynamicPartitionsDefinition(name="recipe")


class RecipeError(ValueError):
    """A recipe file that cannot become a partition (invalid, misnamed, or a name clash)."""


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def _absolute_paths(data: dict, origin: Path) -> dict:
    """Relative file paths in a recipe, resolved against the folder it came from."""

    def resolve(value: str) -> str:
        path = Path(value).expanduser()
        if path.is_absolute():
            return value
        candidate = (origin / path).resolve()
        return str(candidate) if candidate.exists() else value

    data = dict(data)
    model = dict(data.get("model") or {})
    if str(model.get("chat_template", "")).endswith(".jinja"):
        model["chat_template"] = resolve(model["chat_template"])
    if "name" in model and (origin / str(model["name"])).exists():
        model["name"] = resolve(str(model["name"]))
    if model:
        data["model"] = model
    recipe_data = dict(data.get("data") or {})
    if recipe_data.get("sft_files"):
        recipe_data["sft_files"] = [resolve(str(p)) for p in recipe_data["sft_files"]]
        data["data"] = recipe_data
    return data


def add_recipe(path: Path, instance: dg.DagsterInstance | None = None,
               user_dir: Path | None = None) -> Recipe:
    """Validate ``path``, store it as a user recipe (in ``user_dir``, default the data
    folder's ``recipes/``) and register its partition."""
    path = Path(path).expanduser().resolve()
    user_dir = user_dir or user_recipes_dir()
    if not path.exists():
        raise RecipeError(f"{path}: no such file")
    try:
        spec = load_recipe(str(path), user_dir)
    except Exception as exc:  # pydantic/yaml errors name the field; keep their text
        raise RecipeError(f"{path} is not a valid recipe: {exc}") from exc
    if not RECIPE_NAME.match(spec.name):
        raise RecipeError(f"recipe name {spec.name!r} cannot be a partition key: use lower-case "
                          "letters, digits, '.', '_' and '-' (at most 64)")
    if (RECIPES_DIR / f"{spec.name}.yaml").exists():
        raise RecipeError(f"{spec.name!r} is a bundled recipe; give yours another name "
                          f"(inherit from it with `inherits: {spec.name}`)")
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    data = _absolute_paths({**data, "name": spec.name}, path.parent)
    target = user_dir / f"{spec.name}.yaml"
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(target, yaml.safe_dump(data, allow_unicode=True, sort_keys=False))
    if instance is not None:
        register_recipes(instance, [spec.name], user_dir)
    return load_recipe(spec.name, user_dir)


def register_recipes(instance: dg.DagsterInstance, names: list[str] | None = None,
                     user_dir: Path | None = None) -> list[str]:
    """Add the partitions that are missing (all known recipes by default); returns the new."""
    wanted = sorted(names if names is not None else recipe_files(user_dir))
    known = set(instance.get_dynamic_partitions(RECIPE_PARTITIONS.name))
    new = [n for n in wanted if n not in known]
    if new:
        instance.add_dynamic_partitions(RECIPE_PARTITIONS.name, new)
    return new


@dataclass(frozen=True)
class RecipeScan:
    """What the recipes on disk look like next to the registered partitions."""

    digests: dict[str, str]
    invalid: dict[str, str]

    def new(self, registered: set[str]) -> list[str]:
        return sorted(set(self.digests) - registered)

    def changed(self, previous: dict[str, str]) -> list[str]:
        return sorted(n for n, d in self.digests.items() if n in previous and previous[n] != d)


def scan_recipes(user_dir: Path | None = None) -> RecipeScan:
    """Digest of every valid recipe file; the problem of every invalid one."""
    digests, invalid = {}, {}
    for name, path in recipe_files(user_dir).items():
        try:
            spec = load_recipe(str(path), user_dir)
            if not RECIPE_NAME.match(spec.name) or spec.name != name:
                raise RecipeError(f"name {spec.name!r} must match the file name {name!r} and "
                                  "be lower-case letters, digits, '.', '_', '-'")
        except Exception as exc:
            invalid[name] = str(exc).splitlines()[0][:300]
            continue
        digests[name] = file_digest(path)
    return RecipeScan(digests, invalid)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="vazhi-recipe", description="Recipes as partitions of the model assets.")
    sub = parser.add_subparsers(dest="command", required=True)
    add = sub.add_parser("add", help="validate a recipe YAML, store it, register its partition")
    add.add_argument("path", type=Path)
    sub.add_parser("sync", help="register every bundled and added recipe as a partition")
    sub.add_parser("list", help="recipes, where they come from, and whether they are registered")
    args = parser.parse_args(argv)
    instance = dg.DagsterInstance.get()
    if args.command == "add":
        try:
            spec = add_recipe(args.path, instance)
        except RecipeError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(f"added recipe {spec.name} (hash {spec.content_hash()}) as a partition of "
              f"'{RECIPE_PARTITIONS.name}'")
        return 0
    if args.command == "sync":
        new = register_recipes(instance)
        print(f"registered {len(new)} new recipe partitions: {', '.join(new) or '-'}")
        return 0
    registered = set(instance.get_dynamic_partitions(RECIPE_PARTITIONS.name))
    scan = scan_recipes()
    for name, path in sorted(recipe_files().items()):
        origin = "bundled" if path.parent == RECIPES_DIR else "user"
        state = ("INVALID: " + scan.invalid[name]) if name in scan.invalid else (
            "registered" if name in registered else "not registered (vazhi-recipe sync)")
        print(f"{name:<24} {origin:<8} {state}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
