# Herald: `make help` lists the targets.
SWIFT ?= swift
CONFIG ?= debug
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?=
BIN_DIR = $(shell $(SWIFT) build -c $(CONFIG) --show-bin-path 2>/dev/null)
HERALD = $(BIN_DIR)/herald

.PHONY: help deps build run test bench fuzz format lint clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

deps: ## Install the Debian packages Herald needs (apt-get, only what is missing)
	@scripts/deps.sh test

build: ## Build herald (debug; CONFIG=release for an optimized build)
	@scripts/deps.sh build
	$(SWIFT) build -c $(CONFIG)

run: ## Start a local Redis and Herald with an embedded Kafka broker (Ctrl-C stops both)
	@scripts/deps.sh run
	$(SWIFT) build -c $(CONFIG)
	@scripts/run.sh $(HERALD)

test: ## Install what is missing, build, and run every test against real Redis and Kafka (mock cluster)
	@scripts/deps.sh test
	$(SWIFT) build --build-tests
	HERALD_BINARY=$(shell $(SWIFT) build --show-bin-path)/herald $(SWIFT) test --skip-build

bench: ## Benchmarks: Herald vs kcat draining 1,000,000 events, with real Redis; the courier to smtp-sink (figures in BENCHMARKS.md)
	@scripts/deps.sh bench
	$(SWIFT) build -c release
	@scripts/bench.sh $(shell $(SWIFT) build -c release --show-bin-path)/herald
	@scripts/bench-mail.sh $(shell $(SWIFT) build -c release --show-bin-path)/herald

fuzz: ## Fuzz every parser with libFuzzer + ASan, FUZZ_SECONDS (60) per target; findings in var/fuzz/artifacts
	@scripts/deps.sh fuzz
	@FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/fuzz.sh $(FUZZ_TARGETS)

format: ## Format the sources in place (swift format)
	$(SWIFT) format --in-place --recursive Package.swift Sources Tests

lint: ## Check formatting and lint rules (swift format lint --strict)
	$(SWIFT) format lint --strict --recursive Package.swift Sources Tests

clean: ## Remove build output and local service data (var/)
	rm -rf .build .build-* var
