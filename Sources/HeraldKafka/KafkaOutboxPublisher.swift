import CRdKafka
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
    /// True when the error concerns this record or its topic, not the broker's availability.
    var isRowProblem: Bool {
        if !isTransient && !isFatal { return true }
        let topicCodes: Set<Int32> = [
            RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC.rawValue, RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART.rawValue,
            RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED.rawValue, RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION.rawValue,
        ]
        return topicCodes.contains(code)
    }
}
