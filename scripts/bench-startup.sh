#!/usr/bin/env bash
# Start -> ready time and idle RSS of `sluice serve` on embedded defaults.
#
#   scripts/bench-startup.sh [runs]      (default 5 runs; builds the release binary first)
#
# "Ready" is the first 200 from /readyz, polled with curl every millisecond or so from the
# moment the binary is exec'd, so the figure includes process start, SQLite open + migrations
# and binding the port. "Cold" runs start on an empty data dir (schema created, key generated);
# "warm" runs restart on the data dir the cold run left. Idle RSS is VmRSS two seconds after ready.
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-5}"
cargo build --release --quiet
bin="$PWD/target/release/sluice"
port=$((20000 + RANDOM % 20000))
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

measure() { # data_dir -> prints "ms rss_kib"
  local dir=$1 start end pid rss
  start=$(date +%s%N)
  SLUICE_LOG=warn "$bin" serve --bind "127.0.0.1:$port" --data-dir "$dir" >/dev/null 2>&1 &
  pid=$!
  until curl -fsS -o /dev/null "http://127.0.0.1:$port/readyz" 2>/dev/null; do
    kill -0 "$pid" 2>/dev/null || { echo "sluice exited early" >&2; exit 1; }
  done
  end=$(date +%s%N)
  sleep 2
  rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status")
  kill -TERM "$pid"
  wait "$pid"
  echo "$(( (end - start) / 1000000 )) $rss"
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

cold_ms=(); warm_ms=(); rss=()
for i in $(seq 1 "$runs"); do
  dir="$work/data-$i"
  read -r ms kib < <(measure "$dir"); cold_ms+=("$ms"); rss+=("$kib")
  read -r ms kib < <(measure "$dir"); warm_ms+=("$ms"); rss+=("$kib")
  echo "run $i: cold ${cold_ms[-1]} ms, warm ${warm_ms[-1]} ms, idle RSS ${rss[-1]} KiB"
done
echo "median start->ready, cold (empty data dir): $(printf '%s\n' "${cold_ms[@]}" | median) ms"
echo "median start->ready, warm (existing data dir): $(printf '%s\n' "${warm_ms[@]}" | median) ms"
echo "median idle RSS: $(( $(printf '%s\n' "${rss[@]}" | median) / 1024 )) MiB ($(printf '%s\n' "${rss[@]}" | median) KiB)"
