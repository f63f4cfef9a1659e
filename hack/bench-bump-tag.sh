#!/usr/bin/env bash
# Benchmark bump-tag against the git command line on a synthetic charts repo
# (300 apps x 3 environments, 20,000 commits) served by git http-backend on
# loopback. Prints a markdown table; copy it into docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x /usr/bin/time ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null
  else
    echo "bench-bump-tag.sh: /usr/bin/time missing (apt-get install time); peak memory will not be measured" >&2
  fi
fi
mkdir -p bin .cache/bench
go build -o bin/bump-tag ./steps/bump-tag
go run ./hack/benchbump --cache .cache/bench --bump-tag bin/bump-tag "$@"
