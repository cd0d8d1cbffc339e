# Sweedle: `make serve` to run it, `make test` to test it. Each sets itself up from nothing.
VENV ?= .venv
PY := $(VENV)/bin/python
# hunyuan brings torch (~5.5 GB) for Hunyuan3D and text-to-3d; `make setup EXTRAS=dev,rembg`
# skips it (the CPU silhouette generator needs none of it).
EXTRAS ?= dev,rembg,hunyuan
# hy3dgen 2.0.2 declares gradio and other servers it never imports, and omits what it does
# import (those are in the hunyuan extra): install it without its declared dependencies.
HY3DGEN ?= hy3dgen==2.0.2
STAMP := $(VENV)/.installed
VALIDATOR := .tools/node_modules/gltf-validator

.PHONY: setup serve test lint bench clean

setup: $(STAMP) $(VALIDATOR)

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[$(EXTRAS)]"
	@case ",$(EXTRAS)," in *,hunyuan,*) $(PY) -m pip install --quiet --no-deps $(HY3DGEN);; esac
	@touch $@

# The Khronos glTF validator judges every GLB the tests write.
$(VALIDATOR): .tools/package.json
	npm install --silent --no-audit --no-fund --prefix .tools
	@touch $@

serve: $(STAMP)
	@if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L 2>/dev/null | grep -q '^GPU'; then \
		echo "sweedle: GPU found ($$(nvidia-smi -L | head -n 1)): serve_config.yaml, hunyuan3d generator on num_gpus: 1"; \
		config=serve_config.yaml; \
	else \
		echo "sweedle: no GPU found (nvidia-smi lists none): configs/cpu.yaml, silhouette CPU preview generator"; \
		config=configs/cpu.yaml; \
	fi; \
	exec $(VENV)/bin/serve run $$config

test: setup
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy sweedle_core

# gltf-transform, which the Draco benchmark compares with.
BENCH_TOOLS := bench/tools/node_modules/.bin/gltf-transform

$(BENCH_TOOLS): bench/tools/package.json
	npm install --silent --no-audit --no-fund --prefix bench/tools
	@touch $@

bench: setup $(BENCH_TOOLS)
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) .tools/node_modules data
