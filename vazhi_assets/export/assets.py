"""GGUF export: F16 conversion, Q8_0 / Q4_K_M quantization, Ollama Modelfiles, and the checks
that keep a broken quant from being published."""

import json
from pathlib import Path

import dagster as dg
import polars as pl

from vazhi_assets.gates import require_passing_checks
from vazhi_assets.metadata import markdown_table
from vazhi_assets.resources import VazhiStorage
from vazhi_assets.storage import atomic_write_text
from vazhi_assets.training import answers as ev
from vazhi_assets.training.assets import merged_model
from vazhi_assets.training.resources import RecipeResource

GROUP = "export"
FILE_TYPES = ("F16", "Q8_0", "Q4_K_M")


def gguf_path(storage: VazhiStorage, recipe: RecipeResource, file_type: str) -> Path:
    return recipe.workdir(storage.base, "gguf") / f"{recipe.load().name}-{file_type}.gguf"


def _modelfile(path: Path, recipe: RecipeResource, metadata: dict) -> Path:
    from vazhi_assets.export.modelfile import TEMPLATE_FAMILIES, write_modelfile
    from vazhi_assets.training.chat_format import template_family

    family = template_family(metadata.get("chat_template"))
    # an unknown family: write_modelfile stops with an error asking for a Go template
    make_template, stops = TEMPLATE_FAMILIES.get(family, (lambda: None, []))
    spec = recipe.load()
    inference = spec.inference
    return write_modelfile(path, chat_template_go=make_template(), stop=stops,
                           system=spec.model.system_prompt,
                           temperature=inference.temperature, top_p=inference.top_p,
                           repeat_penalty=inference.repetition_penalty,
                           num_predict=inference.max_new_tokens)


def _file_metadata(path: Path, recipe: RecipeResource, reference: Path | None) -> dict:
    from vazhi_assets.export.gguf_files import read_gguf_metadata

    meta = read_gguf_metadata(path)
    size = path.stat().st_size
    out = {
        **recipe.tags(),
        "path": dg.MetadataValue.path(str(path)),
        "size_mb": round(size / 1e6, 1),
        "architecture": meta.get("architecture"),
        "chat_template_in_gguf": bool(meta.get("chat_template")),
        "tensor_types": dg.MetadataValue.json(meta.get("tensor_types", {})),
        "modelfile": dg.MetadataValue.path(str(_modelfile(path, recipe, meta))),
    }
    if reference is not None:
        out["share_of_f16"] = round(size / reference.stat().st_size, 4)
    budget = recipe.load().export.size_budget_mb
    if budget:
        out["size_budget_mb"] = budget
    return out


@dg.asset(
    deps=[merged_model],
    group_name=GROUP,
    kinds={"gguf", "llama.cpp"},
    owners=["team:ml"],
    tags={"stage": "export"},
    description="The merged model converted to GGUF F16 with llama.cpp's converter, carrying "
    "the tokenizer and chat template; an Ollama Modelfile beside it.",
)
def gguf_f16(
    context: dg.AssetExecutionContext, storage: VazhiStorage, recipe: RecipeResource
) -> dg.MaterializeResult:
    from vazhi_assets.export.convert import convert_to_gguf

    require_passing_checks(context, merged_model.key, ["merged_model_sanity"],
                           recipe=recipe.load().name)
    source = recipe.workdir(storage.base, "merged_model") / "model"
    path = convert_to_gguf(source, gguf_path(storage, recipe, "F16"), "f16")
    return dg.MaterializeResult(metadata=_file_metadata(path, recipe, None))


def _quantized_asset(file_type: str) -> dg.AssetsDefinition:
    @dg.asset(
        name=f"gguf_{file_type.lower()}",
        deps=[gguf_f16],
        group_name=GROUP,
        kinds={"gguf", "llama.cpp"},
        owners=["team:ml"],
        tags={"stage": "export"},
        description=f"The F16 GGUF quantized to {file_type} with llama.cpp's quantizer "
        "(through llama-cpp-python), with its Modelfile.",
    )
    def _asset(
        context: dg.AssetExecutionContext, storage: VazhiStorage, recipe: RecipeResource
    ) -> dg.MaterializeResult:
        from vazhi_assets.export.quantize import quantize_gguf

        require_passing_checks(context, gguf_f16.key, ["gguf_answers"], recipe=recipe.load().name)
        source = gguf_path(storage, recipe, "F16")
        path = quantize_gguf(source, gguf_path(storage, recipe, file_type), file_type)
        return dg.MaterializeResult(metadata=_file_metadata(path, recipe, source))

    return _asset


gguf_q8_0 = _quantized_asset("Q8_0")
gguf_q4_k_m = _quantized_asset("Q4_K_M")
GGUF_ASSETS = {"F16": gguf_f16, "Q8_0": gguf_q8_0, "Q4_K_M": gguf_q4_k_m}


def _gguf_probe(path: Path, recipe: RecipeResource, storage: VazhiStorage) -> dict:
    """Load a GGUF in llama.cpp, answer the golden prompts, score held-out perplexity."""
    from vazhi_assets.evaluation.runners import LlamaCppRunner
    from vazhi_assets.export.gguf_files import verify_gguf
    from vazhi_assets.training.assets import heldout_texts

    spec = recipe.load()
    verify_gguf(path)  # altered tensor bytes load fine in llama.cpp: the digest catches them
    runner = LlamaCppRunner(path, name=path.stem)
    prompts = ev.golden_prompts()
    rows, perplexity = [], {}
    texts = heldout_texts(storage, recipe, per_language=spec.export.eval_items)
    missing = [lang for lang in spec.data.languages if not texts.get(lang)]
    if missing:
        where = ("materialize cpt_shards again" if spec.has_cpt else
                 "the recipe has no CPT and its SFT sources hold nothing out for them")
        raise ValueError(f"no held-out text for {missing}: {where}")
    for language in spec.data.languages:
        messages = [[{"role": "user", "content": p}] for p in prompts[language]]
        # greedy, with the repetition penalty the Modelfile ships: the file as users run it
        answers = runner.answer(messages, max_new_tokens=64,
                                repetition_penalty=spec.inference.repetition_penalty)
        for check in ev.check_answers(language, prompts[language], answers):
            rows.append({"language": language, "prompt": check.prompt, "answer": check.answer,
                         "purity": check.purity, "loop": check.loop})
        perplexity[language] = round(runner.perplexity(texts.get(language, [])[:4]), 3)
    speed = round(runner.tokens_per_second, 1)
    runner.close()
    return {"answers": rows, "perplexity": perplexity, "tokens_per_second": speed}


def _probe_cached(path: Path, recipe: RecipeResource, storage: VazhiStorage) -> dict:
    """Probe results keyed by the file's size and mtime, so both checks share one load."""
    cache = path.with_suffix(".probe.json")
    stamp = f"{path.stat().st_size}:{path.stat().st_mtime_ns}"
    if cache.exists():
        cached = json.loads(cache.read_text(encoding="utf-8"))
        if cached.get("stamp") == stamp:
            return cached
    result = {"stamp": stamp, **_gguf_probe(path, recipe, storage)}
    atomic_write_text(cache, json.dumps(result, ensure_ascii=False, indent=2))
    return result


def _answers_check(file_type: str) -> dg.AssetChecksDefinition:
    asset = GGUF_ASSETS[file_type]

    @dg.asset_check(asset=asset, name="gguf_answers", blocking=True,
                    description="The file loads in llama.cpp and answers the golden prompts "
                    "with non-empty, loop-free text in the target script.")
    def _check(storage: VazhiStorage, recipe: RecipeResource) -> dg.AssetCheckResult:
        path = gguf_path(storage, recipe, file_type)
        try:
            probe = _probe_cached(path, recipe, storage)
        except Exception as exc:  # a file llama.cpp cannot load fails the check, clearly
            return dg.AssetCheckResult(passed=False, metadata={
                "error": f"{type(exc).__name__}: {exc}"[:500]})
        passed, per_language = ev.answers_verdict(probe["answers"])
        return dg.AssetCheckResult(passed=passed, metadata={
            "per_language": dg.MetadataValue.md(markdown_table(per_language)),
            "answers": dg.MetadataValue.md(markdown_table(pl.DataFrame(probe["answers"]))),
            "tokens_per_second": probe["tokens_per_second"]})

    return _check


def drift_verdict(
    reference: dict, candidate: dict, max_ppl_increase: float, max_purity_drop: float
) -> tuple[bool, list[dict]]:
    """Compare a quantized file's probe with the F16 probe, language by language."""
    rows, passed = [], True
    ref_purity = pl.DataFrame(reference["answers"]).group_by("language").agg(
        pl.col("purity").mean())
    cand_purity = pl.DataFrame(candidate["answers"]).group_by("language").agg(
        pl.col("purity").mean())
    purity_ref = dict(ref_purity.iter_rows())
    purity_cand = dict(cand_purity.iter_rows())
    for language, ref_ppl in reference["perplexity"].items():
        ppl = candidate["perplexity"].get(language)
        increase = (ppl - ref_ppl) / ref_ppl if ppl is not None and ref_ppl else None
        drop = purity_ref.get(language, 0.0) - purity_cand.get(language, 0.0)
        ok = increase is not None and increase <= max_ppl_increase and drop <= max_purity_drop
        passed = passed and ok
        rows.append({"language": language, "f16_ppl": ref_ppl, "ppl": ppl,
                     "ppl_increase": round(increase, 4) if increase is not None else None,
                     "purity_drop": round(drop, 4), "ok": ok})
    return passed, rows


def _drift_check(file_type: str) -> dg.AssetChecksDefinition:
    asset = GGUF_ASSETS[file_type]

    @dg.asset_check(asset=asset, name="quantization_drift", blocking=True,
                    description=f"{file_type} held-out perplexity and answer purity stay within "
                    "the recipe's tolerance of the F16 file.")
    def _check(storage: VazhiStorage, recipe: RecipeResource) -> dg.AssetCheckResult:
        spec = recipe.load().export
        try:
            reference = _probe_cached(gguf_path(storage, recipe, "F16"), recipe, storage)
            candidate = _probe_cached(gguf_path(storage, recipe, file_type), recipe, storage)
        except Exception as exc:
            return dg.AssetCheckResult(passed=False, metadata={
                "error": f"{type(exc).__name__}: {exc}"[:500]})
        tolerance = spec.max_perplexity_increase.get(file_type, 0.1)
        passed, rows = drift_verdict(reference, candidate, tolerance, spec.max_purity_drop)
        return dg.AssetCheckResult(passed=passed, metadata={
            "drift": dg.MetadataValue.md(markdown_table(pl.DataFrame(rows))),
            "max_perplexity_increase": tolerance, "max_purity_drop": spec.max_purity_drop})

    return _check


def _size_budget_check(file_type: str) -> dg.AssetChecksDefinition:
    asset = GGUF_ASSETS[file_type]

    @dg.asset_check(asset=asset, name="size_budget", blocking=True,
                    description="The file fits the recipe's size budget (e.g. < 1 GB for phones).")
    def _check(storage: VazhiStorage, recipe: RecipeResource) -> dg.AssetCheckResult:
        budget = recipe.load().export.size_budget_mb
        size = gguf_path(storage, recipe, file_type).stat().st_size / 1e6
        return dg.AssetCheckResult(passed=budget is None or size <= budget,
                                   metadata={"size_mb": round(size, 1),
                                             "budget_mb": budget or 0.0})

    return _check


EXPORT_ASSETS = list(GGUF_ASSETS.values())
EXPORT_CHECKS = [
    *[_answers_check(t) for t in FILE_TYPES],
    *[_drift_check(t) for t in ("Q8_0", "Q4_K_M")],
    _size_budget_check("Q4_K_M"),
]
