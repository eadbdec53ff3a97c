"""``vazhi-lineage``: verify a GGUF against this instance, trace a source's pages into a model,
diff what entered and left training between two models of a recipe."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import dagster as dg
import polars as pl

from vazhi_assets.lineage.diff import LineageDiff, benchmark_deltas, diff_manifests
from vazhi_assets.lineage.verify import VERIFIED, verify_file
from vazhi_assets.metadata import markdown_table
from vazhi_assets.provenance.manifest import (
    ProvenanceError,
    ProvenanceManifest,
    load_excluded,
    load_manifest,
)
from vazhi_assets.resources import VazhiStorage


def _store(storage: VazhiStorage) -> Path:
    return storage.base / "provenance"


def cmd_verify(args: argparse.Namespace, instance: dg.DagsterInstance,
               storage: VazhiStorage) -> int:
    result = verify_file(args.file, instance, _store(storage))
    print(result.message)
    print(f"sha256 {result.sha256}  ({result.seconds:.2f} s)")
    return result.exit_code


def cmd_trace(args: argparse.Namespace, instance: dg.DagsterInstance,
              storage: VazhiStorage) -> int:
    result = verify_file(args.file, instance, _store(storage))
    if result.status != VERIFIED or result.manifest is None:
        print(result.message, file=sys.stderr)
        print("trace lists training data only for files this instance verifies",
              file=sys.stderr)
        return result.exit_code
    started = time.perf_counter()
    docs = result.manifest.documents.filter(pl.col("source") == args.source)
    samples = result.manifest.samples.filter(pl.col("source") == args.source)
    known = sorted(set(result.manifest.documents["source"].to_list())
                   | set(result.manifest.samples["source"].to_list()))
    print(f"{result.path.name}: recipe partition '{result.produced.partition}', "
          f"run {result.produced.run_id[:8]}")
    print(f"source {args.source}: {docs.height} corpus documents, {samples.height} SFT samples "
          f"in its training data")
    if docs.height:
        print(markdown_table(docs.select("url", "doc_id", "page_hash", "language", "role")))
    if samples.height:
        print(markdown_table(samples.select("sample_id", "format", "language", "feedback_id")))
    if not docs.height and not samples.height:
        print(f"(sources in this model's training data: {', '.join(known)})")
    print(f"({time.perf_counter() - started + result.seconds:.2f} s)")
    return 0


def _benchmarks(storage: VazhiStorage) -> bool:
    return storage.catalog.has_table("benchmark_results")


def _rows_of_run(storage: VazhiStorage, run: str) -> pl.DataFrame:
    if not _benchmarks(storage):
        return pl.DataFrame()
    return storage.catalog.query(
        "select * from benchmark_results where starts_with(run_id, ?) "
        "and provenance_root is not null order by variant", [run])


def resolve_model(ref: str, instance: dg.DagsterInstance,
                  storage: VazhiStorage) -> tuple[str, pl.DataFrame | None, str]:
    """A provenance root and its benchmark rows from a GGUF path, a run id (prefix) of a
    benchmark_table run, or a provenance root (prefix)."""
    path = Path(ref)
    if path.suffix == ".gguf" and path.exists():
        result = verify_file(path, instance, _store(storage))
        if result.status != VERIFIED:
            raise ProvenanceError(result.message)
        root = result.produced.metadata["provenance_root"]
        if not _benchmarks(storage):
            return root, None, f"{path.name}"
        rows = storage.catalog.query(
            "select * from benchmark_results where provenance_root = ? and run_id = ("
            "select max_by(run_id, measured_at) from benchmark_results where "
            "provenance_root = ?) order by variant", [root, root])
        return root, rows if rows.height else None, f"{path.name}"
    rows = _rows_of_run(storage, ref)
    if rows.height:
        roots = rows["provenance_root"].drop_nulls().unique().to_list()
        if len(roots) != 1:
            raise ProvenanceError(f"run {ref}: benchmark rows name {len(roots)} provenance roots")
        return roots[0], rows, f"run {rows['run_id'][0][:8]}"
    store = _store(storage)
    matches = sorted(p.name for p in store.glob(f"{ref}*")) if store.exists() else []
    if len(matches) == 1:
        return matches[0], None, f"root {matches[0][:12]}"
    raise ProvenanceError(f"{ref!r} is neither a verified GGUF, a benchmark run id nor one "
                          "provenance root")


def latest_two(storage: VazhiStorage, recipe: str) -> list[str]:
    if not _benchmarks(storage):
        return []
    runs = storage.catalog.query(
        "select run_id, max(measured_at) as last_measured from benchmark_results "
        "where recipe = ? and provenance_root is not null "
        "group by run_id order by last_measured desc limit 2", [recipe])
    return list(reversed(runs["run_id"].to_list()))


def print_diff(diff: LineageDiff, deltas: pl.DataFrame | None, old: str, new: str) -> None:
    print(f"lineage diff {old} -> {new}")
    print(f"roots {diff.old_root[:16]} -> {diff.new_root[:16]}")
    if diff.unchanged:
        print("the same documents and SFT samples trained both models")
    else:
        print(markdown_table(diff.by_source()))
        print()
        print(markdown_table(diff.documents.select("change", "source", "step", "url", "reason")))
        if diff.samples.height:
            print()
            print(markdown_table(diff.samples))
    if deltas is not None and deltas.height:
        print("\nbenchmark deltas (new - old):")
        print(markdown_table(deltas))


def cmd_diff(args: argparse.Namespace, instance: dg.DagsterInstance,
             storage: VazhiStorage) -> int:
    refs = list(args.models)
    if args.recipe:
        refs = latest_two(storage, args.recipe)
        if len(refs) < 2:
            print(f"recipe {args.recipe} has {len(refs)} benchmark runs; diff needs two",
                  file=sys.stderr)
            return 2
    if len(refs) != 2:
        print("give two models (GGUF files, benchmark run ids or provenance roots) or "
              "--recipe NAME", file=sys.stderr)
        return 2
    started = time.perf_counter()
    try:
        (old_root, old_rows, old_label), (new_root, new_rows, new_label) = (
            resolve_model(r, instance, storage) for r in refs)
        store = _store(storage)
        old: ProvenanceManifest = load_manifest(store, old_root)
        new: ProvenanceManifest = load_manifest(store, new_root)
    except ProvenanceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    diff = diff_manifests(old, new, load_excluded(store, new_root),
                          load_excluded(store, old_root))
    deltas = (benchmark_deltas(old_rows, new_rows)
              if old_rows is not None and new_rows is not None else None)
    print_diff(diff, deltas, old_label, new_label)
    print(f"({time.perf_counter() - started:.2f} s)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vazhi-lineage", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    verify = sub.add_parser("verify", help="did this project produce FILE.gguf, and from what")
    verify.add_argument("file", type=Path)
    trace = sub.add_parser("trace", help="a source's pages in FILE.gguf's training data")
    trace.add_argument("file", type=Path)
    trace.add_argument("--source", required=True, help="a crawl source (or SFT source) name")
    diff = sub.add_parser("diff", help="documents and samples that entered or left training "
                          "between two models, beside the benchmark deltas")
    diff.add_argument("models", nargs="*",
                      help="two GGUF files, benchmark run ids or provenance roots (old new)")
    diff.add_argument("--recipe", help="the last two benchmark runs of this recipe partition")
    args = parser.parse_args(argv)
    instance = dg.DagsterInstance.get()
    storage = VazhiStorage()
    command = {"verify": cmd_verify, "trace": cmd_trace, "diff": cmd_diff}[args.command]
    return command(args, instance, storage)


if __name__ == "__main__":
    sys.exit(main())
