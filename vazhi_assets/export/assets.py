"""GGUF export per recipe partition: F16 conversion (stamped with the provenance root), Q8_0 /
Q4_K_M quantization, Ollama Modelfiles, and the checks that keep a broken quant from being
published."""


import json
from pathlib import Path

import dagster as dg
import polars as pl

from vazhi_assets.gates import blocking_check, consume, consumed_metadata
from vazhi_assets.identity import code_version, model_identity, sha256_file, version
from vazhi_assets.metadata import markdown_table
from vazhi_assets.provenance.assets import read_pointer, training_provenance
from vazhi_assets.resources import VazhiStorage
from vazhi_assets.storage import atomic_write_text
from vazhi_assets.training import answers as ev
from vazhi_assets.training.heldout import heldout_texts
from vazhi_assets.training.recipe import Recipe
from vazhi_assets.training.recipe_assets import RecipeRun, load_snapshot, recipe_run
from vazhi_assets.training.recipe_registry import RECIPE_PARTITIONS
from vazhi_assets.training.train_assets import merged_model
from vazhi_assets.training.workspace import RecipeWork

GROUP = "export"
FILE_TYPES = ("F16", "Q8_0", "Q4_K_M")
EXPORT_CODE = ("vazhi_assets.export.convert", "vazhi_assets.export.quantize",
               "vazhi_assets.export.gguf_files", "vazhi_assets.export.provenance_stamp")


def gguf_path(work: RecipeWork, file_type: str) -> Path:
    return work.gguf(work.root.name, file_type)


def modelfile_path(path: Path) -> Path:
    return path.with_suffix(".Modelfile")


def _modelfile(path: Path, spec: Recipe, metadata: dict, provenance: dict) -> Path:
    from vazhi_assets.export.modelfile import TEMPLATE_FAMILIES, write_modelfile
    from vazhi_assets.training.chat_format import template_family

    family = template_family(metadata.get("chat_template"))
    # an unknown family: write_modelfile stops with an error asking for a Go template
    make_template, stops = TEMPLATE_FAMILIES.get(family, (lambda: None, []))
    inference = spec.inference
    out = write_modelfile(path, chat_template_go=make_template(), stop=stops,
                          system=spec.model.system_prompt,
                          temperature=inference.temperature, top_p=inference.top_p,
                          repeat_penalty=inference.repetition_penalty,
                          num_predict=inference.max_new_tokens)
    stamp = [f"# vazhi provenance root: {provenance['root']}",
             f"# vazhi recipe: {provenance['recipe']} (hash {provenance['recipe_hash']})",
             f"# vazhi code version: {provenance['code_version']}",
             "# check this file with: vazhi-lineage verify " + path.name]
    atomic_write_text(out, "\n".join(stamp) + "\n" + out.read_text(encoding="utf-8"))
    return out


def _file_metadata(path: Path, run: RecipeRun, reference: Path | None, consumed: list) -> dict:
    from vazhi_assets.export.gguf_files import read_gguf_metadata
    from vazhi_assets.export.provenance_stamp import provenance_of

    meta = read_gguf_metadata(path)
    provenance = provenance_of(meta)
    size = path.stat().st_size
    digest = sha256_file(path)
    out = {
        **run.tags(),
        "content_hash": version(digest),
        "sha256": digest,
        **consumed_metadata(consumed),
        "path": dg.MetadataValue.path(str(path)),
        "size_mb": round(size / 1e6, 1),
        "architecture": meta.get("architecture"),
        "chat_template_in_gguf": bool(meta.get("chat_template")),
        "provenance_root": provenance.get("root", ""),
        "code_version": provenance.get("code_version", ""),
        "tensor_types": dg.MetadataValue.json(meta.get("tensor_types", {})),
        "modelfile": dg.MetadataValue.path(str(_modelfile(path, run.spec, meta, provenance))),
    }
    if reference is not None:
        out["share_of_f16"] = round(size / reference.stat().st_size, 4)
    budget = run.spec.export.size_budget_mb
    if budget:
        out["size_budget_mb"] = budget
    return out


@dg.asset(
    partitions_def=RECIPE_PARTITIONS,
    deps=[merged_model, training_provenance],
    group_name=GROUP,
    kinds={"gguf", "llama.cpp"},
    owners=["team:ml"],
    tags={"stage": "export"},
    code_version=code_version(*EXPORT_CODE, after=[merged_model, training_provenance]),
    description="The merged model converted to GGUF F16 with llama.cpp's converter, carrying "
    "the tokenizer, chat template and the provenance root (vazhi.* keys); an Ollama Modelfile "
    "beside it.",
)
def gguf_f16(context: dg.AssetExecutionContext, storage: VazhiStorage) -> dg.MaterializeResult:
    from vazhi_assets.export.convert import convert_to_gguf
    from vazhi_assets.export.gguf_files import sidecar_path
    from vazhi_assets.export.provenance_stamp import stamp_provenance

    run = recipe_run(context, storage)
    work = run.work
    merged = consume(context, merged_model.key, partition=run.name,
                     content_hash=model_identity(work.merged_model)["content_hash"])
    pointer = read_pointer(work)
    provenance = consume(context, training_provenance.key, partition=run.name,
                         content_hash=pointer["root"][:16])
    header = json.loads((Path(pointer["manifest"]) / "manifest.json").read_text("utf-8"))
    path = convert_to_gguf(work.merged_model, gguf_path(work, "F16"), "f16")
    stamp_provenance(path, {"root": pointer["root"], "recipe": run.name,
                            "recipe_hash": run.spec.content_hash(),
                            "code_version": header["code_version"]})
    digest = sha256_file(path)
    atomic_write_text(sidecar_path(path), f"{digest}  {path.name}\n")
    metadata = _file_metadata(path, run, None, [run.consumed, merged, provenance])
    return dg.MaterializeResult(metadata=metadata,
                                data_version=dg.DataVersion(metadata["content_hash"]))


def _quantized_asset(file_type: str) -> dg.AssetsDefinition:
    @dg.asset(
        name=f"gguf_{file_type.lower()}",
        partitions_def=RECIPE_PARTITIONS,
        deps=[gguf_f16],
        group_name=GROUP,
        kinds={"gguf", "llama.cpp"},
        owners=["team:ml"],
        tags={"stage": "export"},
        code_version=code_version(*EXPORT_CODE, after=[gguf_f16]),
        description=f"The F16 GGUF quantized to {file_type} with llama.cpp's quantizer "
        "(through llama-cpp-python), with its Modelfile; the provenance keys carry over.",
    )
    def _asset(context: dg.AssetExecutionContext, storage: VazhiStorage) -> dg.MaterializeResult:
        from vazhi_assets.export.quantize import quantize_gguf

        run = recipe_run(context, storage)
        source = gguf_path(run.work, "F16")
        f16 = consume(context, gguf_f16.key, partition=run.name,
                      content_hash=version(sha256_file(source)))
        path = quantize_gguf(source, gguf_path(run.work, file_type), file_type)
        metadata = _file_metadata(path, run, source, [run.consumed, f16])
        return dg.MaterializeResult(metadata=metadata,
                                    data_version=dg.DataVersion(metadata["content_hash"]))

    return _asset


gguf_q8_0 = _quantized_asset("Q8_0")
gguf_q4_k_m = _quantized_asset("Q4_K_M")
GGUF_ASSETS = {"F16": gguf_f16, "Q8_0": gguf_q8_0, "Q4_K_M": gguf_q4_k_m}


def _gguf_probe(path: Path, spec: Recipe, storage: VazhiStorage) -> dict:
    """Load a GGUF in llama.cpp, answer the golden prompts, score held-out perplexity."""
    from vazhi_assets.export.gguf_files import verify_gguf
    from vazhi_assets.export.llama_runner import LlamaCppRunner

    verify_gguf(path)  # altered tensor bytes load fine in llama.cpp: the digest catches them
    runner = LlamaCppRunner(path, name=path.stem)
    prompts = ev.golden_prompts()
    rows, perplexity = [], {}
    work = RecipeWork.of(storage.base, spec.name)
    texts = heldout_texts(storage, spec, work, per_language=spec.export.eval_items)
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


def probe_cached(path: Path, spec: Recipe, storage: VazhiStorage) -> dict:
    """Probe results keyed by the file's sha256, so both checks share one load and a file
    changed in place (even with its mtime kept) is probed again."""
    from vazhi_assets.export.gguf_files import verify_gguf

    cache = path.with_suffix(".probe.json")
    digest = verify_gguf(path)["sha256"]
    if cache.exists():
        cached = json.loads(cache.read_text(encoding="utf-8"))
        if cached.get("sha256") == digest:
            return cached
    result = {"sha256": digest, **_gguf_probe(path, spec, storage)}
    atomic_write_text(cache, json.dumps(result, ensure_ascii=False, indent=2))
    return result


def _check_inputs(context: dg.AssetCheckExecutionContext,
                  storage: VazhiStorage) -> tuple[Recipe, RecipeWork]:
    spec = load_snapshot(storage, context.partition_key)
    return spec, RecipeWork.of(storage.base, spec.name)


def _answers_check(file_type: str) -> dg.AssetChecksDefinition:
    @blocking_check(asset=GGUF_ASSETS[file_type], name="gguf_answers",
                    description="The file loads in llama.cpp and answers the golden prompts "
                    "with non-empty, loop-free text in the target script.")
    def _check(context: dg.AssetCheckExecutionContext,
               storage: VazhiStorage) -> dg.AssetCheckResult:
        spec, work = _check_inputs(context, storage)
        try:
            probe = probe_cached(gguf_path(work, file_type), spec, storage)
        except Exception as exc:  # a file llama.cpp cannot load fails the check, clearly
            return dg.AssetCheckResult(passed=False, metadata={
                "error": f"{type(exc).__name__}: {exc}"[:500]})
        passed, per_language = ev.answers_verdict(probe["answers"])
        return dg.AssetCheckResult(passed=passed, metadata={
            "sha256": probe["sha256"],
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
    @blocking_check(asset=GGUF_ASSETS[file_type], name="quantization_drift",
                    description=f"{file_type} held-out perplexity and answer purity stay within "
                    "the recipe's tolerance of the F16 file.")
    def _check(context: dg.AssetCheckExecutionContext,
               storage: VazhiStorage) -> dg.AssetCheckResult:
        spec, work = _check_inputs(context, storage)
        try:
            reference = probe_cached(gguf_path(work, "F16"), spec, storage)
            candidate = probe_cached(gguf_path(work, file_type), spec, storage)
        except Exception as exc:
            return dg.AssetCheckResult(passed=False, metadata={
                "error": f"{type(exc).__name__}: {exc}"[:500]})
        tolerance = spec.export.max_perplexity_increase.get(file_type, 0.1)
        passed, rows = drift_verdict(reference, candidate, tolerance,
                                     spec.export.max_purity_drop)
        return dg.AssetCheckResult(passed=passed, metadata={
            "drift": dg.MetadataValue.md(markdown_table(pl.DataFrame(rows))),
            "max_perplexity_increase": tolerance,
            "max_purity_drop": spec.export.max_purity_drop})

    return _check


def _size_budget_check(file_type: str) -> dg.AssetChecksDefinition:
    @blocking_check(asset=GGUF_ASSETS[file_type], name="size_budget",
                    description="The file fits the recipe's size budget (e.g. < 1 GB for phones).")
    def _check(context: dg.AssetCheckExecutionContext,
               storage: VazhiStorage) -> dg.AssetCheckResult:
        spec, work = _check_inputs(context, storage)
        budget = spec.export.size_budget_mb
        size = gguf_path(work, file_type).stat().st_size / 1e6
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
