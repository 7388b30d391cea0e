import Logging

/// The inbox rows a pruner deletes: processed-event ids past their retention.
public protocol InboxRetention: Sendable {
    /// Deletes inbox rows older than `age`, at most `batchSize` per statement; returns how many.
    func prune(olderThan age: Duration, batchSize: Int) async throws -> Int
}

/// Deletes inbox rows past their retention (`HERALD_INBOX_RETENTION`), at start and then
/// every `interval` (hourly), in small batches. A failure is logged and tried again at the
/// next turn: a database outage delays pruning, nothing else.
public struct InboxPruner: Sendable {
    public let inbox: any InboxRetention
    public let retention: Duration
    public let interval: Duration
    public let batchSize: Int
    let logger: Logger

    public init(
        inbox: any InboxRetention, retention: Duration, interval: Duration = .seconds(3600), batchSize: Int = 5000, logger: Logger
    ) {
        self.inbox = inbox
        self.retention = retention
        self.interval = interval
        self.batchSize = batchSize
        self.logger = logger
    }

    /// Prunes until the task is cancelled.
    public func run() async {
        await repeating(every: interval) { _ = await pruneOnce() }
    }

    /// One pass: the rows deleted, or nil when it failed (logged).
    @discardableResult
    public func pruneOnce() async -> Int? {
        do {
            let deleted = try await inbox.prune(olderThan: retention, batchSize: batchSize)
            if deleted > 0 { logger.info("inbox pruned", metadata: ["rows": "\(deleted)"]) }
            return deleted
        } catch {
            if !Task.isCancelled { logger.warning("inbox pruning failed; will try again", metadata: ["error": "\(error)"]) }
            return nil
        }
    }
}
