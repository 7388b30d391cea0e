/// What the pipeline reports as it works; metrics attach here without touching the core.
public protocol ProcessingObserver: Sendable {
    func recorded(_ outcome: EventOutcome, topic: String, type: EventType?, count: Int)
    /// The partition waits `delay` before trying again (it is stalled for `reason`).
    func retrying(topic: String, partition: Int32, attempt: Int, delay: Duration, reason: StallReason, error: any Error)
    func retryEnded(topic: String, partition: Int32)
    func applied(batchSize: Int, duration: Duration)
}

public enum EventOutcome: String, Sendable, CaseIterable {
    /// Its effects were applied.
    case applied
    /// Acknowledged without effect (a type configured as ignored).
    case ignored
    /// Sent to the dead-letter topic.
    case deadLettered = "dead_lettered"
    /// Already applied before (a redelivery, or the same id again): acknowledged without
    /// applying it twice.
    case duplicate
}

extension ProcessingObserver {
    public func recorded(_ outcome: EventOutcome, topic: String, type: EventType?, count: Int) {}
    public func retrying(topic: String, partition: Int32, attempt: Int, delay: Duration, reason: StallReason, error: any Error) {}
    public func retryEnded(topic: String, partition: Int32) {}
    public func applied(batchSize: Int, duration: Duration) {}
}

public struct NoProcessingObserver: ProcessingObserver {
    public init() {}
}
