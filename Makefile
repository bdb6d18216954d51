# promgate: every target works on a fresh machine with only Go and make.

GO      ?= go
BIN     := $(abspath bin)
PKGS    := ./...
# End-to-end suites (and the demo, so it keeps working) start real control planes; they
# get the generous timeout, and -race stays on the packages whose concurrency is ours.
E2E_PKGS  := ./test/e2e/... ./test/demo
UNIT_PKGS := $(shell $(GO) list ./... | grep -v -e /test/e2e -e /test/demo)

.PHONY: all build generate test lint unit e2e testbin bench demo clean

all: build

build:
	$(GO) build $(PKGS)

## generate: deepcopy and CRDs with the pinned controller-gen (test/tools/controller-gen).
generate:
	$(GO) build -C test/tools/controller-gen -o $(BIN)/controller-gen sigs.k8s.io/controller-tools/cmd/controller-gen
	$(BIN)/controller-gen object paths=./api/...
	$(BIN)/controller-gen crd paths=./api/... output:crd:artifacts:config=config/crd/bases
	$(BIN)/controller-gen rbac:roleName=promgate-controller paths=./analysis/... paths=./providers/... paths=./rollout/... paths=./cmd/... output:rbac:artifacts:config=config/rbac

## testbin: build the test bed's binaries into the tool cache (once per version).
testbin:
	$(GO) run ./test/cmd/testbin

## test: lint, unit tests (with -race and fuzz seed corpora) and the end-to-end suites. The
## end-to-end suites mostly wait on their clusters, so the unit tests run beside them, and
## lint compiles beside the tool build: on 2 cores a first run takes minutes less. The tool
## build's progress shows as it happens (lint says nothing unless it fails); each test
## target's output is printed in one piece when it ends.
test:
	$(MAKE) --no-print-directory -j2 testbin lint
	$(MAKE) --no-print-directory -j2 --output-sync=target unit e2e

## lint: gofmt, go vet and staticcheck (pinned in test/tools/staticcheck).
lint:
	@test -z "$$(gofmt -l .)" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	$(GO) vet $(PKGS)
	$(GO) build -C test/tools/staticcheck -o $(BIN)/staticcheck honnef.co/go/tools/cmd/staticcheck
	$(BIN)/staticcheck $(PKGS)

unit:
	$(GO) test -race -count=1 -timeout 10m $(UNIT_PKGS)

e2e:
	$(GO) test -count=1 -timeout 25m $(E2E_PKGS)

## bench: benchmarks print their figures (no timing assertions anywhere).
bench: testbin
	$(GO) test -run '^$$' -bench . -benchmem -timeout 30m $(PKGS)

## demo: the main job end to end on the embedded test bed. The tools are built first (with
## progress, and no test timeout to cut a first build short); the demo prints its own
## timeline and fails unless both releases end as it says.
demo: testbin
	$(GO) test ./test/demo -run TestDemo -count=1 -v -timeout 10m

clean:
	rm -rf $(BIN)
