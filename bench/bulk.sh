#!/usr/bin/env bash
# Bulk benchmark: 10,000 organizations change status through Backplane (the bulk
# mutation, validation, audit event and all) against one raw SQL UPDATE of the
# same rows, on a throwaway PostgreSQL. Prints a small report.
#
#   ./bench/bulk.sh            # 10,000 items, 5 rounds
#   ITEMS=2000 ROUNDS=3 ./bench/bulk.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ITEMS=${ITEMS:-10000}
ROUNDS=${ROUNDS:-5}
PORT=${PORT:-18480}

cargo build --release --quiet
# shellcheck source=scripts/postgres.sh
source scripts/postgres.sh
start_throwaway_postgres
DB="${BACKPLANE_TEST_POSTGRES_URL%/postgres}/bulkbench"
psql -q "$BACKPLANE_TEST_POSTGRES_URL" -c "CREATE DATABASE bulkbench"
./target/release/backplane seed --orgs "$ITEMS" --database-url "$DB" >/dev/null

# dev mode: no identity provider needed; the audit extension is on as always.
./target/release/backplane dev --listen "127.0.0.1:$PORT" --database-url "$DB" >/tmp/bulkbench-server.log 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; stop_throwaway_postgres' EXIT
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.1; done

BODY=$(python3 - "$ITEMS" <<'PY'
import json, sys
n = int(sys.argv[1])
q = "mutation($input: BulkOrganizationStatusInput!) { bulkUpdateOrganizationStatus(input: $input) { requested changed unchanged failed { id } } }"
print(json.dumps({"query": q, "variables": {"input": {"ids": [f"org_{i}" for i in range(1, n + 1)], "status": "SUSPENDED", "reason": "benchmark", "mode": "BEST_EFFORT"}}}))
PY
)
reset() { psql -q "$DB" -c "UPDATE organizations SET status = 'ACTIVE'" >/dev/null; }
ms() { python3 -c 'import sys; print(f"{float(sys.argv[1])*1000:.1f}")' "$1"; }

raw_times=(); api_times=()
for r in $(seq 1 "$ROUNDS"); do
  # psql's own timing: the statement alone, no connection set-up.
  t=$(psql -qAt "$DB" <<SQL | tail -n 1
UPDATE organizations SET status = 'ACTIVE';
\timing on
UPDATE organizations SET status = 'SUSPENDED', updated_at = now() WHERE id BETWEEN 1 AND $ITEMS;
SQL
)
  raw_times+=("$(echo "$t" | sed -E 's/Time: ([0-9.]+) ms.*/\1/')")
  reset
  api=$(curl -s -o /tmp/bulkbench-response.json -w '%{time_total}' "http://127.0.0.1:$PORT/graphql" \
    -H 'content-type: application/json' --data-binary "$BODY")
  api_times+=("$(ms "$api")")
  grep -q "\"changed\":$ITEMS" /tmp/bulkbench-response.json || { echo "unexpected response:"; head -c 500 /tmp/bulkbench-response.json; exit 1; }
done

python3 - "$ITEMS" "${raw_times[*]}" "${api_times[*]}" <<'PY'
import statistics, sys
n = sys.argv[1]
raw = [float(x) for x in sys.argv[2].split()]
api = [float(x) for x in sys.argv[3].split()]
mr, ma = statistics.median(raw), statistics.median(api)
print(f"# Bulk status change, {n} organizations, PostgreSQL, median of {len(raw)} rounds")
print()
print("| path | median ms | all rounds (ms) |")
print("|---|---|---|")
print(f"| raw SQL UPDATE (psql \\timing) | {mr:.1f} | {', '.join(f'{x:.1f}' for x in raw)} |")
print(f"| Backplane bulkUpdateOrganizationStatus over HTTP (validation, audit event, commit) | {ma:.1f} | {', '.join(f'{x:.1f}' for x in api)} |")
print()
print(f"ratio Backplane / raw SQL: {ma / mr:.2f}x (goal: at most 3x)")
PY
