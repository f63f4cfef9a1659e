#!/usr/bin/env bash
# Builds the real control plane the end-to-end tests run against, from the Go
# module proxy, into a cache outside the checkout (so a fresh clone reuses it):
#   etcd                 go.etcd.io/etcd/server/v3
#   kube-apiserver       k8s.io/kubernetes/cmd/kube-apiserver
#   workflow-controller  Argo's controller  (github.com/argoproj/argo-workflows/v3)
#   argoexec             Argo's executor, run as `argoexec agent`
#
# Usage:
#   hack/controlplane.sh              build whatever is missing (one line per binary built)
#   hack/controlplane.sh --print-dir  print the folder holding the binaries; build nothing
# The folder is ${XDG_CACHE_HOME:-$HOME/.cache}/slipway/controlplane/<versions>/bin;
# SLIPWAY_CONTROLPLANE_BIN overrides it.
#
# Needs Go, git and the module proxy; nothing else (no C compiler: CGO is off).
# Cold, on 2 cores, it takes about 20 minutes; later runs return at once.
set -euo pipefail

etcd_version=v3.7.0
k8s_version=v1.37.2
argo_version=v3.7.9 # the project pins argo-workflows at this version

me=hack/controlplane.sh
cache="${XDG_CACHE_HOME:-${HOME:?HOME is not set}/.cache}/slipway/controlplane"
bin="${SLIPWAY_CONTROLPLANE_BIN:-$cache/etcd-$etcd_version.kubernetes-$k8s_version.argo-$argo_version/bin}"

case "${1:-}" in
"") ;;
--print-dir)
	echo "$bin"
	exit 0
	;;
-h | --help)
	sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
	exit 0
	;;
*)
	echo "$me: unknown argument '$1' (usage: $me [--print-dir])" >&2
	exit 2
	;;
esac

binaries=(etcd kube-apiserver workflow-controller argoexec)

missing() {
	local b
	for b in "${binaries[@]}"; do
		[ -x "$bin/$b" ] || return 0
	done
	return 1
}

# Fast path, no lock: everything is there (binaries only ever appear by rename).
missing || exit 0

die() {
	echo "$me: $*" >&2
	exit 1
}
command -v go >/dev/null || die "go is not on PATH"
command -v flock >/dev/null || die "flock (util-linux) is not on PATH"
mkdir -p "$bin" || die "cannot create $bin"

# Two test packages may start this at once: the second waits, then finds the
# binaries built by the first. The lock is polled: a blocking `flock 9` would
# outlive this script if it were killed while waiting.
exec 9>"$bin/.lock"
if ! flock -n 9; then
	echo "$me: another build holds $bin/.lock; waiting for it" >&2
	until flock -n 9; do sleep 2; done
fi
missing || exit 0
# Holding the lock, any temp binary left here is from a run that was killed.
rm -f "$bin"/.*.tmp.*

scratch="$(mktemp -d "${TMPDIR:-/tmp}/slipway-controlplane.XXXXXX")"
# Module copies come from the read-only module cache: make them removable.
trap 'chmod -R u+w "$scratch" 2>/dev/null; rm -rf "$scratch"; rm -f "$bin"/.*.tmp.$$' EXIT
log="$scratch/step.log"
bin="$(cd "$bin" && pwd)" # the builds run in other folders
cd "$scratch"             # outside any module, whatever the caller's folder

# Deterministic builds whatever the caller's environment: no workspace, no cgo
# (so no C compiler needed), no stamping from a VCS the scratch folders lack.
export GOWORK=off CGO_ENABLED=0 GOFLAGS=-buildvcs=false

# step NAME COMMAND...: runs COMMAND quietly; on failure shows the end of its
# output, then one line naming the step. COMMAND runs in the background so that
# an INT or TERM is handled at once: it is stopped, and the EXIT trap cleans up.
child=""
trap '[ -z "$child" ] || kill "$child" 2>/dev/null; die "interrupted; nothing half-built is kept"' INT TERM
step() {
	local name=$1 rc=0
	shift
	"$@" >"$log" 2>&1 &
	child=$!
	wait "$child" || rc=$?
	child=""
	if [ "$rc" -ne 0 ]; then
		tail -n 30 "$log" | sed 's/^/    /' >&2
		die "step '$name' failed (exit $rc)"
	fi
}

# install_bin NAME VERSION TMPFILE START: checks that the fresh binary runs and
# reports VERSION, then renames it into place, so that a half-written or broken
# file is never taken for a finished build.
install_bin() {
	local name=$1 want=$2 tmp=$3 start=$4 out
	case "$name" in
	etcd | kube-apiserver) out="$("$tmp" --version 2>&1)" || die "step '$name --version' failed: $out" ;;
	*) out="$("$tmp" version 2>&1)" || die "step '$name version' failed: $out" ;;
	esac
	case "$out" in
	*"${want#v}"*) ;;
	*) die "step '$name version check' failed: wanted $want, got: $(echo "$out" | head -n 1)" ;;
	esac
	mv -f "$tmp" "$bin/$name"
	local took=$((SECONDS - start))
	printf '%s: built %s %s in %dm%02ds\n' "$me" "$name" "$want" $((took / 60)) $((took % 60)) >&2
}

# new_module DIR NAME: a throwaway main module from which to build a dependency's command.
new_module() {
	mkdir -p "$1"
	step "$2: go mod init" go -C "$1" mod init "$2"
}

build_etcd() {
	local start=$SECONDS dir="$scratch/etcd" tmp="$bin/.etcd.tmp.$$"
	new_module "$dir" etcdbuild
	# The module's root package is etcd's own main (server/main.go).
	step "etcd: go get go.etcd.io/etcd/server/v3@$etcd_version" \
		go -C "$dir" get "go.etcd.io/etcd/server/v3@$etcd_version"
	step "etcd: go build" \
		go -C "$dir" build -trimpath -o "$tmp" go.etcd.io/etcd/server/v3
	install_bin etcd "$etcd_version" "$tmp" "$start"
}

build_kube_apiserver() {
	local start=$SECONDS dir="$scratch/kubernetes" tmp="$bin/.kube-apiserver.tmp.$$"
	local minor=${k8s_version#v1.}
	minor=${minor%%.*}
	local staging="v0.${k8s_version#v1.}" # k8s.io/api etc. are tagged v0.X.Y for v1.X.Y
	new_module "$dir" k8sbuild
	step "kube-apiserver: go mod download k8s.io/kubernetes@$k8s_version" \
		go mod download "k8s.io/kubernetes@$k8s_version"
	local kmod
	kmod="$(go list -m -f '{{.GoMod}}' "k8s.io/kubernetes@$k8s_version" 2>&1)" ||
		die "step 'kube-apiserver: find the go.mod of k8s.io/kubernetes@$k8s_version' failed: $kmod"
	# kubernetes requires its staging modules at v0.0.0 and replaces them with
	# ./staging/src/..., which only works inside its own repository; replace
	# them with their published versions instead.
	{
		echo "replace ("
		sed -n 's|^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/src/k8s.io/[a-z0-9-]*$|	\1 => \1 '"$staging"'|p' "$kmod"
		echo ")"
	} >>"$dir/go.mod"
	grep -q "k8s.io/api => k8s.io/api $staging" "$dir/go.mod" ||
		die "step 'kube-apiserver: replace the staging modules' failed: none found in $kmod"
	step "kube-apiserver: go get k8s.io/kubernetes/cmd/kube-apiserver@$k8s_version" \
		go -C "$dir" get "k8s.io/kubernetes/cmd/kube-apiserver@$k8s_version"
	# What Kubernetes' own build stamps; without it the version the apiserver
	# reports does not parse for clients.
	local ldflags="" pkg
	for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
		ldflags+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
		ldflags+=" -X $pkg.gitTreeState=clean"
	done
	step "kube-apiserver: go build" \
		go -C "$dir" build -trimpath -ldflags="$ldflags" -o "$tmp" k8s.io/kubernetes/cmd/kube-apiserver
	install_bin kube-apiserver "$k8s_version" "$tmp" "$start"
}

# Argo is built as the main module (its go.mod has replaces that only apply
# there), from a writable copy: module zips drop symlinks, and upstream
# workflow/executor/osspecific/signal_linux.go is a symlink to signal_darwin.go,
# so argoexec does not compile from the module as served.
argo_dir=""
argo_ldflags=""
prepare_argo() {
	[ -z "$argo_dir" ] || return 0
	local mod="github.com/argoproj/argo-workflows/v3@$argo_version" src info
	step "argo: go mod download $mod" go mod download "$mod"
	info="$(go list -m -f '{{.Dir}}|{{with .Origin}}{{.Hash}}{{end}}|{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}' "$mod" 2>&1)" ||
		die "step 'argo: locate $mod' failed: $info"
	src="${info%%|*}"
	info="${info#*|}"
	[ -d "$src" ] || die "step 'argo: locate $mod' failed: no folder '$src'"
	argo_dir="$scratch/argo-workflows"
	step "argo: copy $mod" cp -R "$src" "$argo_dir"
	chmod -R u+w "$argo_dir"
	local osdir="$argo_dir/workflow/executor/osspecific"
	[ -e "$osdir/signal_linux.go" ] || cp "$osdir/signal_darwin.go" "$osdir/signal_linux.go"
	# What Argo's Makefile stamps for a release build.
	local p=github.com/argoproj/argo-workflows/v3
	argo_ldflags="-X $p.version=$argo_version -X $p.gitTag=$argo_version -X $p.gitTreeState=clean"
	argo_ldflags+=" -X $p.gitCommit=${info%%|*} -X $p.buildDate=${info#*|}"
}

build_argo() { # workflow-controller | argoexec
	local start=$SECONDS name=$1 tmp="$bin/.$1.tmp.$$"
	prepare_argo
	step "$name: go build" \
		go -C "$argo_dir" build -trimpath -ldflags="$argo_ldflags" -o "$tmp" "./cmd/$name"
	install_bin "$name" "$argo_version" "$tmp" "$start"
}

echo "$me: building the control plane into $bin (cold: about 20 minutes on 2 cores)" >&2
[ -x "$bin/etcd" ] || build_etcd
[ -x "$bin/kube-apiserver" ] || build_kube_apiserver
[ -x "$bin/workflow-controller" ] || build_argo workflow-controller
[ -x "$bin/argoexec" ] || build_argo argoexec
