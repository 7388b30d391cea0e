import Logging

/// Deletes processed outbox rows older than `retention` (`HERALD_OUTBOX_RETENTION`), at start
/// and then every `interval` (hourly), `batchSize` rows per statement so the API is never
/// locked out of its table for long. A failure is logged and tried again at the next turn.
public struct OutboxRetention: Sendable {
    public let store: any OutboxStore
    public let retention: Duration
    public let interval: Duration
    public let batchSize: Int
    let logger: Logger

    public init(
        store: any OutboxStore, retention: Duration, interval: Duration = .seconds(3600), batchSize: Int = 1000, logger: Logger
    ) {
        self.store = store
        self.retention = retention
        self.interval = interval
        self.batchSize = batchSize
        self.logger = logger
    }

    /// Deletes until the task is cancelled.
    public func run() async {
        await repeating(every: interval) { _ = await deleteOnce() }
    }

    /// One pass: the rows deleted, or nil when it failed (logged).
    @discardableResult
    public func deleteOnce() async -> Int? {
        do {
            let deleted = try await store.deleteProcessed(olderThan: retention, batchSize: batchSize)
            if deleted > 0 { logger.info("outbox retention: processed rows deleted", metadata: ["rows": "\(deleted)"]) }
            return deleted
        } catch {
            if !Task.isCancelled { logger.warning("outbox retention failed; will try again", metadata: ["error": "\(error)"]) }
            return nil
        }
    }
}
