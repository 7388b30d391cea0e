/// What the pipeline reports as it works; metrics attach here without touching the core.
public protocol ProcessingObserver: Sendable {
    func recorded(_ outcome: EventOutcome, topic: String, type: EventType?, count: Int)
    func retrying(topic: String, partition: Int32, attempt: Int, delay: Duration, error: any Error)
    func retryEnded(topic: String, partition: Int32)
    func applied(batchSize: Int, duration: Duration)
}

public enum EventOutcome: String, Sendable, CaseIterable {
    case applied, ignored, deadLettered = "dead_lettered"
}

extension ProcessingObserver {
    public func recorded(_ outcome: EventOutcome, topic: String, type: EventType?, count: Int) {}
    public func retrying(topic: String, partition: Int32, attempt: Int, delay: Duration, error: any Error) {}
    public func retryEnded(topic: String, partition: Int32) {}
    public func applied(batchSize: Int, duration: Duration) {}
}

public struct NoProcessingObserver: ProcessingObserver {
    public init() {}
}
