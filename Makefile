# domainflow — see README.md. Every target needs only Go unless it says so.
GO        ?= go
BIN       ?= bin/pipeline
PKGS      ?= ./...
# Tests that need outside tools (kcat, a real Apache Kafka from Maven Central)
# carry the integration build tag.
INTEGRATION_TAGS ?= integration

.PHONY: all build test test-short test-noasm test-integration reliability soak bench lint fuzz demo kafka kafka-stop clean

all: build

# What `pipeline version` reports: the commit, its time and whether the tree
# had changes, stamped with -X (the toolchain's own stamp is missing under
# -buildvcs=false). Empty outside a git checkout.
GIT_VERSION  := $(shell git describe --tags --always --dirty 2>/dev/null)
GIT_REVISION := $(shell git rev-parse HEAD 2>/dev/null)
GIT_TIME     := $(shell git log -1 --format=%cI 2>/dev/null)
GIT_MODIFIED := $(shell test -n "$$(git status --porcelain --untracked-files=no 2>/dev/null)" && echo true)
LDFLAGS      ?= -X main.ldVersion=$(GIT_VERSION) -X main.ldRevision=$(GIT_REVISION) -X main.ldTime=$(GIT_TIME) -X main.ldModified=$(GIT_MODIFIED)

build: ## build the pipeline binary into bin/
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/pipeline

test: ## unit, stage, Kafka (embedded broker) and multi-process tests
	$(GO) test -count=1 -timeout 15m $(PKGS)

test-short: ## the fast subset (skips the 100k-document and multi-process tests)
	$(GO) test -short -count=1 $(PKGS)

test-noasm: ## the kernels and their users with the pure-Go fallbacks (no assembly)
	$(GO) test -count=1 -tags noasm ./accel/... ./stages/train/

test-integration: build ## tests against kcat, a real Apache Kafka (see scripts/kafka) and headless Chromium
	bash scripts/test-integration.sh

reliability: ## the adversarial suite (RELIABILITY.md): every attack once against the stages as processes, the rebalance storm with splits, growth under kills, the README walkthrough in three start orders (a few minutes)
	$(GO) test -count=1 -tags reliability -run '^(TestReliability|TestRoutingStormPlacesOnce|TestGrowthKills|TestWalkthrough)$$' -v -timeout 20m ./e2e/

# The soak: the same suite, then a seeded random mix of its attacks until
# SOAK has passed. SEED replays a run's order of attacks (default: a new seed,
# printed); RELIABILITY_OUT collects the RELIABILITY lines of each run;
# SOAK_TIMEOUT must exceed SOAK by the suite's own few minutes.
SOAK            ?= 10m
SEED            ?=
RELIABILITY_OUT ?=
SOAK_TIMEOUT    ?= 3h
soak: ## the adversarial suite as a soak: a random mix of attacks for SOAK (10m; SEED=N replays a seed)
	DOMAINFLOW_SOAK=$(SOAK) DOMAINFLOW_SOAK_SEED=$(SEED) DOMAINFLOW_RELIABILITY_OUT=$(RELIABILITY_OUT) \
		$(GO) test -count=1 -tags reliability -run '^TestReliability$$' -v -timeout $(SOAK_TIMEOUT) ./e2e/

bench: ## Go benchmarks of every package, plus the throughput benchmark
	$(GO) test -run '^$$' -bench . -benchtime 3x $(PKGS)

lint: ## gofmt and go vet
	@bad=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$bad" ]; then echo "gofmt needed:"; echo "$$bad"; exit 1; fi
	$(GO) vet $(PKGS)

FUZZ_PKGS ?= ./schemas/ ./internal/inflate/ ./stages/embed/ ./stages/train/
fuzz: ## each fuzz test for 30 s
	@for p in $(FUZZ_PKGS); do for f in $$($(GO) test -list '^Fuzz' $$p | grep ^Fuzz); do \
		$(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime 30s $$p || exit 1; done; done

demo: build ## the main job on the embedded broker, then its report, in demo-out/ (replaced each run; OUT=DIR keeps and resumes)
	bash scripts/demo.sh $(ARGS)

kafka: ## start a real Apache Kafka (4.x) on 127.0.0.1:19092, from Maven Central
	bash scripts/kafka/kafka.sh start

kafka-stop:
	bash scripts/kafka/kafka.sh stop

clean:
	rm -rf bin
