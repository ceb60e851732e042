# mfsha: `make demo` and `make test` set up everything on a fresh Debian machine (as root).
GO      ?= go
BIN     := bin/mfsha
DEB     := moosefs-master moosefs-metalogger moosefs-chunkserver moosefs-client moosefs-cli fuse3 iproute2 psmisc keepalived util-linux prometheus
FUZZTIME ?= 20s
# The version: from a tag vX.Y.Z when there is one (git describe), else 0.1.0 plus the commit's
# time and hash (sorts in commit order, as Debian versions must).
VERSION ?= $(shell git describe --tags --match 'v[0-9]*' 2>/dev/null | sed 's/^v//; s/-/+git/; s/-/./g')
ifeq ($(VERSION),)
VERSION := 0.1.0~git$(shell git log -1 --format=%cd.%h --date=format:%Y%m%d%H%M%S 2>/dev/null)
endif
COMMIT  ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null)$(shell git diff --quiet HEAD 2>/dev/null || echo -dirty)
LDFLAGS := -X github.com/mfsha/mfsha/internal/buildinfo.version=$(VERSION) -X github.com/mfsha/mfsha/internal/buildinfo.commit=$(COMMIT)

# The MooseFS release `make demo` runs: 3.0.117 (Debian's packages) or 4.59.2 (built from source).
MOOSEFS ?= 3.0.117

# MooseFS 4.59.2, built from the source tarball into /opt once (see deploy/build-moosefs.sh).
# The tarball sits in ../shared/moosefs beside the checkout; without it the same release is
# fetched from GitHub and its content (the uncompressed tar) checked.
MFS4_VERSION := 4.59.2
MFS4_PREFIX  := /opt/moosefs-$(MFS4_VERSION)
MFS4_TARBALL := $(abspath $(CURDIR)/../shared/moosefs/moosefs-$(MFS4_VERSION).tar.gz)
MFS4_TGZ_SHA := e02d1273d674fd3b13eea760c2d1bf350e3af96cc3e7520a25f76c81904115a6
MFS4_TAR_SHA := a7c480293a33244df023528503972c6d5ae1065599369e73eb018e275920c143
MFS4_URL     := https://github.com/moosefs/moosefs/archive/refs/tags/v$(MFS4_VERSION).tar.gz

# The packages whose tests run the real MooseFS: run a second time against 4.59.2.
REAL_MOOSEFS_PKGS := ./shipper ./restorer ./failover ./deploy/lab/... ./internal/mfstest ./internal/snapshot ./internal/mlproto ./internal/chunklock

.PHONY: all build deps test rules deb deb-test bench-chart fuzz vet demo demo-clean bench bench-scale clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/mfsha

# Installs what is missing: Debian's MooseFS 3.0.117 and tools, MooseFS 4.59.2 (built once
# into /opt), and the Go modules.
deps:
	@missing=""; for p in $(DEB); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		[ "$$(id -u)" = 0 ] || { echo "need root to apt-get install$$missing" >&2; exit 1; }; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null || exit 1; \
	fi
	@for b in mfsmaster mfsmetalogger mfschunkserver mfsmount mfsmetadump keepalived nsenter promtool; do \
		command -v $$b >/dev/null || [ -x /usr/sbin/$$b ] || { echo "missing $$b after install" >&2; exit 1; }; done
	deploy/build-moosefs.sh $(MFS4_VERSION) $(MFS4_PREFIX) $(MFS4_TARBALL) $(MFS4_TGZ_SHA) $(MFS4_TAR_SHA) $(MFS4_URL)
	$(GO) mod download

vet:
	@bad=$$(gofmt -l $$($(GO) list -f "{{.Dir}}" ./...)); test -z "$$bad" || { echo "gofmt needed: $$bad" >&2; exit 1; }
	$(GO) vet ./...

# Every test, the real-MooseFS ones included (they need root), against Debian's 3.0.117; then
# the real-MooseFS packages again against 4.59.2 (MFSHA_MOOSEFS); then a short fuzz run.
test: deps vet rules
	$(GO) test -race -count=1 -timeout 20m ./...
	MFSHA_MOOSEFS=$(MFS4_VERSION) $(GO) test -race -count=1 -timeout 20m $(REAL_MOOSEFS_PKGS)
	$(MAKE) fuzz

# The alerting rules: syntax, and their unit tests (alerts fire on the series they are for).
rules:
	promtool check rules deploy/monitoring/mfsha-rules.yml
	promtool test rules deploy/monitoring/mfsha-rules.test.yml

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzRoundTrip -fuzztime $(FUZZTIME) ./internal/changelog

bench: deps build
	$(GO) run ./cmd/mfsha-bench -out BENCHMARKS.md -mfsha $(BIN)

# Issue 13's figures per size of a realistic tree (1M and 10M inodes; SCALE_INODES to change,
# e.g. 1000000,10000000,30000000 with 16 GB free). Trees are kept in /var/tmp/mfsha-scale.
SCALE_INODES ?= 1000000,10000000
# SCALE_MOOSEFS=4.59.2 measures the MooseFS 4 build instead, into BENCHMARKS-scale-4.59.2.md.
SCALE_MOOSEFS ?= 3.0.117
SCALE_OUT ?= $(if $(filter 3.0.117,$(SCALE_MOOSEFS)),BENCHMARKS-scale.md,BENCHMARKS-scale-$(SCALE_MOOSEFS).md)
bench-scale: deps build
	$(GO) run ./cmd/mfsha-bench -only scale -moosefs $(SCALE_MOOSEFS) -scale-inodes $(SCALE_INODES) -out $(SCALE_OUT) -mfsha $(BIN)

# Redraws BENCHMARKS-failover.svg from the failover table of BENCHMARKS.md (make bench draws it too).
bench-chart:
	$(GO) run ./cmd/mfsha-bench -chart-only -out BENCHMARKS.md

# The lab (network namespaces .lab/demo), mfsha ship, and a point-in-time restore; under a minute.
demo: deps build
	$(GO) run ./cmd/mfsha-demo -mfsha $(BIN) -moosefs $(MOOSEFS)

# Removes what an interrupted `make demo` (or `-keep`) left: processes, mounts, namespaces, links.
demo-clean:
	$(GO) run ./cmd/mfsha-demo -clean-only

# The Debian package: bin/mfsha_VERSION_ARCH.deb (stripped, position-independent binary).
deb:
	$(GO) build -trimpath -buildmode=pie -ldflags "$(LDFLAGS) -s -w" -o bin/deb/mfsha ./cmd/mfsha
	sh deploy/debian/build.sh $(VERSION) bin/deb/mfsha bin

# Installs, upgrades and purges the package in a throwaway root (an overlay of / in a private
# mount namespace: the host is untouched), checks it with lintian and systemd-analyze.
# The upgrade starts from the same files packaged as version 0.0.1.
deb-test: deb
	sh deploy/debian/build.sh 0.0.1 bin/deb/mfsha bin/old
	sh deploy/debian/test.sh bin/old/mfsha_0.0.1_$$(dpkg --print-architecture).deb bin/mfsha_$(VERSION)_$$(dpkg --print-architecture).deb

clean:
	rm -rf bin
