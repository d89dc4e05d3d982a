#!/usr/bin/env bash
# A SaaS-sized dataset on PostgreSQL, and how Sluice's list endpoints and scheduler fare on it:
#   1. a fresh database; through a release `sluice api`: an owner, org `bench`, projects
#      p1…p10 and an admin token; then scripts/dataset.sql: ORGS orgs, PROJECTS projects per
#      org, RUNS runs per project (two stages each), a log chunk for every tenth run, QUEUED
#      queued runs per org;
#   2. every list endpoint (and the pages over the same lists) once with auto_explain on, and
#      every plan that scans a large table sequentially printed (PGLOG: the server's log);
#   3. each endpoint for SECONDS with one connection (wrk --latency): p50, p99, req/s;
#   4. dispatcher passes over the queued runs (examples/dispatch_bench.rs).
#
#   scripts/bench-dataset.sh [orgs] [projects] [runs] [queued] [seconds]
#     (defaults: 1000 10 100 10 3, i.e. 10,000 projects, 1,000,000 runs, 10,000 queued)
#
# Needs psql and wrk; PostgreSQL at SLUICE_BENCH_POSTGRES_URL (default
# postgres://postgres@127.0.0.1:5432, a superuser: auto_explain is loaded per database).
set -euo pipefail
cd "$(dirname "$0")/.."
orgs="${1:-1000}"
projects="${2:-10}"
runs="${3:-100}"
queued="${4:-10}"
seconds="${5:-3}"
pg="${SLUICE_BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432}"
pglog="${PGLOG:-/var/log/postgresql/postgresql-15-main.log}"
command -v wrk >/dev/null || { echo "install wrk (apt-get install wrk)" >&2; exit 1; }
cargo build --release --quiet --bin sluice --example dispatch_bench

work=$(mktemp -d)
pid=
stop_api() { if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; pid=; fi; }
trap 'stop_api; rm -rf "$work"' EXIT
db=sluice_bench_dataset
url="$pg/$db"
psql "$pg/postgres" -q -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db" 2>/dev/null
export SLUICE_DATABASE_URL="$url" SLUICE_SECRET_KEY="bench-secret-key-0123456789abcdef0123456789"
export SLUICE_OBJECT_STORE_URL="file://$work/objects" SLUICE_LOG=warn SLUICE_DATA_DIR="$work/api"
target/release/sluice migrate >/dev/null
port=$((20000 + RANDOM % 20000))
base="http://127.0.0.1:$port"
start_api() {
  SLUICE_BIND="127.0.0.1:$port" target/release/sluice api >>"$work/api.log" 2>&1 &
  pid=$!
  until curl -fsS -o /dev/null "$base/readyz" 2>/dev/null; do sleep 0.05; done
}
start_api
curl -fsS -c "$work/jar" -o "$work/session.json" -H 'content-type: application/json' \
  -d '{"email":"bench@example.com","password":"benchmark password","name":"Bench"}' "$base/auth/signup"
csrf=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["csrf_token"])' "$work/session.json")
cookie=$(awk '$6 == "sluice_session" {print $7}' "$work/jar")
post() { curl -fsS -o "$work/out.json" -b "$work/jar" -H "x-csrf-token: $csrf" -H 'content-type: application/json' -d "$2" "$base$1"; }
post /api/v1/orgs '{"slug":"bench","name":"Bench"}'
for i in $(seq 1 "$projects"); do
  post /api/v1/orgs/bench/projects "{\"slug\":\"p$i\",\"name\":\"Project $i\",\"repo_url\":\"https://git.example.com/p$i.git\"}"
done
post /api/v1/orgs/bench/tokens '{"name":"bench","scopes":["admin"]}'
token=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["token"])' "$work/out.json")
stop_api

echo "== generating: $orgs orgs x $projects projects x $runs runs ($queued queued per org)"
started=$(date +%s)
psql "$url" -q -v orgs="$orgs" -v projects="$projects" -v runs="$runs" -v queued="$queued" -f scripts/dataset.sql
echo "generated in $(( $(date +%s) - started )) s:"
psql "$url" -tA -F ' ' -c "SELECT 'orgs', COUNT(*) FROM orgs UNION ALL SELECT 'projects', COUNT(*) FROM projects UNION ALL SELECT 'runs', COUNT(*) FROM runs UNION ALL SELECT 'queued runs', COUNT(*) FROM runs WHERE status = 'queued' UNION ALL SELECT 'stages', COUNT(*) FROM run_stages UNION ALL SELECT 'log chunks', COUNT(*) FROM run_log_chunks UNION ALL SELECT 'database MB', pg_database_size('$db') / 1048576" | sed 's/^/  /'

p="$base/api/v1/orgs/bench"
endpoints=(
  "api|$base/api/v1/orgs"
  "api|$p/projects"
  "api|$p/projects/p1/runs"
  "api|$p/projects/p2/runs?status=failed"
  "api|$p/projects/p2/runs/50"
  "api|$p/projects/p2/runs/50/artifacts"
  "api|$p/members"
  "api|$p/audit"
  "api|$p/tokens"
  "api|$p/projects/p1/secrets"
  "api|$p/projects/p1/environments"
  "api|$p/projects/p1/releases"
  "api|$base/jenkins/bench/job/p2/api/json"
  "page|$base/"
  "page|$base/orgs"
  "page|$base/orgs/bench/projects"
  "page|$base/orgs/bench/tokens"
  "page|$base/orgs/bench/projects/p2"
  "page|$base/orgs/bench/projects/p2/runs-part"
)
auth() { if [ "$1" = page ]; then echo "Cookie: sluice_session=$cookie"; else echo "Authorization: Bearer $token"; fi; }

if [ -r "$pglog" ]; then
  echo "== query plans (auto_explain) of one request to each endpoint: sequential scans of large tables"
  psql "$url" -q -c "ALTER DATABASE $db SET session_preload_libraries = 'auto_explain'" \
    -c "ALTER DATABASE $db SET auto_explain.log_min_duration = 0"
  start_api
  from=$(wc -l <"$pglog")
  for e in "${endpoints[@]}"; do
    kind="${e%%|*}"; target="${e#*|}"
    curl -fsS -o /dev/null -H "$(auth "$kind")" "$target" || echo "  FAILED: $target"
  done
  sleep 1
  tail -n +"$((from + 1))" "$pglog" >"$work/plans.log"
  stop_api
  psql "$url" -q -c "ALTER DATABASE $db RESET session_preload_libraries" -c "ALTER DATABASE $db RESET auto_explain.log_min_duration"
  echo "  $(grep -c 'duration:' "$work/plans.log") statements explained"
  grep -E "Seq Scan on (runs|run_stages|run_outbox|run_log_chunks|projects|orgs|memberships|audit_log|users)" "$work/plans.log" \
    | sed 's/^ *//' | sort | uniq -c | sed 's/^/  /' || echo "  none"
  cp "$work/plans.log" "${PLANS_OUT:-/tmp/sluice-dataset-plans.log}"
  echo "  (all plans: ${PLANS_OUT:-/tmp/sluice-dataset-plans.log})"
else
  echo "== (no readable PostgreSQL log at $pglog: set PGLOG to check the query plans)"
fi

echo "== each endpoint for ${seconds}s, one connection (wrk -t1 -c1 --latency)"
start_api
# wrk's percentiles, and each request timed one by one by a plain keep-alive client for the
# same time (every request's latency recorded, none corrected or sampled).
timed() {
  python3 - "$1" "$2" "$3" <<'PY'
import http.client, sys, time, urllib.parse
target, header, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
url = urllib.parse.urlsplit(target)
name, value = header.split(": ", 1)
conn = http.client.HTTPConnection(url.hostname, url.port)
path = url.path + ("?" + url.query if url.query else "")
took, end = [], time.time() + seconds
while time.time() < end:
    start = time.perf_counter()
    conn.request("GET", path, headers={name: value})
    conn.getresponse().read()
    took.append((time.perf_counter() - start) * 1000)
took.sort()
print("%.2fms %.2fms %.2fms %d" % (took[len(took) // 2], took[int(len(took) * 0.99)], took[-1], len(took)))
PY
}
printf '  %-54s %9s %9s %9s | %9s %9s %9s %6s\n' "endpoint" "wrk p50" "p99" "req/s" "each: p50" "p99" "max" "n"
for e in "${endpoints[@]}"; do
  kind="${e%%|*}"; target="${e#*|}"
  status=$(curl -s -o /dev/null -w '%{http_code}' -H "$(auth "$kind")" "$target")
  out=$(wrk -t1 -c1 -d"${seconds}s" --latency -H "$(auth "$kind")" "$target")
  p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  read -r e50 e99 emax en <<<"$(timed "$target" "$(auth "$kind")" "$seconds")"
  printf '  %-54s %9s %9s %9s | %9s %9s %9s %6s  (%s)\n' "${target#"$base"}" "$p50" "$p99" "$rps" "$e50" "$e99" "$emax" "$en" "$status"
done
stop_api

echo "== dispatcher passes over the queued runs"
target/release/examples/dispatch_bench "$url" 20
