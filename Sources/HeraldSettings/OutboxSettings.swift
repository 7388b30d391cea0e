import HeraldCore
import HeraldPostgres

/// The transactional outbox relay (`HERALD_OUTBOX_*`): the relay's own settings, the table's
/// layout and the database that holds it.
public struct OutboxSettings: Sendable {
    /// `herald run` relays the outbox too.
    public var enabled = false
    /// The API's database: `HERALD_OUTBOX_DATABASE_URL` (and `…_PASSWORD`), else Herald's own
    /// (`HERALD_DATABASE_URL`, `HERALD_DATABASE_PASSWORD`); nil when neither is set.
    public var connection: PostgresSettings?
    public var layout = OutboxTableLayout()
    /// Batches, attempts, the message size limit, the topics and the backoff (`HERALD_RETRY_*`).
    public var relay = OutboxRelaySettings()
    /// How often the table is polled when no NOTIFY arrives.
    public var pollInterval: Duration = .seconds(1)
    /// Processed rows older than this are deleted.
    public var retention: Duration = .seconds(7 * 86_400)
    /// LISTEN on `channel` for wake-ups (the trigger `herald outbox install-trigger` installs).
    public var listen = true
    public var channel = "herald_outbox"
    /// Relay to the embedded broker all the same: it acknowledges rows and forgets them, and
    /// they are marked processed (demos only).
    public var allowEmbeddedBroker = false

    public init() {}

    /// The outbox database, or an error naming both settings.
    public func requireConnection() throws(ConfigurationError) -> PostgresSettings {
        guard let connection else {
            throw ConfigurationError(
                setting: "HERALD_OUTBOX_DATABASE_URL",
                problem: "required (or HERALD_DATABASE_URL): the libpq URI of the database that holds the outbox table")
        }
        return connection
    }

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

    static func load(_ r: SettingsReader, database: DatabaseSettings.Shared, retry: Backoff) throws(ConfigurationError) -> OutboxSettings {
        var c = OutboxSettings()
        c.enabled = try r.boolean("HERALD_OUTBOX_ENABLED") ?? c.enabled
        let url = try r.secret("HERALD_OUTBOX_DATABASE_URL", allowEmpty: false)
        let password = try r.secret("HERALD_OUTBOX_DATABASE_PASSWORD")
        // The outbox's own URL with its own password; else Herald's database, password and all.
        let (conninfo, secret) = url != nil ? (url, password) : (database.url, database.password)
        let prepares = try r.boolean("HERALD_OUTBOX_DATABASE_PREPARED_STATEMENTS") ?? database.preparesStatements
        c.connection = conninfo.map {
            PostgresSettings(
                conninfo: $0, password: secret, poolSize: 2, connectTimeout: database.connectTimeout,
                statementTimeout: database.statementTimeout, applicationName: "herald-outbox", preparesStatements: prepares)
        }

        if let table = try r.string("HERALD_OUTBOX_TABLE") {
            let parts = table.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
            guard (1...2).contains(parts.count), parts.allSatisfy(OutboxTableLayout.isIdentifier) else {
                throw ConfigurationError(
                    setting: "HERALD_OUTBOX_TABLE", problem: "expected table or schema.table, each an identifier ([A-Za-z_][A-Za-z0-9_]*)")
            }
            c.layout.schema = parts.count == 2 ? parts[0] : nil
            c.layout.table = parts.last!
        }
        if let list = try r.string("HERALD_OUTBOX_COLUMNS") {
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

        var topics = OutboxTopicMapping()
        if let list = try r.string("HERALD_OUTBOX_TOPICS") {
            for pair in list.split(separator: ",") {
                let kv = pair.split(separator: "=", maxSplits: 1).map { $0.trimmingWhitespace() }
                guard kv.count == 2, !kv[0].isEmpty, isTopicName(kv[1]) else {
                    throw ConfigurationError(
                        setting: "HERALD_OUTBOX_TOPICS", problem: "expected AggregateType=topic[,AggregateType=topic...]")
                }
                topics.topics[kv[0]] = kv[1]
            }
        }
        if let pattern = try r.string("HERALD_OUTBOX_TOPIC_PATTERN") {
            if pattern.isEmpty {
                topics.defaultPattern = nil
            } else {
                let sample = pattern.replacing(OutboxTopicMapping.placeholder, with: "user")
                guard pattern.contains(OutboxTopicMapping.placeholder), isTopicName(sample) else {
                    throw ConfigurationError(
                        setting: "HERALD_OUTBOX_TOPIC_PATTERN",
                        problem: "expected a topic name containing {aggregate_type}, such as {aggregate_type}.events (empty: no default)")
                }
                topics.defaultPattern = pattern
            }
        }
        let defaults = OutboxRelaySettings()
        c.relay = OutboxRelaySettings(
            batchSize: try r.integer("HERALD_OUTBOX_BATCH_SIZE", in: 1...10_000) ?? defaults.batchSize,
            maxAttempts: try r.integer("HERALD_OUTBOX_MAX_ATTEMPTS", in: 1...1_000) ?? defaults.maxAttempts,
            maxMessageBytes: try r.integer("HERALD_OUTBOX_MAX_MESSAGE_BYTES", in: 1_024...100_000_000) ?? defaults.maxMessageBytes,
            topics: topics, backoff: retry)
        c.pollInterval = try r.duration("HERALD_OUTBOX_POLL_INTERVAL") ?? c.pollInterval
        c.retention = try r.duration("HERALD_OUTBOX_RETENTION") ?? c.retention
        c.listen = try r.boolean("HERALD_OUTBOX_LISTEN") ?? c.listen
        c.allowEmbeddedBroker = try r.boolean("HERALD_OUTBOX_ALLOW_EMBEDDED_BROKER") ?? c.allowEmbeddedBroker
        if let channel = try r.string("HERALD_OUTBOX_CHANNEL") {
            guard OutboxTableLayout.isIdentifier(channel) else {
                throw ConfigurationError(setting: "HERALD_OUTBOX_CHANNEL", problem: "expected an identifier ([A-Za-z_][A-Za-z0-9_]*)")
            }
            c.channel = channel
        }
        return c
    }
}
