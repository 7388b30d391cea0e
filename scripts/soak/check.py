"""The soak's checker. It reads only the servers' state (Redis, PostgreSQL, the Kafka topics,
the messages the SMTP server accepted, `herald lag --json`) and the logs (what was produced,
the outbox transactions, the faults, Herald's own log files), never Herald's internals, and
reports every violation of the README's promises.

Usage on its own, against a run whose servers are still up (the driver calls it):
    check.py RUN_DIR        (RUN_DIR/context.json names the servers)
"""

import base64
import collections
import datetime
import email
import email.policy
import hashlib
import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from services import read_json_lines  # noqa: E402

DAY = 86400
ROLE_TTL = 8 * DAY
USER_TTL = 7 * DAY
LINK_KINDS = {"verify_email": ("email_verification_token:", 24 * 3600), "password_reset": ("reset_password_token:", 15 * 60),
              "email_change_confirm": ("email_change_token:", 24 * 3600)}
MAX_AGE = {"password_reset": 3600, "verify_email": 3600, "email_change_confirm": 3600, "welcome": DAY,
           "password_changed": DAY, "email_change_requested": DAY, "email_changed": DAY}
RATE_LIMITS = {"password_reset": (5, 3600), "verify_email": (5, 3600), "email_change_confirm": (5, 3600)}
USER_ADDRESSED = {"password_reset", "password_changed"}
ROLE_TYPES = {"RolePermissionsChanged", "RoleSecurityLevelChanged", "RoleDeleted"}
USER_REVOCATIONS = {"UserRolesChanged", "UserSessionsRevoked", "UserDeleted"}
PROVENANCE = ["herald.original.topic", "herald.original.partition", "herald.original.offset", "herald.original.timestamp",
              "herald.consumer.group", "herald.error.class", "herald.error.message", "herald.attempts", "herald.failed.at"]
RFC3339_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
TOKEN_IN_LINK = re.compile(r"[?&]token=([A-Za-z0-9_-]{43})(?![A-Za-z0-9_-])")
RUN_OF_TOKEN_CHARACTERS = re.compile(rb"[A-Za-z0-9_-]{43,}")
# The checks, by the category their violations are reported under.
CATEGORIES = ["revocations", "recipients", "mail", "tokens", "dlq", "outbox", "lag", "process"]


def parse_time_ms(text):
    """RFC 3339 as the workload writes it (and Herald's offsets) to milliseconds."""
    t = text.replace("z", "Z").replace(" ", "T")
    if t.endswith("Z"):
        t = t[:-1] + "+00:00"
    if "+" not in t[10:] and "-" not in t[10:]:
        t += "+00:00"
    main, _, rest = t.partition(".")
    if rest:
        digits = re.match(r"\d+", rest).group(0)
        zone = rest[len(digits):]
        fraction = (digits + "000")[:3]
    else:
        zone = main[19:]
        main = main[:19]
        fraction = "000"
    dt = datetime.datetime.fromisoformat(main[:19] + zone)
    return int(dt.timestamp()) * 1000 + int(fraction)


def event_time_ms(body, fallback_ms):
    if body.get("occurred_at") is not None:
        return parse_time_ms(body["occurred_at"])
    if body.get("event_timestamp") is not None:
        text = repr(body["event_timestamp"]) if isinstance(body["event_timestamp"], float) else str(body["event_timestamp"])
        whole, _, frac = text.partition(".")
        return int(whole) * 1000 + int((frac + "000")[:3])
    if body.get("created_at") is not None:
        return parse_time_ms(body["created_at"])
    return fallback_ms


class Checker:
    def __init__(self, context):
        self.ctx = context
        self.run_dir = context["run_dir"]
        self.violations = []
        self.explained = []
        self.stats = collections.OrderedDict()
        self.now = time.time()

    def violation(self, category, message):
        self.violations.append({"category": category, "message": message})

    # -- logs -------------------------------------------------------------------------

    def load(self):
        self.records = {}
        delivered = {}
        failed = {}
        for line in read_json_lines(os.path.join(self.run_dir, "events.jsonl")):
            if line["t"] == "produce":
                line["value"] = base64.b64decode(line["value_b64"])
                try:
                    line["body"] = json.loads(line["value"])
                except ValueError:
                    line["body"] = None
                self.records[line["rec"]] = line
            elif line["t"] == "delivered":
                delivered[line["rec"]] = line
            elif line["t"] == "failed":
                failed[line["rec"]] = line
        for rec, d in delivered.items():
            if rec in self.records:
                r = self.records[rec]
                r.update(partition=d["partition"], offset=d["offset"], ts=r["timestamp"], delivered=True)
        self.undelivered = [r for r in self.records.values() if not r.get("delivered")]
        if self.undelivered:
            self.violation("harness", f"{len(self.undelivered)} produced record(s) never acknowledged by the broker "
                           f"(e.g. rec {self.undelivered[0]['rec']}); they are left out of the checks")
        self.delivered = [r for r in self.records.values() if r.get("delivered")]
        # One entry per event id: the first delivered record (later ones are its duplicates).
        self.events = {}
        for r in sorted(self.delivered, key=lambda r: r["rec"]):
            if r["kind"] != "event":
                continue
            r["time_ms"] = event_time_ms(r["body"], r["ts"])
            if r["id"] not in self.events:
                self.events[r["id"]] = r
        self.poison = [r for r in self.delivered if r["kind"] == "poison"]
        lines = read_json_lines(os.path.join(self.run_dir, "faults.jsonl"))
        self.faults = [f for f in lines if f["t"] == "fault"]
        self.exits = [f for f in lines if f["t"] == "exit"]
        self.kills = sorted((f["at"], f["instance"]) for f in self.faults if f["kind"] == "kill9" and f["phase"] == "start")
        self.outbox_failures = sorted(
            [(at, f"kill -9 of herald-{instance}") for at, instance in self.kills]
            + [(f["at"], f"PostgreSQL stopped ({f.get('mode')})") for f in self.faults
               if f["kind"] == "postgres" and f["phase"] == "start"])
        self.outbox_log = read_json_lines(os.path.join(self.run_dir, "outbox.jsonl"))
        self.load_herald_logs()

    # Herald's own log lines that say a partition's progress was not committed, so whoever
    # gets the partition next reads those records again (at-least-once delivery).
    REDELIVERY_CAUSES = (
        "offset commit failed", "partition did not finish in time; abandoning its in-flight records",
        "partition waits on a dependency; abandoning its in-flight records (redelivered)", "rebalance failed",
        "partition work did not stop after cancellation; its records are not committed")

    def load_herald_logs(self):
        self.redelivery_causes = []
        self.dead_lettered = collections.defaultdict(list)
        for name in sorted(os.listdir(self.run_dir)):
            if not (name.startswith("herald-") and name.endswith(".log")):
                continue
            instance = name[len("herald-"):-len(".log")]
            with open(os.path.join(self.run_dir, name), errors="replace") as f:
                for line in f:
                    if not line.startswith("{"):
                        continue
                    try:
                        entry = json.loads(line)
                    except ValueError:
                        continue
                    message = entry.get("msg", "")
                    if message in self.REDELIVERY_CAUSES:
                        detail = ", ".join(f"{k} {entry[k]}" for k in ("reason", "error", "topic", "partition") if k in entry)
                        self.redelivery_causes.append((parse_time_ms(entry["ts"]) / 1000, instance, f"{message} ({detail})"))
                    elif message == "event dead-lettered":
                        key = (entry.get("topic"), int(entry.get("partition", -1)), int(entry.get("offset", -1)))
                        self.dead_lettered[key].append((parse_time_ms(entry["ts"]) / 1000, instance))

    def kill_between(self, first, second):
        """The first kill -9 after `first` and no later than `second`, if any."""
        for at, instance in self.kills:
            if first <= at <= second:
                return at, instance
        return None

    def redelivery_between(self, coordinates, first, second):
        """Why a record dead-lettered at `first` was read again before `second`: the instance
        that dead-lettered it was killed, or logged that its progress was not committed."""
        writers = [i for at, i in self.dead_lettered.get(coordinates, []) if abs(at - first) < 2]
        # The copy at `first` was written by one of `writers`; what made its partition be read
        # again happened after it and before the next copy.
        for at, instance in self.kills:
            if first <= at <= second and (not writers or instance in writers):
                return f"kill -9 of herald-{instance} at {iso(at)}"
        for at, instance, what in self.redelivery_causes:
            if first - 1 <= at <= second and (not writers or instance in writers):
                return f"herald-{instance} at {iso(at)}: {what}"
        return None

    # -- servers ----------------------------------------------------------------------

    def redis(self):
        import redis
        return redis.Redis.from_url(self.ctx["redis_url"], decode_responses=False, socket_timeout=30)

    def pg(self):
        import psycopg2
        return psycopg2.connect(self.ctx["database_url"], connect_timeout=10)

    def query(self, sql, args=()):
        with self.pg() as connection:
            with connection.cursor() as cursor:
                cursor.execute(sql, args)
                return cursor.fetchall()

    def read_topic(self, topic):
        """Every record of a topic, from the low watermark: [(partition, offset, ts, key, value, headers)]."""
        from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

        consumer = Consumer({"bootstrap.servers": self.ctx["bootstrap"], "group.id": f"soak-checker-{time.time_ns()}",
                             "enable.auto.commit": False, "auto.offset.reset": "earliest", "enable.partition.eof": True})
        try:
            metadata = consumer.list_topics(topic, timeout=30)
            partitions = sorted(metadata.topics[topic].partitions)
            ends = {}
            for p in partitions:
                low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)
                if low != 0:
                    self.violation("harness", f"{topic}[{p}] starts at offset {low}: the mock broker dropped records, "
                                   "so the topic cannot be checked whole (produce less)")
                ends[p] = high
            consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
            out = []
            remaining = {p for p in partitions if ends[p] > 0}
            deadline = time.monotonic() + 300
            while remaining and time.monotonic() < deadline:
                message = consumer.poll(1.0)
                if message is None:
                    continue
                if message.error():
                    if message.error().code() == -191:  # _PARTITION_EOF
                        if message.offset() >= ends.get(message.partition(), 0):
                            remaining.discard(message.partition())
                        continue
                    raise RuntimeError(f"reading {topic}: {message.error()}")
                headers = [(k, v) for k, v in (message.headers() or [])]
                out.append((message.partition(), message.offset(), message.timestamp()[1], message.key(), message.value(),
                            headers))
                if message.offset() + 1 >= ends[message.partition()]:
                    remaining.discard(message.partition())
            if remaining:
                raise RuntimeError(f"reading {topic}: partitions {sorted(remaining)} not read to their end in time")
            return out
        finally:
            consumer.close()

    # -- revocations ------------------------------------------------------------------

    def check_revocations(self):
        expected = {}
        for e in self.events.values():
            body = e["body"]
            if e["type"] in ROLE_TYPES:
                key, ttl = f"invalid_role: {body['role']}", ROLE_TTL
            elif e["type"] in USER_REVOCATIONS:
                key, ttl = f"revoked_user: {body['user_id']}", USER_TTL
            else:
                continue
            seconds = e["time_ms"] // 1000
            current = expected.get(key)
            if current is None or seconds > current[0]:
                expected[key] = (seconds, e["at"], ttl)
            elif seconds == current[0]:
                expected[key] = (seconds, min(current[1], e["at"]), ttl)
        r = self.redis()
        found = set()
        for pattern in ("invalid_role: *", "revoked_user: *"):
            found |= {k.decode() for k in r.scan_iter(match=pattern, count=1000)}
        for key in sorted(found - set(expected)):
            self.violation("revocations", f"{key!r} exists but no valid event named it (value {r.get(key)!r})")
        pipe = r.pipeline(transaction=False)
        keys = sorted(expected)
        for key in keys:
            pipe.get(key)
            pipe.ttl(key)
        replies = pipe.execute()
        wrong = 0
        for i, key in enumerate(keys):
            value, ttl = replies[2 * i], replies[2 * i + 1]
            seconds, first_at, full = expected[key]
            if value is None:
                self.violation("revocations", f"{key!r} missing; expected {seconds}")
                wrong += 1
                continue
            if value.decode() != str(seconds):
                self.violation("revocations", f"{key!r} = {value.decode()}, expected the newest event time {seconds}")
                wrong += 1
            # Set when the newest time arrived (not before it was produced), with the full TTL.
            lowest = full - (self.now - first_at) - 5
            if not (0 < ttl <= full and ttl >= lowest):
                self.violation("revocations", f"{key!r} TTL {ttl}, expected between {int(lowest)} and {full}")
                wrong += 1
        self.stats["revocation_keys"] = len(keys)

    # -- recipients -------------------------------------------------------------------

    def check_recipients(self):
        history = collections.defaultdict(list)
        for e in self.events.values():
            b = e["body"]
            t = e["type"]
            if t in ("UserRegistered", "UserCreated"):
                fields = {f: b[f] for f in ("email", "username", "locale") if b.get(f) not in (None, "")}
                history[b["user_id"]].append((e["time_ms"], fields, False, e["id"]))
            elif t == "EmailChanged":
                history[b["user_id"]].append((e["time_ms"], {"email": b["new_email"]}, False, e["id"]))
            elif t == "UserDeleted":
                history[b["user_id"]].append((e["time_ms"], {}, True, e["id"]))
        rows = {row[0]: row for row in self.query(
            "SELECT user_id, email, username, locale, (extract(epoch FROM deleted_at) * 1000)::bigint, "
            "(extract(epoch FROM updated_at) * 1000)::bigint FROM herald.recipients")}
        self.deleted_users = {u for u, h in history.items() if any(d for _, _, d, _ in h)}
        self.user_addresses = collections.defaultdict(set)
        for e in self.events.values():
            b = e["body"]
            if "user_id" in b:
                for f in ("email", "old_email", "new_email"):
                    if b.get(f):
                        self.user_addresses[b["user_id"]].add(b[f])
        for user in sorted(set(rows) - set(history)):
            self.violation("recipients", f"recipient {user!r} exists but no event described it")
        for user, events in sorted(history.items()):
            row = rows.get(user)
            if row is None:
                self.violation("recipients", f"recipient {user!r} missing ({len(events)} event(s))")
                continue
            _, email_, username, locale, deleted_ms, updated_ms = row
            actual = {"email": email_, "username": username, "locale": locale}
            newest = max(t for t, _, _, _ in events)
            if updated_ms != newest:
                self.violation("recipients", f"{user!r}: updated_at {updated_ms}, expected the newest event's time {newest}")
            deletions = [t for t, _, d, _ in events if d]
            if (min(deletions) if deletions else None) != deleted_ms:
                self.violation("recipients", f"{user!r}: deleted_at {deleted_ms}, expected {min(deletions) if deletions else None}")
            latest = [(f, i) for t, f, _, i in events if t == newest]
            if len({json.dumps(f, sort_keys=True) for f, _ in latest}) == 1:
                for field, value in latest[0][0].items():
                    if actual[field] != value:
                        self.violation("recipients", f"{user!r}: {field} {actual[field]!r}, but the newest event "
                                       f"({latest[0][1]}) says {value!r}")
            for field in ("email", "username", "locale"):
                carried = {f[field] for _, f, _, _ in events if field in f}
                if carried and actual[field] not in carried:
                    self.violation("recipients", f"{user!r}: {field} {actual[field]!r} is none of the values its events "
                                   f"carried {sorted(carried)}")
                if not carried and actual[field] is not None:
                    self.violation("recipients", f"{user!r}: {field} {actual[field]!r} though no event carried one")
        self.stats["recipients"] = len(history)
        self.stats["recipients_deleted"] = len(self.deleted_users)

    # -- mail -------------------------------------------------------------------------

    @staticmethod
    def expected_kinds(e):
        b = e["body"]
        t = e["type"]
        if t == "UserCreated":
            return [("welcome", b.get("email"))]
        if t == "EmailVerificationRequested":
            return [("verify_email", b.get("email"))]
        if t == "PasswordResetRequested":
            return [("password_reset", None)]
        if t == "PasswordChanged":
            return [("password_changed", None)]
        if t == "EmailChangeRequested":
            return [("email_change_confirm", b["new_email"]), ("email_change_requested", b["old_email"])]
        if t == "EmailChanged":
            return [("email_changed", b["old_email"])]
        return []

    def received(self):
        directory = self.ctx["smtp_dir"]
        mails = []
        for name in sorted(os.listdir(directory)):
            if not (name.startswith("msg-") and name.endswith(".json")):
                continue
            with open(os.path.join(directory, name)) as f:
                record = json.load(f)
            raw = base64.b64decode(record["data"])
            message = email.message_from_bytes(raw, policy=email.policy.default)
            texts = []
            for part in message.walk():
                if not part.is_multipart():
                    texts.append(part.get_content())
            mails.append({
                "file": name, "at": record["received_at"], "rcpt": record["rcpt_tos"],
                "message_id": str(message.get("Message-ID", "")).strip(), "kind": str(message.get("X-Herald-Kind", "")),
                "tokens": sorted({m for text in texts for m in TOKEN_IN_LINK.findall(text)}),
            })
        return mails

    def check_mail(self):
        rows = self.query(
            "SELECT id::text, event_id, kind, user_id, recipient, address_from, event_email, status, attempts, last_error, "
            "message_id, (extract(epoch FROM created_at) * 1000)::bigint, variables::text, "
            "extract(epoch FROM coalesce(claimed_at, now()))::float8 FROM herald.notifications")
        notifications = {}
        by_id = {}
        for row in rows:
            n = dict(zip(["id", "event_id", "kind", "user_id", "recipient", "address_from", "event_email", "status", "attempts",
                          "last_error", "message_id", "created_ms", "variables", "claimed_at"], row))
            n["variables"] = json.loads(n["variables"])
            notifications[(n["event_id"], n["kind"])] = n
            by_id[n["id"]] = n
        self.notifications = notifications
        mails = self.received()
        self.mails = mails
        domain = self.ctx["mail_domain"]
        copies = collections.defaultdict(list)
        for m in mails:
            match = re.fullmatch(r"<([0-9a-f-]{36})@" + re.escape(domain) + ">", m["message_id"])
            n = by_id.get(match.group(1)) if match else None
            if n is None:
                self.violation("mail", f"accepted mail {m['file']} with Message-ID {m['message_id']!r} matches no notification")
                continue
            copies[n["id"]].append(m)
            if m["kind"] != n["kind"]:
                self.violation("mail", f"{m['file']}: X-Herald-Kind {m['kind']!r} for a {n['kind']} notification")
        expected = {}
        for e in self.events.values():
            for kind, address in self.expected_kinds(e):
                expected[(e["id"], kind)] = (e, address)
        for key in sorted(set(notifications) - set(expected)):
            self.violation("mail", f"notification {key} was queued for no mail-bearing event")
        counts = collections.Counter()
        duplicates = []
        unrecorded = []
        for (eid, kind), (e, address) in sorted(expected.items(), key=lambda i: i[1][0]["rec"]):
            n = notifications.get((eid, kind))
            user = e["body"]["user_id"]
            deleted = user in self.deleted_users
            stale = (e["at"] * 1000 - e["time_ms"]) > MAX_AGE[kind] * 1000 + 60_000
            if n is None:
                if deleted:
                    counts["not queued: recipient deleted"] += 1
                else:
                    self.violation("mail", f"event {eid} ({e['type']}) queued no {kind} mail")
                continue
            got = copies.get(n["id"], [])
            status = n["status"]
            if status == "sent":
                if stale:
                    self.violation("mail", f"{kind} for {eid} was sent though its event was older than {MAX_AGE[kind]} s")
                if not got:
                    self.violation("mail", f"{kind} for {eid} is 'sent' but the SMTP server accepted no such message")
                    continue
                counts["sent"] += 1
                if len(got) > 1:
                    duplicates.append((n, got))
                for m in got:
                    self.check_address(n, e, kind, address, m)
                # The row names where the last copy went (mail to the user's address is
                # addressed at each claim: a copy resent after a crash follows an address change).
                last = max(got, key=lambda m: m["at"])
                if last["rcpt"] != [n["recipient"]]:
                    self.violation("mail", f"{kind} for {eid}: the row says {n['recipient']!r}, the last copy went to {last['rcpt']}")
            elif status == "expired":
                if not stale:
                    self.violation("mail", f"{kind} for {eid} expired though its event was fresh when produced")
                counts["expired (older than its maximum age)"] += 1
            elif status == "suppressed":
                reason = n["last_error"] or ""
                if "deleted" in reason:
                    if not deleted:
                        self.violation("mail", f"{kind} for {eid} suppressed as deleted, but {user!r} was never deleted")
                    counts["suppressed: recipient deleted after queueing"] += 1
                elif reason.startswith("rate limit"):
                    counts["suppressed: rate limit"] += 1
                else:
                    self.violation("mail", f"{kind} for {eid} suppressed for an unknown reason: {reason!r}")
            else:
                self.violation("mail", f"{kind} for {eid} ended {status!r} after {n['attempts']} attempt(s): {n['last_error']!r}")
            if status != "sent" and got:
                unrecorded.append((n, got))
        self.check_rate_limits(notifications)
        self.check_duplicate_mail(duplicates, unrecorded)
        self.stats["mail_expected"] = len(expected)
        self.stats["mail_accepted"] = len(mails)
        self.stats["mail_outcomes"] = dict(counts)
        self.check_tokens(mails, by_id)

    def check_address(self, n, e, kind, address, m):
        if kind in USER_ADDRESSED:
            allowed = self.user_addresses[e["body"]["user_id"]]
            if len(m["rcpt"]) != 1 or m["rcpt"][0] not in allowed:
                self.violation("mail", f"{kind} for {e['id']} went to {m['rcpt']}, not an address of the user ({sorted(allowed)})")
        elif m["rcpt"] != [address]:
            self.violation("mail", f"{kind} for {e['id']} went to {m['rcpt']}, the event names {address!r}")

    def check_rate_limits(self, notifications):
        groups = collections.defaultdict(list)
        for n in notifications.values():
            if n["kind"] in RATE_LIMITS:
                groups[(n["recipient"], n["kind"])].append(n)
        for (recipient, kind), rows in groups.items():
            limit, window = RATE_LIMITS[kind]
            counted = [r for r in rows if r["status"] not in ("suppressed", "expired")]
            for r in rows:
                inside = [c for c in counted if r["created_ms"] - window * 1000 < c["created_ms"] <= r["created_ms"]]
                if r["status"] == "suppressed" and (r["last_error"] or "").startswith("rate limit"):
                    earlier = [c for c in inside if c["id"] != r["id"]]
                    if len(earlier) < limit:
                        self.violation("mail", f"{kind} to {recipient} suppressed by the rate limit with only {len(earlier)} "
                                       f"counted before it (limit {limit})")
                elif r in counted and len(inside) > limit:
                    self.violation("mail", f"{len(inside)} {kind} mails to {recipient} counted within {window} s (limit {limit})")

    def check_duplicate_mail(self, duplicates, unrecorded):
        per_kill = collections.Counter()
        workers = self.ctx["smtp_workers"]
        # A copy accepted whose outcome a kill -9 kept from being recorded: after the claim
        # timeout the row is claimed again and, its recipient deleted or the mail too old by
        # then, recorded suppressed or expired. Explained only by a kill -9 after the copy and
        # before the claim that recorded it, and counted in the same per-crash bound.
        for n, got in unrecorded:
            what = f"{n['kind']} for {n['event_id']} is {n['status']!r} but was accepted {len(got)} time(s)"
            kill = self.kill_between(got[0]["at"], n["claimed_at"]) if len(got) == 1 else None
            if kill is None:
                self.violation("mail", what)
                continue
            per_kill[kill] += 1
            self.explained.append({"what": "mail", "detail": what + ", its outcome never recorded",
                                   "crash": f"kill -9 of herald-{kill[1]} at {iso(kill[0])}",
                                   "first": iso(got[0]["at"]), "second": iso(n["claimed_at"])})
        for n, got in duplicates:
            times = sorted(m["at"] for m in got)
            kill = self.kill_between(times[0], times[-1])
            what = f"{n['kind']} for {n['event_id']} accepted {len(got)} times (Message-ID <{n['id']}@…>)"
            if len(got) > 2:
                self.violation("mail", what + ": resent more than once")
            elif kill is None:
                self.violation("mail", what + ": no kill -9 between the copies explains it")
            else:
                per_kill[kill] += 1
                self.explained.append({"what": "mail", "detail": what, "crash": f"kill -9 of herald-{kill[1]} at "
                                       f"{iso(kill[0])}", "first": iso(times[0]), "second": iso(times[-1])})
        for kill, count in per_kill.items():
            if count > workers:
                self.violation("mail", f"kill -9 of herald-{kill[1]} at {iso(kill[0])} explains {count} duplicate mails; "
                               f"at most HERALD_SMTP_WORKERS={workers}")
        self.stats["mail_duplicates"] = len(duplicates)
        self.stats["mail_unrecorded"] = len(unrecorded)

    def check_tokens(self, mails, by_id):
        r = self.redis()
        tokens = set()
        for m in mails:
            n = None
            match = re.match(r"<([0-9a-f-]{36})@", m["message_id"])
            if match:
                n = by_id.get(match.group(1))
            if n is None:
                continue
            link = LINK_KINDS.get(n["kind"])
            if link is None:
                if m["tokens"]:
                    self.violation("tokens", f"{m['file']}: a {n['kind']} mail carries a link token")
                continue
            if len(m["tokens"]) != 1:
                self.violation("tokens", f"{m['file']}: {len(m['tokens'])} link tokens in a {n['kind']} mail, expected 1")
                continue
            token = m["tokens"][0]
            tokens.add(token)
            prefix, lifetime = link
            key = prefix + hashlib.sha256(token.encode()).hexdigest()
            value = r.get(key)
            if value is None:
                if m["at"] + lifetime > self.now + 5:
                    self.violation("tokens", f"{m['file']}: the token's hash {key} is not in Redis, though its link "
                                   f"lives until {iso(m['at'] + lifetime)}")
                continue
            pttl = r.pttl(key)
            if not (0 < pttl <= lifetime * 1000):
                self.violation("tokens", f"{key}: PTTL {pttl}, expected at most {lifetime * 1000}")
            if n["kind"] == "email_change_confirm":
                stored = json.loads(value)
                wanted = {"user_id": n["user_id"], "new_email": n["variables"].get("new_email")}
                if stored != wanted:
                    self.violation("tokens", f"{key} = {stored}, expected {wanted}")
            elif value.decode() != n["user_id"]:
                self.violation("tokens", f"{key} = {value!r}, expected the user id {n['user_id']!r}")
        self.stats["link_tokens"] = len(tokens)
        self.tokens = tokens

    def check_token_leaks(self, dlq_records):
        if not self.tokens:
            return

        def scan(blob, where):
            found = set()
            for run in RUN_OF_TOKEN_CHARACTERS.findall(blob):
                for i in range(len(run) - 42):
                    candidate = run[i:i + 43].decode()
                    if candidate in self.tokens:
                        found.add(candidate)
            for token in sorted(found):
                self.violation("tokens", f"a raw link token appears in {where} ({token[:6]}…)")

        dump = os.path.join(self.run_dir, "postgres-dump.sql")
        subprocess.run([self.ctx["pg_dump"], "-h", "127.0.0.1", "-p", str(self.ctx["postgres_port"]), "-U", "postgres",
                        "-d", "postgres", "-f", dump], check=True, timeout=300)
        with open(dump, "rb") as f:
            scan(f.read(), "the PostgreSQL dump")
        for name in sorted(os.listdir(self.run_dir)):
            if name.startswith("herald-") and name.endswith(".log"):
                with open(os.path.join(self.run_dir, name), "rb") as f:
                    scan(f.read(), name)
        for topic, records in dlq_records.items():
            blob = b"\n".join((k or b"") + b"\n" + (v or b"") + b"\n" + b"\n".join(h[1] or b"" for h in hs)
                              for _, _, _, k, v, hs in records)
            scan(blob, topic)
        r = self.redis()
        keys = list(r.scan_iter(count=1000))
        blob = b"\n".join(keys)
        values = []
        for i in range(0, len(keys), 500):
            chunk = keys[i:i + 500]
            pipe = r.pipeline(transaction=False)
            for k in chunk:
                pipe.get(k)
            values += [v for v in pipe.execute() if v is not None]
        scan(blob + b"\n" + b"\n".join(values), "Redis")

    # -- dead letters -----------------------------------------------------------------

    def check_dlq(self):
        by_coordinates = {(r["topic"], r["partition"], r["offset"]): r for r in self.poison}
        records = {}
        seen = collections.defaultdict(list)
        for topic in (self.ctx["user_topic"], self.ctx["auth_topic"]):
            dlq = topic + self.ctx["dlq_suffix"]
            records[dlq] = self.read_topic(dlq)
            for partition, offset, ts, key, value, headers in records[dlq]:
                h = {k: (v.decode() if v is not None else None) for k, v in headers}
                try:
                    coordinates = (h["herald.original.topic"], int(h["herald.original.partition"]),
                                   int(h["herald.original.offset"]))
                except (KeyError, ValueError):
                    self.violation("dlq", f"{dlq}[{partition}]@{offset}: no usable provenance headers {sorted(h)}")
                    continue
                original = by_coordinates.get(coordinates)
                if original is None:
                    rec = h.get("soak_rec")
                    what = self.records.get(int(rec)) if rec and rec.isdigit() else None
                    self.violation("dlq", f"{dlq}[{partition}]@{offset} dead-letters {coordinates}, not a poison record"
                                   + (f": {what['type']} {what['id']}" if what else ""))
                    continue
                seen[coordinates].append((ts, h))
                if coordinates[0] != topic:
                    self.violation("dlq", f"{coordinates} dead-lettered to {dlq}")
                if key != (original["key"].encode() if original["key"] is not None else None) or (value or b"") != original["value"]:
                    self.violation("dlq", f"{coordinates}: key or value differs from the original record")
                for name in PROVENANCE:
                    if not h.get(name):
                        self.violation("dlq", f"{coordinates}: provenance header {name} missing")
                if h.get("soak_rec") != str(original["rec"]):
                    self.violation("dlq", f"{coordinates}: the original headers were not kept")
                if h.get("herald.original.timestamp") not in (None, str(original["ts"])):
                    self.violation("dlq", f"{coordinates}: herald.original.timestamp {h.get('herald.original.timestamp')}, "
                                   f"the record's is {original['ts']}")
                if h.get("herald.consumer.group") not in (None, self.ctx["group"]):
                    self.violation("dlq", f"{coordinates}: herald.consumer.group {h.get('herald.consumer.group')!r}")
                if h.get("herald.error.class") != original["expect_class"]:
                    self.violation("dlq", f"{coordinates} ({original['poison']}): class {h.get('herald.error.class')!r}, "
                                   f"expected {original['expect_class']}")
                attempts = h.get("herald.attempts") or ""
                if not attempts.isdigit() or int(attempts) < 1:
                    self.violation("dlq", f"{coordinates}: herald.attempts {attempts!r}")
                if not RFC3339_RE.match(h.get("herald.failed.at") or ""):
                    self.violation("dlq", f"{coordinates}: herald.failed.at {h.get('herald.failed.at')!r}")
                body = original["body"] if isinstance(original["body"], dict) else {}
                if "herald.event.id" in h and body.get("event_id") not in (None, h["herald.event.id"]):
                    self.violation("dlq", f"{coordinates}: herald.event.id {h['herald.event.id']!r}, the record's is "
                                   f"{body.get('event_id')!r}")
        for coordinates, original in sorted(by_coordinates.items(), key=lambda i: i[1]["rec"]):
            copies = seen.get(coordinates, [])
            if not copies:
                self.violation("dlq", f"poison record {coordinates} ({original['poison']}) is not in the dead-letter topic")
            elif len(copies) > 1:
                # Each copy after the first needs its own reason to have been read again.
                times = sorted(parse_time_ms(h["herald.failed.at"]) / 1000 for _, h in copies)
                what = f"poison {coordinates} ({original['poison']}) dead-lettered {len(copies)} times"
                causes = [self.redelivery_between(coordinates, a, b) for a, b in zip(times, times[1:])]
                if None in causes:
                    self.violation("dlq", what + ": no kill -9, and no commit the consumer before failed to make, "
                                   f"explains the copy at {iso(times[causes.index(None) + 1])}")
                else:
                    self.explained.append({"what": "dead letter", "detail": what, "crash": "; ".join(causes)})
        self.stats["dead_letters"] = sum(len(v) for v in records.values())
        self.stats["poison"] = dict(collections.Counter(r["poison"] for r in self.poison))
        return records

    # -- outbox -----------------------------------------------------------------------

    def check_outbox(self):
        rows = self.query(
            "SELECT id::text, aggregate_type, aggregate_id::text, event_type, event_data::text, status, retry_count, "
            "to_char(created_at::timestamptz AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), created_at, error_message "
            "FROM outbox_events ORDER BY aggregate_id, created_at, id")
        table = {}
        per_aggregate = collections.defaultdict(list)
        for row in rows:
            r = dict(zip(["id", "aggregate_type", "aggregate_id", "event_type", "event_data", "status", "retry_count",
                          "ce_time", "created_at", "error"], row))
            table[r["id"]] = r
            per_aggregate[r["aggregate_id"]].append(r["id"])
            if r["status"] != "processed":
                self.violation("outbox", f"row {r['id']} is {r['status']!r} after the quiet period ({r['error']!r})")
        logged = {}
        outcomes = collections.Counter()
        for tx in self.outbox_log:
            outcomes[tx["outcome"]] += 1
            for row_id in tx["rows"]:
                logged[row_id] = tx
        committed_rows = rolled_back_rows = 0
        for row_id, tx in logged.items():
            if tx["outcome"] == "committed":
                committed_rows += 1
                if row_id not in table:
                    self.violation("outbox", f"row {row_id} committed by transaction {tx['tx']} is not in the table")
            elif tx["outcome"] == "rolled_back":
                rolled_back_rows += 1
                if row_id in table:
                    self.violation("outbox", f"row {row_id} of rolled-back transaction {tx['tx']} is in the table")
        for row_id in table:
            if row_id not in logged:
                self.violation("outbox", f"row {row_id} is in the table but no logged transaction wrote it")
        published = collections.defaultdict(list)
        per_key = collections.defaultdict(list)
        total = 0
        for topic in self.ctx["outbox_topics"].values():
            for partition, offset, ts, key, value, headers in self.read_topic(topic):
                total += 1
                h = {k: (v.decode() if v is not None else None) for k, v in headers}
                ce_id = h.get("ce_id")
                row = table.get(ce_id)
                if row is None:
                    tx = logged.get(ce_id)
                    self.violation("outbox", f"{topic}[{partition}]@{offset}: ce_id {ce_id!r} is no committed row"
                                   + (f" (its transaction {tx['tx']} {tx['outcome']})" if tx else ""))
                    continue
                published[ce_id].append((ts, topic, partition, offset))
                per_key[(topic, key)].append((partition, offset, ce_id))
                if topic != self.ctx["outbox_topics"].get(row["aggregate_type"]):
                    self.violation("outbox", f"row {ce_id} ({row['aggregate_type']}) published to {topic}")
                if key != row["aggregate_id"].encode():
                    self.violation("outbox", f"row {ce_id}: key {key!r}, expected the aggregate id")
                if json.loads(value) != json.loads(row["event_data"]):
                    self.violation("outbox", f"row {ce_id}: value differs from event_data")
                wanted = {"ce_type": row["event_type"], "ce_source": "herald-outbox", "aggregate_type": row["aggregate_type"],
                          "ce_time": row["ce_time"]}
                for name, v in wanted.items():
                    if h.get(name) != v:
                        self.violation("outbox", f"row {ce_id}: header {name} {h.get(name)!r}, expected {v!r}")
        duplicates = 0
        per_kill = collections.Counter()
        for row_id in table:
            copies = published.get(row_id, [])
            if not copies:
                self.violation("outbox", f"row {row_id} was never published")
            elif len(copies) > 1:
                duplicates += 1
                # README: a relay killed mid-batch, or whose database connection failed
                # between the acknowledgement and the commit, publishes its batch again.
                times = sorted(c[0] / 1000 for c in copies)
                what = f"outbox row {row_id} published {len(copies)} times"
                cause = next(((at, who) for at, who in self.outbox_failures if times[0] - 1 <= at <= times[-1]), None)
                if len(copies) > 2:
                    self.violation("outbox", what)
                elif cause is None:
                    self.violation("outbox", what + ": no kill -9 of a relay and no PostgreSQL stop between the copies explains it")
                else:
                    per_kill[cause] += 1
                    self.explained.append({"what": "outbox", "detail": what, "crash": f"{cause[1]} at {iso(cause[0])}"})
        for cause, count in per_kill.items():
            if count > self.ctx["outbox_batch"]:
                self.violation("outbox", f"{cause[1]} at {iso(cause[0])} explains {count} duplicates, more than one batch")
        # Order per aggregate, in offset order: the first copies are exactly the committed rows
        # by (created_at, id), and no message skips ahead of the row after the one before it.
        # A batch published again after a failure replays its pending rows from the oldest, so
        # a rewind (N, N+1, N, N+1, N+2) is allowed (its copies are explained above); a skip
        # (N, N+2) is not.
        order_violations = 0
        for (topic, key), messages in per_key.items():
            wanted = per_aggregate.get(key.decode(), [])
            position = {ce_id: i for i, ce_id in enumerate(wanted)}
            firsts, seen, previous, problem = [], set(), -1, None
            for partition, offset, ce_id in sorted(messages):
                index = position.get(ce_id)
                if index is None:
                    problem = problem or f"row {ce_id} at {topic}[{partition}]@{offset} is not one of its rows"
                    continue
                if index > previous + 1:
                    problem = problem or (f"{topic}[{partition}]@{offset} publishes row {index} after row {previous}"
                                          f" (skips {index - previous - 1})")
                previous = index
                if ce_id not in seen:
                    seen.add(ce_id)
                    firsts.append(ce_id)
            if problem is None and firsts != wanted:
                first = next((i for i, (a, b) in enumerate(zip(firsts, wanted)) if a != b), min(len(firsts), len(wanted)))
                problem = (f"published order differs from the table's at position {first}"
                           f" ({len(firsts)} published, {len(wanted)} rows)")
            if problem is not None:
                order_violations += 1
                self.violation("outbox", f"aggregate {key.decode()} on {topic}: {problem}")
        self.stats["outbox"] = {
            "transactions": dict(outcomes), "rows_committed": len(table), "rows_rolled_back": rolled_back_rows,
            "messages": total, "duplicates": duplicates, "aggregates": len(per_aggregate)}

    # -- lag and exits ----------------------------------------------------------------

    def check_lag(self):
        out = subprocess.run([self.ctx["herald"], "lag", "--json", "--brokers", self.ctx["bootstrap"], "--group",
                              self.ctx["group"], "--window", "1s"], capture_output=True, text=True, timeout=120,
                             env=dict(os.environ, HERALD_LOG_LEVEL="error"))
        if out.returncode != 0:
            self.violation("lag", f"herald lag failed ({out.returncode}): {out.stderr.strip()[-500:]}")
            return
        report = json.loads(out.stdout.strip().splitlines()[-1])
        self.stats["lag"] = {"total_lag": report.get("total_lag"), "status": report.get("status")}
        for p in report["partitions"]:
            if p["lag"] != 0 or p["committed"] != p["high"]:
                self.violation("lag", f"{p['topic']}[{p['partition']}]: committed {p['committed']}, end {p['high']}, lag {p['lag']}")
        if report.get("total_lag") != 0:
            self.violation("lag", f"total lag {report.get('total_lag')}")

    def check_exits(self):
        for e in self.exits:
            if not e["expected"]:
                self.violation("process", f"herald-{e['instance']} exited on its own with status {e['status']} at "
                               f"{iso(e['at'])}")
            elif e["status"] != 0:
                self.violation("process", f"herald-{e['instance']} exited {e['status']} after {e.get('signal')} at {iso(e['at'])}")

    def run(self):
        self.load()
        steps = [("revocations", self.check_revocations), ("recipients", self.check_recipients), ("mail", self.check_mail),
                 ("dlq", self.check_dlq), ("outbox", self.check_outbox), ("lag", self.check_lag), ("exits", self.check_exits)]
        dlq_records = {}
        for name, step in steps:
            try:
                result = step()
                if name == "dlq":
                    dlq_records = result
            except Exception as error:
                self.violation("checker", f"the {name} check could not run: {error!r}")
        try:
            self.check_token_leaks(dlq_records)
        except Exception as error:
            self.violation("checker", f"the token leak check could not run: {error!r}")
        produced = collections.Counter(r["type"] if r["kind"] == "event" else "poison" for r in self.delivered)
        self.stats["records"] = len(self.delivered)
        self.stats["events"] = len(self.events)
        self.stats["duplicate_records"] = sum(1 for r in self.delivered if r.get("duplicate"))
        self.stats["by_type"] = dict(sorted(produced.items()))
        return {"violations": self.violations, "explained": self.explained, "stats": self.stats}


def iso(seconds):
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).strftime("%H:%M:%S.%f")[:-3] + "Z"


if __name__ == "__main__":
    run_dir = sys.argv[1]
    with open(os.path.join(run_dir, "context.json")) as f:
        context = json.load(f)
    result = Checker(context).run()
    print(json.dumps(result, indent=2, sort_keys=True))
    sys.exit(1 if result["violations"] else 0)
