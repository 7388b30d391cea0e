import HeraldCore

/// Publishes outbox messages through the idempotent producer and waits for every
/// acknowledgement. A record the broker refuses for good (too large, invalid, unknown or
/// unauthorized topic) is reported for that row alone; any other delivery error (broker
/// unreachable, timeouts) fails the whole batch, which the relay then rolls back and retries.
public struct KafkaOutboxPublisher: OutboxPublisher {
    let producer: KafkaProducer

    public init(producer: KafkaProducer) {
        self.producer = producer
    }

    public func publish(_ messages: [OutboxMessage]) async throws -> [String?] {
        let records = messages.map { OutboundRecord(topic: $0.topic, key: $0.key, value: $0.value, headers: $0.headers) }
        let errors = try await producer.deliver(records)
        if let transient = errors.lazy.compactMap({ $0 }).first(where: { !$0.isRowProblem }) {
            throw transient
        }
        return errors.map { $0.map(\.description) }
    }
}

extension KafkaError {
    /// True when the error concerns this record or its topic, not the broker's availability:
    /// a permanent refusal (too large, invalid, an invalid topic), or a topic the cluster does
    /// not know or lets this client use. A fatal error is the producer's, not the row's.
    var isRowProblem: Bool {
        if !isTransient && !isFatal { return true }
        return code == .unknownTopic || code == .topicAuthorizationFailed
    }
}
