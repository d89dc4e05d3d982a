#!/usr/bin/env bash
# Scale-out benchmarks: `sluice api` ×2 and `sluice worker` ×2 (release build) as separate
# processes on one PostgreSQL database (created fresh) and one Redis (queue and bus):
#   - replica A's token-authenticated projects list next to its own `/healthz` (wrk);
#   - webhook on replica A -> first step running on a worker process (run_bench latency);
#   - a worker's flush -> a follower on replica B (run_bench follow-latency).
#
#   scripts/bench-scaleout.sh [seconds] [connections] [runs]   (defaults: 10 s, 32, 100)
#
# Needs wrk (Debian `wrk`) and psql; PostgreSQL at SLUICE_BENCH_POSTGRES_URL (default
# postgres://postgres@127.0.0.1:5432) and Redis at SLUICE_BENCH_REDIS_URL (default
# redis://127.0.0.1:6379).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-10}"
connections="${2:-32}"
runs="${3:-100}"
pg="${SLUICE_BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432}"
redis="${SLUICE_BENCH_REDIS_URL:-redis://127.0.0.1:6379}"
command -v wrk >/dev/null || { echo "install wrk (apt-get install wrk)" >&2; exit 1; }
cargo build --release --quiet --bin sluice --example run_bench

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
db=sluice_bench_scaleout
psql "$pg/postgres" -q -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db"
prefix="bench$RANDOM"
export SLUICE_DATABASE_URL="$pg/$db" SLUICE_REDIS_URL="$redis" SLUICE_QUEUE_PREFIX="$prefix"
export SLUICE_SECRET_KEY="bench-secret-key-0123456789abcdef0123456789"
export SLUICE_OBJECT_STORE_URL="file://$work/objects" SLUICE_ALLOW_LOCAL_REPOS=true SLUICE_LOG=warn
target/release/sluice migrate >/dev/null

# Replicas on fixed ports, workers with two slots each.
port_a=$((20000 + RANDOM % 20000))
port_b=$((port_a + 1))
for port in "$port_a" "$port_b"; do
  SLUICE_BIND="127.0.0.1:$port" SLUICE_DATA_DIR="$work/api-$port" \
    target/release/sluice api >"$work/api-$port.log" 2>&1 &
  pids+=($!)
done
for n in 1 2; do
  SLUICE_BIND="127.0.0.1:0" SLUICE_DATA_DIR="$work/worker-$n" SLUICE_WORKER_CONCURRENCY=2 \
    target/release/sluice worker >"$work/worker-$n.log" 2>&1 &
  pids+=($!)
done
a="http://127.0.0.1:$port_a"
b="http://127.0.0.1:$port_b"
for url in "$a" "$b"; do
  until curl -fsS -o /dev/null "$url/readyz" 2>/dev/null; do sleep 0.05; done
done
echo "== $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); PostgreSQL $(psql "$pg/postgres" -tAc 'SHOW server_version'), Redis $(redis-cli -u "$redis" info server | awk -F: '/redis_version/ {print $2}' | tr -d '\r')"

echo "== replica A: projects list next to /healthz (wrk -t2 -c$connections -d${seconds}s)"
curl -fsS -c "$work/jar" -o "$work/session.json" -H 'content-type: application/json' \
  -d '{"email":"bench@example.com","password":"benchmark password","name":"Bench"}' "$a/auth/signup"
csrf=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["csrf_token"])' "$work/session.json")
post() { curl -fsS -o "$work/out.json" -b "$work/jar" -H "x-csrf-token: $csrf" -H 'content-type: application/json' -d "$2" "$a$1"; }
post /api/v1/orgs '{"slug":"bench","name":"Bench"}'
for i in $(seq 1 20); do
  post /api/v1/orgs/bench/projects "{\"slug\":\"p$i\",\"name\":\"Project $i\",\"repo_url\":\"https://git.example.com/p$i.git\"}"
done
post /api/v1/orgs/bench/tokens '{"name":"bench","scopes":["read"]}'
token=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["token"])' "$work/out.json")
rps() { awk '/Requests\/sec/ {print $2}'; }
healthz=$(wrk -t2 -c"$connections" -d"${seconds}s" "$a/healthz" | rps)
list=$(wrk -t2 -c"$connections" -d"${seconds}s" -H "Authorization: Bearer $token" "$a/api/v1/orgs/bench/projects" | tee "$work/projects.txt" | rps)
grep -E "Latency|Non-2xx" "$work/projects.txt" | sed 's/^/  projects: /'
echo "GET /healthz:                        $healthz req/s"
echo "GET /api/v1/orgs/bench/projects (20): $list req/s"
python3 -c "import sys; print(f'ratio: {float(sys.argv[2])/float(sys.argv[1]):.2f} of healthz (target >= 0.5)')" "$healthz" "$list"

echo "== webhook on replica A -> first step running on a worker process"
target/release/examples/run_bench latency "$a" "$runs"
echo "== a worker's log flush -> a follower on replica B"
target/release/examples/run_bench follow-latency "$a" "$b" "$redis" "$prefix" 200
