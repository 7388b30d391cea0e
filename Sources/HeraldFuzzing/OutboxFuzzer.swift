import Foundation
import HeraldCore
import HeraldSettings

/// Outbox row columns and the relay's topic settings → `OutboxRelay.message(for:settings:)`,
/// the Kafka record the relay would publish, or the reason the row is refused.
///
/// Input: fields separated by 0xFF: a flags byte (bit 0 set: `event_data` is `jsonb`, not
/// checked), then the columns as PostgreSQL returns them as text — `id`, `aggregate_type`,
/// `aggregate_id`, `event_type`, `event_data`, `created_at` in milliseconds, `retry_count`
/// (a missing field is NULL and reads as `PostgresOutboxStore` reads it: empty text, time and
/// count 0; a NUL byte, which no PostgreSQL text holds, or a time beyond PostgreSQL's range
/// ends the run) — then `HERALD_OUTBOX_TOPICS`, `HERALD_OUTBOX_TOPIC_PATTERN` and
/// `HERALD_OUTBOX_MAX_MESSAGE_BYTES` (settings `HeraldSettings.load` refuses end the run).
///
/// Invariants: a row becomes a message or is refused with a reason. A message goes to a
/// valid topic (the mapped one, else the pattern's), its key is the aggregate id (never
/// empty), its value the event data (one JSON value, as Foundation's parser also reads it,
/// when checked), its headers exactly `ce_id`, `ce_type`, `ce_time`, `ce_source` and
/// `aggregate_type` with the row's values, each a CloudEvents string (non-empty for the id
/// and type, no control characters), `ce_time` an RFC 3339 timestamp of the row's time; and
/// it fits the size limit.
enum OutboxFuzzer {
    static func run(_ input: [UInt8]) throws(FuzzFailure) -> String {
        let fields = FuzzFields(input)
        var environment: [String: String] = [:]
        environment["HERALD_OUTBOX_TOPICS"] = fields.string(8)
        environment["HERALD_OUTBOX_TOPIC_PATTERN"] = fields.string(9)
        environment["HERALD_OUTBOX_MAX_MESSAGE_BYTES"] = fields.string(10)
        guard let outbox = try? HeraldSettings.load(environment: environment, readFile: { $0 }).outbox else {
            return "refused: configuration"
        }
        var settings = outbox.relay
        settings.validateJSON = fields.byte(0) & 1 == 0

        // PostgreSQL text never holds a NUL byte, and its timestamps run from 4713 BC to 294276 AD.
        guard !(1...7).contains(where: { fields.bytes($0)?.contains(0) == true }) else { return "impossible row: NUL in text" }
        let created = fields.string(6).flatMap { Int64($0) } ?? 0
        guard (-210_866_803_200_000...9_224_318_015_999_999).contains(created) else { return "impossible row: created_at" }
        // As PostgresOutboxStore.events reads a row (NULL → "" / 0).
        let event = OutboxEvent(
            id: fields.string(1) ?? "", aggregateType: fields.string(2) ?? "", aggregateID: fields.string(3) ?? "",
            eventType: fields.string(4) ?? "", payload: Array((fields.string(5) ?? "").utf8),
            createdAt: EventTime(millisecondsSinceEpoch: created),
            attempts: fields.string(7).flatMap { Int($0) } ?? 0)

        switch OutboxRelay.message(for: event, settings: settings) {
        case .failure(let problem):
            try check(!problem.description.isEmpty, "a row refused without a reason")
            return "refused: \(problem)"
        case .success(let message):
            try checkMessage(message, event, settings)
            return "published to \(message.topic)"
        }
    }

    static func checkMessage(_ message: OutboxMessage, _ event: OutboxEvent, _ settings: OutboxRelaySettings) throws(FuzzFailure) {
        try check(Invariants.isTopicName(message.topic), "topic \(Invariants.debug(message.topic)) is not a topic name")
        if let mapped = settings.topics.topics[event.aggregateType] {
            try check(message.topic == mapped, "topic \(message.topic), mapped \(mapped)")
        } else if let pattern = settings.topics.defaultPattern {
            let expected = pattern.replacing(OutboxTopicMapping.placeholder, with: event.aggregateType.lowercased())
            try check(message.topic == expected, "topic \(message.topic), pattern gives \(expected)")
        } else {
            throw FuzzFailure("a topic for an unmapped type without a pattern")
        }
        try check(!message.key.isEmpty && message.key == Array(event.aggregateID.utf8), "key is not the aggregate id")
        try check(message.value == event.payload, "value is not the event data")
        if settings.validateJSON {
            let foundation = try? JSONSerialization.jsonObject(with: Data(message.value), options: [.fragmentsAllowed])
            try check(
                foundation != nil || hasUnrepresentableNumber(message.value),
                "event data \(Invariants.debug(String(decoding: message.value, as: UTF8.self))) passed as JSON, Foundation refuses it")
        }

        let expected = [
            ("ce_id", event.id), ("ce_type", event.eventType), ("ce_time", nil), ("ce_source", "herald-outbox"),
            ("aggregate_type", event.aggregateType),
        ]
        try check(message.headers.map(\.key) == expected.map(\.0), "headers \(message.headers.map(\.key))")
        for (header, (name, value)) in zip(message.headers, expected) {
            guard let bytes = header.value, let text = String(validating: bytes, as: UTF8.self) else {
                throw FuzzFailure("header \(name) is not UTF-8 text")
            }
            if let value { try check(text == value, "header \(name) is \(Invariants.debug(text)), the row has \(Invariants.debug(value))") }
            // CloudEvents 1.0 (type system, String): no C0 or C1 control characters.
            try check(!Invariants.containsControl(text), "header \(name) \(Invariants.debug(text)) has a control character")
        }
        try check(!event.id.isEmpty, "ce_id is empty")
        let time = String(decoding: message.headers[2].value ?? [], as: UTF8.self)
        try check(
            RFC3339.parse(time) == event.createdAt,
            "ce_time \(Invariants.debug(time)) is not the RFC 3339 form of \(event.createdAt.millisecondsSinceEpoch)")
        let size = message.key.count + message.value.count + message.headers.reduce(0) { $0 + $1.key.utf8.count + ($1.value?.count ?? 0) }
        try check(message.size == size && size <= settings.maxMessageBytes, "size \(message.size), limit \(settings.maxMessageBytes)")
    }

    /// A number Foundation cannot hold (beyond Double's range): a JSON value all the same.
    static func hasUnrepresentableNumber(_ bytes: [UInt8]) -> Bool {
        bytes.contains(UInt8(ascii: "e")) || bytes.contains(UInt8(ascii: "E")) || bytes.count > 300
    }
}
