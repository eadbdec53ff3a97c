"""SFT samples from files: ChatML JSON lines, Alpaca JSON lines, the Saudi-dialect sheet.

``chatml``       JSON lines ``{"messages": [...], "language": ...}`` (the bundled Urdu and Tamil
                 seeds).
``alpaca``       JSON lines ``{"instruction", "input", "output"}`` (the English replay set).
``alpaca_xlsx``  the Saudi-dialect translation sheet (columns ``Dialect``, ``English Text``,
                 ``Dialect Translation``, ``In-Game Context``) turned into translation
                 instructions.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from vazhi_assets.training.sft_samples import Sample, chat_messages


def _json_lines(path: Path) -> Iterable[tuple[int, dict[str, Any]]]:
    with Path(path).open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}:{number}: not valid JSON ({error.msg})") from error
            if not isinstance(row, dict):
                raise ValueError(f"{path}:{number}: expected a JSON object, got {type(row)}")
            yield number, row


def load_chatml_jsonl(path: Path | str, source: str, language: str | None = None) -> list[Sample]:
    """Samples from JSON lines ``{"messages": [{"role", "content"}, ...], "language": ...}``.

    ``language`` is the fallback for lines without one. Keys other than ``messages`` and
    ``language`` go to ``meta``. A line without ``messages`` is an error (a raw-text row in a
    chat file means the file mixes formats).
    """
    samples = []
    for number, row in _json_lines(Path(path)):
        messages = row.get("messages")
        if not isinstance(messages, list):
            raise ValueError(f"{path}:{number}: no 'messages' list (keys: {sorted(row)})")
        lang = row.get("language", language)
        if lang is None:
            raise ValueError(f"{path}:{number}: no 'language' and no default given")
        # kept as written (only role and content): validate_chatml judges broken turns
        turns = [
            {"role": m.get("role"), "content": m.get("content")} if isinstance(m, Mapping) else m
            for m in messages
        ]
        meta = {k: v for k, v in row.items() if k not in {"messages", "language"}}
        meta["line"] = number
        samples.append(Sample(turns, lang, source, "chatml", meta=meta))
    return samples


def load_alpaca_jsonl(path: Path | str, source: str, language: str) -> list[Sample]:
    """Samples from Alpaca JSON lines: user = instruction (+ blank line + input), assistant =
    output."""
    samples = []
    for number, row in _json_lines(Path(path)):
        instruction = str(row.get("instruction", "")).strip()
        extra = str(row.get("input", "") or "").strip()
        output = str(row.get("output", "")).strip()
        user = f"{instruction}\n\n{extra}" if extra else instruction
        meta = {"line": number, "instruction": instruction, "input": extra}
        samples.append(Sample(chat_messages(user, output), language, source, "alpaca", meta=meta))
    return samples


XLSX_COLUMNS = ("Dialect", "English Text", "Dialect Translation", "In-Game Context")


def saudi_instruction(dialect: str, context: str | None) -> str:
    """The instruction of a sheet row: target dialect plus the in-game context, if any."""
    instruction = f"Translate into the {dialect} Arabic dialect."
    if context:
        instruction += f" In-game context: {context}"
    return instruction


def load_alpaca_xlsx(path: Path | str, source: str) -> list[Sample]:
    """Translation samples from the Saudi-dialect sheet (first worksheet, header in row 1).

    Each row becomes Alpaca-style: instruction ``Translate into the <Dialect> Arabic dialect.``
    plus the in-game context, the English text as input, the dialect translation as output;
    language ``"ar"``, ``meta["variety"]`` = the dialect. Rows missing the English text or the
    translation are skipped. Uses openpyxl in read-only mode.
    """
    from openpyxl import load_workbook

    workbook = load_workbook(Path(path), read_only=True, data_only=True)
    try:
        sheet = workbook.worksheets[0]
        rows = sheet.iter_rows(values_only=True)
        header = [str(c).strip() if c is not None else "" for c in next(rows, ())]
        missing = [c for c in XLSX_COLUMNS if c not in header]
        if missing:
            raise ValueError(f"{path}: sheet {sheet.title!r} lacks columns {missing}")
        col = {name: header.index(name) for name in XLSX_COLUMNS}
        samples = []
        for number, row in enumerate(rows, start=2):
            cells = {
                name: str(row[i]).strip() if i < len(row) and row[i] is not None else ""
                for name, i in col.items()
            }
            english, target = cells["English Text"], cells["Dialect Translation"]
            if not english or not target:
                continue
            dialect, context = cells["Dialect"] or "Saudi", cells["In-Game Context"]
            instruction = saudi_instruction(dialect, context)
            meta = {
                "row": number,
                "instruction": instruction,
                "input": english,
                "variety": dialect,
                "context": context,
                "dedup_text": english,
            }
            samples.append(
                Sample(chat_messages(f"{instruction}\n\n{english}", target), "ar", source,
                       "alpaca_xlsx", meta=meta)
            )
    finally:
        workbook.close()
    return samples
