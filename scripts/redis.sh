#!/usr/bin/env bash
# A local Redis for `make run` and `make bench`, on 127.0.0.1 and a free port, data under var/redis.
# Usage: scripts/redis.sh start|stop|url
set -euo pipefail
cd "$(dirname "$0")/.."
dir=var/redis
case "${1:-}" in
  start)
    mkdir -p "$dir"
    if [ -f "$dir/redis.pid" ] && kill -0 "$(cat "$dir/redis.pid")" 2>/dev/null; then
      cat "$dir/url"; exit 0
    fi
    port=$(scripts/free-port.sh)
    redis-server --bind 127.0.0.1 --port "$port" --dir "$PWD/$dir" --pidfile "$PWD/$dir/redis.pid" \
      --logfile "$PWD/$dir/redis.log" --daemonize yes --save "" --appendonly no >/dev/null
    for _ in $(seq 1 100); do
      redis-cli -h 127.0.0.1 -p "$port" ping >/dev/null 2>&1 && break
      sleep 0.05
    done
    redis-cli -h 127.0.0.1 -p "$port" ping >/dev/null || { echo "redis did not start; see $dir/redis.log" >&2; exit 1; }
    echo "redis://127.0.0.1:$port/0" > "$dir/url"
    cat "$dir/url"
    ;;
  stop)
    if [ -f "$dir/redis.pid" ]; then
      pid=$(cat "$dir/redis.pid")
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
      rm -f "$dir/redis.pid" "$dir/url"
    fi
    ;;
  url) cat "$dir/url" ;;
  *) echo "usage: $0 start|stop|url" >&2; exit 2 ;;
esac
