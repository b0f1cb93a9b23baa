#!/bin/sh
# A throwaway PostgreSQL server for the tests, from Debian's postgresql
# package: a new cluster in a temporary directory, run as a user that is not
# root (postgres, when the tests run as root), reachable only through a Unix
# socket in that directory, trusting its local user.
#   postgres.sh start STATE   start it; STATE/url is the URL to connect with
#   postgres.sh stop STATE    stop it and remove everything it wrote
#   postgres.sh pause STATE   stop it, keeping its data (a database outage)
#   postgres.sh resume STATE  start it again on the same data
set -eu
cmd=$1
state=$2
bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
  echo "postgres.sh: the PostgreSQL server is not installed (apt-get install postgresql)" >&2
  exit 1
fi
as=""
[ "$(id -u)" -ne 0 ] || as="runuser -u postgres --"

server_up() {
  # fsync off: a test's database need not survive the machine.
  $as "$bindir/pg_ctl" -D "$1/data" -l "$1/server.log" -w -t 60 \
    -o "-c listen_addresses='' -k $1 -c fsync=off -c max_connections=300" start >/dev/null \
    || { tail -n 30 "$1/server.log" >&2; exit 1; }
}

case $cmd in
  start)
    # A server an interrupted run left behind goes first.
    [ ! -f "$state/dir" ] || sh "$0" stop "$state"
    mkdir -p "$state"
    dir=$(mktemp -d /tmp/agentwire-pg-XXXXXX)
    [ -z "$as" ] || chown postgres "$dir"
    $as "$bindir/initdb" -D "$dir/data" -U agentwire --auth=trust -E UTF8 --locale=C.UTF-8 \
      --no-sync >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
    server_up "$dir"
    echo "$dir" >"$state/dir"
    echo "postgresql://agentwire@/postgres?host=$dir" >"$state/url"
    ;;
  pause)
    $as "$bindir/pg_ctl" -D "$(cat "$state/dir")/data" -m fast -w stop >/dev/null
    ;;
  resume)
    server_up "$(cat "$state/dir")"
    ;;
  stop)
    [ -f "$state/dir" ] || exit 0
    dir=$(cat "$state/dir")
    $as "$bindir/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$dir" "$state"
    ;;
  *)
    echo "usage: postgres.sh start|stop|pause|resume STATE" >&2
    exit 2
    ;;
esac
