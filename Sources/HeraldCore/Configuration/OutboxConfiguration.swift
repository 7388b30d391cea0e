/// Where the API's outbox table lives and what its columns are called. Every name is an
/// identifier (`[A-Za-z_][A-Za-z0-9_]*`, at most 63 bytes), always double-quoted in SQL, so
/// it is matched exactly as written.
public struct OutboxTableLayout: Sendable, Hashable {
    /// The columns the relay uses, by their default names (docs/integration.md's table).
    public enum Column: String, Sendable, CaseIterable, Hashable {
        case id
        case aggregateType = "aggregate_type"
        case aggregateID = "aggregate_id"
        case eventType = "event_type"
        case eventData = "event_data"
        case status
        case retryCount = "retry_count"
        case createdAt = "created_at"
        case processedAt = "processed_at"
        case errorMessage = "error_message"
    }

    /// nil: the connection's `search_path` decides.
    public var schema: String?
    public var table: String
    /// Only the renamed columns; the others keep their default names.
    public var renamed: [Column: String]

    public init(schema: String? = nil, table: String = "outbox_events", renamed: [Column: String] = [:]) {
        self.schema = schema
        self.table = table
        self.renamed = renamed
    }

    public func name(of column: Column) -> String {
        renamed[column] ?? column.rawValue
    }

    /// `[A-Za-z_][A-Za-z0-9_]*`, 1 to 63 bytes: safe to double-quote into SQL.
    public static func isIdentifier(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard let first = bytes.first, bytes.count <= 63 else { return false }
        func isLetter(_ b: UInt8) -> Bool { (b >= 0x61 && b <= 0x7A) || (b >= 0x41 && b <= 0x5A) || b == 0x5F }
        return isLetter(first) && bytes.allSatisfy { isLetter($0) || ($0 >= 0x30 && $0 <= 0x39) }
    }
}

/// The transactional outbox relay's settings (`HERALD_OUTBOX_*`).
public struct OutboxConfiguration: Sendable {
    /// `herald run` relays the outbox (`HERALD_OUTBOX_ENABLED`).
    public var enabled = false
    /// The API's database; nil: `HERALD_DATABASE_URL`.
    public var databaseURL: Secret?
    public var databasePassword: Secret?
    public var layout = OutboxTableLayout()
    public var topics = OutboxTopicMapping()
    public var batchSize = 500
    public var maxAttempts = 5
    public var maxMessageBytes = 1_000_000
    /// How often the table is polled when no NOTIFY arrives.
    public var pollInterval: Duration = .seconds(1)
    /// Processed rows older than this are deleted.
    public var retention: Duration = .seconds(7 * 86_400)
    /// LISTEN on `channel` for wake-ups (the trigger `herald outbox install-trigger` installs).
    public var listen = true
    public var channel = "herald_outbox"
    /// Relay to the embedded broker all the same (`HERALD_OUTBOX_ALLOW_EMBEDDED_BROKER`): it
    /// acknowledges rows and forgets them, and they are marked processed (demos only).
    public var allowEmbeddedBroker = false

    public init() {}

    /// Refuses to relay to the embedded broker unless `allowEmbeddedBroker`: a row is marked
    /// processed once the broker acknowledged it, and the embedded broker keeps nothing.
    /// - Parameter enabledBy: how the relay was asked for, for the message
    ///   (`HERALD_OUTBOX_ENABLED=true`, `herald outbox relay`).
    public func checkBroker(embedded: Bool, enabledBy: String) throws(ConfigurationError) {
        guard embedded, !allowEmbeddedBroker else { return }
        throw ConfigurationError(
            setting: "HERALD_KAFKA_BROKERS",
            problem:
                "the outbox relay (\(enabledBy)) refuses the embedded broker (HERALD_KAFKA_BROKERS=embedded): it would acknowledge rows, which are then marked processed, and forget them. Point HERALD_KAFKA_BROKERS at a real cluster, or set HERALD_OUTBOX_ALLOW_EMBEDDED_BROKER=true to relay into it anyway (demos only)"
        )
    }

    /// The outbox database URL, falling back to Herald's own, or an error naming both.
    public func requireURL(fallback: Secret?) throws(ConfigurationError) -> String {
        guard let url = databaseURL ?? fallback else {
            throw ConfigurationError(
                setting: "HERALD_OUTBOX_DATABASE_URL",
                problem: "required (or HERALD_DATABASE_URL): the libpq URI of the database that holds the outbox table")
        }
        return url.value
    }

    /// Reads the `HERALD_OUTBOX_*` variables.
    static func load(_ reader: EnvironmentReader) throws(ConfigurationError) -> OutboxConfiguration {
        var c = OutboxConfiguration()
        c.enabled = try reader.boolean("HERALD_OUTBOX_ENABLED") ?? c.enabled
        if let url = try reader.string("HERALD_OUTBOX_DATABASE_URL") {
            guard !url.isEmpty else { throw ConfigurationError(setting: "HERALD_OUTBOX_DATABASE_URL", problem: "is empty") }
            c.databaseURL = Secret(url)
        }
        c.databasePassword = try reader.string("HERALD_OUTBOX_DATABASE_PASSWORD").map(Secret.init)

        if let table = try reader.string("HERALD_OUTBOX_TABLE") {
            let parts = table.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
            guard (1...2).contains(parts.count), parts.allSatisfy(OutboxTableLayout.isIdentifier) else {
                throw ConfigurationError(
                    setting: "HERALD_OUTBOX_TABLE", problem: "expected table or schema.table, each an identifier ([A-Za-z_][A-Za-z0-9_]*)")
            }
            c.layout.schema = parts.count == 2 ? parts[0] : nil
            c.layout.table = parts.last!
        }
        if let list = try reader.string("HERALD_OUTBOX_COLUMNS") {
            let known = OutboxTableLayout.Column.allCases.map(\.rawValue).joined(separator: ", ")
            for pair in list.split(separator: ",") {
                let kv = pair.split(separator: "=", maxSplits: 1).map { $0.trimmingWhitespace() }
                guard kv.count == 2, let column = OutboxTableLayout.Column(rawValue: kv[0]) else {
                    throw ConfigurationError(
                        setting: "HERALD_OUTBOX_COLUMNS", problem: "expected column=name[,column=name...] with column one of \(known)")
                }
                guard OutboxTableLayout.isIdentifier(kv[1]) else {
                    throw ConfigurationError(
                        setting: "HERALD_OUTBOX_COLUMNS", problem: "the name for \(kv[0]) is not an identifier ([A-Za-z_][A-Za-z0-9_]*)")
                }
                c.layout.renamed[column] = kv[1]
            }
            let names = OutboxTableLayout.Column.allCases.map(c.layout.name(of:))
            guard Set(names).count == names.count else {
                throw ConfigurationError(setting: "HERALD_OUTBOX_COLUMNS", problem: "two columns have the same name")
            }
        }

        if let list = try reader.string("HERALD_OUTBOX_TOPICS") {
            for pair in list.split(separator: ",") {
                let kv = pair.split(separator: "=", maxSplits: 1).map { $0.trimmingWhitespace() }
                guard kv.count == 2, !kv[0].isEmpty, isTopicName(kv[1]) else {
                    throw ConfigurationError(
                        setting: "HERALD_OUTBOX_TOPICS", problem: "expected AggregateType=topic[,AggregateType=topic...]")
                }
                c.topics.topics[kv[0]] = kv[1]
            }
        }
        if let pattern = try reader.string("HERALD_OUTBOX_TOPIC_PATTERN") {
            if pattern.isEmpty {
                c.topics.defaultPattern = nil
            } else {
                let sample = pattern.replacing(OutboxTopicMapping.placeholder, with: "user")
                guard pattern.contains(OutboxTopicMapping.placeholder), isTopicName(sample) else {
                    throw ConfigurationError(
                        setting: "HERALD_OUTBOX_TOPIC_PATTERN",
                        problem: "expected a topic name containing {aggregate_type}, such as {aggregate_type}.events (empty: no default)")
                }
                c.topics.defaultPattern = pattern
            }
        }

        c.batchSize = try reader.integer("HERALD_OUTBOX_BATCH_SIZE", in: 1...10_000) ?? c.batchSize
        c.maxAttempts = try reader.integer("HERALD_OUTBOX_MAX_ATTEMPTS", in: 1...1_000) ?? c.maxAttempts
        c.maxMessageBytes = try reader.integer("HERALD_OUTBOX_MAX_MESSAGE_BYTES", in: 1_024...100_000_000) ?? c.maxMessageBytes
        c.pollInterval = try reader.duration("HERALD_OUTBOX_POLL_INTERVAL") ?? c.pollInterval
        c.retention = try reader.duration("HERALD_OUTBOX_RETENTION") ?? c.retention
        c.listen = try reader.boolean("HERALD_OUTBOX_LISTEN") ?? c.listen
        c.allowEmbeddedBroker = try reader.boolean("HERALD_OUTBOX_ALLOW_EMBEDDED_BROKER") ?? c.allowEmbeddedBroker
        if let channel = try reader.string("HERALD_OUTBOX_CHANNEL") {
            guard OutboxTableLayout.isIdentifier(channel) else {
                throw ConfigurationError(setting: "HERALD_OUTBOX_CHANNEL", problem: "expected an identifier ([A-Za-z_][A-Za-z0-9_]*)")
            }
            c.channel = channel
        }
        return c
    }
}
