#!/usr/bin/env bash
# Run benchmarks against a release `sluice serve` on a fresh data dir (embedded SQLite and
# queue, the local executor):
#   - webhook -> first step running latency over RUNS runs (p50/p99), in BATCHES batches
#     back to back on the same server (default 5);
#   - FOLLOWERS live SSE followers of a run printing MEGABYTES of log: completeness, server
#     memory, and the build's time with and without them.
#
#   scripts/bench-runs.sh [runs] [followers] [megabytes]      (default 100 100 10)
#   SERVE_ENV="MALLOC_ARENA_MAX=2" scripts/bench-runs.sh   passes variables to the server
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-100}"
followers="${2:-100}"
megabytes="${3:-10}"
cargo build --release --quiet --bin sluice --example run_bench
data=$(mktemp -d)
port=$((20000 + RANDOM % 20000))
env ${SERVE_ENV:-} SLUICE_DATA_DIR="$data" SLUICE_BIND="127.0.0.1:$port" SLUICE_LOG=warn \
  target/release/sluice serve >"$data/serve.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$data"' EXIT
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
echo "== $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
for batch in $(seq 1 "${BATCHES:-5}"); do
  echo "== webhook -> first step running, batch $batch"
  target/release/examples/run_bench latency "http://127.0.0.1:$port" "$runs"
done
echo "== live log followers"
target/release/examples/run_bench followers "http://127.0.0.1:$port" "$pid" "$followers" "$megabytes"
