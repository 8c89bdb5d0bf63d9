#!/usr/bin/env bash
# A private local PostgreSQL for tests (no Docker): scripts/pg.sh start|stop|url|status
#
#   start   initialise (first time) and start the server; idempotent; prints the URL
#   stop    stop this server only (pg_ctl stop on our data directory)
#   url     print the SQLAlchemy URL
#   status  exit 0 when running, 3 when not
#
# Data lives in ${MINDCOMMONS_PG_DIR:-/tmp/mindcommons-pg}; the server listens on
# 127.0.0.1:${MINDCOMMONS_PG_PORT:-55432} only, with trust auth on loopback.
# It never touches a system-wide cluster. Messages go to stderr, the URL to stdout.
# Tuned for tests (fsync off): never keep data you care about in it.
set -euo pipefail

PG_DIR="${MINDCOMMONS_PG_DIR:-/tmp/mindcommons-pg}"
PORT="${MINDCOMMONS_PG_PORT:-55432}"
DB="mindcommons_test"
DATA="$PG_DIR/data"
LOG="$PG_DIR/server.log"
URL="postgresql+psycopg://postgres@127.0.0.1:$PORT/$DB"

say() { echo "pg.sh: $*" >&2; }

find_bin() {
    local d
    d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
    if [[ -n "$d" && -x "$d/pg_ctl" && -x "$d/initdb" ]]; then
        echo "$d"
    fi
}

ensure_installed() {
    BIN="$(find_bin)"
    if [[ -z "$BIN" ]]; then
        if [[ "$(id -u)" != 0 ]]; then
            say "PostgreSQL server binaries not found; install Debian's 'postgresql' package (needs root)"
            exit 4
        fi
        say "installing PostgreSQL (apt-get install postgresql) ..."
        apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
        BIN="$(find_bin)"
        if [[ -z "$BIN" ]]; then
            say "PostgreSQL installed but no /usr/lib/postgresql/*/bin/pg_ctl found"
            exit 4
        fi
    fi
}

# Run a server command as the postgres OS user when we are root (root cannot run it).
as_pg() {
    if [[ "$(id -u)" == 0 ]]; then
        (cd / && runuser -u postgres -- "$@")
    else
        (cd / && "$@")
    fi
}

is_running() {
    [[ -f "$DATA/PG_VERSION" ]] && as_pg "$BIN/pg_ctl" status -D "$DATA" >/dev/null 2>&1
}

init_cluster() {
    mkdir -p "$PG_DIR"
    if [[ "$(id -u)" == 0 ]]; then
        chown postgres: "$PG_DIR"
        chmod 700 "$PG_DIR"
    fi
    say "initialising a cluster in $DATA"
    as_pg "$BIN/initdb" -D "$DATA" -U postgres --auth=trust -E UTF8 --no-locale >/dev/null
    cat >>"$DATA/postgresql.conf" <<EOF

# mindcommons test server
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$PG_DIR'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 50
EOF
    cat >"$DATA/pg_hba.conf" <<EOF
local all all trust
host  all all 127.0.0.1/32 trust
EOF
}

psql_q() {
    "$BIN/psql" -X -q -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -tA -c "$1"
}

start() {
    ensure_installed
    if [[ ! -f "$DATA/PG_VERSION" ]]; then
        init_cluster
    fi
    if is_running; then
        say "already running ($DATA, port $PORT)"
    else
        say "starting on 127.0.0.1:$PORT (log: $LOG)"
        if ! as_pg "$BIN/pg_ctl" start -D "$DATA" -l "$LOG" -w -t 60 >/dev/null; then
            say "server failed to start; last lines of $LOG:"
            tail -n 20 "$LOG" >&2 || true
            exit 1
        fi
    fi
    if [[ "$(psql_q "SELECT 1 FROM pg_database WHERE datname = '$DB'")" != 1 ]]; then
        psql_q "CREATE DATABASE $DB" >/dev/null
    fi
    echo "$URL"
}

stop() {
    BIN="$(find_bin)"
    if [[ -z "$BIN" || ! -f "$DATA/PG_VERSION" ]]; then
        say "not initialised ($DATA); nothing to stop"
        return 0
    fi
    if is_running; then
        as_pg "$BIN/pg_ctl" stop -D "$DATA" -m fast -w >/dev/null
        say "stopped"
    else
        say "not running"
    fi
}

status() {
    BIN="$(find_bin)"
    if [[ -n "$BIN" ]] && is_running; then
        say "running on 127.0.0.1:$PORT ($DATA)"
        echo "$URL"
        return 0
    fi
    say "not running"
    return 3
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    url) echo "$URL" ;;
    status) status ;;
    *)
        echo "usage: $0 start|stop|url|status" >&2
        exit 2
        ;;
esac
