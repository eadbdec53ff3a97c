"""Tools over recorded lineage: verify a GGUF against this instance, trace a source's pages
into a model, diff what entered and left training between two models."""
