"""Tokenizer integrity: padding without new tokens, and the checks a base model must pass.

Why padding needs care: many base tokenizers (SmolLM2's included) have no pad token, or set
``pad = eos``. Adding a new ``[PAD]`` token grows the vocabulary past the model's embedding matrix
(index errors, or silently resized, untrained rows). Reusing eos as pad is worse in a quieter way:
collators build labels with ``labels[input_ids == pad_token_id] = -100``, so every eos /
end-of-turn label is masked too and the model never learns to stop. :func:`prepare_padding`
therefore picks an *existing* special token that is not eos or the end-of-turn token.
"""

from __future__ import annotations

import json
import weakref
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

# Tokens that exist in some vocabularies purely for padding, tried first.
PAD_NAMES = ("<pad>", "<|pad|>", "[PAD]", "<|padding|>", "<|finetune_right_pad_id|>")
# Document separators that are safe-ish pads: not end of turn in a chat template.
SEPARATOR_NAMES = ("<|endoftext|>",)
# (marker in the chat template, end-of-turn token, turn-start token, style name)
TEMPLATE_STYLES = (
    ("<|im_start|>", "<|im_end|>", "<|im_start|>", "chatml"),
    ("<|start_header_id|>", "<|eot_id|>", "<|start_header_id|>", "llama3"),
    ("<start_of_turn>", "<end_of_turn>", "<start_of_turn>", "gemma"),
    ("<|assistant|>", "<|end|>", "<|user|>", "phi3"),
)
UNSET_MAX_LENGTH = 10_000_000  # transformers uses ~1e30 for "no limit"

# What the tokenizer looked like before prepare_padding touched it (for check_tokenizer).
_BASELINES: weakref.WeakKeyDictionary[Any, dict[str, Any]] = weakref.WeakKeyDictionary()


def template_style(tokenizer: Any) -> str | None:
    template = getattr(tokenizer, "chat_template", None)
    if not isinstance(template, str):
        return None
    for marker, _, _, style in TEMPLATE_STYLES:
        if marker in template:
            return style
    return "other"


def end_of_turn_token(tokenizer: Any) -> str | None:
    """The token that closes an assistant turn (``<|im_end|>`` for ChatML), else eos."""
    template = getattr(tokenizer, "chat_template", None)
    if isinstance(template, str):
        for marker, turn_end, _, _ in TEMPLATE_STYLES:
            if marker in template:
                return turn_end
    return tokenizer.eos_token


def _turn_start_token(tokenizer: Any) -> str | None:
    template = getattr(tokenizer, "chat_template", None)
    if isinstance(template, str):
        for marker, _, turn_start, _ in TEMPLATE_STYLES:
            if marker in template:
                return turn_start
    return None


def _snapshot(tokenizer: Any) -> dict[str, Any]:
    return {
        "len": len(tokenizer),
        "eos_token_id": tokenizer.eos_token_id,
        "bos_token_id": tokenizer.bos_token_id,
        "unk_token_id": tokenizer.unk_token_id,
    }


def _pad_candidates(tokenizer: Any, vocab: dict[str, int]) -> list[str]:
    """Existing tokens that may serve as pad, best first."""
    forbidden = {tokenizer.eos_token, end_of_turn_token(tokenizer)} - {None}
    bos = tokenizer.bos_token
    turn_start = _turn_start_token(tokenizer)
    specials = sorted(
        (tok for tok in getattr(tokenizer, "all_special_tokens", []) if tok in vocab),
        key=lambda tok: vocab[tok],
    )
    added = sorted(
        (str(tok) for tok_id, tok in getattr(tokenizer, "added_tokens_decoder", {}).items()
         if getattr(tok, "special", False) and str(tok) in vocab),
        key=lambda tok: vocab[tok],
    )
    ordered = [
        *PAD_NAMES,
        *([tokenizer.unk_token] if tokenizer.unk_token else []),
        *SEPARATOR_NAMES,
        *(tok for tok in [*specials, *added] if tok not in {bos, turn_start}),
        *([bos] if bos else []),
    ]
    seen: set[str] = set()
    candidates = []
    size = len(tokenizer)
    for tok in ordered:
        if tok in vocab and tok not in forbidden and tok not in seen and vocab[tok] < size:
            seen.add(tok)
            candidates.append(tok)
    return candidates


def prepare_padding(tokenizer: Any) -> str:
    """Make padding possible without adding tokens or touching eos/bos/unk; pad on the right.

    Keeps a pad that is already distinct from eos and the end-of-turn token; otherwise points pad
    at an existing special token (SmolLM2: ``<|endoftext|>``, while eos stays ``<|im_end|>``).
    Returns a one-paragraph description of what was done and why.
    """
    _BASELINES.setdefault(tokenizer, _snapshot(tokenizer))
    before = _snapshot(tokenizer)
    tokenizer.padding_side = "right"
    eos = tokenizer.eos_token
    turn_end = end_of_turn_token(tokenizer)
    vocab = tokenizer.get_vocab()
    pad = tokenizer.pad_token
    if (pad is not None and pad in vocab and vocab[pad] < len(tokenizer)
            and pad not in {eos, turn_end}):
        return (f"pad token {pad!r} (id {vocab[pad]}) was already set and differs from eos "
                f"{eos!r} and end-of-turn {turn_end!r}; padding side right")
    candidates = _pad_candidates(tokenizer, vocab)
    if not candidates:
        raise ValueError(
            "no existing token can serve as pad without being eos/end-of-turn "
            f"(eos {eos!r}, end of turn {turn_end!r}); add a pad token explicitly AND resize the "
            "model's embeddings — this is not done automatically"
        )
    choice = candidates[0]
    tokenizer.pad_token = choice
    after = _snapshot(tokenizer)
    if after != before:
        raise RuntimeError(f"setting pad to {choice!r} changed the tokenizer: {before} -> {after}")
    reason = "was unset" if pad is None else f"was {pad!r}, the eos/end-of-turn token"
    return (
        f"pad {reason}; now {choice!r} (id {vocab[choice]}), an existing token, so the vocabulary "
        f"({len(tokenizer)}) and eos {eos!r} / bos {tokenizer.bos_token!r} are unchanged. "
        f"pad must not be eos or end-of-turn ({turn_end!r}): collators mask labels equal to the "
        "pad id, which would hide every end-of-turn label and the model would never learn to "
        "stop. Padding side right (training). Caveat: a corpus that separates documents with "
        f"{choice!r} should mask padding by attention mask / position, not by token id."
    )


@dataclass
class TokenizerReport:
    passed: bool
    problems: list[str] = field(default_factory=list)
    tokens: int = 0
    vocab_holes: int = 0
    embedding_size: int | None = None
    eos_token: str | None = None
    eos_token_id: int | None = None
    bos_token: str | None = None
    bos_token_id: int | None = None
    pad_token: str | None = None
    pad_token_id: int | None = None
    unk_token: str | None = None
    end_of_turn_token: str | None = None
    end_of_turn_token_id: int | None = None
    chat_template_present: bool = False
    template_style: str | None = None
    padding_side: str = ""
    model_max_length: int | None = None
    padding_baseline_checked: bool = False

    def metadata(self) -> dict[str, Any]:
        data = asdict(self)
        data["problem_count"] = len(self.problems)
        data["problems"] = "; ".join(self.problems) if self.problems else ""
        return {f"tokenizer_{k}" if not k.startswith(("passed", "problem")) else k: v
                for k, v in data.items()}


def _embedding_size_from_dir(tokenizer: Any) -> int | None:
    """The model's vocab_size when the tokenizer was loaded from a model directory (its
    ``config.json``) or from a tokenizer-only resolution (``vazhi_tokenizer.json``)."""
    name = getattr(tokenizer, "name_or_path", None)
    if not name:
        return None
    directory = Path(str(name))
    for filename, keys in (("config.json", ("vocab_size",)),
                           ("vazhi_tokenizer.json", ("embedding_size",))):
        try:
            data = json.loads((directory / filename).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        data = data.get("text_config", data)
        for key in keys:
            if isinstance(data.get(key), int):
                return int(data[key])
    return None


def _single_id(tokenizer: Any, token: str) -> bool:
    """A special token must encode to exactly its own id (not be split into characters)."""
    ids = tokenizer.encode(token, add_special_tokens=False)
    return ids == [tokenizer.convert_tokens_to_ids(token)]


def check_tokenizer(tokenizer: Any, embedding_size: int | None = None) -> TokenizerReport:
    """Integrity checks for a base-model tokenizer (after :func:`prepare_padding`).

    ``embedding_size`` is the model's embedding rows; by default read from the ``config.json``
    beside the tokenizer when it was loaded from a model directory.
    """
    problems: list[str] = []
    n = len(tokenizer)
    vocab = tokenizer.get_vocab()
    ids = list(vocab.values())
    unique = set(ids)
    holes = [i for i in range(n) if i not in unique]
    if holes:
        problems.append(f"vocabulary is not contiguous: {len(holes)} ids in 0..{n - 1} have no "
                        f"token (first {holes[:10]})")
    beyond = sorted(i for i in unique if i >= n)
    if beyond:
        problems.append(f"{len(beyond)} token ids are >= len(tokenizer)={n} (first {beyond[:10]})")
    if len(ids) != len(unique):
        problems.append(f"{len(ids) - len(unique)} ids are shared by more than one token")

    if embedding_size is None:
        embedding_size = _embedding_size_from_dir(tokenizer)
    if embedding_size is not None and n > embedding_size:
        problems.append(
            f"tokenizer has {n} tokens but the model's embedding matrix has {embedding_size} rows: "
            f"ids {embedding_size}..{n - 1} index past it (a token was added, e.g. a new pad, "
            "without resizing the embeddings)"
        )

    eos, eos_id = tokenizer.eos_token, tokenizer.eos_token_id
    if eos is None or eos_id is None:
        problems.append("no eos token: generation cannot stop and packing has no separator")

    template = getattr(tokenizer, "chat_template", None)
    template_present = isinstance(template, str) and bool(template.strip())
    if not template_present:
        problems.append("no chat template: SFT data and inference prompts cannot be rendered "
                        "in the model's chat format")
    style = template_style(tokenizer)
    turn_end = end_of_turn_token(tokenizer)
    turn_end_id = vocab.get(turn_end) if turn_end else None
    if template_present and turn_end is not None and turn_end_id is None:
        problems.append(f"chat template ({style}) closes turns with {turn_end!r}, which is not in "
                        "the vocabulary")
    turn_start = _turn_start_token(tokenizer)
    if template_present and turn_start is not None and turn_start not in vocab:
        problems.append(f"chat template ({style}) opens turns with {turn_start!r}, which is not "
                        "in the vocabulary")

    pad, pad_id = tokenizer.pad_token, tokenizer.pad_token_id
    if pad is None or pad_id is None:
        problems.append("no pad token: call prepare_padding (it reuses an existing token)")
    else:
        if eos_id is not None and pad_id == eos_id:
            problems.append(f"pad == eos ({eos!r}): collators mask pad labels, so the model would "
                            "never learn to stop")
        elif turn_end_id is not None and pad_id == turn_end_id:
            problems.append(f"pad == end-of-turn ({turn_end!r}): its labels would be masked and "
                            "the model would never learn to end a turn")

    limit = embedding_size if embedding_size is not None else n
    named = {"eos": eos_id, "bos": tokenizer.bos_token_id, "pad": pad_id,
             "unk": tokenizer.unk_token_id, "end_of_turn": turn_end_id}
    for label, token_id in named.items():
        if token_id is not None and not 0 <= token_id < min(n, limit):
            problems.append(f"{label} id {token_id} is outside the vocabulary / embedding "
                            f"(size {min(n, limit)})")
    for token in getattr(tokenizer, "all_special_tokens", []):
        token_id = tokenizer.convert_tokens_to_ids(token)
        if token_id is None or not 0 <= token_id < min(n, limit):
            problems.append(f"special token {token!r} has id {token_id}, outside the vocabulary "
                            f"/ embedding (size {min(n, limit)})")
    for token in {t for t in (eos, turn_end, turn_start, pad) if t is not None and t in vocab}:
        if not _single_id(tokenizer, token):
            problems.append(f"special token {token!r} does not encode to its own single id")

    baseline = _BASELINES.get(tokenizer)
    if baseline is not None:
        now = _snapshot(tokenizer)
        for key in ("len", "eos_token_id", "bos_token_id", "unk_token_id"):
            if baseline[key] != now[key]:
                problems.append(f"{key} changed after the tokenizer was loaded: "
                                f"{baseline[key]} -> {now[key]}")

    max_length = getattr(tokenizer, "model_max_length", None)
    if max_length is None or max_length > UNSET_MAX_LENGTH:
        problems.append("model_max_length is unset (transformers' 'no limit' value): truncation "
                        "would never apply; load with load_tokenizer(path, max_length)")

    if template_present and not problems:
        try:
            rendered = tokenizer.apply_chat_template(
                [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}],
                tokenize=False,
            )
        except Exception as exc:  # any template error is a finding
            problems.append(f"chat template fails to render a two-turn conversation: {exc}")
        else:
            if turn_end and turn_end not in rendered:
                problems.append(f"rendered conversation does not contain {turn_end!r}")

    return TokenizerReport(
        passed=not problems,
        problems=problems,
        tokens=n,
        vocab_holes=len(holes),
        embedding_size=embedding_size,
        eos_token=eos,
        eos_token_id=eos_id,
        bos_token=tokenizer.bos_token,
        bos_token_id=tokenizer.bos_token_id,
        pad_token=pad,
        pad_token_id=pad_id,
        unk_token=tokenizer.unk_token,
        end_of_turn_token=turn_end,
        end_of_turn_token_id=turn_end_id,
        chat_template_present=template_present,
        template_style=style,
        padding_side=getattr(tokenizer, "padding_side", ""),
        model_max_length=None if max_length is None or max_length > UNSET_MAX_LENGTH
        else int(max_length),
        padding_baseline_checked=baseline is not None,
    )
