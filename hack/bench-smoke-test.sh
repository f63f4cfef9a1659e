#!/bin/sh
# Speed of smoke-test (issue 4): 200 checks against a loopback app that
# answers each in 100 ms, at the default concurrency (16), in one run:
#   - in-process (internal/smoke), and the same checks one at a time (serial);
#   - the built binary (wall time and the process's peak RSS), and the shell
#     way it replaces, curl under xargs -P 16, as the peer.
# Figures go to docs/benchmarks.md as ratios; the machine is shared and noisy.
set -eu
cd "$(dirname "$0")/.."
GO=${GO:-go}
COUNT=${COUNT:-5}
echo "# load before: $(cut -d' ' -f1-3 /proc/loadavg)"
$GO test -run '^$' -bench 'BenchmarkRun200Checks$' -benchtime "${COUNT}x" -benchmem ./internal/smoke/
$GO test -run '^$' -bench 'BenchmarkRun200ChecksSerial$' -benchtime 1x -benchmem ./internal/smoke/
$GO test -run '^$' -bench 'Benchmark(Binary|CurlXargs)200Checks$' -benchtime "${COUNT}x" -benchmem ./internal/smoke/
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"
