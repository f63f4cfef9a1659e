#!/usr/bin/env bash
# Benchmark the promoter plugin: start-up, idle RSS, and a full promotion on
# the synthetic 20,000-commit charts repo against bump-tag. The decision
# latency is a Go benchmark (internal/promoter, internal/promoterserver).
# Prints markdown rows for docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p bin .cache/bench
go build -o bin/bump-tag ./steps/bump-tag
go build -o bin/promoter ./plugin
go run ./hack/benchpromoter --cache .cache/bench --promoter bin/promoter --bump-tag bin/bump-tag "$@"
go test -run '^$' -bench 'Decision' -benchmem -count 1 ./internal/promoter ./internal/promoterserver
