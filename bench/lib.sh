# What the benchmark scripts share (sourced, not run): a free loopback port,
# Debian packages installed when missing, and the processes stopped at exit.

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# Installs the Debian packages named (when root with apt-get), or says what is
# missing and exits 1. `say` is the calling script's.
install_missing() {
  [ $# -eq 0 ] && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing $* (Debian packages)"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
  else
    say "missing: $*; install them (Debian: apt-get install $*)"
    exit 1
  fi
}

# The processes to stop at exit (append with PIDS+=($!)), and the throwaway
# PostgreSQL (scripts/postgres.sh).
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  stop_throwaway_postgres
}
