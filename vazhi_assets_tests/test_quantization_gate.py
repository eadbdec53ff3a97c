"""A damaged GGUF fails its ``gguf_answers`` check in Dagster, and the gate keeps it from being
read downstream.

Everything that runs is the project's: the ``gguf_f16`` asset converts the real offline
SmolLM2-135M-Instruct with llama.cpp's converter, ``gguf_q8_0`` quantizes it, and the export
checks load each file in llama.cpp, answer the golden prompts and score the held-out text, in
an ephemeral Dagster instance with the project's resources on a temporary data dir. Only the
upstream state is seeded: the merge (training is not under test) is recorded as materialized
with a passing ``merged_model_sanity`` and its model directory is the real base model, and the
held-out documents are written in the layout ``cpt_shards`` leaves (manifest + corpus table).

Needs llama-cpp-python and the converter venv ``.venv-convert`` (``make gguf-tools``); skips
with that reason otherwise. About a minute on 2 cores (plus resolving the base model once).
"""

import json
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from vazhi_assets.export.assets import (
    EXPORT_ASSETS,
    EXPORT_CHECKS,
    gguf_f16,
    gguf_path,
    gguf_q8_0,
)
from vazhi_assets.export.gguf_files import (
    ExportError,
    read_gguf_metadata,
    sidecar_path,
    verify_gguf,
)
from vazhi_assets.resources import VazhiStorage
from vazhi_assets.training.resources import RecipeResource
from vazhi_assets.training.shards import ShardManifest
from vazhi_assets_tests.model_fixtures import gguf_tools_missing
from vazhi_assets_tests.snippets import TA_KURAL1, TA_KURAL391, UR_ART3, UR_ART26

pytestmark = pytest.mark.slow

DEFS = [*EXPORT_ASSETS, *EXPORT_CHECKS]


def _answers_key(asset: dg.AssetsDefinition) -> dg.AssetCheckKey:
    return dg.AssetCheckKey(asset.key, "gguf_answers")


def _seed_upstream(instance: dg.DagsterInstance, storage: VazhiStorage,
                   recipe: RecipeResource, model_dir: Path) -> None:
    """What the training group would leave behind for the export assets."""
    merged = recipe.workdir(storage.base, "merged_model") / "model"
    merged.symlink_to(model_dir, target_is_directory=True)  # read only: the converter reads it
    instance.report_runless_asset_event(dg.AssetMaterialization("merged_model"))
    instance.report_runless_asset_event(dg.AssetCheckEvaluation(
        asset_key=dg.AssetKey("merged_model"), check_name="merged_model_sanity", passed=True))

    docs = {"ur": [("ur-udhr-3", UR_ART3), ("ur-udhr-26", UR_ART26)],
            "ta": [("ta-kural-1", TA_KURAL1), ("ta-kural-391", TA_KURAL391)]}
    storage.write_table("deduplicated_corpus", pl.DataFrame(
        [{"doc_id": d, "language": lang, "text": t} for lang, rows in docs.items()
         for d, t in rows]))
    manifest = ShardManifest(seq_length=512, tokenizer="offline:smollm2-135m-instruct",
                             separator_token_id=0, val_fraction=0.05,
                             val_documents={lang: [d for d, _ in rows]
                                            for lang, rows in docs.items()})
    (recipe.workdir(storage.base, "cpt_shards") / "manifest.json").write_text(
        manifest.to_json(), encoding="utf-8")


def _evaluation(result: dg.ExecuteInProcessResult,
                key: dg.AssetCheckKey) -> dg.AssetCheckEvaluation:
    found = [e for e in result.get_asset_check_evaluations()
             if e.asset_check_key == key]
    assert len(found) == 1, [e.asset_check_key for e in result.get_asset_check_evaluations()]
    return found[0]


def _md(evaluation: dg.AssetCheckEvaluation, name: str) -> str:
    return evaluation.metadata[name].value


def _md_rows(table: str) -> list[dict[str, str]]:
    """The rows of a ``markdown_table`` as dicts of cell text."""
    header, _rule, *body = table.splitlines()
    columns = [c.strip() for c in header.strip("| ").split(" | ")]
    return [dict(zip(columns, (c.strip() for c in line.strip("| ").split(" | ")), strict=True))
            for line in body]


def _failure_text(result: dg.ExecuteInProcessResult) -> str:
    failures = result.get_step_failure_events()
    assert failures, "the step was expected to fail"
    return "\n".join(str(f.step_failure_data.error.message) for f in failures)


def test_damaged_gguf_fails_the_check_and_blocks_downstream(
    tmp_path: Path, real_base_dir: Path
) -> None:
    reason = gguf_tools_missing()
    if reason:
        pytest.skip(reason)
    instance = dg.DagsterInstance.ephemeral()
    storage, recipe = VazhiStorage(root=str(tmp_path / "data")), RecipeResource(name="demo")
    resources = {"storage": storage, "recipe": recipe}
    _seed_upstream(instance, storage, recipe, real_base_dir)
    f16, q8 = gguf_path(storage, recipe, "F16"), gguf_path(storage, recipe, "Q8_0")

    # 1. The real model, converted and quantized by the assets: both files answer the golden
    #    prompts, and gguf_q8_0 got past its gate on gguf_f16's check.
    good = dg.materialize(
        DEFS, instance=instance, resources=resources,
        selection=dg.AssetSelection.assets(gguf_f16, gguf_q8_0).without_checks()
        | dg.AssetSelection.checks(_answers_key(gguf_f16), _answers_key(gguf_q8_0)))
    assert good.success
    for asset in (gguf_f16, gguf_q8_0):
        evaluation = _evaluation(good, _answers_key(asset))
        assert evaluation.passed, _md(evaluation, "per_language")
        assert "error" not in evaluation.metadata
    good_q8_sha = verify_gguf(q8)["sha256"]
    assert verify_gguf(f16)["sha256_checked"]

    # 2. 64 bytes flipped in the middle of the largest tensor (the token embedding, which is
    #    also the output head): the file still loads, only its recorded digest tells ...
    tensor = max(read_gguf_metadata(f16)["tensors"], key=lambda t: t["n_bytes"])
    assert tensor["name"] == "token_embd.weight"
    with f16.open("r+b") as handle:
        handle.seek(tensor["offset"] + tensor["n_bytes"] // 2)
        chunk = handle.read(64)
        handle.seek(-len(chunk), 1)
        handle.write(bytes(b ^ 0xFF for b in chunk))
    with pytest.raises(ExportError, match="corrupted: sha256"):
        verify_gguf(f16)

    # ... and the check, run again on its own as from the UI, fails on the digest before
    # llama.cpp ever loads the file.
    recheck = dg.materialize(DEFS, instance=instance, resources=resources,
                             selection=dg.AssetSelection.checks(_answers_key(gguf_f16)),
                             raise_on_error=False)
    evaluation = _evaluation(recheck, _answers_key(gguf_f16))
    assert not evaluation.passed
    assert "corrupted: sha256" in evaluation.metadata["error"].value, evaluation.metadata

    # Without a recorded digest (a file copied without its .sha256) the answers give it away:
    # one corrupted row of the output head now wins every step and the model repeats a word.
    sidecar_path(f16).unlink()
    recheck = dg.materialize(DEFS, instance=instance, resources=resources,
                             selection=dg.AssetSelection.checks(_answers_key(gguf_f16)),
                             raise_on_error=False)
    evaluation = _evaluation(recheck, _answers_key(gguf_f16))
    assert not evaluation.passed
    probe = json.loads(f16.with_suffix(".probe.json").read_text(encoding="utf-8"))
    assert {row["language"] for row in probe["answers"]} == {"ur", "ta"}
    assert all(row["loop"] and row["purity"] < 0.5 for row in probe["answers"]), probe
    per_language = _md_rows(_md(evaluation, "per_language"))
    assert {row["language"]: row["loops"] for row in per_language} == {"ta": "3", "ur": "3"}
    records = instance.event_log_storage.get_latest_asset_check_execution_by_key(
        [_answers_key(gguf_f16)])
    assert records[_answers_key(gguf_f16)].run_id == recheck.run_id
    assert records[_answers_key(gguf_f16)].status.value == "FAILED"

    # 3. gguf_q8_0 refuses to quantize the damaged F16 again; the good Q8_0 and its
    #    materialization from step 1 are left alone.
    blocked = dg.materialize(DEFS, instance=instance, resources=resources,
                             selection=dg.AssetSelection.assets(gguf_q8_0).without_checks(),
                             raise_on_error=False)
    assert not blocked.success
    message = _failure_text(blocked)
    assert "refusing to read gguf_f16" in message and "gguf_answers: FAILED" in message, message
    assert verify_gguf(q8)["sha256"] == good_q8_sha
    latest = instance.get_latest_materialization_event(gguf_q8_0.key)
    assert latest is not None and latest.run_id == good.run_id

    # 4. A copy cut short (an interrupted download): llama.cpp refuses the file and the check
    #    says so in its metadata.
    with f16.open("r+b") as handle:
        handle.truncate(f16.stat().st_size * 6 // 10)
    truncated = dg.materialize(DEFS, instance=instance, resources=resources,
                               selection=dg.AssetSelection.checks(_answers_key(gguf_f16)),
                               raise_on_error=False)
    evaluation = _evaluation(truncated, _answers_key(gguf_f16))
    assert not evaluation.passed
    assert "damaged or truncated" in evaluation.metadata["error"].value, evaluation.metadata
