#!/usr/bin/env bash
# A throwaway PostgreSQL 15 server for the tests: its own data dir, a loopback port, trust auth.
#
#   postgres-test-server.sh start  DIR PORT   initdb DIR if needed, start the server (a no-op when
#                                             it already runs), create database tally_test and
#                                             print postgres://postgres@127.0.0.1:PORT/tally_test
#   postgres-test-server.sh stop   DIR        fast shutdown; not an error when nothing runs
#   postgres-test-server.sh status DIR        exit 0 and print the URL when running, 3 when not
#   postgres-test-server.sh destroy DIR       stop, then delete the data dir (or its /tmp fallback)
#
# Only the URL goes to stdout; everything else goes to stderr. Several instances may run side by
# side, each with its own DIR and PORT (`make test` runs one; some tests start private ones).
#
# As root, the server runs as the `postgres` user (initdb refuses root). That user must be able to
# reach DIR: when a parent directory is closed to it, the cluster lives in
# /tmp/tally-pg-<hash of DIR> instead, and every subcommand given the same DIR finds it there.
# As any other user, the server runs as that user.
set -euo pipefail

PG_BIN=${TALLY_PG_BIN:-/usr/lib/postgresql/15/bin}
DATABASE=tally_test
SUPERUSER=postgres
RUN_AS=postgres  # used only when running as root
# Settings for tests: fsync stays on, so durability is the real thing.
SERVER_SETTINGS="-c listen_addresses=127.0.0.1 -c fsync=on -c max_connections=200 -c shared_buffers=128MB"

# The caller's libpq environment must not redirect psql/pg_isready to another server.
unset PGHOST PGHOSTADDR PGPORT PGDATABASE PGUSER PGPASSWORD PGOPTIONS PGSERVICE PGSERVICEFILE PGDATA

log() { echo "postgres-test-server: $*" >&2; }
die() { log "error: $*"; exit 1; }
usage() {
  cat >&2 <<EOF
usage: $0 start DIR PORT   start (initdb if needed); prints postgres://$SUPERUSER@127.0.0.1:PORT/$DATABASE
       $0 stop DIR         fast stop; no error when not running
       $0 status DIR       exit 0 and print the URL when running, 3 when not
       $0 destroy DIR      stop, then delete the data dir (or its /tmp fallback)
EOF
  exit 2
}

is_root() { [ "$(id -u)" = 0 ]; }

# Runs a PostgreSQL program as the server's user, from / (its cwd may be closed to that user).
# fd 9 (the lock, see lock) is closed so that a started postmaster does not hold it forever.
as_pg() {
  if is_root; then (cd / && runuser -u "$RUN_AS" -- "$@" 9>&-); else (cd / && "$@" 9>&-); fi
}

url_for() { echo "postgres://$SUPERUSER@127.0.0.1:$1/$DATABASE"; }

fallback_dir() {
  echo "/tmp/tally-pg-$(printf '%s' "$1" | sha256sum | cut -c1-16)"
}

# Whether the server's user can use DIR. With create=1, DIR is created (and handed to that user).
reachable() {
  local dir=$1 create=$2 p
  if [ "$create" = 1 ]; then
    (umask 022 && mkdir -p "$dir")
  fi
  is_root || return 0
  if [ "$create" = 1 ]; then
    if [ ! -e "$dir/PG_VERSION" ] && [ -z "$(ls -A "$dir")" ]; then
      chown "$RUN_AS:$RUN_AS" "$dir" && chmod 700 "$dir"
    fi
    as_pg test -r "$dir" -a -w "$dir" -a -x "$dir" 2>/dev/null
  else
    p=$dir
    while [ ! -e "$p" ]; do p=$(dirname "$p"); done
    as_pg test -x "$p" 2>/dev/null
  fi
}

# The data dir actually used for DIR: DIR itself, or its /tmp fallback (see the header).
resolve_dir() {
  local dir=$1 create=$2 fb
  if reachable "$dir" "$create"; then echo "$dir"; return; fi
  fb=$(fallback_dir "$dir")
  log "user $RUN_AS cannot reach $dir (see: namei -l $dir); the cluster lives in $fb instead"
  if [ "$create" = 1 ]; then
    (umask 022 && mkdir -p "$fb")
    if [ ! -e "$fb/PG_VERSION" ] && [ -z "$(ls -A "$fb")" ]; then
      chown "$RUN_AS:$RUN_AS" "$fb" && chmod 700 "$fb"
    fi
  fi
  echo "$fb"
}

# Serialises start/stop on one data dir (the lock file sits next to it).
lock() {
  local lockfile
  lockfile="$(dirname "$1")/.$(basename "$1").lock"
  exec 9>"$lockfile"
  flock -w 120 9 || die "another start/stop of $1 holds $lockfile"
}

# A killed postmaster can linger as a zombie until PID 1 reaps it (slow in some containers):
# pg_ctl counts it as running, and a new postmaster refuses to start while it exists.
zombie_postmaster() {
  local pid state
  pid=$(sed -n 1p "$1/postmaster.pid" 2>/dev/null || true)
  [ -n "$pid" ] || return 1
  state=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1 || true)
  [ "$state" = Z ]
}

running() {  # 0 when the server of data dir $1 runs
  [ -e "$1/postmaster.pid" ] || return 1
  ! zombie_postmaster "$1" || return 1
  as_pg "$PG_BIN/pg_ctl" -D "$1" status >/dev/null 2>&1
}

running_port() { sed -n 4p "$1/postmaster.pid"; }

show_log() {
  [ -r "$1" ] || return 0
  log "last lines of $1:"
  tail -n 20 "$1" >&2 || true
}

cmd_start() {
  local dir=$1 port=$2 sock logfile actual i
  [[ "$port" =~ ^[0-9]+$ ]] && [ "$port" -ge 1 ] && [ "$port" -le 65535 ] || die "bad port: $port"
  [ -x "$PG_BIN/initdb" ] || die "$PG_BIN/initdb not found (install the postgresql package: make deps)"
  if is_root && ! id "$RUN_AS" >/dev/null 2>&1; then
    die "running as root, but there is no user $RUN_AS to run the server"
  fi
  dir=$(resolve_dir "$dir" 1)
  case "$dir" in *"'"*|*'"'*|*'\'*) die "the data dir path may not contain quotes or backslashes: $dir";; esac
  lock "$dir"

  logfile=$dir/postgres.log
  if running "$dir"; then
    actual=$(running_port "$dir")
    [ "$actual" = "$port" ] \
      || die "the server of $dir already runs on port $actual, not $port; stop it first: $0 stop $1"
    log "already running: $dir on port $port"
  else
    if "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$port" -U "$SUPERUSER" -d postgres -t 2; then
      die "port $port on 127.0.0.1 is taken by another PostgreSQL server; pick another port"
    fi
    if [ ! -e "$dir/PG_VERSION" ]; then
      [ -z "$(ls -A "$dir")" ] || die "$dir is neither empty nor a PostgreSQL data dir; refusing to initdb over it"
      log "initdb $dir"
      as_pg "$PG_BIN/initdb" -D "$dir" -U "$SUPERUSER" -A trust -E UTF8 --locale=C >/dev/null \
        || die "initdb $dir failed"
    fi
    for i in $(seq 1 60); do
      zombie_postmaster "$dir" || break
      [ "$i" = 1 ] && log "waiting for the killed postmaster $(sed -n 1p "$dir/postmaster.pid") to be reaped"
      sleep 0.5
    done
    # The Unix socket goes into the data dir, unless that path is too long for a socket address.
    sock=$dir
    if [ $(( ${#sock} + 20 )) -gt 100 ]; then
      sock="$(fallback_dir "$dir").sock"
      mkdir -p "$sock"
      if is_root; then chown "$RUN_AS:$RUN_AS" "$sock"; fi
    fi
    log "starting $dir on 127.0.0.1:$port (log $logfile)"
    if ! as_pg "$PG_BIN/pg_ctl" -D "$dir" -l "$logfile" -w -t 60 \
         -o "-p $port -k '$sock' $SERVER_SETTINGS" start >/dev/null; then
      show_log "$logfile"
      die "could not start the server of $dir on port $port"
    fi
  fi

  for i in $(seq 1 60); do
    "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$port" -U "$SUPERUSER" -d postgres -t 1 && break
    [ "$i" = 60 ] && { show_log "$logfile"; die "the server on port $port does not accept connections"; }
    sleep 0.5
  done

  local psql=("$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U "$SUPERUSER" -d postgres -Atc)
  if [ -z "$("${psql[@]}" "SELECT 1 FROM pg_database WHERE datname = '$DATABASE'")" ]; then
    "${psql[@]}" "CREATE DATABASE $DATABASE" || die "could not create database $DATABASE"
  fi
  url_for "$port"
}

cmd_stop() {
  local dir
  dir=$(resolve_dir "$1" 0)
  stop_dir "$dir"
}

stop_dir() {
  local dir=$1
  if [ ! -e "$dir/postmaster.pid" ]; then
    log "not running: $dir"
    return 0
  fi
  lock "$dir"
  if ! running "$dir"; then
    log "not running: $dir (stale postmaster.pid)"
    return 0
  fi
  log "stopping $dir"
  as_pg "$PG_BIN/pg_ctl" -D "$dir" -m fast -w -t 60 stop >/dev/null \
    || as_pg "$PG_BIN/pg_ctl" -D "$dir" -m immediate -w -t 60 stop >/dev/null \
    || die "could not stop the server of $dir"
}

# Stop, then remove the data dir (DIR itself, or its /tmp fallback) and its lock file.
cmd_destroy() {
  local dir
  dir=$(resolve_dir "$1" 0)
  stop_dir "$dir"
  if [ -e "$dir" ]; then
    log "removing $dir"
    rm -rf -- "$dir" "$(dirname "$dir")/.$(basename "$dir").lock"
  fi
  rm -rf -- "$(fallback_dir "$dir").sock"
}

cmd_status() {
  local dir port
  dir=$(resolve_dir "$1" 0)
  if running "$dir"; then
    port=$(running_port "$dir")
    log "running: $dir on 127.0.0.1:$port (pid $(sed -n 1p "$dir/postmaster.pid"))"
    url_for "$port"
  else
    log "not running: $dir"
    return 3
  fi
}

[ $# -ge 2 ] || usage
cmd=$1
dir=$(realpath -m -- "$2")
case "$cmd" in
  start)  [ $# = 3 ] || usage; cmd_start "$dir" "$3" ;;
  stop)   [ $# = 2 ] || usage; cmd_stop "$dir" ;;
  destroy) [ $# = 2 ] || usage; cmd_destroy "$dir" ;;
  status) [ $# = 2 ] || usage; cmd_status "$dir" ;;
  *) usage ;;
esac
