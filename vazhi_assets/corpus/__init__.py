"""Text cleaning for the Urdu/Tamil corpora: plain, Dagster-free building blocks.

* :mod:`.scripts` — which script a text's letters are in (``script_purity``).
* :mod:`.normalize` — Unicode/whitespace normalisation and the dedup key ``text_key``.
* :mod:`.steps` — :class:`Document` and the :class:`Step` base class, with its stats.
* :mod:`.edit_steps` — steps that edit text (markdown, normalisation, boilerplate, junk lines).
* :mod:`.filters` — steps that keep or drop whole documents (length, language ID, script).
* :mod:`.pipeline` — :class:`CleaningPipeline` runs steps and builds the retention funnel;
  :func:`default_steps` is the standard order.
* :mod:`.dedup` — exact and MinHash-LSH deduplication across sources.
"""
