"""Faults at random moments, one at a time, each logged (JSON lines) with its time when it
starts and when it is undone. Kinds:

    kill9        kill -9 of instance a or b, restarted a few seconds later
    sigterm      SIGTERM of instance a or b (its exit status logged), then a restart
    redis        redis-server stopped (SHUTDOWN) and started again on the same port
    postgres     PostgreSQL stopped (fast: a clean shutdown, or immediate: a crash) and started again
    smtp_down    the SMTP server stopped (cleanly) and started again
    smtp_4xx     the SMTP server answers every message 451 for a while
    broker_slow  the broker's round-trip time raised (herald broker --rtt-file), then back to 0
    rebalance    a third instance (c) joins the group, then leaves with SIGTERM
"""

import random
import signal
import threading
import time

KINDS = ["kill9", "sigterm", "redis", "postgres", "smtp_down", "smtp_4xx", "broker_slow", "rebalance"]


class Faults:
    def __init__(self, soak, log, seed, scale):
        self.soak = soak
        self.log = log
        self.rng = random.Random(seed)
        self.scale = scale
        self.stop = threading.Event()
        self.thread = None
        self.cycle = []
        self.counts = {k: 0 for k in KINDS}

    def span(self, low, high):
        return self.rng.uniform(low, high) * self.scale

    def pause(self, seconds):
        """Waits, but a stop request ends the wait early (the fault is still undone)."""
        self.stop.wait(seconds)

    def run(self, until):
        self.pause(self.span(10, 20))
        while not self.stop.is_set() and time.monotonic() < until:
            if not self.cycle:
                self.cycle = list(KINDS)
                self.rng.shuffle(self.cycle)
            kind = self.cycle.pop()
            try:
                getattr(self, kind)()
                self.counts[kind] += 1
            except Exception as error:
                self.log.write(t="fault", kind=kind, phase="error", at=time.time(), error=repr(error))
                raise
            self.pause(self.span(6, 18))

    def start(self, until):
        self.thread = threading.Thread(target=self._guarded, args=(until,), name="faults", daemon=True)
        self.thread.start()

    def _guarded(self, until):
        try:
            self.run(until)
        except Exception as error:
            self.soak.harness_failure(f"fault injection failed: {error!r}")

    def finish(self):
        self.stop.set()
        if self.thread:
            self.thread.join(300)

    def note(self, kind, phase, **details):
        self.log.write(t="fault", kind=kind, phase=phase, at=time.time(), **details)

    # -- the kinds --------------------------------------------------------------------

    def kill9(self):
        instance = self.soak.instances[self.rng.choice(["a", "b"])]
        pid = instance.process.pid
        instance.expected_down = True
        instance.process.signal(signal.SIGKILL)
        self.note("kill9", "start", instance=instance.name, pid=pid)
        instance.process.wait(30)
        self.pause(self.span(2, 8))
        instance.start()
        instance.expected_down = False
        self.note("kill9", "end", instance=instance.name, pid=instance.process.pid)

    def sigterm(self):
        instance = self.soak.instances[self.rng.choice(["a", "b"])]
        pid = instance.process.pid
        instance.expected_down = True
        self.note("sigterm", "start", instance=instance.name, pid=pid)
        started = time.monotonic()
        status = instance.process.stop(signal.SIGTERM, timeout=120)
        self.soak.record_exit(instance, status, expected=True, signal_sent="SIGTERM", seconds=time.monotonic() - started)
        self.pause(self.span(1, 5))
        instance.start()
        instance.expected_down = False
        self.note("sigterm", "end", instance=instance.name, pid=instance.process.pid, status=status)

    def redis(self):
        self.note("redis", "start")
        self.soak.redis.stop()
        self.pause(self.span(5, 25))
        self.soak.redis.start()
        self.note("redis", "end")

    def postgres(self):
        mode = self.rng.choice(["fast", "immediate"])
        self.note("postgres", "start", mode=mode)
        self.soak.postgres.stop(mode)
        self.pause(self.span(5, 25))
        self.soak.postgres.start()
        self.note("postgres", "end", mode=mode)

    def smtp_down(self):
        self.note("smtp_down", "start")
        self.soak.smtp.stop()
        self.pause(self.span(5, 25))
        self.soak.smtp.start()
        self.note("smtp_down", "end")

    def smtp_4xx(self):
        self.soak.smtp.defer(451)
        self.note("smtp_4xx", "start", code=451)
        self.pause(self.span(5, 20))
        self.soak.smtp.accept()
        self.note("smtp_4xx", "end")

    def broker_slow(self):
        rtt = self.rng.choice([300, 800, 1500])
        self.soak.broker.set_rtt(rtt)
        self.note("broker_slow", "start", rtt_ms=rtt)
        self.pause(self.span(8, 25))
        self.soak.broker.set_rtt(0)
        self.note("broker_slow", "end")

    def rebalance(self):
        c = self.soak.instances["c"]
        c.start()
        c.expected_down = False
        self.note("rebalance", "start", instance="c", pid=c.process.pid)
        self.pause(self.span(10, 25))
        c.expected_down = True
        started = time.monotonic()
        status = c.process.stop(signal.SIGTERM, timeout=120)
        self.soak.record_exit(c, status, expected=True, signal_sent="SIGTERM", seconds=time.monotonic() - started)
        self.note("rebalance", "end", instance="c", status=status)
