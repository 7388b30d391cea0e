"""The soak's workload: events produced to Kafka and outbox rows written by simulated API
transactions, each logged (JSON lines) as it is produced, with what became of it (the
broker's acknowledgement with partition and offset; the transaction's commit or rollback).
The checker reads these logs, never the generator's memory."""

import base64
import datetime
import json
import random
import threading
import time
import uuid

USER_TOPIC = "user_service_topic"
AUTH_TOPIC = "auth_service_topic"
OUTBOX_TOPICS = {"User": "user.events", "Order": "order.events"}

ROLE_TYPES = ["RolePermissionsChanged", "RoleSecurityLevelChanged", "RoleDeleted"]
USER_REVOCATION_TYPES = ["UserRolesChanged", "UserSessionsRevoked"]
LOCALES = ["en", "en-GB", "pt-BR", "pt", None]

# Poison kinds and the dead-letter class each must get.
POISON = {
    "not_json": "NotJSON",
    "empty": "NotJSON",
    "binary": "NotJSON",
    "unknown_type": "UnknownEventType",
    "validation": "ValidationFailed",
    "future": "InvalidEnvelope",
    "no_type": "InvalidEnvelope",
    "no_address": "HandlerRejected",
}


def rfc3339(ms):
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + \
        f"{ms % 1000:03d}Z"


def now_ms():
    return int(time.time() * 1000)


class JsonLog:
    def __init__(self, path):
        self.file = open(path, "a", buffering=1)
        self.lock = threading.Lock()

    def write(self, **record):
        line = json.dumps(record, separators=(",", ":"), sort_keys=True)
        with self.lock:
            self.file.write(line + "\n")

    def close(self):
        with self.lock:
            self.file.flush()
            self.file.close()


class User:
    def __init__(self, n, uid, email, username, locale):
        self.n = n
        self.uid = uid
        self.email = email
        self.username = username
        self.locale = locale
        self.last_ms = 0
        self.first_ms = None
        self.emails = 0
        self.link_mails = {}
        self.deleted = False

    def tick(self):
        """A time for this user's next event, strictly after the previous one."""
        t = max(now_ms(), self.last_ms + 1)
        self.last_ms = t
        if self.first_ms is None:
            self.first_ms = t
        return t


class EventWorkload:
    """Produces a steady mixed stream at about `rate` records per second."""

    def __init__(self, bootstrap, log_path, seed, rate, run_id):
        from confluent_kafka import Producer

        self.producer = Producer({
            "bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all", "linger.ms": 5,
            "message.timeout.ms": 600000, "client.id": "soak-producer",
        })
        self.log = JsonLog(log_path)
        self.rng = random.Random(seed)
        self.rate = rate
        self.run_id = run_id
        self.users = []
        self.active = []
        self.roles = [f"soak-role-{i}" for i in range(150)]
        self.records = 0
        self.recent = []
        self.poison_cycle = []
        self.bursts = 0
        self.stop = threading.Event()
        self.thread = None
        self.failed_deliveries = 0
        self.lock = threading.Lock()

    # -- producing --------------------------------------------------------------------

    def _delivered(self, rec):
        def callback(error, message):
            if error is not None:
                self.failed_deliveries += 1
                self.log.write(t="failed", rec=rec, error=str(error), at=time.time())
            else:
                self.log.write(t="delivered", rec=rec, partition=message.partition(), offset=message.offset(),
                               at=time.time())
        return callback

    def produce(self, topic, key, value, headers=None, **meta):
        """value: a dict (JSON), bytes or str. Logs the record before it is handed over."""
        self.records += 1
        rec = self.records
        headers = dict(headers or {})
        headers["soak_rec"] = str(rec)
        if isinstance(value, dict):
            raw = json.dumps(value, separators=(",", ":")).encode()
        elif isinstance(value, str):
            raw = value.encode()
        else:
            raw = value
        # The record's timestamp (CreateTime) is set here, so the log knows it: the mock
        # broker's acknowledgements carry a placeholder log-append time instead.
        timestamp = now_ms()
        entry = dict(t="produce", rec=rec, at=time.time(), topic=topic, key=key, headers=headers, timestamp=timestamp,
                     value_b64=base64.b64encode(raw).decode())
        entry.update(meta)
        self.log.write(**entry)
        self._send(rec, topic, key, raw, headers, timestamp)
        self.recent.append((topic, key, raw, headers, meta))
        if len(self.recent) > 300:
            self.recent.pop(0)
        return rec

    def _send(self, rec, topic, key, raw, headers, timestamp):
        while True:
            try:
                self.producer.produce(topic, key=key.encode() if key is not None else None, value=raw, timestamp=timestamp,
                                      headers=[(k, v.encode()) for k, v in headers.items()], on_delivery=self._delivered(rec))
                break
            except BufferError:
                self.producer.poll(0.1)
        self.producer.poll(0)

    def event(self, topic, key, body, type_in_header=False, id_in_header=False, **meta):
        headers = {}
        body = dict(body)
        etype = body["event_type"]
        eid = body["event_id"]
        if type_in_header:
            headers["ce_type"] = body.pop("event_type")
        if id_in_header:
            headers["ce_id"] = body.pop("event_id")
        return self.produce(topic, key, body, headers, kind="event", id=eid, type=etype, **meta)

    def new_id(self):
        return f"soak-{self.run_id}-{uuid.uuid4().hex[:16]}"

    # -- scenarios --------------------------------------------------------------------

    def new_user(self):
        n = len(self.users)
        uid = f"soak-user-{self.run_id}-{n}"
        user = User(n, uid, f"u{n}.0@soak.example", f"user{n}", self.rng.choice(LOCALES))
        self.users.append(user)
        self.active.append(user)
        profile = {"user_id": uid, "username": user.username, "email": user.email}
        if user.locale:
            profile["locale"] = user.locale
        registered = dict(profile, event_type="UserRegistered", event_id=self.new_id(), occurred_at=rfc3339(user.tick()),
                          first_name="Soak")
        created = dict(profile, event_type="UserCreated", event_id=self.new_id(), occurred_at=rfc3339(user.tick()))
        # Most users both register (auth topic) and get a profile (user topic, the welcome mail).
        r = self.rng.random()
        if r < 0.8:
            self.event(AUTH_TOPIC, uid, registered, type_in_header=self.rng.random() < 0.3)
            self.event(USER_TOPIC, uid, created, type_in_header=self.rng.random() < 0.3, id_in_header=self.rng.random() < 0.3)
        elif r < 0.9:
            self.event(AUTH_TOPIC, uid, registered)
        else:
            self.event(USER_TOPIC, uid, created)
        return user

    def pick_user(self, link_kind=None):
        candidates = [u for u in self.active[-200:] if link_kind is None or u.link_mails.get(link_kind, 0) < 3]
        return self.rng.choice(candidates) if candidates else None

    def mail_event(self):
        kind = self.rng.choice(["verify", "reset", "changed", "change_requested", "email_changed"])
        link = {"verify": "verify_email", "reset": "password_reset", "change_requested": "email_change_confirm"}.get(kind)
        user = self.pick_user(link)
        if user is None:
            return
        if link:
            user.link_mails[link] = user.link_mails.get(link, 0) + 1
        t = rfc3339(user.tick())
        base = {"user_id": user.uid, "event_id": self.new_id(), "occurred_at": t}
        if kind == "verify":
            body = dict(base, event_type="EmailVerificationRequested", email=user.email)
            if user.locale:
                body["locale"] = user.locale
        elif kind == "reset":
            # The address too: the registration may be consumed after it (another topic).
            body = dict(base, event_type="PasswordResetRequested", email=user.email)
        elif kind == "changed":
            body = dict(base, event_type="PasswordChanged", email=user.email)
        elif kind == "change_requested":
            user.emails += 1
            body = dict(base, event_type="EmailChangeRequested", old_email=user.email,
                        new_email=f"u{user.n}.{user.emails}@soak.example")
        else:
            user.emails += 1
            new = f"u{user.n}.{user.emails}@soak.example"
            body = dict(base, event_type="EmailChanged", old_email=user.email, new_email=new)
            user.email = new
        self.event(AUTH_TOPIC, user.uid, body, type_in_header=self.rng.random() < 0.2)

    def stale_mail(self):
        user = self.pick_user()
        if user is None:
            return
        if self.rng.random() < 0.5:
            # Two hours old: past password_reset's one hour.
            body = {"event_type": "PasswordResetRequested", "event_id": self.new_id(), "user_id": user.uid,
                    "email": user.email, "occurred_at": rfc3339(now_ms() - 2 * 3600 * 1000)}
        else:
            # 30 hours old: past password_changed's 24 hours.
            body = {"event_type": "PasswordChanged", "event_id": self.new_id(), "user_id": user.uid, "email": user.email,
                    "occurred_at": rfc3339(now_ms() - 30 * 3600 * 1000)}
        self.event(AUTH_TOPIC, user.uid, body, stale=True)

    def late_profile(self):
        """A registration older than everything else of this user, arriving late: it may only
        fill fields still empty."""
        user = self.pick_user()
        if user is None or user.first_ms is None:
            return
        body = {"event_type": "UserRegistered", "event_id": self.new_id(), "user_id": user.uid,
                "username": user.username + "-late", "email": f"late.{user.n}@soak.example",
                "locale": "fr", "occurred_at": rfc3339(user.first_ms - self.rng.randint(1000, 60000))}
        self.event(AUTH_TOPIC, user.uid, body, late=True)

    def delete_user(self):
        user = self.pick_user()
        if user is None:
            return
        user.deleted = True
        self.active.remove(user)
        body = {"event_type": "UserDeleted", "event_id": self.new_id(), "user_id": user.uid,
                "occurred_at": rfc3339(user.tick())}
        self.event(USER_TOPIC, user.uid, body, type_in_header=self.rng.random() < 0.3)

    def role_revocation(self):
        role = self.rng.choice(self.roles)
        # Out of order on purpose: anywhere in the last five minutes.
        t = now_ms() - self.rng.randint(0, 300_000)
        body = {"event_type": self.rng.choice(ROLE_TYPES), "event_id": self.new_id(), "role": role}
        if self.rng.random() < 0.5:
            body["occurred_at"] = rfc3339(t)
        else:
            body["event_timestamp"] = round(t / 1000, 3)
        self.event(AUTH_TOPIC, role, body, type_in_header=self.rng.random() < 0.2)

    def user_revocation(self):
        if not self.users:
            return
        user = self.rng.choice(self.users)
        t = now_ms() - self.rng.randint(0, 300_000)
        body = {"event_type": self.rng.choice(USER_REVOCATION_TYPES), "event_id": self.new_id(), "user_id": user.uid,
                "occurred_at": rfc3339(t)}
        self.event(AUTH_TOPIC, user.uid, body)

    def duplicate(self):
        """The same record again (same id): applied once, mailed once."""
        events = [r for r in self.recent if r[4].get("kind") == "event"]
        if not events:
            return
        topic, key, raw, headers, meta = self.rng.choice(events)
        headers = {k: v for k, v in headers.items() if k != "soak_rec"}
        meta = dict(meta, duplicate=True)
        self.produce(topic, key, raw, headers, **meta)

    def poison(self):
        if not self.poison_cycle:
            self.poison_cycle = list(POISON)
            self.rng.shuffle(self.poison_cycle)
        kind = self.poison_cycle.pop()
        topic = self.rng.choice([AUTH_TOPIC, USER_TOPIC])
        n = self.records + 1
        key = f"poison-{self.run_id}-{n}"
        eid = self.new_id()
        if kind == "not_json":
            value = f"not json {n}"
        elif kind == "empty":
            value = b""
        elif kind == "binary":
            value = bytes([0xff, 0xfe, 0x00, 0x81]) + self.rng.randbytes(16)
        elif kind == "unknown_type":
            value = {"event_type": "SoakUnknownType", "event_id": eid, "user_id": "nobody"}
        elif kind == "validation":
            value = {"event_type": "UserRegistered", "event_id": eid, "user_id": f"nobody-{n}", "username": "x",
                     "email": "not-an-address"}
        elif kind == "future":
            value = {"event_type": "RoleDeleted", "event_id": eid, "role": f"soak-future-role-{n}",
                     "occurred_at": "2999-01-01T00:00:00Z"}
        elif kind == "no_type":
            value = {"event_id": eid, "user_id": f"nobody-{n}"}
        else:  # no_address: a reset for a user nobody knows, with no address in the event
            topic = AUTH_TOPIC
            value = {"event_type": "PasswordResetRequested", "event_id": eid, "user_id": f"nobody-{n}"}
        self.produce(topic, key, value, {}, kind="poison", poison=kind, expect_class=POISON[kind])

    def burst(self):
        """A user asking for more password resets than the rate limit allows (5 an hour)."""
        user = self.new_user()
        self.active.remove(user)  # nothing else for this user: the burst alone decides
        for _ in range(7):
            body = {"event_type": "PasswordResetRequested", "event_id": self.new_id(), "user_id": user.uid,
                    "email": user.email, "occurred_at": rfc3339(user.tick())}
            self.event(AUTH_TOPIC, user.uid, body, burst=True)
        self.bursts += 1

    def step(self):
        actions = [
            (self.new_user, 10), (self.mail_event, 30), (self.role_revocation, 20), (self.user_revocation, 10),
            (self.late_profile, 3), (self.duplicate, 5), (self.delete_user, 3), (self.stale_mail, 2), (self.poison, 3),
        ]
        if len(self.users) < 5:
            self.new_user()
            return
        if self.bursts < 3 and self.rng.random() < 0.004:
            self.burst()
            return
        total = sum(w for _, w in actions)
        r = self.rng.uniform(0, total)
        for action, weight in actions:
            r -= weight
            if r <= 0:
                action()
                return

    # -- running ----------------------------------------------------------------------

    def run(self):
        interval = 1.0 / self.rate
        next_at = time.monotonic()
        while not self.stop.is_set():
            with self.lock:
                self.step()
            next_at += interval
            delay = next_at - time.monotonic()
            if delay > 0:
                self.producer.poll(min(delay, 0.5))
                if next_at - time.monotonic() > 0:
                    self.stop.wait(next_at - time.monotonic())
            elif delay < -5:
                next_at = time.monotonic()  # far behind (a slow broker): do not burst to catch up

    def start(self):
        self.thread = threading.Thread(target=self.run, name="events", daemon=True)
        self.thread.start()

    def finish(self, timeout=300):
        """Stops producing; returns the number of records not acknowledged in time."""
        self.stop.set()
        if self.thread:
            self.thread.join()
        with self.lock:
            # Every kind of poison at least once, even in a short run.
            for _ in range(len(POISON)):
                self.poison()
            if self.bursts == 0:
                self.burst()
        remaining = self.producer.flush(timeout)
        self.log.close()
        return remaining


class OutboxAPI:
    """Simulated API transactions writing `outbox_events` rows: each thread owns its own
    aggregates (an API serializes the changes of one aggregate), inserts 1 to 3 rows for one
    aggregate per transaction with `created_at = clock_timestamp()`, and rolls back about one
    transaction in eight. A transaction whose COMMIT got no answer (PostgreSQL stopped) is
    logged `uncertain`: the table tells whether it happened."""

    def __init__(self, database_url, log_path, seed, rate, threads=2, aggregates_per_thread=25):
        self.url = database_url
        self.log = JsonLog(log_path)
        self.seed = seed
        self.rate = rate
        self.threads = []
        self.count = threads
        self.aggregates_per_thread = aggregates_per_thread
        self.stop = threading.Event()
        self.transactions = 0
        self.lock = threading.Lock()

    def _worker(self, index):
        import psycopg2

        rng = random.Random(self.seed * 100 + index)
        aggregates = [(rng.choice(list(OUTBOX_TOPICS)), str(uuid.UUID(int=rng.getrandbits(128))))
                      for _ in range(self.aggregates_per_thread)]
        connection = None
        interval = self.count / self.rate
        while not self.stop.is_set():
            self.stop.wait(rng.uniform(0.5, 1.5) * interval)
            try:
                if connection is None or connection.closed:
                    connection = psycopg2.connect(self.url, connect_timeout=5, application_name="soak-api")
                with self.lock:
                    self.transactions += 1
                    tx = self.transactions
                aggregate_type, aggregate_id = rng.choice(aggregates)
                rows = []
                rollback = rng.random() < 0.125
                cursor = connection.cursor()
                for _ in range(rng.randint(1, 3)):
                    row_id = str(uuid.uuid4())
                    data = {"soak_row": row_id, "aggregate": aggregate_id, "note": "soak"}
                    cursor.execute(
                        "INSERT INTO outbox_events (id, aggregate_type, aggregate_id, event_type, event_data, created_at) "
                        "VALUES (%s, %s, %s, %s, %s, clock_timestamp())",
                        (row_id, aggregate_type, aggregate_id, f"{aggregate_type}Changed", json.dumps(data)))
                    rows.append(row_id)
            except Exception:  # the database is down: try again with a new connection
                self._discard(connection)
                connection = None
                continue
            try:
                if rollback:
                    connection.rollback()
                    outcome = "rolled_back"
                else:
                    connection.commit()
                    outcome = "committed"
            except Exception:
                outcome = "rolled_back" if rollback else "uncertain"
                self._discard(connection)
                connection = None
            self.log.write(t="outbox", tx=tx, at=time.time(), aggregate_type=aggregate_type, aggregate_id=aggregate_id,
                           rows=rows, outcome=outcome)
        self._discard(connection)

    @staticmethod
    def _discard(connection):
        if connection is not None:
            try:
                connection.close()
            except Exception:
                pass

    def start(self):
        for i in range(self.count):
            t = threading.Thread(target=self._worker, args=(i,), name=f"outbox-api-{i}", daemon=True)
            t.start()
            self.threads.append(t)

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(60)
        self.log.close()
