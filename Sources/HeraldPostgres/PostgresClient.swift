import HeraldCore
import Logging

/// A small pool of blocking libpq connections behind an async API.
///
/// - Connections are opened lazily, at most `poolSize` of them, each owned by its own
///   thread: libpq never blocks a thread of Swift's cooperative pool.
/// - A connection that broke (lost, closed by the server while idle, a connection-class or
///   fatal error) is dropped and re-opened on next use, so a PostgreSQL restart costs the
///   calls that were in flight, not the client.
/// - Every statement is parameterized (`PQexecParams`); see `PostgresConnection.execute`.
///
/// Errors are `PostgresError` (or whatever a body throws), or `CancellationError` when the
/// task is cancelled while it waits for a free connection; a statement already sent runs to
/// its end (at most the statement timeout).
public final class PostgresClient: Sendable {
    /// Where this client connects, without the password: `host=… port=… dbname=… user=…`.
    public let endpoint: String
    let pool: PostgresConnectionPool
    let connector: PostgresConnector

    /// - Parameters:
    ///   - conninfo: a libpq URI (`postgresql://…`) or `key=value` conninfo, expanded by
    ///     libpq (`expand_dbname`), so `sslmode` and every other libpq parameter in it
    ///     apply. Its own `connect_timeout`, `application_name` and `options` win over the
    ///     arguments below. Never logged with its password.
    ///   - poolSize: most connections open at once (at least 1).
    ///   - connectTimeout: libpq's `connect_timeout`, in whole seconds (rounded up).
    ///   - statementTimeout: the sessions' `statement_timeout` (`options=-c …`); zero turns
    ///     it off. A statement cut off by it fails with `57014`, transient.
    ///   - applicationName: `application_name`, shown in `pg_stat_activity`.
    ///   - password: overrides the connection string's password (for `*_FILE` secrets).
    ///   - preparesStatements: each connection prepares a statement the first time it runs it
    ///     and then only binds and executes it (`PostgresConnection.execute`); false for a
    ///     pooler that cannot keep a session's prepared statements (PgBouncer before 1.21 in
    ///     transaction mode).
    ///   - logger: receives connection events; never a password or parameter value.
    public init(
        conninfo: String, poolSize: Int = 4, connectTimeout: Duration = .seconds(5), statementTimeout: Duration = .seconds(30),
        applicationName: String = "herald", password: String? = nil, preparesStatements: Bool = true,
        observer: any ConnectionObserver = NoConnectionObserver(), logger: Logger
    ) {
        var settings = PostgresConnectionSettings(
            conninfo: conninfo, password: password, connectTimeout: connectTimeout, statementTimeout: statementTimeout,
            applicationName: applicationName)
        settings.preparesStatements = preparesStatements
        self.endpoint = settings.endpoint
        self.pool = PostgresConnectionPool(size: poolSize, name: "herald-pg")
        self.connector = PostgresConnector(settings: settings, logger: logger, observer: observer, dropped: DroppedConnections())
    }

    /// Runs `body` on a pooled connection, on that connection's dedicated thread (blocking
    /// libpq calls happen there, never on the cooperative pool). A transaction `body` leaves
    /// open is rolled back.
    @discardableResult
    public func withConnection<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) throws -> T) async throws -> T {
        let connector = self.connector
        return try await pool.withThread { thread in
            try await thread.run { slot in
                try connector.run(on: &slot, body)
            }
        }
    }

    /// `BEGIN`; `body`; `COMMIT` — `ROLLBACK` when `body` throws (its error is rethrown).
    /// Runs like `withConnection`. Retrying a transient failure is the caller's decision: a
    /// failed `COMMIT` may or may not have been applied when the connection was lost.
    @discardableResult
    public func transaction<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) throws -> T) async throws -> T {
        try await withConnection { connection in
            try connection.transaction(body)
        }
    }

    /// Checks that PostgreSQL answers (`SELECT 1`), connecting if needed.
    public func ping() async throws {
        try await withConnection { connection in
            _ = try connection.execute("SELECT 1")
        }
    }

    /// Closes idle connections now and busy ones when their call returns. Later calls throw
    /// `PostgresError` with code `clientClosed`.
    public func close() {
        pool.close()
    }
}
