"""The one Dagster ``Definitions`` of vazhi_assets."""


import dagster as dg

from vazhi_assets.corpus import assets as corpus
from vazhi_assets.crawl import assets as crawl
from vazhi_assets.evaluation.assets import EVALUATION_ASSETS
from vazhi_assets.evaluation.harness_assets import harness_scores
from vazhi_assets.export.assets import EXPORT_ASSETS, EXPORT_CHECKS
from vazhi_assets.feedback import assets as feedback
from vazhi_assets.resources import DemoSite, VazhiStorage
from vazhi_assets.training.assets import TRAINING_ASSETS, TRAINING_CHECKS
from vazhi_assets.training.resources import RecipeResource

ALL_ASSETS = [
    crawl.raw_crawl,
    corpus.cleaned_urdu_corpus,
    corpus.cleaned_tamil_corpus,
    corpus.english_replay,
    corpus.deduplicated_corpus,
    corpus.pretraining_mix,
    corpus.cleaning_report,
    feedback.feedback_sft_examples,
    *TRAINING_ASSETS,
    *EXPORT_ASSETS,
    *EVALUATION_ASSETS,
    harness_scores,
]
ALL_CHECKS = [
    *corpus.corpus_checks,
    corpus.no_exact_duplicates,
    corpus.retention_within_bounds,
    *TRAINING_CHECKS,
    *EXPORT_CHECKS,
]
#: What ``python -m vazhi_assets.demo`` materializes: everything but the opt-in extras (the
#: ablation sweep is a partitioned backfill; the harness needs the extra and hub access).
DEFAULT_SELECTION = dg.AssetSelection.all() - dg.AssetSelection.assets(
    "ablation_benchmark", "harness_scores")
RESOURCES = {"storage": VazhiStorage(), "demo_site": DemoSite(), "recipe": RecipeResource()}

defs = dg.Definitions(
    assets=ALL_ASSETS,
    asset_checks=ALL_CHECKS,
    jobs=[feedback.retrain_from_feedback],
    sensors=[feedback.feedback_sensor, corpus.corpus_freshness],
    schedules=[feedback.weekly_retrain],
    resources=RESOURCES,
)
