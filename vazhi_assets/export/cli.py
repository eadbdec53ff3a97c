"""``python -m vazhi_assets.export.cli self-check [GGUF]``: is llama.cpp usable here?"""

from __future__ import annotations

from pathlib import Path

from vazhi_assets.export.gguf_files import ExportError
from vazhi_assets.export.llama_runtime import child_generate, llama_cpp_self_check


def main(argv: list[str] | None = None) -> int:
    """``python -m vazhi_assets.export.cli self-check [GGUF]``: is llama.cpp usable here?"""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m vazhi_assets.export.cli")
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("self-check", help="load a quantized GGUF in a child process")
    check.add_argument("gguf", nargs="?", type=Path)
    child = sub.add_parser("_generate")
    child.add_argument("gguf")
    args = parser.parse_args(argv)
    if args.command == "_generate":
        child_generate(args.gguf)
        return 0
    try:
        report = llama_cpp_self_check(args.gguf)
    except ExportError as exc:
        print(f"llama.cpp self-check FAILED: {exc}")
        return 1
    features = [k for k, v in report["system_info"].items() if v == "1"]
    print(f"llama.cpp self-check ok: {report['path']} generated "
          f"{report['completion_tokens']} tokens; build features: {' '.join(features)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
