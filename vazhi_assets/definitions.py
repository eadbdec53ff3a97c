"""The one Dagster ``Definitions`` of vazhi_assets."""


import dagster as dg

from vazhi_assets.corpus import assets as corpus
from vazhi_assets.crawl import assets as crawl
from vazhi_assets.evaluation.benchmark_assets import ablation_benchmark, benchmark_table
from vazhi_assets.evaluation.harness_assets import harness_scores
from vazhi_assets.evaluation.publish_assets import model_card
from vazhi_assets.export.assets import EXPORT_ASSETS, EXPORT_CHECKS
from vazhi_assets.feedback import assets as feedback
from vazhi_assets.provenance.assets import provenance_complete, training_provenance
from vazhi_assets.resources import DemoSite, VazhiStorage
from vazhi_assets.training.data_assets import DATA_ASSETS, DATA_CHECKS
from vazhi_assets.training.recipe_assets import recipe, recipe_files, snapshot_recipes
from vazhi_assets.training.train_assets import TRAIN_ASSETS, TRAIN_CHECKS

CORPUS_ASSETS = [
    corpus.cleaned_urdu_corpus,
    corpus.cleaned_tamil_corpus,
    corpus.english_replay,
    corpus.deduplicated_corpus,
    corpus.pretraining_mix,
    corpus.cleaning_report,
]
#: One partition per recipe: the recipe snapshot through the published model card.
MODEL_ASSETS = [
    recipe,
    feedback.feedback_sft_examples,
    *DATA_ASSETS,
    *TRAIN_ASSETS,
    training_provenance,
    *EXPORT_ASSETS,
    benchmark_table,
    model_card,
]
ALL_ASSETS = [crawl.raw_crawl, *CORPUS_ASSETS, *MODEL_ASSETS, ablation_benchmark,
              harness_scores]
ALL_CHECKS = [
    *corpus.corpus_checks,
    corpus.no_exact_duplicates,
    corpus.retention_within_bounds,
    *DATA_CHECKS,
    *TRAIN_CHECKS,
    provenance_complete,
    *EXPORT_CHECKS,
]
#: The model half of one recipe partition, what ``python -m vazhi_assets.demo`` runs after the
#: corpus (the ablation sweep and the harness are opt-in extras).
MODEL_SELECTION = dg.AssetSelection.assets(*MODEL_ASSETS)
CORPUS_SELECTION = dg.AssetSelection.assets(*CORPUS_ASSETS)
RESOURCES = {"storage": VazhiStorage(), "demo_site": DemoSite()}

train_recipe = dg.define_asset_job(
    "train_recipe", selection=MODEL_SELECTION,
    description="One recipe partition end to end: snapshot, base model, shards, CPT and SFT "
    "adapters, merge, provenance, GGUF files, benchmarks, model card. Backfill it over several "
    "recipe partitions to train them side by side.")

defs = dg.Definitions(
    assets=ALL_ASSETS,
    asset_checks=ALL_CHECKS,
    jobs=[train_recipe, snapshot_recipes, feedback.retrain_from_feedback],
    sensors=[recipe_files, feedback.feedback_sensor, corpus.corpus_freshness],
    schedules=[feedback.weekly_retrain],
    resources=RESOURCES,
)
