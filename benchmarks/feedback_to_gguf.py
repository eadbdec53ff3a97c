"""Time from a feedback drop to a retrained GGUF, on a materialized instance.

Drops Urdu corrections into the inbox, evaluates ``feedback_sensor`` as the daemon would,
executes the run it requests (``retrain_from_feedback``) against the same Dagster instance and
reports the wall time until each GGUF file was materialized, plus the feedback rows the new
model lists. Run after ``make demo`` (or ``make recipe-demo``):

    DAGSTER_HOME=.dagster_home .venv/bin/python benchmarks/feedback_to_gguf.py --recipe demo
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime

import dagster as dg

#: Corrections a user might send for wrong answers (facts: Pakistan's geography and history).
CORRECTIONS = [
    ("کراچی کی بندرگاہ کیوں اہم ہے؟",
     "کراچی کی بندرگاہ پاکستان کی سب سے بڑی بندرگاہ ہے اور ملک کی زیادہ تر تجارت اسی کے "
     "ذریعے ہوتی ہے۔"),
    ("لاہور کس دریا کے کنارے آباد ہے؟",
     "لاہور دریائے راوی کے کنارے آباد ہے اور پنجاب کا صوبائی دارالحکومت ہے۔"),
    ("اردو کس رسم الخط میں لکھی جاتی ہے؟",
     "اردو عام طور پر نستعلیق رسم الخط میں لکھی جاتی ہے، جو دائیں سے بائیں پڑھا جاتا ہے۔"),
    ("پاکستان کا قومی پھول کون سا ہے؟", "پاکستان کا قومی پھول چنبیلی ہے۔"),
    ("علامہ اقبال کس شہر میں پیدا ہوئے؟",
     "علامہ محمد اقبال 1877 میں سیالکوٹ میں پیدا ہوئے۔"),
    ("دریائے سندھ کہاں جا کر گرتا ہے؟",
     "دریائے سندھ کراچی کے قریب بحیرۂ عرب میں جا کر گرتا ہے۔"),
]


def main(argv: list[str] | None = None) -> int:
    from vazhi_assets.definitions import ALL_ASSETS, ALL_CHECKS, RESOURCES
    from vazhi_assets.feedback.assets import feedback_sensor, inbox, retrain_from_feedback

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="demo")
    args = parser.parse_args(argv)
    resources = dict(RESOURCES)
    instance = dg.DagsterInstance.get()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    rows = [{"prompt": p, "answer": "مجھے معلوم نہیں۔", "rating": "down", "correction": c,
             "language": "ur", "model_version": f"{args.recipe}-Q4_K_M",
             "created_at": f"{datetime.now(UTC).isoformat()}", "source": "benchmark"}
            for p, c in CORRECTIONS]
    started, dropped_at = time.monotonic(), time.time()
    (inbox(resources["storage"]) / f"feedback-{stamp}.jsonl").write_text(
        "\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    time.sleep(2.5)  # the sensor leaves files younger than 2 s alone (they may be half written)
    result = feedback_sensor(dg.build_sensor_context(instance=instance, resources=resources))
    if not isinstance(result, dg.SensorResult) or not result.run_requests:
        print(f"sensor requested nothing: {result}")
        return 1
    by_recipe = {r.partition_key: r for r in result.run_requests}
    if args.recipe not in by_recipe:
        print(f"sensor asked for {sorted(by_recipe)}, not {args.recipe}")
        return 1
    request = by_recipe[args.recipe]
    print(f"sensor: run_key {request.run_key} after {time.monotonic() - started:.1f} s")
    defs = dg.Definitions(assets=ALL_ASSETS, asset_checks=ALL_CHECKS,
                          jobs=[retrain_from_feedback], resources=resources)
    run = defs.resolve_job_def("retrain_from_feedback").execute_in_process(
        instance=instance, partition_key=args.recipe, tags=request.tags, raise_on_error=False)
    total = time.monotonic() - started
    print(f"run {run.run_id}: {'success' if run.success else 'FAILED'}, {total:.0f} s in all")
    for event in run.get_asset_materialization_events():
        key = event.asset_key
        [record] = [r for r in instance.fetch_materializations(dg.AssetRecordsFilter(
            asset_key=key, asset_partitions=[args.recipe]), limit=5).records
            if r.run_id == run.run_id]
        print(f"  {key.to_user_string():<24} materialized "
              f"{record.timestamp - dropped_at:7.1f} s after the drop")
    merged = instance.fetch_materializations(dg.AssetRecordsFilter(
        asset_key=dg.AssetKey("merged_model"), asset_partitions=[args.recipe]), limit=1).records[0]
    listed = merged.asset_materialization.metadata["feedback_rows"].value
    print(f"merged_model lists {len(listed)} feedback rows")
    return 0 if run.success else 1


if __name__ == "__main__":
    sys.exit(main())
