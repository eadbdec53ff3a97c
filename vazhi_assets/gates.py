"""Readers honour blocking checks, per partition, on the exact materialization they read.

Dagster stops downstream steps in the run where a blocking check fails, but the checked asset
has already been written, and a later run could pick it up. So every reader asks the instance,
through its public API, for the materialization it is about to read (the latest of that
asset and partition, whose data version must equal the hash of the files on disk) and for the
latest evaluation of each blocking check that targeted *that* materialization, and refuses
unless all passed. What it read is returned as a :class:`Consumed` record, which the reader
writes into its own metadata (``consumed``): lineage of what was actually read, which
:func:`lineage_problems` walks back to the crawl before anything is published.

Checks are evaluated per partition (partitioned asset checks), so a failed check on recipe A
never blocks recipe B.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import dagster as dg

PARTITION_TAG = "dagster/partition"
#: How many later runs are searched for a check re-run on a materialization.
MAX_RUNS_SEARCHED = 200

#: Blocking checks per asset key, filled by :func:`blocking_check` as the check modules load.
_BLOCKING: dict[dg.AssetKey, list[str]] = {}


def blocking_check(
    *, asset: Any, name: str, description: str, partitions_def: Any = None, **kwargs: Any
) -> Callable[[Callable[..., Any]], dg.AssetChecksDefinition]:
    """``@dg.asset_check(blocking=True)`` that also registers the check, so publishing can
    ask for every blocking check in a file's lineage without importing the definitions."""
    key = dg.AssetKey.from_coercible_or_definition(asset)
    if partitions_def is None and isinstance(asset, dg.AssetsDefinition):
        partitions_def = asset.partitions_def
    names = _BLOCKING.setdefault(key, [])
    if name not in names:
        names.append(name)

    def decorate(fn: Callable[..., Any]) -> dg.AssetChecksDefinition:
        with warnings.catch_warnings():
            # partitioned asset checks are "preview" in Dagster 1.13; they are what makes a
            # failed check on one recipe leave the others alone
            warnings.simplefilter("ignore", dg.PreviewWarning)
            return dg.asset_check(asset=asset, name=name, description=description,
                                  blocking=True, partitions_def=partitions_def, **kwargs)(fn)

    return decorate


def warning_check(
    *, asset: dg.AssetsDefinition, name: str, description: str
) -> Callable[[Callable[..., Any]], dg.AssetChecksDefinition]:
    """A non-blocking check on a partitioned asset, evaluated per partition."""

    def decorate(fn: Callable[..., Any]) -> dg.AssetChecksDefinition:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", dg.PreviewWarning)
            return dg.asset_check(asset=asset, name=name, description=description,
                                  blocking=False, partitions_def=asset.partitions_def)(fn)

    return decorate


def blocking_checks_of(asset_key: dg.AssetKey) -> list[str]:
    return list(_BLOCKING.get(asset_key, []))


class UpstreamCheckFailed(dg.Failure):
    """An upstream materialization failed a blocking check, was never checked, or its files do
    not match what Dagster recorded."""


@dataclass(frozen=True)
class Consumed:
    """One upstream materialization a step read."""

    asset: str
    partition: str | None
    storage_id: int
    run_id: str
    content_hash: str | None

    @property
    def label(self) -> str:
        return f"{self.asset}[{self.partition}]" if self.partition else self.asset

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def consumed_metadata(consumed: Iterable[Consumed]) -> dict[str, dg.MetadataValue]:
    """``consumed`` metadata: the exact upstream materializations, by storage id and hash."""
    rows = [c.as_dict() for c in consumed]
    return {"consumed": dg.MetadataValue.json(rows)}


def _label(asset_key: dg.AssetKey, partition: str | None) -> str:
    name = asset_key.to_user_string()
    return f"{name}[{partition}]" if partition else name


def content_hash_of(record: dg.EventLogRecord) -> str | None:
    """The content hash a materialization recorded (its metadata; the data version too)."""
    materialization = record.asset_materialization
    entry = materialization.metadata.get("content_hash") if materialization else None
    return str(entry.value) if entry is not None else None


def latest_materialization(
    instance: dg.DagsterInstance, asset_key: dg.AssetKey, partition: str | None = None
) -> dg.EventLogRecord | None:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=asset_key,
                              asset_partitions=[partition] if partition else None),
        limit=1).records
    return records[0] if records else None


def materialization_by_id(
    instance: dg.DagsterInstance, asset_key: dg.AssetKey, storage_id: int,
    partition: str | None = None,
) -> dg.EventLogRecord | None:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=asset_key, storage_ids=[storage_id],
                              asset_partitions=[partition] if partition else None),
        limit=1).records
    return records[0] if records else None


@dataclass(frozen=True)
class Verdict:
    check: str
    passed: bool | None  # None: never evaluated on the materialization
    run_id: str | None

    def problem(self, where: str) -> str | None:
        if self.passed:
            return None
        if self.passed is None:
            return f"{self.check} on {where}: never evaluated on that materialization"
        return f"{self.check} on {where}: FAILED in run {(self.run_id or '')[:8]}"


def check_verdicts(
    instance: dg.DagsterInstance, record: dg.EventLogRecord, asset_key: dg.AssetKey,
    partition: str | None, check_names: list[str],
) -> dict[str, Verdict]:
    """The latest evaluation of each check that targeted ``record``: in its own run or in a
    later run (a check re-run alone from the UI counts)."""
    wanted = set(check_names)
    found: dict[str, Verdict] = {}
    created_after = datetime.fromtimestamp(record.timestamp, UTC)
    tags = {PARTITION_TAG: partition} if partition else None
    later = instance.get_run_records(
        dg.RunsFilter(created_after=created_after, tags=tags), limit=MAX_RUNS_SEARCHED)
    run_ids = [r.dagster_run.run_id for r in later if r.dagster_run.run_id != record.run_id]
    for run_id in [*run_ids, record.run_id]:  # newest first, the materializing run last
        for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION):
            evaluation = entry.asset_check_evaluation
            if (evaluation is None or evaluation.asset_key != asset_key
                    or evaluation.check_name not in wanted or evaluation.check_name in found
                    or evaluation.partition != partition):
                continue
            target = evaluation.target_materialization_data
            if target is not None and target.storage_id != record.storage_id:
                continue
            found[evaluation.check_name] = Verdict(evaluation.check_name, evaluation.passed,
                                                   run_id)
        if len(found) == len(wanted):
            break
    return {name: found.get(name, Verdict(name, None, None)) for name in check_names}


def consume(
    context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext,
    asset: Any,
    *,
    partition: str | None = None,
    content_hash: str | None = None,
    checks: list[str] | None = None,
) -> Consumed:
    """The materialization of ``asset[partition]`` this step reads, after its blocking checks
    (all registered ones unless ``checks`` names them) passed on exactly it.

    ``content_hash`` is the identity of the files about to be read; it must equal the one the
    latest materialization recorded, or the files changed outside a checked materialization.
    """
    asset_key = dg.AssetKey.from_coercible_or_definition(asset)
    where = _label(asset_key, partition)
    record = latest_materialization(context.instance, asset_key, partition)
    if record is None:
        raise UpstreamCheckFailed(f"{where} has never been materialized; materialize it first")
    problems = []
    recorded = content_hash_of(record)
    if content_hash is not None and recorded is not None and recorded != content_hash:
        problems.append(f"its files (content {content_hash}) are not the ones its latest "
                        f"materialization recorded ({recorded}, run {record.run_id[:8]})")
    names = checks if checks is not None else blocking_checks_of(asset_key)
    verdicts = check_verdicts(context.instance, record, asset_key, partition, names)
    problems += [p for v in verdicts.values() if (p := v.problem(where))]
    if problems:
        raise UpstreamCheckFailed(
            description=f"refusing to read {where}: " + "; ".join(problems)
            + ". Fix the data or the filters and materialize it again.")
    return Consumed(asset_key.to_user_string(), partition, record.storage_id, record.run_id,
                    recorded or content_hash)


def consumed_of(record: dg.EventLogRecord) -> list[Consumed]:
    """What a materialization recorded it read (its ``consumed`` metadata)."""
    entry = record.asset_materialization.metadata.get("consumed")
    if entry is None:
        return []
    value = entry.value if not isinstance(entry.value, str) else json.loads(entry.value)
    return [Consumed(**row) for row in value]


@dataclass
class LineageWalk:
    """Every materialization in a file's lineage, with its blocking-check verdicts."""

    nodes: list[dict[str, Any]]
    problems: list[str]


def lineage_problems(instance: dg.DagsterInstance, root: Consumed) -> LineageWalk:
    """Walk ``root``'s ``consumed`` records back to the crawl; for each materialization on the
    way, every registered blocking check must have passed on exactly it."""
    seen: set[int] = set()
    nodes: list[dict[str, Any]] = []
    problems: list[str] = []
    pending = [root]
    while pending:
        ref = pending.pop()
        if ref.storage_id in seen:
            continue
        seen.add(ref.storage_id)
        key = dg.AssetKey.from_user_string(ref.asset)
        record = materialization_by_id(instance, key, ref.storage_id, ref.partition)
        if record is None:
            problems.append(f"{ref.label}: materialization {ref.storage_id} (run "
                            f"{ref.run_id[:8]}) is no longer in the instance")
            continue
        verdicts = check_verdicts(instance, record, key, ref.partition, blocking_checks_of(key))
        for verdict in verdicts.values():
            problem = verdict.problem(f"{ref.label} (materialized in run {ref.run_id[:8]})")
            if problem:
                problems.append(problem)
        nodes.append({"asset": ref.label, "name": ref.asset, "run_id": ref.run_id,
                      "storage_id": ref.storage_id, "content_hash": ref.content_hash,
                      "checks": {v.check: v.passed for v in verdicts.values()},
                      "metadata": {k: v.value for k, v in
                                   record.asset_materialization.metadata.items()}})
        pending.extend(consumed_of(record))
    return LineageWalk(nodes, problems)
