"""Ollama ``Modelfile`` beside a GGUF: Go prompt templates, writer and parser.

``write_modelfile`` writes one with a Go template for ChatML (``chatml_ollama_template``),
Llama-3 (``llama3_ollama_template``) or Alpaca (``alpaca_ollama_template``), chosen from the
GGUF's own chat template unless given, and checks that it parses back (``parse_modelfile``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from vazhi_assets.export.gguf_files import ExportError, read_gguf_metadata
from vazhi_assets.training.chat_format import template_family


def chatml_ollama_template() -> str:
    """Ollama (Go text/template) prompt template for ChatML models (SmolLM2, Qwen2, ...).

    Renders ``<|im_start|>{role}\\n{content}<|im_end|>\\n`` per message and opens an
    assistant turn after a non-assistant last message, like the HF template with
    ``add_generation_prompt``; a trailing assistant message is left open to be continued.
    """
    return (
        "{{- range $i, $m := .Messages }}\n"
        "{{- $last := eq (len (slice $.Messages $i)) 1 -}}\n"
        "<|im_start|>{{ $m.Role }}\n"
        "{{ $m.Content }}\n"
        "{{- if or (ne $m.Role \"assistant\") (not $last) }}<|im_end|>\n"
        "{{ end }}\n"
        "{{- if and $last (ne $m.Role \"assistant\") }}<|im_start|>assistant\n"
        "{{ end }}\n"
        "{{- end }}"
    )


def llama3_ollama_template() -> str:
    """Ollama prompt template for Llama-3 chat models (header ids, ``<|eot_id|>``).

    No ``<|begin_of_text|>``: llama.cpp adds BOS itself (``tokenizer.ggml.add_bos_token``).
    """
    return (
        "{{- range $i, $m := .Messages }}\n"
        "{{- $last := eq (len (slice $.Messages $i)) 1 -}}\n"
        "<|start_header_id|>{{ $m.Role }}<|end_header_id|>\n"
        "\n"
        "{{ $m.Content }}\n"
        "{{- if or (ne $m.Role \"assistant\") (not $last) }}<|eot_id|>{{ end }}\n"
        "{{- if and $last (ne $m.Role \"assistant\") }}"
        "<|start_header_id|>assistant<|end_header_id|>\n"
        "\n"
        "{{ end }}\n"
        "{{- end }}"
    )


def alpaca_ollama_template() -> str:
    """Ollama prompt template for Alpaca-style models: the system message (e.g. the Alpaca
    preamble), ``### Instruction:`` with the whole prompt, ``### Response:``.

    Go templates cannot split strings, so unlike the Jinja template in the GGUF (which llama.cpp
    uses, and training used) it does not move the text after the first blank line under
    ``### Input:``; send the instruction and the input as one prompt and expect slightly
    different rendering than in training, or run the file with llama.cpp."""
    return (
        "{{- if .System }}{{ .System }}\n\n{{ end }}"
        "{{- range $i, $m := .Messages }}\n"
        "{{- if eq $m.Role \"user\" }}### Instruction:\n{{ $m.Content }}\n\n### Response:\n"
        "{{ else if eq $m.Role \"assistant\" }}{{ $m.Content }}\n\n{{ end }}\n"
        "{{- end }}"
    )


TEMPLATE_FAMILIES = {
    "chatml": (chatml_ollama_template, ["<|im_end|>", "<|im_start|>"]),
    "llama3": (llama3_ollama_template, ["<|eot_id|>", "<|start_header_id|>"]),
    "alpaca": (alpaca_ollama_template, ["###"]),
}


def _number(value: float | int) -> str:
    return str(int(value)) if isinstance(value, int) and not isinstance(value, bool) \
        else repr(float(value))


def _quoted(value: str, what: str) -> str:
    if not value or '"' in value or "\n" in value:
        raise ExportError(f"{what} {value!r} must be non-empty, without quotes or newlines")
    return f'"{value}"'


def _block(value: str, what: str) -> str:
    if '"""' in value:
        raise ExportError(f'{what} may not contain """ (Modelfile block quote)')
    return f'"""{value}"""'


def write_modelfile(
    gguf_path: Path,
    *,
    chat_template_go: str | None,
    stop: list[str],
    temperature: float,
    top_p: float,
    repeat_penalty: float,
    num_predict: int,
    system: str | None = None,
    num_ctx: int | None = None,
    out_path: Path | None = None,
) -> Path:
    """Write an Ollama Modelfile for ``gguf_path`` (``FROM ./<file>``) and check it parses back.

    Default location: ``<gguf stem>.Modelfile`` in the GGUF's directory, so several quants can
    sit in one directory (``ollama create NAME -f model-Q8_0.Modelfile``). With
    ``chat_template_go`` None the template is chosen from the GGUF's own chat template
    (ChatML, Llama-3 or Alpaca); any other family must be given explicitly.
    """
    gguf_path = Path(gguf_path)
    out_path = Path(out_path) if out_path else gguf_path.with_name(f"{gguf_path.stem}.Modelfile")
    if out_path.parent.resolve() != gguf_path.parent.resolve():
        raise ExportError("the Modelfile must sit beside its GGUF (FROM is a relative path)")
    if chat_template_go is None:
        family = template_family(read_gguf_metadata(gguf_path).get("chat_template"))
        if family is None:
            raise ExportError(f"{gguf_path.name}: chat template is not ChatML, Llama-3 or "
                              "Alpaca; pass an Ollama (Go) template as chat_template_go")
        chat_template_go = TEMPLATE_FAMILIES[family][0]()
    if not stop:
        raise ExportError("a Modelfile needs at least one stop sequence (the end-of-turn token)")
    parameters: list[tuple[str, str]] = [("stop", _quoted(s, "stop")) for s in stop]
    parameters += [("temperature", _number(temperature)), ("top_p", _number(top_p)),
                   ("repeat_penalty", _number(repeat_penalty)),
                   ("num_predict", _number(int(num_predict)))]
    if num_ctx is not None:
        parameters.append(("num_ctx", _number(int(num_ctx))))
    lines = [f"# Ollama Modelfile for {gguf_path.name}, written by vazhi_assets.",
             f"# ollama create <name> -f {out_path.name}",
             f"FROM ./{gguf_path.name}",
             f"TEMPLATE {_block(chat_template_go, 'TEMPLATE')}"]
    if system is not None:
        lines.append(f"SYSTEM {_block(system, 'SYSTEM')}")
    lines += [f"PARAMETER {name} {value}" for name, value in parameters]
    text = "\n".join(lines) + "\n"

    expected = {"from": f"./{gguf_path.name}", "template": chat_template_go, "system": system,
                "stop": list(stop), "temperature": float(temperature), "top_p": float(top_p),
                "repeat_penalty": float(repeat_penalty), "num_predict": int(num_predict)}
    parsed = parse_modelfile(text)
    got = {"from": parsed["from"], "template": parsed["template"], "system": parsed["system"],
           "stop": parsed["parameters"].get("stop"),
           **{k: parsed["parameters"].get(k)
              for k in ("temperature", "top_p", "repeat_penalty", "num_predict")}}
    if got != expected:
        raise ExportError(f"the Modelfile does not parse back as written: {got} != {expected}")

    tmp = out_path.with_name(f".{out_path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(out_path)
    return out_path


_INSTRUCTIONS = {"from", "template", "system", "parameter", "adapter", "license", "message",
                 "requires"}


def parse_modelfile(source: Path | str) -> dict[str, Any]:
    """Parse an Ollama Modelfile (a path, or its text if it contains a newline).

    Returns ``{"from", "template", "system", "adapter", "license", "messages", "parameters"}``;
    ``parameters["stop"]`` is a list, numeric parameters are int/float, the rest strings.
    Values may be bare, ``"quoted"`` or ``\"\"\"block quoted\"\"\"`` (multi-line).
    Raises ``ExportError`` on unknown instructions, unterminated quotes or a missing FROM.
    """
    text = source if isinstance(source, str) and "\n" in source else \
        Path(source).read_text(encoding="utf-8")
    result: dict[str, Any] = {"from": None, "template": None, "system": None, "adapter": None,
                              "license": None, "messages": [], "parameters": {}}
    pos, n = 0, len(text)
    while pos < n:
        end = text.find("\n", pos)
        end = n if end < 0 else end
        line = text[pos:end].strip()
        if not line or line.startswith("#"):
            pos = end + 1
            continue
        match = re.match(r"(\w+)\s+", text[pos:end].lstrip())
        if not match:
            raise ExportError(f"Modelfile: cannot parse line {line!r}")
        instruction = match.group(1).lower()
        if instruction not in _INSTRUCTIONS:
            raise ExportError(f"Modelfile: unknown instruction {match.group(1)!r}")
        cursor = pos + (len(text[pos:end]) - len(text[pos:end].lstrip())) + match.end()
        if instruction == "parameter":
            pmatch = re.match(r"(\w+)\s+", text[cursor:end])
            if not pmatch:
                raise ExportError(f"Modelfile: PARAMETER without a value: {line!r}")
            pname = pmatch.group(1).lower()
            cursor += pmatch.end()
        elif instruction == "message":
            mmatch = re.match(r"(\w+)\s+", text[cursor:end])
            if not mmatch:
                raise ExportError(f"Modelfile: MESSAGE without a role: {line!r}")
            role = mmatch.group(1).lower()
            cursor += mmatch.end()
        if text.startswith('"""', cursor):
            close = text.find('"""', cursor + 3)
            if close < 0:
                raise ExportError(f"Modelfile: unterminated \"\"\" after {match.group(1)}")
            value = text[cursor + 3:close]
            end = text.find("\n", close + 3)
            trailing = text[close + 3:n if end < 0 else end].strip()
            end = n if end < 0 else end
            if trailing:
                raise ExportError(f"Modelfile: text after closing \"\"\": {trailing!r}")
        elif text.startswith('"', cursor):
            raw = text[cursor:end].rstrip()
            if len(raw) < 2 or not raw.endswith('"'):
                raise ExportError(f"Modelfile: unterminated quote in {line!r}")
            value = raw[1:-1]
        else:
            value = text[cursor:end].strip()
        if instruction == "parameter":
            params = result["parameters"]
            if pname == "stop":
                params.setdefault("stop", []).append(value)
            else:
                params[pname] = _parse_scalar(value)
        elif instruction == "message":
            result["messages"].append({"role": role, "content": value})
        else:
            result[instruction] = value
        pos = end + 1
    if not result["from"]:
        raise ExportError("Modelfile has no FROM")
    return result


def _parse_scalar(value: str) -> int | float | str:
    if re.fullmatch(r"[+-]?\d+", value):
        return int(value)
    try:
        return float(value)
    except ValueError:
        return value
