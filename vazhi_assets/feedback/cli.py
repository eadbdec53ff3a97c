"""``vazhi-feedback``: add one rating, ingest a folder of JSONL files, or show the store.

    vazhi-feedback add --prompt "…" --answer "…" --rating down --correction "…" \\
        --language ur --model-version demo-Q4_K_M
    vazhi-feedback ingest            # every *.jsonl in data/feedback/inbox
    vazhi-feedback stats
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vazhi_assets.feedback.store import LANGUAGES, FeedbackStore, row_from_args
from vazhi_assets.settings import data_dir


def store_path() -> Path:
    return data_dir() / "feedback" / "feedback.duckdb"


def inbox_path() -> Path:
    path = data_dir() / "feedback" / "inbox"
    path.mkdir(parents=True, exist_ok=True)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vazhi-feedback", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    add = sub.add_parser("add", help="store one rating")
    add.add_argument("--prompt", required=True)
    add.add_argument("--answer", required=True)
    add.add_argument("--rating", required=True, choices=["up", "down"])
    add.add_argument("--correction")
    add.add_argument("--language", required=True, choices=LANGUAGES)
    add.add_argument("--model-version", required=True,
                     help="the GGUF or merged model that gave the answer")
    add.add_argument("--source", default="cli")
    ingest = sub.add_parser("ingest", help="ingest *.jsonl files from a folder")
    ingest.add_argument("folder", nargs="?", type=Path, help="default: data/feedback/inbox")
    sub.add_parser("stats", help="rows, ratings and rejects in the store")
    args = parser.parse_args(argv)

    store = FeedbackStore(store_path())
    if args.command == "add":
        fields = {k: v for k, v in vars(args).items() if k != "command"}
        result = store.ingest_lines("cli", [row_from_args(fields)])
        if result.rejected:
            print(store.rejects()["reason"][-1], file=sys.stderr)
            return 1
        print("stored" if result.accepted else "already stored")
        return 0
    if args.command == "ingest":
        for result in store.ingest_inbox(args.folder or inbox_path(), settle_seconds=0):
            state = "already ingested" if result.skipped_file else (
                f"{result.accepted} accepted, {result.duplicates} duplicates, "
                f"{result.rejected} rejected")
            print(f"{result.origin}: {state}")
        return 0
    rows = store.rows()
    corrections = rows.filter(rows["correction"].is_not_null()).height if rows.height else 0
    print(f"{rows.height} rows, {corrections} with corrections, "
          f"{store.rejects().height} rejected")
    return 0


if __name__ == "__main__":
    sys.exit(main())
