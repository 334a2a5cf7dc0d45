#!/usr/bin/env bash
# Runs the whole benchmark of docs/performance.md, rehabrtc side by side
# with open-easyrtc, with one command:
#
#   ./bench/run.sh                      full sizes (about 25 minutes, W6 churn is 10 of them)
#   ./bench/run.sh --quick              smoke sizes (about a minute)
#   ./bench/run.sh --w6-duration 1m     any rehabrtc-bench flag is passed through
#   ./bench/run.sh --workloads W7 --easyrtc=off   the 15-minute soak alone (W7 runs only when named)
#   ./bench/run.sh --workloads W8 --easyrtc=off   the SFU: 1 × 100, 6 × 6, 10 sessions of 4 (about 2 minutes)
#
# It installs the pinned npm packages of bench/easyrtc (npm ci, into the
# git-ignored bench/easyrtc/node_modules), builds the load generator (its
# own Go module, bench/go.mod, with no dependency on the product's code), which
# builds and launches rehabrtc itself, and writes bench/results/<time>.json
# and .md (the Markdown table that goes into docs/performance.md).
# Needs Go, and Node.js 18+ and npm unless --easyrtc=off; everything runs on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v go >/dev/null || { echo "run.sh: go not found" >&2; exit 1; }
easyrtc=on
for a in "$@"; do
  case "$a" in --easyrtc=off|-easyrtc=off) easyrtc=off ;; esac
done
if [ "$easyrtc" = on ]; then
  command -v node >/dev/null || { echo "run.sh: node not found (apt-get install nodejs npm)" >&2; exit 1; }
  command -v npm >/dev/null || { echo "run.sh: npm not found (apt-get install npm)" >&2; exit 1; }
  echo "== npm ci (bench/easyrtc)"
  (cd bench/easyrtc && npm ci --no-audit --no-fund --loglevel=error)
fi

echo "== build the load generator"
mkdir -p bench/results
bin=$(mktemp -d)/rehabrtc-bench
trap 'rm -rf "$(dirname "$bin")"' EXIT
(cd bench && go build -o "$bin" ./cmd/rehabrtc-bench)

stamp=$(date -u +%Y%m%dT%H%M%SZ)
out="bench/results/$stamp.json"
echo "== run (results in $out and ${out%.json}.md)"
start=$(date +%s)
status=0
"$bin" --easyrtc="$easyrtc" --out "$out" "$@" || status=$?
echo "== bench/run.sh took $(( $(date +%s) - start )) s (exit status $status)"
exit $status
