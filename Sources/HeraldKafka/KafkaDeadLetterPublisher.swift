import HeraldCore
import Logging

/// Publishes dead letters to `<topic><suffix>` with the original key, value and headers,
/// plus provenance headers (`herald.original.topic`, `…partition`, `…offset`,
/// `…timestamp`, `herald.consumer.group`, `herald.error.class`, `herald.error.message`,
/// `herald.attempts`, `herald.failed.at`).
public struct KafkaDeadLetterPublisher: DeadLetterPublisher {
    public static let maxErrorMessageBytes = 1024

    let producer: KafkaProducer
    let suffix: String
    let logger: Logger
    let clock: @Sendable () -> EventTime

    public init(
        producer: KafkaProducer, suffix: String = ".dlq", logger: Logger,
        clock: @escaping @Sendable () -> EventTime = { EventTime.now() }
    ) {
        self.producer = producer
        self.suffix = suffix
        self.logger = logger
        self.clock = clock
    }

    public func publish(_ letters: [DeadLetter]) async throws {
        let now = clock()
        do {
            try await producer.send(letters.map { record(for: $0, at: now, omitValue: false) })
        } catch let error as KafkaError where error.isMessageTooLarge {
            // The broker refuses records this large. The provenance headers still name the
            // original record, which stays in its topic until retention removes it.
            logger.error(
                "dead letter too large for the broker; publishing it without its value",
                metadata: ["error": "\(error)"])
            try await producer.send(letters.map { record(for: $0, at: now, omitValue: true) })
        }
    }

    func record(for letter: DeadLetter, at now: EventTime, omitValue: Bool) -> OutboundRecord {
        let original = letter.original
        var headers = original.headers
        headers.reserveCapacity(headers.count + 10)
        headers.append(MessageHeader("herald.original.topic", original.topic))
        headers.append(MessageHeader("herald.original.partition", String(original.partition)))
        headers.append(MessageHeader("herald.original.offset", String(original.offset)))
        if let ts = original.timestamp {
            headers.append(MessageHeader("herald.original.timestamp", String(ts)))
        }
        headers.append(MessageHeader("herald.consumer.group", letter.consumerGroup))
        headers.append(MessageHeader("herald.error.class", letter.rejection.errorClass.rawValue))
        headers.append(MessageHeader("herald.error.message", Self.truncated(letter.rejection.message)))
        headers.append(MessageHeader("herald.attempts", String(letter.attempts)))
        headers.append(MessageHeader("herald.failed.at", RFC3339.format(now)))
        if let meta = letter.metadata {
            headers.append(MessageHeader("herald.event.id", meta.id.rawValue))
            headers.append(MessageHeader("herald.event.type", meta.type.rawValue))
        }
        if omitValue {
            headers.append(MessageHeader("herald.value.omitted", String(original.value?.count ?? 0)))
        }
        return OutboundRecord(
            topic: original.topic + suffix, key: original.key, value: omitValue ? nil : original.value, headers: headers)
    }

    static func truncated(_ message: String) -> String {
        guard message.utf8.count > maxErrorMessageBytes else { return message }
        var result = ""
        for ch in message {
            if result.utf8.count + ch.utf8.count > maxErrorMessageBytes - 3 { break }
            result.append(ch)
        }
        return result + "..."
    }
}
