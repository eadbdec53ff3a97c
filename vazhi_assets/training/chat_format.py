"""Facts about chat templates that training, export and evaluation all rely on.

Which family a Jinja chat template belongs to (ChatML, Llama-3, Alpaca), the text that ends an
answer besides the end-of-turn token, the literal default system prompt a template inserts, and
whether a template carries ``{% generation %}`` blocks (needed for assistant-only loss masks).
Plain string inspection: nothing here loads a tokenizer or a model.
"""

from __future__ import annotations

import re

_GENERATION = re.compile(r"\{%-?\s*generation\s*-?%\}")


def has_generation_markers(template: str | None) -> bool:
    """True when the template has a ``{% generation %}`` block (any whitespace control)."""
    return bool(template) and _GENERATION.search(template) is not None


def stop_strings(chat_template: str | None) -> list[str]:
    """Text that ends an answer besides the end-of-turn token: an Alpaca model that keeps
    going after its response starts a new ``###`` section (``### Explanation:``, ...)."""
    return ["\n###"] if template_family(chat_template) == "alpaca" else []


def template_family(chat_template: str | None) -> str | None:
    """``chatml`` / ``llama3`` / ``alpaca`` from a Jinja chat template's markers, else None."""
    if not chat_template:
        return None
    if "<|start_header_id|>" in chat_template and "<|eot_id|>" in chat_template:
        return "llama3"
    if "<|im_start|>" in chat_template and "<|im_end|>" in chat_template:
        return "chatml"
    if "### Instruction:" in chat_template and "### Response:" in chat_template:
        return "alpaca"
    return None


def default_system_prompt(chat_template: str | None) -> str | None:
    """The system prompt a ChatML Jinja template inserts when a chat has none, if literal.

    SmolLM2's template adds "You are a helpful AI assistant named SmolLM, ..." in that case;
    the Go templates do not, so pass this as ``write_modelfile(system=...)`` (Ollama then
    prepends it exactly when the chat has no system message, as the Jinja template does).
    """
    if not chat_template:
        return None
    match = re.search(r"<\|im_start\|>system(?:\\n|\n)(.*?)<\|im_end\|>", chat_template, re.S)
    if match is None or "{" in match.group(1):
        return None
    return match.group(1)
