#!/usr/bin/env bash
# Builds the tools the tests need into the git-ignored .cache/tools/bin (cached:
# a tool already there is not rebuilt). `make test` runs this first.
#   versitygw  S3-compatible server (posix backend) the asset tests run against
# With --bench it also builds the peer tools hack/bench-precompile-assets.sh compares with:
#   s5cmd      v2.3.0
set -euo pipefail
cd "$(dirname "$0")/.."
bin="$PWD/.cache/tools/bin"
mkdir -p "$bin"

build() { # name module@version
	if [ -x "$bin/$1" ]; then return 0; fi
	echo "hack/tools.sh: building $2 into $bin" >&2
	GOBIN="$bin" go install "$2"
}

build versitygw github.com/versity/versitygw/cmd/versitygw@v1.8.0
if [ "${1:-}" = "--bench" ] && [ ! -x "$bin/s5cmd" ]; then
	# The proxy refuses s5cmd's version list, which `go install m@v` asks for
	# (deprecation check), so build it in a scratch module pinned to the version.
	scratch="$(mktemp -d)"
	trap 'rm -rf "$scratch"' EXIT
	echo "hack/tools.sh: building github.com/peak/s5cmd/v2@v2.3.0 into $bin" >&2
	(cd "$scratch" && go mod init scratch >/dev/null 2>&1 &&
		go get github.com/peak/s5cmd/v2@v2.3.0 >/dev/null &&
		GOBIN="$bin" go install github.com/peak/s5cmd/v2)
fi
