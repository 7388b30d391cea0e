import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A throwaway PostgreSQL 15 server for integration tests, run from Debian's binaries
/// (`/usr/lib/postgresql/15/bin`, or `$HERALD_POSTGRES_BIN`): a cluster made by `initdb`
/// (`--auth=trust`, UTF8, C locale, no fsync) in its own temporary directory, listening on
/// 127.0.0.1 on a port free at start and on a unix socket in that directory.
///
///     let pg = try await PostgresServer.start()
///     let client = PostgresClient(conninfo: pg.url, logger: logger)
///     try await pg.restart()                 // same port, same data
///     #expect(try pg.psql("SELECT count(*) FROM t") == "3")
///
/// PostgreSQL refuses to run as root: when the tests run as root, `initdb` and `postgres`
/// run as the `postgres` system user (Debian's package creates it) through
/// `setpriv --reuid --regid --init-groups`, which switches user and then execs, so the
/// spawned pid is the postmaster's own and signals reach it directly (`runuser` would stay
/// in between as the parent). Otherwise they run as the current user.
///
/// The server is killed and its directory removed when the object goes away (or on
/// `shutdown()`). A missing binary or user is an error, not a skip: the tests fail loudly.
final class PostgresServer: Sendable {
    /// Why the harness could not run a server.
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    private struct State {
        var pid: pid_t?
        var ownsDirectory = true
    }

    let port: Int
    /// The temporary directory: the cluster is in `data/`, the server's log in
    /// `postgres.log`, its unix socket here too.
    let directory: String
    private let binaries: String
    private let runAsPostgres: Bool
    private let state = Mutex(State())
    private let psqlCounter = Mutex(0)

    /// `postgresql://postgres@127.0.0.1:PORT/postgres`.
    var url: String { "postgresql://postgres@127.0.0.1:\(port)/postgres" }
    var dataDirectory: String { directory + "/data" }

    /// Creates a cluster and starts a server on a free port; returns once it accepts
    /// connections.
    static func start() async throws -> PostgresServer {
        let binaries = try findBinaries()
        let runAsPostgres = geteuid() == 0
        let directory = try makeTemporaryDirectory(ownedByPostgres: runAsPostgres)
        do {
            // One initdb per test process; every server gets a copy of that cluster. Dozens of
            // initdb runs at once were what made a busy two-core machine time out.
            let template = try await TemplateCluster.shared.directory(binaries: binaries, asPostgres: runAsPostgres)
            try await copyCluster(from: template + "/data", to: directory + "/data", asPostgres: runAsPostgres)
        } catch {
            try? FileManager.default.removeItem(atPath: directory)
            throw error
        }
        var lastError: (any Error)?
        // Another process may take the port between choosing and binding it: try again on
        // another port, with the same cluster.
        for _ in 0..<5 {
            let server = PostgresServer(
                port: try TestPorts.free(), directory: directory, binaries: binaries, runAsPostgres: runAsPostgres)
            do {
                try await server.start()
                return server
            } catch {
                lastError = error
                server.kill(removingDirectory: false)
            }
        }
        try? FileManager.default.removeItem(atPath: directory)
        throw lastError ?? Failure(description: "postgres did not start")
    }

    private init(port: Int, directory: String, binaries: String, runAsPostgres: Bool) {
        self.port = port
        self.directory = directory
        self.binaries = binaries
        self.runAsPostgres = runAsPostgres
    }

    deinit {
        shutdown()
    }

    /// Starts the (stopped) server again on the same port and data and waits until it
    /// accepts connections (at most 120 s).
    func start() async throws {
        let pid = try Self.spawn(
            binaries + "/postgres", serverArguments(), output: directory + "/postgres.log", asPostgres: runAsPostgres)
        state.withLock { $0.pid = pid }
        let deadline = ContinuousClock.now + .seconds(120)
        while ContinuousClock.now < deadline {
            if reap(pid) {
                throw Failure(description: "postgres exited during start on port \(port):\n\(log().suffix(3000))")
            }
            if isReady() { return }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw Failure(description: "postgres did not become ready on port \(port) within 120 s:\n\(log().suffix(3000))")
    }

    /// Fast shutdown (SIGINT: sessions are ended, the cluster is checkpointed) and waits for
    /// the server to exit (SIGKILL after 120 s).
    func stop() async throws {
        guard let pid = state.withLock({ $0.pid }) else { return }
        Glibc.kill(pid, SIGINT)
        let deadline = ContinuousClock.now + .seconds(120)
        while ContinuousClock.now < deadline {
            if reap(pid) { return }
            try await Task.sleep(for: .milliseconds(20))
        }
        Glibc.kill(pid, SIGKILL)
        _ = waitpid(pid, nil, 0)
        state.withLock { $0.pid = nil }
        throw Failure(description: "postgres did not stop within 120 s; killed")
    }

    /// `stop()` then `start()`: same port, same data.
    func restart() async throws {
        try await stop()
        try await start()
    }

    /// Kills the server at once and removes its directory. Idempotent.
    func shutdown() {
        kill(removingDirectory: true)
    }

    /// Runs `sql` with Debian's `psql -At -X` (an independent client) as `postgres` over TCP
    /// and returns its output without the final newline: one row per line, columns
    /// separated by `|`. Throws when psql fails (its stderr in the message). Bounded: psql is
    /// killed after 120 s.
    func psql(_ sql: String) throws -> String {
        let number = psqlCounter.withLock { counter in
            counter += 1
            return counter
        }
        let output = directory + "/psql-\(number).out"
        let errors = directory + "/psql-\(number).err"
        defer {
            unlink(output)
            unlink(errors)
        }
        let arguments = [
            "-At", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", String(port), "-U", "postgres", "-d",
            "postgres", "-c", sql,
        ]
        // Read-write even when a test made the database's sessions read-only by default.
        let environment = [
            "PGCONNECT_TIMEOUT": "10", "PGOPTIONS": "-c statement_timeout=30000 -c default_transaction_read_only=off",
            "PGCLIENTENCODING": "UTF8",
        ]
        let pid = try Self.spawn(
            binaries + "/psql", arguments, output: output, errors: errors, asPostgres: false, environment: environment)
        let status = try Self.waitSynchronously(pid, timeout: .seconds(120))
        let text = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        guard status == 0 else {
            let stderr = (try? String(contentsOfFile: errors, encoding: .utf8)) ?? ""
            throw Failure(description: "psql exited with \(status) for \(sql):\n\(stderr)")
        }
        return text.hasSuffix("\n") ? String(text.dropLast()) : text
    }

    /// The server's log, for failure messages.
    func log() -> String {
        (try? String(contentsOfFile: directory + "/postgres.log", encoding: .utf8)) ?? ""
    }

    // MARK: - Process

    /// The cluster `initdb` made once for this test process, copied for every server.
    private actor TemplateCluster {
        static let shared = TemplateCluster()
        private var made: Task<String, any Error>?

        func directory(binaries: String, asPostgres: Bool) async throws -> String {
            if let made { return try await made.value }
            let task = Task<String, any Error> {
                let directory = try PostgresServer.makeTemporaryDirectory(ownedByPostgres: asPostgres)
                try await PostgresServer.initdb(binaries: binaries, directory: directory, asPostgres: asPostgres)
                return directory
            }
            made = task
            return try await task.value
        }
    }

    /// `cp -a` of a stopped cluster's data directory (as the postgres user when the servers
    /// run as it), bounded like `initdb`.
    private static func copyCluster(from source: String, to destination: String, asPostgres: Bool) async throws {
        let log = destination + ".copy.log"
        let pid = try spawn("/bin/cp", ["-a", source, destination], output: log, asPostgres: asPostgres)
        try await waitForExit(pid, what: "copying the template cluster", log: log, limit: .seconds(300))
    }

    /// Waits (polling, without blocking a thread) for a helper program; throws when it fails
    /// or is not done within `limit`, a bound for a hung program, far above its usual time.
    private static func waitForExit(_ pid: pid_t, what: String, log: String, limit: Duration) async throws {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == pid {
                guard status == 0 else {
                    let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
                    throw Failure(description: "\(what) failed (status \(status)):\n\(text)")
                }
                return
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        Glibc.kill(pid, SIGKILL)
        _ = waitpid(pid, nil, 0)
        throw Failure(description: "\(what) did not finish within \(limit)")
    }

    private static func initdb(binaries: String, directory: String, asPostgres: Bool) async throws {
        let pid = try spawn(
            binaries + "/initdb",
            [
                "-D", directory + "/data", "--auth=trust", "-E", "UTF8", "--no-locale", "--no-sync", "-U", "postgres",
                "--no-instructions",
            ],
            output: directory + "/initdb.log", asPostgres: asPostgres)
        try await waitForExit(pid, what: "initdb", log: directory + "/initdb.log", limit: .seconds(300))
    }

    private func serverArguments() -> [String] {
        let settings = [
            "listen_addresses=127.0.0.1", "unix_socket_directories=\(directory)", "fsync=off", "synchronous_commit=off",
            "full_page_writes=off", "shared_buffers=16MB", "max_connections=60", "logging_collector=off",
            "log_min_messages=warning",
        ]
        return ["-D", dataDirectory, "-p", String(port)] + settings.flatMap { ["-c", $0] }
    }

    /// `postmaster.pid`'s status line says `ready` once the server accepts connections.
    private func isReady() -> Bool {
        guard let text = try? String(contentsOfFile: dataDirectory + "/postmaster.pid", encoding: .utf8) else {
            return false
        }
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        return lines.count > 7 && lines[7].trimmingCharacters(in: .whitespaces) == "ready"
    }

    /// Kills the server; with `removingDirectory: false` the directory is also kept when the
    /// object goes away (a failed attempt in `start()`, whose cluster the next one reuses).
    private func kill(removingDirectory: Bool) {
        let (running, ownsDirectory) = state.withLock { state in
            defer {
                state.pid = nil
                if !removingDirectory { state.ownsDirectory = false }
            }
            return (state.pid, state.ownsDirectory)
        }
        if let pid = running {
            // Immediate shutdown: the postmaster tells its children to quit at once.
            Glibc.kill(pid, SIGQUIT)
            if (try? Self.waitSynchronously(pid, timeout: .seconds(5))) == nil {
                Glibc.kill(pid, SIGKILL)
                _ = waitpid(pid, nil, 0)
            }
        }
        if removingDirectory && ownsDirectory { try? FileManager.default.removeItem(atPath: directory) }
    }

    /// A PostgreSQL program, through `setpriv` as the postgres user when `asPostgres`.
    private static func spawn(
        _ executable: String, _ arguments: [String], output: String, errors: String? = nil, asPostgres: Bool,
        environment: [String: String] = [:]
    ) throws -> pid_t {
        let user = asPostgres ? ["/usr/bin/setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--"] : []
        return try TestProcess.spawn(user + [executable] + arguments, stdout: output, stderr: errors, environment: environment)
    }

    /// Waits for `pid` to exit, blocking the calling thread for at most `timeout`; returns
    /// its exit status (128 + the signal when killed). Kills it and throws after the timeout.
    @discardableResult
    private static func waitSynchronously(_ pid: pid_t, timeout: Duration) throws -> Int32 {
        let deadline = ContinuousClock.now + timeout
        var status: Int32 = 0
        while ContinuousClock.now < deadline {
            let result = waitpid(pid, &status, WNOHANG)
            if result == pid {
                let signal = status & 0x7f
                return signal == 0 ? (status >> 8) & 0xff : 128 + signal
            }
            if result == -1 { return -1 }
            usleep(5_000)
        }
        Glibc.kill(pid, SIGKILL)
        _ = waitpid(pid, nil, 0)
        throw Failure(description: "process \(pid) did not exit within \(timeout)")
    }

    /// True (and forgets the pid) when the process has exited.
    private func reap(_ pid: pid_t) -> Bool {
        var status: Int32 = 0
        let result = waitpid(pid, &status, WNOHANG)
        guard result == pid || (result == -1 && errno == ECHILD) else { return false }
        state.withLock { if $0.pid == pid { $0.pid = nil } }
        return true
    }

    // MARK: - Setup helpers

    private static func findBinaries() throws -> String {
        let candidates = [ProcessInfo.processInfo.environment["HERALD_POSTGRES_BIN"], "/usr/lib/postgresql/15/bin"]
        for case let directory? in candidates
        where ["initdb", "postgres", "psql"].allSatisfy({ access("\(directory)/\($0)", X_OK) == 0 }) {
            return directory
        }
        throw Failure(
            description: "PostgreSQL 15 binaries (initdb, postgres, psql) not found in /usr/lib/postgresql/15/bin "
                + "or $HERALD_POSTGRES_BIN: install Debian's postgresql-15 to run these tests")
    }

    /// A fresh directory, given to the postgres user when the server will run as it.
    fileprivate static func makeTemporaryDirectory(ownedByPostgres: Bool) throws -> String {
        let directory = try TestPorts.temporaryDirectory("pg")
        if ownedByPostgres {
            guard let user = getpwnam("postgres") else {
                try? FileManager.default.removeItem(atPath: directory)
                throw Failure(description: "running as root, but there is no postgres user to run PostgreSQL as")
            }
            guard chown(directory, user.pointee.pw_uid, user.pointee.pw_gid) == 0 else {
                try? FileManager.default.removeItem(atPath: directory)
                throw Failure(description: "chown \(directory) failed: \(String(cString: strerror(errno)))")
            }
        }
        return directory
    }

}
