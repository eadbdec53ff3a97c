"""Render chat samples with the model's chat template and assistant-only loss masks.

Assistant-only masks come from ``apply_chat_template(return_assistant_tokens_mask=True)``, which
needs ``{% generation %}`` blocks in the template. Stock templates (SmolLM2's, Qwen's, Llama-3's)
have none; training therefore uses an equivalent template with the blocks added, and
:func:`templates_agree` proves that it renders exactly the same text as the stock one, so the
model is trained on what it will see at inference.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from vazhi_assets.training.chat_format import has_generation_markers
from vazhi_assets.training.recipe import RECIPES_DIR

CHATML_MARKER = "<|im_start|>"
LLAMA3_MARKER = "<|start_header_id|>"
_DEFAULT_SYSTEM = re.compile(r"<\|im_start\|>system\n(.*?)<\|im_end\|>", re.DOTALL)


class TemplateError(ValueError):
    """The chat template cannot give assistant-only masks."""


def _chatml_training_template(default_system: str | None) -> str:
    system = ""
    if default_system is not None:
        escaped = default_system.replace("'", "\\'").replace("\n", "\\n")
        system = (
            "{%- if loop.first and messages[0]['role'] != 'system' -%}"
            "{{ '<|im_start|>system\\n" + escaped + "<|im_end|>\\n' }}"
            "{%- endif -%}"
        )
    return (
        "{%- for message in messages -%}" + system +
        "{%- if message['role'] == 'assistant' -%}"
        "{{ '<|im_start|>assistant\\n' }}"
        "{%- generation -%}{{ message['content'] + '<|im_end|>' }}{%- endgeneration -%}"
        "{{ '\\n' }}"
        "{%- else -%}"
        "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
        "{%- endif -%}"
        "{%- endfor -%}"
        "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\\n' }}{%- endif -%}"
    )


def _system_default(default_system: str | None, open_: str, close: str) -> str:
    """Jinja that renders ``default_system`` before the first message unless it is a system
    message; ``open_``/``close`` are the family's system-turn markers."""
    if default_system is None:
        return ""
    escaped = default_system.replace("'", "\\'").replace("\n", "\\n")
    return ("{%- if messages[0]['role'] != 'system' -%}"
            "{{ '" + open_ + escaped + close + "' }}{%- endif -%}")


def _llama3_training_template(default_system: str | None = None) -> str:
    return (
        "{{- bos_token -}}"
        + _system_default(default_system, "<|start_header_id|>system<|end_header_id|>\\n\\n",
                          "<|eot_id|>") +
        "{%- for message in messages -%}"
        "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' }}"
        "{%- if message['role'] == 'assistant' -%}"
        "{%- generation -%}{{ message['content'] | trim + '<|eot_id|>' }}{%- endgeneration -%}"
        "{%- else -%}{{ message['content'] | trim + '<|eot_id|>' }}{%- endif -%}"
        "{%- endfor -%}"
        "{%- if add_generation_prompt -%}"
        "{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif -%}"
    )


def _alpaca_training_template(default_system: str | None) -> str:
    """Alpaca prompts: ``### Instruction:`` (``### Input:`` for the text after the first blank
    line of the user turn), ``### Response:``; the response and eos carry the loss."""
    return (
        _system_default(default_system, "", "\\n\\n") +
        "{%- for message in messages -%}"
        "{%- if message['role'] == 'system' -%}{{ message['content'] + '\\n\\n' }}"
        "{%- elif message['role'] == 'user' -%}"
        "{%- set parts = message['content'].split('\\n\\n', 1) -%}"
        "{{ '### Instruction:\\n' + parts[0] + '\\n\\n' }}"
        "{%- if parts | length > 1 -%}{{ '### Input:\\n' + parts[1] + '\\n\\n' }}"
        "{%- endif -%}"
        "{{ '### Response:\\n' }}"
        "{%- else -%}"
        "{%- generation -%}{{ message['content'] + eos_token }}{%- endgeneration -%}"
        "{{ '\\n\\n' }}"
        "{%- endif -%}"
        "{%- endfor -%}"
    )


def inference_template(template: str) -> str:
    """The training template without its ``{% generation %}`` markers: what the merged model
    ships (llama.cpp and Ollama do not know the tag)."""
    return re.sub(r"\{%-?\s*(end)?generation\s*-?%\}", "", template)


def recipe_templates(choice: str, stock: str | None, system_prompt: str | None = None,
                     assistant_only: bool = True) -> tuple[str, str | None]:
    """``(training template, template the merged model ships)`` for a recipe's
    ``model.chat_template``; the second is None when the model keeps its own template.
    Without ``assistant_only`` a template needs no generation blocks (the whole sequence is
    trained on)."""
    if choice == "model" and system_prompt is None:
        if not assistant_only and stock:
            return stock, None
        return training_template(stock), None
    if choice == "model":
        if stock and LLAMA3_MARKER in stock:
            choice = "llama3"
        elif stock and CHATML_MARKER in stock:
            choice = "chatml"
        else:
            raise TemplateError("model.system_prompt needs a ChatML or Llama-3 model template, "
                                "or an explicit model.chat_template")
    if choice == "chatml":
        template = _chatml_training_template(system_prompt)
    elif choice == "llama3":
        template = _llama3_training_template(system_prompt)
    elif choice == "alpaca":
        template = _alpaca_training_template(system_prompt)
    else:
        path = Path(choice) if Path(choice).is_absolute() else RECIPES_DIR / choice
        template = path.read_text(encoding="utf-8")
        if assistant_only and not has_generation_markers(template):
            raise TemplateError(f"model.chat_template: {choice} has no {{% generation %}} blocks")
    return template, inference_template(template)


def training_template(stock: str | None) -> str:
    """A template with ``{% generation %}`` blocks that renders like ``stock``."""
    if not stock:
        raise TemplateError("the tokenizer has no chat template")
    if has_generation_markers(stock):
        return stock
    if CHATML_MARKER in stock:
        # the literal default system prompt, not one built in a tools branch (Qwen2.5)
        literals = [m.group(1) for m in _DEFAULT_SYSTEM.finditer(stock.replace("\\n", "\n"))
                    if not any(c in m.group(1) for c in "{}'+")]
        default = literals[0] if literals and "messages[0]" in stock else None
        return _chatml_training_template(default)
    if LLAMA3_MARKER in stock:
        return _llama3_training_template()
    raise TemplateError(
        "the chat template has no {% generation %} blocks and is not a known family "
        "(ChatML, Llama-3): provide a training template or set assistant_only_loss: false"
    )


def templates_agree(tokenizer: object, template: str, samples: list[list[dict]]) -> list[str]:
    """Samples whose rendering differs between the stock and the training template."""
    differ = []
    for messages in samples:
        stock = tokenizer.apply_chat_template(messages, tokenize=False)
        ours = tokenizer.apply_chat_template(messages, chat_template=template, tokenize=False)
        if stock != ours:
            differ.append(f"stock {stock[:80]!r} != training {ours[:80]!r}")
    return differ


@dataclass(frozen=True)
class Rendered:
    input_ids: list[int]
    assistant_masks: list[int]
    tokens_before_truncation: int
    trained_tokens: int
    assistant_tokens_truncated: int


def render(tokenizer: object, messages: list[dict], template: str, max_length: int) -> Rendered:
    """Token ids and the assistant-only mask of one conversation, truncated to ``max_length``."""
    out = tokenizer.apply_chat_template(
        messages,
        chat_template=template,
        tokenize=True,
        return_dict=True,
        return_assistant_tokens_mask=True,
    )
    ids = list(out["input_ids"])
    mask = list(out.get("assistant_masks") or [0] * len(ids))
    kept_ids, kept_mask = ids[:max_length], mask[:max_length]
    return Rendered(
        input_ids=kept_ids,
        assistant_masks=kept_mask,
        tokens_before_truncation=len(ids),
        trained_tokens=sum(kept_mask),
        assistant_tokens_truncated=sum(mask[max_length:]),
    )
