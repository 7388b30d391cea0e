#!/usr/bin/env bash
# `make bench`: drain BENCH_EVENTS (default 1,000,000) small events pre-produced to an
# embedded broker (a separate `herald broker` process) with kcat and with Herald in the same
# run (`herald-bench run`: `herald run`'s wiring, stopped after the events), then again with Herald
# applying every event to a real Redis. Prints a Markdown
# table and writes it to var/bench/results.md. Not part of `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:?usage: $0 path/to/bin-dir (herald and herald-bench, release build)}
herald=$bin/herald
bench=$bin/herald-bench
events=${BENCH_EVENTS:-1000000}
partitions=${BENCH_PARTITIONS:-32}
roles=${BENCH_ROLES:-10000}
topic=auth_service_topic
dir=var/bench
rm -rf "$dir"; mkdir -p "$dir"

broker_pid=""
cleanup() {
  [ -n "$broker_pid" ] && kill "$broker_pid" 2>/dev/null || true
  scripts/redis.sh stop >/dev/null 2>&1 || true
  scripts/postgres.sh stop >/dev/null 2>&1 || true
}
trap cleanup EXIT

echo "JSON on the envelope path: Herald's parser against Foundation's..."
"$bench" json --records 200000 --rounds 5 >"$dir/json.md"
cat "$dir/json.md"

database_url=$(scripts/postgres.sh start)
export HERALD_DATABASE_URL=$database_url HERALD_DATABASE_AUTO_MIGRATE=true
# The consumer runs measure events, not mail: mail off (the mixed workload turns it on).
export HERALD_MAIL_ENABLED=false
echo "inbox inserts: batched against one autocommit INSERT per row..."
"$bench" inbox --rows 100000 --single-rows 5000 >"$dir/inbox.json"
cat "$dir/inbox.json"

echo "outbox relay: ${BENCH_OUTBOX_ROWS:-100000} pending rows with one and two relays, then latency at 200 rows/s..."
"$bench" outbox --rows "${BENCH_OUTBOX_ROWS:-100000}" --aggregates 10000 --rate 200 --seconds 30 >"$dir/outbox.json"
cat "$dir/outbox.json"
echo "outbox relay: 20,000 pending rows over 10 aggregates, one and two relays..."
"$bench" outbox --rows 20000 --aggregates 10 --throughput-only >"$dir/outbox-few.json"
cat "$dir/outbox-few.json"

"$herald" broker --partitions "$partitions" --topic bench_mixed --topic bench_mixed_none --topic bench_latency --topic bench_poison \
  --bootstrap-file "$dir/bootstrap" \
  >"$dir/broker.log" 2>&1 &
broker_pid=$!
for _ in $(seq 1 200); do [ -s "$dir/bootstrap" ] && break; sleep 0.05; done
bootstrap=$(cat "$dir/bootstrap")
echo "broker: $bootstrap ($partitions partitions)"

echo "generating $events events..."
python3 - "$events" "$roles" >"$dir/events.jsonl" <<'PY'
import sys
n, roles = int(sys.argv[1]), int(sys.argv[2])
out = sys.stdout
for i in range(n):
    role = i % roles
    out.write('r%d\t{"event_type":"RolePermissionsChanged","event_id":"b%d","role":"r%d","event_timestamp":%d}\n' % (role, i, role, 1700000000 + i))
PY
echo "producing with kcat (keyed by role, so the partitions fill evenly)..."
kcat -P -b "$bootstrap" -t "$topic" -K $'\t' -l "$dir/events.jsonl" -X linger.ms=20 -X batch.num.messages=10000
"$herald" lag --brokers "$bootstrap" --group bench-check --topic "$topic" --json >"$dir/watermarks.json"
python3 - "$dir/watermarks.json" "$events" <<'PY'
import json, sys
w = json.load(open(sys.argv[1])); n = int(sys.argv[2])
low = sum(p["low"] for p in w["partitions"]); high = sum(p["high"] for p in w["partitions"])
assert low == 0, f"the mock cluster dropped old batches (low watermarks sum {low}); use more partitions"
assert high == n, f"expected {n} records, found {high}"
print(f"topic holds {high} records, low watermarks all 0")
PY

measure() { # label, command...: prints "seconds peak_rss_kib"
  local label=$1; shift
  /usr/bin/time -f "%e %M" -o "$dir/$label.time" "$@" >"$dir/$label.out" 2>"$dir/$label.err"
  cat "$dir/$label.time"
}

echo "kcat draining..."
read -r kcat_s kcat_rss < <(measure kcat kcat -C -b "$bootstrap" -t "$topic" -o beginning -e -q)
kcat_count=$(wc -l <"$dir/kcat.out")
[ "$kcat_count" -eq "$events" ] || { echo "kcat read $kcat_count of $events"; exit 1; }

echo "kcat -G (a consumer-group member, like Herald) draining..."
read -r kcatg_s kcatg_rss < <(measure kcat-group kcat -b "$bootstrap" -G bench-kcat -o beginning -e -q "$topic")
kcatg_count=$(wc -l <"$dir/kcat-group.out")
[ "$kcatg_count" -eq "$events" ] || { echo "kcat -G read $kcatg_count of $events"; exit 1; }

echo "herald (no-op effects) draining..."
read -r noop_wall noop_rss < <(HERALD_KAFKA_BROKERS=$bootstrap HERALD_KAFKA_GROUP=bench-noop HERALD_LOG_LEVEL=warning \
  measure herald-noop "$bench" run --stop-after "$events" --discard-effects)
noop_json=$(grep '^{"events"' "$dir/herald-noop.out")

echo "herald (no-op effects, a 16 MiB memory budget) draining..."
read -r low_wall low_rss < <(HERALD_KAFKA_BROKERS=$bootstrap HERALD_KAFKA_GROUP=bench-lowmem HERALD_LOG_LEVEL=warning \
  HERALD_MEMORY_BUDGET=16MiB measure herald-lowmem "$bench" run --stop-after "$events" --discard-effects)
low_json=$(grep '^{"events"' "$dir/herald-lowmem.out")

redis_url=$(scripts/redis.sh start)
echo "herald (real Redis, inbox off) draining..."
read -r noinbox_wall noinbox_rss < <(HERALD_KAFKA_BROKERS=$bootstrap HERALD_KAFKA_GROUP=bench-noinbox HERALD_REDIS_URL=$redis_url \
  HERALD_LOG_LEVEL=warning measure herald-noinbox "$bench" run --stop-after "$events" --without-inbox)
noinbox_json=$(grep '^{"events"' "$dir/herald-noinbox.out")
redis-cli -u "$redis_url" flushall >/dev/null

echo "herald (real Redis and the PostgreSQL inbox: the full path) draining..."
read -r redis_wall redis_rss < <(HERALD_KAFKA_BROKERS=$bootstrap HERALD_KAFKA_GROUP=bench-redis HERALD_REDIS_URL=$redis_url \
  HERALD_LOG_LEVEL=warning measure herald-redis "$bench" run --stop-after "$events")
redis_json=$(grep '^{"events"' "$dir/herald-redis.out")
keys=$(redis-cli -u "$redis_url" dbsize)
[ "$keys" -eq "$roles" ] || { echo "expected $roles role keys in Redis, found $keys"; exit 1; }

# Memory under the largest records: 3 poison records of 1 MiB on each partition of a topic
# of its own, every one dead-lettered (each once) with the default budget; then the RSS of an
# idle `herald run` (the same topics, drained).
poison_per_partition=3
echo "producing $poison_per_partition records of 1 MiB (not JSON) to each of $partitions partitions..."
python3 -c "import sys; sys.stdout.write('x' * 1048576 + '\n')" >"$dir/poison.txt"
for p in $(seq 0 $((partitions - 1))); do
  for _ in $(seq 1 "$poison_per_partition"); do cat "$dir/poison.txt"; done |
    kcat -P -b "$bootstrap" -t bench_poison -p "$p" -X message.max.bytes=2000000 -X batch.num.messages=1
done
poison_events=$((partitions * poison_per_partition))
echo "herald (no-op effects, default budget) dead-lettering $poison_events records of 1 MiB..."
read -r poison_wall poison_rss < <(HERALD_KAFKA_BROKERS=$bootstrap HERALD_KAFKA_GROUP=bench-poison HERALD_LOG_LEVEL=error \
  HERALD_AUTH_TOPIC=bench_poison HERALD_USER_TOPIC=bench_mixed_none \
  measure herald-poison "$bench" run --stop-after "$poison_events" --discard-effects)
# Every record dead-lettered, each once: the dead-letter topic's end offsets add up to the
# number of records (the mock cluster keeps only the newest ~5 MB of a partition, so the
# letters themselves cannot all be read back).
"$herald" lag --brokers "$bootstrap" --group bench-check --topic bench_poison.dlq --json >"$dir/poison-letters.json"
poison_letters=$(python3 - "$dir/poison-letters.json" "$poison_events" <<'PY'
import json, sys
w = json.load(open(sys.argv[1])); n = sum(p["high"] for p in w["partitions"])
assert n == int(sys.argv[2]), f"{n} dead letters for {sys.argv[2]} records, expected each once"
print(n)
PY
)
echo "dead letters: $poison_letters, each once"
echo "idle RSS: herald run with nothing to consume..."
HERALD_KAFKA_BROKERS=$bootstrap HERALD_KAFKA_GROUP=bench-poison HERALD_LOG_LEVEL=info HERALD_REDIS_URL=$redis_url \
  HERALD_AUTH_TOPIC=bench_poison HERALD_USER_TOPIC=bench_mixed_none "$herald" run >"$dir/idle.out" 2>&1 &
idle_pid=$!
for _ in $(seq 1 600); do grep -q "partitions assigned" "$dir/idle.out" && break; sleep 0.1; done
sleep 5 # idle: its fetches and the lag monitor turn, nothing else
idle_rss=$(awk '/^VmRSS/{print $2}' "/proc/$idle_pid/status")
kill -TERM "$idle_pid"; wait "$idle_pid" || true
echo "idle RSS: $idle_rss KiB"

# The mixed workload: 90% role revocations, 10% registrations (a recipient row and a
# welcome mail queued), on a topic of its own, drained through the full path. With
# BENCH_BASELINE_BIN (the bin directory of another build, say main before a change) the
# same topic is drained by that build too, side by side in this run.
mixed_events=$(( events / 5 ))
echo "generating $mixed_events mixed events (10% registrations with a welcome mail)..."
python3 - "$mixed_events" "$roles" >"$dir/mixed.jsonl" <<'PY'
import sys
n, roles = int(sys.argv[1]), int(sys.argv[2])
out = sys.stdout
for i in range(n):
    if i % 10 == 0:
        out.write('u%d\t{"event_type":"UserRegistered","event_id":"m%d","user_id":"u%d","username":"user%d","email":"u%d@example.com","event_timestamp":%d}\n' % (i, i, i, i, i, 1700000000 + i))
    else:
        role = i % roles
        out.write('r%d\t{"event_type":"RolePermissionsChanged","event_id":"m%d","role":"r%d","event_timestamp":%d}\n' % (role, i, role, 1700000000 + i))
PY
kcat -P -b "$bootstrap" -t bench_mixed -K $'\t' -l "$dir/mixed.jsonl" -X linger.ms=20 -X batch.num.messages=10000
"$herald" lag --brokers "$bootstrap" --group bench-check --topic bench_mixed --json >"$dir/mixed-watermarks.json"
python3 - "$dir/mixed-watermarks.json" "$mixed_events" <<'PY'
import json, sys
w = json.load(open(sys.argv[1])); n = int(sys.argv[2])
low = sum(p["low"] for p in w["partitions"]); high = sum(p["high"] for p in w["partitions"])
assert low == 0 and high == n, f"bench_mixed holds {high - low} of {n} records (low watermarks sum {low})"
PY
mixed_run() { # label, bin dir
  local label=$1 dir_bin=$2
  rm -rf "$dir/mail-$label"; mkdir -p "$dir/mail-$label"
  redis-cli -u "$redis_url" flushall >/dev/null
  # A fresh schema: var/postgres outlives the run, and an inbox that already holds these
  # event ids from an earlier run treats every registration as a duplicate (up to 3× faster).
  psql "$database_url" -q -c "SET client_min_messages = warning" -c "DROP SCHEMA IF EXISTS bench_mixed_$label CASCADE"
  HERALD_KAFKA_BROKERS=$bootstrap HERALD_KAFKA_GROUP=bench-mixed-$label HERALD_REDIS_URL=$redis_url HERALD_LOG_LEVEL=warning \
    HERALD_USER_TOPIC=bench_mixed HERALD_AUTH_TOPIC=bench_mixed_none HERALD_DATABASE_SCHEMA=bench_mixed_$label \
    HERALD_MAIL_ENABLED=true HERALD_SMTP_URL="file://$dir/mail-$label" HERALD_MAIL_FROM="Bench <noreply@example.com>" \
    HERALD_LINK_BASE_URL=https://auth.example.com \
    measure "mixed-$label" "$dir_bin/herald-bench" run --stop-after "$mixed_events" >/dev/null
  grep '^{"events"' "$dir/mixed-$label.out"
}
echo "herald, mixed workload, full path (this build) draining..."
mixed_json=$(mixed_run this "$bin")
baseline_json='null'
if [ -n "${BENCH_BASELINE_BIN:-}" ]; then
  echo "herald, mixed workload, full path (baseline build $BENCH_BASELINE_BIN) draining..."
  baseline_json=$(mixed_run baseline "$BENCH_BASELINE_BIN")
fi
echo "end-to-end latency: 1,000 role revocations/s for 20 s, produce → Redis key set (full path)..."
redis-cli -u "$redis_url" flushall >/dev/null
# Herald's defaults (fetch.wait.max.ms 10): librdkafka's mock cluster holds a fetch for the
# whole fetch.wait.max.ms when the partition had nothing new at request time, where a broker
# answers as soon as fetch.min.bytes arrived; with librdkafka's 500 ms: p50 264 ms, p99 503 ms.
HERALD_KAFKA_BROKERS=$bootstrap HERALD_KAFKA_GROUP=bench-latency HERALD_REDIS_URL=$redis_url HERALD_LOG_LEVEL=error \
  HERALD_AUTH_TOPIC=bench_latency HERALD_USER_TOPIC=bench_mixed_none \
  "$bench" latency --rate 1000 --seconds 20 >"$dir/latency.out" 2>"$dir/latency.err"
latency_json=$(grep '^{"rate"' "$dir/latency.out")
echo "$latency_json"
python3 - "$mixed_events" "$mixed_json" "$baseline_json" "$noinbox_json" "$latency_json" >"$dir/mixed.md" <<'PY'
import json, sys
n = int(sys.argv[1]); this = json.loads(sys.argv[2]); base = json.loads(sys.argv[3]); ni = json.loads(sys.argv[4])
lat = json.loads(sys.argv[5])
print(f"Mixed workload: {n:,} events, 90% role revocations and 10% registrations (recipient + welcome mail queued), full path:")
print()
print("| consumer | events/s | vs Redis-only role events (same run) |")
print("|---|---:|---:|")
def row(name, r):
    print(f"| {name} | {r['events_per_second']:,.0f} | {r['events_per_second'] / ni['events_per_second']:.2f}× |")
row("herald (this build)", this)
if base:
    row("herald (baseline build)", base)
    print()
    print(f"This build drains the mixed workload {this['events_per_second'] / base['events_per_second']:.2f}× as fast as the baseline.")
print()
print(f"End-to-end latency, produce → Redis key set, {lat['events']:,} role revocations at {lat['achieved_rate']} events/s (full path):")
print()
print("| p50 | p99 | max |")
print("|---:|---:|---:|")
print(f"| {lat['p50_ms']} ms | {lat['p99_ms']} ms | {lat['max_ms']} ms |")
PY
cat "$dir/mixed.md"

python3 - "$events" "$kcat_s" "$kcat_rss" "$noop_wall" "$noop_rss" "$noop_json" "$redis_wall" "$redis_rss" "$redis_json" "$partitions" "$roles" "$low_wall" "$low_rss" "$low_json" "$kcatg_s" "$kcatg_rss" "$noinbox_wall" "$noinbox_rss" "$noinbox_json" "$dir/inbox.json" "$poison_events" "$poison_rss" "$idle_rss" >"$dir/results.md" <<'PY'
import json, sys
n = int(sys.argv[1]); kcat_s = float(sys.argv[2]); kcat_rss = int(sys.argv[3])
noop_wall = float(sys.argv[4]); noop_rss = int(sys.argv[5]); noop = json.loads(sys.argv[6])
redis_wall = float(sys.argv[7]); redis_rss = int(sys.argv[8]); red = json.loads(sys.argv[9])
partitions, roles = sys.argv[10], sys.argv[11]
low_wall = float(sys.argv[12]); low_rss = int(sys.argv[13]); low = json.loads(sys.argv[14])
kg_s = float(sys.argv[15]); kg_rss = int(sys.argv[16])
ni_wall = float(sys.argv[17]); ni_rss = int(sys.argv[18]); ni = json.loads(sys.argv[19])
inbox = json.load(open(sys.argv[20]))
poison_events, poison_rss, idle_rss = int(sys.argv[21]), int(sys.argv[22]), int(sys.argv[23])
kcat_rate = n / kcat_s
mib = lambda kib: kib / 1024
print(f"{n:,} events of ~100 bytes, {partitions} partitions, embedded broker in its own process, same run.\n")
print("| consumer | wall s | drain rate, msgs/s | drain rate vs kcat -C | peak RSS |")
print("|---|---:|---:|---:|---:|")
def row(name, wall, rss, own=None):
    rate = own if own else n / wall
    print(f"| {name} | {wall:.2f} | {rate:,.0f} | {rate/kcat_rate:.2f}× | {mib(rss):.1f} MiB |")
row("kcat -C -e (baseline: no group, partitions assigned directly)", kcat_s, kcat_rss)
row("kcat -G -e (baseline: consumer-group member)", kg_s, kg_rss)
row("herald, no-op effects", noop_wall, noop_rss, noop["events_per_second"])
row("herald, no-op effects, HERALD_MEMORY_BUDGET=16MiB", low_wall, low_rss, low["events_per_second"])
row(f"herald, real Redis ({roles} role keys), inbox off", ni_wall, ni_rss, ni["events_per_second"])
row(f"herald, real Redis and the PostgreSQL inbox (full path)", redis_wall, redis_rss, red["events_per_second"])
print()
print("Drain rate: for kcat, events / wall time (process start to exit); for Herald, its own")
print("count from the first processed event to the last. Wall time also includes joining the")
print("group (the mock coordinator waits ~3 s before the first assignment, for kcat -G and Herald")
print("alike) and, for Herald, a clean shutdown (drain, commit, leave the group).")
print()
print(f"The inbox costs {100 * (1 - red['events_per_second'] / ni['events_per_second']):.0f}% of the Redis-only rate.")
print()
print("Inbox inserts on the same PostgreSQL server (local, fsync on):")
print()
print("| method | rows/s |")
print("|---|---:|")
print(f"| batched: one multi-row INSERT (unnest) per {inbox['batch']} rows, one transaction each | {inbox['batched_rows_per_second']:,} |")
print(f"| one autocommit INSERT per row | {inbox['single_rows_per_second']:,} |")
print(f"| ratio | {inbox['batched_rows_per_second'] / inbox['single_rows_per_second']:.0f}× |")
print()
print("Memory (default HERALD_MEMORY_BUDGET, 32 MiB):")
print()
print("| measure | peak RSS | target |")
print("|---|---:|---|")
print(f"| draining the {n:,} events above, no-op effects | {mib(noop_rss):.1f} MiB | ≤ 64 MiB at ≥ 0.8× kcat -C |")
print(f"| dead-lettering {poison_events} records of 1 MiB, {partitions} partitions, each once | {mib(poison_rss):.1f} MiB | ≤ budget + 40 MiB = 72 MiB |")
print(f"| idle `herald run` (RSS once started) | {mib(idle_rss):.1f} MiB | reported |")
PY
python3 - "$dir/outbox.json" "$dir/outbox-few.json" >>"$dir/results.md" <<'PY'
import json, sys
o = json.load(open(sys.argv[1]))
print()
print(f"Outbox relay ({o['rows']:,} pending rows over {o['aggregates']:,} aggregates, batches of {o['batch']}, embedded broker in-process):")
print()
print("| measure | value |")
print("|---|---:|")
print(f"| one relay | {o['one_relay_rows_per_second']:,} rows/s |")
print(f"| two relays | {o['two_relays_rows_per_second']:,} rows/s (split {o['two_relays_split'][0]:,} / {o['two_relays_split'][1]:,}) |")
print(f"| commit → acknowledged at {o['latency_achieved_rate']} rows/s, p50 | {o['latency_p50_ms']} ms |")
print(f"| same, p99 | {o['latency_p99_ms']} ms |")
print(f"| same, max ({o['latency_samples']:,} rows) | {o['latency_max_ms']} ms |")
f = json.load(open(sys.argv[2]))
print(f"| one relay, {f['rows']:,} rows over {f['aggregates']} aggregates | {f['one_relay_rows_per_second']:,} rows/s |")
print(f"| two relays, same | {f['two_relays_rows_per_second']:,} rows/s (split {f['two_relays_split'][0]:,} / {f['two_relays_split'][1]:,}) |")
PY
{ echo; cat "$dir/mixed.md"; echo; cat "$dir/json.md"; } >>"$dir/results.md"
cat "$dir/results.md"
