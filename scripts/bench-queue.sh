#!/usr/bin/env bash
# Job queue throughput through Redis, next to what redis-benchmark gets from the same Redis
# for the raw XADD that publishing one job costs, in the same run; prints the ratio.
# The queue runs twice: with redis-benchmark's concurrency (16 producers, 16 consumers) and
# with a smaller one (4 producers, 8 consumers).
#
#   scripts/bench-queue.sh [jobs]      (default 40000 jobs)
set -euo pipefail
cd "$(dirname "$0")/.."
jobs="${1:-40000}"
cargo build --release --quiet --example queue_throughput
raw() {
  redis-benchmark -h 127.0.0.1 -p 6379 -n 100000 -c 16 -q XADD sluice-bench-raw '*' run_id 1 org_id 1 \
    | tr '\r' '\n' | grep -o '[0-9.]* requests per second' | cut -d' ' -f1
  redis-cli -h 127.0.0.1 -p 6379 DEL sluice-bench-raw >/dev/null
}
queue() {
  target/release/examples/queue_throughput "$jobs" "$1" "$2" | grep '^redis' | awk '{print $3}'
}
echo "== $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(redis-server --version | cut -d' ' -f3)"
for round in 1 2 3; do
  xadd=$(raw)
  wide=$(queue 16 16)
  narrow=$(queue 8 4)
  echo "round $round: redis-benchmark -c 16 XADD $xadd req/s;" \
    "queue 16 producers/16 consumers $wide jobs/s ($(echo "scale=2; $wide / $xadd" | bc));" \
    "4 producers/8 consumers $narrow jobs/s ($(echo "scale=2; $narrow / $xadd" | bc))"
done
