/// The outbox table. Adapters implement it (PostgreSQL: `PostgresOutboxStore`).
///
/// Order: a store hands out an aggregate's rows only from its oldest unprocessed row (by
/// creation time, then id), and only when no other relay holds that row; with it, the
/// aggregate's next pending rows, in order, up to its first `failed` row. So row N+1 of an
/// aggregate is never handed to one relay while another holds row N, nor while row N is
/// `failed`: a `failed` row blocks the later rows of its aggregate (and only of its
/// aggregate) until an operator retries it. The relay publishes the rows of one aggregate
/// one after the other (`OutboxRelay.deliver`).
public protocol OutboxStore: Sendable {
    /// Claims up to `limit` rows (oldest first, see above) so that no other relay can take
    /// them, calls `deliver` with them in that order, then records the outcomes it returned
    /// in the same transaction and commits; a row without an outcome stays pending. When
    /// `deliver` throws (the broker is unreachable), the claim is rolled back and nothing
    /// changes. With no claimable row, `deliver` is not called and the result is empty.
    func claim(
        limit: Int, deliver: @escaping @Sendable ([OutboxEvent]) async throws -> [OutboxOutcome]
    ) async throws -> [OutboxOutcome]

    /// Deletes processed rows older than `age`, `batchSize` rows per statement; returns how
    /// many went.
    func deleteProcessed(olderThan age: Duration, batchSize: Int) async throws -> Int

    /// Failed rows and the rows waiting behind them.
    func backlog() async throws -> OutboxBacklog
}

/// Delivers outbox messages to the broker.
public protocol OutboxPublisher: Sendable {
    /// Publishes `messages` and returns when the broker acknowledged or refused each one.
    /// The result has one entry per message, in order: nil when acknowledged, else why the
    /// broker refused that message for good (too large, unknown topic). Throws a
    /// `ClassifiedError` when the broker cannot be reached at all; some messages may then
    /// have been delivered anyway (the relay publishes them again, with the same `ce_id`).
    func publish(_ messages: [OutboxMessage]) async throws -> [String?]
}

/// Where metrics attach to the relay; every method has a no-op default.
public protocol OutboxObserver: Sendable {
    /// Rows the broker acknowledged, right after the acknowledgement (before the claim commits).
    func published(_ events: [OutboxEvent])
    /// A row could not be published; `final` when it is now `failed` and blocks its aggregate.
    func rowFailed(_ event: OutboxEvent, reason: String, final: Bool)
    /// The store or the broker failed; the relay waits `delay` before trying again.
    func retrying(attempt: Int, delay: Duration, error: any Error)
    /// The failed rows and the rows they hold back, checked periodically.
    func backlog(_ backlog: OutboxBacklog)
}

extension OutboxObserver {
    public func published(_ events: [OutboxEvent]) {}
    public func rowFailed(_ event: OutboxEvent, reason: String, final: Bool) {}
    public func retrying(attempt: Int, delay: Duration, error: any Error) {}
    public func backlog(_ backlog: OutboxBacklog) {}
}

public struct NoOutboxObserver: OutboxObserver {
    public init() {}
}
