import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A throwaway `redis-server` for integration tests: 127.0.0.1 on a port free at start,
/// no persistence (`--save '' --appendonly no`), its own temporary directory.
///
///     let redis = try await RedisServer.start()
///     let client = RedisClient(endpoint: try RedisEndpoint(url: redis.url), logger: logger)
///     try await redis.restart()              // same port, empty data
///
/// The server is killed when the object goes away (or on `shutdown()`). A missing
/// `redis-server` binary is an error, not a skip: the tests fail loudly.
///
/// `probe(_:)` talks to the server with its own tiny RESP client (not HeraldRedis), so tests
/// can check what the code under test wrote without trusting it.
final class RedisServer: Sendable {
    /// How to run the server.
    struct Options: Sendable {
        /// `--requirepass`.
        var password: String?
        /// Also listen on a unix socket in the server's directory.
        var unixSocket = false
        /// More `redis-server` arguments, such as `["--replicaof", "127.0.0.1", "1"]`.
        var arguments: [String] = []

        init(password: String? = nil, unixSocket: Bool = false, arguments: [String] = []) {
            self.password = password
            self.unixSocket = unixSocket
            self.arguments = arguments
        }
    }

    /// Why the harness could not run a server.
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    let port: Int
    let options: Options
    /// The server's working directory (its log is `redis.log` there).
    let directory: String
    private let executable: String
    private let process = ServerProcess()

    /// `redis://[:password@]127.0.0.1:port/0`.
    var url: String { url(database: 0) }

    func url(database: Int) -> String {
        let credentials = options.password.map { ":\(percentEncoded($0))@" } ?? ""
        return "redis://\(credentials)127.0.0.1:\(port)/\(database)"
    }

    /// The unix socket's path, when `Options.unixSocket` is set.
    var unixSocketPath: String? { options.unixSocket ? directory + "/redis.sock" : nil }

    /// `unix:///path/redis.sock?db=N`, when `Options.unixSocket` is set.
    func unixSocketURL(database: Int = 0) -> String? {
        unixSocketPath.map { "unix://\($0)?db=\(database)" }
    }

    /// Starts a server on a free port and waits until it answers `PING`.
    static func start(_ options: Options = Options()) async throws -> RedisServer {
        let executable = try findExecutable()
        var lastError: (any Error)?
        // Another process may take the port between choosing and binding it: try again.
        for _ in 0..<5 {
            let directory = try TestPorts.temporaryDirectory("redis")
            let server = RedisServer(port: try TestPorts.free(), options: options, directory: directory, executable: executable)
            do {
                try await server.start()
                return server
            } catch {
                lastError = error
                server.shutdown()
            }
        }
        throw lastError ?? Failure(description: "redis-server did not start")
    }

    private init(port: Int, options: Options, directory: String, executable: String) {
        self.port = port
        self.options = options
        self.directory = directory
        self.executable = executable
    }

    deinit {
        shutdown()
    }

    /// Starts the (stopped) server again on the same port and waits until it answers.
    func start() async throws {
        let pid = try spawn()
        process.started(pid)
        try await waitUntilReady(pid: pid)
    }

    /// Sends SIGTERM and waits for the server to exit (SIGKILL after 10 seconds).
    func stop() async throws {
        try await process.stop()
    }

    /// `stop()` then `start()`: same port, no data (nothing is persisted), no scripts.
    func restart() async throws {
        try await stop()
        try await start()
    }

    /// Kills the server at once and removes its directory. Idempotent.
    func shutdown() {
        process.killNow()
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// The client name of the harness's own connections (`CLIENT LIST` shows it), so tests
    /// can tell them from the connections of the code under test.
    static let probeClientName = "herald-test-probe"

    /// Sends one command over a fresh connection (after `AUTH`, `CLIENT SETNAME` and
    /// `SELECT database`) and returns the reply.
    func probe(_ arguments: [String], database: Int = 0) throws -> RESPValue {
        try probe(arguments.map { Array($0.utf8) }, database: database)
    }

    func probe(_ arguments: [[UInt8]], database: Int = 0) throws -> RESPValue {
        let connection = try RESPConnection(port: port)
        if let password = options.password {
            try connection.expectOK(["AUTH", password].map { Array($0.utf8) })
        }
        _ = try connection.send(["CLIENT", "SETNAME", Self.probeClientName].map { Array($0.utf8) })
        if database != 0 {
            try connection.expectOK(["SELECT", String(database)].map { Array($0.utf8) })
        }
        return try connection.send(arguments)
    }

    /// The server's log, for failure messages.
    func log() -> String {
        (try? String(contentsOfFile: directory + "/redis.log", encoding: .utf8)) ?? ""
    }

    // MARK: - Process

    private func arguments() -> [String] {
        var arguments = [
            executable, "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", directory, "--logfile", "", "--daemonize", "no",
        ]
        if let password = options.password { arguments += ["--requirepass", password] }
        if let socket = unixSocketPath { arguments += ["--unixsocket", socket, "--unixsocketperm", "700"] }
        return arguments + options.arguments
    }

    /// The server, with stdout and stderr appended to `redis.log`.
    private func spawn() throws -> pid_t {
        try TestProcess.spawn(arguments(), stdout: directory + "/redis.log")
    }

    private func waitUntilReady(pid: pid_t) async throws {
        let deadline = ContinuousClock.now + .seconds(120)
        while ContinuousClock.now < deadline {
            if process.reap(pid) {
                throw Failure(description: "redis-server exited during start on port \(port):\n\(log())")
            }
            if case .simple("PONG")? = try? probe(["PING"]) { return }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw Failure(description: "redis-server did not answer PING on port \(port) within 120 s:\n\(log())")
    }

    // MARK: - Setup helpers

    private static func findExecutable() throws -> String {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let candidates = path.split(separator: ":").map { "\($0)/redis-server" } + ["/usr/bin/redis-server", "/usr/local/bin/redis-server"]
        guard let found = candidates.first(where: { access($0, X_OK) == 0 }) else {
            throw Failure(description: "redis-server not found in PATH or /usr/bin: install redis-server to run these tests")
        }
        return found
    }

    private func percentEncoded(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? text
    }
}
