import HeraldCore
import Logging

/// A small pool of blocking hiredis connections behind an async API.
///
/// - Connections are opened lazily, at most `poolSize` of them, each owned by its own
///   thread: hiredis never blocks a thread of Swift's cooperative pool.
/// - A connection that failed (I/O error, end of file, timeout) or that the server closed
///   while idle is dropped and re-opened on next use, so a Redis restart costs the calls
///   that were in flight, not the client.
/// - Commands are argument vectors sent with explicit lengths: binary-safe, no format
///   strings.
///
/// Errors are `RedisError`, or `CancellationError` when the task is cancelled while it waits
/// for a free connection; a command already sent runs to its end (at most the command
/// timeout), since a blocking hiredis call cannot be interrupted.
public final class RedisClient: Sendable {
    /// The endpoint this client talks to (its description carries no credentials).
    public let endpoint: RedisEndpoint
    private let pool: RedisConnectionPool
    private let connector: RedisConnector

    /// - Parameters:
    ///   - endpoint: where to connect; `AUTH` and `SELECT` are sent on every new connection.
    ///   - connectTimeout: limit for connect(2) on each new connection.
    ///   - commandTimeout: limit for each read and write on a connection.
    ///   - poolSize: most connections open at once (at least 1).
    ///   - observer: told of new connections, reconnects and failures (for metrics).
    ///   - logger: receives connection events; never a password or command argument.
    public init(
        endpoint: RedisEndpoint, connectTimeout: Duration = .seconds(2), commandTimeout: Duration = .seconds(5),
        poolSize: Int = 4, observer: any ConnectionObserver = NoConnectionObserver(), logger: Logger
    ) {
        self.endpoint = endpoint
        self.pool = RedisConnectionPool(size: poolSize, name: "herald-redis")
        self.connector = RedisConnector(
            settings: RedisConnection.Settings(
                endpoint: endpoint, connectTimeout: connectTimeout, commandTimeout: commandTimeout),
            logger: logger, observer: observer, dropped: DroppedConnections())
    }

    /// A client as `settings` describe it.
    public convenience init(settings: RedisSettings, observer: any ConnectionObserver = NoConnectionObserver(), logger: Logger) {
        self.init(
            endpoint: settings.endpoint, connectTimeout: settings.connectTimeout, commandTimeout: settings.commandTimeout,
            poolSize: settings.poolSize, observer: observer, logger: logger)
    }

    /// Sends every command in one write on one connection and returns one reply per command,
    /// in order. An error reply is returned in place (`.error`), it does not throw.
    /// - Parameter commands: each command is its arguments, the command name first.
    /// - Throws: `RedisError` when the connection failed; then some of the commands may have
    ///   run. Callers retry only idempotent work.
    public func pipeline(_ commands: [[[UInt8]]]) async throws -> [RedisReply] {
        if commands.isEmpty { return [] }
        if commands.contains(where: \.isEmpty) {
            throw RedisError.make(.invalidCommand, "a command needs at least one argument")
        }
        let connector = self.connector
        return try await pool.withThread { thread in
            try await thread.run { connection throws(RedisError) in
                try connector.execute(commands, on: &connection)
            }
        }
    }

    /// Sends one command and returns its reply.
    /// - Throws: `RedisError` for a failed connection and for an error reply (classified
    ///   by its first word; see `RedisError.Code`).
    public func command(_ arguments: [[UInt8]]) async throws -> RedisReply {
        let replies = try await pipeline([arguments])
        return try replies[0].throwingError()
    }

    /// Sends one command whose arguments are UTF-8 text.
    public func command(_ arguments: [String]) async throws -> RedisReply {
        try await command(arguments.map { Array($0.utf8) })
    }

    /// Checks that Redis answers (`PING`), connecting if needed.
    public func ping() async throws {
        let reply = try await command(["PING"])
        guard reply == .status("PONG") else {
            throw RedisError.make(.unexpectedReply, "PING was not answered with PONG")
        }
    }

    /// Closes idle connections now and busy ones when their call returns. Later calls
    /// throw `RedisError` with code `clientClosed`.
    public func close() {
        pool.close()
    }
}
