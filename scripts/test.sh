#!/usr/bin/env bash
# Runs every test of rehabrtc, installing what the tests need when it is
# missing (Debian's chromium, redis-server, coturn, nftables and iproute2, Node.js and npm). Usage:
#   ./scripts/test.sh            everything: vet, race tests, browser tests (own step), fuzz smoke
#   FUZZTIME=30s ./scripts/test.sh   longer fuzzing
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZTIME=${FUZZTIME:-8s}

need_apt=()
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
command -v node >/dev/null 2>&1 || need_apt+=(nodejs)
command -v npm >/dev/null 2>&1 || need_apt+=(npm)
command -v turnserver >/dev/null 2>&1 || need_apt+=(coturn)  # TURN shared-secret interop
command -v nft >/dev/null 2>&1 || need_apt+=(nftables)       # separated-networks test
command -v ip >/dev/null 2>&1 || need_apt+=(iproute2)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "== installing ${need_apt[*]} (apt-get)"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# quiet runs a command with its output kept aside, and shows it only if the command fails
# (a failure hidden behind >/dev/null cannot be diagnosed from a CI log).
quiet() {
  local out rc=0
  out=$(mktemp)
  "$@" >"$out" 2>&1 || rc=$?
  if [ "$rc" -ne 0 ]; then
    echo "failed ($rc): $*"
    grep -E -B3 -A25 -- '--- FAIL|^FAIL|panic:|fatal error' "$out" | head -150 || tail -60 "$out"
  fi
  rm -f "$out"
  return "$rc"
}

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './node_modules/*'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change:"; echo "$unformatted"; exit 1
fi

echo "== go vet"
go vet ./...
(cd bench && go vet ./...)

# The browser and Node interop tests must not skip in CI.
export REHABRTC_REQUIRE_EXTERNAL=1
export CI=${CI:-true}

echo "== test-only npm tools of the browser tests (axe-core, jsqr)"
npm ci --prefix e2e/testdata --no-audit --no-fund >/dev/null

echo "== JSDoc type check of the pages (tsc --checkJs)"
npx --yes -p typescript@5 tsc -p internal/web

echo "== go test -race (everything but the browser end-to-end tests)"
go test -race -count=1 -timeout 15m $(go list ./... | grep -v '/e2e$')

echo "== browser end-to-end tests (Chromium, the built binary: ./e2e)"
go test -race -count=1 -timeout 10m ./e2e/

# The load generator is its own module (bench/go.mod), so the product's
# ./... above does not run it: its tiny CI run is a step of its own.
echo "== load generator (bench/: go test, TestQuickRun, TestQuickSoak, TestQuickSFU and TestQuickCluster at tiny sizes)"
(cd bench && go test -race -count=1 -timeout 8m ./...)

echo "== fuzz (${FUZZTIME} each)"
for target in $(grep -rl --include='*_test.go' '^func Fuzz' internal cmd | xargs -n1 dirname | sort -u); do
  for fn in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$target"/*_test.go | sed 's/^func //'); do
    echo "-- $target $fn"
    quiet go test -run='^$' -fuzz="^${fn}\$" -fuzztime="$FUZZTIME" "./$target"
  done
done

echo "== benchmarks (once, so they cannot rot)"
quiet go test -run='^$' -bench=. -benchtime=1x ./...

echo "all tests passed"
