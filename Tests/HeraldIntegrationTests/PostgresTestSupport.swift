import HeraldPostgres
import Logging

/// Shared helpers of the PostgreSQL suites.
enum PostgresTests {
    static let quietLogger = Logger(label: "herald.postgres.test") { _ in SwiftLogNoOpLogHandler() }

    /// A client for `url` with short timeouts, so a failing test fails fast.
    static func client(
        _ url: String, poolSize: Int = 4, statementTimeout: Duration = .seconds(10), logger: Logger = quietLogger
    ) -> PostgresClient {
        PostgresClient(
            conninfo: url, poolSize: poolSize, connectTimeout: .seconds(2), statementTimeout: statementTimeout, logger: logger)
    }

    /// Runs `body` and returns the `PostgresError` it threw (nil when it threw nothing or
    /// something else, which the caller's `#expect` then reports).
    static func postgresError<T>(_ body: () async throws -> T) async -> PostgresError? {
        do {
            _ = try await body()
            return nil
        } catch let error as PostgresError {
            return error
        } catch {
            return nil
        }
    }
}
