#!/usr/bin/env bash
# Requests per second of a token-authenticated `GET /api/v1/orgs/{org}/projects` next to
# `GET /healthz`, on the same running `sluice serve` (release build, embedded SQLite).
#
#   scripts/bench-api.sh [seconds] [connections] [projects]   (defaults: 10 s, 32, 20 projects)
#
# Needs wrk (Debian package `wrk`). Both runs use the same wrk settings, one after the other.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-10}"
connections="${2:-32}"
projects="${3:-20}"
command -v wrk >/dev/null || { echo "install wrk (apt-get install wrk)" >&2; exit 1; }
cargo build --release --quiet
port=$((20000 + RANDOM % 20000))
base="http://127.0.0.1:$port"
work=$(mktemp -d)
SLUICE_LOG=warn target/release/sluice serve --bind "127.0.0.1:$port" --data-dir "$work/data" >/dev/null 2>&1 &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$work"' EXIT
until curl -fsS -o /dev/null "$base/readyz" 2>/dev/null; do sleep 0.05; done

# An owner, an org with $projects projects, and a read token.
curl -fsS -c "$work/jar" -o "$work/session.json" -H 'content-type: application/json' \
  -d '{"email":"bench@example.com","password":"benchmark password","name":"Bench"}' "$base/auth/signup"
csrf=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["csrf_token"])' "$work/session.json")
post() { curl -fsS -o "$work/out.json" -b "$work/jar" -H "x-csrf-token: $csrf" -H 'content-type: application/json' -d "$2" "$base$1"; }
post /api/v1/orgs '{"slug":"bench","name":"Bench"}'
for i in $(seq 1 "$projects"); do
  post /api/v1/orgs/bench/projects "{\"slug\":\"p$i\",\"name\":\"Project $i\",\"repo_url\":\"https://git.example.com/p$i.git\"}"
done
post /api/v1/orgs/bench/tokens '{"name":"bench","scopes":["read"]}'
token=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["token"])' "$work/out.json")
curl -fsS -o /dev/null -H "Authorization: Bearer $token" "$base/api/v1/orgs/bench/projects"

rps() { awk '/Requests\/sec/ {print $2}'; }
echo "wrk -t2 -c$connections -d${seconds}s on $(nproc) cores"
healthz=$(wrk -t2 -c"$connections" -d"${seconds}s" "$base/healthz" | tee "$work/healthz.txt" | rps)
org=$(wrk -t2 -c"$connections" -d"${seconds}s" -H "Authorization: Bearer $token" "$base/api/v1/orgs/bench" | rps)
list=$(wrk -t2 -c"$connections" -d"${seconds}s" -H "Authorization: Bearer $token" "$base/api/v1/orgs/bench/projects" | tee "$work/projects.txt" | rps)
grep -E "Latency|Non-2xx" "$work/healthz.txt" | sed 's/^/  healthz:  /'
grep -E "Latency|Non-2xx" "$work/projects.txt" | sed 's/^/  projects: /'
echo "GET /healthz:                                   $healthz req/s"
echo "GET /api/v1/orgs/bench (Bearer token):          $org req/s (authentication and tenancy only)"
echo "GET /api/v1/orgs/bench/projects (Bearer token): $list req/s ($projects projects per response, $(curl -fsS -H "Authorization: Bearer $token" "$base/api/v1/orgs/bench/projects" | wc -c) bytes)"
python3 -c "import sys; print(f'ratio: {float(sys.argv[2])/float(sys.argv[1]):.2f} of healthz (target >= 0.5)')" "$healthz" "$list"
