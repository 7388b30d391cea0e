import Foundation
import HeraldCore
import HeraldPostgres
import Logging
import ServiceLifecycle

enum Database {
    /// Connects to HERALD_DATABASE_URL and checks the schema: behind → migrate when allowed,
    /// otherwise stop with a message that says how. An unreachable server is waited for.
    static func open(
        _ config: HeraldConfiguration, logger: Logger, migrateIfBehind: Bool, observer: any ConnectionObserver = NoConnectionObserver()
    ) async throws -> PostgresClient {
        let url: String
        do {
            url = try config.database.requireURL()
        } catch {
            Environment.fail(error)
        }
        let client = PostgresClient(
            conninfo: url, poolSize: config.database.poolSize, connectTimeout: config.database.connectTimeout,
            statementTimeout: config.database.statementTimeout, applicationName: "herald",
            password: config.database.password?.value, observer: observer, logger: Logger(label: "herald.postgres"))
        let migrator = PostgresMigrator(
            client: client, schema: config.database.schema, migrations: HeraldSchema.migrations,
            logger: Logger(label: "herald.migrations"))
        let pending = try await retrying("check the database schema", logger: logger) { try await migrator.pending() }
        if pending.isEmpty { return client }
        if migrateIfBehind {
            let applied = try await retrying("migrate", logger: logger) { try await migrator.migrate() }
            logger.notice("database migrated", metadata: ["applied": "\(applied.map(\.version))"])
            return client
        }
        FileHandle.standardError.write(
            Data(
                """
                herald: the database schema "\(config.database.schema)" is behind: \(pending.count) migration(s) pending \
                (\(pending.map { "\($0.version) \($0.name)" }.joined(separator: ", "))). \
                Run `herald migrate`, or set HERALD_DATABASE_AUTO_MIGRATE=true.

                """.utf8))
        exit(1)
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

/// Deletes inbox rows past their retention, hourly, in small batches.
struct InboxPruner: Service {
    let inbox: PostgresEventInbox
    let retention: Duration
    let logger: Logger

    func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                let deleted = try await inbox.prune(olderThan: retention)
                if deleted > 0 { logger.info("inbox pruned", metadata: ["rows": "\(deleted)"]) }
            } catch {
                logger.warning("inbox pruning failed; will try again", metadata: ["error": "\(error)"])
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(3600)) }
        }
    }
}
