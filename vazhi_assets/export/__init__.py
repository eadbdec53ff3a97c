"""Export of the merged model: GGUF conversion (``convert``), quantization (``quantize``, with an
importance matrix from ``imatrix``), file metadata and verification (``gguf_files``), loading in
llama.cpp (``llama_runtime``), Ollama Modelfiles (``modelfile``), and the Dagster assets and
checks around them (``assets``).

Nothing heavy is imported here: these modules load ``llama_cpp`` and the ``gguf`` reader only
when a function needs them.
"""
