/// The headers of a dead letter: written by `KafkaDeadLetterPublisher` after the original
/// record's own headers, read back by `herald dlq` (`DeadLetterRecord`). Every one starts
/// with `herald.`; a replayed record carries none of them but `replayCount`.
public enum DeadLetterHeader {
    /// What every provenance header starts with.
    public static let prefix = "herald."

    public static let originalTopic = "herald.original.topic"
    public static let originalPartition = "herald.original.partition"
    public static let originalOffset = "herald.original.offset"
    /// The original record's timestamp, milliseconds since the epoch (absent when it had none).
    public static let originalTimestamp = "herald.original.timestamp"
    public static let consumerGroup = "herald.consumer.group"
    /// A `Rejection.Class` raw value (`NotJSON`, `InvalidEnvelope`, …).
    public static let errorClass = "herald.error.class"
    /// The rejection's message, at most `KafkaDeadLetterPublisher.maxErrorMessageBytes`.
    public static let errorMessage = "herald.error.message"
    public static let attempts = "herald.attempts"
    /// When Herald dead-lettered the record (RFC 3339, UTC).
    public static let failedAt = "herald.failed.at"
    /// The event's id and type, when its envelope decoded.
    public static let eventID = "herald.event.id"
    public static let eventType = "herald.event.type"
    /// Present when the broker refused the letter as too large and it was published without
    /// its value: the value's size in bytes.
    public static let valueOmitted = "herald.value.omitted"
    /// How many times `herald dlq replay` has published the record back to its topic. Set on
    /// the replayed record; a replayed record dead-lettered again keeps it among its original
    /// headers, which is how a replay loop is stopped (`DeadLetterReplayPolicy`).
    public static let replayCount = "herald.replay.count"
}
