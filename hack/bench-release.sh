#!/usr/bin/env bash
# Benchmark release control at scale: `promoter plan` over 1,000 apps x 3
# environments with 5,000 commits, and 50 bump-tag writers at once against
# the git command line, the repo served by git http-backend with 20 ms
# added to every request. Prints markdown tables for docs/benchmarks.md.
# Flags go to hack/benchrelease (e.g. --only writers, --latency 0).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p bin
go build -o bin/bump-tag ./steps/bump-tag
go build -o bin/promoter ./plugin
go run ./hack/benchrelease --promoter bin/promoter --bump-tag bin/bump-tag "$@"
