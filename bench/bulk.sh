#!/usr/bin/env bash
# Bulk benchmark alone (workload 5 of bench/run.sh): 10,000 organizations change
# status through Backplane (`serve` with authentication, the bulk mutation,
# validation, audit event and all) against one raw SQL UPDATE of the same rows,
# on a throwaway PostgreSQL. Writes bench/out/bulk.md and prints it.
#
#   ./bench/bulk.sh            # 10,000 items, 5 rounds
#   ITEMS=2000 ROUNDS=3 ./bench/bulk.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ITEMS=${ITEMS:-10000}
BENCH_WORKLOADS=5 BENCH_ORGS=$ITEMS BENCH_BULK_ITEMS=$ITEMS BENCH_BULK_ROUNDS=${ROUNDS:-5} \
  BENCH_REPORT=bench/out/bulk.md ./bench/run.sh
cat bench/out/bulk.md
