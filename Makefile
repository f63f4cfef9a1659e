# Slipway developer entry points. `make help` lists them.
GO        ?= go
BIN       := bin
# every folder under steps/ is one binary; the plugin is one more
STEPS     := $(notdir $(wildcard steps/*))
TEST_TIMEOUT ?= 12m

.PHONY: help build test e2e controlplane services tools lint bench demo clean plugin-configmap

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

build: ## build every binary into bin/
	@mkdir -p $(BIN)
	@for s in $(STEPS); do echo "go build -o $(BIN)/$$s ./steps/$$s"; $(GO) build -o $(BIN)/$$s ./steps/$$s || exit 1; done
	@if [ -f plugin/main.go ]; then echo "go build -o $(BIN)/promoter ./plugin"; $(GO) build -o $(BIN)/promoter ./plugin; fi

test: services tools controlplane ## run every test (starts PostgreSQL and MariaDB, builds versitygw and the control plane, first)
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./...

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

demo: ## run bump-tag against a local charts repo on built-in defaults
	hack/demo.sh

plugin-configmap: ## regenerate plugin/promoter-executor-plugin-configmap.yaml from plugin/plugin.yaml
	$(GO) run ./hack/gen-plugin-configmap plugin

clean: ## remove build output and the tools cache
	rm -rf $(BIN) .cache
