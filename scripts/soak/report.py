"""RELIABILITY.md's template: the file's introduction and the "Soak" section, whose figures
the driver replaces between BEGIN and END after each run (SOAK_REPORT=0 leaves them)."""

BEGIN = "<!-- soak: the last run's summary, written by scripts/soak/soak.py -->"
END = "<!-- soak: end of summary -->"

INTRO = """# Reliability

How Herald's promises (README, "What it promises") are put under load and faults beyond
the unit and integration suites: what was run, how to run it again, and what it found.
"""

SECTION = f"""## Soak

`make soak` (installs what it needs with `scripts/deps.sh soak`, builds Herald, runs
`scripts/soak/soak.py`). `SOAK_SECONDS` sets the load-and-faults phase (default 600),
`SOAK_SEED` repeats a run's random choices (each run prints its seed); the other settings
are at the top of `scripts/soak/soak.py`. CI (`.ci/run`) runs a 90-second soak after
`make test`, with `SOAK_SELF_TEST=1`: after the real check it plants one violation of each
kind and fails unless the checker reports every one.

### What runs

Everything on 127.0.0.1, on ports free at run time, and stopped at the end (also on Ctrl-C
or failure): `herald broker` in its own process (the mock cluster, 6 partitions per topic,
`--rtt-file` to slow it down), redis-server (append-only file fsynced at every write),
PostgreSQL (initdb; durable commits), the test SMTP server (`smtp_server.py`: it records
every message it accepts, then waits up to 300 ms before answering 250, so a `kill -9`
often finds sends in flight), and two `herald run` instances, a and b, in one consumer group
with mail and the outbox relay on (`outbox_events` as in the seeds, `herald outbox
install-trigger`). Herald runs with its defaults except: SMTP timeout 20 s, mail claim
timeout 60 s, mail retries from 2 s to 15 s, dependency backoff capped at 10 s, session
timeout 10 s, outbox batches of 200.

The workload (about 22 records a second, each logged as JSON lines when produced, with its
partition and offset once acknowledged): users registering (`UserRegistered`,
`UserCreated`), every mail-bearing event (`EmailVerificationRequested`,
`PasswordResetRequested`, `PasswordChanged`, `EmailChangeRequested`, `EmailChanged`), users
deleted, role and user revocations dated anywhere in the last five minutes (so out of
order), records sent twice with the same id, registrations dated before everything else of
their user, mail events older than their kind's maximum age, bursts of seven password
resets to one address (the limit is five an hour), and poison records of every kind the
dead-letter topics take (not JSON, empty, binary, unknown type, failing validation, a time
in the year 2999, no type, a reset with no address anywhere). Meanwhile simulated API
transactions write 1 to 3 outbox rows for one aggregate each (about 7 a second; one in
eight is rolled back).

Faults, one at a time at random moments, each logged with its time: `kill -9` of a or b
and a restart; SIGTERM and a restart; Redis stopped and started; PostgreSQL stopped (fast
or immediate) and started; the SMTP server down; the SMTP server answering 451; the
broker's round-trip time at 300, 800 or 1500 ms; a rebalance (instance c joins, then leaves
with SIGTERM). An instance that exits on its own is restarted, and the exit is a violation.

After the load, a quiet period (bounded) waits for lag 0, no mail queued or sending and no
pending outbox row; a and b are stopped with SIGTERM.

### What the checker requires

It reads only the servers (Redis, PostgreSQL, the topics, the accepted messages,
`herald lag --json`) and the logs (what was produced, the outbox transactions, the faults,
Herald's log files):
- every `invalid_role:` / `revoked_user:` key holds the newest time its events carried,
  with its TTL (8 and 7 days, less the time since), and no other such key exists;
- every recipient row: `updated_at` the newest event's time, `deleted_at` the first deletion,
  the newest event's fields, and no field with a value no event carried;
- every (event, kind) of mail: sent and accepted exactly once, to the address the rules
  give; or `expired` because its event was older than the kind's maximum age; or
  `suppressed` by the rate limit (checked against the other rows to that address) or a
  deletion; or not queued because the recipient was deleted. A second copy (same
  Message-ID) is allowed only once, with a `kill -9` between the two, at most
  HERALD_SMTP_WORKERS per kill. Every link token's SHA-256 is in Redis with the right value
  and TTL, and the raw token appears nowhere else (a `pg_dump`, Herald's logs, the
  dead-letter topics, Redis);
- the dead-letter topics hold exactly the poison records, each with its key, value and
  headers, the provenance headers and the expected error class. A second copy is allowed
  only when the first consumer was killed or logged that it could not commit its progress
  (the record is then read again: at-least-once);
- every committed outbox row published, once (twice only with a `kill -9` or a PostgreSQL
  stop between the copies, at most one batch each, as the README says), to its topic with
  its key, value and headers, in `created_at` order per aggregate; no rolled-back row
  published; every row `processed`;
- the group's committed offsets at the end of every partition (`herald lag --json`, lag 0);
- every SIGTERM exit 0, and no instance exiting on its own.

### Last run

{BEGIN}
(no run yet)
{END}
"""
