import HeraldCore
import Logging

/// Runs bodies on a slot's connection, opening it on first use and replacing it when it
/// broke. Runs on a `PostgresConnectionThread`: every method blocks.
struct PostgresConnector: Sendable {
    let settings: PostgresConnectionSettings
    let logger: Logger
    let observer: any ConnectionObserver
    /// Connections dropped and not yet replaced: the next opens count as reconnects.
    let dropped: DroppedConnections

    /// Runs `body` on `slot`'s connection, (re)connecting first when there is no usable one.
    /// Afterwards a transaction the body left open is rolled back, and a broken connection
    /// is dropped (`slot` becomes nil) so that the next job reconnects: that is how a
    /// PostgreSQL restart is survived.
    func run<T>(on slot: inout PostgresConnection?, _ body: (PostgresConnection) throws -> T) throws -> T {
        let connection = try usableConnection(&slot)
        let outcome = Result { try body(connection) }
        connection.reset()
        if connection.isBroken {
            slot = nil
            dropped.add()
            observer.failed(.postgres)
            var metadata: Logger.Metadata = [PostgresLogKey.endpoint: "\(settings.endpoint)"]
            if case .failure(let error) = outcome { metadata[PostgresLogKey.error] = "\(error)" }
            logger.notice("discarding a broken PostgreSQL connection", metadata: metadata)
        }
        return try outcome.get()
    }

    func usableConnection(_ slot: inout PostgresConnection?) throws(PostgresError) -> PostgresConnection {
        if let existing = slot {
            if existing.isReusable { return existing }
            logger.debug(
                "PostgreSQL closed an idle connection; reconnecting", metadata: [PostgresLogKey.endpoint: "\(settings.endpoint)"])
            slot = nil
            dropped.add()
        }
        do {
            let opened = try PostgresConnection.open(settings, logger: logger)
            logger.debug("connected to PostgreSQL", metadata: [PostgresLogKey.endpoint: "\(settings.endpoint)"])
            slot = opened
            observer.connected(.postgres, replacing: dropped.takeOne())
            return opened
        } catch {
            observer.failed(.postgres)
            report(error)
            throw error
        }
    }

    /// Configuration problems are logged loudly here: the caller only sees a transient error
    /// and keeps retrying.
    private func report(_ error: PostgresError) {
        let metadata: Logger.Metadata = [PostgresLogKey.endpoint: "\(settings.endpoint)", PostgresLogKey.error: "\(error)"]
        if error.code == .misconfigured {
            logger.error("the PostgreSQL connection string is invalid; check HERALD_DATABASE_URL", metadata: metadata)
        } else if error.summary.contains("authentication failed") || error.summary.contains("does not exist") {
            logger.error("PostgreSQL refused Herald's connection; check HERALD_DATABASE_URL", metadata: metadata)
        } else {
            logger.debug("cannot connect to PostgreSQL", metadata: metadata)
        }
    }
}
