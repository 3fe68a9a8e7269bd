# edgekit — the two commands of the README are `make all` (the main job) and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
SHARED ?= ../shared
WEIGHTS_FILE := mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5
# Local copies are used when present (e.g. ../shared); otherwise the photos and the
# ImageNet weights are downloaded (and cached) by Keras.
DATA ?= $(if $(wildcard $(SHARED)/data/cats_and_dogs_filtered/train),$(SHARED)/data/cats_and_dogs_filtered,)
WEIGHTS ?= $(if $(wildcard $(SHARED)/weights/$(WEIGHTS_FILE)),$(SHARED)/weights/$(WEIGHTS_FILE),imagenet)
# More pet photos from other sources (breeds, photo styles): each folder is a source of its own.
MORE_DATA ?= $(wildcard $(SHARED)/data/more_pets)
# Photos with no cat or dog in them, from several sources: trained as the background class "other".
OTHER ?= $(wildcard $(addprefix $(SHARED)/data/,other more_other lookalikes people))
# Sources never trained on, only measured: the headline figures (see train/README.md, "Several sources").
HOLDOUT ?= $(if $(MORE_DATA),more_pets:catdataset more_pets:commonpets more_other:intelscene,)
# The ImageNet classifier that teaches the rescue head (train/README.md, "A rescue head of its own"): a local copy when
# present, else downloaded (and checked) from its public address.
TEACHER_FILE := tf2_mobilenet_v2_1.0_224_ptq.tflite
MIRROR ?= $(if $(wildcard $(SHARED)/weights/imagenet_classifier/$(TEACHER_FILE)),file://$(abspath $(SHARED))/weights/imagenet_classifier,$(EDGEKIT_MIRROR))
OUT ?= runs/cats_dogs
SEED ?= 0
EXTRAS ?= edge,camera,train,serve,watch,dev
# Debian packages some tests use: a headless browser (web page test) and the
# arm64 user-mode emulator (Raspberry Pi test), an MQTT broker (camera watcher
# test), flatc (reads the TFLite metadata independently of convert/tflite/metadata.py).
# Installed when we are root.
SYSTEM_PACKAGES := chromium qemu-user-static debootstrap mosquitto flatbuffers-compiler
# MediaPipe Tasks (what Android/iOS apps run) checks the exported files; it pins
# numpy<2 and protobuf 4, so it lives in a side environment of its own.
MP_VENV ?= .venv-mediapipe
MP_PY := $(MP_VENV)/bin/python

.PHONY: all model setup system-deps mediapipe webapp test test-fast clean

JOB_FLAGS = $(if $(DATA),--data $(DATA)) $(addprefix --more-data ,$(MORE_DATA)) $(addprefix --background ,$(OTHER)) \
	$(addprefix --holdout-source ,$(HOLDOUT)) --source-by prefix --weights $(WEIGHTS) --out $(OUT) --seed $(SEED)

all: setup webapp  ## The main job: data → train → convert + gate → benchmark → runner, with a summary.
	EDGEKIT_MIRROR=$(MIRROR) $(PY) -m edgekit $(JOB_FLAGS)

model: setup  ## Reproduce the shipped model and copy it into models/.
	EDGEKIT_MIRROR=$(MIRROR) $(PY) -m edgekit $(JOB_FLAGS) --install

# The MediaPipe tests find .venv-mediapipe at the repo root themselves; the variable covers MP_VENV=elsewhere.
test: setup system-deps mediapipe webapp  ## The whole test suite (real-photo tests run when ../shared exists).
	EDGEKIT_MEDIAPIPE_PYTHON=$(if $(wildcard $(MP_PY)),$(abspath $(MP_PY))) $(PY) -m pytest -q --durations=15

test-fast: setup webapp  ## Skip the slow real-data tests.
	$(PY) -m pytest -q -m "not slow"

setup: $(VENV)/.installed-$(EXTRAS)

$(VENV)/.installed-$(EXTRAS): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[$(EXTRAS)]'
	touch $@

# The browser app (edge_runner/webapp): LiteRT.js (@litertjs/core) from the npm registry, as its
# package-lock.json pins it, built into edge_runner/webapp/dist/ (git-ignored: its two WebAssembly builds,
# relaxed SIMD and the compat fallback, are 19 MB; the wheel carries them). Needs Node.js and npm; a device
# that installs the wheel needs neither.
WEBAPP := edge_runner/webapp
WEBAPP_BUILT := $(WEBAPP)/dist/build.json

webapp: $(WEBAPP_BUILT)  ## Build the browser app (npm ci + build.py).

$(WEBAPP_BUILT): $(WEBAPP)/package.json $(WEBAPP)/package-lock.json $(WEBAPP)/build.py $(wildcard $(WEBAPP)/src/*) edge_runner/web/static/style.css edge_runner/web/static/favicon.svg
	cd $(WEBAPP) && npm ci --no-audit --no-fund --loglevel=error
	$(PYTHON) $(WEBAPP)/build.py

mediapipe: $(MP_VENV)/.installed

$(MP_VENV)/.installed:
	@($(PYTHON) -m venv $(MP_VENV) && $(MP_PY) -m pip install --quiet mediapipe==0.10.21 && touch $@) \
		|| (rm -rf $(MP_VENV); echo "warning: could not install mediapipe==0.10.21; the MediaPipe checks will skip")

system-deps:
	@missing=""; for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing Debian packages:$$missing"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null) \
			|| echo "warning: could not install$$missing; the tests that need them will skip"; \
	else echo "note: not root, so not installing$$missing; the tests that need them will skip"; fi

clean:
	rm -rf $(VENV) $(MP_VENV) runs .pytest_cache $(WEBAPP)/node_modules $(WEBAPP)/dist
