# promgate: every target works on a fresh machine with only Go and make.

GO      ?= go
BIN     := $(abspath bin)
PKGS    := ./...
# End-to-end suites (and the demo, so it keeps working) start real control planes; they
# get the generous timeout, and -race stays on the packages whose concurrency is ours.
E2E_PKGS  := ./test/e2e/... ./test/demo
UNIT_PKGS := $(shell $(GO) list ./... | grep -v -e /test/e2e -e /test/demo)

# make image stamps what git says of the checkout; override any of them.
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT    ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
# The commit's time dates the image and its files, so one commit gives one image digest.
CREATED   ?= $(shell git log -1 --format=%cI 2>/dev/null)
PLATFORMS ?= linux/amd64,linux/arm64
IMAGE     ?= $(BIN)/promgate-image.tar

.PHONY: all build generate test lint unit e2e testbin bench demo fuzz chaos image krew clean

all: build

build:
	$(GO) build $(PKGS)

## generate: deepcopy, CRDs and the controller's ClusterRole with the pinned controller-gen
## (test/tools/controller-gen), then their copies in the Helm chart (a test keeps them equal).
## Floats are allowed: the judge's effect sizes and scores are decimals (1.2, 99.5), as
## Kayenta has them, and a quoted string or a Quantity would refuse `allowedIncrease: 1.2`.
generate:
	$(GO) build -C test/tools/controller-gen -o $(BIN)/controller-gen sigs.k8s.io/controller-tools/cmd/controller-gen
	$(BIN)/controller-gen object paths=./api/...
	$(BIN)/controller-gen crd:allowDangerousTypes=true paths=./api/... output:crd:artifacts:config=config/crd/bases
	$(BIN)/controller-gen rbac:roleName=promgate-controller paths=./analysis/... paths=./providers/... paths=./rollout/... paths=./cmd/... output:rbac:artifacts:config=config/rbac
	rm -f charts/promgate/crds/*.yaml
	cp config/crd/bases/*.yaml charts/promgate/crds/
	cp config/rbac/role.yaml config/rbac/leader_election_role.yaml config/prometheus/prometheusrule.yaml config/grafana/promgate.json charts/promgate/files/

## image: the OCI image archive ($(IMAGE)) for $(PLATFORMS), with no Docker daemon.
image:
	$(GO) run ./build/image -o $(IMAGE) -platforms $(PLATFORMS) -version $(VERSION) -commit $(COMMIT) $(if $(CREATED),-created $(CREATED))

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

## fuzz: every fuzz target for FUZZTIME each (make test runs their seed corpora).
FUZZTIME ?= 60s
fuzz:
	@set -e; for pkg in $(UNIT_PKGS); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "fuzz: $$f in $$pkg for $(FUZZTIME)"; \
	    $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

## chaos: CHAOS_RELEASES releases (default 50) on one bed under injected faults, checked
## against the invariants all along; it prints its table and ends with the line
## `chaos: N releases, F faults, V invariant violations`. make test runs five of them.
CHAOS_RELEASES ?= 50
chaos: testbin
	CHAOS_RELEASES=$(CHAOS_RELEASES) $(GO) test ./test/e2e -run '^TestChaos$$' -count=1 -v -timeout 150m

## bench: benchmarks print their figures (no timing assertions anywhere).
bench: testbin
	$(GO) test -run '^$$' -bench . -benchmem -timeout 60m $(PKGS)

## demo: the main job end to end on the embedded test bed. The tools are built first (with
## progress, and no test timeout to cut a first build short); the demo prints its own
## timeline and fails unless its three releases end as it says.
demo: testbin
	$(GO) test ./test/demo -run TestDemo -count=1 -v -timeout 10m

## krew: the kubectl plugin's release archives in bin/krew, built reproducibly (the same
## sources and Go give the same bytes), and their version and sha256 in plugins/promgate.yaml.
KREW_VERSION   ?= v0.1.0
KREW_PLATFORMS := linux/amd64 linux/arm64 darwin/amd64 darwin/arm64
krew:
	@set -e; for p in $(KREW_PLATFORMS); do \
	  os=$${p%/*}; arch=$${p#*/}; dir=$(BIN)/krew/$$os-$$arch; archive=kubectl-promgate_$${os}_$${arch}.tar.gz; \
	  mkdir -p $$dir; \
	  CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -buildvcs=false \
	    -ldflags="-buildid= -X main.release=$(KREW_VERSION)" -o $$dir/kubectl-promgate ./cmd/kubectl-promgate; \
	  tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C $$dir -cf - kubectl-promgate | gzip -n > $(BIN)/krew/$$archive; \
	  sum=$$(sha256sum $(BIN)/krew/$$archive | cut -d' ' -f1); \
	  sed -i -e "s|download/v[^/]*/$$archive|download/$(KREW_VERSION)/$$archive|" -e "\|/$$archive|{n;s|sha256: .*|sha256: $$sum|}" plugins/promgate.yaml; \
	  echo "$$archive $$sum"; \
	done
	sed -i 's|^  version: .*|  version: $(KREW_VERSION)|' plugins/promgate.yaml

clean:
	rm -rf $(BIN)
