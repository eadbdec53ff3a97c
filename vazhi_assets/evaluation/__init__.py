"""Side-by-side evaluation of model variants (transformers dirs and GGUF files).

* :mod:`.eval_sets`: the fixed, bounded evaluation sets (:func:`load_eval_sets`).
* :mod:`.runners`: :class:`ModelRunner` and its two implementations, :class:`HFRunner`
  (transformers, optional LoRA adapters) and :class:`LlamaCppRunner` (llama-cpp-python).
* :mod:`.metrics`: chrF, citation exact match, minimal-pair accuracy, script purity, loop and
  echo shares, and :func:`evaluate_variant`, which returns one flat dict per variant.

Heavy libraries (torch, transformers, peft, llama_cpp, sacrebleu) are imported only when used.
"""

from vazhi_assets.evaluation.eval_sets import (
    CitationItem,
    EvalSets,
    MinimalPair,
    TranslationItem,
    load_eval_sets,
    load_minimal_pairs,
)
from vazhi_assets.evaluation.metrics import (
    METRIC_KEYS,
    answer_purity,
    chrf,
    echo_share,
    evaluate_variant,
    exact_match_citation,
    loop_share,
    minimal_pair_accuracy,
)
from vazhi_assets.evaluation.runners import HFRunner, LlamaCppRunner, ModelRunner

__all__ = [
    "METRIC_KEYS",
    "CitationItem",
    "EvalSets",
    "HFRunner",
    "LlamaCppRunner",
    "MinimalPair",
    "ModelRunner",
    "TranslationItem",
    "answer_purity",
    "chrf",
    "echo_share",
    "evaluate_variant",
    "exact_match_citation",
    "load_eval_sets",
    "load_minimal_pairs",
    "loop_share",
    "minimal_pair_accuracy",
]
