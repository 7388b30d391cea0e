#!/usr/bin/env bash
# `make bench`, mail part: the courier sending BENCH_MAILS (default 10,000) queued
# password-reset mails (token minted and stored in Redis, templates rendered, SMTP) to
# Postfix's smtp-sink on a free loopback port, once with connection reuse and once with a new
# connection per mail; the same two over implicit TLS (smtps://, stunnel in front of the
# sink, a self-signed certificate the run trusts); then the queue's latency from queued to
# sent at a steady BENCH_MAIL_RATE (default 100) mails/s for BENCH_MAIL_SECONDS (default 30).
# Prints a Markdown table and writes it to var/bench-mail/results.md.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:?usage: $0 path/to/bin-dir (herald-bench, release build)}
bench=$bin/herald-bench
mails=${BENCH_MAILS:-10000}
rate=${BENCH_MAIL_RATE:-100}
seconds=${BENCH_MAIL_SECONDS:-30}
workers=${BENCH_MAIL_WORKERS:-4}
dir=var/bench-mail
rm -rf "$dir"; mkdir -p "$dir"
sink=$(command -v smtp-sink || echo /usr/sbin/smtp-sink)
[ -x "$sink" ] || { echo "smtp-sink not found: install Debian's postfix (scripts/deps.sh bench)"; exit 1; }

sink_pid=""
tunnel_pid=""
cleanup() {
  [ -n "$sink_pid" ] && kill "$sink_pid" 2>/dev/null || true
  [ -n "$tunnel_pid" ] && kill "$tunnel_pid" 2>/dev/null || true
  scripts/redis.sh stop >/dev/null 2>&1 || true
  scripts/postgres.sh stop >/dev/null 2>&1 || true
}
trap cleanup EXIT

HERALD_DATABASE_URL=$(scripts/postgres.sh start)
HERALD_REDIS_URL=$(scripts/redis.sh start)
export HERALD_DATABASE_URL HERALD_REDIS_URL HERALD_TEMPLATES_DIR=Templates
port=$(scripts/free-port.sh)
# Backlog 256; the sink accepts every message and discards it. As root it must drop privileges.
user_opt=()
[ "$(id -u)" -eq 0 ] && user_opt=(-u nobody)
"$sink" "${user_opt[@]}" "127.0.0.1:$port" 256 >"$dir/sink.log" 2>&1 &
sink_pid=$!
for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done
kill -0 "$sink_pid" 2>/dev/null || { echo "smtp-sink did not start:"; cat "$dir/sink.log"; exit 1; }
url="smtp://127.0.0.1:$port"
echo "smtp-sink on $url; $mails mails, $workers sender workers"

echo "courier, connection reuse..."
"$bench" mail --mode throughput --count "$mails" --smtp-url "$url" --workers "$workers" | tee "$dir/reuse.json"
echo "courier, a new connection per mail..."
"$bench" mail --mode throughput --count "$mails" --smtp-url "$url" --workers "$workers" --no-reuse | tee "$dir/fresh.json"
# Implicit TLS: stunnel terminates TLS and forwards to the sink.
tls_port=$(scripts/free-port.sh)
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost -addext "subjectAltName=IP:127.0.0.1" \
  -keyout "$dir/key.pem" -out "$dir/cert.pem" >"$dir/openssl.log" 2>&1
cat >"$dir/stunnel.conf" <<CONF
foreground = yes
pid =
[smtps]
accept = 127.0.0.1:$tls_port
connect = 127.0.0.1:$port
cert = $dir/cert.pem
key = $dir/key.pem
CONF
stunnel "$dir/stunnel.conf" >"$dir/stunnel.log" 2>&1 &
tunnel_pid=$!
for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$tls_port") 2>/dev/null && break; sleep 0.05; done
tls_url="smtps://127.0.0.1:$tls_port"
echo "courier over TLS ($tls_url), connection reuse..."
HERALD_SMTP_CA_FILE="$dir/cert.pem" "$bench" mail --mode throughput --count "$mails" --smtp-url "$tls_url" \
  --workers "$workers" | tee "$dir/tls-reuse.json"
echo "courier over TLS, a new connection (and TLS handshake) per mail..."
HERALD_SMTP_CA_FILE="$dir/cert.pem" "$bench" mail --mode throughput --count "$mails" --smtp-url "$tls_url" \
  --workers "$workers" --no-reuse | tee "$dir/tls-fresh.json"

echo "courier, steady $rate mails/s for $seconds s..."
"$bench" mail --mode steady --rate "$rate" --duration "$seconds" --smtp-url "$url" --workers "$workers" | tee "$dir/steady.json"

python3 - "$dir" >"$dir/results.md" <<'PY'
import json, sys
d = sys.argv[1]
reuse = json.load(open(f"{d}/reuse.json")); fresh = json.load(open(f"{d}/fresh.json")); steady = json.load(open(f"{d}/steady.json"))
tls_reuse = json.load(open(f"{d}/tls-reuse.json")); tls_fresh = json.load(open(f"{d}/tls-fresh.json"))
print(f"{reuse['mails']:,} queued password-reset mails (token minted and its hash stored in Redis, templates")
print(f"rendered, sent over SMTP) to Postfix's smtp-sink on loopback, {reuse['workers']} sender workers, same run.\n")
print("| courier | seconds | mails/s |")
print("|---|---:|---:|")
print(f"| connection reuse (one SMTP connection per worker) | {reuse['seconds']:.2f} | {reuse['mails_per_second']:,.0f} |")
print(f"| a new connection per mail (baseline) | {fresh['seconds']:.2f} | {fresh['mails_per_second']:,.0f} |")
print(f"| ratio | | {reuse['mails_per_second'] / fresh['mails_per_second']:.2f}× |")
print(f"| implicit TLS (smtps://, stunnel in front of the sink), connection reuse | {tls_reuse['seconds']:.2f} | {tls_reuse['mails_per_second']:,.0f} |")
print(f"| implicit TLS, a new connection and TLS handshake per mail (baseline) | {tls_fresh['seconds']:.2f} | {tls_fresh['mails_per_second']:,.0f} |")
print(f"| ratio over TLS | | {tls_reuse['mails_per_second'] / tls_fresh['mails_per_second']:.2f}× |")
print()
print(f"Steady load: {steady['rate']} mails/s for {steady['seconds']} s ({steady['mails']:,} mails), each queued as the inbox")
print("does (a committed row, then the courier's doorbell). Latency from `created_at` (queued) to `sent_at`:")
print()
print("| p50 | p99 | max |")
print("|---:|---:|---:|")
print(f"| {steady['p50_ms']:.1f} ms | {steady['p99_ms']:.1f} ms | {steady['max_ms']:.1f} ms |")
PY
cat "$dir/results.md"
