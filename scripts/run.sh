#!/usr/bin/env bash
# `make run`: a local Redis and PostgreSQL (unless HERALD_REDIS_URL / HERALD_DATABASE_URL are
# set), `herald migrate`, then Herald with the embedded broker (HERALD_KAFKA_BROKERS=embedded,
# unless HERALD_KAFKA_BROKERS is set), writing mail as .eml files into var/mail (unless
# HERALD_SMTP_URL is set). Ctrl-C stops Herald, then the local services; the script exits with
# Herald's status (0 after a clean shutdown).
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
started_postgres=""
if [ -z "${HERALD_DATABASE_URL:-}" ]; then
  HERALD_DATABASE_URL=$(scripts/postgres.sh start)
  export HERALD_DATABASE_URL
  started_postgres=1
  echo "local PostgreSQL: $HERALD_DATABASE_URL   (psql $HERALD_DATABASE_URL)"
fi
# Kafka: the embedded broker (in memory, development only) unless a cluster is given.
export HERALD_KAFKA_BROKERS="${HERALD_KAFKA_BROKERS:-embedded}"
# Mail: written to var/mail as .eml files, links pointing at a local API.
export HERALD_SMTP_URL="${HERALD_SMTP_URL:-file://var/mail}"
export HERALD_MAIL_FROM="${HERALD_MAIL_FROM:-Herald (development) <no-reply@herald.localhost>}"
export HERALD_SUPPORT_EMAIL="${HERALD_SUPPORT_EMAIL:-support@herald.localhost}"
export HERALD_LINK_BASE_URL="${HERALD_LINK_BASE_URL:-http://localhost:8000}"
echo "mail: $HERALD_SMTP_URL, from $HERALD_MAIL_FROM, support $HERALD_SUPPORT_EMAIL, links $HERALD_LINK_BASE_URL"
echo "      (herald mail list; herald publish --example PasswordResetRequested)"
cleanup() {
  [ -n "$started_redis" ] && scripts/redis.sh stop
  [ -n "$started_postgres" ] && scripts/postgres.sh stop
  return 0
}
trap cleanup EXIT
"$herald" migrate
"$herald" run &
pid=$!
# Ctrl-C reaches Herald directly (same process group); a SIGTERM to this script is passed on.
# Either way Herald drains and exits by itself: wait for it and exit with its status, so that
# a clean interrupt-driven shutdown is a success (make prints no "Error 130").
trap 'kill -TERM $pid 2>/dev/null || true' TERM
trap ':' INT
while :; do
  # `wait` also returns (128+n) when a trapped signal arrives: wait again until Herald is gone
  # (an exited, unreaped Herald still answers kill -0).
  if wait "$pid"; then status=0; else status=$?; fi
  kill -0 "$pid" 2>/dev/null || break
done
exit "$status"
