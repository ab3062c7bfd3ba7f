#!/usr/bin/env bash
# Export benchmark alone (workload 6 of bench/run.sh): every user (about a
# million with the default 61,000 organizations) exported as CSV through
# Backplane's `POST /export` (`serve`, authentication and audit on) against
# psql's `\copy (SELECT …) TO STDOUT WITH CSV` of the same columns, on a
# throwaway PostgreSQL, with Backplane's peak RSS. Writes bench/out/export.md
# and prints it.
#
#   ./bench/export.sh              # 61,000 organizations, 3 rounds
#   ORGS=6000 ROUNDS=1 ./bench/export.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH_WORKLOADS=6 BENCH_ORGS=${ORGS:-61000} BENCH_EXPORT_ROUNDS=${ROUNDS:-3} \
  BENCH_REPORT=bench/out/export.md ./bench/run.sh
cat bench/out/export.md
