"""The servers a soak run starts, each on 127.0.0.1 on a port free at run time, and the
`herald run` instances. Every process started here is registered, so that `Processes.stop_all`
(called on exit, on Ctrl-C and on failure) ends each of them, by its own pid."""

import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time

REPOSITORY = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SMTP_SERVER = os.path.join(REPOSITORY, "Tests/HeraldIntegrationTests/Support/smtp_server.py")
PYTHON = "/usr/bin/python3"


class SoakError(Exception):
    """The harness itself could not do what it needed (a server that does not start)."""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_is_free(port):
    """Whether a server could listen on the port now (servers set SO_REUSEADDR, so
    connections of the previous one in TIME_WAIT do not count)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def listening(port):
    with socket.socket() as s:
        s.settimeout(0.5)
        try:
            s.connect(("127.0.0.1", port))
            return True
        except OSError:
            return False


def wait_until(what, condition, timeout, every=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(every)
    raise SoakError(f"{what}: not within {timeout:.0f} s")


class Process:
    """One child process, in its own session (Ctrl-C in the terminal reaches only the
    driver, which then stops its children), output appended to a log file."""

    def __init__(self, registry, name, argv, log_path, env=None, cwd=None, preexec=None):
        self.registry = registry
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self.env = env
        self.cwd = cwd
        self.popen = None
        self.preexec = preexec

    def start(self):
        if self.registry.closed:
            raise SoakError(f"not starting {self.name}: the soak is stopping")
        log = open(self.log_path, "ab")
        self.popen = subprocess.Popen(
            self.argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=self.env,
            cwd=self.cwd, start_new_session=True)
        log.close()
        if not self.registry.add(self):
            # stop_all began meanwhile and will not see this one: end it here.
            self.popen.kill()
            self.popen.wait()
            raise SoakError(f"not starting {self.name}: the soak is stopping")
        return self

    @property
    def pid(self):
        return self.popen.pid if self.popen else None

    def alive(self):
        return self.popen is not None and self.popen.poll() is None

    def signal(self, sig):
        if self.alive():
            try:
                os.kill(self.popen.pid, sig)
            except ProcessLookupError:
                pass

    def wait(self, timeout):
        """The exit status (negative: the signal), or None if still running after timeout."""
        if self.popen is None:
            return None
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, sig=None, timeout=30):
        sig = sig or signal.SIGTERM
        if not self.alive():
            return self.popen.returncode if self.popen else None
        self.signal(sig)
        status = self.wait(timeout)
        if status is None:
            self.signal(signal.SIGKILL)
            status = self.wait(10)
        return status


class Processes:
    def __init__(self):
        self.lock = threading.Lock()
        self.started = []
        self.closed = False

    def add(self, process):
        with self.lock:
            if self.closed:
                return False
            self.started.append(process)
            return True

    def stop_all(self):
        """Stops every process started, by its pid; no process starts after this began
        (a supervisor thread restarting an instance it saw exit gets an error instead)."""
        with self.lock:
            self.closed = True
            started = list(self.started)
        for p in reversed(started):
            p.signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for p in reversed(started):
            p.wait(max(0.1, deadline - time.monotonic()))
        for p in started:
            if p.alive():
                p.signal(signal.SIGKILL)
                p.wait(5)


class Broker:
    """`herald broker` in its own process: the mock cluster with the consumed topics, their
    dead-letter topics and the outbox topics; --rtt-file slows it down at run time."""

    def __init__(self, registry, herald, directory, partitions, topics):
        self.directory = directory
        self.bootstrap_file = os.path.join(directory, "bootstrap")
        self.rtt_file = os.path.join(directory, "broker-rtt")
        argv = [herald, "broker", "--partitions", str(partitions), "--bootstrap-file", self.bootstrap_file,
                "--rtt-file", self.rtt_file]
        for t in topics:
            argv += ["--topic", t]
        env = dict(os.environ, HERALD_LOG_FORMAT="json")
        self.process = Process(registry, "broker", argv, os.path.join(directory, "broker.log"), env=env)
        self.bootstrap = None

    def start(self):
        self.set_rtt(0)
        self.process.start()
        wait_until("herald broker writes its address", lambda: os.path.exists(self.bootstrap_file)
                   and open(self.bootstrap_file).read().strip() != "", 60)
        self.bootstrap = open(self.bootstrap_file).read().strip()
        return self

    def set_rtt(self, milliseconds):
        tmp = self.rtt_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(str(milliseconds))
        os.replace(tmp, self.rtt_file)


class Redis:
    """redis-server with an append-only file fsynced at every write: a stop and start keeps
    every acknowledged write, as a production Redis that revocations rely on must."""

    def __init__(self, registry, directory):
        self.registry = registry
        self.directory = os.path.join(directory, "redis")
        os.makedirs(self.directory, exist_ok=True)
        self.port = free_port()
        self.process = None

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self):
        wait_until(f"port {self.port} free for Redis", lambda: port_is_free(self.port), 60, every=0.5)
        argv = ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--dir", self.directory,
                "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--daemonize", "no"]
        self.process = Process(self.registry, "redis", argv, os.path.join(self.directory, "redis.log")).start()
        wait_until("redis-server answers", lambda: self._ping(), 30)
        return self

    def _ping(self):
        if not self.process.alive():
            raise SoakError("redis-server exited; see " + self.process.log_path)
        try:
            out = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(self.port), "ping"], capture_output=True,
                                 text=True, timeout=5).stdout
            return out.strip() == "PONG"
        except subprocess.TimeoutExpired:
            return False

    def stop(self):
        """SHUTDOWN by SIGTERM: the append-only file is complete."""
        return self.process.stop(signal.SIGTERM, timeout=30)


class Postgres:
    """A PostgreSQL cluster made by initdb, run as the `postgres` system user when we are root
    (through setpriv, so the pid is the postmaster's), on 127.0.0.1 and a free port."""

    def __init__(self, registry, directory):
        self.registry = registry
        self.directory = os.path.join(directory, "postgres")
        self.data = os.path.join(self.directory, "data")
        self.port = free_port()
        self.process = None
        candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]))
        if not candidates:
            raise SoakError("PostgreSQL server binaries not found (apt-get install postgresql)")
        self.bin = candidates[-1]
        self.as_postgres = os.geteuid() == 0

    @property
    def url(self):
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _argv(self, program, args):
        argv = [os.path.join(self.bin, program)] + args
        if self.as_postgres:
            argv = ["setpriv", "--reuid", "postgres", "--regid", "postgres", "--init-groups"] + argv
        return argv

    def init(self):
        os.makedirs(self.directory, exist_ok=True)
        if self.as_postgres:
            shutil.chown(self.directory, "postgres", "postgres")
        log = os.path.join(self.directory, "initdb.log")
        with open(log, "wb") as out:
            status = subprocess.run(
                self._argv("initdb", ["-D", self.data, "--auth=trust", "-E", "UTF8", "--no-locale", "--no-sync",
                                      "-U", "postgres", "--no-instructions"]),
                stdout=out, stderr=subprocess.STDOUT).returncode
        if status != 0:
            raise SoakError("initdb failed: " + open(log).read()[-2000:])
        return self

    def start(self):
        wait_until(f"port {self.port} free for PostgreSQL", lambda: port_is_free(self.port), 60, every=0.5)
        # Durable commits (synchronous_commit on): a crash of the server must not lose a
        # transaction it acknowledged. fsync stays off: the machine itself does not crash.
        settings = ["listen_addresses=127.0.0.1", f"unix_socket_directories={self.directory}", "fsync=off",
                    "full_page_writes=off", "shared_buffers=32MB", "max_connections=120", "log_min_messages=warning"]
        args = ["-D", self.data, "-p", str(self.port)]
        for s in settings:
            args += ["-c", s]
        self.process = Process(self.registry, "postgres", self._argv("postgres", args),
                               os.path.join(self.directory, "postgres.log")).start()
        wait_until("PostgreSQL accepts connections", self._ready, 60)
        return self

    def _ready(self):
        if not self.process.alive():
            raise SoakError("postgres exited; see " + self.process.log_path)
        status = subprocess.run([os.path.join(self.bin, "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-q"],
                                capture_output=True).returncode
        return status == 0

    def stop(self, mode="fast"):
        """fast: SIGINT (sessions ended, a clean shutdown); immediate: SIGQUIT (a crash,
        recovery at the next start)."""
        sig = signal.SIGINT if mode == "fast" else signal.SIGQUIT
        return self.process.stop(sig, timeout=60)

    def psql(self, sql):
        env = dict(os.environ, PGCONNECT_TIMEOUT="10")
        out = subprocess.run([os.path.join(self.bin, "psql"), "-At", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
                              "-p", str(self.port), "-U", "postgres", "-d", "postgres", "-c", sql],
                             capture_output=True, text=True, env=env, timeout=120)
        if out.returncode != 0:
            raise SoakError(f"psql failed: {out.stderr.strip()}")
        return out.stdout.strip()

    def dump(self, path):
        with open(path, "wb") as out:
            status = subprocess.run([os.path.join(self.bin, "pg_dump"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                                     "-d", "postgres"], stdout=out, stderr=subprocess.PIPE, timeout=300)
        if status.returncode != 0:
            raise SoakError("pg_dump failed: " + status.stderr.decode(errors="replace"))


class SMTP:
    """The test SMTP server (aiosmtpd), recording every message it accepts; it can be
    stopped (cleanly, see smtp_server.py) and told to defer everything with 4xx."""

    def __init__(self, registry, directory):
        self.registry = registry
        self.directory = os.path.join(directory, "smtp")
        os.makedirs(self.directory, exist_ok=True)
        self.defer_file = os.path.join(directory, "smtp-defer")
        self.port = free_port()
        self.process = None

    def start(self):
        wait_until(f"port {self.port} free for SMTP", lambda: port_is_free(self.port), 60, every=0.5)
        ready = os.path.join(self.directory, "ready")
        if os.path.exists(ready):
            os.unlink(ready)
        # Up to 300 ms per message, so that a kill -9 often finds sends in flight.
        argv = [PYTHON, SMTP_SERVER, "--port", str(self.port), "--dir", self.directory, "--defer-file", self.defer_file,
                "--delay", "0.3"]
        self.process = Process(self.registry, "smtp", argv, os.path.join(os.path.dirname(self.directory), "smtp.log")).start()
        wait_until("the SMTP server listens", lambda: os.path.exists(ready) or not self.process.alive(), 30)
        if not self.process.alive():
            raise SoakError("the SMTP server exited; see " + self.process.log_path)
        return self

    def stop(self):
        return self.process.stop(signal.SIGTERM, timeout=30)

    def defer(self, code):
        with open(self.defer_file, "w") as f:
            f.write(str(code))

    def accept(self):
        if os.path.exists(self.defer_file):
            os.unlink(self.defer_file)


class Herald:
    """One `herald run` instance (a name that survives restarts: a, b, c). Each start is a
    new process appending to the instance's log; its peak RSS (VmHWM) is sampled."""

    def __init__(self, registry, herald, name, directory, env):
        self.registry = registry
        self.herald = herald
        self.name = name
        self.log_path = os.path.join(directory, f"herald-{name}.log")
        self.env = env
        self.process = None
        self.http_port = None
        self.peak_rss_kib = 0
        self.starts = 0

    def start(self):
        self.http_port = free_port()
        env = dict(self.env, HERALD_HTTP_ADDRESS=f"127.0.0.1:{self.http_port}")
        self.process = Process(self.registry, f"herald-{self.name}", [self.herald, "run"], self.log_path, env=env,
                               cwd=REPOSITORY).start()
        self.starts += 1
        return self

    def alive(self):
        return self.process is not None and self.process.alive()

    def sample_rss(self):
        if not self.alive():
            return
        try:
            with open(f"/proc/{self.process.pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        self.peak_rss_kib = max(self.peak_rss_kib, int(line.split()[1]))
        except OSError:
            pass


def read_json_lines(path):
    out = []
    if not os.path.exists(path):
        return out
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
    return out
