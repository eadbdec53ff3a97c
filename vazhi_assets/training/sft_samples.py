"""Supervised fine-tuning (SFT) samples: the data model every SFT source is turned into.

Every sample, whatever file or corpus it came from, becomes one :class:`Sample` holding a list
of ChatML-style messages (``system``/``user``/``assistant``); a sample removed while the set is
built is kept as a :class:`Dropped` record with its reason. The loaders are in
:mod:`.sft_loaders`, the corpus-derived samples in :mod:`.sft_derived`, the checks in
:mod:`.sft_table` (structure) and :mod:`.sft_language` (script), the assembly in
:mod:`.sft_build`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from vazhi_assets.settings import PACKAGE_DIR

SFT_DATA_DIR = PACKAGE_DIR / "data" / "sft"
BUNDLED_FILES = {
    "urdu_instructions": "urdu_instructions.jsonl",
    "tamil_instructions": "tamil_instructions.jsonl",
    "english_alpaca": "english_alpaca.jsonl",
    "saudi_dialect": "saudi_dialect.xlsx",
}

FORMATS = ("chatml", "alpaca", "alpaca_xlsx", "kural_citation", "udhr_translation", "feedback")
LANGUAGES = ("ur", "ta", "en", "ar")
ROLES = ("system", "user", "assistant")
Split = Literal["train", "heldout"]

#: Special tokens of common chat templates; in message *content* they mean a rendering leaked.
CHAT_TEMPLATE_MARKERS = (
    "<|im_start|>",
    "<|im_end|>",
    "<|endoftext|>",
    "<|eot_id|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|begin_of_text|>",
    "[INST]",
    "[/INST]",
    "</s>",
    "<s>",
)


def content_id(messages: Sequence[Mapping[str, Any]] | Any) -> str:
    """Stable id of a conversation: the first 16 hex digits of SHA-256 over its canonical JSON
    (role and content of each turn, in order). Equal conversations get equal ids."""
    if isinstance(messages, Sequence) and not isinstance(messages, str):
        canonical: Any = [
            [m.get("role"), m.get("content")] if isinstance(m, Mapping) else m for m in messages
        ]
    else:
        canonical = messages
    blob = json.dumps(canonical, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


@dataclass
class Sample:
    """One conversation; ``sample_id`` defaults to :func:`content_id` of the messages."""

    messages: list[dict[str, str]]
    language: str
    source: str
    format: str
    sample_id: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.sample_id:
            self.sample_id = content_id(self.messages)

    def texts(self, role: str) -> list[str]:
        """Contents of the turns with ``role``, in order."""
        return [
            m["content"]
            for m in self.messages
            if isinstance(m, Mapping)
            and m.get("role") == role
            and isinstance(m.get("content"), str)
        ]

    @property
    def user_text(self) -> str:
        return "\n\n".join(self.texts("user"))

    @property
    def assistant_text(self) -> str:
        return "\n\n".join(self.texts("assistant"))


@dataclass(frozen=True)
class Dropped:
    """A sample removed (or, in ``SftBuild.flagged``, only marked) with the reason."""

    sample_id: str
    source: str
    language: str
    stage: str
    reason: str


def chat_messages(user: str, assistant: str, system: str | None = None) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": system}] if system else []
    messages += [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
    return messages


def split_of_number(number: int, every: int) -> Split:
    if every < 2:
        raise ValueError(f"heldout_every must be >= 2, got {every}")
    return "heldout" if number % every == 0 else "train"
