# mfsha: `make demo` and `make test` set up everything on a fresh Debian machine (as root).
GO      ?= go
BIN     := bin/mfsha
DEB     := moosefs-master moosefs-metalogger moosefs-chunkserver moosefs-client moosefs-cli fuse3 iproute2 psmisc keepalived util-linux
FUZZTIME ?= 20s
# The version: from a tag vX.Y.Z when there is one (git describe), else 0.1.0 plus the commit's
# time and hash (sorts in commit order, as Debian versions must).
VERSION ?= $(shell git describe --tags --match 'v[0-9]*' 2>/dev/null | sed 's/^v//; s/-/+git/; s/-/./g')
ifeq ($(VERSION),)
VERSION := 0.1.0~git$(shell git log -1 --format=%cd.%h --date=format:%Y%m%d%H%M%S 2>/dev/null)
endif
COMMIT  ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null)$(shell git diff --quiet HEAD 2>/dev/null || echo -dirty)
LDFLAGS := -X github.com/mfsha/mfsha/internal/buildinfo.version=$(VERSION) -X github.com/mfsha/mfsha/internal/buildinfo.commit=$(COMMIT)

.PHONY: all build deps test fuzz vet demo demo-clean bench clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/mfsha

# Installs what is missing: Debian's MooseFS 3.0.117 and tools, and the Go modules.
deps:
	@missing=""; for p in $(DEB); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		[ "$$(id -u)" = 0 ] || { echo "need root to apt-get install$$missing" >&2; exit 1; }; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null || exit 1; \
	fi
	@for b in mfsmaster mfsmetalogger mfschunkserver mfsmount mfsmetadump keepalived nsenter; do \
		command -v $$b >/dev/null || [ -x /usr/sbin/$$b ] || { echo "missing $$b after install" >&2; exit 1; }; done
	$(GO) mod download

vet:
	@bad=$$(gofmt -l $$($(GO) list -f "{{.Dir}}" ./...)); test -z "$$bad" || { echo "gofmt needed: $$bad" >&2; exit 1; }
	$(GO) vet ./...

# Every test, the real-MooseFS ones included (they need root), then a short fuzz run.
test: deps vet
	$(GO) test -race -count=1 -timeout 20m ./...
	$(MAKE) fuzz

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzRoundTrip -fuzztime $(FUZZTIME) ./internal/changelog

bench: deps build
	$(GO) run ./cmd/mfsha-bench -out BENCHMARKS.md -mfsha $(BIN)

# The lab (network namespaces .lab/demo), mfsha ship, and a point-in-time restore; under a minute.
demo: deps build
	$(GO) run ./cmd/mfsha-demo -mfsha $(BIN)

# Removes what an interrupted `make demo` (or `-keep`) left: processes, mounts, namespaces, links.
demo-clean:
	$(GO) run ./cmd/mfsha-demo -clean-only

clean:
	rm -rf bin
