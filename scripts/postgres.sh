#!/usr/bin/env bash
# Starts a throwaway PostgreSQL server for the tests and benchmarks, and exports
# BACKPLANE_TEST_POSTGRES_URL. Source it; the server stops when the shell exits.
#
# Uses the machine's PostgreSQL binaries (installing the distribution's package
# when they are missing and we are root). initdb refuses to run as root, so the
# server runs as the `postgres` user; data lives in a temporary directory.

find_pg_bin() {
  if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
    dirname "$(readlink -f "$(command -v initdb)")"
    return 0
  fi
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -n "$dir" ] && [ -x "$dir/initdb" ] && echo "$dir"
}

start_throwaway_postgres() {
  local bin
  bin=$(find_pg_bin || true)
  if [ -z "$bin" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      echo "postgres: installing the distribution's postgresql package" >&2
      apt-get update -qq >/dev/null
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
      bin=$(find_pg_bin)
    else
      echo "postgres: no PostgreSQL binaries found; install the postgresql package or set BACKPLANE_TEST_POSTGRES_URL" >&2
      return 1
    fi
  fi

  PG_TMP=$(mktemp -d /tmp/backplane-pg.XXXXXX)
  local run=()
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
    chown postgres "$PG_TMP"
    run=(runuser -u postgres --)
  fi
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  "${run[@]}" "$bin/initdb" -D "$PG_TMP/data" -A trust -U postgres -E UTF8 --no-sync >"$PG_TMP/initdb.log" 2>&1 \
    || { cat "$PG_TMP/initdb.log" >&2; return 1; }
  "${run[@]}" "$bin/pg_ctl" -D "$PG_TMP/data" -l "$PG_TMP/server.log" -w -t 60 \
    -o "-k $PG_TMP -p $port -c listen_addresses=127.0.0.1 -c max_connections=400 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c shared_buffers=256MB -c max_wal_size=4GB" \
    start >/dev/null || { cat "$PG_TMP/server.log" >&2; return 1; }
  PG_BIN=$bin
  PG_RUN=("${run[@]}")
  export BACKPLANE_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$port/postgres"
  trap stop_throwaway_postgres EXIT
  echo "postgres: throwaway server on 127.0.0.1:$port ($($bin/postgres --version))" >&2
}

stop_throwaway_postgres() {
  if [ -n "${PG_TMP:-}" ] && [ -d "$PG_TMP/data" ]; then
    "${PG_RUN[@]}" "$PG_BIN/pg_ctl" -D "$PG_TMP/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$PG_TMP"
  fi
}
