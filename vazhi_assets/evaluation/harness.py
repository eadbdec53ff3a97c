"""Optional scores from EleutherAI's lm-evaluation-harness (``pip install -e '.[harness]'``).

Standard multilingual benchmarks next to the project's own offline evaluation: Belebele reading
comprehension in Urdu and Tamil and Urdu XNLI by default. These tasks download their datasets
from the Hugging Face hub (``facebook/belebele``, ``xnli``) on first use, so this path is for
machines with hub access (or with those datasets already in the local ``datasets`` cache).
``lm_eval`` is imported only when :func:`run_harness` runs.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

DEFAULT_HARNESS_TASKS: tuple[str, ...] = ("belebele_urd_Arab", "belebele_tam_Taml", "xnli_ur")
INSTALL_HINT = "pip install -e '.[harness]'"
HUB_NOTE = ("these tasks download their datasets from the Hugging Face hub (e.g. "
            "facebook/belebele, xnli) on first use: run with hub access once, or evaluate "
            "with the offline benchmark_table instead")
_HUB_MODULES = {"huggingface_hub", "httpx", "requests", "urllib3"}


class HarnessError(RuntimeError):
    """The harness could not run; the message says why and what to do."""


def _lm_eval() -> Any:
    try:
        import lm_eval
    except ImportError as exc:
        raise HarnessError(f"lm-evaluation-harness is not installed in this environment: "
                           f"{INSTALL_HINT} ({exc})") from exc
    return lm_eval


def _offline_flag() -> str | None:
    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        if os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}:
            return name
    return None


def is_hub_problem(exc: BaseException) -> bool:
    """Whether ``exc`` or anything in its cause chain is a network / hub lookup failure."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ConnectionError | TimeoutError):
            return True
        if type(current).__module__.split(".")[0] in _HUB_MODULES:
            return True
        current = current.__cause__ or current.__context__
    return False


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None  # lm-eval writes "N/A" for a stderr it did not compute
    return None if math.isnan(value) else float(value)


def flatten_results(results: dict[str, Any]) -> list[dict[str, Any]]:
    """lm-eval's ``simple_evaluate`` output -> one row per task and metric.

    ``results["results"][task]`` maps ``"<metric>,<filter>"`` to a value and
    ``"<metric>_stderr,<filter>"`` to its standard error; keys without a comma (``alias``,
    ``name``, ``sample_len``, ...) are not metrics. ``results["n-samples"][task]["effective"]``
    is how many documents were scored (after ``limit``). The metric name keeps its filter
    unless that is lm-eval's default ``none``.
    """
    n_samples = results.get("n-samples", {})
    rows = []
    for task, metrics in results.get("results", {}).items():
        scored = n_samples.get(task, {}).get("effective", metrics.get("sample_len"))
        for key, raw in metrics.items():
            metric, comma, filter_name = key.partition(",")
            value = _number(raw)
            if not comma or metric.endswith("_stderr") or value is None:
                continue
            rows.append({
                "task": task,
                "metric": metric if filter_name in ("", "none") else key,
                "value": value,
                "stderr": _number(metrics.get(f"{metric}_stderr,{filter_name}")),
                "n_samples": int(scored) if scored is not None else None,
            })
    return rows


def run_harness(
    model_dir: Path,
    tasks: Sequence[str] = DEFAULT_HARNESS_TASKS,
    limit: int | None = None,
    batch_size: int | str = 8,
    device: str = "cpu",
) -> list[dict[str, Any]]:
    """Score the Hugging Face model in ``model_dir`` on lm-eval ``tasks``; rows as
    :func:`flatten_results` makes them. ``limit`` caps the documents per task (for a quick
    look; lm-eval's numbers are then not comparable with published ones)."""
    tasks = list(tasks)
    if not tasks:
        raise HarnessError("no lm-eval tasks given")
    model_dir = Path(model_dir)
    if not (model_dir / "config.json").is_file():
        raise HarnessError(f"{model_dir} is not a Hugging Face model directory (no "
                           "config.json): materialize merged_model first")
    lm_eval = _lm_eval()
    from lm_eval.tasks import TaskManager

    manager = TaskManager()
    unknown = [t for t in tasks if t not in manager.all_tasks]
    if unknown:
        raise HarnessError(f"lm-eval {lm_eval.__version__} has no task(s) {unknown}; "
                           "`lm-eval ls tasks` lists them")
    model_args = {"pretrained": str(model_dir),
                  "dtype": "float32" if device == "cpu" else "auto"}
    try:
        results = lm_eval.simple_evaluate(
            model="hf", model_args=model_args, tasks=tasks, limit=limit,
            batch_size=batch_size, device=device, log_samples=False, task_manager=manager)
    except Exception as exc:
        if not is_hub_problem(exc):
            raise
        flag = _offline_flag()
        why = (f"{flag} is set and the datasets are not in the local cache"
               if flag else "the Hugging Face hub could not be reached")
        raise HarnessError(f"lm-eval tasks {tasks} could not load their data: {why}; "
                           f"{HUB_NOTE}. ({type(exc).__name__}: {exc})") from exc
    if not results:
        raise HarnessError("lm-eval returned no results (a non-zero distributed rank?)")
    return flatten_results(results)
