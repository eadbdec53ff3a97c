"""The feedback loop: the DuckDB store, the command line, and the sensor that retrains."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vazhi_assets.feedback.store import FeedbackStore

CORRECTIONS = [
    ("کراچی کی بندرگاہ کیوں اہم ہے؟", "مجھے معلوم نہیں۔",
     "کراچی کی بندرگاہ پاکستان کی سب سے بڑی بندرگاہ ہے اور ملک کی زیادہ تر تجارت اسی کے "
     "ذریعے ہوتی ہے۔"),
    ("لاہور کس دریا کے کنارے آباد ہے؟", "لاہور لاہور لاہور",
     "لاہور دریائے راوی کے کنارے آباد ہے اور پنجاب کا صوبائی دارالحکومت ہے۔"),
    ("اردو کس رسم الخط میں لکھی جاتی ہے؟", "Urdu is written in English.",
     "اردو عام طور پر نستعلیق رسم الخط میں لکھی جاتی ہے، جو دائیں سے بائیں پڑھا جاتا ہے۔"),
]


def rows(model_version: str = "tiny-test-Q4_K_M") -> list[dict]:
    return [{"prompt": p, "answer": a, "rating": "down", "correction": c, "language": "ur",
             "model_version": model_version, "created_at": f"2026-11-22T10:0{i}:00Z"}
            for i, (p, a, c) in enumerate(CORRECTIONS)]


def jsonl(items: list) -> str:
    return "\n".join(x if isinstance(x, str) else json.dumps(x, ensure_ascii=False)
                     for x in items) + "\n"


def test_store_accepts_rejects_and_never_double_counts(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "feedback.duckdb")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    good = rows()
    up = {**good[0], "rating": "up", "correction": None, "created_at": "2026-11-22T11:00:00Z"}
    (inbox / "a.jsonl").write_text(jsonl([
        good[0], good[1], up,
        {**good[2], "rating": "meh"},               # not up/down
        "{not json",                                # not JSON
        {**good[2], "prompt": "  "},                # empty prompt
        {**good[2], "mood": "happy"},               # unknown field
        good[0],                                    # the same row again
    ]), encoding="utf-8")
    [result] = store.ingest_inbox(inbox, settle_seconds=0)
    assert (result.accepted, result.duplicates, result.rejected) == (3, 1, 4)
    reasons = store.rejects()["reason"].to_list()
    assert any(r.startswith("rating:") for r in reasons)
    assert any(r.startswith("not JSON") for r in reasons)
    assert any(r.startswith("prompt:") for r in reasons)
    assert any(r.startswith("mood:") for r in reasons)
    assert store.rejects()["line"].to_list() == [4, 5, 6, 7]
    [archived] = (inbox / "done").glob("*-a.jsonl")
    assert not (inbox / "a.jsonl").exists()

    # the same file dropped again is skipped; a new file with an old row adds nothing
    (inbox / "a.jsonl").write_bytes(archived.read_bytes())
    (inbox / "b.jsonl").write_text(jsonl([good[1], good[2]]), encoding="utf-8")
    first, second = store.ingest_inbox(inbox, settle_seconds=0)
    assert first.skipped_file and (second.accepted, second.duplicates) == (1, 1)
    seqs = store.rows()["seq"].to_list()
    assert len(seqs) == 4 and seqs == sorted(set(seqs))  # increasing; gaps are allowed
    assert store.usable(0, ["ur"], use_upvoted=False).height == 3
    assert store.usable(0, ["ur"], use_upvoted=True).height == 4
    assert store.usable(seqs[1], ["ur"], use_upvoted=False)["seq"].to_list() == [seqs[3]]
    assert store.usable(0, ["ta"], use_upvoted=True).height == 0
    assert len(list((inbox / "done").glob("*-a.jsonl"))) == 1  # same bytes, same archive name

    # a file still being written (modified just now) waits for a later call
    (inbox / "c.jsonl").write_text(jsonl([{**good[0], "prompt": "تازہ سوال؟"}]),
                                   encoding="utf-8")
    assert store.ingest_inbox(inbox) == [] and (inbox / "c.jsonl").exists()

    # a row that cannot be trained on is excluded, listed with the rejects, and not usable
    first_id = store.rows()["feedback_id"][0]
    assert store.exclude({first_id: "not usable for SFT: test"}) == 1
    assert store.exclude({first_id: "again"}) == 0
    assert first_id not in store.rows()["feedback_id"].to_list()
    assert store.rejects()["origin"].to_list()[-1] == f"feedback:{first_id}"


def test_rows_without_a_time_are_stored_once(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "feedback.duckdb")
    row = {k: v for k, v in rows()[0].items() if k != "created_at"}
    assert store.ingest_lines("cli", [json.dumps(row)]).accepted == 1
    assert store.ingest_lines("cli", [json.dumps(row)]).duplicates == 1
    assert store.rows()["created_at"][0] is not None


def test_a_crash_mid_file_keeps_the_store_as_it_was(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    store = FeedbackStore(tmp_path / "feedback.duckdb")
    store.ingest_lines("first", [jsonl(rows()[:1]).strip()])
    real = FeedbackStore._ingest

    def crash_after_first_row(self, con, origin, lines, result):  # noqa: ANN001, ANN202
        real(self, con, origin, [next(iter(lines))], result)
        raise OSError("disk went away")

    monkeypatch.setattr(FeedbackStore, "_ingest", crash_after_first_row)
    path = tmp_path / "c.jsonl"
    path.write_text(jsonl(rows()[1:]), encoding="utf-8")
    with pytest.raises(OSError, match="disk went away"):
        store.ingest_file(path)
    monkeypatch.undo()
    assert store.rows().height == 1
    assert store.ingest_file(path).accepted == 2  # not recorded as ingested: it can be retried


def test_command_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                      capsys: pytest.CaptureFixture[str]) -> None:
    from vazhi_assets.feedback import cli

    monkeypatch.setenv("VAZHI_DATA_DIR", str(tmp_path))
    prompt, answer, correction = CORRECTIONS[0]
    args = ["add", "--prompt", prompt, "--answer", answer, "--rating", "down",
            "--correction", correction, "--language", "ur", "--model-version", "demo-Q4_K_M"]
    assert cli.main(args) == 0
    (tmp_path / "feedback" / "inbox").mkdir(parents=True, exist_ok=True)
    (tmp_path / "feedback" / "inbox" / "x.jsonl").write_text(jsonl(rows()[1:] + ["oops"]),
                                                            encoding="utf-8")
    assert cli.main(["ingest"]) == 0
    assert cli.main(["stats"]) == 0
    out = capsys.readouterr().out
    assert "stored" in out and "x.jsonl: 2 accepted, 0 duplicates, 1 rejected" in out
    assert "3 rows, 3 with corrections, 1 rejected" in out
    with pytest.raises(SystemExit):
        cli.main(["add", "--prompt", "p", "--answer", "a", "--rating", "sideways",
                  "--language", "ur", "--model-version", "v"])


def test_a_failed_retrain_leaves_the_partition_retrainable() -> None:
    """The last good merged model is still there after a retrain fails; the sensor must keep
    offering that partition (its Dagster partition status is FAILED then)."""
    import dagster as dg

    from vazhi_assets.feedback.assets import trained_recipes
    from vazhi_assets.training.recipe_registry import RECIPE_PARTITIONS

    fail = {"now": False}

    @dg.asset(name="merged_model", partitions_def=RECIPE_PARTITIONS)
    def merged_model() -> None:
        if fail["now"]:
            raise RuntimeError("retrain failed")

    with dg.DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(RECIPE_PARTITIONS.name, ["good", "never"])
        assert trained_recipes(instance) == []
        assert dg.materialize([merged_model], partition_key="good", instance=instance).success
        fail["now"] = True
        assert not dg.materialize([merged_model], partition_key="good", instance=instance,
                                  raise_on_error=False).success
        assert not dg.materialize([merged_model], partition_key="never", instance=instance,
                                  raise_on_error=False).success
        status = instance.get_status_by_partition(dg.AssetKey("merged_model"), ["good"],
                                                  RECIPE_PARTITIONS)
        assert status["good"] == dg.AssetPartitionStatus.FAILED
        assert trained_recipes(instance) == ["good"]
