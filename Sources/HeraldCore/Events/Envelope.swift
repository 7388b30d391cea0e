/// What every event carries whatever its type: resolved from headers and body following
/// the contract's precedence rules.
public struct EventMetadata: Sendable, Hashable {
    public let type: EventType
    public let id: EventID
    public let occurredAt: EventTime
    public let topic: String
    public let partition: Int32
    public let offset: Int64

    public init(type: EventType, id: EventID, occurredAt: EventTime, topic: String, partition: Int32, offset: Int64) {
        self.type = type
        self.id = id
        self.occurredAt = occurredAt
        self.topic = topic
        self.partition = partition
        self.offset = offset
    }
}

/// A record whose value parsed as a JSON object and whose type, id and time resolved.
public struct Envelope: Sendable {
    public let metadata: EventMetadata
    public let body: JSONObject
}

/// Why a record can never be processed, whatever the number of attempts. The record goes
/// to the dead-letter topic with `errorClass` and `message` in its headers.
public struct Rejection: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Class: String, Sendable, CaseIterable {
        /// Empty, not UTF-8 JSON, or not a JSON object.
        case notJSON = "NotJSON"
        /// Type, id or time missing or malformed.
        case invalidEnvelope = "InvalidEnvelope"
        /// The payload does not satisfy the event's schema or a value object's rules.
        case validationFailed = "ValidationFailed"
        /// No handler is registered for the type and it is not configured as ignored.
        case unknownEventType = "UnknownEventType"
        /// The handler or a dependency said the event can never succeed.
        case handlerRejected = "HandlerRejected"
    }

    public let errorClass: Class
    public let message: String

    public init(_ errorClass: Class, _ message: String) {
        self.errorClass = errorClass
        self.message = message
    }

    public var description: String { "\(errorClass.rawValue): \(message)" }
}

/// Resolves type, id and time as the event contract specifies (Topics/asyncapi.yaml,
/// docs/integration.md):
/// - type: header `ce_type`, header `event_type`, field `event_type`, field `type`, then
///   the topic's configured default type;
/// - id: header `ce_id`, field `event_id`, field `id`, else derived from the record
///   (`EventID(derivedFrom:)`: its coordinates, timestamp and a hash of key and value);
/// - time: field `occurred_at` (RFC 3339), `event_timestamp` (epoch seconds), `created_at`
///   (RFC 3339), else the record's timestamp, else the time it was decoded. A time more
///   than `maxClockSkew` ahead of `clock` cannot be right: the record is rejected
///   (`InvalidEnvelope`), because revocation times only move forward and a time years ahead
///   would lock a role or user out for the whole TTL with no way back.
public struct EnvelopeDecoder: Sendable {
    public var defaultTypeByTopic: [String: EventType]
    public var maxClockSkew: Duration
    /// How a rejection names the skew's setting, so that an operator knows what to change.
    public var maxClockSkewName: String
    public var clock: @Sendable () -> EventTime

    public init(
        defaultTypeByTopic: [String: EventType] = [:], maxClockSkew: Duration = .seconds(300),
        maxClockSkewName: String = "the maximum clock skew", clock: @escaping @Sendable () -> EventTime = { EventTime.now() }
    ) {
        self.defaultTypeByTopic = defaultTypeByTopic
        self.maxClockSkew = maxClockSkew
        self.maxClockSkewName = maxClockSkewName
        self.clock = clock
    }

    public func decode(_ message: InboundMessage) throws(Rejection) -> Envelope {
        guard let value = message.value, !value.isEmpty else {
            throw Rejection(.notJSON, "empty message value")
        }
        let body: JSONObject
        do {
            body = try JSONObject(parsing: value)
        } catch {
            throw Rejection(.notJSON, error.description)
        }
        do {
            let type = try resolveType(message, body)
            let id = try resolveID(message, body)
            let time = try resolveTime(message, body)
            try checkNotInTheFuture(time)
            return Envelope(
                metadata: EventMetadata(
                    type: type, id: id, occurredAt: time, topic: message.topic, partition: message.partition,
                    offset: message.offset),
                body: body)
        } catch let error as Rejection {
            throw error
        } catch {
            throw Rejection(.invalidEnvelope, String(describing: error))
        }
    }

    func resolveType(_ message: InboundMessage, _ body: JSONObject) throws -> EventType {
        for name in ["ce_type", "event_type"] {
            if let header = message.header(name), let raw = header.value {
                guard let text = String(validating: raw, as: UTF8.self) else {
                    throw Rejection(.invalidEnvelope, "header \(name) is not UTF-8")
                }
                return try envelopeValue(name) { () throws(ValidationError) in try EventType(text) }
            }
        }
        for field in ["event_type", "type"] {
            if let text = try body.string(field) {
                return try envelopeValue(field) { () throws(ValidationError) in try EventType(text) }
            }
        }
        if let fallback = defaultTypeByTopic[message.topic] { return fallback }
        throw Rejection(.invalidEnvelope, "no event type (header ce_type or event_type, field event_type or type)")
    }

    func resolveID(_ message: InboundMessage, _ body: JSONObject) throws -> EventID {
        if let header = message.header("ce_id"), let raw = header.value {
            guard let text = String(validating: raw, as: UTF8.self) else {
                throw Rejection(.invalidEnvelope, "header ce_id is not UTF-8")
            }
            return try envelopeValue("ce_id") { () throws(ValidationError) in try EventID(text) }
        }
        for field in ["event_id", "id"] {
            if let text = try body.identifier(field) {
                return try envelopeValue(field) { () throws(ValidationError) in try EventID(text) }
            }
        }
        return EventID(derivedFrom: message)
    }

    func resolveTime(_ message: InboundMessage, _ body: JSONObject) throws -> EventTime {
        if let text = try body.string("occurred_at") {
            guard let time = RFC3339.parse(text) else {
                throw Rejection(.invalidEnvelope, "occurred_at is not an RFC 3339 timestamp")
            }
            return time
        }
        if body.kind(of: "event_timestamp") == .string, let text = try body.string("event_timestamp") {
            guard let seconds = Double(text), seconds.isFinite, abs(seconds) < 1e11 else {
                throw Rejection(.invalidEnvelope, "event_timestamp is not epoch seconds")
            }
            return EventTime(millisecondsSinceEpoch: Int64((seconds * 1000).rounded(.down)))
        }
        if let seconds = try body.number("event_timestamp") {
            guard abs(seconds) < 1e11 else { throw Rejection(.invalidEnvelope, "event_timestamp is not epoch seconds") }
            return EventTime(millisecondsSinceEpoch: Int64((seconds * 1000).rounded(.down)))
        }
        if let text = try body.string("created_at") {
            guard let time = RFC3339.parse(text) else {
                throw Rejection(.invalidEnvelope, "created_at is not an RFC 3339 timestamp")
            }
            return time
        }
        if let ms = message.timestamp, ms > 0 { return EventTime(millisecondsSinceEpoch: ms) }
        return clock()
    }

    /// Rejects a time further ahead of Herald's clock than the allowed skew.
    func checkNotInTheFuture(_ time: EventTime) throws(Rejection) {
        let now = clock()
        // Compared as Durations: `now + skew` in milliseconds overflowed (a trap on the first
        // event) with a skew within 2e12 ms of Int64.max, which HERALD_MAX_CLOCK_SKEW accepts.
        let (difference, overflow) = time.millisecondsSinceEpoch.subtractingReportingOverflow(now.millisecondsSinceEpoch)
        let ahead = Duration.milliseconds(overflow ? (time > now ? Int64.max : Int64.min) : difference)
        guard ahead > maxClockSkew else { return }
        throw Rejection(
            .invalidEnvelope,
            "event time \(RFC3339.format(time)) is \(Self.describe(ahead)) ahead of Herald's clock (\(RFC3339.format(now))), "
                + "more than the allowed skew of \(Self.describe(maxClockSkew)) (\(maxClockSkewName))")
    }

    /// `3d 4h`, `12m 5s`, `800ms`: a readable duration for messages.
    static func describe(_ duration: Duration) -> String {
        let ms = duration.wholeMilliseconds
        if ms < 1000 { return "\(ms)ms" }
        let units: [(String, Int64)] = [("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)]
        var rest = ms
        var parts: [String] = []
        for (name, size) in units where rest >= size && parts.count < 2 {
            parts.append("\(rest / size)\(name)")
            rest %= size
        }
        return parts.joined(separator: " ")
    }

    private func envelopeValue<T>(_ name: String, _ make: () throws(ValidationError) -> T) throws(Rejection) -> T {
        do {
            return try make()
        } catch {
            throw Rejection(.invalidEnvelope, "\(name): \(error.reason)")
        }
    }
}
