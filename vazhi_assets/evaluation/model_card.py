"""An HF-style model card generated from lineage: nothing in it is typed by hand."""

from __future__ import annotations

import polars as pl
import yaml

from vazhi_assets.metadata import markdown_table
from vazhi_assets.training.recipe import Recipe

LANGUAGE_NAMES = {"ur": "Urdu", "ta": "Tamil", "en": "English", "ar": "Arabic"}


def render_model_card(
    recipe: Recipe,
    *,
    base: dict,
    retention: pl.DataFrame | None,
    shards: dict,
    training: dict[str, dict],
    checks: list[dict],
    benchmarks: pl.DataFrame,
    files: list[dict],
    provenance: dict,
    refused: list[dict] | None = None,
) -> str:
    """README.md text with a YAML header (language, license, base model, tags)."""
    header = {
        "language": list(dict.fromkeys([*recipe.data.languages, "en"])),
        "license": "apache-2.0",
        "base_model": base.get("name"),
        "library_name": "gguf",
        "tags": ["vazhi_assets", "lora", "gguf", "continued-pretraining", "sft",
                 *[LANGUAGE_NAMES[x].lower() for x in recipe.data.languages]],
        "pipeline_tag": "text-generation",
    }
    lines = ["---", yaml.safe_dump(header, allow_unicode=True, sort_keys=False).strip(), "---",
             "", f"# {recipe.name}", "", recipe.description, "",
             f"Recipe `{recipe.name}` (hash `{recipe.content_hash()}`), code version "
             f"`{provenance.get('code_version')}`.", "",
             "## Provenance", "",
             f"- Merkle root of everything that trained this model: `{provenance.get('root')}` "
             f"({provenance.get('documents', 0):,} corpus documents, "
             f"{provenance.get('samples', 0):,} SFT samples); the same root is in each GGUF "
             "(`vazhi.provenance.root`) and Modelfile",
             "- check a file: `vazhi-lineage verify <file>.gguf`; list a source's pages in its "
             "training data: `vazhi-lineage trace <file>.gguf --source <name>`", "",
             "## Base model", "",
             f"- name: `{base.get('name')}` ({base.get('architecture')}, "
             f"{int(base.get('parameters', 0)):,} parameters, vocabulary "
             f"{base.get('vocab_size')})",
             f"- source sha256: `{base.get('source_sha256')}`"]
    if base.get("caveat"):
        lines.append(f"- caveat: {base['caveat']}")
    lines += ["", "## Data", ""]
    if retention is not None:
        lines += ["Pages crawled and documents trained on, per source (this model's own "
                  "lineage; Qalb kept 67.8% of its crawl):", "", markdown_table(retention), ""]
    lines += [
        f"- continued pre-training: {shards.get('train_tokens', 0):,} tokens in "
        f"{shards.get('train_blocks', 0):,} blocks of {shards.get('seq_length')} tokens",
        f"- English replay share: {shards.get('replay_token_share')} of tokens "
        f"(requested {recipe.data.replay_ratio})",
        "", "## Training", "",
        "| stage | LoRA r | alpha | targets | lr | schedule | steps | batch | trainable |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for stage, lora, schedule in (("cpt", recipe.cpt_lora, recipe.cpt),
                                  ("sft", recipe.sft_lora, recipe.sft)):
        if schedule is None:
            lines.append(f"| {stage} | – | – | – | – | – | skipped by the recipe | – | – |")
            continue
        result = training.get(stage, {})
        lines.append(
            f"| {stage} | {lora.r} | {lora.alpha} | {', '.join(lora.target_modules)} | "
            f"{schedule.learning_rate} | {schedule.lr_scheduler} | "
            f"{result.get('global_step', schedule.max_steps or schedule.num_train_epochs)} | "
            f"{schedule.per_device_batch_size}x{schedule.gradient_accumulation_steps} | "
            f"{result.get('trainable_share', '')} |")
    inference = recipe.inference
    lines += ["", f"Inference defaults: temperature {inference.temperature}, top_p "
              f"{inference.top_p}, repetition penalty {inference.repetition_penalty}, "
              f"max_new_tokens {inference.max_new_tokens}.", "", "## Checks", "",
              markdown_table(pl.DataFrame(checks)) if checks else "_none recorded_", "",
              "## Benchmarks", "", markdown_table(benchmarks), "", "## Files", "",
              markdown_table(pl.DataFrame(files)) if files else "_none_", "",
              *(["Not published (a blocking check in the file's lineage did not pass):", "",
                 markdown_table(pl.DataFrame(refused)), ""] if refused else []),
              "Run with Ollama: `ollama create <name> -f <file>.Modelfile`, or with "
              "llama.cpp: `llama-cli -m <file>.gguf -cnv`.", ""]
    return "\n".join(lines)
