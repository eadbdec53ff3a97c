"""Readers honour blocking checks: data whose checks failed is never consumed later.

Dagster stops downstream steps in the run where a blocking check fails, but the checked asset
has already been written. Every asset that reads an upstream table calls
:func:`require_passing_checks` first, so a later run cannot silently pick the bad data up.
"""

from __future__ import annotations

import dagster as dg
from dagster._core.storage.asset_check_execution_record import (
    AssetCheckExecutionRecordStatus,
)


class UpstreamCheckFailed(dg.Failure):
    """An upstream asset's blocking check failed or never ran on its latest materialization."""


def _evaluated_run(record: object) -> str:
    """Run id of the materialization a check execution evaluated: Dagster records it on the
    evaluation (a check re-run alone targets the latest materialization of an earlier run)."""
    event = getattr(record, "event", None)
    dagster_event = getattr(event, "dagster_event", None) if event is not None else None
    data = getattr(dagster_event, "event_specific_data", None)
    target = getattr(data, "target_materialization_data", None)
    return target.run_id if target is not None else record.run_id


def require_passing_checks(
    context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext,
    asset_key: dg.AssetKey,
    check_names: list[str],
    recipe: str | None = None,
) -> None:
    """Raise unless ``asset_key``'s latest materialization passed ``check_names`` and, when
    ``recipe`` is given, was made for that recipe (recipes share asset keys: a model file of
    one recipe must not pass for another's)."""
    instance = context.instance
    latest = instance.get_latest_materialization_event(asset_key)
    if latest is None:
        raise UpstreamCheckFailed(f"{asset_key.to_user_string()} has never been materialized")
    problems = []
    made_for = latest.asset_materialization.metadata.get("recipe")
    if recipe is not None and made_for is not None and made_for.value != recipe:
        problems.append(f"its latest materialization is for recipe {made_for.value!r}, not "
                        f"{recipe!r}")
    keys = [dg.AssetCheckKey(asset_key, name) for name in check_names]
    records = instance.event_log_storage.get_latest_asset_check_execution_by_key(keys)
    for key in keys:
        record = records.get(key)
        if record is None or _evaluated_run(record) != latest.run_id:
            problems.append(f"{key.name}: not evaluated on the latest materialization")
        elif record.status == AssetCheckExecutionRecordStatus.FAILED:
            problems.append(f"{key.name}: FAILED in run {record.run_id[:8]}")
        elif record.status != AssetCheckExecutionRecordStatus.SUCCEEDED:
            problems.append(f"{key.name}: {record.status.value}")
    if problems:
        raise UpstreamCheckFailed(
            description=(
                f"refusing to read {asset_key.to_user_string()}: "
                + "; ".join(problems)
                + ". Fix the data or the filters and materialize it again."
            )
        )
