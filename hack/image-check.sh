#!/usr/bin/env bash
# make image-check (make test runs it first): does the image the templates name work?
# Base images cannot be pulled here, so this builds the Dockerfile's final stage with buildah
# on a base made here: the build stage is replaced (--build-context build=DIR) by a folder
# holding /rootfs as `make rootfs` makes it in that stage, from the static binaries built on
# this machine (same make target, same flags) and this machine's CA certificates. Then:
#   1. every binary is static: no dynamic loader, no shared library (hack/staticelf);
#   2. the image holds the binaries, CA certificates and user 8737, and runs as 8737;
#   3. every binary runs --help in the image;
#   4. `<binary> --install DIR`, run in the image, copies it into a mounted folder (an emptyDir)
#      and the copy runs --help in another, empty image standing in for the app's;
#   5. every binary runs --help in an empty root holding only that binary (no C library), and
#      migrate's lint parses PostgreSQL files there (one finding, one clean file).
# It installs buildah (apt-get) when missing and root. When it cannot run the container part
# (no buildah and cannot install it, no namespaces) it says so in one SKIP line and exits 0.
# buildah storage: .cache/buildah (vfs); the images and containers it makes are removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"
log() { echo "image-check: $*"; }
fail() { printf "image-check: FAIL: %s\n" "$(tr "\n" " " <<<"$*")" >&2; exit 1; }
# In CI (CI=true, as root) the check must run: a reason to skip is a failure there.
skip() {
	if [ "${CI:-}" = true ] && [ "$(id -u)" = 0 ]; then fail "cannot check the image in CI: $*"; fi
	echo "image-check: SKIP (the image was NOT checked): $*" >&2
	exit 0
}
# every folder under steps/ is one binary, the plugin one more (as in the Makefile)
binaries=($(cd steps && echo *) promoter)

# 1. The static builds (go build relinks only what changed) and their ELF headers; needs no
# container tool, so it runs even where the rest is skipped. Skipped inside the re-run below.
if [ -z "${IMAGE_CHECK_REEXEC:-}" ]; then
	make -s static >/dev/null
	go run ./hack/staticelf "${binaries[@]/#/bin/static/}" | sed 's/^/image-check: /' ||
		fail "a binary is not static (above): it would not run in an image without its C library"
fi

# 2. A buildah that can run here.
if ! command -v buildah >/dev/null 2>&1; then
	if [ "$(id -u)" != 0 ]; then skip "buildah is not installed and installing it needs root (apt-get install buildah)"; fi
	if ! command -v apt-get >/dev/null 2>&1; then skip "buildah is not installed and there is no apt-get to install it"; fi
	log "installing buildah (apt-get)"
	mkdir -p .cache/image-check
	if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends buildah; } >.cache/image-check/apt.log 2>&1; then
		skip "apt-get install buildah failed ($(tail -n 1 .cache/image-check/apt.log))"
	fi
fi
if [ "$(id -u)" != 0 ]; then
	# Rootless buildah works inside a user namespace; run this script there, once.
	if [ -n "${IMAGE_CHECK_REEXEC:-}" ]; then fail "still not root inside buildah unshare"; fi
	if ! msg="$(buildah unshare true 2>&1)"; then
		skip "rootless buildah cannot make a user namespace: $(echo "$msg" | tail -n 1)"
	fi
	IMAGE_CHECK_REEXEC=1 IMAGE_CHECK_USER="$(id -un)" exec buildah unshare "$0" "$@"
fi
# The image runs as 8737: the user namespace must map it (rootless: /etc/subuid ranges).
if ! awk '$1 <= 8737 && 8737 < $1 + $3 { found = 1 } END { exit !found }' /proc/self/uid_map; then
	skip "uid 8737, the image's user, is not mapped in this user namespace (add ranges for ${IMAGE_CHECK_USER:-$(id -un)} to /etc/subuid and /etc/subgid)"
fi
if ! msg="$(unshare --mount true 2>&1)"; then
	skip "cannot make a mount namespace, which buildah's chroot isolation needs: $msg"
fi

store="$repo/.cache/buildah"
B=(buildah --root "$store/root" --runroot "$store/run" --storage-driver vfs)
log "$("${B[@]}" version | sed -n 's/^Version: *//p' | sed 's/^/buildah /'), storage $store (vfs), isolation chroot"

# Everything this run makes is named after it and removed on exit: the storage may be
# shared by several checkouts (.cache is often a link to the main one's).
mkdir -p "$repo/.cache/image-check"
work="$(mktemp -d "$repo/.cache/image-check/run.XXXXXX")"
tag="localhost/slipway-image-check:$(basename "$work" | tr 'A-Z.' 'a-z-')"
containers=()
cleanup() {
	for c in "${containers[@]}"; do "${B[@]}" rm "$c" >/dev/null 2>&1 || true; done
	"${B[@]}" rmi -f "$tag" >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT
new() { # VAR image: a new working container of image, its name in VAR
	local c
	c="$("${B[@]}" from --pull=never --quiet --name "$(basename "$work" | tr 'A-Z.' 'a-z-')-${#containers[@]}" "$2")"
	containers+=("$c")
	printf -v "$1" %s "$c"
}
run() { # container [buildah run options] -- command...
	"${B[@]}" run --isolation chroot "$@"
}

# 3. The image: the Dockerfile's final stage on /rootfs made here by the same make target.
make -s rootfs ROOTFS="$work/build/rootfs" >/dev/null
"${B[@]}" build --isolation chroot --pull=never --quiet --build-context build="$work/build" \
	-t "$tag" -f Dockerfile . >/dev/null || fail "buildah build of the Dockerfile's final stage failed"
user="$("${B[@]}" inspect --type image --format '{{.OCIv1.Config.User}}' "$tag")"
[ "$user" = 8737:8737 ] || fail "the image runs as '$user', not 8737:8737"
new slipway "$tag"
root="$("${B[@]}" mount "$slipway")"
top="$(cd "$root" && echo *)"
[ "$top" = "etc tmp usr" ] || fail "the image's root holds '$top', not just etc tmp usr"
[ -s "$root/etc/ssl/certs/ca-certificates.crt" ] || fail "no CA certificates in the image"
grep -q '^slipway:x:8737:8737:' "$root/etc/passwd" || fail "no user 8737 in the image's /etc/passwd"
[ "$(stat -c %a "$root/tmp")" = 1777 ] || fail "the image's /tmp is not 1777"
"${B[@]}" umount "$slipway" >/dev/null
log "image built from the Dockerfile's final stage: $(du -sh "$work/build/rootfs" | cut -f1), user 8737:8737, CA certificates, /tmp"

help_ok() { # what output
	local what="$1" out="$2"
	grep -q "USAGE:" <<<"$out" || fail "$what: --help printed no usage: $(head -n 3 <<<"$out")"
}

# 4. Each binary in the image; its --install copy in an empty app image; each alone in an
# empty root.
install="$work/emptydir"
mkdir -m 0777 "$install" # an emptyDir is world-writable
new app scratch
for b in "${binaries[@]}"; do
	out="$(run "$slipway" -- "$b" --help 2>&1)" || fail "$b --help in the image: $out"
	help_ok "$b --help in the image" "$out"
	out="$(run -v "$install:/install" "$slipway" -- "$b" --install /install 2>&1)" ||
		fail "$b --install /install in the image: $out"
	[ -x "$install/$b" ] || fail "$b --install /install left no executable /install/$b: $out"
	[ "$(stat -c %u "$install/$b")" = 8737 ] || fail "$b --install ran as uid $(stat -c %u "$install/$b"), not 8737"
	out="$(run -v "$install:/slipway:ro" "$app" -- "/slipway/$b" --help 2>&1)" ||
		fail "/slipway/$b --help in an empty app image, after --install: $out"
	help_ok "$b --help after --install, in an empty app image" "$out"
	new alone scratch
	"${B[@]}" copy --quiet "$alone" "$work/build/rootfs/usr/local/bin/$b" "/$b" >/dev/null
	out="$(run "$alone" -- "/$b" --help 2>&1)" || fail "/$b --help in an empty root holding only it: $out"
	help_ok "$b --help in an empty root" "$out"
	log "$b: --help in the image, --install into an emptyDir then --help in an empty app image, --help alone in an empty root"
	if [ "$b" = migrate ]; then migrate_root="$alone"; fi
done

# 5. migrate lint in the empty root: PostgreSQL's parser is linked in, not looked up.
sql="$work/sql"
mkdir -p "$sql"
echo 'CREATE TABLE users (id bigint PRIMARY KEY, email text);' >"$sql/0001_create_users.up.sql"
echo 'ALTER TABLE users RENAME COLUMN email TO mail;' >"$sql/0002_rename_email.up.sql"
echo 'ALTER TABLE users ADD COLUMN name text;' >"$sql/0003_add_name.up.sql"
lint() { # since: lint the files above it, as if it were applied
	run -v "$sql:/sql:ro" "$migrate_root" -- /migrate lint --sql-dir /sql --dialect postgres --since "$1" 2>&1
}
out="$(lint 0002)" || fail "migrate lint of a clean PostgreSQL file (0003) in an empty root: $out"
grep -q '1 file(s) checked, no findings' <<<"$out" || fail "migrate lint of 0003 checked no file: $out"
rc=0
out="$(lint 0001)" || rc=$?
[ "$rc" = 1 ] || fail "migrate lint of a rename (0002) and a clean file (0003) exited $rc, not 1: $out"
grep -q '^0002_rename_email.up.sql:1: rename-column' <<<"$out" || fail "migrate lint did not flag the rename: $out"
! grep -q '^0003_' <<<"$out" || fail "migrate lint flagged the clean file: $out"
log "migrate lint in an empty root: a clean file passes, a column rename is flagged (exit 1)"
log "OK"
