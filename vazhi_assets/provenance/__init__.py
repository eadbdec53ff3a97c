"""What trained each model, as a provenance manifest with a Merkle root that travels inside
the shipped files (GGUF metadata, Modelfile, model card)."""
