#!/usr/bin/env bash
# A local PostgreSQL for `make run` and `make bench`: a cluster under var/postgres, on
# 127.0.0.1 and a free port, run as a non-root user (the `postgres` system user when we are
# root). Usage: scripts/postgres.sh start|stop|url
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$PWD/var/postgres
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -n "$bin" ] || { echo "PostgreSQL server binaries not found (apt-get install postgresql)" >&2; exit 1; }
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
case "${1:-}" in
  start)
    mkdir -p "$dir"
    if [ -f "$dir/url" ] && as_owner "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
      cat "$dir/url"; exit 0
    fi
    [ "$(id -u)" -eq 0 ] && chown postgres "$dir"
    if [ ! -f "$dir/data/PG_VERSION" ]; then
      as_owner "$bin/initdb" -D "$dir/data" -U herald --auth=trust -E UTF8 --no-instructions >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; exit 1; }
    fi
    port=$(scripts/free-port.sh)
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 30 \
      -o "-p $port -k $dir -c listen_addresses=127.0.0.1" start >/dev/null \
      || { tail -20 "$dir/postgres.log" >&2; exit 1; }
    echo "postgresql://herald@127.0.0.1:$port/postgres" | tee "$dir/url.tmp" >/dev/null
    mv "$dir/url.tmp" "$dir/url"
    cat "$dir/url"
    ;;
  stop)
    if [ -f "$dir/data/PG_VERSION" ]; then
      as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
      rm -f "$dir/url"
    fi
    ;;
  url) cat "$dir/url" ;;
  *) echo "usage: $0 start|stop|url" >&2; exit 2 ;;
esac
