"""Export of the merged model: GGUF conversion and quantization (``gguf``), Ollama Modelfiles,
and the Dagster assets and checks around them (``assets``).

Nothing heavy is imported here: ``vazhi_assets.export.gguf`` loads ``llama_cpp`` and the
``gguf`` reader only when a function needs them.
"""
