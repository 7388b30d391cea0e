import HeraldCore

/// A record read from a dead-letter topic, with its provenance headers
/// (`DeadLetterHeader`) read: where it came from, why it failed, when, and how many times it
/// was replayed. A header that is missing or does not parse is nil; the record itself is
/// kept as read (`message`).
public struct DeadLetterRecord: Sendable {
    /// The dead letter as read: its topic, partition and offset are the dead-letter topic's.
    public let message: InboundMessage

    public let originalTopic: String?
    public let originalPartition: Int32?
    public let originalOffset: Int64?
    /// Milliseconds since the epoch.
    public let originalTimestamp: Int64?
    public let consumerGroup: String?
    public let errorClass: String?
    public let errorMessage: String?
    public let attempts: Int?
    public let failedAt: EventTime?
    public let eventID: String?
    public let eventType: String?
    /// The size of the value the letter was published without (`herald.value.omitted`); nil
    /// when the value was kept.
    public let valueOmittedBytes: Int?
    /// Whether the value was left out of the letter (the header is present, even unreadable).
    public let valueOmitted: Bool
    /// How many times the record was replayed before it was dead-lettered (this time).
    public let replayCount: ReplayCount
    /// The original record's own headers: every header but the `herald.*` ones, in order.
    public let originalHeaders: [MessageHeader]

    /// The `herald.replay.count` a dead letter carries among its original headers.
    public enum ReplayCount: Sendable, Equatable {
        /// A number of replays; 0 when the header is absent (never replayed).
        case times(Int)
        /// The header is present but not a whole number (shown escaped by the caller).
        case unreadable(String)
    }

    public init(_ message: InboundMessage) {
        self.message = message
        func text(_ key: String) -> String? { message.header(key)?.stringValue }
        func integer<T: FixedWidthInteger>(_ key: String, as: T.Type = T.self) -> T? {
            guard let value = text(key), !value.isEmpty, value.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
            return T(value)
        }
        originalTopic = text(DeadLetterHeader.originalTopic)
        originalPartition = integer(DeadLetterHeader.originalPartition)
        originalOffset = integer(DeadLetterHeader.originalOffset)
        originalTimestamp = text(DeadLetterHeader.originalTimestamp).flatMap { Int64($0) }
        consumerGroup = text(DeadLetterHeader.consumerGroup)
        errorClass = text(DeadLetterHeader.errorClass)
        errorMessage = text(DeadLetterHeader.errorMessage)
        attempts = integer(DeadLetterHeader.attempts)
        failedAt = text(DeadLetterHeader.failedAt).flatMap(RFC3339.parse)
        eventID = text(DeadLetterHeader.eventID)
        eventType = text(DeadLetterHeader.eventType)
        valueOmitted = message.header(DeadLetterHeader.valueOmitted) != nil
        valueOmittedBytes = integer(DeadLetterHeader.valueOmitted)
        if let count = text(DeadLetterHeader.replayCount) {
            replayCount = integer(DeadLetterHeader.replayCount).map(ReplayCount.times) ?? .unreadable(count)
        } else {
            replayCount = .times(0)
        }
        originalHeaders = message.headers.filter { !$0.key.hasPrefix(DeadLetterHeader.prefix) }
    }

    public var topic: String { message.topic }
    public var partition: Int32 { message.partition }
    public var offset: Int64 { message.offset }

    /// When the record was dead-lettered: `herald.failed.at`, else the dead letter's own
    /// timestamp (which the producer set when publishing it).
    public var failedTime: EventTime? {
        failedAt ?? message.timestamp.map { EventTime(millisecondsSinceEpoch: $0) }
    }
}
