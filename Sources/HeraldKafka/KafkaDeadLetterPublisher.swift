import HeraldCore
import Logging

/// Publishes dead letters to `<topic><suffix>` with the original key, value and headers,
/// plus provenance headers (`herald.original.topic`, `…partition`, `…offset`,
/// `…timestamp`, `herald.consumer.group`, `herald.error.class`, `herald.error.message`,
/// `herald.attempts`, `herald.failed.at`, `herald.event.id`, `herald.event.type`,
/// `herald.value.omitted`; their names are in `DeadLetterHeader`).
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

    /// Publishes `letters` and waits for every acknowledgement. A letter the broker refuses
    /// as too large is sent again without its value (`herald.value.omitted` says how large it
    /// was), and only that letter: the original stays in its topic until retention removes
    /// it. A letter still refused (its key or headers alone are too large), or any other
    /// failure, is thrown as `DeadLetterPublishFailure` naming the letters not published: the
    /// batch processor then waits and retries them, and never skips them.
    public func publish(_ letters: [DeadLetter]) async throws {
        let now = clock()
        let errors = try await producer.deliver(letters.map { record(for: $0, at: now, omitValue: false) })
        var failed: [(index: Int, error: KafkaError)] = []
        var tooLarge: [Int] = []
        for (index, error) in errors.enumerated() {
            guard let error else { continue }
            if error.code == .messageTooLarge && letters[index].original.value != nil {
                tooLarge.append(index)
            } else {
                failed.append((index, error))
            }
        }
        if !tooLarge.isEmpty {
            for index in tooLarge {
                logger.error(
                    "dead letter too large for the broker; publishing it without its value",
                    metadata: [
                        "topic": "\(letters[index].original.topic)", "partition": "\(letters[index].original.partition)",
                        "offset": "\(letters[index].original.offset)", "value_bytes": "\(letters[index].original.value?.count ?? 0)",
                    ])
            }
            let stripped = try await producer.deliver(tooLarge.map { record(for: letters[$0], at: now, omitValue: true) })
            for (index, error) in zip(tooLarge, stripped) {
                if let error { failed.append((index, error)) }
            }
        }
        guard let first = failed.min(by: { $0.index < $1.index }) else { return }
        throw DeadLetterPublishFailure(unpublished: failed.map(\.index).sorted(), error: first.error)
    }

    func record(for letter: DeadLetter, at now: EventTime, omitValue: Bool) -> OutboundRecord {
        let original = letter.original
        var headers = original.headers
        headers.reserveCapacity(headers.count + 10)
        headers.append(MessageHeader(DeadLetterHeader.originalTopic, original.topic))
        headers.append(MessageHeader(DeadLetterHeader.originalPartition, String(original.partition)))
        headers.append(MessageHeader(DeadLetterHeader.originalOffset, String(original.offset)))
        if let ts = original.timestamp {
            headers.append(MessageHeader(DeadLetterHeader.originalTimestamp, String(ts)))
        }
        headers.append(MessageHeader(DeadLetterHeader.consumerGroup, letter.consumerGroup))
        headers.append(MessageHeader(DeadLetterHeader.errorClass, letter.rejection.errorClass.rawValue))
        headers.append(MessageHeader(DeadLetterHeader.errorMessage, Self.truncated(letter.rejection.message)))
        headers.append(MessageHeader(DeadLetterHeader.attempts, String(letter.attempts)))
        headers.append(MessageHeader(DeadLetterHeader.failedAt, RFC3339.format(now)))
        if let meta = letter.metadata {
            headers.append(MessageHeader(DeadLetterHeader.eventID, meta.id.rawValue))
            headers.append(MessageHeader(DeadLetterHeader.eventType, meta.type.rawValue))
        }
        if omitValue {
            headers.append(MessageHeader(DeadLetterHeader.valueOmitted, String(original.value?.count ?? 0)))
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
