# Sweedle: `make serve` to run it, `make test` to test it. Each sets itself up from nothing.
VENV ?= .venv
PY := $(VENV)/bin/python
# hunyuan brings torch (~5.5 GB) and transformers for Hunyuan3D, the depth generator and
# text-to-3d; `make setup EXTRAS=dev,rembg` skips it (the CPU generator is then silhouette).
EXTRAS ?= dev,rembg,hunyuan
# hy3dgen 2.0.2 declares gradio and other servers it never imports, and omits what it does
# import (those are in the hunyuan extra): install it without its declared dependencies.
HY3DGEN ?= hy3dgen==2.0.2
STAMP := $(VENV)/.installed
VALIDATOR := .tools/node_modules/gltf-validator
# Sweedle Studio (the web UI), built from web/ into the folder the ingress serves.
STUDIO := deployments/http/studio_files/index.html
STUDIO_SOURCES := web/package-lock.json web/build.mjs $(wildcard web/src/*)
# Debian packages only the tests use: the browser the browser tests drive (headless Chromium;
# WebGL through SwiftShader) and PgBouncer, which the database tests put in front of PostgreSQL.
TEST_PACKAGES := chromium-headless-shell pgbouncer
TEST_BINARIES := /usr/bin/chromium-headless-shell /usr/sbin/pgbouncer

.PHONY: setup serve test lint bench clean hy3dshape models test-packages

setup: $(STAMP) $(VALIDATOR) $(STUDIO)

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[$(EXTRAS)]"
	@case ",$(EXTRAS)," in *,hunyuan,*) $(PY) -m pip install --quiet --no-deps $(HY3DGEN);; esac
	@# The Hunyuan3D-2.1 weights need hy3dshape (not on PyPI): installed when the config
	@# `make serve` picks here names them (see `make hy3dshape`).
	@case ",$(EXTRAS)," in *,hunyuan,*) $(VENV)/bin/sweedle setup hy3dshape --if-needed \
		|| echo "sweedle: hy3dshape is not installed (above); run make hy3dshape to try again";; esac
	@touch $@

# The Khronos glTF validator judges every GLB the tests write.
$(VALIDATOR): .tools/package.json
	npm install --silent --no-audit --no-fund --prefix .tools
	@touch $@

web/node_modules/.package-lock.json: web/package-lock.json
	npm ci --silent --no-audit --no-fund --prefix web
	@touch $@

$(STUDIO): web/node_modules/.package-lock.json $(STUDIO_SOURCES)
	npm run --silent build --prefix web

# Installed with apt-get where missing and we are root; else the tests that need them skip,
# saying why.
test-packages:
	@for binary in $(TEST_BINARIES); do test -x $$binary || missing=1; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		{ apt-get install -y -qq --no-install-recommends $(TEST_PACKAGES) \
		|| { apt-get update -qq && apt-get install -y -qq --no-install-recommends \
		$(TEST_PACKAGES); }; } >/dev/null; \
	else echo "sweedle: not root: $(TEST_PACKAGES) not installed; their tests will be skipped"; fi

# Picks serve_config.yaml (GPU) or configs/cpu.yaml, fetches the models its services need
# (HF_HUB_OFFLINE=1 or SERVE_ARGS=--no-pull skip that), then runs `serve run` on it.
serve: $(STAMP)
	exec $(VENV)/bin/sweedle serve $(SERVE_ARGS)

# The models the config `make serve` picks here needs, fetched without starting anything.
models: $(STAMP)
	$(VENV)/bin/sweedle models pull

# hy3dshape, for the Hunyuan3D-2.1 weights: a pinned checkout of its repository, on the venv's path.
hy3dshape: $(STAMP)
	$(VENV)/bin/sweedle setup hy3dshape

test: setup test-packages
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
	rm -rf $(VENV) .tools/node_modules web/node_modules deployments/http/studio_files data
