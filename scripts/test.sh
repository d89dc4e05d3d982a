#!/usr/bin/env bash
# The whole test suite: formatting, lints, and every test on SQLite and then on PostgreSQL.
# It first installs and starts what the tests need (scripts/test-services.sh): PostgreSQL
# (SLUICE_TEST_POSTGRES_URL, default postgres://postgres@127.0.0.1:5432/postgres), Redis
# (SLUICE_TEST_REDIS_URL, default redis://127.0.0.1:6379), promtool, schemathesis, Chromium
# and the npm helpers. Set SLUICE_TEST_SKIP_SERVICES=1 to skip that step.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${SLUICE_TEST_SKIP_SERVICES:-0}" != 1 ]; then
  bash scripts/test-services.sh
fi

postgres_url="${SLUICE_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
bash scripts/check-helm.sh
echo "== tests on SQLite"
cargo test --workspace
echo "== end-to-end tests on PostgreSQL"
SLUICE_TEST_DATABASE_URL="$postgres_url" cargo test --test api
