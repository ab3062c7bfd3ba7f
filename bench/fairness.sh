#!/usr/bin/env bash
# Fairness benchmark: one service identity floods deep pages at 32
# connections while a person (support) runs the support lookup at 2, on a
# throwaway PostgreSQL with `backplane serve` (authentication and audit on).
# Reports the person's p50/p99 alone and under the flood (goal: p99 under the
# flood at most 3x alone) and the flood's answers by status. Writes
# bench/FAIRNESS.md (and bench/out/fairness.md) and prints it: one run with
# the service's budget per minute, one without.
#
#   ./bench/fairness.sh
#   ORGS=2000 DURATION=20 SERVICE_COST_PER_MINUTE=600000 ./bench/fairness.sh
#
# Settings (environment): ORGS (2000), DURATION (20 s per phase), WARMUP (5 s),
# FLOOD_CONNECTIONS (32), PERSON_CONNECTIONS (2), DEEP_N (100 parents a page),
# SERVICE_COST_PER_MINUTE (600000: the flood's budget; empty for none),
# BACKPLANE_BIN (use this binary instead of `cargo build --release`).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=$ROOT/bench/out
mkdir -p "$OUT"
ORGS=${ORGS:-2000}
AUDIENCE=backplane-bench
SERVICE_COST_PER_MINUTE=${SERVICE_COST_PER_MINUTE-600000}
say() { echo "fairness: $*" >&2; }
# shellcheck source=bench/lib.sh
source bench/lib.sh

missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v openssl >/dev/null || missing+=(openssl)
command -v psql >/dev/null || missing+=(postgresql-client)
install_missing "${missing[@]}"

if [ -n "${BACKPLANE_BIN:-}" ]; then
  BIN=$BACKPLANE_BIN
  SOURCE=${BACKPLANE_BIN_SOURCE:-"a given binary"}
else
  say "building Backplane (cargo build --release)"
  nice -n 10 cargo build --release --quiet
  BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/backplane
  SOURCE="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (with uncommitted changes)')"
fi

# shellcheck source=scripts/postgres.sh
source scripts/postgres.sh
start_throwaway_postgres
trap cleanup EXIT
trap 'exit 130' INT TERM
HOSTPORT=${BACKPLANE_TEST_POSTGRES_URL#postgres://postgres@}
HOSTPORT=${HOSTPORT%/postgres}
psql -qX "$BACKPLANE_TEST_POSTGRES_URL" -v ON_ERROR_STOP=1 -c "CREATE DATABASE fairness"
DB="postgres://postgres@$HOSTPORT/fairness"
say "seeding $ORGS organizations (backplane seed)"
"$BIN" seed --orgs "$ORGS" --database-url "$DB" >"$OUT/fairness-seed.log" 2>&1 || { cat "$OUT/fairness-seed.log" >&2; exit 1; }
psql -qX "$DB" -c "VACUUM ANALYZE"

ISSUER_PORT=$(free_port)
rm -f "$OUT/fairness-token" "$OUT/fairness-person"
python3 bench/issuer.py --port "$ISSUER_PORT" --audience "$AUDIENCE" --scope "backplane:read:customers backplane:read:billing" \
  --token-file "$OUT/fairness-token" --person-token-file "$OUT/fairness-person" 2>"$OUT/fairness-issuer.log" &
PIDS+=($!)
for _ in $(seq 1 100); do [ -s "$OUT/fairness-token" ] && break; sleep 0.1; done
[ -s "$OUT/fairness-token" ] || { cat "$OUT/fairness-issuer.log" >&2; exit 1; }

# One run with the service's budget (the goal), one without it (what the
# in-flight share alone does), each on a fresh server.
mode=write
for budget in "$SERVICE_COST_PER_MINUTE" ""; do
  [ "$mode" = append ] && [ -z "$SERVICE_COST_PER_MINUTE" ] && break
  PORT=$(free_port)
  say "starting Backplane (serve) on 127.0.0.1:$PORT; the service's budget: ${budget:-none} a minute"
  BACKPLANE_LISTEN=127.0.0.1:$PORT \
  BACKPLANE_DATABASE_URL=$DB \
  BACKPLANE_OIDC_ISSUER=http://127.0.0.1:$ISSUER_PORT \
  BACKPLANE_OIDC_AUDIENCE=$AUDIENCE \
  BACKPLANE_SERVICE_CLIENTS=bench-script \
  BACKPLANE_SERVICE_COST_PER_MINUTE=$budget \
  RUST_LOG=warn \
    "$BIN" serve >"$OUT/fairness-backplane.log" 2>&1 &
  BP_PID=$!
  PIDS+=("$BP_PID")
  for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break
    sleep 0.2
  done
  curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null || { cat "$OUT/fairness-backplane.log" >&2; exit 1; }

  BENCH_BP_URL=http://127.0.0.1:$PORT BENCH_TOKEN_FILE=$OUT/fairness-token \
  BENCH_PERSON_TOKEN_FILE=$OUT/fairness-person BENCH_OUT=$OUT BENCH_REPORT=$OUT/fairness.md \
  BENCH_REPORT_MODE=$mode \
  BENCH_DURATION=${DURATION:-20} BENCH_WARMUP=${WARMUP:-5} BENCH_FLOOD_CONNECTIONS=${FLOOD_CONNECTIONS:-32} \
  BENCH_PERSON_CONNECTIONS=${PERSON_CONNECTIONS:-2} BENCH_DEEP_N=${DEEP_N:-100} \
  BENCH_SERVICE_COST_PER_MINUTE=$budget BENCH_ORGS=$ORGS BENCH_SOURCE="$SOURCE" \
    python3 bench/fairness.py >/dev/null
  kill "$BP_PID"; wait "$BP_PID" 2>/dev/null || true
  mode=append
done
cp "$OUT/fairness.md" bench/FAIRNESS.md
cat bench/FAIRNESS.md
