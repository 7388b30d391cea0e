import HeraldCore
import Logging

/// Runs pipelines on a slot's connection, opening it on first use and replacing it when it
/// broke. Runs on a `RedisConnectionThread`: every method blocks.
struct RedisConnector: Sendable {
    let settings: RedisConnection.Settings
    let logger: Logger
    let observer: any ConnectionObserver
    /// Connections dropped and not yet replaced: the next opens count as reconnects.
    let dropped: DroppedConnections

    /// Sends `commands` on `connection`, (re)connecting first when there is no usable
    /// connection. Any thrown error leaves `connection` nil, so the next job reconnects:
    /// that is how a Redis restart is survived.
    func execute(_ commands: [[[UInt8]]], on connection: inout RedisConnection?) throws(RedisError) -> [RedisReply] {
        let open = try usableConnection(&connection)
        do {
            return try open.pipeline(commands)
        } catch {
            connection = nil
            dropped.add()
            observer.failed(.redis)
            logger.notice(
                "discarding a broken Redis connection",
                metadata: [RedisLogKey.endpoint: "\(settings.endpoint)", RedisLogKey.error: "\(error)"])
            throw error
        }
    }

    private func usableConnection(_ connection: inout RedisConnection?) throws(RedisError) -> RedisConnection {
        if let existing = connection {
            if existing.isReusable { return existing }
            logger.debug(
                "Redis closed an idle connection; reconnecting", metadata: [RedisLogKey.endpoint: "\(settings.endpoint)"])
            connection = nil
            dropped.add()
        }
        do {
            let opened = try RedisConnection.open(settings)
            logger.debug("connected to Redis", metadata: [RedisLogKey.endpoint: "\(settings.endpoint)"])
            connection = opened
            observer.connected(.redis, replacing: dropped.takeOne())
            return opened
        } catch {
            observer.failed(.redis)
            report(error)
            throw error
        }
    }

    /// Configuration problems are logged loudly here: the caller only sees a transient
    /// error and keeps retrying.
    private func report(_ error: RedisError) {
        let metadata: Logger.Metadata = [RedisLogKey.endpoint: "\(settings.endpoint)", RedisLogKey.error: "\(error)"]
        switch error.code {
        case .authenticationFailed:
            logger.error(
                "Redis refused Herald's credentials; check HERALD_REDIS_URL and HERALD_REDIS_PASSWORD", metadata: metadata)
        case .misconfigured:
            logger.error("Redis refused the connection's setup; check the database in HERALD_REDIS_URL", metadata: metadata)
        default:
            logger.debug("cannot connect to Redis", metadata: metadata)
        }
    }
}
