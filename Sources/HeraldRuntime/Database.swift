import Foundation
import HeraldCore
import HeraldPostgres
import HeraldSettings
import Logging

/// Herald's schema is behind the binary's migrations and may not be migrated here: the
/// command stops (exit 1) with this message.
public struct DatabaseSchemaBehind: Error, CustomStringConvertible {
    public let schema: String
    public let pending: [PostgresMigration]

    public var description: String {
        """
        the database schema "\(schema)" is behind: \(pending.count) migration(s) pending \
        (\(pending.map { "\($0.version) \($0.name)" }.joined(separator: ", "))). \
        Run `herald migrate`, or set HERALD_DATABASE_AUTO_MIGRATE=true.
        """
    }
}

public enum Database {
    /// Connects to Herald's database (`HERALD_DATABASE_URL`) and checks the schema: behind →
    /// migrate when `migrateIfBehind`, otherwise `DatabaseSchemaBehind`. An unreachable server
    /// is waited for (a signal cancels the wait).
    /// - Throws: `ConfigurationError` without a database URL, `DatabaseSchemaBehind`, or what
    ///   the database answered that is no outage.
    public static func open(
        _ settings: DatabaseSettings, poolSize: Int? = nil, logger: Logger, migrateIfBehind: Bool,
        observer: any ConnectionObserver = NoConnectionObserver()
    ) async throws -> PostgresClient {
        let connection = try settings.requireConnection().with(poolSize: poolSize)
        let client = PostgresClient(settings: connection, observer: observer, logger: Logger(label: "herald.postgres"))
        do {
            let migrator = PostgresMigrator(
                client: client, schema: settings.schema, migrations: HeraldSchema.migrations, logger: Logger(label: "herald.migrations"))
            let pending = try await retrying("check the database schema", logger: logger) { try await migrator.pending() }
            if pending.isEmpty { return client }
            guard migrateIfBehind else { throw DatabaseSchemaBehind(schema: settings.schema, pending: pending) }
            let applied = try await retrying("migrate", logger: logger) { try await migrator.migrate() }
            logger.notice("database migrated", metadata: ["applied": "\(applied.map(\.version))"])
            return client
        } catch {
            client.close()
            throw error
        }
    }

    /// Retries transient failures (server down, restarting) with backoff; others are thrown.
    static func retrying<T: Sendable>(
        _ what: String, logger: Logger, _ body: () async throws -> T
    ) async throws -> T {
        let backoff = Backoff(initial: .milliseconds(200), cap: .seconds(10))
        var attempt = 0
        while true {
            // A signal during start-up cancels the wait (StopSignals).
            try Task.checkCancellation()
            do {
                return try await body()
            } catch let error as ClassifiedError where error.isTransient {
                attempt += 1
                let delay = backoff.delay(attempt: attempt)
                logger.warning(
                    "database unavailable; retrying",
                    metadata: ["operation": "\(what)", "attempt": "\(attempt)", "error": "\(error)"])
                try await Task.sleep(for: delay)
            }
        }
    }
}
