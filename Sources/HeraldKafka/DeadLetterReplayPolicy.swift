import HeraldCore

/// Whether a dead letter may be published back to the topic it came from, and the record
/// that goes: the original key, value and headers (the `herald.*` provenance headers
/// removed), to the partition it was consumed from, with its original timestamp (an event
/// without a time of its own is dated by its record's timestamp: a replay must not make it
/// look new, which would date a revocation now or send mail for a stale request), and with
/// `herald.replay.count` one more than the record carried. Refused, with the reason, when
/// that would be wrong or useless:
/// - no `herald.original.topic` (not a dead letter Herald wrote);
/// - an original topic whose dead-letter topic is not the one the letter is in (a letter is
///   only ever replayed to the topic it was dead-lettered from);
/// - the value was not kept (`herald.value.omitted`): there is nothing to replay;
/// - already replayed `maxReplays` times, or a replay count that is not a number: a record
///   that keeps failing must not go round for ever.
public struct DeadLetterReplayPolicy: Sendable {
    public let maxReplays: Int
    /// The dead-letter suffix (`HERALD_DLQ_SUFFIX`).
    public let suffix: String

    public init(maxReplays: Int, suffix: String) {
        self.maxReplays = maxReplays
        self.suffix = suffix
    }

    public enum Decision: Sendable {
        /// Publish `record`; `replayCount` is the count it carries (1 for a first replay).
        case replay(OutboundRecord, replayCount: Int)
        case refuse(String)
    }

    public func decide(_ letter: DeadLetterRecord) -> Decision {
        guard let topic = letter.originalTopic, !topic.isEmpty else {
            return .refuse("no \(DeadLetterHeader.originalTopic) header: not a dead letter Herald wrote")
        }
        guard isTopicName(topic), topic + suffix == letter.topic else {
            return .refuse(
                "\(DeadLetterHeader.originalTopic) names another topic than the one this dead-letter topic belongs to (\(letter.topic) holds the dead letters of \(Self.sourceTopic(of: letter.topic, suffix: suffix) ?? "no topic")); a dead letter goes back only where it came from"
            )
        }
        if letter.valueOmitted {
            let size = letter.valueOmittedBytes.map { "\($0) bytes" } ?? "size unknown"
            var where_ = ""
            if let partition = letter.originalPartition, let offset = letter.originalOffset {
                where_ = "; the original is in \(topic)[\(partition)] at offset \(offset) until retention removes it"
            }
            return .refuse(
                "its value was not kept (\(DeadLetterHeader.valueOmitted): \(size), too large for the dead-letter topic): there is nothing to replay\(where_)"
            )
        }
        let count: Int
        switch letter.replayCount {
        case .times(let n): count = n
        case .unreadable:
            return .refuse("\(DeadLetterHeader.replayCount) is not a whole number: the record cannot be counted, so it is not replayed")
        }
        if count >= maxReplays {
            return .refuse("already replayed \(count) time\(count == 1 ? "" : "s") (--max-replays \(maxReplays))")
        }
        let record = OutboundRecord(
            topic: topic, key: letter.message.key, value: letter.message.value,
            headers: letter.originalHeaders + [MessageHeader(DeadLetterHeader.replayCount, String(count + 1))],
            partition: letter.originalPartition, timestamp: letter.originalTimestamp)
        return .replay(record, replayCount: count + 1)
    }

    /// The topic whose dead letters `deadLetterTopic` holds: the name without `suffix`; nil
    /// when it does not end with it.
    public static func sourceTopic(of deadLetterTopic: String, suffix: String) -> String? {
        guard deadLetterTopic.hasSuffix(suffix), deadLetterTopic.utf8.count > suffix.utf8.count else { return nil }
        return String(deadLetterTopic.dropLast(suffix.count))
    }
}
