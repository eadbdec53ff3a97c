"""The ``sft_dataset`` table: samples as rows of chat messages.

:func:`validate_chatml` is the structure every row must have to be trained on (one format,
valid roles and turn order, no leaked template markers); :func:`samples_to_frame` and
:func:`frame_to_samples` convert samples to and from the polars frame stored as the table.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from vazhi_assets.training.sft_language import verify_language
from vazhi_assets.training.sft_samples import (
    CHAT_TEMPLATE_MARKERS,
    FORMATS,
    LANGUAGES,
    ROLES,
    Sample,
    content_id,
)


@dataclass(frozen=True)
class Problem:
    """A structural problem of one row found by :func:`validate_chatml`."""

    sample_id: str
    problem: str


# --------------------------------------------------------------------------- validation

_ROLE_SET = frozenset(ROLES)


def _row_messages(row: Any, index: int) -> tuple[str, Any, str | None]:
    """(sample id, messages or None, problem with the row itself or None)."""
    if isinstance(row, Sample):
        return row.sample_id, row.messages, None
    if isinstance(row, Mapping):
        if "messages" in row:
            sid = str(row.get("sample_id") or content_id(row["messages"]))
            return sid, row["messages"], None
        keys = ", ".join(sorted(map(str, row))) or "none"
        return (f"row-{index}", None,
                f"row is not a conversation (no 'messages'; keys: {keys}): "
                "a dataset must hold chat messages only")
    if isinstance(row, str):
        return (f"row-{index}", None,
                f"raw text row ({row[:40]!r}…) mixed into a chat dataset")
    return f"row-{index}", None, f"unsupported row type {type(row).__name__}"


def _message_problems(messages: Any) -> list[str]:
    if not isinstance(messages, list) or not messages:
        return ["'messages' must be a non-empty list"]
    problems: list[str] = []
    roles: list[str] = []
    for position, message in enumerate(messages):
        if not isinstance(message, Mapping):
            problems.append(f"turn {position} is {type(message).__name__}, not an object")
            roles.append("?")
            continue
        role, content = message.get("role"), message.get("content")
        roles.append(str(role))
        if role not in _ROLE_SET:
            problems.append(f"turn {position} has invalid role {role!r}")
        if not isinstance(content, str):
            problems.append(f"turn {position} ({role}) content is {type(content).__name__}")
            continue
        if not content.strip():
            problems.append(f"turn {position} ({role}) is empty")
        for marker in CHAT_TEMPLATE_MARKERS:
            if marker in content:
                problems.append(f"turn {position} ({role}) contains template marker {marker!r}")
    if "user" not in roles:
        problems.append("no user turn")
    if "assistant" not in roles:
        problems.append("no assistant turn")
    body = roles[1:] if roles and roles[0] == "system" else roles
    offset = len(roles) - len(body)
    for position, role in enumerate(body):
        expected = "user" if position % 2 == 0 else "assistant"
        if role != expected:
            problems.append(
                f"turn order: turn {position + offset} is {role!r}, expected {expected!r} "
                "(optional single leading system, then user/assistant alternating)"
            )
            break
    else:
        if body and body[-1] != "assistant":
            problems.append("conversation must end with an assistant turn")
    return problems


def validate_chatml(samples: Iterable[Any]) -> list[Problem]:
    """Structural problems of a chat dataset; an empty list means it is fit for training.

    Rows may be :class:`Sample` objects or plain dicts. Checked: every row is a conversation
    (a dict without ``messages`` or a bare string is reported: one format per dataset); roles
    are ``system``/``user``/``assistant``; order is an optional single leading system turn,
    then user/assistant alternating, ending with assistant; there is at least one user and one
    assistant turn and no turn is empty; no chat-template special token
    (:data:`CHAT_TEMPLATE_MARKERS`) appears in any content; ``Sample.format``/``language`` are
    known values.
    """
    problems: list[Problem] = []
    for index, row in enumerate(samples):
        sid, messages, row_problem = _row_messages(row, index)
        if row_problem:
            problems.append(Problem(sid, row_problem))
            continue
        for text in _message_problems(messages):
            problems.append(Problem(sid, text))
        if isinstance(row, Sample):
            if row.format not in FORMATS:
                problems.append(Problem(sid, f"unknown format {row.format!r}"))
            if row.language not in LANGUAGES:
                problems.append(Problem(sid, f"unknown language {row.language!r}"))
    return problems


# --------------------------------------------------------------------------- frames


def samples_to_frame(samples: Sequence[Sample]) -> Any:
    """A polars DataFrame, one row per sample; ``messages`` and ``meta`` as JSON strings."""
    import polars as pl

    rows = []
    for sample in samples:
        rows.append(
            {
                "sample_id": sample.sample_id,
                "language": sample.language,
                "source": sample.source,
                "format": sample.format,
                "messages": json.dumps(sample.messages, ensure_ascii=False),
                "user_chars": sum(len(t) for t in sample.texts("user")),
                "assistant_chars": sum(len(t) for t in sample.texts("assistant")),
                "purity": float(verify_language(sample)[1]),
                "meta": json.dumps(sample.meta, ensure_ascii=False, default=str),
            }
        )
    schema = {
        "sample_id": pl.String,
        "language": pl.String,
        "source": pl.String,
        "format": pl.String,
        "messages": pl.String,
        "user_chars": pl.Int64,
        "assistant_chars": pl.Int64,
        "purity": pl.Float64,
        "meta": pl.String,
    }
    return pl.DataFrame(rows, schema=schema)


def frame_to_samples(df: Any) -> list[Sample]:
    """Inverse of :func:`samples_to_frame` (a missing ``meta`` column gives empty metas)."""
    has_meta = "meta" in df.columns
    samples = []
    for row in df.iter_rows(named=True):
        samples.append(
            Sample(
                messages=json.loads(row["messages"]),
                language=row["language"],
                source=row["source"],
                format=row["format"],
                sample_id=row["sample_id"],
                meta=json.loads(row["meta"]) if has_meta and row["meta"] else {},
            )
        )
    return samples
