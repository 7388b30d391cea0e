/// Chooses the Kafka topic of an outbox row from its `aggregate_type`: an explicit entry
/// first (`User=identity.users`), else the default pattern with `{aggregate_type}` replaced
/// by the type in lower case (`{aggregate_type}.events`: `User` → `user.events`). With no
/// entry and no pattern, the row cannot be published.
public struct OutboxTopicMapping: Sendable, Hashable {
    public static let placeholder = "{aggregate_type}"

    /// Aggregate type (exact, case-sensitive) → topic.
    public var topics: [String: String]
    /// nil: types without an entry are refused.
    public var defaultPattern: String?

    public init(topics: [String: String] = [:], defaultPattern: String? = "{aggregate_type}.events") {
        self.topics = topics
        self.defaultPattern = defaultPattern
    }

    public enum Failure: Error, Hashable, Sendable, CustomStringConvertible {
        case unmapped(aggregateType: String)
        case invalidTopic(aggregateType: String, topic: String)

        public var description: String {
            switch self {
            case .unmapped(let type):
                "no topic for aggregate type \(quoted(type)): the topic mapping has no entry for it and no default pattern"
            case .invalidTopic(let type, let topic):
                "aggregate type \(quoted(type)) maps to \(quoted(topic)), which is not a valid Kafka topic name"
            }
        }
    }

    public func topic(for aggregateType: String) -> Result<String, Failure> {
        if let topic = topics[aggregateType] { return .success(topic) }
        guard let pattern = defaultPattern else { return .failure(.unmapped(aggregateType: aggregateType)) }
        let topic = pattern.replacing(Self.placeholder, with: aggregateType.lowercased())
        guard isTopicName(topic) else { return .failure(.invalidTopic(aggregateType: aggregateType, topic: topic)) }
        return .success(topic)
    }
}

/// A value from a row, quoted and cut short for an error message.
func quoted(_ text: String, limit: Int = 100) -> String {
    let cut = text.count > limit ? String(text.prefix(limit)) + "…" : text
    return "\"" + cut + "\""
}

/// A Kafka topic name: 1 to 249 of `[A-Za-z0-9._-]`, not `.` or `..`.
public func isTopicName(_ name: String) -> Bool {
    !name.isEmpty && name.utf8.count <= 249 && name != "." && name != ".."
        && name.utf8.allSatisfy { b in
            (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x2E || b == 0x5F
                || b == 0x2D
        }
}
