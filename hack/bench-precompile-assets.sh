#!/usr/bin/env bash
# Benchmarks precompile-assets against s5cmd sync (v2.3.0) and aws s3 sync
# (Debian's awscli) on one machine in one run, against versitygw on loopback:
#   - 5,000 files of 1-50 KB: fresh upload, then a re-run with nothing changed
#     (wall time, peak RSS, PUT requests seen by the server);
#   - precompile-assets --concurrency sweep on the same tree;
#   - 20 files of 100 MiB (BIG_MIB to change): fresh upload, peak RSS.
# Prints a markdown summary (medians of REPS runs, ratios) for docs/benchmarks.md.
# Usage: hack/bench-precompile-assets.sh   (env: REPS=3 FILES=5000 BIG_FILES=20 BIG_MIB=100 SWEEP="8 16 32 64 128")
set -euo pipefail
cd "$(dirname "$0")/.."
REPS="${REPS:-3}"
FILES="${FILES:-5000}"
BIG_FILES="${BIG_FILES:-20}"
BIG_MIB="${BIG_MIB:-100}"
SWEEP="${SWEEP:-8 16 32 64 128}"

hack/tools.sh --bench
bin="$PWD/.cache/tools/bin"
[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (apt-get install time)" >&2; exit 1; }
AWS=/usr/bin/aws # Debian's awscli, not one on a pyenv/pip PATH
[ -x "$AWS" ] || { echo "no $AWS: apt-get install awscli; the aws column is left out" >&2; AWS=""; }

work="$(mktemp -d /tmp/slipway-bench-XXXXXX)"
gw_pid=""
cleanup() { [ -n "$gw_pid" ] && kill "$gw_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

go build -o "$work/precompile-assets" ./steps/precompile-assets
go run ./hack/assettree -dir "$work/tree" -n "$FILES"

port=$(( 20000 + RANDOM % 20000 ))
endpoint="http://127.0.0.1:$port"
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=benchsecretkey AWS_REGION=us-east-1
export AWS_CONFIG_FILE="$work/aws-config" AWS_SHARED_CREDENTIALS_FILE="$work/none" AWS_EC2_METADATA_DISABLED=true
printf '[default]\ns3 =\n  addressing_style = path\n' > "$AWS_CONFIG_FILE"
mkdir -p "$work/gw"
"$bin/versitygw" --port "127.0.0.1:$port" --access bench --secret benchsecretkey --quiet \
	--access-log "$work/access.log" posix "$work/gw" > "$work/gw.log" 2>&1 &
gw_pid=$!
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done

mb() { mkdir -p "$work/gw/$1"; } # posix backend: a folder is a bucket
puts() { grep -cE 's3_(PutObject|UploadPart|CreateMultipartUpload|CompleteMultipartUpload) ' "$work/access.log" || true; }
results="$work/results"
: > "$results"
# measure LABEL CMD...: wall seconds, peak RSS (KiB) and PUT-like requests into $results
measure() {
	local label="$1"; shift
	local before; before=$(puts)
	if ! /usr/bin/time -f "%e %M" -o "$work/time" "$@" > "$work/out" 2>&1; then
		echo "$label failed:" >&2; tail -5 "$work/out" >&2; exit 1
	fi
	read -r wall rss < "$work/time"
	echo "$label $wall $rss $(( $(puts) - before ))" | tee -a "$results" >&2
}
pa=("$work/precompile-assets" --app bench --log-format json --endpoint-url "$endpoint" --path-style)
s5=("$bin/s5cmd" --endpoint-url "$endpoint")
awscli=("$AWS" --endpoint-url "$endpoint")

for rep in $(seq "$REPS"); do
	mb "pa-$rep"; mb "s5-$rep"; mb "aws-$rep"
	measure pa-fresh "${pa[@]}" --source-dir "$work/tree" --destination "s3://pa-$rep/assets"
	measure s5-fresh "${s5[@]}" sync "$work/tree/" "s3://s5-$rep/assets/"
	[ -n "$AWS" ] && measure aws-fresh "${awscli[@]}" s3 sync --only-show-errors "$work/tree/" "s3://aws-$rep/assets/"
	measure pa-rerun "${pa[@]}" --source-dir "$work/tree" --destination "s3://pa-$rep/assets"
	measure s5-rerun "${s5[@]}" sync "$work/tree/" "s3://s5-$rep/assets/"
	[ -n "$AWS" ] && measure aws-rerun "${awscli[@]}" s3 sync --only-show-errors "$work/tree/" "s3://aws-$rep/assets/"
	rm -rf "$work/gw/pa-$rep" "$work/gw/s5-$rep" "$work/gw/aws-$rep"
done
for c in $SWEEP; do
	for rep in $(seq "$REPS"); do
		mb "sweep-$c-$rep"
		measure "pa-c$c-fresh" "${pa[@]}" --concurrency "$c" --source-dir "$work/tree" --destination "s3://sweep-$c-$rep/assets"
		measure "s5-c$c-fresh" "${s5[@]}" sync "$work/tree/" "s3://sweep-$c-$rep/s5/"
		rm -rf "$work/gw/sweep-$c-$rep"
	done
done

if [ "$BIG_FILES" -gt 0 ]; then
	mkdir -p "$work/big"
	for i in $(seq "$BIG_FILES"); do head -c "$((BIG_MIB << 20))" /dev/urandom > "$work/big/video$i-0a1b2c3d4e5f$i.mp4"; done
	mb big-pa; mb big-s5
	measure pa-big-fresh "${pa[@]}" --source-dir "$work/big" --destination "s3://big-pa/assets"
	measure pa-big-rerun "${pa[@]}" --source-dir "$work/big" --destination "s3://big-pa/assets"
	rm -rf "$work/gw/big-pa"
	measure s5-big-fresh "${s5[@]}" sync "$work/big/" "s3://big-s5/assets/"
	rm -rf "$work/gw/big-s5" "$work/big"
fi

# medians and ratios
awk -v files="$FILES" -v bigf="$BIG_FILES" -v bigm="$BIG_MIB" '
function median(label,   n, i, j, t, a) {
	n = split(walls[label], a, " ")
	for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j-1] + 0 > a[j] + 0; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t }
	return n ? a[int((n + 1) / 2)] : ""
}
function maxof(s,   n, i, a, m) { n = split(s, a, " "); m = 0; for (i = 1; i <= n; i++) if (a[i] + 0 > m) m = a[i] + 0; return m }
{ walls[$1] = walls[$1] " " $2; rss[$1] = rss[$1] " " $3; puts[$1] = puts[$1] " " $4; seen[$1] = 1 }
END {
	printf "| run (%d files) | median wall s | peak RSS MiB (max) | PUT requests |\n|---|---|---|---|\n", files
	for (l in seen) order[++k] = l
	for (i = 2; i <= k; i++) for (j = i; j > 1 && order[j-1] > order[j]; j--) { t = order[j]; order[j] = order[j-1]; order[j-1] = t }
	for (i = 1; i <= k; i++) { l = order[i]; printf "| %s | %s | %.1f |%s |\n", l, median(l), maxof(rss[l]) / 1024, puts[l] }
	printf "\n"
	if (median("s5-fresh") > 0) printf "- fresh upload: precompile-assets / s5cmd sync = %.2f\n", median("pa-fresh") / median("s5-fresh")
	if (median("aws-fresh") > 0) printf "- fresh upload: precompile-assets / aws s3 sync = %.2f\n", median("pa-fresh") / median("aws-fresh")
	if (median("s5-rerun") > 0) printf "- no-change re-run: precompile-assets / s5cmd sync = %.2f\n", median("pa-rerun") / median("s5-rerun")
	if (median("aws-rerun") > 0) printf "- no-change re-run: precompile-assets / aws s3 sync = %.2f\n", median("pa-rerun") / median("aws-rerun")
	for (i = 1; i <= k; i++) if (order[i] ~ /^pa-c[0-9]+-fresh$/) { c = substr(order[i], 5, length(order[i]) - 10); printf "- --concurrency %s fresh: precompile-assets / s5cmd sync (runs paired with it) = %.2f\n", c, median(order[i]) / median("s5-c" c "-fresh") }
	if (median("s5-big-fresh") > 0) printf "- %d x %d MiB fresh: precompile-assets / s5cmd sync = %.2f\n", bigf, bigm, median("pa-big-fresh") / median("s5-big-fresh")
}' "$results"
