#!/usr/bin/python3
"""`make soak`: Herald under a steady mixed load and random faults for a bounded time, then
a checker that fails on any violation of the README's promises.

    scripts/soak/soak.py path/to/herald

Environment:
    SOAK_SECONDS     load-and-faults phase (default 600); a quiet period follows
    SOAK_RATE        workload steps per second (default 20; about 1.1 records each)
    SOAK_OUTBOX_RATE outbox transactions per second (default 8)
    SOAK_SEED        random seed (default: from the clock; printed, so a run can be repeated)
    SOAK_QUIET_MAX   longest wait for lag 0 and an empty mail queue and outbox (default 420 s)
    SOAK_DIR         where runs go (default var/soak; each run in its own folder, `latest` links it)
    SOAK_REPORT      1 (default): write the summary into RELIABILITY.md's "Soak" section; 0: don't
    SOAK_SELF_TEST   1: after the check, plant one violation per category and require the
                     checker to report each (CI sets it)

Everything runs on 127.0.0.1 on ports free at run time: `herald broker` (6 partitions),
redis-server, PostgreSQL (initdb), the test SMTP server, and `herald run` instances a and b
(c joins for rebalances). Every process started is stopped at the end, on failure and on
Ctrl-C. Exit status: 0 when the checker found no violation, 1 otherwise, 2 when the harness
itself failed.
"""

import collections
import datetime
import json
import os
import signal
import sys
import threading
import time
import traceback
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import check  # noqa: E402
import faults as faults_module  # noqa: E402
import services  # noqa: E402
import workload  # noqa: E402
from services import REPOSITORY, SoakError  # noqa: E402

GROUP = "soak"
PARTITIONS = 6
MAIL_DOMAIN = "soak.herald.test"
SMTP_WORKERS = 4
CLAIM_TIMEOUT = 60
OUTBOX_BATCH = 200

OUTBOX_TABLE = """
CREATE TABLE outbox_events (
    id UUID PRIMARY KEY,
    aggregate_type VARCHAR(100) NOT NULL,
    aggregate_id UUID NOT NULL,
    event_type VARCHAR(100) NOT NULL,
    event_data JSONB NOT NULL,
    status VARCHAR(20) DEFAULT 'pending',
    retry_count INTEGER DEFAULT 0,
    created_at TIMESTAMP DEFAULT NOW(),
    processed_at TIMESTAMP NULL,
    error_message TEXT NULL
)
"""


def env_int(name, default):
    value = os.environ.get(name, "")
    return int(value) if value.strip() else default


def say(text):
    print(f"[soak {datetime.datetime.now().strftime('%H:%M:%S')}] {text}", flush=True)


class Soak:
    def __init__(self, herald):
        self.herald = os.path.abspath(herald)
        self.seconds = env_int("SOAK_SECONDS", 600)
        self.rate = env_int("SOAK_RATE", 20)
        self.outbox_rate = env_int("SOAK_OUTBOX_RATE", 8)
        self.seed = env_int("SOAK_SEED", int(time.time()) % 1_000_000)
        self.quiet_max = env_int("SOAK_QUIET_MAX", 420)
        base = os.path.join(REPOSITORY, os.environ.get("SOAK_DIR") or "var/soak")
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        self.dir = os.path.join(base, stamp)
        os.makedirs(self.dir, exist_ok=True)
        latest = os.path.join(base, "latest")
        if os.path.islink(latest) or os.path.exists(latest):
            os.unlink(latest)
        os.symlink(stamp, latest)
        self.processes = services.Processes()
        self.failure = None
        self.instances = {}
        self.exit_log = None
        self.started_at = None

    # -- the harness ------------------------------------------------------------------

    def harness_failure(self, message):
        if self.failure is None:
            self.failure = message
        say("HARNESS FAILURE: " + message)

    def record_exit(self, instance, status, expected, signal_sent=None, seconds=None):
        self.exit_log.write(t="exit", instance=instance.name, status=status, expected=expected, signal=signal_sent,
                            seconds=round(seconds, 2) if seconds is not None else None, at=time.time())

    def herald_env(self):
        return dict(
            os.environ, HERALD_KAFKA_BROKERS=self.broker.bootstrap, HERALD_KAFKA_GROUP=GROUP,
            HERALD_REDIS_URL=self.redis.url, HERALD_DATABASE_URL=self.postgres.url, HERALD_DATABASE_AUTO_MIGRATE="true",
            HERALD_LOG_FORMAT="json", HERALD_LOG_LEVEL="info",
            HERALD_KAFKA_PROPERTY_SESSION_TIMEOUT_MS="10000", HERALD_KAFKA_PROPERTY_HEARTBEAT_INTERVAL_MS="1000",
            HERALD_RETRY_MAX="10s",
            HERALD_SMTP_URL=f"smtp://127.0.0.1:{self.smtp.port}", HERALD_SMTP_ALLOW_PLAINTEXT="true",
            HERALD_SMTP_WORKERS=str(SMTP_WORKERS), HERALD_SMTP_TIMEOUT="20s", HERALD_SMTP_CONNECT_TIMEOUT="5s",
            HERALD_MAIL_FROM=f"Herald Soak <no-reply@{MAIL_DOMAIN}>", HERALD_LINK_BASE_URL="https://auth.soak.test",
            HERALD_MAIL_POLL_INTERVAL="1s", HERALD_MAIL_RETRY_INITIAL="2s", HERALD_MAIL_RETRY_MAX="15s",
            HERALD_MAIL_CLAIM_TIMEOUT=f"{CLAIM_TIMEOUT}s",
            HERALD_OUTBOX_ENABLED="true", HERALD_OUTBOX_BATCH_SIZE=str(OUTBOX_BATCH), HERALD_OUTBOX_POLL_INTERVAL="1s",
        )

    def start_servers(self):
        topics = list(workload.OUTBOX_TOPICS.values())
        self.broker = services.Broker(self.processes, self.herald, self.dir, PARTITIONS, topics).start()
        say(f"broker {self.broker.bootstrap} ({PARTITIONS} partitions per topic)")
        self.redis = services.Redis(self.processes, self.dir).start()
        say(f"redis {self.redis.url}")
        self.postgres = services.Postgres(self.processes, self.dir).init().start()
        say(f"postgres {self.postgres.url}")
        self.smtp = services.SMTP(self.processes, self.dir).start()
        say(f"smtp 127.0.0.1:{self.smtp.port} (messages in {self.smtp.directory})")
        self.postgres.psql(OUTBOX_TABLE)
        env = self.herald_env()
        for arguments in (["migrate"], ["outbox", "install-trigger"]):
            out = services.subprocess.run([self.herald] + arguments, env=env, capture_output=True, text=True, timeout=120,
                                          cwd=REPOSITORY)
            if out.returncode != 0:
                raise SoakError(f"herald {' '.join(arguments)} failed: {out.stdout}{out.stderr}")

    def start_instances(self):
        env = self.herald_env()
        for name in ("a", "b", "c"):
            instance = services.Herald(self.processes, self.herald, name, self.dir, env)
            instance.expected_down = True
            self.instances[name] = instance
        for name in ("a", "b"):
            self.instances[name].start()
            self.instances[name].expected_down = False
        for name in ("a", "b"):
            self.wait_ready(self.instances[name], 180)

    def wait_ready(self, instance, timeout):
        def ready():
            if not instance.alive():
                raise SoakError(f"herald-{instance.name} exited during start; see {instance.log_path}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{instance.http_port}/readyz", timeout=2) as r:
                    return r.status == 200
            except Exception:
                return False
        services.wait_until(f"herald-{instance.name} ready", ready, timeout, every=0.5)

    def monitor(self, stop):
        """Samples peak RSS each second; restarts an instance that exited on its own (as a
        supervisor would), logging the exit."""
        while not stop.is_set():
            for instance in self.instances.values():
                instance.sample_rss()
                if self.processes.closed:
                    return
                if instance.process is not None and not instance.alive() and not instance.expected_down:
                    status = instance.process.popen.returncode
                    say(f"herald-{instance.name} exited on its own with status {status}; restarting it")
                    self.record_exit(instance, status, expected=False)
                    try:
                        instance.start()
                    except SoakError:
                        return
            stop.wait(1.0)

    # -- quiet period -----------------------------------------------------------------

    def lag(self):
        out = services.subprocess.run(
            [self.herald, "lag", "--json", "--brokers", self.broker.bootstrap, "--group", GROUP, "--window", "1s"],
            capture_output=True, text=True, timeout=120, env=dict(os.environ, HERALD_LOG_LEVEL="error"))
        if out.returncode != 0:
            return None
        return json.loads(out.stdout.strip().splitlines()[-1])

    def backlog(self):
        counts = self.postgres.psql(
            "SELECT (SELECT count(*) FROM herald.notifications WHERE status IN ('queued', 'sending')) || ' ' || "
            "(SELECT count(*) FROM outbox_events WHERE status = 'pending')")
        mail, outbox = counts.split()
        return int(mail), int(outbox)

    def quiet(self):
        say(f"quiet period: waiting for lag 0, no queued or sending mail, no pending outbox row (at most {self.quiet_max} s)")
        started = time.monotonic()
        deadline = started + self.quiet_max
        calm = 0
        last = None
        while time.monotonic() < deadline:
            try:
                report = self.lag()
                mail, outbox = self.backlog()
                total = report["total_lag"] if report else None
                last = (total, mail, outbox)
                if total == 0 and mail == 0 and outbox == 0:
                    calm += 1
                    if calm >= 2:
                        say(f"quiet after {time.monotonic() - started:.0f} s")
                        return time.monotonic() - started
                else:
                    calm = 0
            except Exception as error:
                last = repr(error)
                calm = 0
            time.sleep(2)
        raise SoakError(f"not quiet within {self.quiet_max} s (lag, mail backlog, outbox backlog): {last}")

    # -- the run ----------------------------------------------------------------------

    def run(self):
        say(f"run directory {self.dir}; seed {self.seed}; {self.seconds} s of load and faults")
        with open(os.path.join(self.dir, "settings.json"), "w") as f:
            json.dump({"seconds": self.seconds, "rate": self.rate, "outbox_rate": self.outbox_rate, "seed": self.seed},
                      f)
        self.start_servers()
        self.exit_log = workload.JsonLog(os.path.join(self.dir, "faults.jsonl"))
        self.start_instances()
        say("herald-a and herald-b ready")
        stop_monitor = threading.Event()
        monitor = threading.Thread(target=self.monitor, args=(stop_monitor,), name="monitor", daemon=True)
        monitor.start()

        run_id = f"{self.seed:06d}"
        events = workload.EventWorkload(self.broker.bootstrap, os.path.join(self.dir, "events.jsonl"), self.seed, self.rate,
                                        run_id)
        outbox = workload.OutboxAPI(self.postgres.url, os.path.join(self.dir, "outbox.jsonl"), self.seed, self.outbox_rate)
        scale = max(0.3, min(1.0, self.seconds / 600))
        faults = faults_module.Faults(self, self.exit_log, self.seed, scale)
        self.started_at = time.time()
        end = time.monotonic() + self.seconds
        events.start()
        outbox.start()
        faults.start(until=end)
        next_report = time.monotonic() + 30
        while time.monotonic() < end and self.failure is None:
            time.sleep(1)
            if time.monotonic() >= next_report:
                next_report += 30
                say(f"{int(self.seconds - (end - time.monotonic()))} s: {events.records} records, "
                    f"{outbox.transactions} outbox transactions, faults so far {sum(faults.counts.values())}")
        say("load phase over: undoing the current fault, stopping the workload")
        faults.finish()
        unacknowledged = events.finish()
        outbox.finish()
        if unacknowledged:
            say(f"{unacknowledged} record(s) still unacknowledged after the flush")
        if self.failure:
            raise SoakError(self.failure)
        # Everything back: the servers up, a and b running, c gone.
        self.broker.set_rtt(0)
        self.smtp.accept()
        for name in ("a", "b"):
            if not self.instances[name].alive():
                self.instances[name].start()
                self.instances[name].expected_down = False
        quiet_seconds = self.quiet()
        stop_monitor.set()
        monitor.join()
        for name in ("a", "b"):
            instance = self.instances[name]
            instance.sample_rss()
            instance.expected_down = True
            started = time.monotonic()
            status = instance.process.stop(signal.SIGTERM, timeout=120)
            self.record_exit(instance, status, expected=True, signal_sent="SIGTERM", seconds=time.monotonic() - started)
        self.exit_log.close()

        say("checking")
        context = self.context()
        with open(os.path.join(self.dir, "context.json"), "w") as f:
            json.dump(context, f, indent=2)
        result = check.Checker(context).run()
        result["faults"] = self.fault_counts()
        result["settings"] = {"seconds": self.seconds, "rate": self.rate, "outbox_rate": self.outbox_rate, "seed": self.seed,
                              "quiet_seconds": round(quiet_seconds), "partitions": PARTITIONS}
        result["peak_rss_mib"] = {f"herald-{n}": round(i.peak_rss_kib / 1024, 1) for n, i in self.instances.items()
                                  if i.peak_rss_kib}
        result["starts"] = {f"herald-{n}": i.starts for n, i in self.instances.items()}
        result["run_dir"] = os.path.relpath(self.dir, REPOSITORY)
        with open(os.path.join(self.dir, "result.json"), "w") as f:
            json.dump(result, f, indent=2, sort_keys=True)
        if os.environ.get("SOAK_SELF_TEST", "0") == "1":
            import selftest

            say("checker self-test: planting one violation per category and checking again")
            caught, missed = selftest.run(context)
            for category, what in sorted(caught.items()):
                say(f"  caught [{category}]: {what}")
            if missed:
                raise SoakError(f"the checker missed planted violations: {missed}")
            say(f"checker self-test: all {len(caught)} planted violations reported")
        return result

    def fault_counts(self):
        counts = {k: 0 for k in faults_module.KINDS}
        for line in services.read_json_lines(os.path.join(self.dir, "faults.jsonl")):
            if line["t"] == "fault" and line["phase"] == "start":
                counts[line["kind"]] += 1
        return counts

    def context(self):
        return {
            "run_dir": self.dir, "bootstrap": self.broker.bootstrap, "redis_url": self.redis.url,
            "database_url": self.postgres.url, "postgres_port": self.postgres.port,
            "pg_dump": os.path.join(self.postgres.bin, "pg_dump"), "smtp_dir": self.smtp.directory, "herald": self.herald,
            "group": GROUP, "user_topic": workload.USER_TOPIC, "auth_topic": workload.AUTH_TOPIC, "dlq_suffix": ".dlq",
            "outbox_topics": workload.OUTBOX_TOPICS, "mail_domain": MAIL_DOMAIN, "smtp_workers": SMTP_WORKERS,
            "outbox_batch": OUTBOX_BATCH,
        }


def summary(result):
    s = result["stats"]
    lines = []
    settings = result["settings"]
    lines.append(f"Run {result['run_dir']}: {settings['seconds']} s of load and faults (seed {settings['seed']}), "
                 f"then {settings['quiet_seconds']} s until quiet.")
    lines.append("")
    lines.append("| measure | value |")
    lines.append("|---|---:|")
    lines.append(f"| records produced (acknowledged) | {s.get('records', 0):,} |")
    lines.append(f"| distinct events | {s.get('events', 0):,} |")
    lines.append(f"| records sent twice on purpose (same id) | {s.get('duplicate_records', 0):,} |")
    poison = s.get("poison", {})
    lines.append(f"| poison records | {sum(poison.values()):,} ({', '.join(f'{k} {v}' for k, v in sorted(poison.items()))}) |")
    lines.append(f"| dead letters | {s.get('dead_letters', 0):,} |")
    lines.append(f"| revocation keys checked | {s.get('revocation_keys', 0):,} |")
    lines.append(f"| recipients checked | {s.get('recipients', 0):,} ({s.get('recipients_deleted', 0)} deleted) |")
    lines.append(f"| mails expected (event, kind) | {s.get('mail_expected', 0):,} |")
    lines.append(f"| mails accepted by the SMTP server | {s.get('mail_accepted', 0):,} |")
    for outcome, count in sorted(s.get("mail_outcomes", {}).items()):
        lines.append(f"| mail: {outcome} | {count:,} |")
    lines.append(f"| link tokens checked | {s.get('link_tokens', 0):,} |")
    o = s.get("outbox", {})
    tx = o.get("transactions", {})
    lines.append(f"| outbox transactions | {sum(tx.values()):,} ({', '.join(f'{k} {v}' for k, v in sorted(tx.items()))}) |")
    lines.append(f"| outbox rows committed / rolled back | {o.get('rows_committed', 0):,} / {o.get('rows_rolled_back', 0):,} |")
    lines.append(f"| outbox messages published | {o.get('messages', 0):,} over {o.get('aggregates', 0)} aggregates |")
    lines.append(f"| faults | {', '.join(f'{k} {v}' for k, v in result['faults'].items())} |")
    lines.append(f"| herald starts | {', '.join(f'{k} {v}' for k, v in result['starts'].items())} |")
    lines.append(f"| peak RSS | {', '.join(f'{k} {v} MiB' for k, v in result['peak_rss_mib'].items())} |")
    extra_letters = s.get("dead_letters", 0) - sum(poison.values())
    lines.append(f"| duplicates, each explained below: mails, outbox messages, extra dead letters | "
                 f"{s.get('mail_duplicates', 0)}, {o.get('duplicates', 0)}, {extra_letters} |")
    lines.append(f"| mails sent whose outcome a kill -9 kept from being recorded (explained below) | "
                 f"{s.get('mail_unrecorded', 0)} |")
    lines.append(f"| final lag | {s.get('lag', {}).get('total_lag')} |")
    lines.append(f"| **violations** | **{len(result['violations'])}** |")
    if result["explained"]:
        lines.append("")
        lines.append("Duplicates and what explains them:")
        for e in result["explained"]:
            if e["what"] != "dead letter":
                lines.append(f"- {e['detail']}: {e['crash']}")
        letters = [e for e in result["explained"] if e["what"] == "dead letter"]
        if letters:
            # Many, and alike: counted by cause.
            causes = collections.Counter(
                "a kill -9" if cause.startswith("kill -9") else cause.split(": ", 1)[-1].split(" (")[0] + " ("
                + cause.split("(", 1)[-1].split(",")[0] + ")"
                for e in letters for cause in e["crash"].split("; "))
            lines.append(f"- {len(letters)} poison records dead-lettered more than once "
                         f"({sum(causes.values()) + len(letters)} letters for them), each extra copy after: "
                         + ", ".join(f"{what} × {n}" for what, n in causes.most_common()))
    if result["violations"]:
        lines.append("")
        lines.append("Violations:")
        for v in result["violations"][:200]:
            lines.append(f"- [{v['category']}] {v['message']}")
        if len(result["violations"]) > 200:
            lines.append(f"- … and {len(result['violations']) - 200} more (result.json)")
    return "\n".join(lines)


def write_reliability(text):
    """Puts the run's summary between the markers of RELIABILITY.md's "Soak" section (the
    section, and the file, are made from report.py's template when missing)."""
    import report

    path = os.path.join(REPOSITORY, "RELIABILITY.md")
    content = open(path).read() if os.path.exists(path) else report.INTRO
    if report.BEGIN not in content:
        content = content.rstrip("\n") + "\n\n" + report.SECTION
    head, _, rest = content.partition(report.BEGIN)
    _, _, tail = rest.partition(report.END)
    with open(path, "w") as f:
        f.write(head + report.BEGIN + "\n" + text.strip() + "\n" + report.END + tail)


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    # SIGTERM, and SIGINT even when started in the background (where it is ignored by
    # default): stop everything this run started.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    soak = Soak(sys.argv[1])
    status = 2
    try:
        result = soak.run()
        text = summary(result)
        with open(os.path.join(soak.dir, "summary.md"), "w") as f:
            f.write(text + "\n")
        print()
        print(text)
        print()
        # One closing line a CI log reader understands: the checks by category.
        failed = sorted({v["category"] for v in result["violations"]})
        print(f"soak: {len(check.CATEGORIES) - len(set(failed) & set(check.CATEGORIES))} passed, {len(failed)} failed")
        status = 1 if result["violations"] else 0
        if os.environ.get("SOAK_REPORT", "1") != "0":
            write_reliability(text)
            say("RELIABILITY.md updated (section Soak)")
    except KeyboardInterrupt:
        say("interrupted: stopping everything")
        status = 130
    except SoakError as error:
        say(f"harness failure: {error}")
    except Exception:
        traceback.print_exc()
    finally:
        soak.processes.stop_all()
        say(f"all processes stopped; logs in {soak.dir}")
    return status


if __name__ == "__main__":
    sys.exit(main())
