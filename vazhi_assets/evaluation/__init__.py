"""Side-by-side evaluation of model variants (transformers dirs and GGUF files).

* :mod:`.eval_sets`: the fixed, bounded evaluation sets (:func:`load_eval_sets`).
* :mod:`.runners`: :class:`HFRunner` (transformers, optional LoRA adapters), beside
  ``LlamaCppRunner`` in :mod:`vazhi_assets.export.llama_runner`; both follow
  :mod:`vazhi_assets.training.model_runner`.
* :mod:`.metrics`: chrF, citation exact match, minimal-pair accuracy, script purity, loop and
  echo shares, and :func:`evaluate_variant`, which returns one flat dict per variant.

Heavy libraries (torch, transformers, peft, llama_cpp, sacrebleu) are imported only when used.
"""
