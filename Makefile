# Herald: `make help` lists the targets.
SWIFT ?= swift
CONFIG ?= debug
# SwiftPM re-reads every package manifest and re-plans the build whenever its environment
# differs from the previous run's (MAKELEVEL, TERM, an exported HERALD_* variable...): 10-30 s
# here, before anything compiles. make runs it with a fixed, minimal environment, so that
# make run, make build and make test one after another rebuild nothing: only variables that
# belong to the machine rather than the session (toolchain path, locale, proxies and CA
# bundles for fetching packages) are passed on, when set.
# (The recipes echo the swift command without this prefix.)
SWIFTPM_KEEP = PATH HOME TMPDIR LANG LC_ALL XDG_CACHE_HOME \
	http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY \
	SSL_CERT_FILE SSL_CERT_DIR GIT_SSL_CAINFO CURL_CA_BUNDLE
SWIFTPM = env -i $(foreach v,$(SWIFTPM_KEEP),$(if $($(v)),$(v)="$($(v))")) $(SWIFT)
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?=
BIN_DIR = $(shell $(SWIFTPM) build -c $(CONFIG) --show-bin-path 2>/dev/null)
HERALD = $(BIN_DIR)/herald

.PHONY: help deps build run test soak bench fuzz format lint clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

deps: ## Install the Debian packages Herald needs (apt-get, only what is missing)
	@scripts/deps.sh test

build: ## Build herald (debug; CONFIG=release for an optimized build)
	@scripts/deps.sh build
	@echo "swift build -c $(CONFIG)"; $(SWIFTPM) build -c $(CONFIG)

run: ## Start local Redis and PostgreSQL and Herald with an embedded Kafka broker (Ctrl-C stops them)
	@scripts/deps.sh run
	@echo "swift build -c $(CONFIG)"; $(SWIFTPM) build -c $(CONFIG)
	@scripts/run.sh $(HERALD)

test: ## Install what is missing, build, and run every test against real Redis and Kafka (mock cluster)
	@scripts/deps.sh test
	@echo "swift build --build-tests"; $(SWIFTPM) build --build-tests
	@# The tests find the herald just built in .build/debug (HERALD_BINARY overrides it; not set
	@# here, so that swift test sees the same environment as swift build).
	@echo "swift test --skip-build"; $(SWIFTPM) test --skip-build

soak: ## Load and faults for SOAK_SECONDS (default 600), then a checker; summary in RELIABILITY.md (see scripts/soak/soak.py)
	@scripts/deps.sh soak
	@echo "swift build"; $(SWIFTPM) build
	/usr/bin/python3 scripts/soak/soak.py $(BIN_DIR)/herald

bench: ## Benchmarks: Herald vs kcat draining 1,000,000 events, with real Redis; the courier to smtp-sink (figures in BENCHMARKS.md)
	@scripts/deps.sh bench
	@# Every product: herald and herald-bench.
	@echo "swift build -c release"; $(SWIFTPM) build -c release
	@scripts/bench.sh $(shell $(SWIFTPM) build -c release --show-bin-path)
	@scripts/bench-mail.sh $(shell $(SWIFTPM) build -c release --show-bin-path)

fuzz: ## Fuzz every parser with libFuzzer + ASan, FUZZ_SECONDS (60) per target; findings in var/fuzz/artifacts
	@scripts/deps.sh fuzz
	@FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/fuzz.sh $(FUZZ_TARGETS)

format: ## Format the sources in place (swift format)
	$(SWIFT) format --in-place --recursive Package.swift Sources Tests

lint: ## Check formatting and lint rules (swift format lint --strict; the toolchain's swift-format)
	$(SWIFT) format lint --strict --recursive Package.swift Sources Tests

clean: ## Remove build output and local service data (var/)
	rm -rf .build .build-* var
