#!/usr/bin/env bash
# make demo: run bump-tag on its built-in defaults against a throw-away
# charts repo (a bare git repo under .cache/demo, laid out like GOV.UK's).
# Shows a dry run, a bump, a re-run that does nothing, a stale release that
# the downgrade guard refuses, and the audit trail in git log.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD/.cache/demo"
repo="$root/charts.git"
rm -rf "$root" && mkdir -p "$root"

echo "== building bin/bump-tag"
mkdir -p bin && go build -o bin/bump-tag ./steps/bump-tag

echo "== seeding a charts repo at $repo"
export GIT_AUTHOR_NAME=Demo GIT_AUTHOR_EMAIL=demo@localhost GIT_COMMITTER_NAME=Demo GIT_COMMITTER_EMAIL=demo@localhost
git init -q --bare --initial-branch=main "$repo"
seed="$root/seed"
git init -q --initial-branch=main "$seed"
for env in integration staging production; do
  for app in frontend publisher router; do
    mkdir -p "$seed/charts/app-config/image-tags/$env"
    printf '# %s in %s\nimage_tag: v41\nautomatic_deploys_enabled: true\npromote_deployment: true\n' "$app" "$env" \
      > "$seed/charts/app-config/image-tags/$env/$app"
  done
done
git -C "$seed" add -A && git -C "$seed" commit -qm "Seed charts repo" && git -C "$seed" push -q "$repo" main

run() { echo; echo "\$ bump-tag $*"; bin/bump-tag --log-format text "$@" || echo "(exit $?)"; }

run --repo "$repo" --app frontend --env integration --tag v42 --dry-run
run --repo "$repo" --app frontend --env integration --tag v42 --outputs-dir "$root/out"
echo "outputs: changed=$(cat "$root/out/changed") previous-tag=$(cat "$root/out/previous-tag") commit=$(cat "$root/out/commit")"
run --repo "$repo" --app frontend --env integration --tag v42
run --repo "$repo" --app frontend --env integration --tag v40
run --repo "$repo" --app "../etc" --env integration --tag v42

echo
echo "== the tag file and the audit trail"
git -C "$repo" show main:charts/app-config/image-tags/integration/frontend
git -C "$repo" log -1 --format='%h %s%n%n%b' main
