import HeraldCore

/// Which dead letters `herald dlq list`, `show` and `replay` select: by error class, event
/// type, time of failure, and position in the dead-letter topic. An empty filter selects
/// every record. Pure: the commands read the records, this decides.
public struct DeadLetterFilter: Sendable, Equatable {
    /// `herald.error.class` values (`Rejection.Class` raw values); empty: any.
    public var errorClasses: Set<String> = []
    /// `herald.event.type` values; empty: any. A record without one never matches a type.
    public var eventTypes: Set<String> = []
    /// Only records that failed at or after this time (`DeadLetterRecord.failedTime`); a
    /// record with no time at all does not match.
    public var since: EventTime?
    /// The dead-letter topic's partition.
    public var partition: Int32?
    /// The offset in the dead-letter topic's partition (with `partition`).
    public var offset: Int64?

    public init(
        errorClasses: Set<String> = [], eventTypes: Set<String> = [], since: EventTime? = nil, partition: Int32? = nil,
        offset: Int64? = nil
    ) {
        self.errorClasses = errorClasses
        self.eventTypes = eventTypes
        self.since = since
        self.partition = partition
        self.offset = offset
    }

    public func matches(_ record: DeadLetterRecord) -> Bool {
        if let partition, record.partition != partition { return false }
        if let offset, record.offset != offset { return false }
        if !errorClasses.isEmpty {
            guard let errorClass = record.errorClass, errorClasses.contains(errorClass) else { return false }
        }
        if !eventTypes.isEmpty {
            guard let eventType = record.eventType, eventTypes.contains(eventType) else { return false }
        }
        if let since {
            guard let time = record.failedTime, time >= since else { return false }
        }
        return true
    }

    /// The offsets worth reading in one partition of the dead-letter topic, `[start, end)`,
    /// given its low and high watermarks (the high one captured before reading, so that a
    /// read ends however many letters arrive meanwhile); nil when none can match.
    public func range(partition: Int32, low: Int64, high: Int64) -> Range<Int64>? {
        if let wanted = self.partition, wanted != partition { return nil }
        var start = max(0, low)
        var end = high
        if let offset {
            start = max(start, offset)
            end = min(end, offset + 1)
        }
        return start < end ? start..<end : nil
    }

    /// The canonical `Rejection.Class` raw value for `text`, any letter case
    /// (`notjson` → `NotJSON`); nil when no class has that name.
    public static func errorClass(named text: String) -> String? {
        Rejection.Class.allCases.first { $0.rawValue.lowercased() == text.lowercased() }?.rawValue
    }

    /// `--since`: an RFC 3339 time (`2026-05-01T12:00:00Z`), or a duration back from `now`
    /// in the settings' units (`90s`, `30m`, `2h`, `7d`). nil when it is neither.
    public static func since(parsing text: String, now: EventTime) -> EventTime? {
        if let time = RFC3339.parse(text) { return time }
        guard let duration = Duration(parsing: text) else { return nil }
        let (back, overflow) = now.millisecondsSinceEpoch.subtractingReportingOverflow(duration.wholeMilliseconds)
        return overflow ? nil : EventTime(millisecondsSinceEpoch: back)
    }
}
