"""The ``recipe`` asset: each partition resolves its YAML once into an immutable snapshot that
every model asset of the partition reads, and the sensor that turns recipe files into
partitions."""


import json
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import yaml

from vazhi_assets.gates import Consumed, consume
from vazhi_assets.identity import code_version, sha256_file
from vazhi_assets.resources import VazhiStorage
from vazhi_assets.storage import atomic_write_text
from vazhi_assets.training.recipe import Recipe, load_recipe, recipe_sources
from vazhi_assets.training.recipe_registry import RECIPE_PARTITIONS, scan_recipes
from vazhi_assets.training.workspace import RecipeWork

GROUP = "training"


def user_recipes(storage: VazhiStorage) -> Path:
    """The folder of a data directory's own recipes (``vazhi-recipe add`` writes there)."""
    return storage.base / "recipes"


def recipe_key(context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext) -> str:
    """The recipe of a run's partition (the ``recipe`` dimension of a multi-partition key)."""
    key = context.partition_key
    by_dimension = getattr(key, "keys_by_dimension", None)
    return by_dimension["recipe"] if by_dimension else str(key)


@dg.asset(
    partitions_def=RECIPE_PARTITIONS,
    group_name=GROUP,
    kinds={"yaml"},
    owners=["team:ml"],
    tags={"stage": "training"},
    code_version=code_version("vazhi_assets.training.recipe"),
    description="The partition's recipe YAML with its `inherits:` chain resolved and "
    "validated, frozen as a snapshot: every model asset of the partition reads this snapshot, "
    "so one run never mixes two versions of a recipe. Its data version is the recipe hash.",
)
def recipe(context: dg.AssetExecutionContext, storage: VazhiStorage) -> dg.MaterializeResult:
    name = context.partition_key
    user_dir = user_recipes(storage)
    try:
        spec = load_recipe(name, user_dir)
    except Exception as exc:
        raise dg.Failure(f"recipe {name!r} does not validate: {exc}") from exc
    work = RecipeWork.of(storage.base, name)
    sources = recipe_sources(name, user_dir=user_dir)
    snapshot = {"recipe": spec.model_dump(mode="json"), "recipe_hash": spec.content_hash(),
                "sources": [{"path": str(p), "sha256": sha256_file(p)} for p in sources]}
    work.snapshot.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(work.snapshot, json.dumps(snapshot, ensure_ascii=False, indent=2))
    resolved = yaml.safe_dump(spec.model_dump(mode="json"), allow_unicode=True, sort_keys=False)
    return dg.MaterializeResult(
        metadata={
            "recipe": spec.name,
            "recipe_hash": spec.content_hash(),
            "content_hash": spec.content_hash(),
            "description": spec.description,
            "base_model": spec.model.name,
            "languages": dg.MetadataValue.json(spec.data.languages),
            "has_cpt": spec.has_cpt,
            "sources": dg.MetadataValue.json([s["path"] for s in snapshot["sources"]]),
            "resolved": dg.MetadataValue.md(f"```yaml\n{resolved}```"),
            "path": dg.MetadataValue.path(str(work.snapshot)),
        },
        data_version=dg.DataVersion(spec.content_hash()),
    )


@dataclass(frozen=True)
class RecipeRun:
    """The frozen recipe of one partition, its folders, and the materialization it came from."""

    spec: Recipe
    work: RecipeWork
    consumed: Consumed

    @property
    def name(self) -> str:
        return self.spec.name

    def tags(self) -> dict[str, str]:
        return {"recipe": self.spec.name, "recipe_hash": self.spec.content_hash()}


def load_snapshot(storage: VazhiStorage, name: str) -> Recipe:
    path = RecipeWork.of(storage.base, name).snapshot
    if not path.exists():
        raise dg.Failure(f"recipe[{name}] has no snapshot: materialize the recipe asset of "
                         "this partition first")
    return Recipe.model_validate(json.loads(path.read_text(encoding="utf-8"))["recipe"])


def recipe_run(
    context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext, storage: VazhiStorage
) -> RecipeRun:
    """Resolve the partition's recipe once for this step: the snapshot the latest
    ``recipe[partition]`` materialization wrote (its hash must match what was recorded)."""
    name = recipe_key(context)
    spec = load_snapshot(storage, name)
    consumed = consume(context, recipe.key, partition=name, content_hash=spec.content_hash())
    return RecipeRun(spec, RecipeWork.of(storage.base, name), consumed)


snapshot_recipes = dg.define_asset_job(
    "snapshot_recipes", selection=dg.AssetSelection.assets(recipe),
    description="Re-resolve a recipe partition's YAML into its snapshot.")


@dg.sensor(job=snapshot_recipes, minimum_interval_seconds=30,
           default_status=dg.DefaultSensorStatus.RUNNING,
           description="Registers every valid recipe file (bundled, or added to the data "
           "folder's recipes/) as a partition of `recipe`, and snapshots a recipe whose file "
           "is new or changed, so its model assets show as stale. Invalid files are logged.")
def recipe_files(
    context: dg.SensorEvaluationContext, storage: VazhiStorage
) -> dg.SensorResult | dg.SkipReason:
    scan = scan_recipes(user_recipes(storage))
    for name, problem in sorted(scan.invalid.items()):
        context.log.warning(f"recipe {name} is not a partition: {problem}")
    registered = set(context.instance.get_dynamic_partitions(RECIPE_PARTITIONS.name))
    previous = json.loads(context.cursor) if context.cursor else {}
    new, changed = scan.new(registered), scan.changed(previous)
    if not new and not changed and previous == scan.digests:
        return dg.SkipReason(f"{len(scan.digests)} recipes, none new or changed")
    requests = [dg.RunRequest(partition_key=name, run_key=f"recipe-{name}-{scan.digests[name]}",
                              tags={"recipe": name})
                for name in sorted({*new, *changed})]
    return dg.SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=[RECIPE_PARTITIONS.build_add_request(new)] if new else [],
        cursor=json.dumps(scan.digests, sort_keys=True),
    )
