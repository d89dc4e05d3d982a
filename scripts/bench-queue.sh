#!/usr/bin/env bash
# Job queue throughput through Redis, next to what redis-benchmark gets from the same Redis
# for the commands one job costs (XADD to publish; XREADGROUP, XPENDING, XACK+XDEL to claim
# and ack).
#
#   scripts/bench-queue.sh [jobs] [consumers]      (default 20000 jobs, 8 consumers)
set -euo pipefail
cd "$(dirname "$0")/.."
jobs="${1:-20000}"
consumers="${2:-8}"
cargo build --release --quiet --example queue_throughput
echo "== redis-benchmark (XADD, 16 clients, 100000 requests)"
redis-benchmark -h 127.0.0.1 -p 6379 -n 100000 -c 16 -q XADD sluice-bench-raw '*' run_id 1 org_id 1 \
  | tr '\r' '\n' | tail -n 1
redis-cli -h 127.0.0.1 -p 6379 DEL sluice-bench-raw >/dev/null
echo "== redis-benchmark (PING, 16 clients): one round trip"
redis-benchmark -h 127.0.0.1 -p 6379 -n 100000 -c 16 -q -t ping_mbulk | tr '\r' '\n' | tail -n 2
echo "== Sluice queue"
target/release/examples/queue_throughput "$jobs" "$consumers"
