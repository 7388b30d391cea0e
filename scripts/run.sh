#!/usr/bin/env bash
# `make run`: a local Redis (unless HERALD_REDIS_URL is set), then Herald with the embedded
# broker (unless HERALD_KAFKA_BROKERS is set). Ctrl-C stops Herald, then Redis.
set -euo pipefail
cd "$(dirname "$0")/.."
herald="$1"
started_redis=""
if [ -z "${HERALD_REDIS_URL:-}" ]; then
  HERALD_REDIS_URL=$(scripts/redis.sh start)
  export HERALD_REDIS_URL
  started_redis=1
  echo "local Redis: $HERALD_REDIS_URL   (redis-cli -u $HERALD_REDIS_URL)"
fi
cleanup() { [ -n "$started_redis" ] && scripts/redis.sh stop; }
trap cleanup EXIT
"$herald" run &
pid=$!
trap 'kill -TERM $pid 2>/dev/null' INT TERM
wait $pid || status=$?
wait $pid 2>/dev/null || true
exit "${status:-0}"
