"""Opt-in declarative automation: a new crawl partition refreshes the corpus, nothing else."""

from __future__ import annotations

import dagster as dg


def test_new_crawl_refreshes_the_corpus_only() -> None:
    from vazhi_assets.corpus.assets import corpus_freshness
    from vazhi_assets.definitions import defs

    assert corpus_freshness.default_status == dg.DefaultSensorStatus.STOPPED  # opt-in
    instance = dg.DagsterInstance.ephemeral()
    corpus = ["cleaned_urdu_corpus", "cleaned_tamil_corpus", "english_replay",
              "deduplicated_corpus", "pretraining_mix", "cleaning_report"]
    # english_docs was never crawled: that must not hold back the others' refresh
    for source in ("urdu_news", "urdu_blog", "tamil_news", "tamil_udhr"):
        instance.report_runless_asset_event(dg.AssetMaterialization("raw_crawl",
                                                                    partition=source))
    instance.add_dynamic_partitions("recipe", ["demo"])
    for name in corpus:
        instance.report_runless_asset_event(dg.AssetMaterialization(name))
    instance.report_runless_asset_event(dg.AssetMaterialization("cpt_shards", partition="demo"))
    first = dg.evaluate_automation_conditions(defs=defs, instance=instance)
    assert first.total_requested == 0  # everything is up to date

    # a re-crawl (or a new source's backfill) of one partition
    instance.report_runless_asset_event(dg.AssetMaterialization("raw_crawl",
                                                                partition="urdu_blog"))
    second = dg.evaluate_automation_conditions(defs=defs, instance=instance,
                                               cursor=first.cursor)
    requested = {name for name in [*corpus, "cpt_shards", "sft_dataset", "cpt_adapter",
                                    "merged_model"]
                 if second.get_num_requested(dg.AssetKey(name))}
    # the whole corpus group is requested in the same tick (downstream of requested assets
    # counts as updated), and the model half is never touched
    assert requested == set(corpus), requested
