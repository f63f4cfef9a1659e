# Slipway developer entry points. `make help` lists them.
GO        ?= go
BIN       := bin
# every folder under steps/ is one binary; the plugin is one more
STEPS     := $(notdir $(wildcard steps/*))
TEST_TIMEOUT ?= 12m

.PHONY: help build static rootfs image image-check test e2e controlplane services tools lint bench demo clean plugin-configmap

# The image's binaries are static: the templates copy them into the app's own image, whose C
# library (glibc or musl) nobody here knows. Only migrate needs cgo (PostgreSQL's parser,
# pg_query_go); it is linked statically, with the resolver and user lookups kept in Go (netgo,
# osusergo). No VCS stamp: the image build has no .git, and the check must build the same bytes.
BINARIES     := $(STEPS) promoter
CGO_BINARIES := migrate
STATIC_BIN   ?= $(BIN)/static
STATIC_FLAGS := -trimpath -buildvcs=false -tags netgo,osusergo
STATIC_LD    := -s -w
STATIC_CGO_LD := $(STATIC_LD) -linkmode external -extldflags=-static
# the image's file tree (Dockerfile: `make rootfs ROOTFS=/rootfs`; hack/image-check.sh too)
ROOTFS       ?= $(BIN)/rootfs
CA_CERTS     ?= /etc/ssl/certs/ca-certificates.crt
IMAGE        ?= slipway:dev
# e.g. IMAGE_BUILD_ARGS='--build-arg GO_IMAGE=mirror.example/golang:1.26-bookworm'
IMAGE_BUILD_ARGS ?=

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

build: ## build every binary into bin/
	@mkdir -p $(BIN)
	@for s in $(STEPS); do echo "go build -o $(BIN)/$$s ./steps/$$s"; $(GO) build -o $(BIN)/$$s ./steps/$$s || exit 1; done
	@if [ -f plugin/main.go ]; then echo "go build -o $(BIN)/promoter ./plugin"; $(GO) build -o $(BIN)/promoter ./plugin; fi

test: services tools controlplane image-check ## run every test (starts PostgreSQL and MariaDB, builds versitygw and the control plane, first)
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./...

static: ## build every binary statically into bin/static (go build relinks only what changed)
	@mkdir -p $(STATIC_BIN)
	@set -e; for b in $(BINARIES); do \
		pkg=./steps/$$b; [ $$b = promoter ] && pkg=./plugin; \
		case " $(CGO_BINARIES) " in \
		*" $$b "*) echo "CGO_ENABLED=1 go build $(STATIC_FLAGS) -ldflags '$(STATIC_CGO_LD)' -o $(STATIC_BIN)/$$b $$pkg"; \
			CGO_ENABLED=1 $(GO) build $(STATIC_FLAGS) -ldflags '$(STATIC_CGO_LD)' -o $(STATIC_BIN)/$$b $$pkg;; \
		*) echo "CGO_ENABLED=0 go build $(STATIC_FLAGS) -ldflags '$(STATIC_LD)' -o $(STATIC_BIN)/$$b $$pkg"; \
			CGO_ENABLED=0 $(GO) build $(STATIC_FLAGS) -ldflags '$(STATIC_LD)' -o $(STATIC_BIN)/$$b $$pkg;; \
		esac; \
	done

rootfs: static ## the image's files in bin/rootfs: the static binaries, CA certificates, user 8737
	rm -rf $(ROOTFS)
	mkdir -p $(ROOTFS)/usr/local/bin $(ROOTFS)/etc/ssl/certs $(ROOTFS)/tmp
	cp $(addprefix $(STATIC_BIN)/,$(BINARIES)) $(ROOTFS)/usr/local/bin/
	cp $(CA_CERTS) $(ROOTFS)/etc/ssl/certs/ca-certificates.crt
	@# uid 8737 is the one that can read Argo's agent token (the promoter plugin)
	printf 'root:x:0:0:root:/root:/sbin/nologin\nslipway:x:8737:8737:slipway:/nonexistent:/sbin/nologin\n' >$(ROOTFS)/etc/passwd
	printf 'root:x:0:\nslipway:x:8737:\n' >$(ROOTFS)/etc/group
	chmod 1777 $(ROOTFS)/tmp

image: ## build the container image (IMAGE=slipway:dev) with docker or buildah, whichever is present
	@if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then \
		echo "docker build -t $(IMAGE) $(IMAGE_BUILD_ARGS) ."; docker build -t $(IMAGE) $(IMAGE_BUILD_ARGS) .; \
	elif command -v buildah >/dev/null 2>&1; then \
		echo "buildah --storage-driver vfs build --isolation chroot -t $(IMAGE) $(IMAGE_BUILD_ARGS) ."; \
		buildah --storage-driver vfs build --isolation chroot -t $(IMAGE) $(IMAGE_BUILD_ARGS) .; \
	else echo "make image: needs docker (with a running daemon) or buildah, and neither is here (Debian: apt-get install buildah)" >&2; exit 1; fi

image-check: ## build the image's final stage with buildah on the binaries built here and run each binary in it (hack/image-check.sh)
	hack/image-check.sh

e2e: controlplane ## end-to-end tests: our workflows on a real Argo control plane (needs root)
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./workflows/e2e/... ./internal/testsupport/controlplane/...

controlplane: ## build etcd, kube-apiserver and Argo's controller and agent into the user's cache (cold: about 21 minutes; then cached)
	hack/controlplane.sh

services: ## start (installing if missing) PostgreSQL and MariaDB on loopback
	hack/services.sh

tools: ## build the servers tests need (versitygw) into .cache/tools (cached)
	hack/tools.sh

lint: ## gofmt and go vet
	@out="$$(gofmt -l $$(git ls-files '*.go'))"; if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

bench: ## Go benchmarks, then the peer-tool comparisons in hack/
	$(GO) test -run '^$$' -bench . -benchmem ./...
	hack/bench-bump-tag.sh
	hack/bench-smoke-test.sh
	hack/bench-precompile-assets.sh
	hack/bench-promoter.sh
	hack/bench-release.sh

demo: build ## a release from CI to production on this machine, then the safety rules (hack/demo; files in .cache/demo)
	$(GO) run ./hack/demo

plugin-configmap: ## regenerate plugin/promoter-executor-plugin-configmap.yaml from plugin/plugin.yaml
	$(GO) run ./hack/gen-plugin-configmap plugin

clean: ## remove build output and the tools cache
	rm -rf $(BIN) .cache
